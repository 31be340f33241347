#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The rows of the exit-code table that are Redis's own or need no server
# (64 usage, 65 a key godislock did not make, 69 Redis unavailable), with
# the exact one-line error message and no lock key left behind on failure.
# The command's own status, 75, 79, 126 and 127 are core scenarios, run
# against Redis and etcd: core/scenarios.bats.
bats_require_minimum_version 1.5.0
load helpers

setup() {
  unset GODISLOCK_PASSWORD REDISCLI_AUTH
  start_redis
}

# assert_one_line_error TEXT: stderr is exactly "godislock: error: TEXT".
assert_one_line_error() {
  assert_equal "$stderr" "godislock: error: $1"
}

# --- 64: usage and configuration errors ---

@test "64: no command" {
  run --separate-stderr "$GODISLOCK" run --name ec
  assert_equal "$status" 64
  assert_one_line_error "no command given (put it after --, or use -c)"
  run --separate-stderr "$GODISLOCK" run --name ec --
  assert_equal "$status" 64
  assert_one_line_error "no command given (put it after --, or use -c)"
  assert_no_lock_key
}

@test "64: missing subcommand" {
  run --separate-stderr "$GODISLOCK"
  assert_equal "$status" 64
  assert_one_line_error "missing subcommand (try 'godislock run --help')"
}

@test "64: unknown option" {
  run --separate-stderr "$GODISLOCK" run --bogus -- true
  assert_equal "$status" 64
  assert_equal "${#stderr_lines[@]}" 1
  assert_regex "$stderr" '^godislock: error: .*--bogus'
  assert_no_lock_key
}

@test "64: --ttl 30x names the option and the value" {
  run --separate-stderr "$GODISLOCK" run --ttl 30x -- true
  assert_equal "$status" 64
  assert_one_line_error \
    "invalid value '30x' for --ttl: unknown unit (use ms, s, m or h)"
  assert_no_lock_key
}

@test "64: --ttl 2ms is below the minimum" {
  run --separate-stderr "$GODISLOCK" run --ttl 2ms -- true
  assert_equal "$status" 64
  assert_one_line_error "--ttl 2ms is below the minimum of 3ms"
  assert_no_lock_key
}

@test "--ttl 7ms, the smallest TTL with room for the default --kill-after, is accepted" {
  run --separate-stderr "$GODISLOCK" run --ttl 7ms --name ec -- true
  # A 7 ms lease may really be lost on a loaded machine (79); it must not
  # be refused (64).
  [[ "$status" -eq 0 || "$status" -eq 79 ]]
  refute_regex "$stderr" 'does not fit'
}

# A --ttl below 7ms without --kill-after is refused with a message about
# the TTL alone (not about a --kill-after the user never gave), naming the
# smallest TTL that works.
@test "a --ttl too small for the default grace names neither --kill-after nor a wrong minimum" {
  local ttl
  for ttl in 3ms 6ms; do
    run --separate-stderr "$GODISLOCK" run --ttl "$ttl" --name ec -- true
    assert_equal "$status" 64
    assert_equal "${#stderr_lines[@]}" 1
    assert_regex "$stderr" "^godislock: error: .*--ttl $ttl"
    refute_regex "$stderr" '--kill-after [0-9]'
    assert_regex "$stderr" 'use --ttl 7ms or more'
  done
  # With an explicit --kill-after the message names it, rightly.
  run --separate-stderr "$GODISLOCK" run --ttl 3ms --kill-after 0 --name ec \
    -- true
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: --kill-after 0s does not fit in \
--ttl 3ms: the command could not be stopped before the lease expires (use \
--ttl 7ms or more)"
}

@test "64: -E 300 is out of range" {
  run --separate-stderr "$GODISLOCK" run -E 300 -- true
  assert_equal "$status" 64
  assert_equal "${#stderr_lines[@]}" 1
  assert_regex "$stderr" "^godislock: error: invalid value '300' for --conflict-exit-code"
  assert_no_lock_key
}

@test "64: -n with --wait 5" {
  run --separate-stderr "$GODISLOCK" run -n --wait 5 -- true
  assert_equal "$status" 64
  assert_one_line_error "--nonblock and --wait conflict: use one of them"
  assert_no_lock_key
}

@test "64: -v with -q" {
  run --separate-stderr "$GODISLOCK" run -v -q -- true
  assert_equal "$status" 64
  assert_one_line_error "--verbose and --quiet conflict: use one of them"
}

@test "64: -c with a command" {
  run --separate-stderr "$GODISLOCK" run -c 'echo hi' -- echo hi
  assert_equal "$status" 64
  assert_one_line_error "-c and a command after -- conflict: use one of them"
  assert_output ""
  assert_no_lock_key
}

@test "64: invalid URL" {
  run --separate-stderr "$GODISLOCK" run --url 'http://127.0.0.1:1' -- true
  assert_equal "$status" 64
  assert_one_line_error "invalid Redis URL: unknown scheme 'http' (expected \
redis://, rediss://, redis-sentinel://, redis-cluster://, unix://, etcd:// or etcds://)"
  run --separate-stderr "$GODISLOCK" run --url "redis://127.0.0.1:99999" \
    -- true
  assert_equal "$status" 64
  assert_one_line_error \
    "invalid Redis URL: port '99999' is not a number from 1 to 65535"
  assert_no_lock_key
}

# --- 65: a key godislock did not make ---

@test "65: lock key without a TTL is left alone" {
  rcli set 'godislock:{k}' x
  run --separate-stderr "$GODISLOCK" run --name k -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 65
  assert_one_line_error "lock 'k': its key exists without a TTL (not made by \
godislock, or stale); left alone: delete it if it is stale"
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  run rcli get 'godislock:{k}'
  assert_output x
  run rcli pttl 'godislock:{k}'
  assert_output -1
  # Nothing else was created.
  run rcli --scan --pattern 'godislock:*'
  assert_output 'godislock:{k}'
}

@test "65: lock key of the wrong type is left alone" {
  rcli hset 'godislock:{k}' field value
  run --separate-stderr "$GODISLOCK" run --name k -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 65
  assert_one_line_error "lock 'k': key 'godislock:{k}' holds a hash, not a lock; left \
alone (use another --name or --prefix)"
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  run rcli type 'godislock:{k}'
  assert_output hash
  run rcli hget 'godislock:{k}' field
  assert_output value
  run rcli --scan --pattern 'godislock:*'
  assert_output 'godislock:{k}'
}

# --- 69: Redis unavailable ---

@test "69: nothing listens on the port; returns within the connect timeout" {
  local port start elapsed
  port=$(free_port)
  start=$(mono_ms)
  run --separate-stderr "$GODISLOCK" run --name ec --connect-timeout 1s \
    --url "redis://127.0.0.1:$port" -- touch "$BATS_TEST_TMPDIR/ran"
  elapsed=$(($(mono_ms) - start))
  assert_equal "$status" 69
  assert_one_line_error \
    "cannot connect to redis://127.0.0.1:$port: Connection refused"
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  ((elapsed < 8000))
  assert_no_lock_key
}

@test "69: a server that does not answer; bounded time, no key once it resumes" {
  local start elapsed fence
  # Once, so that the scripts are cached and the late acquire would work.
  "$GODISLOCK" run --name ec -- true
  fence=$(rcli get 'godislock:{ec}:fence')
  kill -STOP "$REDIS_PID"
  start=$(mono_ms)
  run --separate-stderr "$GODISLOCK" run --name ec --connect-timeout 1s \
    -- touch "$BATS_TEST_TMPDIR/ran"
  elapsed=$(($(mono_ms) - start))
  kill -CONT "$REDIS_PID"
  assert_equal "$status" 69
  assert_equal "${#stderr_lines[@]}" 1
  assert_regex "$stderr" \
    "^godislock: error: redis://127.0.0.1:$REDIS_PORT: (no reply in time|.*timed out)"
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  # One timed-out acquire plus one release try of 1 s each.
  ((elapsed >= 800 && elapsed < 8000))
  # The acquire still queued in the server runs after it resumes (the fence
  # moves on); the release sent after it must delete the key again.
  fence_moved() { [[ "$(rcli get 'godislock:{ec}:fence')" != "$1" ]]; }
  wait_for 5 fence_moved "$fence"
  wait_for 5 assert_no_lock_key
}

@test "69: wrong password; no password" {
  stop_redis
  start_redis --requirepass s3cret
  GODISLOCK_PASSWORD=wrong run --separate-stderr "$GODISLOCK" run --name ec \
    -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 69
  assert_equal "${#stderr_lines[@]}" 1
  assert_regex "$stderr" '^godislock: error: .*(WRONGPASS|authentication)'
  refute_regex "$stderr" 'wrong'
  run --separate-stderr "$GODISLOCK" run --name ec \
    -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 69
  assert_equal "${#stderr_lines[@]}" 1
  assert_regex "$stderr" '^godislock: error: .*NOAUTH'
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  run rcli --scan --pattern 'godislock:*'
  assert_output ""
}

@test "the right password works via GODISLOCK_PASSWORD, REDISCLI_AUTH and --password-file" {
  stop_redis
  start_redis --requirepass s3cret
  GODISLOCK_PASSWORD=s3cret run "$GODISLOCK" run --name ec -- echo one
  assert_success
  assert_output one
  REDISCLI_AUTH=s3cret run "$GODISLOCK" run --name ec -- echo two
  assert_success
  assert_output two
  printf 's3cret\n' >"$BATS_TEST_TMPDIR/pw"
  run "$GODISLOCK" run --name ec --password-file "$BATS_TEST_TMPDIR/pw" \
    -- echo three
  assert_success
  assert_output three
  # --password-file wins over a wrong password in the environment.
  GODISLOCK_PASSWORD=wrong run "$GODISLOCK" run --name ec \
    --password-file "$BATS_TEST_TMPDIR/pw" -- echo four
  assert_success
  assert_output four
  run rcli --scan --pattern 'godislock:*'
  refute_line 'godislock:{ec}'
}

@test "64: unreadable or empty --password-file" {
  run --separate-stderr "$GODISLOCK" run --name ec \
    --password-file "$BATS_TEST_TMPDIR/missing" -- true
  assert_equal "$status" 64
  assert_regex "$stderr" \
    "^godislock: error: cannot read --password-file '$BATS_TEST_TMPDIR/missing': "
  : >"$BATS_TEST_TMPDIR/empty"
  run --separate-stderr "$GODISLOCK" run --name ec \
    --password-file "$BATS_TEST_TMPDIR/empty" -- true
  assert_equal "$status" 64
  assert_one_line_error "--password-file '$BATS_TEST_TMPDIR/empty' is empty"
}
