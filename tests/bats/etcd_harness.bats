#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The etcd helpers themselves: a private member starts, answers etcdctl and
# the JSON gateway, enforces a prefix-limited user, and is gone after
# stop_etcd.
bats_require_minimum_version 1.5.0
load helpers
load etcd_helpers

setup() {
  start_etcd
}

teardown() {
  terminate_all_children
  stop_etcd
}

@test "etcdctl and the JSON gateway reach the private member" {
  run etcdctl_t put k v
  assert_success
  run etcdctl_t get --print-value-only k
  assert_output v
  # "k" is "aw==" in base64.
  run curl -sf --noproxy '*' -X POST "$ETCD_ENDPOINT/v3/kv/range" \
    -d '{"key":"aw=="}'
  assert_success
  assert_output --partial '"value":"dg=="'
  [[ "$ETCD_ENDPOINT" != *:2379 ]]
}

@test "a user limited to a prefix is refused outside it" {
  enable_etcd_auth alice alice-pw godislock/
  run env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINT" \
    --user alice:alice-pw put godislock/a 1
  assert_success
  run env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINT" \
    --user alice:alice-pw put other/a 1
  assert_failure
  assert_output --partial "permission denied"
}

@test "stop_etcd kills the member by its PID" {
  local pid=$ETCD_PID
  stop_etcd
  run kill -0 "$pid"
  assert_failure
  run etcdctl_t --command-timeout 1s get k
  assert_failure
}
