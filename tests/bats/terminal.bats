#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A command run from a terminal stays interactive: it reads the terminal, and
# Ctrl-C reaches it exactly once (the child's process group is given the
# terminal's foreground).
bats_require_minimum_version 1.5.0
load helpers

setup() { start_redis; }

PTY_RUN="$BATS_TEST_DIRNAME/lib/pty_run.py"

@test "the child reads the terminal and gets Ctrl-C exactly once" {
  run python3 "$PTY_RUN" '[["reading", "hello\n"], ["ready", "\u0003"]]' -- \
    "$GODISLOCK" run --name tty -- sh -c \
    'echo reading; read line; echo "got:$line"; trap "echo INT-\$((n=n+1)); exit 9" INT; echo ready; sleep 30 & wait'
  assert_success
  assert_line "got:hello"
  assert_line "ready"
  assert_line --regexp '^(\^C)?INT-1$'
  refute_line --partial "INT-2"
  assert_line "exit 9"
  run rcli exists 'godislock:{tty}'
  assert_output 0
}

@test "Ctrl-C at a terminal ends a child that does not trap it, with 130" {
  run python3 "$PTY_RUN" '[["ready", "\u0003"]]' -- \
    "$GODISLOCK" run --name tty2 -- sh -c 'echo ready; sleep 30'
  assert_success
  assert_line "ready"
  assert_line "exit 130"
  run rcli exists 'godislock:{tty2}'
  assert_output 0
}

# The command starts its sleep before it says "start-2": dash spawns with
# vfork, and a Ctrl-Z that stops a vfork child before its exec leaves dash
# itself unstoppable in vfork until it is continued, so no job would stop
# (with or without godislock).
@test "Ctrl-Z stops the job in an interactive shell and fg resumes it" {
  export TSTP_BIN="$GODISLOCK"
  run python3 "$PTY_RUN" \
    '[["bash-[0-9.]+[$#] ", "\"$TSTP_BIN\" run --name tstp -- sh -c \"sleep 3 & echo start-\\$((1+1)); wait; echo done-\\$((6*7))\"\n"], ["start-2", "\u001a"], ["Stopped", "jobs\n"], ["Stopped", "fg\n"], ["done-42", "echo rc=$?\n"], ["rc=[0-9]+", "exit\n"]]' \
    -- bash --norc --noprofile -i
  assert_success
  assert_output --regexp 'Stopped +'
  assert_line "done-42"
  assert_line --regexp '(^|[^=])rc=0$'
  run rcli exists 'godislock:{tstp}'
  assert_output 0
}

@test "on a terminal a waiter shows a live line with the time waited, then clears it" {
  start_holder live
  run python3 "$PTY_RUN" '[]' -- \
    "$GODISLOCK" run --wait 2500ms --name live -- true
  assert_success
  assert_line "exit 75"
  assert_output --partial "godislock: waiting for lock 'live' held by $(hostname):"
  assert_output --regexp "waiting for lock 'live' held by [^ ]+ \(sh -c [^)]*\): 1s"
  # The line is erased before godislock ends: the last thing shown on it is
  # the erase sequence.
  assert_output --partial $'\r\e[K'
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
}

@test "no live line with --quiet, nor when stderr is not a terminal" {
  start_holder live
  run python3 "$PTY_RUN" '[]' -- \
    "$GODISLOCK" run --quiet --wait 1200ms --name live -- true
  assert_line "exit 75"
  refute_output --partial "waiting for lock"
  run --separate-stderr "$GODISLOCK" run --wait 1200ms --name live -- true
  assert_equal "$status" 75
  assert_equal "$stderr" ""
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
}
