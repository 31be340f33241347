#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Counted locks (--limit N) and shared locks (--shared): how many run at
# once, slots and fences per holder, writers not starved by readers, users
# that disagree on the kind, and the waiter's message about the holder.
# Overlap is measured by a local oracle: each section counts itself in and
# out of a file under flock(1), and records the highest counts it saw.
bats_require_minimum_version 1.5.0
load helpers

setup() { start_redis; }

# A critical section: section.sh DIR KIND SLEEP. KIND is r (shared) or w
# (exclusive/counted). Records the number of sections inside (per kind) and
# a violation when a w section overlaps anything (with --limit, w sections
# may overlap each other; the test checks the maximum instead).
write_section() {
  cat >"$BATS_TEST_TMPDIR/section.sh" <<'EOF'
#!/bin/sh
dir=$1 kind=$2 pause=$3
count() {
  flock "$dir/oracle.lock" sh -c '
    dir=$1 kind=$2 delta=$3
    r=$(cat "$dir/r" 2>/dev/null || echo 0)
    w=$(cat "$dir/w" 2>/dev/null || echo 0)
    if [ "$kind" = r ]; then r=$((r + delta)); else w=$((w + delta)); fi
    echo "$r" >"$dir/r"
    echo "$w" >"$dir/w"
    if [ "$delta" = 1 ]; then
      echo "$r $w" >>"$dir/seen"
      echo "$GODISLOCK_SLOT $GODISLOCK_FENCE" >>"$dir/slots"
    fi' sh "$dir" "$kind" "$1"
}
count 1
sleep "$pause"
count -1
EOF
  chmod +x "$BATS_TEST_TMPDIR/section.sh"
}

# queue_is NAME N: lock NAME's queue holds exactly N tokens (for wait_for).
queue_is() {
  [[ "$(rcli llen "godislock:{$1}:queue")" == "$2" ]]
}

# all_succeed N PID...: every godislock PID exits 0, and N sections ran.
all_succeed() {
  local sections=$1 pid
  shift
  for pid in "$@"; do
    wait_job 60 "$pid"
    assert_equal "$WAIT_STATUS" 0
  done
  assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/seen")" "$sections"
}

# max_col N: the highest value in column N of the "seen" file.
max_col() {
  awk -v c="$1" 'BEGIN { m = 0 } $c > m { m = $c } END { print m }' \
    "$BATS_TEST_TMPDIR/seen"
}

@test "--limit 3: 16 contenders, never more than 3 at once, several together" {
  write_section
  local pids=() i
  for ((i = 1; i <= 16; i++)); do
    "$GODISLOCK" run --limit 3 --name sem -- \
      "$BATS_TEST_TMPDIR/section.sh" "$BATS_TEST_TMPDIR" w 0.3 3>&- &
    pids+=($!)
  done
  all_succeed 16 "${pids[@]}"
  local most
  most=$(max_col 2)
  ((most <= 3))
  ((most >= 2))
  # Slots 1..3 only; every fence distinct.
  run awk '$1 < 1 || $1 > 3' "$BATS_TEST_TMPDIR/slots"
  assert_output ""
  assert_equal "$(awk '{ print $2 }' "$BATS_TEST_TMPDIR/slots" | sort -u |
    wc -l)" 16
  assert_no_lock_key
  run rcli --scan --pattern 'godislock:{sem}:*'
  refute_line --partial ':slot:'
  refute_line --partial ':limit'
  refute_line --partial ':holder:'
}

@test "--shared mixed with exclusive: no exclusive section overlaps any other" {
  write_section
  local pids=() i kind
  for ((i = 1; i <= 16; i++)); do
    if ((i % 4 == 0)); then
      kind=w
      set -- --exclusive
    else
      kind=r
      set -- --shared
    fi
    "$GODISLOCK" run "$@" --name rw -- \
      "$BATS_TEST_TMPDIR/section.sh" "$BATS_TEST_TMPDIR" "$kind" 0.2 3>&- &
    pids+=($!)
  done
  all_succeed 16 "${pids[@]}"
  # An exclusive section saw nobody else; shared ones saw no writer.
  run awk '($2 > 1) || ($2 == 1 && $1 > 0)' "$BATS_TEST_TMPDIR/seen"
  assert_output ""
  # Shared sections did run together.
  (($(max_col 1) >= 2))
  assert_no_lock_key
  run rcli exists 'godislock:{rw}:readers'
  assert_output 0
}

@test "a shared newcomer does not overtake an exclusive waiter (no writer starvation)" {
  start_holder rw --shared
  "$GODISLOCK" run --name rw -- sh -c 'echo writer >>"$1"' sh \
    "$BATS_TEST_TMPDIR/order" 3>&- &
  local writer=$!
  wait_for 10 queue_is rw 1
  "$GODISLOCK" run --shared --name rw -- sh -c 'echo reader >>"$1"' sh \
    "$BATS_TEST_TMPDIR/order" 3>&- &
  local reader=$!
  wait_for 10 queue_is rw 2
  [[ ! -e "$BATS_TEST_TMPDIR/order" ]]
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_job 30 "$writer"
  assert_equal "$WAIT_STATUS" 0
  wait_job 30 "$reader"
  assert_equal "$WAIT_STATUS" 0
  run cat "$BATS_TEST_TMPDIR/order"
  assert_output $'writer\nreader'
  assert_no_lock_key
}

@test "shared holders run together while an exclusive holder waits" {
  start_holder rw --shared
  local first_dir=$HOLDER_DIR first_pid=$HOLDER_PID
  # A second shared holder gets in at once.
  run "$GODISLOCK" run --shared --name rw --nonblock -- true
  assert_success
  # An exclusive one does not.
  run "$GODISLOCK" run --name rw --nonblock -- true
  assert_equal "$status" 75
  HOLDER_DIR=$first_dir HOLDER_PID=$first_pid
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  run "$GODISLOCK" run --name rw --nonblock -- true
  assert_success
  assert_no_lock_key
}

@test "GODISLOCK_SLOT: the slot for --limit, 1 when exclusive, unset when shared" {
  run "$GODISLOCK" run --limit 2 --name s -- sh -c 'echo "${GODISLOCK_SLOT-unset}"'
  assert_success
  assert_output 1
  run "$GODISLOCK" run --name s -- sh -c 'echo "${GODISLOCK_SLOT-unset}"'
  assert_output 1
  GODISLOCK_SLOT=9 run "$GODISLOCK" run --shared --name s -- \
    sh -c 'echo "${GODISLOCK_SLOT-unset}"'
  assert_output unset
}

@test "a counted lock's holder takes the first free slot; a full one waits" {
  start_holder sem --limit 2
  local first_dir=$HOLDER_DIR first_pid=$HOLDER_PID
  start_holder sem --limit 2
  local second_dir=$HOLDER_DIR second_pid=$HOLDER_PID
  run "$GODISLOCK" run --limit 2 --name sem --nonblock -- true
  assert_equal "$status" 75
  HOLDER_DIR=$first_dir HOLDER_PID=$first_pid
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  run "$GODISLOCK" run --limit 2 --name sem --nonblock -- \
    sh -c 'echo "$GODISLOCK_SLOT"'
  assert_success
  assert_output 1
  HOLDER_DIR=$second_dir HOLDER_PID=$second_pid
  release_holder || rc=$?
  assert_equal "$rc" 0
  assert_no_lock_key
}

@test "users that disagree on the kind: 65, one line, nothing touched" {
  start_holder mix --limit 3
  local token
  token=$(rcli get 'godislock:{mix}')
  run --separate-stderr "$GODISLOCK" run --name mix -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 65
  assert_equal "$stderr" "godislock: error: lock 'mix' is in use as a counted \
lock (--limit 3), not as an exclusive lock: all its users must ask for the \
same kind"
  run --separate-stderr "$GODISLOCK" run --limit 4 --name mix -- true
  assert_equal "$status" 65
  assert_equal "$stderr" "godislock: error: lock 'mix' is in use as a counted \
lock (--limit 3), not as a counted lock (--limit 4): all its users must ask \
for the same kind"
  run --separate-stderr "$GODISLOCK" run --shared --name mix -- true
  assert_equal "$status" 65
  assert_equal "$stderr" "godislock: error: lock 'mix' is in use as a counted \
lock (--limit 3), not as a shared lock: all its users must ask for the same \
kind"
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  assert_equal "$(rcli get 'godislock:{mix}')" "$token"
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  # Once the last holder left, the name can be used as any kind.
  run "$GODISLOCK" run --name mix -- true
  assert_success
  assert_no_lock_key
}

@test "conflicting kinds on the command line are usage errors (64)" {
  run --separate-stderr "$GODISLOCK" run --shared --limit 2 -- true
  assert_equal "$status" 64
  assert_equal "$stderr" \
    "godislock: error: --shared and --limit conflict: use one of them"
  run --separate-stderr "$GODISLOCK" run -s -x -- true
  assert_equal "$status" 64
  assert_equal "$stderr" \
    "godislock: error: --shared and --exclusive conflict: use one of them"
  run --separate-stderr "$GODISLOCK" run --limit 0 -- true
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: invalid value '0' for --limit: \
a number of holders from 1 to 1000"
  run --separate-stderr "$GODISLOCK" run --limit 1001 -- true
  assert_equal "$status" 64
  run --separate-stderr "$GODISLOCK" run --limit x -- true
  assert_equal "$status" 64
  assert_regex "$stderr" "^godislock: error: invalid value 'x' for --limit"
}

@test "-v: a waiter says once who holds the lock" {
  start_holder who
  run --separate-stderr "$GODISLOCK" run -v --wait 1500ms --name who -- true
  assert_equal "$status" 75
  local lines
  lines=$(grep -c "waiting for lock 'who' held by $(hostname):" <<<"$stderr")
  assert_equal "$lines" 1
  assert_regex "$stderr" "held by [^:]+:[0-9]+ \(sh -c .*\) for [0-9]+s"
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
}
