#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Signals sent to godislock, and what the command inherits (environment,
# file descriptors, process group).
bats_require_minimum_version 1.5.0
load helpers

setup() {
  unset GODISLOCK_PASSWORD REDISCLI_AUTH GODISLOCK_NAME GODISLOCK_FENCE
  start_redis
  # trapper.sh DIR SIG: writes "got-SIG" to DIR/marker when SIG arrives and
  # exits 0; DIR/started tells that the trap is set.
  cat >"$BATS_TEST_TMPDIR/trapper.sh" <<'EOF'
#!/bin/sh
dir=$1
sig=$2
trap 'echo "got-$sig" >"$dir/marker"; exit 0' "$sig"
echo $$ >"$dir/child.pid"
: >"$dir/started"
while :; do sleep 0.05; done
EOF
  chmod 755 "$BATS_TEST_TMPDIR/trapper.sh"
}

# start_bg NAME ARGS...: `godislock run --name NAME ARGS` in the background
# with INT and QUIT at their defaults (a non-interactive shell starts
# background jobs with them ignored, and ignored signals stay ignored in the
# command); sets BG_PID. stdout/stderr go to $BATS_TEST_TMPDIR/bg.{out,err}.
start_bg() {
  local name=$1
  shift
  env --default-signal=INT,QUIT "$GODISLOCK" run --name "$name" "$@" \
    >"$BATS_TEST_TMPDIR/bg.out" 2>"$BATS_TEST_TMPDIR/bg.err" 3>&- &
  BG_PID=$!
}

# wait_bg: waits for BG_PID; sets BG_STATUS.
wait_bg() {
  wait_job 30 "$BG_PID"
  BG_STATUS=$WAIT_STATUS
}

# forward_test SIG: SIG sent to godislock reaches the command, which exits 0.
forward_test() {
  local sig=$1 dir=$BATS_TEST_TMPDIR
  start_bg fwd -- "$dir/trapper.sh" "$dir" "$sig"
  wait_for 10 test -e "$dir/started"
  kill -"$sig" "$BG_PID"
  wait_bg
  assert_equal "$BG_STATUS" 0
  run cat "$dir/marker"
  assert_output "got-$sig"
  # (The shell may report its sleep killed by the signal; godislock says
  # nothing.)
  run grep -c '^godislock:' "$dir/bg.err"
  assert_output 0
  assert_no_lock_key
}

@test "SIGTERM is forwarded; the command traps it and exits 0 -> 0" {
  forward_test TERM
}

@test "SIGTERM is forwarded; the command dies of it -> 143" {
  local dir=$BATS_TEST_TMPDIR
  start_bg fwd -- sh -c 'echo $$ >"$1/child.pid"; exec sleep 30' sh "$dir"
  wait_for 10 test -s "$dir/child.pid"
  local child
  child=$(cat "$dir/child.pid")
  # The command has become sleep (exec) before it is signalled.
  wait_for 10 grep -q sleep "/proc/$child/comm"
  kill -TERM "$BG_PID"
  wait_bg
  assert_equal "$BG_STATUS" 143
  wait_for 5 pid_gone "$child"
  assert_no_lock_key
}

@test "SIGINT is forwarded" {
  forward_test INT
}

@test "SIGHUP is forwarded" {
  forward_test HUP
}

@test "SIGUSR1 is forwarded" {
  forward_test USR1
}

@test "SIGUSR2 and SIGQUIT are forwarded" {
  forward_test USR2
  rm -f "$BATS_TEST_TMPDIR/started" "$BATS_TEST_TMPDIR/marker"
  forward_test QUIT
}

@test "a signal reaches the command's whole process group" {
  local dir=$BATS_TEST_TMPDIR
  mkdir -p "$dir/gc"
  # The grandchild traps USR1; the child survives it and waits for the
  # grandchild (a trap, not an ignored signal: that would be inherited).
  start_bg fwd -- sh -c '
    trap : USR1
    "$1/trapper.sh" "$1/gc" USR1 &
    while ! wait; do :; done' sh "$dir"
  wait_for 10 test -e "$dir/gc/started"
  kill -USR1 "$BG_PID"
  wait_bg
  assert_equal "$BG_STATUS" 0
  run cat "$dir/gc/marker"
  assert_output got-USR1
}

@test "SIGTERM while waiting for the lock: 143, command not run, nothing left" {
  start_holder held
  local token fence
  token=$(rcli get 'godislock:{held}')
  fence=$(rcli get 'godislock:{held}:fence')
  start_bg held -v -- touch "$BATS_TEST_TMPDIR/ran"
  wait_for 10 file_matches "$BATS_TEST_TMPDIR/bg.err" 'waiting for its release'
  assert_equal "$(release_subscribers held)" 1
  kill -TERM "$BG_PID"
  wait_bg
  assert_equal "$BG_STATUS" 143
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  run grep -c 'godislock: error' "$BATS_TEST_TMPDIR/bg.err"
  assert_output 0
  # The holder's lock is as it was; no subscription, no other key.
  run rcli get 'godislock:{held}'
  assert_output "$token"
  run rcli get 'godislock:{held}:fence'
  assert_output "$fence"
  assert_equal "$(release_subscribers held)" 0
  run rcli --scan --pattern 'godislock:*'
  assert_equal "$(sort <<<"$output")" \
    $'godislock:{held}\ngodislock:{held}:fence\ngodislock:{held}:holder:'"$token"
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  assert_no_lock_key
}

@test "SIGINT and SIGHUP while waiting exit 130 and 129" {
  start_holder held
  local sig code
  for sig in INT:130 HUP:129; do
    code=${sig#*:}
    sig=${sig%:*}
    : >"$BATS_TEST_TMPDIR/bg.err"
    start_bg held -v -- touch "$BATS_TEST_TMPDIR/ran"
    wait_for 10 file_matches "$BATS_TEST_TMPDIR/bg.err" \
      'waiting for its release'
    kill -"$sig" "$BG_PID"
    wait_bg
    assert_equal "$BG_STATUS" "$code"
    [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  done
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  assert_no_lock_key
}

@test "SIGUSR1 while waiting does not stop the wait" {
  start_holder held
  start_bg held -v -- touch "$BATS_TEST_TMPDIR/ran"
  wait_for 10 file_matches "$BATS_TEST_TMPDIR/bg.err" 'waiting for its release'
  kill -USR1 "$BG_PID"
  kill -USR2 "$BG_PID"
  # Still waiting: subscribed, alive, command not run.
  wait_for 10 subscribers_are held 1
  kill -0 "$BG_PID"
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_bg
  assert_equal "$BG_STATUS" 0
  [[ -e "$BATS_TEST_TMPDIR/ran" ]]
  assert_no_lock_key
}

# Signals that do not end the wait are taken where they arrive: the waiter
# keeps its subscription and its queue registration (one subscription, no
# extra attempt), instead of starting the whole acquisition again.
@test "USR1, USR2 and CONT while waiting keep the subscription and the place" {
  start_holder held
  start_bg held -v -- touch "$BATS_TEST_TMPDIR/ran"
  wait_for 10 file_matches "$BATS_TEST_TMPDIR/bg.err" 'waiting for its release'
  local sig
  for sig in USR1 USR2 CONT USR1; do
    kill -"$sig" "$BG_PID"
    wait_for 10 file_matches "$BATS_TEST_TMPDIR/bg.err" \
      "signal $(kill -l "$sig") while waiting for the lock: ignored"
  done
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_bg
  assert_equal "$BG_STATUS" 0
  [[ -e "$BATS_TEST_TMPDIR/ran" ]]
  run grep -c "subscribed to release announcements" "$BATS_TEST_TMPDIR/bg.err"
  assert_output 1
  # The first try, the one that queued after subscribing, and none more
  # (the hand-over needs no attempt; a wake-up costs one).
  run grep -E "acquired lock 'held'.* after [12] attempt" \
    "$BATS_TEST_TMPDIR/bg.err"
  assert_success
}

@test "the command's environment has the lock's name and fence, not the passwords" {
  stop_redis
  start_redis --requirepass 'env-s3cret'
  GODISLOCK_PASSWORD=env-s3cret REDISCLI_AUTH=env-s3cret \
    GODISLOCK_NAME=stale GODISLOCK_FENCE=stale \
    run --separate-stderr "$GODISLOCK" run --name envtest -- env
  assert_success
  assert_line 'GODISLOCK_NAME=envtest'
  assert_line --regexp '^GODISLOCK_FENCE=[0-9]+$'
  assert_line "GODISLOCK_URL=redis://127.0.0.1:$REDIS_PORT"
  refute_line --partial 'GODISLOCK_PASSWORD'
  refute_line --partial 'REDISCLI_AUTH'
  refute_output --partial 'env-s3cret'
  refute_output --partial 'stale'
  assert_equal "$(grep -c '^GODISLOCK_NAME=' <<<"$output")" 1
  assert_equal "$(grep -c '^GODISLOCK_FENCE=' <<<"$output")" 1
  # The fence handed to the command is the one stored in Redis.
  local fence
  fence=$(sed -n 's/^GODISLOCK_FENCE=//p' <<<"$output")
  assert_equal "$(rcli get 'godislock:{envtest}:fence')" "$fence"
}

@test "a GODISLOCK_URL with a password is not passed to the command" {
  stop_redis
  start_redis --requirepass 'url-s3cret'
  GODISLOCK_URL="redis://:url-s3cret@127.0.0.1:$REDIS_PORT" \
    run --separate-stderr "$GODISLOCK" run --name envtest -- env
  assert_success
  assert_line 'GODISLOCK_NAME=envtest'
  refute_line --partial 'GODISLOCK_URL'
  refute_output --partial 'url-s3cret'
  assert_regex "$stderr" '^godislock: warning: .*password in the URL'
}

# The command lists its own fds (the trailing ":" keeps sh from exec'ing
# find, which would list the directory it opened).
list_fds='find /proc/$$/fd -mindepth 1 -maxdepth 1 -printf "%f\n"; :'

@test "the command has no file descriptors but 0, 1 and 2" {
  with_std_fds_only "$GODISLOCK" run --name fds -- sh -c "$list_fds" \
    >"$BATS_TEST_TMPDIR/fds"
  run sort -n "$BATS_TEST_TMPDIR/fds"
  assert_output $'0\n1\n2'
}

@test "no file descriptors but 0, 1 and 2 after waiting for the lock either" {
  start_holder fds
  with_std_fds_only "$GODISLOCK" run --name fds -- sh -c "$list_fds" \
    >"$BATS_TEST_TMPDIR/fds" 3>&- &
  local waiter=$!
  wait_for 10 subscribers_are fds 1
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_job 30 "$waiter"
  assert_equal "$WAIT_STATUS" 0
  run sort -n "$BATS_TEST_TMPDIR/fds"
  assert_output $'0\n1\n2'
}

@test "the command gets the signal mask and ignored signals godislock got" {
  local show=(grep -E '^Sig(Blk|Ign):' /proc/self/status)
  local direct via
  direct=$("${show[@]}")
  via=$("$GODISLOCK" run --name mask -- "${show[@]}")
  assert_equal "$via" "$direct"
  assert_regex "$via" 'SigBlk:[[:space:]]+0+'
  # An ignored signal stays ignored (SIGUSR2 is bit 12: 0x800).
  direct=$(trap '' USR2; "${show[@]}")
  via=$(trap '' USR2; "$GODISLOCK" run --name mask -- "${show[@]}")
  assert_equal "$via" "$direct"
  assert_regex "$via" 'SigIgn:[[:space:]]+[0-9a-f]*[89a-f][0-9a-f]{2}$'
  # A signal blocked when godislock started (SIGUSR1, bit 10: 0x200) is
  # blocked in the command too, though godislock blocks many more itself.
  via=$("$PY3" -S -c 'import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.execv(sys.argv[1], sys.argv[1:])' "$GODISLOCK" run --name mask -- \
    "${show[@]}")
  assert_regex "$via" 'SigBlk:[[:space:]]+0{13}200'
}

@test "the command runs in its own process group" {
  local mine
  mine=$(ps -o pgid= -p $$ | tr -d ' ')
  run "$GODISLOCK" run --name pg -- sh -c 'echo $$; ps -o pgid= -p $$'
  assert_success
  local pid pgid
  pid=$(sed -n 1p <<<"$output" | tr -d ' ')
  pgid=$(sed -n 2p <<<"$output" | tr -d ' ')
  [[ "$pid" =~ ^[0-9]+$ ]]
  assert_equal "$pgid" "$pid"
  [[ "$pgid" != "$mine" ]]
}

@test "the lock key is gone after a normal exit, and the fence key expires" {
  run "$GODISLOCK" run --name gone --ttl 2s -- sh -c 'echo "$GODISLOCK_NAME"'
  assert_success
  assert_output gone
  run rcli exists 'godislock:{gone}'
  assert_output 0
  # The fence key stays (fences must not go back) but has a TTL.
  run rcli pttl 'godislock:{gone}:fence'
  [[ "$output" -gt 0 && "$output" -le 2000 ]]
}
