# SPDX-License-Identifier: MIT
# Redis Cluster helpers for the bats suites, loaded after helpers.bash:
#   load helpers
#   load cluster_helpers
# start_cluster makes a private cluster of 3 masters and 3 replicas
# (redis-server --cluster-enabled yes on free loopback ports, daemonized
# with pidfiles in one dir under $BATS_TEST_TMPDIR, joined by redis-cli
# --cluster create) and waits until every node agrees it is ok;
# stop_cluster kills every node by PID. A teardown that uses them calls
# stop_cluster.

# Starts the cluster; sets CLUSTER_DIR, CLUSTER_PORTS (array) and exports
# GODISLOCK_URL (redis-cluster://, every node a seed).
start_cluster() {
  local masters=${1:-3} replicas=${2:-1}
  local n=$((masters * (1 + replicas))) i port attempt
  CLUSTER_DIR=$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/cluster.XXXXXX")
  CLUSTER_PORTS=()
  for ((i = 0; i < n; i++)); do
    for attempt in 1 2 3 4 5; do
      port=$(free_port)
      mkdir -p "$CLUSTER_DIR/$port"
      # A failed master is replaced within seconds, and a replica may
      # always take over (tests kill masters on purpose).
      if redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$CLUSTER_DIR/$port/nodes.conf" \
        --cluster-node-timeout 1000 --cluster-replica-validity-factor 0 \
        --save '' --appendonly no --dir "$CLUSTER_DIR/$port" --daemonize yes \
        --pidfile "$CLUSTER_DIR/$port/redis.pid" \
        --logfile "$CLUSTER_DIR/$port/redis.log" >/dev/null 2>&1 &&
        wait_for 15 node_answers "$port"; then
        CLUSTER_PORTS+=("$port")
        break
      fi
      kill_node "$port"
      rm -rf "${CLUSTER_DIR:?}/$port"
    done
  done
  if ((${#CLUSTER_PORTS[@]} != n)); then
    stop_cluster
    echo "could not start $n cluster nodes" >&2
    return 1
  fi
  local addrs=()
  for port in "${CLUSTER_PORTS[@]}"; do
    addrs+=("127.0.0.1:$port")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" \
    --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 ||
    {
      cat "$CLUSTER_DIR/create.log" >&2
      return 1
    }
  wait_for 30 cluster_converged
  local seeds
  seeds=$(
    IFS=,
    echo "${addrs[*]}"
  )
  export GODISLOCK_URL="redis-cluster://$seeds"
}

node_answers() {
  [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]] &&
    [[ -s "$CLUSTER_DIR/$1/redis.pid" ]]
}

node_pid() {
  cat "$CLUSTER_DIR/$1/redis.pid" 2>/dev/null
}

# kill_node PORT: SIGKILLs the node and waits until it is gone.
kill_node() {
  local pid
  pid=$(node_pid "$1") || return 0
  [[ -n "$pid" ]] || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
  wait_for 5 pid_gone "$pid" || true
  rm -f "$CLUSTER_DIR/$1/redis.pid"
}

stop_cluster() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    kill_node "$port"
  done
  CLUSTER_PORTS=()
}

# The ports of the nodes that are up.
live_ports() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    [[ -s "$CLUSTER_DIR/$port/redis.pid" ]] && echo "$port"
  done
}

# ccli PORT ARGS...: redis-cli on one node.
ccli() {
  local port=$1
  shift
  redis-cli -p "$port" "$@"
}

# cluster_converged: every live node says cluster_state:ok, every replica
# is in sync, and they all agree on who masters which slots.
cluster_converged() {
  local port views=() view
  for port in $(live_ports); do
    ccli "$port" cluster info | grep -q '^cluster_state:ok' || return 1
    if ccli "$port" role | head -1 | grep -q slave; then
      ccli "$port" info replication | grep -q 'master_link_status:up' ||
        return 1
    fi
    view=$(ccli "$port" cluster nodes | awk '$3 ~ /master/ && NF > 8 {
      if ($3 ~ /fail/) bad = 1; s = $2; for (i = 9; i <= NF; i++) if ($i !~ /^\[/) s = s " " $i; print s }
      END { exit bad }' | sort) || return 1
    views+=("$view")
  done
  local first=${views[0]}
  for view in "${views[@]}"; do
    [[ "$view" == "$first" ]] || return 1
  done
}

# key_master KEY: the port of the master of KEY's slot.
key_master() {
  local port slot
  port=$(live_ports | head -1)
  slot=$(ccli "$port" cluster keyslot "$1")
  ccli "$port" cluster nodes | awk -v slot="$slot" '$3 ~ /master/ && $3 !~ /fail/ {
      for (i = 9; i <= NF; i++) { n = split($i, r, "-"); if (n == 1) r[2] = r[1]
        if ($i !~ /^\[/ && slot + 0 >= r[1] + 0 && slot + 0 <= r[2] + 0) {
          split($2, a, "[:@]"); print a[2]; exit } } }'
}

# kcli KEY ARGS...: redis-cli ARGS on the master of KEY's slot.
kcli() {
  local port
  port=$(key_master "$1")
  shift
  redis-cli -p "$port" "$@"
}

# replica_of PORT: the port of a live replica of the master on PORT.
replica_of() {
  local id port
  id=$(ccli "$1" cluster myid)
  for port in $(live_ports); do
    if ccli "$port" cluster nodes | awk -v id="$id" \
      '$3 ~ /myself/ && $3 ~ /slave/ && $4 == id { found = 1 } END { exit !found }'; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# failover_master PORT: promotes a replica of the master on PORT with
# CLUSTER FAILOVER and waits until the cluster agrees.
failover_master() {
  local replica
  replica=$(replica_of "$1") || return 1
  [[ "$(ccli "$replica" cluster failover)" == OK ]] || return 1
  wait_for 20 node_is_master "$replica"
  wait_for 30 cluster_converged
}

node_is_master() {
  ccli "$1" role | head -1 | grep -qx master
}

# queue_len NAME: how many wait in lock NAME's queue.
queue_len() {
  kcli "godislock:{$1}" llen "godislock:{$1}:queue"
}

# wake_channels NAME: how many shard channels of lock NAME's waiters have
# subscribers on its slot's master.
wake_channels() {
  kcli "godislock:{$1}" pubsub shardchannels "godislock:{$1}:wake:*" | grep -c .
}
