#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The bad-input catalogue: hostile arguments, environments and servers.
# Each test asserts the exact one-line message, the documented exit code,
# that no lock key is left behind and that the command never ran (it would
# create $MARK).
bats_require_minimum_version 1.5.0
load helpers

setup() {
  unset GODISLOCK_PASSWORD REDISCLI_AUTH GODISLOCK_NAME GODISLOCK_FENCE
  start_redis
  MARK=$BATS_TEST_TMPDIR/ran
  EXTRA_PIDS=()
}

teardown() {
  local pid
  for pid in "${EXTRA_PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  terminate_all_children
  stop_redis
}

# refused STATUS MESSAGE GODISLOCK-ARGS...: runs godislock with ARGS; its
# status is STATUS, its stderr exactly "godislock: error: MESSAGE", and the
# command (if any) did not run.
refused() {
  local want_status=$1 want=$2
  shift 2
  run "-$want_status" --separate-stderr "$GODISLOCK" "$@"
  assert_equal "$status" "$want_status"
  assert_equal "$stderr" "godislock: error: $want"
  assert_output ""
  assert_not_ran
}

assert_not_ran() {
  if [[ -e "$MARK" ]]; then
    echo "the command ran" >&2
    return 1
  fi
}

# Nothing at all was written to Redis (the failure came before it).
assert_db_empty() {
  run rcli dbsize
  assert_output 0
}

# usage_error MESSAGE ARGS...: exit 64, exact message, Redis untouched.
usage_error() {
  local want=$1
  shift
  refused 64 "$want" "$@"
  assert_db_empty
}

# start_listener KIND: a python listener on a free loopback port (sets
# LISTEN_PORT): "silent" accepts and never answers, "full" never accepts
# and its backlog is full (connects time out), "http" answers every
# request with an HTTP 400.
start_listener() {
  local kind=$1 portfile=$BATS_TEST_TMPDIR/listen.port
  rm -f "$portfile"
  "$PY3" -S -c '
import os, socket, sys, time
kind, portfile = sys.argv[1], sys.argv[2]
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
keep = []
if kind == "full":
    s.listen(0)
    for _ in range(4):  # fill the accept queue: later SYNs are dropped
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        keep.append(c)
    time.sleep(0.2)
else:
    s.listen(16)
with open(portfile + ".tmp", "w") as f:
    f.write(str(port))
os.rename(portfile + ".tmp", portfile)
while True:
    if kind == "full":
        time.sleep(1)
        continue
    c, _ = s.accept()
    if kind == "http":
        c.recv(4096)
        c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                  b"Connection: close\r\n\r\n")
        c.close()
    else:
        keep.append(c)
' "$kind" "$portfile" 3>&- &
  EXTRA_PIDS+=($!)
  wait_for 10 test -e "$portfile"
  LISTEN_PORT=$(cat "$portfile")
}

# start_second_redis ARGS...: another private redis-server (sets
# SECOND_PORT).
start_second_redis() {
  local dir=$BATS_TEST_TMPDIR/second port _
  mkdir -p "$dir"
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    rm -f "$dir/redis.pid"
    redis-server --port "$port" --bind 127.0.0.1 --save '' \
      --appendonly no --dir "$dir" --daemonize yes \
      --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "$@" \
      >/dev/null 2>&1 || continue
    if wait_for 5 test -s "$dir/redis.pid" &&
      wait_for 5 redis_answers "$port"; then
      EXTRA_PIDS+=("$(cat "$dir/redis.pid")")
      SECOND_PORT=$port
      return 0
    fi
  done
  echo "cannot start a second redis-server" >&2
  return 1
}

redis_answers() {
  [[ "$(redis-cli -p "$1" ping 2>/dev/null)" =~ ^(PONG|NOAUTH) ]]
}

# ---------------------------------------------------------------- command

@test "bad input: no command" {
  usage_error "no command given (put it after --, or use -c)" \
    run --name bi
}

@test "bad input: -- and nothing after it" {
  usage_error "no command given (put it after --, or use -c)" \
    run --name bi --
}

@test "bad input: empty command name" {
  usage_error "empty command name" run --name bi -- ''
}

@test "bad input: empty -c shell command" {
  usage_error "-c needs a non-empty shell command" run --name bi -c ''
}

@test "bad input: command not found in PATH: 127" {
  refused 127 \
    "cannot run 'godislock-no-such-command': command not found" \
    run --name bi -- godislock-no-such-command "$MARK"
  assert_db_empty
}

@test "bad input: command path does not exist: 127" {
  refused 127 "cannot run '/nonexistent/dir/cmd': command not found" \
    run --name bi -- /nonexistent/dir/cmd
  assert_db_empty
}

@test "bad input: command not executable (mode 644): 126" {
  printf '#!/bin/sh\ntouch "$1"\n' >"$BATS_TEST_TMPDIR/script"
  chmod 644 "$BATS_TEST_TMPDIR/script"
  refused 126 "cannot run '$BATS_TEST_TMPDIR/script': Permission denied" \
    run --name bi -- "$BATS_TEST_TMPDIR/script" "$MARK"
  assert_db_empty
}

@test "bad input: command is a directory: 126" {
  refused 126 "cannot run '$BATS_TEST_TMPDIR': Permission denied" \
    run --name bi -- "$BATS_TEST_TMPDIR"
  assert_db_empty
}

@test "bad input: script with a missing interpreter: 127, lock released" {
  # Found and executable, so this fails only at exec, after the lock was
  # taken: the lock must be released at once (not left to expire).
  printf '#!/nonexistent/interpreter\ntouch "$1"\n' \
    >"$BATS_TEST_TMPDIR/script"
  chmod 755 "$BATS_TEST_TMPDIR/script"
  refused 127 \
    "cannot run '$BATS_TEST_TMPDIR/script': No such file or directory" \
    run --name bi --ttl 60s -- "$BATS_TEST_TMPDIR/script" "$MARK"
  assert_no_lock_key
}

# ------------------------------------------------------------- durations

@test "bad input: --ttl 0" {
  usage_error "--ttl 0s is below the minimum of 3ms" \
    run --name bi --ttl 0 -- touch "$MARK"
}

@test "bad input: --ttl negative" {
  usage_error "invalid value '-5s' for --ttl: negative duration" \
    run --name bi --ttl -5s -- touch "$MARK"
}

@test "bad input: --ttl 30x (unknown unit)" {
  usage_error "invalid value '30x' for --ttl: unknown unit (use ms, s, m or h)" \
    run --name bi --ttl 30x -- touch "$MARK"
}

@test "bad input: --ttl 2ms (below 3ms)" {
  usage_error "--ttl 2ms is below the minimum of 3ms" \
    run --name bi --ttl 2ms -- touch "$MARK"
}

@test "bad input: --ttl absurdly large (overflow)" {
  usage_error "invalid value '999999999999h' for --ttl: out of range" \
    run --name bi --ttl 999999999999h -- touch "$MARK"
  usage_error "invalid value '99999999999999999999' for --ttl: out of range" \
    run --name bi --ttl 99999999999999999999 -- touch "$MARK"
}

@test "bad input: --ttl empty" {
  usage_error "invalid value '' for --ttl: empty duration" \
    run --name bi --ttl '' -- touch "$MARK"
}

@test "bad input: --ttl 5m30 (number without a unit after a unit)" {
  usage_error "invalid value '5m30' for --ttl: missing unit (use ms, s, m or h)" \
    run --name bi --ttl 5m30 -- touch "$MARK"
}

@test "bad input: --wait negative" {
  usage_error "invalid value '-1' for --wait: negative duration" \
    run --name bi --wait -1 -- touch "$MARK"
}

@test "bad input: --wait malformed" {
  usage_error "invalid value 'abc' for --wait: expected a number" \
    run --name bi --wait abc -- touch "$MARK"
  usage_error "invalid value '5q' for --wait: unknown unit (use ms, s, m or h)" \
    run --name bi --wait 5q -- touch "$MARK"
}

@test "bad input: --kill-after that does not fit in the TTL" {
  usage_error "--kill-after 1s does not fit in --ttl 1s: the command could \
not be stopped before the lease expires (use --kill-after 642ms or less, or \
use --ttl 1s552ms or more)" \
    run --name bi --ttl 1s --kill-after 1s -- touch "$MARK"
}

@test "bad input: --connect-timeout 0" {
  usage_error "--connect-timeout must be greater than 0" \
    run --name bi --connect-timeout 0 -- touch "$MARK"
}

# ------------------------------------------------------------ names, flags

@test "bad input: empty --name" {
  usage_error "--name must not be empty" run --name '' -- touch "$MARK"
}

@test "bad input: --name with control characters (NUL-like bytes)" {
  local name
  for name in $'a\tb' $'a\nb' $'a\x01b' $'a\x1b[31mb' $'a\x7fb'; do
    usage_error "--name must not contain control characters" \
      run --name "$name" -- touch "$MARK"
  done
}

@test "bad input: --name over the 256-byte cap (256 is accepted)" {
  local name
  name=$(printf 'n%.0s' {1..257})
  usage_error "--name is 257 bytes long; the limit is 256" \
    run --name "$name" -- touch "$MARK"
  # The cap counts bytes, not characters: 129 two-byte characters.
  usage_error "--name is 258 bytes long; the limit is 256" \
    run --name "$(printf '\xc3\xa9%.0s' {1..129})" -- touch "$MARK"
  run --separate-stderr "$GODISLOCK" run --name "${name:1}" -- touch "$MARK"
  assert_success
  assert_equal "$stderr" ""
  [[ -e "$MARK" ]]
  assert_no_lock_key
}

@test "bad input: --prefix with a control character" {
  usage_error "--prefix must be at most 256 bytes without control characters" \
    run --name bi --prefix $'p\n' -- touch "$MARK"
}

@test "bad input: conflicting flags" {
  usage_error "--nonblock and --wait conflict: use one of them" \
    run --name bi -n --wait 5 -- touch "$MARK"
  usage_error "--verbose and --quiet conflict: use one of them" \
    run --name bi -v -q -- touch "$MARK"
  usage_error "-c and a command after -- conflict: use one of them" \
    run --name bi -c "touch '$MARK'" -- touch "$MARK"
}

@test "bad input: --conflict-exit-code out of range" {
  usage_error "invalid value '256' for --conflict-exit-code: an exit status from 0 to 255" \
    run --name bi -E 256 -- touch "$MARK"
}

@test "bad input: unknown --kill-signal" {
  usage_error "invalid value 'SIGFOO' for --kill-signal: unknown signal" \
    run --name bi --kill-signal SIGFOO -- touch "$MARK"
}

# -------------------------------------------------------------------- URLs

@test "bad input: unknown URL scheme" {
  usage_error "invalid Redis URL: unknown scheme 'http' (expected redis://, \
rediss://, redis-sentinel://, redis-cluster://, unix://, etcd:// or etcds://)" run --name bi --url http://127.0.0.1:1 -- touch "$MARK"
  usage_error "invalid Redis URL: missing scheme (expected redis://, rediss://, \
redis-sentinel://, redis-cluster://, unix://, etcd:// or etcds://)" run --name bi --url 127.0.0.1:6379 -- touch "$MARK"
}

@test "bad input: GODISLOCK_URL from the environment is checked too" {
  GODISLOCK_URL=bogus usage_error "invalid Redis URL: missing scheme \
(expected redis://, rediss://, redis-sentinel://, redis-cluster://, unix://, etcd:// or etcds://)" run --name bi -- touch "$MARK"
}

@test "bad input: malformed percent-encoding" {
  usage_error "invalid Redis URL: malformed percent-encoding in user name" \
    run --name bi --url 'redis://us%zzer:pw@127.0.0.1:1' -- touch "$MARK"
  usage_error "invalid Redis URL: malformed percent-encoding in password" \
    run --name bi --url 'redis://user:p%4@127.0.0.1:1' -- touch "$MARK"
  usage_error "invalid Redis URL: malformed percent-encoding in host" \
    run --name bi --url 'redis://127.0.0.1%:1' -- touch "$MARK"
  usage_error "invalid Redis URL: malformed percent-encoding in socket path" \
    run --name bi --url 'unix:///tmp/x%2' -- touch "$MARK"
}

@test "bad input: percent-encoded NUL in the host or socket path" {
  usage_error "invalid Redis URL: invalid character in host" \
    run --name bi --url 'redis://127.0.0.1%00:6379' -- touch "$MARK"
  usage_error "invalid Redis URL: control character in socket path" \
    run --name bi --url 'unix:///tmp/a%00b.sock' -- touch "$MARK"
}

@test "bad input: port 0" {
  usage_error "invalid Redis URL: port '0' is not a number from 1 to 65535" \
    run --name bi --url redis://127.0.0.1:0 -- touch "$MARK"
}

@test "bad input: port 65536" {
  usage_error "invalid Redis URL: port '65536' is not a number from 1 to \
65535" run --name bi --url redis://127.0.0.1:65536 -- touch "$MARK"
}

@test "bad input: non-numeric port" {
  usage_error "invalid Redis URL: port 'abc' is not a number from 1 to 65535" \
    run --name bi --url redis://127.0.0.1:abc -- touch "$MARK"
  usage_error "invalid Redis URL: port '' is not a number from 1 to 65535" \
    run --name bi --url redis://127.0.0.1: -- touch "$MARK"
}

@test "bad input: IPv6 address without brackets" {
  usage_error "invalid Redis URL: IPv6 address must be in brackets, e.g. \
redis://[::1]:6379" run --name bi --url redis://::1:6379 -- touch "$MARK"
  usage_error "invalid Redis URL: unterminated '[' in IPv6 address" \
    run --name bi --url 'redis://[::1' -- touch "$MARK"
}

@test "bad input: database index out of range (client side)" {
  usage_error "invalid Redis URL: database index '1000001' is not a number \
from 0 to 1000000" \
    run --name bi --url "redis://127.0.0.1:$REDIS_PORT/1000001" -- touch "$MARK"
}

@test "bad input: database index out of range (server side, 16 databases)" {
  usage_error "cannot select database 99999 on \
redis://127.0.0.1:$REDIS_PORT/99999: ERR DB index is out of range" \
    run --name bi --url "redis://127.0.0.1:$REDIS_PORT/99999" -- touch "$MARK"
}

# ------------------------------------------------------------ unreachable

@test "bad input: connection refused: 69" {
  local port
  port=$(free_port)
  refused 69 "cannot connect to redis://127.0.0.1:$port: Connection refused" \
    run --name bi --url "redis://127.0.0.1:$port" -- touch "$MARK"
}

@test "bad input: unresolvable host: 69" {
  # In a private network namespace when possible, so that the lookup sends
  # nothing anywhere (its text is then EAI_AGAIN's).
  local pre=()
  if unshare -n true 2>/dev/null; then
    pre=(unshare -n)
  fi
  run --separate-stderr "${pre[@]}" "$GODISLOCK" run --name bi \
    --url redis://nonexistent.invalid:6379 -- touch "$MARK"
  assert_equal "$status" 69
  assert_regex "$stderr" "^godislock: error: cannot connect to \
redis://nonexistent.invalid:6379: cannot resolve host 'nonexistent.invalid': \
(Name or service not known|Temporary failure in name resolution|\
No address associated with hostname)$"
  assert_not_ran
}

@test "bad input: missing unix socket: 69" {
  refused 69 "cannot connect to unix://$BATS_TEST_TMPDIR/no.sock: No such \
file or directory" run --name bi --url "unix://$BATS_TEST_TMPDIR/no.sock" \
    -- touch "$MARK"
}

@test "bad input: connect timeout (accept queue full): 69 within the bound" {
  start_listener full
  local start elapsed
  start=$(mono_ms)
  refused 69 "cannot connect to redis://127.0.0.1:$LISTEN_PORT: connection \
timed out" run --name bi --connect-timeout 1s \
    --url "redis://127.0.0.1:$LISTEN_PORT" -- touch "$MARK"
  elapsed=$(($(mono_ms) - start))
  ((elapsed >= 900 && elapsed < 4000))
}

@test "bad input: server accepts and never answers: 69 within the bound" {
  start_listener silent
  local start elapsed
  start=$(mono_ms)
  refused 69 "redis://127.0.0.1:$LISTEN_PORT: no reply in time" \
    run --name bi --connect-timeout 1s \
    --url "redis://127.0.0.1:$LISTEN_PORT" -- touch "$MARK"
  elapsed=$(($(mono_ms) - start))
  # The acquire call, then the release by token of a key that may have been
  # taken: about two --connect-timeout.
  ((elapsed >= 900 && elapsed < 5000))
}

@test "bad input: a non-Redis server (HTTP 400) on the port: 69" {
  start_listener http
  refused 69 "redis://127.0.0.1:$LISTEN_PORT: not a Redis server? Protocol \
error, got \"H\" as reply type byte" \
    run --name bi --url "redis://127.0.0.1:$LISTEN_PORT" -- touch "$MARK"
}

# ------------------------------------------------------ auth, ACL, replica

@test "bad input: wrong password: 69" {
  start_second_redis --requirepass sekret
  GODISLOCK_PASSWORD=wrong refused 69 "authentication to \
redis://127.0.0.1:$SECOND_PORT failed: WRONGPASS invalid username-password \
pair or user is disabled." \
    run --name bi --url "redis://127.0.0.1:$SECOND_PORT" -- touch "$MARK"
  run redis-cli -p "$SECOND_PORT" -a sekret --no-auth-warning dbsize
  assert_output 0
}

@test "bad input: no password for a server that wants one: 69" {
  start_second_redis --requirepass sekret
  refused 69 "acquire script: NOAUTH Authentication required." \
    run --name bi --url "redis://127.0.0.1:$SECOND_PORT" -- touch "$MARK"
  run redis-cli -p "$SECOND_PORT" -a sekret --no-auth-warning dbsize
  assert_output 0
}

@test "bad input: ACL user without EVAL/EVALSHA: 69" {
  rcli acl setuser noeval on '>pw' '~*' '&*' '+@all' -eval -evalsha >/dev/null
  GODISLOCK_PASSWORD=pw refused 69 "acquire script: NOPERM this user has \
no permissions to run the 'evalsha' command: the ACL user lacks +evalsha \
(see godislock acl-rule)" \
    run --name bi --url "redis://noeval:@127.0.0.1:$REDIS_PORT" -- touch "$MARK"
  assert_db_empty
}

@test "bad input: ACL user without PUBLISH: 69 before the command runs" {
  rcli acl setuser nopub on '>pw' '~*' '&*' '+@all' -publish >/dev/null
  GODISLOCK_PASSWORD=pw run --separate-stderr "$GODISLOCK" run --name bi \
    --url "redis://nopub:@127.0.0.1:$REDIS_PORT" -- touch "$MARK"
  assert_equal "$status" 69
  assert_equal "${#stderr_lines[@]}" 1
  # NOPERM when asked outside a script, "can't run this command" inside.
  assert_regex "$stderr" \
    "^godislock: error: .*(NOPERM|can't run this command)"
  assert_not_ran
  assert_no_lock_key
}

@test "bad input: a read-only replica: 69" {
  start_second_redis --replicaof 127.0.0.1 "$REDIS_PORT"
  run --separate-stderr "$GODISLOCK" run --name bi \
    --url "redis://127.0.0.1:$SECOND_PORT" -- touch "$MARK"
  assert_equal "$status" 69
  # The server names the script by its SHA-1 and line.
  assert_regex "$stderr" "^godislock: error: acquire script: READONLY You \
can't write against a read only replica\. script: [0-9a-f]{40}, on \
@user_script:[0-9]+\.$"
  assert_not_ran
  assert_db_empty
}

# ----------------------------------------------------- keys not ours (65)

@test "bad input: the lock key holds a list (WRONGTYPE): 65, never deleted" {
  rcli rpush 'godislock:{bi}' a b >/dev/null
  refused 65 "lock 'bi': key 'godislock:{bi}' holds a list, not a lock; left alone (use \
another --name or --prefix)" run --name bi -- touch "$MARK"
  run rcli lrange 'godislock:{bi}' 0 -1
  assert_output $'a\nb'
  run rcli pttl 'godislock:{bi}'
  assert_output -1
  run rcli exists 'godislock:{bi}:fence'
  assert_output 0
}

@test "bad input: the lock key holds a hash: 65, never deleted" {
  rcli hset 'godislock:{bi}' f v >/dev/null
  refused 65 "lock 'bi': key 'godislock:{bi}' holds a hash, not a lock; left alone (use \
another --name or --prefix)" run --name bi -- touch "$MARK"
  run rcli hget 'godislock:{bi}' f
  assert_output v
}

@test "bad input: the lock key without a TTL: 65, never deleted" {
  rcli set 'godislock:{bi}' stale >/dev/null
  refused 65 "lock 'bi': its key exists without a TTL (not made by \
godislock, or stale); left alone: delete it if it is stale" \
    run --name bi -- touch "$MARK"
  run rcli get 'godislock:{bi}'
  assert_output stale
  run rcli pttl 'godislock:{bi}'
  assert_output -1
}

# ----------------------------------------------------------- password file

@test "bad input: --password-file missing" {
  usage_error "cannot read --password-file '$BATS_TEST_TMPDIR/nope': No such \
file or directory" run --name bi --password-file "$BATS_TEST_TMPDIR/nope" \
    -- touch "$MARK"
}

@test "bad input: --password-file empty (or only a newline)" {
  : >"$BATS_TEST_TMPDIR/pw"
  usage_error "--password-file '$BATS_TEST_TMPDIR/pw' is empty" \
    run --name bi --password-file "$BATS_TEST_TMPDIR/pw" -- touch "$MARK"
  printf '\n' >"$BATS_TEST_TMPDIR/pw"
  usage_error "--password-file '$BATS_TEST_TMPDIR/pw' is empty" \
    run --name bi --password-file "$BATS_TEST_TMPDIR/pw" -- touch "$MARK"
}

@test "bad input: --password-file is a directory" {
  usage_error "cannot read --password-file '$BATS_TEST_TMPDIR': Is a \
directory" run --name bi --password-file "$BATS_TEST_TMPDIR" -- touch "$MARK"
}

# ------------------------------------------------ closed and broken stdio

@test "bad input: stdout closed: the command's own status, nothing from us" {
  run --separate-stderr bash -c '"$0" run --name bi -- echo hi >&-' \
    "$GODISLOCK"
  # echo fails to write (EBADF) and exits 1; godislock passes that on.
  assert_equal "$status" 1
  refute_regex "$stderr" "godislock:"
  assert_no_lock_key
}

@test "bad input: broken pipe: the command's SIGPIPE gives 141, lock released" {
  run --separate-stderr bash -c \
    'set -o pipefail; "$0" run --name bi -- yes | head -n 1' "$GODISLOCK"
  assert_equal "$status" 141
  assert_output y
  assert_equal "$stderr" ""
  assert_no_lock_key
}

@test "bad input: --version with stdout closed: a one-line error" {
  run --separate-stderr bash -c '"$0" --version >&-' "$GODISLOCK"
  assert_equal "$status" 70
  assert_equal "${#stderr_lines[@]}" 1
  assert_regex "$stderr" "^godislock: error: .*(stdout|standard output)"
}

@test "bad input: stdout and stderr closed: nothing of ours reaches Redis" {
  rcli config resetstat >/dev/null
  run bash -c '"$0" run -v --name bi -- touch "$1" >&- 2>&-' \
    "$GODISLOCK" "$MARK"
  assert_success
  [[ -e "$MARK" ]]
  run rcli info errorstats
  refute_output --partial errorstat_ERR
  assert_no_lock_key
}

# --------------------------------------------------------------- fd limit

@test "bad input: fd limit reached before the command is forked: 70" {
  # Only fds 0-2 open; 6 leaves room for the signalfd and the connection
  # but not the wake-up pipe, 8 not the exec-status pipe of the fork: both
  # after the lock was taken, which must be released at once.
  local limit limits=(6 8)
  if grep -q __ubsan_handle "$GODISLOCK" 2>/dev/null; then
    # UBSan's vptr check needs a pipe(2) of its own the first time: at 6 it
    # fails and reports a false "invalid vptr"; at 8 its type cache is warm.
    limits=(8)
  fi
  for limit in "${limits[@]}"; do
    run --separate-stderr with_std_fds_only bash -c \
      'ulimit -n "$1"; shift; exec "$@"' bash "$limit" \
      "$GODISLOCK" run --name bi --ttl 60s -- touch "$MARK"
    assert_equal "$status" 70
    assert_equal "$stderr" \
      "godislock: error: cannot create a pipe: Too many open files"
    assert_not_ran
    assert_no_lock_key
  done
}

@test "bad input: --replicas with an etcd or Redis Cluster URL: 64, nothing run" {
  usage_error "--replicas is for Redis replication: etcd commits every \
write to a majority of its members" run --name bi --replicas 1 \
    --url etcd://127.0.0.1:1 -- touch "$MARK"
  usage_error "--replicas is not supported with a Redis Cluster \
(redis-cluster://)" run --name bi --replicas 1 \
    --url redis-cluster://127.0.0.1:1 -- touch "$MARK"
}
