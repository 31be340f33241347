#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# godislock on a Redis Cluster (redis-cluster://): a private cluster of 3
# masters and 3 replicas per test (cluster_helpers.bash), locks routed to
# the master of their slot, status over every master, and what a failover
# or bad seeds mean for a run.
bats_require_minimum_version 1.5.0
load helpers
load cluster_helpers

setup() {
  start_cluster
}

teardown() {
  terminate_all_children
  stop_cluster
  stop_redis
}

# Three lock names whose slots three different masters serve.
names_on_three_masters() {
  local i name port seen=" " out=()
  for ((i = 0; ${#out[@]} < 3; i++)); do
    name="n$i"
    port=$(key_master "godislock:{$name}")
    if [[ "$seen" != *" $port "* ]]; then
      seen+="$port "
      out+=("$name")
    fi
  done
  echo "${out[@]}"
}

@test "cluster: the harness makes 3 masters and 3 replicas, all ok, and stops them by PID" {
  [[ ${#CLUSTER_PORTS[@]} == 6 ]]
  local port masters=0 replicas=0 pids=()
  for port in "${CLUSTER_PORTS[@]}"; do
    if node_is_master "$port"; then
      masters=$((masters + 1))
    else
      replicas=$((replicas + 1))
    fi
    pids+=("$(node_pid "$port")")
  done
  assert_equal "$masters/$replicas" 3/3
  cluster_converged
  stop_cluster
  local pid
  for pid in "${pids[@]}"; do
    pid_gone "$pid"
  done
}

@test "cluster: run holds the lock on its slot's master and passes the exit status on" {
  local port
  port=$(key_master 'godislock:{job}')
  run "$GODISLOCK" run --name job -- sh -c \
    "redis-cli -p $port exists 'godislock:{job}'; exit 3"
  assert_equal "$status" 3
  assert_output 1
  run kcli 'godislock:{job}' exists 'godislock:{job}'
  assert_output 0
}

@test "cluster: a second run waits on the shard channel and runs after the first" {
  start_holder busy --ttl 60s
  "$GODISLOCK" run --name busy --wait 30s -- echo second \
    >"$BATS_TEST_TMPDIR/second" 2>&1 &
  local second=$!
  # Queued and subscribed on the slot's master (a shard channel).
  wait_for 30 output_is 1 queue_len busy
  wait_for 30 output_is 1 wake_channels busy
  ! grep -q second "$BATS_TEST_TMPDIR/second"
  release_holder
  # The holder's lease had most of a minute left: the waiter was woken.
  wait_job 20 "$second"
  assert_equal "$WAIT_STATUS" 0
  assert_equal "$(cat "$BATS_TEST_TMPDIR/second")" second
}

@test "cluster: locks on three masters at once; status lists them all; release --force routes by name" {
  local names i
  read -ra names <<<"$(names_on_three_masters)"
  for i in 0 1 2; do
    "$GODISLOCK" run --name "${names[i]}" --ttl 60s -- sh -c \
      ': >"$1"; sleep 60' sh "$BATS_TEST_TMPDIR/held-$i" 3>&- &
  done
  for i in 0 1 2; do
    wait_for 30 test -e "$BATS_TEST_TMPDIR/held-$i"
  done
  run "$GODISLOCK" status
  assert_success
  for i in 0 1 2; do
    assert_line --partial "lock '${names[i]}': held"
  done
  run "$GODISLOCK" status --json "${names[1]}"
  assert_success
  run "$GODISLOCK" release --force "${names[1]}"
  assert_success
  assert_line --index 0 "released lock '${names[1]}', held by:"
  run kcli "godislock:{${names[1]}}" exists "godislock:{${names[1]}}"
  assert_output 0
  run "$GODISLOCK" status "${names[0]}" "${names[2]}"
  assert_success
}

@test "cluster: CLUSTER FAILOVER of the lock's master while held: the run goes on and releases" {
  start_holder fo --ttl 3s
  local master
  master=$(key_master 'godislock:{fo}')
  failover_master "$master"
  [[ "$(key_master 'godislock:{fo}')" != "$master" ]]
  # Refreshes (every second) follow the move; the lease never lapses.
  sleep 4
  run kcli 'godislock:{fo}' exists 'godislock:{fo}'
  assert_output 1
  release_holder
  run kcli 'godislock:{fo}' exists 'godislock:{fo}'
  assert_output 0
}

# A hand-over message alone never starts a waiter's command on a cluster:
# the release script hands over only when SPUBLISH counts a subscriber on
# the master, but a shard message reaches the shard's replicas too, where a
# waiter may have subscribed with a map that a CLUSTER FAILOVER had just
# made stale (seen in tests/fault/run --scenario cluster-failover: the
# waiter ran its command while the releasing script deleted the key). The
# same message is sent here by hand while the holder still holds.
@test "cluster: a release hands the lock to the queued waiter, which runs on the message alone" {
  start_holder fq --ttl 60s
  "$GODISLOCK" run --name fq --wait 30s -v -- sh -c \
    'redis-cli -c -p "$1" get "godislock:{fq}" >"$2"' sh \
    "${CLUSTER_PORTS[0]}" "$BATS_TEST_TMPDIR/seen" \
    2>"$BATS_TEST_TMPDIR/err" 3>&- &
  local waiter=$!
  wait_for 30 output_is 1 queue_len fq
  wait_for 30 output_is 1 wake_channels fq
  local holder
  holder=$(kcli 'godislock:{fq}' get 'godislock:{fq}')
  release_holder
  wait_job 30 "$waiter"
  cat "$BATS_TEST_TMPDIR/err" >&2
  assert_equal "$WAIT_STATUS" 0
  # Its attempts are the ones before it slept: the hand-over needed none.
  run grep -c "after 2 attempt(s), 1 wakeup(s), handed over by its releaser" \
    "$BATS_TEST_TMPDIR/err"
  assert_output 1
  local seen
  seen=$(cat "$BATS_TEST_TMPDIR/seen")
  [[ -n "$seen" && "$seen" != "$holder" ]]
}

# While the lock's slot is MIGRATING, a script whose KEYS all exist on the
# source runs there, and its first command on keys it computes (the readers,
# limit, holder and lease keys; some missing) fails the script with "non
# local key" (Redis 7.0). In tests/fault/run --scenario cluster-reshard runs
# exited 69 on it; the attempt must be sent again until the move ends.
@test "cluster: an attempt caught by a slot migration (script 'non local key') is sent again, not an error" {
  start_holder mg --ttl 60s
  "$GODISLOCK" run --name mg --wait 30s -- true 3>&- &
  local first=$!
  wait_for 30 output_is 1 queue_len mg
  local slot src dst port
  slot=$(ccli "${CLUSTER_PORTS[0]}" cluster keyslot 'godislock:{mg}')
  src=$(key_master 'godislock:{mg}')
  for port in $(live_ports); do
    if [[ $port != "$src" ]] && node_is_master "$port"; then
      dst=$port
      break
    fi
  done
  ccli "$dst" cluster setslot "$slot" importing "$(ccli "$src" cluster myid)"
  ccli "$src" cluster setslot "$slot" migrating "$(ccli "$dst" cluster myid)"
  ccli "$src" config resetstat >/dev/null
  "$GODISLOCK" run --name mg --wait 30s -- true 2>"$BATS_TEST_TMPDIR/err" \
    3>&- &
  local second=$!
  # The second run's attempt ran into the migration at least once.
  wait_for 30 eval "ccli $src info errorstats | grep -q '^errorstat_ERR:count='"
  local keys
  keys=$(ccli "$src" cluster getkeysinslot "$slot" 100)
  # shellcheck disable=SC2086 # one word per key
  ccli "$src" migrate 127.0.0.1 "$dst" "" 0 5000 keys $keys
  # The target, the source, then the other masters (as redis-cli does).
  for port in "$dst" "$src" $(live_ports); do
    if node_is_master "$port"; then
      ccli "$port" cluster setslot "$slot" node "$(ccli "$dst" cluster myid)"
    fi
  done
  wait_for 30 cluster_converged
  release_holder
  wait_job 30 "$first"
  assert_equal "$WAIT_STATUS" 0
  wait_job 30 "$second"
  cat "$BATS_TEST_TMPDIR/err" >&2
  assert_equal "$WAIT_STATUS" 0
}

@test "cluster: a failover that lost the lock's key is a lost lock (79), the command signalled" {
  local master replica
  master=$(key_master 'godislock:{gone}')
  replica=$(replica_of "$master")
  # The replica is stopped and its link cut while the lock is taken (a
  # stopped process still has its socket buffered), so it never sees the
  # key; then its master dies and it takes over without it.
  kill -STOP "$(node_pid "$replica")"
  run ccli "$master" client kill type replica
  refute_output 0
  start_holder gone --ttl 3s
  kill_node "$master"
  kill -CONT "$(node_pid "$replica")"
  wait_job 30 "$HOLDER_PID"
  assert_equal "$WAIT_STATUS" 79
  run cat "$HOLDER_DIR/err"
  assert_output --partial "lock 'gone' lost while the command ran"
}

@test "cluster: a seed that is not a cluster node is named (64)" {
  start_redis
  run --separate-stderr "$GODISLOCK" run --url \
    "redis-cluster://127.0.0.1:$REDIS_PORT" --name x -- true
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: no node of \
redis-cluster://127.0.0.1:$REDIS_PORT gave the cluster's slot map: \
127.0.0.1:$REDIS_PORT is not a Redis Cluster node (cluster support \
disabled; use redis:// for a single server)"
}

@test "cluster: all seeds down is unavailable (69)" {
  local a b
  a=$(free_port)
  b=$(free_port)
  run --separate-stderr "$GODISLOCK" run --url \
    "redis-cluster://127.0.0.1:$a,127.0.0.1:$b" --name x -- true
  assert_equal "$status" 69
  assert_regex "$stderr" "^godislock: error: no node of redis-cluster://127.0.0.1:$a,127.0.0.1:$b gave the cluster's slot map: .*$a.*; .*$b"
}

@test "cluster: a name whose keys would not share a slot is refused (64)" {
  run --separate-stderr "$GODISLOCK" run --name '}x' -- true
  assert_equal "$status" 64
  assert_regex "$stderr" "would not share a hash slot"
}

@test "cluster: a holder killed with SIGKILL announces nothing; the waiter's sleep ends with the holder's TTL" {
  # Every sleep on a shard subscription is bounded by the holder's TTL: a
  # subscription that hears nothing (a dead holder, or one left behind on
  # a node by Redis < 7.4) costs a waiter that much at most.
  start_holder silent --ttl 2s
  kill -KILL "$HOLDER_PID"
  run --separate-stderr "$GODISLOCK" run --name silent --wait 20s -- echo got
  assert_success
  assert_output got
}

@test "cluster: the ACL rule of acl-rule (the man page's), set on every node, is enough for run, status and release --force" {
  local port
  local -a words
  read -ra words <<<"$("$GODISLOCK" acl-rule)"
  for port in "${CLUSTER_PORTS[@]}"; do
    run ccli "$port" ACL SETUSER locker "${words[@]}" '>acl-pw'
    assert_output OK
  done
  export GODISLOCK_URL="${GODISLOCK_URL/redis-cluster:\/\//redis-cluster://locker:@}"
  export GODISLOCK_PASSWORD=acl-pw
  start_holder acl --ttl 30s
  "$GODISLOCK" run --name acl --wait 20s -- echo second \
    >"$BATS_TEST_TMPDIR/second" 2>&1 &
  local second=$!
  wait_for 30 output_is 1 queue_len acl
  run "$GODISLOCK" status
  assert_success
  assert_line --partial "lock 'acl': held"
  release_holder
  wait_job 20 "$second"
  assert_equal "$WAIT_STATUS" 0
  start_holder acl --ttl 30s
  run "$GODISLOCK" release --force acl
  assert_success
  wait_job 20 "$HOLDER_PID"
  assert_equal "$WAIT_STATUS" 79
}
