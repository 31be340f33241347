#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Bad input on etcd: malformed URLs and options it cannot do (64), a
# cluster that cannot be used (69): nothing listening, a server that is not
# etcd, wrong credentials, authentication off or on, a user without access
# to the prefix. Each is one line naming what was wrong; the command never
# runs.
bats_require_minimum_version 1.5.0
load helpers
load etcd_helpers

setup() {
  MARK=$BATS_TEST_TMPDIR/ran
}

teardown() {
  terminate_all_children
  stop_etcd
  stop_redis
}

# fails CODE MESSAGE-REGEX ARGS...: godislock ARGS exits CODE with one
# stderr line matching the regex, and the command did not run.
fails() {
  local code=$1 re=$2
  shift 2
  run --separate-stderr "$GODISLOCK" "$@"
  assert_equal "$status" "$code"
  assert_equal "${#stderr_lines[@]}" 1
  assert_regex "$stderr" "^godislock: error: $re"
  [[ ! -e "$MARK" ]]
}

@test "etcd bad input: malformed URLs are usage errors (64)" {
  fails 64 "invalid etcd URL: missing host" run --url etcd:// -- touch "$MARK"
  fails 64 "invalid etcd URL: empty member in the list of etcd hosts" \
    run --url etcd://a:1,,b:2 -- touch "$MARK"
  fails 64 "invalid etcd URL: port 'x' is not a number from 1 to 65535" \
    run --url etcd://a:2379,b:x -- touch "$MARK"
  fails 64 "invalid etcd URL: an etcd URL has no path or query" \
    run --url etcd://a:2379/0 -- touch "$MARK"
  fails 64 "invalid etcd URL: IPv6 address must be in brackets" \
    status --url etcd://::1
  GODISLOCK_URL=etcd://h:0 fails 64 "invalid etcd URL: port '0'" \
    release --force x
}

@test "etcd bad input: --limit and --shared are not supported on etcd (64)" {
  start_etcd
  fails 64 "--limit is not supported on etcd" \
    run --url "etcd://127.0.0.1:$ETCD_CLIENT_PORT" --limit 2 -- touch "$MARK"
  fails 64 "--shared is not supported on etcd" \
    run --url "etcd://127.0.0.1:$ETCD_CLIENT_PORT" --shared -- touch "$MARK"
}

@test "etcd bad input: nothing listening (69)" {
  local port
  port=$(free_port)
  fails 69 "etcd 127.0.0.1:$port: .*(connect|Connection refused)" \
    run --url "etcd://127.0.0.1:$port" -- touch "$MARK"
  fails 69 "etcd 127.0.0.1:$port: " status --url "etcd://127.0.0.1:$port" x
}

@test "etcd bad input: a Redis server on the port is not etcd (69)" {
  start_redis
  fails 69 "etcd 127.0.0.1:$REDIS_PORT: not an etcd JSON gateway" \
    run --url "etcd://127.0.0.1:$REDIS_PORT" -- touch "$MARK"
}

@test "etcd bad input: an HTTP server that is not etcd (69)" {
  local port dir=$BATS_TEST_TMPDIR/www
  mkdir -p "$dir"
  port=$(free_port)
  "$PY3" -m http.server --bind 127.0.0.1 --directory "$dir" "$port" \
    >/dev/null 2>&1 3>&- &
  wait_for 10 curl -s --noproxy '*' -o /dev/null "http://127.0.0.1:$port/"
  fails 69 "etcd 127.0.0.1:$port: not an etcd JSON gateway \\(HTTP 501" \
    run --url "etcd://127.0.0.1:$port" -- touch "$MARK"
}

@test "etcd bad input: a second member is used when the first is down" {
  start_etcd
  local port
  port=$(free_port)
  run "$GODISLOCK" run --url "etcd://127.0.0.1:$port,127.0.0.1:$ETCD_CLIENT_PORT" \
    -- touch "$MARK"
  assert_success
  [[ -e "$MARK" ]]
}

@test "etcd bad input: credentials (wrong password, none, unknown user, no auth)" {
  start_etcd
  local url="etcd://alice@127.0.0.1:$ETCD_CLIENT_PORT"
  # A user but authentication is off: etcd refuses to authenticate.
  GODISLOCK_PASSWORD=alice-pw fails 69 "etcd 127.0.0.1:$ETCD_CLIENT_PORT: \
authentication as alice failed: " run --url "$url" -- touch "$MARK"
  enable_etcd_auth alice alice-pw godislock:
  GODISLOCK_PASSWORD=wrong fails 69 "etcd 127.0.0.1:$ETCD_CLIENT_PORT: \
authentication as alice failed: .*authentication failed" \
    run --url "$url" -- touch "$MARK"
  # Authentication on, no user at all.
  fails 69 "etcd 127.0.0.1:$ETCD_CLIENT_PORT: .*user name is empty" \
    run --url "etcd://127.0.0.1:$ETCD_CLIENT_PORT" -- touch "$MARK"
  # A user without a password is a usage error.
  fails 64 "etcd user 'alice' needs a password" run --url "$url" -- true
  # The password never shows, even with -v.
  run --separate-stderr env GODISLOCK_PASSWORD=Zq9wrongPw "$GODISLOCK" run -v \
    --url "$url" -- true
  assert_equal "$status" 69
  [[ "$stderr" != *Zq9wrongPw* ]]
  # The right one works, from the environment or a file.
  run env GODISLOCK_PASSWORD=alice-pw "$GODISLOCK" run --url "$url" -- \
    touch "$MARK"
  assert_success
  printf 'alice-pw\n' >"$BATS_TEST_TMPDIR/pw"
  run "$GODISLOCK" run --url "$url" --password-file "$BATS_TEST_TMPDIR/pw" \
    -- true
  assert_success
}

@test "etcd bad input: a user without access to the prefix (69)" {
  start_etcd
  enable_etcd_auth bob bob-pw other/
  GODISLOCK_PASSWORD=bob-pw fails 69 \
    "etcd 127.0.0.1:$ETCD_CLIENT_PORT: .*permission denied" \
    run --url "etcd://bob@127.0.0.1:$ETCD_CLIENT_PORT" -- touch "$MARK"
  # Under a prefix it may use, it works.
  run env GODISLOCK_PASSWORD=bob-pw "$GODISLOCK" run --prefix other/ \
    --url "etcd://bob@127.0.0.1:$ETCD_CLIENT_PORT" -- touch "$MARK"
  assert_success
}

@test "etcd: an expired auth token is renewed while the lock is held" {
  # Simple tokens live --auth-token-ttl seconds (300 by default).
  ETCD_EXTRA_ARGS=(--auth-token-ttl 1)
  start_etcd
  enable_etcd_auth alice alice-pw godislock:
  # Refreshes every 3 s: each finds the token of the previous call expired.
  run --separate-stderr env GODISLOCK_PASSWORD=alice-pw "$GODISLOCK" run \
    --ttl 9s --url "etcd://alice@127.0.0.1:$ETCD_CLIENT_PORT" -- sleep 7
  assert_success
  assert_equal "$stderr" ""
}
