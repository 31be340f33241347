#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The core scenarios on etcd (etcd://): exit codes, -n and --wait,
# contention with strictly rising fences, hand-over in arrival order, loss
# by lease revoke and by key delete, a holder or a waiter killed, status
# and release --force; against a private single-member etcd.
bats_require_minimum_version 1.5.0
load helpers
load etcd_helpers

setup() {
  start_etcd
  export GODISLOCK_URL="etcd://127.0.0.1:$ETCD_CLIENT_PORT"
}

teardown() {
  terminate_all_children
  stop_etcd
}

# The keys of lock NAME (prefix godislock:), one per line.
etcd_lock_keys() {
  etcdctl_t get --prefix --keys-only "godislock:$1/" | sed '/^$/d'
}

no_etcd_keys() {
  [[ -z "$(etcdctl_t get --prefix --keys-only godislock: | sed '/^$/d')" ]]
}

no_leases() {
  [[ "$(etcdctl_t lease list | head -1)" == "found 0 leases" ]]
}

# keys_are NAME N: lock NAME has exactly N keys (holder and waiters).
keys_are() {
  [[ "$(etcd_lock_keys "$1" | wc -l)" == "$2" ]]
}

# The critical section of the contention test (as in contention.bats).
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

check_logs() {
  "$PY3" -S - "$@" <<'EOF'
import sys
expected = int(sys.argv[1])
sections = []
for path in sys.argv[2:]:
    with open(path) as f:
        lines = f.read().split("\n")[:-1]
    for s, e in zip(lines[0::2], lines[1::2]):
        s, e = s.split(), e.split()
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

@test "etcd: the command's exit status is passed on; key and lease are gone after" {
  run "$GODISLOCK" run --name st -- sh -c 'exit 3'
  assert_equal "$status" 3
  run "$GODISLOCK" run --name st -- true
  assert_success
  run "$GODISLOCK" run --name st -- sh -c 'kill -TERM $$'
  assert_equal "$status" 143
  no_etcd_keys
  no_leases
}

@test "etcd: the command sees its fence (the key's create revision) and the lock's name" {
  run --separate-stderr "$GODISLOCK" run --name fe -- \
    sh -c 'echo "$GODISLOCK_FENCE $GODISLOCK_NAME"; etcdctl --endpoints "$ETCD_ENDPOINT" get --prefix --write-out=json godislock:fe/'
  assert_success
  local fence
  fence=${lines[0]%% *}
  assert_equal "${lines[0]#* }" fe
  [[ "$fence" =~ ^[1-9][0-9]*$ ]]
  # The key's create_revision is the fence.
  assert_equal "$(output=${lines[1]} json 'd["kvs"][0]["create_revision"]')" "$fence"
  run "$GODISLOCK" run --name fe -- sh -c 'echo "$GODISLOCK_FENCE"'
  ((output > fence))
}

@test "etcd: -n on a held lock exits 75 without running; -E sets the code" {
  start_holder busy --ttl 5s
  run --separate-stderr "$GODISLOCK" run -n --name busy -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 75
  assert_equal "$stderr" ""
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  run "$GODISLOCK" run -n -E 9 --name busy -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 9
  # A single try leaves no key and no lease behind.
  keys_are busy 1
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  no_etcd_keys
  no_leases
}

@test "etcd: --wait runs out while held: 75, and the waiter's key is gone" {
  start_holder wt --ttl 5s
  run "$GODISLOCK" run --wait 700ms --name wt -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 75
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  keys_are wt 1
  release_holder
  no_etcd_keys
}

@test "etcd: waiters get the lock in arrival order when the holder ends" {
  start_holder q --ttl 10s
  local dir=$BATS_TEST_TMPDIR i pids=()
  for i in 1 2 3; do
    "$GODISLOCK" run --name q --ttl 10s --wait 60s -- \
      sh -c 'echo "$1 $GODISLOCK_FENCE" >>"$2"' sh "$i" "$dir/order" 3>&- &
    pids+=($!)
    wait_for 10 keys_are q $((i + 1))
  done
  release_holder
  for i in 0 1 2; do
    wait_job 30 "${pids[$i]}"
    assert_equal "$WAIT_STATUS" 0
  done
  run cut -d' ' -f1 "$dir/order"
  assert_output "$(printf '1\n2\n3')"
  run cut -d' ' -f2 "$dir/order"
  local a b c
  read -r a b c <<<"$(echo $output)"
  ((a < b && b < c))
  no_etcd_keys
}

@test "etcd: 4 contenders x 8 runs: no overlap, fences strictly rise" {
  write_critical_section
  local dir=$BATS_TEST_TMPDIR c pids=()
  echo 0 >"$dir/counter"
  for c in 1 2 3 4; do
    (
      for i in $(seq 1 8); do
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
  assert_equal "${#lines[@]}" 32
  refute_line --regexp '^[^0]|^0.'
  assert_equal "$(cat "$dir/counter")" 32
  run check_logs 32 "$dir"/log.*
  assert_success
  no_etcd_keys
}

# start_victim NAME OPTIONS...: a command that writes "got-term" to
# $BATS_TEST_TMPDIR/marker on SIGTERM; returns once it runs. Sets BG_PID.
start_victim() {
  local name=$1 dir=$BATS_TEST_TMPDIR
  shift
  "$GODISLOCK" run --name "$name" "$@" -- sh -c \
    'trap "echo got-term >\"$1/marker\"; exit 0" TERM
     : >"$1/started"
     sleep 30 &
     wait' sh "$dir" 2>"$dir/err" 3>&- &
  BG_PID=$!
  wait_for 10 test -e "$dir/started"
}

@test "etcd: lease revoked behind our back: command gets TERM, exit 79" {
  start_victim rv --ttl 3s
  local lease
  lease=$(etcdctl_t lease list | sed -n 2p)
  [[ -n "$lease" ]]
  etcdctl_t lease revoke "$lease"
  wait_job 30 "$BG_PID"
  assert_equal "$WAIT_STATUS" 79
  run cat "$BATS_TEST_TMPDIR/marker"
  assert_output got-term
  run cat "$BATS_TEST_TMPDIR/err"
  assert_equal "${#lines[@]}" 1
  assert_regex "$output" "^godislock: error: lock 'rv' lost while the command ran"
  no_etcd_keys
}

@test "etcd: lock key deleted behind our back: command gets TERM, exit 79" {
  start_victim del --ttl 3s
  etcdctl_t del --prefix godislock:del/
  wait_job 30 "$BG_PID"
  assert_equal "$WAIT_STATUS" 79
  run cat "$BATS_TEST_TMPDIR/marker"
  assert_output got-term
  no_etcd_keys
  no_leases
}

@test "etcd: a holder killed with SIGKILL: its command dies, a waiter gets the lock after the lease" {
  local dir=$BATS_TEST_TMPDIR
  "$GODISLOCK" run --name hk --ttl 2s -- \
    sh -c 'echo $$ >"$1/pidfile"; exec sleep 30' sh "$dir" 3>&- &
  local holder=$!
  wait_for 10 test -s "$dir/pidfile"
  local child
  child=$(cat "$dir/pidfile")
  wait_for 10 grep -q sleep "/proc/$child/comm"
  "$GODISLOCK" run --name hk --ttl 2s --wait 30s -- \
    sh -c ': >"$1/got"' sh "$dir" 3>&- &
  local waiter=$!
  wait_for 10 keys_are hk 2
  [[ ! -e "$dir/got" ]]
  kill -KILL "$holder"
  wait_job 10 "$holder"
  assert_equal "$WAIT_STATUS" 137
  # PR_SET_PDEATHSIG: the command does not outlive its godislock.
  wait_for 5 pid_gone "$child"
  wait_job 30 "$waiter"
  assert_equal "$WAIT_STATUS" 0
  [[ -e "$dir/got" ]]
  no_etcd_keys
}

@test "etcd: a waiter killed with SIGKILL does not block the queue for good" {
  start_holder wk --ttl 2s
  "$GODISLOCK" run --name wk --ttl 2s --wait 60s -- true 3>&- &
  local dead=$!
  wait_for 10 keys_are wk 2
  "$GODISLOCK" run --name wk --ttl 2s --wait 60s -- \
    touch "$BATS_TEST_TMPDIR/third" 3>&- &
  local third=$!
  wait_for 10 keys_are wk 3
  kill -KILL "$dead"
  wait "$dead" 2>/dev/null || true
  release_holder
  wait_job 30 "$third"
  assert_equal "$WAIT_STATUS" 0
  [[ -e "$BATS_TEST_TMPDIR/third" ]]
  wait_for 10 no_etcd_keys
}

@test "etcd: status (text and --json) and release --force" {
  run "$GODISLOCK" status sj
  assert_equal "$status" 1
  assert_output "lock 'sj': free"
  start_holder sj --ttl 20s
  "$GODISLOCK" run --name sj --wait 60s -- true 3>&- &
  local waiter=$!
  wait_for 10 keys_are sj 2
  run --separate-stderr "$GODISLOCK" status sj
  assert_equal "$status" 0
  assert_line --index 0 "lock 'sj': held (exclusive), 1 queued"
  assert_line --index 1 --regexp "^  $(hostname):[0-9]+ [^,]+, for [0-9]+(ms|s), ttl [0-9]+s, fence [0-9]+: sh -c "
  run --separate-stderr "$GODISLOCK" status --json sj
  assert_equal "$status" 0
  assert_equal "$(json 'd[0]["state"], d[0]["kind"], d[0]["queued"]')" \
    "('held', 'exclusive', 1)"
  assert_equal "$(json 'd[0]["holders"][0]["pid"]')" "$HOLDER_PID"
  assert_equal "$(json 'd[0]["holders"][0]["fence"] == d[0]["last_fence"]')" True
  assert_equal "$(json '0 < d[0]["holders"][0]["ttl_ms"] <= 20000')" True
  assert_equal "$(json 'sorted(d[0]["holders"][0])')" \
    "['command', 'fence', 'held_ms', 'host', 'pid', 'slot', 'ttl_ms', 'user']"
  run "$GODISLOCK" status
  assert_output --partial "lock 'sj': held"
  run --separate-stderr "$GODISLOCK" release --force sj
  assert_success
  # The holder finds its key gone at its next refresh: 79.
  wait_job 30 "$HOLDER_PID"
  assert_equal "$WAIT_STATUS" 79
  wait_job 30 "$waiter"
  assert_equal "$WAIT_STATUS" 0
  wait_for 10 no_etcd_keys
}

@test "etcd: lock names with '/' and '%' do not share keys" {
  start_holder a --ttl 5s
  run "$GODISLOCK" run -n --name a/b -- true
  assert_success
  run "$GODISLOCK" run -n --name 'a%2Fb' -- true
  assert_success
  run "$GODISLOCK" status --json
  assert_equal "$(json '[x["name"] for x in d]')" "['a']"
  release_holder
}

@test "etcd: a sub-second --ttl is rounded up to whole seconds for the lease" {
  run --separate-stderr "$GODISLOCK" run --ttl 500ms --name sub -- \
    sh -c 'etcdctl --endpoints "$ETCD_ENDPOINT" lease timetolive \
      "$(etcdctl --endpoints "$ETCD_ENDPOINT" lease list | sed -n 2p)"'
  assert_success
  # Granted for 1 s (etcd raises a TTL below its minimum, 2 s with the
  # default heartbeat).
  assert_output --regexp 'granted with TTL\((1|2)s\)'
  # The command runs on through refreshes every ~166 ms.
  run "$GODISLOCK" run --ttl 500ms --name sub -- sleep 1.5
  assert_success
  no_etcd_keys
}

@test "etcd: --no-fair waiters race on each release without queuing a key" {
  start_holder nf --ttl 5s
  local dir=$BATS_TEST_TMPDIR i pids=()
  for i in 1 2; do
    "$GODISLOCK" run --no-fair --name nf --wait 30s -- \
      sh -c 'echo "$GODISLOCK_FENCE" >>"$1"' sh "$dir/fences" 3>&- &
    pids+=($!)
  done
  # Racers keep no key while they wait: only the holder's exists.
  sleep 0.5
  keys_are nf 1
  release_holder
  for i in 0 1; do
    wait_job 30 "${pids[$i]}"
    assert_equal "$WAIT_STATUS" 0
  done
  run sort -n "$dir/fences"
  assert_equal "${#lines[@]}" 2
  ((lines[0] < lines[1]))
  no_etcd_keys
  no_leases
}
