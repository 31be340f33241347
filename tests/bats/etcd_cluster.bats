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
