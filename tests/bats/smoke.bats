#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
load helpers

setup() { start_redis; }

@test "--version prints the version" {
  run "$GODISLOCK" --version
  assert_success
  assert_output --regexp '^godislock [0-9]+\.[0-9]+\.[0-9]+'
}

@test "a command runs under the lock and its exit code is passed on" {
  run "$GODISLOCK" run --name smoke -- sh -c 'echo "$GODISLOCK_NAME"; exit 7'
  assert_equal "$status" 7
  assert_output smoke
  run rcli exists 'godislock:{smoke}'
  assert_output 0
}
