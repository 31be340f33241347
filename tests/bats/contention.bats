#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Mutual exclusion under contention, fencing order, and the --wait bounds.
bats_require_minimum_version 1.5.0
load helpers

setup() { start_redis; }

# The critical section: logs "start <monotonic ns> <fence>", increments a
# shared counter without any locking of its own (a lost update shows an
# overlap), logs "end <monotonic ns>".
write_critical_section() {
  cat >"$BATS_TEST_TMPDIR/cs.py" <<'EOF'
import os, sys, time
log, counter = sys.argv[1], sys.argv[2]
start = time.monotonic_ns()
with open(counter) as f:
    n = int(f.read() or "0")
with open(counter, "w") as f:
    f.write(str(n + 1))
end = time.monotonic_ns()
with open(log, "a") as f:
    f.write("start %d %s\nend %d\n" % (start, os.environ["GODISLOCK_FENCE"], end))
EOF
}

# Checks the merged logs: prints a diagnosis and fails on any overlap or
# fence out of order.
check_logs() {
  "$PY3" -S - "$@" <<'EOF'
import sys
expected = int(sys.argv[1])
sections = []
for path in sys.argv[2:]:
    with open(path) as f:
        lines = f.read().split("\n")[:-1]
    assert len(lines) % 2 == 0, path
    for s, e in zip(lines[0::2], lines[1::2]):
        s, e = s.split(), e.split()
        assert s[0] == "start" and e[0] == "end", (s, e)
        sections.append((int(s[1]), int(e[1]), int(s[2])))
sections.sort()
bad = 0
for prev, cur in zip(sections, sections[1:]):
    if cur[0] <= prev[1]:
        print("overlap:", prev, cur)
        bad += 1
    if cur[2] <= prev[2]:
        print("fence not increasing:", prev, cur)
        bad += 1
if len(sections) != expected:
    print("sections:", len(sections), "expected:", expected)
    bad += 1
sys.exit(1 if bad else 0)
EOF
}

@test "8 contenders x 25 runs: no overlap, fences increase, nothing lost" {
  write_critical_section
  local dir=$BATS_TEST_TMPDIR
  echo 0 >"$dir/counter"
  local c pids=()
  for c in 1 2 3 4 5 6 7 8; do
    (
      for i in $(seq 1 25); do
        rc=0
        "$GODISLOCK" run --name race --ttl 10s --wait 60 -- \
          "$PY3" -S "$dir/cs.py" "$dir/log.$c" "$dir/counter" || rc=$?
        echo "$rc" >>"$dir/rc.$c"
      done
    ) 3>&- &
    pids+=($!)
  done
  local p
  for p in "${pids[@]}"; do
    wait_job 120 "$p"
  done
  run cat "$dir"/rc.*
  assert_equal "${#lines[@]}" 200
  refute_line --regexp '^[^0]|^0.'
  run cat "$dir/counter"
  assert_output 200
  run check_logs 200 "$dir"/log.*
  assert_success
  assert_no_lock_key
}

@test "--wait 0 on a held lock exits 75 at once" {
  start_holder held
  local start elapsed
  start=$(mono_ms)
  run "$GODISLOCK" run --name held --wait 0 -- touch "$BATS_TEST_TMPDIR/ran"
  elapsed=$(($(mono_ms) - start))
  assert_equal "$status" 75
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  ((elapsed < 8000))
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
}

@test "--wait 1 on a lock held for 10 s exits 75 after about 1 s" {
  start_holder held --ttl 10s
  local start elapsed
  start=$(mono_ms)
  run "$GODISLOCK" run --name held --wait 1 -- touch "$BATS_TEST_TMPDIR/ran"
  elapsed=$(($(mono_ms) - start))
  assert_equal "$status" 75
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  ((elapsed >= 800 && elapsed <= 8000))
  # The holder was not disturbed.
  run "$GODISLOCK" run --name held -n -- true
  assert_equal "$status" 75
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  assert_no_lock_key
}

@test "a waiter with --wait 10 gets the lock right after the holder ends" {
  start_holder held
  "$GODISLOCK" run -v --name held --wait 10 -- \
    sh -c ': >"$1/got"; echo "$GODISLOCK_FENCE" >"$1/fence"' sh \
    "$BATS_TEST_TMPDIR" 2>"$BATS_TEST_TMPDIR/waiter.err" 3>&- &
  local waiter=$!
  # Waiting on the release channel, not polling.
  wait_for 10 file_matches "$BATS_TEST_TMPDIR/waiter.err" \
    'waiting for its release'
  [[ ! -e "$BATS_TEST_TMPDIR/got" ]]
  local holder_fence start elapsed rc=0
  holder_fence=$(rcli get 'godislock:{held}:fence')
  start=$(mono_ms)
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_for 10 test -e "$BATS_TEST_TMPDIR/got"
  elapsed=$(($(mono_ms) - start))
  wait_job 30 "$waiter"
  assert_equal "$WAIT_STATUS" 0
  # The holder's TTL was 30 s: only the release announcement explains this.
  ((elapsed < 9000))
  (($(cat "$BATS_TEST_TMPDIR/fence") > holder_fence))
  assert_no_lock_key
}
