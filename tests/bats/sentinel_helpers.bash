# SPDX-License-Identifier: MIT
# A Redis Sentinel topology for the bats suites: one master, one replica and
# three sentinels on free loopback ports, each in $BATS_TEST_TMPDIR with a
# written config, stopped by PID. Load after helpers:
#   load helpers
#   load sentinel_helpers
#
# start_sentinel_topology [NAME] (with SENTINEL_PASSWORD set, the sentinels
# require it: requirepass, and sentinel-pass among themselves; with
# SENTINEL_TLS set, every port speaks TLS only: call tls_certs first) sets:
#   SENTINEL_MASTER_NAME   the monitored name (default "mymaster")
#   MASTER_PORT MASTER_PID REPLICA_PORT REPLICA_PID
#   SENTINEL_PORTS (array) SENTINEL_PIDS (array)
#   SENTINEL_URL           redis-sentinel://127.0.0.1:S1,...:S3/NAME
# and points REDIS_PORT/REDIS_PID (rcli, stop_redis) at the master, and
# GODISLOCK_URL at SENTINEL_URL. Sentinels judge a master down after
# 1000 ms without an answer and give a failover 5000 ms (the settings the
# Redis docs' test setups use, made short).

# _rcli PORT ARGS...: redis-cli to the server on PORT (over TLS, trusting
# the test CA, in a SENTINEL_TLS topology).
_rcli() {
  local port=$1
  shift
  if [[ -n "${SENTINEL_TLS:-}" ]]; then
    redis-cli --tls --cacert "$TLS_DIR/ca.crt" -p "$port" "$@"
  else
    redis-cli -p "$port" "$@"
  fi
}

# _launch_redis DIR NAME PORT [ARGS...]: starts one daemonized redis-server
# (or sentinel, with its config file first among ARGS) without waiting. In
# a SENTINEL_TLS topology, PORT speaks TLS only (tls_certs' server
# certificate, for 127.0.0.1), and so do replication and the sentinels'
# own connections (tls-replication).
_launch_redis() {
  local dir=$1 name=$2 port=$3
  shift 3
  local tls=()
  if [[ -n "${SENTINEL_TLS:-}" ]]; then
    tls=(--port 0 --tls-port "$port" --tls-cert-file "$TLS_DIR/server.crt"
      --tls-key-file "$TLS_DIR/server.key" --tls-ca-cert-file "$TLS_DIR/ca.crt"
      --tls-auth-clients no --tls-replication yes)
  fi
  rm -f "$dir/$name.pid"
  redis-server "$@" --port "$port" --bind 127.0.0.1 --dir "$dir" \
    --daemonize yes --pidfile "$dir/$name.pid" --logfile "$dir/$name.log" \
    "${tls[@]}" >/dev/null 2>&1
}

# _await_redis DIR NAME PORT: prints the PID of the server _launch_redis
# started once it answers PING; fails (killing it) if it does not.
_await_redis() {
  local dir=$1 name=$2 port=$3 i reply
  for i in $(seq 1 250); do
    # A sentinel with a password answers NOAUTH: it is up.
    reply=$(_rcli "$port" ping 2>/dev/null) || true
    if [[ -s "$dir/$name.pid" ]] && [[ "$reply" == PONG || "$reply" == *NOAUTH* ]]; then
      cat "$dir/$name.pid"
      return 0
    fi
    if grep -qE 'aborting|FATAL|Bad directive' "$dir/$name.log" 2>/dev/null; then
      break
    fi
    sleep 0.02
  done
  if [[ -s "$dir/$name.pid" ]]; then
    kill -KILL "$(cat "$dir/$name.pid")" 2>/dev/null || true
  fi
  echo "could not start $name on port $port (see $dir/$name.log)" >&2
  return 1
}

# scli PORT ARGS...: redis-cli to the sentinel on PORT (with its password
# when the topology has one).
scli() {
  local port=$1
  shift
  if [[ -n "${SENTINEL_PASSWORD:-}" ]]; then
    REDISCLI_AUTH=$SENTINEL_PASSWORD _rcli "$port" "$@"
  else
    _rcli "$port" "$@"
  fi
}

# sentinel_field PORT FIELD: a field of SENTINEL MASTER as sentinel PORT sees it.
sentinel_field() {
  scli "$1" sentinel master "$SENTINEL_MASTER_NAME" 2>/dev/null |
    awk -v f="$2" 'NR % 2 == 1 { k = $0 } NR % 2 == 0 && k == f { print; exit }'
}

# True when every sentinel knows the replica and both other sentinels, and
# all name MASTER_PORT as the master (what a failover needs).
sentinels_agree() {
  local p
  for p in "${SENTINEL_PORTS[@]}"; do
    [[ "$(sentinel_field "$p" num-slaves)" == 1 ]] || return 1
    [[ "$(sentinel_field "$p" num-other-sentinels)" == 2 ]] || return 1
    [[ "$(sentinel_master_port "$p")" == "$MASTER_PORT" ]] || return 1
  done
}

# The port sentinel PORT names as the master now.
sentinel_master_port() {
  scli "$1" sentinel get-master-addr-by-name "$SENTINEL_MASTER_NAME" \
    2>/dev/null | sed -n 2p
}

# True when the replica's link to the master is up.
replica_in_sync() {
  _rcli "$REPLICA_PORT" info replication 2>/dev/null |
    grep -q '^master_link_status:up'
}

# A sentinel's run id (40 hex digits), fixed per sentinel number.
_sentinel_id() {
  printf '%040x' "$1"
}

start_sentinel_topology() {
  SENTINEL_MASTER_NAME=${1:-mymaster}
  SENTINEL_DIR=$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/sentinel.XXXXXX")
  SENTINEL_PORTS=()
  SENTINEL_PIDS=()
  local common=(--save '' --appendonly no --repl-diskless-sync-delay 0)
  MASTER_PORT=$(free_port)
  REPLICA_PORT=$(free_port)
  _launch_redis "$SENTINEL_DIR" master "$MASTER_PORT" "${common[@]}"
  _launch_redis "$SENTINEL_DIR" replica "$REPLICA_PORT" "${common[@]}" \
    --replicaof 127.0.0.1 "$MASTER_PORT"
  MASTER_PID=$(_await_redis "$SENTINEL_DIR" master "$MASTER_PORT") || return 1
  REPLICA_PID=$(_await_redis "$SENTINEL_DIR" replica "$REPLICA_PORT") ||
    return 1
  wait_for 10 replica_in_sync || return 1
  local s k port conf pid
  for s in 1 2 3; do
    SENTINEL_PORTS+=("$(free_port)")
  done
  # Each sentinel is told its own id and the other two (known-sentinel,
  # known-replica: what a sentinel writes into its own config once it has
  # met them), so that they agree at once instead of after their first
  # hello messages, which come every 2 s.
  for s in 1 2 3; do
    port=${SENTINEL_PORTS[s - 1]}
    conf="$SENTINEL_DIR/sentinel$s.conf"
    {
      echo "sentinel myid $(_sentinel_id "$s")"
      echo "sentinel monitor $SENTINEL_MASTER_NAME 127.0.0.1 $MASTER_PORT 2"
      echo "sentinel down-after-milliseconds $SENTINEL_MASTER_NAME 1000"
      echo "sentinel failover-timeout $SENTINEL_MASTER_NAME 5000"
      echo "sentinel known-replica $SENTINEL_MASTER_NAME 127.0.0.1 $REPLICA_PORT"
      for k in 1 2 3; do
        if ((k != s)); then
          echo "sentinel known-sentinel $SENTINEL_MASTER_NAME 127.0.0.1" \
            "${SENTINEL_PORTS[k - 1]} $(_sentinel_id "$k")"
        fi
      done
    } >"$conf"
    if [[ -n "${SENTINEL_PASSWORD:-}" ]]; then
      {
        echo "requirepass $SENTINEL_PASSWORD"
        echo "sentinel sentinel-pass $SENTINEL_PASSWORD"
      } >>"$conf"
    fi
    _launch_redis "$SENTINEL_DIR" "sentinel$s" "$port" "$conf" --sentinel
  done
  for s in 1 2 3; do
    pid=$(_await_redis "$SENTINEL_DIR" "sentinel$s" "${SENTINEL_PORTS[s - 1]}") ||
      return 1
    SENTINEL_PIDS+=("$pid")
  done
  wait_for 15 sentinels_agree || return 1
  SENTINEL_URL="redis-sentinel://127.0.0.1:${SENTINEL_PORTS[0]},127.0.0.1:${SENTINEL_PORTS[1]},127.0.0.1:${SENTINEL_PORTS[2]}/$SENTINEL_MASTER_NAME"
  REDIS_PORT=$MASTER_PORT
  REDIS_PID=$MASTER_PID
  export GODISLOCK_URL=$SENTINEL_URL
}

# Kills every process of the topology by PID (SIGCONT first: a stopped
# process would not die before it runs again).
stop_sentinel_topology() {
  local pid
  for pid in "${SENTINEL_PIDS[@]}" ${MASTER_PID:-} ${REPLICA_PID:-}; do
    kill -CONT "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in "${SENTINEL_PIDS[@]}" ${MASTER_PID:-} ${REPLICA_PID:-}; do
    wait_for 5 pid_gone "$pid" || true
  done
  SENTINEL_PIDS=()
  MASTER_PID=
  REPLICA_PID=
  REDIS_PID=
}

# failover_to_replica: SENTINEL FAILOVER, then waits until every sentinel
# names the replica as the master. Swaps MASTER_* and REPLICA_* (the old
# master rejoins as a replica after a while) and points rcli at the new
# master.
failover_to_replica() {
  scli "${SENTINEL_PORTS[0]}" sentinel failover "$SENTINEL_MASTER_NAME" \
    >/dev/null || return 1
  wait_for_master "$REPLICA_PORT" || return 1
  _swap_roles
}

# wait_for_master PORT: every sentinel names PORT as the master.
wait_for_master() {
  local want=$1
  _all_name() {
    local p
    for p in "${SENTINEL_PORTS[@]}"; do
      [[ "$(sentinel_master_port "$p")" == "$want" ]] || return 1
    done
  }
  wait_for 30 _all_name
}

_swap_roles() {
  local port=$MASTER_PORT pid=$MASTER_PID
  MASTER_PORT=$REPLICA_PORT
  MASTER_PID=$REPLICA_PID
  REPLICA_PORT=$port
  REPLICA_PID=$pid
  REDIS_PORT=$MASTER_PORT
  REDIS_PID=$MASTER_PID
}

# kill_master: SIGKILLs the master and waits until the sentinels promote the
# replica (down-after-milliseconds, then the failover). The old master is
# gone for good: MASTER_* name the new master, REPLICA_PID is empty.
kill_master() {
  kill -KILL "$MASTER_PID"
  wait_for 5 pid_gone "$MASTER_PID" || return 1
  wait_for_master "$REPLICA_PORT" || return 1
  _swap_roles
  REPLICA_PID=
}
