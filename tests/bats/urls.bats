#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Where godislock connects: unix sockets, database numbers, IPv6, user
# names, and GODISLOCK_URL against --url.
bats_require_minimum_version 1.5.0
load helpers

setup() {
  unset GODISLOCK_PASSWORD REDISCLI_AUTH
  start_redis
}

# The command reports whether the lock key exists in database $2 of the
# test's server (asked from inside the critical section).
exists_in_db='redis-cli -p "$1" -n "$2" exists "godislock:{$GODISLOCK_NAME}"'

@test "unix:///path socket works" {
  run --separate-stderr "$GODISLOCK" run -v --url "unix://$REDIS_SOCK" \
    --name sock -- sh -c "$exists_in_db" sh "$REDIS_PORT" 0
  assert_success
  assert_output 1
  assert_regex "$stderr" "lock 'sock' on unix://$REDIS_SOCK,"
  assert_no_lock_key
}

@test "unix socket with ?db=2 uses database 2" {
  run "$GODISLOCK" run --url "unix://$REDIS_SOCK?db=2" --name sockdb -- \
    sh -c "$exists_in_db" sh "$REDIS_PORT" 2
  assert_success
  assert_output 1
  run "$GODISLOCK" run --url "unix://$REDIS_SOCK?db=2" --name sockdb -- \
    sh -c "$exists_in_db" sh "$REDIS_PORT" 0
  assert_success
  assert_output 0
  run rcli -n 2 exists 'godislock:{sockdb}:fence'
  assert_output 1
  run rcli -n 0 exists 'godislock:{sockdb}:fence'
  assert_output 0
}

@test "a missing unix socket is 69" {
  run --separate-stderr "$GODISLOCK" run --url "unix://$REDIS_DIR/nope.sock" \
    --name sock -- true
  assert_equal "$status" 69
  assert_regex "$stderr" "^godislock: error: cannot connect to \
unix://$REDIS_DIR/nope.sock: "
}

@test "redis://127.0.0.1:PORT/3 uses database 3" {
  run "$GODISLOCK" run --url "redis://127.0.0.1:$REDIS_PORT/3" --name db3 -- \
    sh -c "$exists_in_db" sh "$REDIS_PORT" 3
  assert_success
  assert_output 1
  # Not in database 0 meanwhile.
  run "$GODISLOCK" run --url "redis://127.0.0.1:$REDIS_PORT/3" --name db3 -- \
    sh -c "$exists_in_db" sh "$REDIS_PORT" 0
  assert_output 0
  # The fence key stayed in database 3 only; no lock key anywhere.
  run rcli -n 3 exists 'godislock:{db3}:fence'
  assert_output 1
  run rcli -n 0 exists 'godislock:{db3}:fence'
  assert_output 0
  assert_no_lock_key godislock: 3
  assert_no_lock_key
}

@test "a database the server does not have is a configuration error (64)" {
  run --separate-stderr "$GODISLOCK" run \
    --url "redis://127.0.0.1:$REDIS_PORT/20" --name db20 -- true
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: cannot select database 20 on \
redis://127.0.0.1:$REDIS_PORT/20: ERR DB index is out of range"
}

@test "IPv6: redis://[::1]:PORT" {
  stop_redis
  start_redis --bind "127.0.0.1 ::1"
  if ! redis-cli -h ::1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    skip "the server does not listen on ::1 (IPv6 unavailable)"
  fi
  run --separate-stderr "$GODISLOCK" run -v --url "redis://[::1]:$REDIS_PORT" \
    --name v6 -- sh -c "$exists_in_db" sh "$REDIS_PORT" 0
  assert_success
  assert_output 1
  assert_regex "$stderr" "lock 'v6' on redis://\[::1\]:$REDIS_PORT,"
  assert_no_lock_key
}

@test "redis://localhost:PORT works" {
  run "$GODISLOCK" run --url "redis://localhost:$REDIS_PORT" --name lh -- \
    sh -c "$exists_in_db" sh "$REDIS_PORT" 0
  assert_success
  assert_output 1
}

@test "a user name in the URL authenticates as that ACL user" {
  rcli acl setuser alice on '>alice-pw' '~*' '&*' '+@all' >/dev/null
  rcli acl setuser default off >/dev/null
  # The password from the environment, the user from the URL.
  GODISLOCK_PASSWORD=alice-pw run --separate-stderr "$GODISLOCK" run \
    --url "redis://alice:@127.0.0.1:$REDIS_PORT" --name acl -- echo ran
  assert_success
  assert_output ran
  assert_equal "$stderr" ""
  # Both in the URL, percent-encoded; warns.
  run --separate-stderr "$GODISLOCK" run \
    --url "redis://alice:alice%2Dpw@127.0.0.1:$REDIS_PORT" --name acl -- \
    echo ran
  assert_success
  assert_regex "$stderr" '^godislock: warning: .*password in the URL'
  # The wrong user is refused.
  GODISLOCK_PASSWORD=alice-pw run "$GODISLOCK" run \
    --url "redis://bob:@127.0.0.1:$REDIS_PORT" --name acl -- echo ran
  assert_equal "$status" 69
  refute_output --partial ran
}

@test "a percent-encoded password with special characters" {
  stop_redis
  start_redis --requirepass 'p@ss:w/rd'
  run "$GODISLOCK" run -q \
    --url "redis://:p%40ss%3Aw%2Frd@127.0.0.1:$REDIS_PORT" --name pct -- \
    echo ran
  assert_success
  assert_output ran
  # The same password from a file, taken literally.
  printf 'p@ss:w/rd\n' >"$BATS_TEST_TMPDIR/pw"
  run "$GODISLOCK" run --password-file "$BATS_TEST_TMPDIR/pw" --name pct -- \
    echo ran
  assert_success
  assert_output ran
}

@test "GODISLOCK_URL is honoured" {
  GODISLOCK_URL="redis://127.0.0.1:$REDIS_PORT/2" run "$GODISLOCK" run \
    --name env -- sh -c "$exists_in_db" sh "$REDIS_PORT" 2
  assert_success
  assert_output 1
  # An unreachable GODISLOCK_URL is used, not the default.
  local port
  port=$(free_port)
  GODISLOCK_URL="redis://127.0.0.1:$port" run --separate-stderr "$GODISLOCK" \
    run --name env -- true
  assert_equal "$status" 69
  assert_regex "$stderr" "cannot connect to redis://127.0.0.1:$port:"
}

@test "--url wins over GODISLOCK_URL" {
  local port
  port=$(free_port)
  GODISLOCK_URL="redis://127.0.0.1:$port" run "$GODISLOCK" run \
    --url "redis://127.0.0.1:$REDIS_PORT/5" --name env -- \
    sh -c "$exists_in_db" sh "$REDIS_PORT" 5
  assert_success
  assert_output 1
  # An invalid GODISLOCK_URL does not matter when --url is given...
  GODISLOCK_URL="bogus" run "$GODISLOCK" run \
    --url "redis://127.0.0.1:$REDIS_PORT" --name env -- echo ran
  assert_success
  assert_output ran
  # ...and is an error when it is used.
  GODISLOCK_URL="bogus" run --separate-stderr "$GODISLOCK" run --name env \
    -- echo ran
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: invalid Redis URL: missing \
scheme (expected redis://, rediss://, redis-sentinel://, redis-cluster://, unix://, etcd:// or etcds://)"
}

@test "--prefix moves every key" {
  run "$GODISLOCK" run --prefix 'app1/' --name pfx -- \
    sh -c 'redis-cli -p "$1" exists "app1/{pfx}"' sh "$REDIS_PORT"
  assert_success
  assert_output 1
  run rcli exists 'app1/{pfx}:fence'
  assert_output 1
  assert_no_lock_key 'app1/'
  run rcli --scan --pattern 'godislock:*'
  assert_output ""
}
