#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# What happens to the processes a command leaves running in the background:
# by default the lock is released when the command itself exits and they
# run on without it; with --wait-tree the lock is held until every
# descendant has exited, and a loss reaches them all.
bats_require_minimum_version 1.5.0
load helpers

setup() { start_redis; }

key_exists() {
  [[ "$(rcli exists "godislock:{$1}")" == 1 ]]
}

# A command that starts a background job and exits 4 at once. The job
# writes bg-started, waits for the file "go", then writes bg-done; the
# command's own pid goes to "child".
BG_SCRIPT='echo $$ >"$1/child"
( : >"$1/bg-started"
  while [ ! -e "$1/go" ]; do sleep 0.02; done
  : >"$1/bg-done" ) &
exit 4'

start_tree() {
  local name=$1 dir=$BATS_TEST_TMPDIR
  shift
  "$GODISLOCK" run --name "$name" "$@" -- sh -c "$BG_SCRIPT" sh "$dir" \
    2>"$dir/err" 3>&- &
  BG_PID=$!
  wait_for 10 test -e "$dir/bg-started"
  wait_for 10 test -s "$dir/child"
  wait_for 10 pid_gone "$(cat "$dir/child")"
}

@test "by default the lock is released when the command exits, its background job runs on" {
  local dir=$BATS_TEST_TMPDIR
  start_tree bg
  wait_job 10 "$BG_PID"
  assert_equal "$WAIT_STATUS" 4
  [[ ! -e "$dir/bg-done" ]]
  assert_no_lock_key
  run "$GODISLOCK" run --name bg -n -- echo free
  assert_output free
  : >"$dir/go"
  wait_for 10 test -e "$dir/bg-done"
}

@test "--wait-tree holds the lock until the background job has exited too" {
  local dir=$BATS_TEST_TMPDIR
  start_tree tree --wait-tree
  # The command has exited; its background job still holds the lock.
  key_exists tree
  run "$GODISLOCK" run --name tree -n -- echo taken
  assert_equal "$status" 75
  refute_output taken
  kill -0 "$BG_PID"
  : >"$dir/go"
  wait_job 10 "$BG_PID"
  assert_equal "$WAIT_STATUS" 4
  [[ -e "$dir/bg-done" ]]
  assert_no_lock_key
}

@test "--wait-tree: a loss after the command exited reaches its background job, 79" {
  local dir=$BATS_TEST_TMPDIR
  start_tree lost --wait-tree --ttl 1s
  rcli del "godislock:{lost}" >/dev/null
  wait_job 10 "$BG_PID"
  assert_equal "$WAIT_STATUS" 79
  [[ ! -e "$dir/bg-done" ]]
  ! pgrep -f "while \[ ! -e" >/dev/null
  run cat "$dir/err"
  assert_line --regexp "^godislock: error: lock 'lost' lost while the command ran"
}
