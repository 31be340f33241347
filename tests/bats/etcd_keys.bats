#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# What etcd's backend keeps on the server: the fence is the lock key's
# create revision, lock names map to keys that never collide, a sub-second
# --ttl becomes a whole-second lease, and --no-fair waiters keep no key.
# The core scenarios run against etcd as core_etcd.bats
# (core/scenarios.bats).
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
