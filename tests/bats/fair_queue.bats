#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The FIFO queue on Redis (the default): a killed waiter is skipped after
# a 1 s grace, the release hands the lock to the head of the queue, and
# --no-fair still races. Arrival order and a waiter that gives up are core
# scenarios, run against Redis and etcd: core/scenarios.bats.
bats_require_minimum_version 1.5.0
load helpers

setup() { start_redis; }

queue_len() {
  rcli llen "godislock:{$1}:queue"
}

# queue_is NAME N: lock NAME's queue holds exactly N tokens (for wait_for).
queue_is() {
  [[ "$(queue_len "$1")" == "$2" ]]
}

# wake_subscribers_are NAME N: exactly N queued waiters of lock NAME are
# subscribed to their wake-up channels.
wake_subscribers_are() {
  [[ "$(rcli pubsub channels "godislock:{$1}:wake:*" | grep -c .)" == "$2" ]]
}

# start_waiters NAME COUNT: starts COUNT waiters on lock NAME one after
# another, each confirmed queued before the next starts; waiter I appends I
# to $BATS_TEST_TMPDIR/order. Their godislock PIDs go to WAITER_PIDS.
start_waiters() {
  local name=$1 count=$2 i
  WAITER_PIDS=()
  for ((i = 1; i <= count; i++)); do
    "$GODISLOCK" run --name "$name" -- \
      sh -c 'echo "$1" >>"$2"' sh "$i" "$BATS_TEST_TMPDIR/order" \
      2>"$BATS_TEST_TMPDIR/waiter.$i.err" 3>&- &
    WAITER_PIDS+=($!)
    wait_for 10 queue_is "$name" "$i"
  done
}

@test "a SIGKILLed queued waiter is skipped after the 1 s grace; the rest keep order" {
  start_holder fifo
  start_waiters fifo 20
  local victim=${WAITER_PIDS[6]}
  kill -KILL "$victim"
  wait_job 10 "$victim"
  assert_equal "$WAIT_STATUS" 137
  # Its subscription closed with it; its token is still queued.
  wait_for 10 wake_subscribers_are fifo 19
  assert_equal "$(queue_len fifo)" 20
  local start elapsed rc=0
  start=$(mono_ms)
  release_holder || rc=$?
  assert_equal "$rc" 0
  local i
  for ((i = 1; i <= 20; i++)); do
    if ((i == 7)); then
      continue
    fi
    wait_job 30 "${WAITER_PIDS[i - 1]}"
    assert_equal "$WAIT_STATUS" 0
  done
  elapsed=$(($(mono_ms) - start))
  run cat "$BATS_TEST_TMPDIR/order"
  assert_output "$(seq 1 6; seq 8 20)"
  # Waiters come back on their own only every 20 s (a third of the queue
  # lease): a stall behind the dead one would show here.
  ((elapsed < 10000))
  assert_equal "$(queue_len fifo)" 0
  assert_no_lock_key
}

@test "--no-fair: two racers serialize" {
  local dir=$BATS_TEST_TMPDIR c pids=()
  for c in a b; do
    "$GODISLOCK" run --no-fair --name racy --wait 20 -- sh -c \
      'echo "start $1" >>"$2"; sleep 0.3; echo "end $1" >>"$2"' \
      sh "$c" "$dir/log" 3>&- &
    pids+=($!)
  done
  local p
  for p in "${pids[@]}"; do
    wait_job 20 "$p"
    assert_equal "$WAIT_STATUS" 0
  done
  run cat "$dir/log"
  assert_equal "${#lines[@]}" 4
  # start X, end X, start Y, end Y: never two at once.
  assert_equal "${lines[0]#start }" "${lines[1]#end }"
  assert_equal "${lines[2]#start }" "${lines[3]#end }"
  [[ "${lines[0]}" == start* && "${lines[2]}" == start* ]]
  [[ "${lines[0]}" != "${lines[2]}" ]]
  assert_no_lock_key
}

@test "--no-fair: a racing waiter is woken by a release and never queues" {
  start_holder racy
  "$GODISLOCK" run --no-fair --name racy -- \
    touch "$BATS_TEST_TMPDIR/ran" 3>&- &
  local waiter=$!
  # It listens on the release channel, not on a wake-up channel of its own.
  wait_for 10 subscribers_are racy 1
  assert_equal "$(rcli pubsub numsub 'godislock:{racy}:released' | sed -n 2p)" 1
  assert_equal "$(queue_len racy)" 0
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  local start elapsed rc=0
  start=$(mono_ms)
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_job 20 "$waiter"
  elapsed=$(($(mono_ms) - start))
  assert_equal "$WAIT_STATUS" 0
  [[ -e "$BATS_TEST_TMPDIR/ran" ]]
  # The holder's TTL was 30 s: only the release announcement explains this.
  ((elapsed < 5000))
  assert_no_lock_key
}

@test "a queued waiter is handed the lock by the release: -v says so, status shows it, its fence is the new one" {
  start_holder handover --ttl 40s
  local old_fence
  old_fence=$(rcli get "godislock:{handover}:fence")
  local dir=$BATS_TEST_TMPDIR
  "$GODISLOCK" run -v --name handover --ttl 20s -- sh -c \
    'echo "$GODISLOCK_FENCE" >"$1/fence"; : >"$1/started"; while [ ! -e "$1/go" ]; do sleep 0.02; done' \
    sh "$dir" 2>"$dir/waiter.err" 3>&- &
  local waiter=$!
  wait_for 10 queue_is handover 1
  wait_for 10 wake_subscribers_are handover 1
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_for 10 test -e "$dir/started"
  # The new holder, as the release wrote it from the waiter's queue lease.
  run --separate-stderr "$GODISLOCK" status --json handover
  assert_equal "$status" 0
  assert_equal "$(json 'd[0]["holders"][0]["pid"]')" "$waiter"
  assert_equal "$(json 'd[0]["holders"][0]["command"][:5]')" "sh -c"
  assert_equal "$(json 'd[0]["holders"][0]["fence"] == d[0]["last_fence"]')" True
  assert_equal "$(json 'd[0]["queued"]')" 0
  # The waiter's own TTL, not the releaser's.
  assert_equal "$(json '0 < d[0]["holders"][0]["ttl_ms"] <= 20000')" True
  local fence
  fence=$(cat "$dir/fence")
  assert_equal "$(json 'd[0]["last_fence"]')" "$fence"
  ((fence > old_fence))
  : >"$dir/go"
  wait_job 30 "$waiter"
  assert_equal "$WAIT_STATUS" 0
  run grep -c "handed over by its releaser" "$dir/waiter.err"
  assert_output 1
  assert_no_lock_key
}
