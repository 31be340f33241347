#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The core scenarios, written once and run against each backend: bats runs
# this file as tests/bats/core_redis.bats and tests/bats/core_etcd.bats
# (symbolic links here), and the link's name picks the backend (see
# backend_helpers.bash, whose helpers hide what differs). Exit codes, -n and
# --wait, contention with strictly rising fences, hand-over to a waiter,
# arrival order, the lock lost by key delete and by the lease's end, a
# holder or a waiter killed, status and release --force. What only one
# backend has stays in its own files (exit_codes.bats, lock_loss.bats,
# fair_queue.bats, status.bats for Redis; etcd_keys.bats for etcd).
bats_require_minimum_version 1.5.0
load helpers
load etcd_helpers
load backend_helpers

# assert_one_line_error TEXT: stderr is exactly "godislock: error: TEXT".
assert_one_line_error() {
  assert_equal "$stderr" "godislock: error: $1"
}

# --- the command's own exit code ---

@test "exit code 0 of the command is passed on" {
  run --separate-stderr "$GODISLOCK" run --name ec -- true
  assert_equal "$status" 0
  assert_equal "$stderr" ""
  nothing_left
}

@test "exit code 3 of the command is passed on" {
  run --separate-stderr "$GODISLOCK" run --name ec -- sh -c 'exit 3'
  assert_equal "$status" 3
  assert_equal "$stderr" ""
  nothing_left
}

@test "exit code 255 of the command is passed on" {
  run --separate-stderr "$GODISLOCK" run --name ec -- sh -c 'exit 255'
  assert_equal "$status" 255
  nothing_left
}

@test "a command killed by SIGTERM gives 143" {
  run --separate-stderr "$GODISLOCK" run --name ec -- sh -c 'kill -TERM $$'
  assert_equal "$status" 143
  nothing_left
}

@test "a command killed by SIGKILL gives 137" {
  run --separate-stderr "$GODISLOCK" run --name ec -- sh -c 'kill -KILL $$'
  assert_equal "$status" 137
  nothing_left
}

# --- 75: not acquired (-n) ---

@test "75 on --nonblock while the lock is held; -E sets the code" {
  start_holder held --ttl 5s
  local token
  token=$(holder_token held)
  [[ -n "$token" ]]
  run --separate-stderr "$GODISLOCK" run --name held -n \
    -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 75
  assert_equal "$stderr" ""
  run --separate-stderr "$GODISLOCK" run --name held --nonblock -E 0 \
    -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 0
  run --separate-stderr "$GODISLOCK" run --name held --no-wait -E 1 \
    -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 1
  run "$GODISLOCK" run -n -E 9 --name held -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 9
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  # The holder's lock is untouched, and a single try leaves nothing.
  assert_equal "$(holder_token held)" "$token"
  only_holder_left held
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  nothing_left
}

# --- 79: lock lost ---

@test "79 when the lock key is deleted while the command runs" {
  "$GODISLOCK" run --name lost --ttl 900ms -- sh -c \
    ': > "$1/started"; sleep 30 & wait' sh "$BATS_TEST_TMPDIR" \
    2>"$BATS_TEST_TMPDIR/err" 3>&- &
  local pid=$!
  wait_for 10 test -e "$BATS_TEST_TMPDIR/started"
  delete_lock_key lost
  wait_job 30 "$pid"
  assert_equal "$WAIT_STATUS" 79
  run cat "$BATS_TEST_TMPDIR/err"
  assert_equal "${#lines[@]}" 1
  assert_regex "$output" "^godislock: error: lock 'lost' lost while the \
command ran: the lock key no longer holds our token .*; the command was sent \
signal 15 "
  nothing_left
}

# --- 126 / 127 ---

@test "126: the command is not executable" {
  printf '#!/bin/sh\necho ran\n' >"$BATS_TEST_TMPDIR/noexec"
  chmod 644 "$BATS_TEST_TMPDIR/noexec"
  run --separate-stderr "$GODISLOCK" run --name ec -- "$BATS_TEST_TMPDIR/noexec"
  assert_equal "$status" 126
  assert_one_line_error \
    "cannot run '$BATS_TEST_TMPDIR/noexec': Permission denied"
  assert_output ""
  nothing_left
}

@test "126: the command is a directory" {
  run --separate-stderr "$GODISLOCK" run --name ec -- "$BATS_TEST_TMPDIR"
  assert_equal "$status" 126
  assert_one_line_error "cannot run '$BATS_TEST_TMPDIR': Permission denied"
  nothing_left
}

@test "127: the command is not found" {
  run -127 --separate-stderr "$GODISLOCK" run --name ec -- no-such-command-xyz
  assert_equal "$status" 127
  assert_one_line_error "cannot run 'no-such-command-xyz': command not found"
  run -127 --separate-stderr "$GODISLOCK" run --name ec -- "$BATS_TEST_TMPDIR/nope"
  assert_equal "$status" 127
  assert_one_line_error "cannot run '$BATS_TEST_TMPDIR/nope': command not found"
  nothing_left
}

@test "the error stays one line for a command name with a newline" {
  run -127 --separate-stderr "$GODISLOCK" run --name ec -- $'no-such\ncommand'
  assert_equal "$status" 127
  assert_equal "${#stderr_lines[@]}" 1
  assert_one_line_error "cannot run 'no-such?command': command not found"
}

@test "127 from exec after the lock was taken (missing interpreter); lock released" {
  printf '#!/no/such/interpreter\n' >"$BATS_TEST_TMPDIR/script"
  chmod 755 "$BATS_TEST_TMPDIR/script"
  run -127 --separate-stderr "$GODISLOCK" run --name ec -- "$BATS_TEST_TMPDIR/script"
  assert_equal "$status" 127
  assert_one_line_error \
    "cannot run '$BATS_TEST_TMPDIR/script': No such file or directory"
  nothing_left
  # The lock was really released: it can be taken at once.
  run "$GODISLOCK" run --name ec -n -- echo again
  assert_success
  assert_output again
}

@test "126 from exec after the lock was taken (interpreter not executable); lock released" {
  printf 'x\n' >"$BATS_TEST_TMPDIR/interp"
  chmod 644 "$BATS_TEST_TMPDIR/interp"
  printf '#!%s\n' "$BATS_TEST_TMPDIR/interp" >"$BATS_TEST_TMPDIR/script"
  chmod 755 "$BATS_TEST_TMPDIR/script"
  run --separate-stderr "$GODISLOCK" run --name ec -- "$BATS_TEST_TMPDIR/script"
  assert_equal "$status" 126
  assert_one_line_error \
    "cannot run '$BATS_TEST_TMPDIR/script': Permission denied"
  nothing_left
}

# --- contention ---

# The critical section: logs "start <monotonic ns> <fence>", increments a
# shared counter without any locking of its own (a lost update shows an
# overlap), logs "end <monotonic ns>".
write_critical_section() {
  cat >"$BATS_TEST_TMPDIR/cs.py" <<'PY'
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
PY
}

# Checks the merged logs: prints a diagnosis and fails on any overlap or
# fence out of order.
check_logs() {
  "$PY3" -S - "$@" <<'PY'
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
PY
}

@test "8 contenders x 25 runs: no overlap, fences strictly rise, nothing lost" {
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
  # Generous: on etcd the 200 runs took 27 s with the plain build on a
  # loaded 2-core machine; the ASan build runs about 3 times slower.
  local p
  for p in "${pids[@]}"; do
    wait_job 300 "$p"
  done
  run cat "$dir"/rc.*
  assert_equal "${#lines[@]}" 200
  refute_line --regexp '^[^0]|^0.'
  run cat "$dir/counter"
  assert_output 200
  run check_logs 200 "$dir"/log.*
  assert_success
  nothing_left
}

# --- --wait ---

# refused_after WAIT: `run --wait WAIT` on the held lock "held" exits 75
# without running its command; sets ELAPSED (ms).
refused_after() {
  local start
  start=$(mono_ms)
  run "$GODISLOCK" run --name held --wait "$1" -- touch "$BATS_TEST_TMPDIR/ran"
  ELAPSED=$(($(mono_ms) - start))
  assert_equal "$status" 75
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
}

@test "--wait 0 on a held lock exits 75 at once" {
  start_holder held
  refused_after 0
  ((ELAPSED < 8000))
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
}

@test "--wait 1 on a lock held for 10 s exits 75 after about 1 s" {
  start_holder held --ttl 10s
  refused_after 1
  ((ELAPSED >= 800 && ELAPSED <= 8000))
  # The holder was not disturbed.
  run "$GODISLOCK" run --name held -n -- true
  assert_equal "$status" 75
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  nothing_left
}

@test "a waiter whose --wait runs out: 75, it leaves nothing behind" {
  start_holder gaveup
  "$GODISLOCK" run --name gaveup --wait 0.5 -- \
    touch "$BATS_TEST_TMPDIR/ran" 3>&- &
  local waiter=$!
  wait_for 10 waiters_are gaveup 1
  wait_job 10 "$waiter"
  assert_equal "$WAIT_STATUS" 75
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  # The holder was not disturbed.
  only_holder_left gaveup
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  nothing_left
}

# --- hand-over ---

@test "a waiter with --wait 10 gets the lock right after the holder ends" {
  start_holder held
  "$GODISLOCK" run -v --name held --wait 10 -- \
    sh -c ': >"$1/got"; echo "$GODISLOCK_FENCE" >"$1/fence"' sh \
    "$BATS_TEST_TMPDIR" 2>"$BATS_TEST_TMPDIR/waiter.err" 3>&- &
  local waiter=$!
  # Waiting for the holder's release (Redis: its release channel; etcd: a
  # watch on its key), not polling.
  wait_for 10 file_matches "$BATS_TEST_TMPDIR/waiter.err" "$WAITING_RE"
  [[ ! -e "$BATS_TEST_TMPDIR/got" ]]
  local holder_fence start elapsed rc=0
  holder_fence=$(lock_fence held)
  [[ "$holder_fence" =~ ^[1-9][0-9]*$ ]]
  start=$(mono_ms)
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_for 10 test -e "$BATS_TEST_TMPDIR/got"
  elapsed=$(($(mono_ms) - start))
  wait_job 30 "$waiter"
  assert_equal "$WAIT_STATUS" 0
  # The holder's TTL was 30 s: only the release explains this.
  ((elapsed < 9000))
  (($(cat "$BATS_TEST_TMPDIR/fence") > holder_fence))
  nothing_left
}

@test "20 queued waiters run in arrival order, with strictly rising fences" {
  start_holder fifo
  local i pids=()
  for ((i = 1; i <= 20; i++)); do
    "$GODISLOCK" run --name fifo -- \
      sh -c 'echo "$1 $GODISLOCK_FENCE" >>"$2"' sh "$i" \
      "$BATS_TEST_TMPDIR/order" 3>&- &
    pids+=($!)
    wait_for 10 waiters_are fifo "$i"
  done
  [[ ! -e "$BATS_TEST_TMPDIR/order" ]]
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  for ((i = 1; i <= 20; i++)); do
    wait_job 30 "${pids[i - 1]}"
    assert_equal "$WAIT_STATUS" 0
  done
  run cut -d' ' -f1 "$BATS_TEST_TMPDIR/order"
  assert_output "$(seq 1 20)"
  run sort -c -n -u <(cut -d' ' -f2 "$BATS_TEST_TMPDIR/order")
  assert_success
  nothing_left
}

# --- the lock lost while the command runs (start_victim: helpers.bash) ---

# assert_lost NAME: the victim (BG_PID) exits 79, its command got TERM, and
# its stderr is the one line that names the loss of lock NAME.
assert_lost() {
  wait_job 30 "$BG_PID"
  assert_equal "$WAIT_STATUS" 79
  run cat "$BATS_TEST_TMPDIR/marker"
  assert_output got-term
  run cat "$BATS_TEST_TMPDIR/err"
  assert_equal "${#lines[@]}" 1
  assert_regex "$output" "^godislock: error: lock '$1' lost while the \
command ran: the lock key no longer holds our token"
}

@test "lock key deleted behind our back: command gets TERM, exit 79" {
  start_victim del --ttl 900ms
  local start elapsed
  start=$(mono_ms)
  delete_lock_key del
  assert_lost del
  elapsed=$(($(mono_ms) - start))
  ((elapsed < 10000))
  nothing_left
}

# Redis: the key's TTL cut to 1 ms; etcd: the lease revoked.
@test "lease ended behind our back: command gets TERM, exit 79" {
  start_victim rv --ttl 3s
  end_lease rv
  assert_lost rv
  nothing_left
}

# --- a holder or a waiter killed ---

@test "holder SIGKILLed: its command dies, a waiter gets the lock within a TTL" {
  local dir=$BATS_TEST_TMPDIR
  "$GODISLOCK" run --name crash --ttl 1s -- \
    sh -c 'echo $$ >"$1/pidfile"; exec sleep 30' sh "$dir" 3>&- &
  local holder=$!
  wait_for 10 test -s "$dir/pidfile"
  local child
  child=$(cat "$dir/pidfile")
  wait_for 10 grep -q sleep "/proc/$child/comm"
  "$GODISLOCK" run -v --name crash --wait 10 -- \
    sh -c ': >"$1/got"' sh "$dir" 2>"$dir/waiter.err" 3>&- &
  local waiter=$!
  wait_for 10 waiters_are crash 1
  [[ ! -e "$dir/got" ]]
  local start elapsed
  start=$(mono_ms)
  kill -KILL "$holder"
  wait_job 10 "$holder"
  assert_equal "$WAIT_STATUS" 137
  # PR_SET_PDEATHSIG: the command does not outlive its godislock.
  wait_for 5 pid_gone "$child"
  wait_for 10 test -e "$dir/got"
  elapsed=$(($(mono_ms) - start))
  wait_job 30 "$waiter"
  assert_equal "$WAIT_STATUS" 0
  # A 1 s lease (etcd raises it to its minimum TTL, 2 s by default).
  ((elapsed < 8000))
  nothing_left
}

@test "a waiter killed with SIGKILL does not block the queue for good" {
  start_holder wk --ttl 2s
  "$GODISLOCK" run --name wk --ttl 2s --wait 60s -- true 3>&- &
  local dead=$!
  wait_for 10 waiters_are wk 1
  "$GODISLOCK" run --name wk --ttl 2s --wait 60s -- \
    touch "$BATS_TEST_TMPDIR/third" 3>&- &
  local third=$!
  wait_for 10 waiters_are wk 2
  kill -KILL "$dead"
  wait_job 10 "$dead"
  assert_equal "$WAIT_STATUS" 137
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_job 30 "$third"
  assert_equal "$WAIT_STATUS" 0
  [[ -e "$BATS_TEST_TMPDIR/third" ]]
  # The dead waiter's place (etcd: its key and lease) lapses with its lease.
  wait_for 10 nothing_left
}

# --- status and release --force ---

@test "status of a free lock: 'free', exit 1" {
  run --separate-stderr "$GODISLOCK" status nothing-here
  assert_equal "$status" 1
  assert_output "lock 'nothing-here': free"
  assert_equal "$stderr" ""
}

@test "status of a held lock names the holder, exit 0; --json has the documented fields" {
  start_holder deploy
  run --separate-stderr "$GODISLOCK" status deploy
  assert_equal "$status" 0
  assert_line --index 0 "lock 'deploy': held (exclusive)"
  assert_line --index 1 --regexp "^  $(hostname):[0-9]+ [^,]+, for [0-9]+(ms|s), ttl [0-9]+s, fence [0-9]+: sh -c "
  run --separate-stderr "$GODISLOCK" status --json deploy
  assert_equal "$status" 0
  assert_equal "$(json 'len(d)')" 1
  assert_equal "$(json 'd[0]["name"]')" deploy
  assert_equal "$(json 'd[0]["state"]')" held
  assert_equal "$(json 'd[0]["kind"]')" exclusive
  assert_equal "$(json 'd[0]["limit"]')" 1
  assert_equal "$(json 'd[0]["queued"]')" 0
  assert_equal "$(json 'd[0]["holders"][0]["host"]')" "$(hostname)"
  assert_equal "$(json 'd[0]["holders"][0]["pid"]')" "$HOLDER_PID"
  assert_equal "$(json 'd[0]["holders"][0]["command"][:5]')" "sh -c"
  assert_equal "$(json 'd[0]["holders"][0]["slot"]')" 1
  assert_equal "$(json 'd[0]["holders"][0]["fence"] == d[0]["last_fence"]')" True
  assert_equal "$(json 'd[0]["holders"][0]["fence"]')" "$(lock_fence deploy)"
  assert_equal "$(json '0 < d[0]["holders"][0]["ttl_ms"] <= 30000')" True
  assert_equal "$(json 'd[0]["holders"][0]["held_ms"] >= 0')" True
  assert_equal "$(json 'sorted(d[0]["holders"][0])')" \
    "['command', 'fence', 'held_ms', 'host', 'pid', 'slot', 'ttl_ms', 'user']"
  assert_equal "$(json 'sorted(d[0])')" \
    "['holders', 'kind', 'last_fence', 'limit', 'name', 'queued', 'state']"
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  run "$GODISLOCK" status --json deploy
  assert_equal "$status" 1
  assert_equal "$(json 'd[0]["state"], d[0]["kind"], d[0]["holders"]')" \
    "('free', None, [])"
  nothing_left
}

@test "status counts a queued waiter; release --force: the holder gets 79, the waiter runs" {
  start_holder sj --ttl 20s
  "$GODISLOCK" run --name sj --wait 60s -- true 3>&- &
  local waiter=$!
  wait_for 10 waiters_are sj 1
  run --separate-stderr "$GODISLOCK" status sj
  assert_equal "$status" 0
  assert_line --index 0 "lock 'sj': held (exclusive), 1 queued"
  run --separate-stderr "$GODISLOCK" status --json sj
  assert_equal "$status" 0
  assert_equal "$(json 'd[0]["state"], d[0]["kind"], d[0]["queued"]')" \
    "('held', 'exclusive', 1)"
  assert_equal "$(json 'd[0]["holders"][0]["pid"]')" "$HOLDER_PID"
  assert_equal "$(json '0 < d[0]["holders"][0]["ttl_ms"] <= 20000')" True
  run "$GODISLOCK" status
  assert_output --partial "lock 'sj': held"
  run --separate-stderr "$GODISLOCK" release --force sj
  assert_success
  # The holder finds its key gone at its next refresh: 79.
  wait_job 30 "$HOLDER_PID"
  assert_equal "$WAIT_STATUS" 79
  wait_job 30 "$waiter"
  assert_equal "$WAIT_STATUS" 0
  wait_for 10 nothing_left
}
