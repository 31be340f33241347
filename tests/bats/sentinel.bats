#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Redis Sentinel (redis-sentinel:// URLs): discovery, status and release
# through the sentinels, a failover under a holder and its waiters, and bad
# input. A master, a replica and three sentinels per test
# (sentinel_helpers.bash).
bats_require_minimum_version 1.5.0
load helpers
load sentinel_helpers

setup() { start_sentinel_topology; }

teardown() {
  terminate_all_children
  stop_sentinel_topology
}

# refused CODE MESSAGE ARGS...: godislock ARGS exits CODE with MESSAGE as
# its one line on stderr, and the command never ran.
refused() {
  local code=$1 want=$2
  shift 2
  run --separate-stderr "$GODISLOCK" "$@"
  assert_equal "$status" "$code"
  assert_equal "$stderr" "godislock: error: $want"
  assert_equal "$output" ""
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
}

# has_key PORT KEY: the server on PORT has KEY.
has_key() { [[ "$(redis-cli -p "$1" exists "$2")" == 1 ]]; }

# waiters_subscribed PORT NAME N: N queued waiters of lock NAME listen on
# the server on PORT.
waiters_subscribed() {
  [[ "$(redis-cli -p "$1" pubsub channels "godislock:{$2}:wake:*" | grep -c .)" == "$3" ]]
}

# queue_is PORT NAME N: lock NAME has N queued waiters on the server on PORT.
queue_is() { [[ "$(redis-cli -p "$1" llen "godislock:{$2}:queue")" == "$3" ]]; }

@test "a lock through Sentinel lives on the master the sentinels name (GODISLOCK_URL)" {
  run --separate-stderr "$GODISLOCK" run -v --name disc -- \
    sh -c 'redis-cli -p "$1" get "godislock:{disc}"' sh "$MASTER_PORT"
  assert_equal "$status" 0
  [[ "$output" =~ ^[0-9a-f]{32}$ ]] # the token, on the master itself
  assert_regex "$stderr" "names 127\.0\.0\.1:$MASTER_PORT as master 'mymaster'"
  assert_equal "$(rcli exists 'godislock:{disc}')" 0
}

@test "--url redis-sentinel:// with one sentinel down: the next one answers" {
  kill -KILL "${SENTINEL_PIDS[0]}"
  run --separate-stderr "$GODISLOCK" run --url "$SENTINEL_URL" --name one -- \
    true
  assert_equal "$status" 0
}

@test "status and release --force through Sentinel" {
  "$GODISLOCK" run --name held -- sleep 30 3>&- &
  local holder=$!
  wait_for 10 has_key "$MASTER_PORT" 'godislock:{held}'
  run --separate-stderr "$GODISLOCK" status held
  assert_equal "$status" 0
  assert_line --index 0 "lock 'held': held (exclusive)"
  run --separate-stderr "$GODISLOCK" status
  assert_equal "$status" 0
  assert_output --partial "lock 'held': held"
  run --separate-stderr "$GODISLOCK" release --force held
  assert_equal "$status" 0
  run "$GODISLOCK" status held
  assert_equal "$status" 1
  kill -TERM "$holder"
  wait_job 30 "$holder" || true
}

@test "a failover under a holder whose key survived: the command finishes, waiters follow to the new master" {
  local out=$BATS_TEST_TMPDIR/order
  "$GODISLOCK" run -v --ttl 20s --name fo -- sh -c 'sleep 3; echo holder >>"$1"' \
    sh "$out" 2>"$BATS_TEST_TMPDIR/holder.err" 3>&- &
  local holder=$!
  wait_for 10 has_key "$MASTER_PORT" 'godislock:{fo}'
  wait_for 10 has_key "$REPLICA_PORT" 'godislock:{fo}'
  "$GODISLOCK" run -v --name fo -- sh -c 'echo waiter >>"$1"' sh "$out" \
    2>"$BATS_TEST_TMPDIR/waiter.err" 3>&- &
  local waiter=$!
  wait_for 10 queue_is "$REPLICA_PORT" fo 1 # the queue reached the replica
  failover_to_replica
  local rc=0
  wait_job 60 "$holder"
  rc=$WAIT_STATUS
  assert_equal "$rc" 0
  rc=0
  wait_job 60 "$waiter"
  rc=$WAIT_STATUS
  assert_equal "$rc" 0
  assert_equal "$(cat "$out")" "$(printf 'holder\nwaiter')"
  grep -q "survived the failover" "$BATS_TEST_TMPDIR/holder.err"
  # Both ended on the new master: nothing of the lock is left there.
  assert_equal "$(rcli exists 'godislock:{fo}')" 0
}

@test "waiters queued before a failover keep their order on the new master" {
  local out=$BATS_TEST_TMPDIR/order go=$BATS_TEST_TMPDIR/go
  "$GODISLOCK" run --name fifo -- sh -c 'while [ ! -e "$1" ]; do sleep 0.05; done' \
    sh "$go" 3>&- &
  local holder=$!
  wait_for 10 has_key "$MASTER_PORT" 'godislock:{fifo}'
  local w pids=()
  for w in 1 2 3; do
    "$GODISLOCK" run --name fifo -- sh -c 'echo "$1" >>"$2"' sh "w$w" "$out" \
      3>&- &
    pids+=($!)
    wait_for 10 queue_is "$MASTER_PORT" fifo "$w"
  done
  wait_for 10 queue_is "$REPLICA_PORT" fifo 3
  failover_to_replica
  # Every waiter has moved its subscription to the new master before the
  # holder lets go (a waiter without a subscriber there would lose its
  # place after a grace).
  wait_for 20 waiters_subscribed "$MASTER_PORT" fifo 3
  touch "$go"
  local rc=0
  wait_job 60 "$holder"
  rc=$WAIT_STATUS
  assert_equal "$rc" 0
  for w in "${pids[@]}"; do
    rc=0
    wait_job 60 "$w"
    rc=$WAIT_STATUS
    assert_equal "$rc" 0
  done
  assert_equal "$(cat "$out")" "$(printf 'w1\nw2\nw3')"
}

@test "a failover that loses the holder's key: the command is stopped, exit 79 naming the failover" {
  "$GODISLOCK" run --ttl 30s --name lost -- sleep 30 \
    2>"$BATS_TEST_TMPDIR/err" 3>&- &
  local holder=$!
  wait_for 10 has_key "$REPLICA_PORT" 'godislock:{lost}'
  # The replica forgets the key behind the master's back: what a failover
  # before the write reached it would leave.
  redis-cli -p "$REPLICA_PORT" config set replica-read-only no >/dev/null
  redis-cli -p "$REPLICA_PORT" del 'godislock:{lost}' >/dev/null
  failover_to_replica
  local rc=0
  wait_job 60 "$holder"
  rc=$WAIT_STATUS
  assert_equal "$rc" 79
  grep -q "did not survive a failover" "$BATS_TEST_TMPDIR/err"
  grep -q "from 127.0.0.1:$REPLICA_PORT to 127.0.0.1:$MASTER_PORT" \
    "$BATS_TEST_TMPDIR/err"
}

@test "the master SIGKILLed: the next run finds the promoted replica" {
  kill_master
  run --separate-stderr "$GODISLOCK" run --name after -- true
  assert_equal "$status" 0
}

@test "--replicas 1: taken with the replica up; never started with it stopped (exit 75)" {
  run --separate-stderr "$GODISLOCK" run --replicas 1 --replica-timeout 10s \
    --name rep -- true
  assert_equal "$status" 0
  kill -STOP "$REPLICA_PID"
  run --separate-stderr "$GODISLOCK" run --replicas 1 --replica-timeout 200ms \
    --wait 1s --name rep -- touch "$BATS_TEST_TMPDIR/ran"
  kill -CONT "$REPLICA_PID"
  assert_equal "$status" 75
  assert_equal "$stderr" "godislock: warning: lock 'rep' not acquired: only 0 of 1 replica acknowledged the acquisition within 200 ms"
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  assert_equal "$(rcli exists 'godislock:{rep}')" 0 # given back
}

@test "--replicas 1 on a plain master: the replica stopped under a holder stops the command (exit 79)" {
  # The command starts only once the replica acknowledged the lock (on a
  # loaded machine a 100 ms WAIT may fall short first: the lock is given
  # back and taken again); only then is the replica stopped.
  GODISLOCK_URL=redis://127.0.0.1:$MASTER_PORT "$GODISLOCK" run -v --replicas 1 \
    --replica-timeout 100ms --ttl 2s --wait 60s --name rep2 -- sh -c \
    ': >"$1"; exec sleep 30' sh "$BATS_TEST_TMPDIR/started" \
    2>"$BATS_TEST_TMPDIR/err" 3>&- &
  local holder=$!
  wait_for 60 test -e "$BATS_TEST_TMPDIR/started"
  kill -STOP "$REPLICA_PID"
  wait_job 30 "$holder"
  kill -CONT "$REPLICA_PID"
  assert_equal "$WAIT_STATUS" 79
  grep -q "lost while the command ran" "$BATS_TEST_TMPDIR/err"
  grep -q "refresh failed: only 0 of 1 replica acknowledged the refresh within 100 ms" \
    "$BATS_TEST_TMPDIR/err"
}

@test "bad input through Sentinel: one line each, documented exit code" {
  refused 64 "no sentinel knows master 'nosuch' (sentinel 127.0.0.1:${SENTINEL_PORTS[0]} does not know it)" \
    run --url "redis-sentinel://127.0.0.1:${SENTINEL_PORTS[0]}/nosuch" -- \
    touch "$BATS_TEST_TMPDIR/ran"
  local dead
  dead=$(free_port)
  refused 69 "no sentinel of master 'mymaster' answered: cannot connect to redis://127.0.0.1:$dead: Connection refused" \
    run --url "redis-sentinel://127.0.0.1:$dead/mymaster" -- \
    touch "$BATS_TEST_TMPDIR/ran"
  # A master that sentinels monitor but that does not run.
  redis-cli -p "${SENTINEL_PORTS[0]}" sentinel monitor gone 127.0.0.1 "$dead" 2 \
    >/dev/null
  refused 69 "master 'gone' named by sentinel 127.0.0.1:${SENTINEL_PORTS[0]}: cannot connect to redis://127.0.0.1:$dead: Connection refused" \
    run --connect-timeout 300ms \
    --url "redis-sentinel://127.0.0.1:${SENTINEL_PORTS[0]}/gone" -- \
    touch "$BATS_TEST_TMPDIR/ran"
  refused 64 "invalid Redis URL: missing master name (redis-sentinel://host:port,.../MASTER)" \
    run --url "redis-sentinel://127.0.0.1:1" -- true
  refused 64 "invalid Redis URL: missing sentinel host in ''" \
    run --url "redis-sentinel://127.0.0.1:1,/m" -- true
  refused 64 "invalid Redis URL: sentinel port '0' is not a number from 1 to 65535" \
    run --url "redis-sentinel://127.0.0.1:0/m" -- true
  refused 64 "invalid Redis URL: database index 'x' is not a number from 0 to 1000000" \
    run --url "redis-sentinel://127.0.0.1:1/m/x" -- true
  refused 64 "--sentinel-user needs a redis-sentinel:// URL" \
    run --url "redis://127.0.0.1:1" --sentinel-user u -- true
  refused 64 "--replica-timeout needs --replicas N" \
    run --replica-timeout 1s -- true
  refused 64 "invalid value 'x' for --replicas: a number of replicas from 0 to 1000" \
    run --replicas x -- true
}

@test "sentinels with a password of their own: --sentinel-password-file, GODISLOCK_SENTINEL_PASSWORD" {
  stop_sentinel_topology
  SENTINEL_PASSWORD=sentinel-secret start_sentinel_topology
  local pwfile=$BATS_TEST_TMPDIR/spw
  echo sentinel-secret >"$pwfile"
  run --separate-stderr "$GODISLOCK" run --name auth -- true
  assert_equal "$status" 69
  assert_regex "$stderr" "^godislock: error: no sentinel of master 'mymaster' accepted the login: .*NOAUTH"
  run --separate-stderr "$GODISLOCK" run --sentinel-password-file "$pwfile" \
    --name auth -- sh -c 'env | grep -c SENTINEL_PASSWORD || true'
  assert_equal "$status" 0
  assert_output 0
  GODISLOCK_SENTINEL_PASSWORD=sentinel-secret run --separate-stderr \
    "$GODISLOCK" run --name auth -- sh -c 'env | grep -c SENTINEL_PASSWORD || true'
  assert_equal "$status" 0
  assert_output 0 # removed from the command's environment
  GODISLOCK_SENTINEL_PASSWORD=not-the-password run --separate-stderr \
    "$GODISLOCK" run -v --name auth -- true
  assert_equal "$status" 69
  assert_regex "$stderr" "accepted the login: .*WRONGPASS"
  [[ "$stderr" != *not-the-password* ]] # never printed
}

@test "rediss-sentinel://: TLS to the sentinels and to the master they name" {
  stop_sentinel_topology
  tls_certs
  SENTINEL_TLS=1 start_sentinel_topology
  local url=rediss-sentinel://127.0.0.1:${SENTINEL_PORTS[0]},127.0.0.1:${SENTINEL_PORTS[1]}/mymaster
  SSL_CERT_FILE=$TLS_DIR/ca.crt run --separate-stderr "$GODISLOCK" run \
    --url "$url" --name tls -- echo ran
  assert_equal "$status" 0
  assert_output ran
  # Plaintext to a TLS-only sentinel is refused (69), as for a direct URL.
  run --separate-stderr "$GODISLOCK" run --connect-timeout 1s \
    --url "redis-sentinel://127.0.0.1:${SENTINEL_PORTS[0]}/mymaster" -- true
  assert_equal "$status" 69
}
