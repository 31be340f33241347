#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `godislock status` on Redis (queued waiters, counted and shared holders,
# listing by SCAN, foreign keys) and `godislock release --force` (breaks a
# lock, wakes its waiters at once, names the holder), plus configuration
# from the environment. Status of a free and of a held lock, and a queued
# waiter, are core scenarios, run against Redis and etcd:
# core/scenarios.bats.
bats_require_minimum_version 1.5.0
load helpers

setup() { start_redis; }

@test "status shows queued waiters, counted and shared holders" {
  start_holder deploy
  "$GODISLOCK" run --name deploy -- true 3>&- &
  local waiter=$!
  wait_for 10 test_queue_len deploy 1
  "$GODISLOCK" run --limit 3 --name sem -- sleep 30 3>&- &
  local c1=$!
  "$GODISLOCK" run --shared --name rw -- sleep 30 3>&- &
  local s1=$!
  "$GODISLOCK" run --shared --name rw -- sleep 30 3>&- &
  local s2=$!
  wait_for 10 "$GODISLOCK" status sem rw
  wait_for 10 test_shared_holders rw 2
  run "$GODISLOCK" status deploy sem rw
  assert_success
  assert_line "lock 'deploy': held (exclusive), 1 queued"
  assert_line "lock 'sem': held (counted, 1 of 3 places)"
  assert_line --regexp "^  .*, slot [1-3]: sleep 30$"
  assert_line "lock 'rw': held (shared, 2 holders)"
  # One free name among held ones: exit 1.
  run "$GODISLOCK" status deploy nope
  assert_equal "$status" 1
  kill -TERM "$c1" "$s1" "$s2"
  wait_job 10 "$c1"
  wait_job 10 "$s1"
  wait_job 10 "$s2"
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_job 10 "$waiter"
  assert_equal "$WAIT_STATUS" 0
}

test_queue_len() {
  [[ "$(rcli llen "godislock:{$1}:queue")" == "$2" ]]
}

test_shared_holders() {
  [[ "$(rcli zcard "godislock:{$1}:readers")" == "$2" ]]
}

@test "status without a name lists every lock under the prefix (SCAN), and only those" {
  start_holder alpha
  "$GODISLOCK" run --name beta -- true
  "$GODISLOCK" run --prefix other: --name gamma -- sleep 30 3>&- &
  local other=$!
  rcli set unrelated:key 1 >/dev/null
  run "$GODISLOCK" status
  assert_success
  assert_line "lock 'alpha': held (exclusive)"
  # beta was released; its fence key is still there until it expires.
  assert_line "lock 'beta': free"
  refute_output --partial gamma
  run "$GODISLOCK" status --prefix other:
  assert_success
  assert_line "lock 'gamma': held (exclusive)"
  refute_output --partial alpha
  run "$GODISLOCK" status --json --prefix nothing:
  assert_equal "$status" 1
  assert_output "[]"
  run "$GODISLOCK" status --prefix nothing:
  assert_equal "$status" 1
  assert_output "no locks under prefix 'nothing:'"
  kill -TERM "$other"
  wait_job 10 "$other"
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  # Nothing held any more: exit 1.
  run "$GODISLOCK" status
  assert_equal "$status" 1
}

@test "status --json stays valid JSON for any command line" {
  "$GODISLOCK" run --name weird -- sh -c 'sleep 30' "$(printf 'a"b\\c\001\tz\xff\xc3')" 3>&- &
  local pid=$!
  wait_for 10 "$GODISLOCK" status weird
  run "$GODISLOCK" status --json weird
  assert_success
  assert_equal "$(json 'd[0]["holders"][0]["command"]')" \
    "$(printf 'sh -c sleep 30 a"b\\c\001\tz\xef\xbf\xbd\xef\xbf\xbd')"
  # The text form does not let control characters through.
  run "$GODISLOCK" status weird
  assert_line --partial 'a"b\c??z'
  kill -TERM "$pid"
  wait_job 10 "$pid"
}

@test "status and release leave a foreign key alone: 65" {
  rcli set 'godislock:{alien}' someone-else >/dev/null
  run --separate-stderr "$GODISLOCK" status alien
  assert_equal "$status" 65
  assert_output "lock 'alien': key 'godislock:{alien}' was not made by godislock (it has no TTL); left alone"
  run --separate-stderr "$GODISLOCK" status --json alien
  assert_equal "$status" 65
  assert_equal "$(json 'd[0]["state"], d[0]["foreign"]')" \
    "('foreign', {'key': 'godislock:{alien}', 'problem': 'no-ttl'})"
  run --separate-stderr "$GODISLOCK" release --force alien
  assert_equal "$status" 65
  assert_equal "$stderr" "godislock: error: lock 'alien': key 'godislock:{alien}' was not made by godislock (it has no TTL); left alone"
  assert_equal "$(rcli get 'godislock:{alien}')" someone-else
}

@test "release --force breaks a held lock, names its holder, wakes the waiter at once; the old holder's command is stopped" {
  start_holder stale --ttl 15s
  local old_pid=$HOLDER_PID
  # --wait 5s: it gets the lock only if woken long before the 15 s lease
  # could expire.
  "$GODISLOCK" run --wait 5s --name stale -- sh -c 'echo got-it >"$1"' sh \
    "$BATS_TEST_TMPDIR/waiter" 3>&- &
  local waiter=$!
  wait_for 10 test_queue_len stale 1
  run --separate-stderr "$GODISLOCK" release --force stale
  assert_success
  assert_line --index 0 "released lock 'stale', held by:"
  assert_line --index 1 --regexp "^  $(hostname):${old_pid} "
  wait_job 20 "$waiter"
  assert_equal "$WAIT_STATUS" 0
  run cat "$BATS_TEST_TMPDIR/waiter"
  assert_output got-it
  # The old holder finds out at its next refresh (every 5 s): its command
  # is signalled and it exits 79.
  wait_job 30 "$old_pid"
  assert_equal "$WAIT_STATUS" 79
  run grep -c "lock 'stale' lost while the command ran" "$HOLDER_DIR/err"
  assert_output 1
  assert_no_lock_key
}

@test "release --force on a free lock: 1; without --force: 64 and nothing touched" {
  run "$GODISLOCK" release --force idle
  assert_equal "$status" 1
  assert_output "lock 'idle' was free; nothing released"
  start_holder keep
  run --separate-stderr "$GODISLOCK" release keep
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: release breaks lock 'keep' for whoever holds it: add --force to do it"
  run "$GODISLOCK" status keep
  assert_success
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
}

@test "release --force of a counted or shared lock ends every hold" {
  "$GODISLOCK" run --limit 2 --name sem -- sleep 30 3>&- &
  local a=$!
  "$GODISLOCK" run --limit 2 --name sem -- sleep 30 3>&- &
  local b=$!
  wait_for 10 test_slots_held sem 2
  run "$GODISLOCK" release --force sem
  assert_success
  assert_equal "$(grep -c 'sleep 30' <<<"$output")" 2
  run "$GODISLOCK" status sem
  assert_equal "$status" 1
  # Nothing of the counted lock is left to stop another kind.
  run "$GODISLOCK" run --nonblock --name sem -- true
  assert_success
  kill -TERM "$a" "$b"
  wait_job 10 "$a"
  wait_job 10 "$b"
}

test_slots_held() {
  [[ "$("$GODISLOCK" status --json "$1" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["holders"]))')" == "$2" ]]
}

@test "configuration from the environment; the command line wins" {
  GODISLOCK_TTL=7s GODISLOCK_PREFIX=envp: run --separate-stderr \
    "$GODISLOCK" run -v --name e -- sh -c 'redis-cli -s "$1" pttl "envp:{e}"' sh "$REDIS_SOCK"
  assert_success
  assert_regex "$stderr" "ttl 7s"
  ((output > 0 && output <= 7000))
  GODISLOCK_TTL=7s run --separate-stderr "$GODISLOCK" run -v --ttl 9s --name e -- true
  assert_regex "$stderr" "ttl 9s"
  GODISLOCK_TTL=30x run --separate-stderr "$GODISLOCK" run --name e -- true
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: invalid value '30x' for GODISLOCK_TTL: unknown unit (use ms, s, m or h)"
  GODISLOCK_VERBOSE=1 run --separate-stderr "$GODISLOCK" run --name e -- true
  assert_regex "$stderr" "godislock: debug: "
  GODISLOCK_CONFLICT_EXIT_CODE=3 GODISLOCK_WAIT=0 run "$GODISLOCK" run --name e -- true
  assert_success
  start_holder e
  GODISLOCK_CONFLICT_EXIT_CODE=3 GODISLOCK_WAIT=0 run "$GODISLOCK" run --name e -- true
  assert_equal "$status" 3
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
}
