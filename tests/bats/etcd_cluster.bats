#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# godislock on a 3-member etcd cluster on loopback (etcd://m0,m1,m2):
# contention across the members, the leader killed or a member stopped
# while the lock is held, and the majority lost (the holder's command is
# stopped, nobody else gets the lock).
bats_require_minimum_version 1.5.0
load helpers
load etcd_helpers

setup() {
  start_etcd_cluster
  export GODISLOCK_URL=$ETCD_CLUSTER_URL
}

teardown() {
  terminate_all_children
  stop_etcd_cluster
}

@test "etcd cluster: 3 contenders x 6 runs, each through another first member: fences strictly rise" {
  local dir=$BATS_TEST_TMPDIR c pids=() p=("${ETCD_CLIENT_PORTS[@]}")
  local urls=("etcd://127.0.0.1:${p[0]},127.0.0.1:${p[1]},127.0.0.1:${p[2]}"
    "etcd://127.0.0.1:${p[1]},127.0.0.1:${p[2]},127.0.0.1:${p[0]}"
    "etcd://127.0.0.1:${p[2]},127.0.0.1:${p[0]},127.0.0.1:${p[1]}")
  for c in 0 1 2; do
    (
      for i in $(seq 1 6); do
        "$GODISLOCK" run --url "${urls[$c]}" --name c --ttl 10s --wait 60 -- \
          sh -c 'echo "$GODISLOCK_FENCE $(date +%s%N) start"; sleep 0.05; echo "$GODISLOCK_FENCE $(date +%s%N) end"' \
          >>"$dir/log.$c" || echo "rc=$?" >>"$dir/log.$c"
      done
    ) 3>&- &
    pids+=($!)
  done
  for c in 0 1 2; do
    wait_job 120 "${pids[$c]}"
  done
  run grep -h rc= "$dir"/log.*
  assert_output ""
  # Sorted by time, sections never interleave and fences only rise.
  run "$PY3" -S -c '
import sys
rows = sorted((int(t), int(f), k) for f, t, k in (l.split() for p in sys.argv[1:] for l in open(p)))
assert len(rows) == 36, len(rows)
last = 0
for (t1, f1, k1), (t2, f2, k2) in zip(rows[0::2], rows[1::2]):
    assert (k1, k2) == ("start", "end") and f1 == f2, (t1, f1, k1, t2, f2, k2)
    assert f1 > last, (f1, last)
    last = f1
' "$dir"/log.*
  assert_success
}

@test "etcd cluster: the leader killed while the lock is held: the command runs on, exit 0" {
  local leader
  leader=$(etcd_leader)
  start_holder lk --ttl 6s
  kill_etcd_member "$leader"
  # Past more than one refresh interval and a new election.
  local others=() i
  for i in 0 1 2; do
    [[ $i == "$leader" ]] || others+=("$i")
  done
  wait_for 30 etcd_member_healthy "${others[0]}"
  sleep 4
  kill -0 "$HOLDER_PID"
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  run "$GODISLOCK" run -n --name lk -- true
  assert_success
}

@test "etcd cluster: a stopped member (SIGSTOP) is passed over" {
  kill -STOP "${ETCD_PIDS[0]}"
  run "$GODISLOCK" run -n --name st -- echo ran
  kill -CONT "${ETCD_PIDS[0]}"
  assert_success
  assert_output ran
}

# watching_port FILE: the client port of the member a waiter's watch
# stream is on, from its --verbose log (empty until it watches).
watching_port() {
  sed -n 's/.*watching .* on etcd 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$1" | tail -n 1
}

# is_watching FILE: the waiter logging to FILE watches (for wait_for).
is_watching() {
  [[ -n "$(watching_port "$1")" ]]
}

@test "etcd cluster: the member the waiters watch on is stopped (SIGSTOP): the holder keeps its lock or gets 79, both waiters are served" {
  local dir=$BATS_TEST_TMPDIR i m=-1 port
  start_holder ps --ttl 3s
  # A racing waiter (watches the lock's keys) and a fair one (queued: it
  # also renews its own lease), both starting at member 0 of the URL. A
  # waiter that stayed on the silent stream would look again only on its
  # fallback, a third of the 60 s queue lease: past its --wait.
  "$GODISLOCK" run -v --no-fair --name ps --ttl 3s --wait 15 -- touch "$dir/plain" \
    2>"$dir/plain.err" 3>&- &
  local plain=$!
  "$GODISLOCK" run -v --name ps --ttl 3s --wait 15 -- touch "$dir/fair" \
    2>"$dir/fair.err" 3>&- &
  local fair=$!
  wait_for 30 is_watching "$dir/plain.err"
  wait_for 30 is_watching "$dir/fair.err"
  port=$(watching_port "$dir/plain.err")
  for i in 0 1 2; do
    [[ ${ETCD_CLIENT_PORTS[$i]} != "$port" ]] || m=$i
  done
  ((m >= 0))
  kill -STOP "${ETCD_PIDS[$m]}"
  # Past several refreshes and waiter checks while the member is silent.
  sleep 4
  local rc=0
  release_holder || rc=$?
  [[ $rc == 0 || $rc == 79 ]]
  wait_job 60 "$plain"
  local plain_rc=$WAIT_STATUS
  wait_job 60 "$fair"
  local fair_rc=$WAIT_STATUS
  kill -CONT "${ETCD_PIDS[$m]}"
  assert_equal "$plain_rc" 0
  assert_equal "$fair_rc" 0
  [[ -e "$dir/plain" && -e "$dir/fair" ]]
}

@test "etcd cluster: majority lost: the holder's command is stopped (79), nobody else gets the lock" {
  local dir=$BATS_TEST_TMPDIR
  "$GODISLOCK" run --name mj --ttl 3s -- sh -c \
    'trap "echo got-term >\"$1/marker\"; exit 0" TERM
     : >"$1/started"
     sleep 60 &
     wait' sh "$dir" 2>"$dir/err" 3>&- &
  local holder=$!
  wait_for 10 test -e "$dir/started"
  kill_etcd_member 1
  kill_etcd_member 2
  wait_job 30 "$holder"
  assert_equal "$WAIT_STATUS" 79
  run cat "$dir/marker"
  assert_output got-term
  run "$GODISLOCK" run -n --connect-timeout 2s --name mj -- touch "$dir/second"
  assert_equal "$status" 69
  [[ ! -e "$dir/second" ]]
}
