#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# What godislock says: -v debug lines (never a password), warnings, -q,
# derived lock names, --help and --version.
bats_require_minimum_version 1.5.0
load helpers

setup() {
  unset GODISLOCK_PASSWORD REDISCLI_AUTH
  start_redis
}

@test "-v prints debug lines with the lock name and the URL" {
  run --separate-stderr "$GODISLOCK" run -v --name vname --ttl 9s -- true
  assert_success
  assert_output ""
  # Every line is a debug line.
  run grep -vc '^godislock: debug: ' <<<"$stderr"
  assert_output 0
  run grep -F "godislock: debug: lock 'vname' on \
redis://127.0.0.1:$REDIS_PORT, prefix 'godislock:', ttl 9s, wait forever" \
    <<<"$stderr"
  assert_success
  assert_regex "$stderr" "acquired lock 'vname' with fence [0-9]+"
  assert_regex "$stderr" "started 'true' as pid [0-9]+"
  assert_regex "$stderr" "released lock 'vname'; command exited with 0"
}

@test "without -v a successful run prints nothing on stderr" {
  run --separate-stderr "$GODISLOCK" run --name vname -- echo out
  assert_success
  assert_output out
  assert_equal "$stderr" ""
}

@test "-v shows what a waiter does" {
  start_holder vwait
  run --separate-stderr "$GODISLOCK" run -v --name vwait --wait 300ms -- true
  assert_equal "$status" 75
  assert_regex "$stderr" "wait 300ms"
  assert_regex "$stderr" "subscribed to release announcements"
  assert_regex "$stderr" "waiting for its release"
  assert_regex "$stderr" "lock 'vwait' not acquired: wait time ran out"
  run --separate-stderr "$GODISLOCK" run -v --name vwait -n -- true
  assert_equal "$status" 75
  assert_regex "$stderr" "wait none"
  assert_regex "$stderr" "lock 'vwait' not acquired: it is held"
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
}

@test "-v with GODISLOCK_PASSWORD never prints the password" {
  stop_redis
  start_redis --requirepass 'pa55word-XYZ'
  GODISLOCK_PASSWORD=pa55word-XYZ run --separate-stderr "$GODISLOCK" run -v \
    --name secret -- echo ran
  assert_success
  assert_output ran
  assert_regex "$stderr" "lock 'secret' on redis://127.0.0.1:$REDIS_PORT,"
  refute_regex "$stderr" 'pa55word'
  refute_regex "$stderr" 'warning'
}

@test "password in --url: works, warns, -v shows *** and never the password" {
  stop_redis
  start_redis --requirepass 'pa55word-XYZ'
  local url="redis://:pa55word-XYZ@127.0.0.1:$REDIS_PORT"
  run --separate-stderr "$GODISLOCK" run -v --url "$url" --name secret \
    -- echo ran
  assert_success
  assert_output ran
  assert_regex "${stderr_lines[0]}" "^godislock: warning: .*password in the \
URL.*; use GODISLOCK_PASSWORD or --password-file$"
  run grep -F "on redis://:***@127.0.0.1:$REDIS_PORT," <<<"$stderr"
  assert_success
  [[ "$stderr" != *pa55word* ]]
  # redis-cli's form with the password as the user name, and a named user.
  run --separate-stderr "$GODISLOCK" run -v \
    --url "redis://pa55word-XYZ@127.0.0.1:$REDIS_PORT" --name secret -- true
  assert_success
  [[ "$stderr" == *"redis://:***@127.0.0.1:$REDIS_PORT"* ]]
  [[ "$stderr" != *pa55word* ]]
  run --separate-stderr "$GODISLOCK" run -v \
    --url "redis://default:pa55word-XYZ@127.0.0.1:$REDIS_PORT" --name secret \
    -- true
  assert_success
  [[ "$stderr" == *"redis://default:***@127.0.0.1:$REDIS_PORT"* ]]
  [[ "$stderr" != *pa55word* ]]
}

@test "a wrong password in the URL is not printed in the error" {
  stop_redis
  start_redis --requirepass 'pa55word-XYZ'
  run --separate-stderr "$GODISLOCK" run -v \
    --url "redis://:wr0ng-PW-987@127.0.0.1:$REDIS_PORT" --name secret -- true
  assert_equal "$status" 69
  assert_regex "$stderr" "godislock: error: authentication to \
redis://:\*\*\*@127.0.0.1:$REDIS_PORT failed"
  [[ "$stderr" != *wr0ng-PW* ]]
}

@test "-q suppresses the password-in-URL warning, not errors" {
  stop_redis
  start_redis --requirepass 'pa55word-XYZ'
  run --separate-stderr "$GODISLOCK" run -q \
    --url "redis://:pa55word-XYZ@127.0.0.1:$REDIS_PORT" --name secret \
    -- echo ran
  assert_success
  assert_output ran
  assert_equal "$stderr" ""
  run --separate-stderr "$GODISLOCK" run -q --ttl 1ms -- true
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: --ttl 1ms is below the minimum \
of 3ms"
}

@test "without --name, -v shows the derived name; the same command derives the same name" {
  run --separate-stderr "$GODISLOCK" run -v -- echo hello world
  assert_success
  local name1 name2 name3
  name1=$(sed -n "s/^godislock: debug: lock '\([^']*\)' (derived from the \
command) on .*/\1/p" <<<"$stderr")
  [[ "$name1" =~ ^cmd:echo:[0-9a-f]{16}$ ]]
  run --separate-stderr "$GODISLOCK" run -v -- echo hello world
  name2=$(sed -n "s/^godislock: debug: lock '\([^']*\)' (derived from the \
command) on .*/\1/p" <<<"$stderr")
  assert_equal "$name2" "$name1"
  # Other words, another name; word boundaries count.
  run --separate-stderr "$GODISLOCK" run -v -- echo 'hello world'
  name3=$(sed -n "s/^godislock: debug: lock '\([^']*\)' (derived from the \
command) on .*/\1/p" <<<"$stderr")
  [[ "$name3" =~ ^cmd:echo:[0-9a-f]{16}$ ]]
  [[ "$name3" != "$name1" ]]
  # The command sees the same name in GODISLOCK_NAME.
  local expected
  run --separate-stderr "$GODISLOCK" run -v -- sh -c 'echo "$GODISLOCK_NAME"'
  expected=$(sed -n "s/^godislock: debug: lock '\([^']*\)' (derived.*/\1/p" \
    <<<"$stderr")
  assert_equal "$output" "$expected"
  [[ "$expected" =~ ^cmd:sh:[0-9a-f]{16}$ ]]
}

@test "the derived name makes the same command exclusive" {
  local script=': >"$1/started"; while [ ! -e "$1/go" ]; do sleep 0.02; done'
  "$GODISLOCK" run -- sh -c "$script" sh "$BATS_TEST_TMPDIR" 3>&- &
  local holder=$!
  wait_for 10 test -e "$BATS_TEST_TMPDIR/started"
  run "$GODISLOCK" run -n -- sh -c "$script" sh "$BATS_TEST_TMPDIR"
  assert_equal "$status" 75
  # A different command (other arguments) is not blocked.
  run "$GODISLOCK" run -n -- sh -c 'echo free' sh "$BATS_TEST_TMPDIR"
  assert_success
  assert_output free
  run "$GODISLOCK" run -n -- echo other
  assert_success
  assert_output other
  : >"$BATS_TEST_TMPDIR/go"
  wait_job 30 "$holder"
  assert_equal "$WAIT_STATUS" 0
  assert_no_lock_key
}

@test "-c derives its name from sh -c STRING" {
  run --separate-stderr "$GODISLOCK" run -v -c 'echo "$GODISLOCK_NAME"'
  assert_success
  [[ "$output" =~ ^cmd:sh:[0-9a-f]{16}$ ]]
  # The same as the equivalent sh -c command line.
  run "$GODISLOCK" run -- sh -c 'echo "$GODISLOCK_NAME"'
  local other=$output
  run "$GODISLOCK" run -c 'echo "$GODISLOCK_NAME"'
  assert_output "$other"
}

@test "--help lists every long option and the exit codes" {
  run --separate-stderr "$GODISLOCK" run --help
  assert_success
  assert_equal "$stderr" ""
  local opt
  for opt in --help --name --ttl --wait --timeout --nonblock --nb --no-wait \
    --conflict-exit-code --url --password-file --prefix --connect-timeout \
    --kill-signal --kill-after --command --exclusive --close --verbose \
    --quiet; do
    assert_output --partial -- "$opt"
  done
  local code
  for code in 128+N 64 65 69 70 75 79 126 127; do
    assert_line --regexp "^  ($code|126 / 127) "
  done
  assert_output --partial "Usage: godislock run [OPTIONS] -- COMMAND"
  # The top level has them too, and -h is the same as --help.
  run --separate-stderr "$GODISLOCK" --help
  assert_success
  assert_output --partial "--version"
  assert_output --partial "run"
  assert_line --regexp '^  79 '
  run "$GODISLOCK" run -h
  assert_success
  assert_output --partial -- "--conflict-exit-code"
}

@test "--help and --version touch no Redis" {
  run "$GODISLOCK" run --url 'redis://127.0.0.1:1' --help
  assert_success
  run rcli dbsize
  assert_output 0
}

@test "--version prints one line on stdout" {
  run --separate-stderr "$GODISLOCK" --version
  assert_success
  assert_equal "${#lines[@]}" 1
  assert_output --regexp '^godislock [0-9]+\.[0-9]+\.[0-9]+'
  assert_equal "$stderr" ""
}
