#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Losing the lease while the command runs, on Redis: the command's whole
# tree is stopped before the lease could expire, and godislock exits 79.
# The key deleted or its lease ended, and a holder killed, are core
# scenarios, run against Redis and etcd: core/scenarios.bats.
bats_require_minimum_version 1.5.0
load helpers

setup() { start_redis; }

# wait_bg: waits for BG_PID; sets BG_STATUS.
wait_bg() {
  wait_job 30 "$BG_PID"
  BG_STATUS=$WAIT_STATUS
}

key_absent() {
  [[ "$(rcli exists "godislock:{$1}")" == 0 ]]
}

@test "lock key overwritten with another value: exit 79, the new value is kept" {
  start_victim over --ttl 900ms
  local start elapsed
  start=$(mono_ms)
  rcli set 'godislock:{over}' someone-else px 60000
  wait_bg
  elapsed=$(($(mono_ms) - start))
  assert_equal "$BG_STATUS" 79
  run cat "$BATS_TEST_TMPDIR/marker"
  assert_output got-term
  run cat "$BATS_TEST_TMPDIR/err"
  assert_regex "$output" "^godislock: error: lock 'over' lost while the \
command ran"
  ((elapsed < 10000))
  # Not ours any more: never deleted by the release.
  run rcli get 'godislock:{over}'
  assert_output someone-else
}

@test "--kill-signal chooses the signal sent on a loss" {
  local dir=$BATS_TEST_TMPDIR
  "$GODISLOCK" run --name ks --ttl 900ms --kill-signal HUP -- sh -c \
    'trap "echo got-hup >\"$1/marker\"; exit 0" HUP
     trap "echo got-term >\"$1/marker\"; exit 0" TERM
     : >"$1/started"
     while :; do sleep 0.05; done' sh "$dir" 2>"$dir/err" 3>&- &
  BG_PID=$!
  wait_for 10 test -e "$dir/started"
  rcli del 'godislock:{ks}'
  wait_bg
  assert_equal "$BG_STATUS" 79
  run cat "$dir/marker"
  assert_output got-hup
  run grep -c 'was sent signal 1 ' "$dir/err"
  assert_output 1
}

@test "a lease that expires while the command ends is reported as lost (79)" {
  # The command outlives nothing: it ends after the key was deleted but
  # before the refresher noticed; the release finds the key gone.
  local dir=$BATS_TEST_TMPDIR
  run --separate-stderr "$GODISLOCK" run --name late --ttl 30s -- sh -c \
    'redis-cli -p "$1" del "godislock:{late}" >/dev/null; exit 0' sh \
    "$REDIS_PORT"
  assert_equal "$status" 79
  assert_equal "$stderr" "godislock: error: lock 'late' was not held any more \
at release (the command ended within the lease: the release came late, or the \
key was deleted or overwritten); another holder may have run beside the \
command"
}

@test "a command that ignores TERM, with grandchildren: all gone within the TTL, 79" {
  local dir=$BATS_TEST_TMPDIR
  # The child and its grandchildren ignore TERM; one grandchild leaves the
  # process group (setsid), one stays in it.
  "$GODISLOCK" run --name stubborn --ttl 1500ms -- sh -c '
    trap "" TERM
    echo $$ >"$1/child.pid"
    sleep 30 &
    echo $! >"$1/gc1.pid"
    setsid sleep 30 &
    echo $! >"$1/gc2.pid"
    sh -c "trap \"\" TERM; echo \$\$ >\"$1/gc3.pid\"; sleep 30; :" &
    : >"$1/started"
    wait' sh "$dir" 2>"$dir/err" 3>&- &
  BG_PID=$!
  wait_for 10 test -e "$dir/started"
  wait_for 10 test -s "$dir/gc3.pid"
  local pids=() f
  for f in child gc1 gc2 gc3; do
    pids+=("$(cat "$dir/$f.pid")")
  done
  # The setsid'd grandchild really left the process group.
  wait_for 10 grep -q sleep "/proc/${pids[2]}/comm"
  local gc2_pgid
  gc2_pgid=$(ps -o pgid= -p "${pids[2]}" | tr -d ' ')
  [[ "$gc2_pgid" != "${pids[0]}" ]]
  local start elapsed
  start=$(mono_ms)
  rcli del 'godislock:{stubborn}'
  wait_bg
  elapsed=$(($(mono_ms) - start))
  assert_equal "$BG_STATUS" 79
  local p
  for p in "${pids[@]}"; do
    pid_gone "$p"
  done
  # Nominally within ttl/3 (detection) + ttl/3 (kill grace) = 1 s; generous
  # for slow (sanitizer) builds, still far below the 30 s sleeps.
  ((elapsed < 10000))
  run cat "$dir/err"
  assert_regex "$output" "^godislock: error: lock 'stubborn' lost while"
  assert_no_lock_key
}

@test "Redis killed while the command runs: command stopped, exit 79" {
  start_victim gone --ttl 1500ms --connect-timeout 200ms
  local start elapsed
  start=$(mono_ms)
  stop_redis
  wait_bg
  elapsed=$(($(mono_ms) - start))
  assert_equal "$BG_STATUS" 79
  run cat "$BATS_TEST_TMPDIR/marker"
  assert_output got-term
  run cat "$BATS_TEST_TMPDIR/err"
  assert_regex "$output" "^godislock: error: lock 'gone' lost while the \
command ran: could not refresh the lease in time: "
  # Given up before the 1.5 s lease could run out on the server.
  ((elapsed < 10000))
}

# The grace before SIGKILL counts from the lease, not from when the loss was
# noticed: past the lease there is none left, and the tree is killed at once.
@test "godislock paused past its lease: the command is killed on resume, 79" {
  start_victim paused --ttl 600ms
  local sleeper
  sleeper=$(pgrep -f -x "sleep 30" -P "$(pgrep -P "$BG_PID")")
  [[ "$sleeper" =~ ^[0-9]+$ ]]
  kill -STOP "$BG_PID"
  # The lease runs out on the server while godislock cannot refresh it.
  wait_for 10 key_absent paused
  run "$GODISLOCK" run --name paused -n -- echo taken
  assert_success
  assert_output taken
  kill -CONT "$BG_PID"
  wait_bg
  assert_equal "$BG_STATUS" 79
  # TERM and SIGKILL at once (the TERM trap may or may not have run):
  # nothing of the command is left.
  ! kill -0 "$sleeper" 2>/dev/null
  run cat "$BATS_TEST_TMPDIR/err"
  assert_regex "$output" "^godislock: error: lock 'paused' lost while"
  assert_no_lock_key
}

proc_state_is() {
  [[ "$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null)" == "$2" ]]
}

# Without a terminal (cron, scripts), a command stopped and continued from
# outside (kill -STOP / -CONT) keeps its lease: godislock mirrors a stop
# only for job control, when the command owns the terminal.
@test "a command stopped and continued from outside keeps its lease" {
  start_holder stopped --ttl 1s
  local child
  child=$(pgrep -P "$HOLDER_PID" -x sh)
  [[ "$child" =~ ^[0-9]+$ ]]
  kill -STOP "$child"
  wait_for 10 proc_state_is "$child" T
  kill -CONT "$child"
  wait_for 10 proc_state_is "$child" S
  # Three TTLs: the lease must still be held, refreshed by godislock.
  run "$GODISLOCK" run --name stopped --wait 3 -- echo "second holder"
  assert_equal "$status" 75
  refute_output "second holder"
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  assert_no_lock_key
}

# The supervisor enforces the lease itself. The refresher thread is stopped
# for real (ptrace stops that one thread and lets the others run): it
# neither refreshes nor reports, yet the command gets TERM at the give-up
# point, the rest of its tree SIGKILL before the lease can end, and the lock
# is free for another holder while the refresher is still stalled.
@test "a stalled refresher thread: the command is stopped before the lease ends, 79" {
  local dir=$BATS_TEST_TMPDIR
  start_victim stalled --ttl 3s -v
  "$PY3" "$BATS_TEST_DIRNAME/lib/stall_thread.py" "$BG_PID" 60 \
    "$dir/stalled" 3>&- &
  local staller=$!
  wait_for 10 test -s "$dir/stalled"
  wait_for 10 test -e "$dir/marker"
  run cat "$dir/marker"
  assert_output got-term
  # Released while the refresher is still stopped: nobody waits for it.
  wait_for 10 key_absent stalled
  kill -0 "$staller"
  run "$GODISLOCK" run --name stalled -n -- echo taken
  assert_success
  assert_output taken
  kill -0 "$staller"
  kill "$staller"
  wait_bg
  assert_equal "$BG_STATUS" 79
  run cat "$dir/err"
  assert_line --regexp "^godislock: error: lock 'stalled' lost while the \
command ran: no refresh succeeded in time \(the refresher did not report\)"
  local margin
  margin=$(sed -nE 's/.*sent SIGKILL .* ([0-9-]+) ms before the lease could end.*/\1/p' "$dir/err")
  echo "# SIGKILL ${margin} ms before the end of the 3s lease" >&3
  ((margin > 0))
}

# A release that fails after the command ended past the lease cannot prove
# that the lock was held to the end: 79, not the command's status.
@test "release fails after the command outlived the lease: 79" {
  local dir=$BATS_TEST_TMPDIR
  "$GODISLOCK" run --name late --ttl 6s --connect-timeout 300ms -- \
    sh -c ': >"$1/started"; sleep 1' sh "$dir" 2>"$dir/err" &
  BG_PID=$!
  wait_for 10 test -e "$dir/started"
  # The command ends while godislock is stopped, and the lease (6 s) runs
  # out on the server meanwhile.
  kill -STOP "$BG_PID"
  wait_for 20 key_absent late
  stop_redis
  kill -CONT "$BG_PID"
  wait_bg
  assert_equal "$BG_STATUS" 79
}
