# SPDX-License-Identifier: MIT
# etcd helpers for the bats suites, loaded after helpers.bash:
#   load helpers
#   load etcd_helpers
# start_etcd starts a private single-member etcd on free loopback ports
# with its own data dir under $BATS_TEST_TMPDIR (never the system etcd on
# 2379); stop_etcd kills it by PID; etcdctl_t runs etcdctl against it. A
# teardown that uses them should call stop_etcd (terminate_all_children
# also reaps it, as a background job of the test).

# require_etcd: etcd and etcdctl are installed; else fails when
# GODISLOCK_REQUIRE_ETCD is set, or skips the test.
require_etcd() {
  if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    if [[ -n "${GODISLOCK_REQUIRE_ETCD:-}" ]]; then
      echo "etcd or etcdctl not installed" >&2
      return 1
    fi
    skip "etcd not installed (Debian: etcd-server etcd-client)"
  fi
}

# Starts etcd; sets ETCD_PID, ETCD_DIR, ETCD_CLIENT_PORT, ETCD_PEER_PORT and
# exports ETCD_ENDPOINT (http://127.0.0.1:PORT). Skips the test when etcd is
# not installed, unless GODISLOCK_REQUIRE_ETCD=1. With ETCD_TLS_CERT=NAME
# (after tls_certs), the client port speaks TLS with $TLS_DIR/NAME.crt and
# ETCD_ENDPOINT is https://. ETCD_EXTRA_ARGS (an array) go to etcd as they
# are.
start_etcd() {
  local scheme=http tls_args=() curl_tls=()
  if [[ -n "${ETCD_TLS_CERT:-}" ]]; then
    scheme=https
    tls_args=(--cert-file "$TLS_DIR/$ETCD_TLS_CERT.crt"
      --key-file "$TLS_DIR/$ETCD_TLS_CERT.key")
    curl_tls=(--insecure) # liveness only; some test certificates name other hosts
  fi
  require_etcd || return 1
  ETCD_DIR=$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/etcd.XXXXXX")
  local attempt i client peer
  for attempt in 1 2 3; do
    client=$(free_port)
    peer=$(free_port)
    rm -rf "$ETCD_DIR/data"
    etcd --name m0 --data-dir "$ETCD_DIR/data" \
      --listen-client-urls "$scheme://127.0.0.1:$client" \
      --advertise-client-urls "$scheme://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" \
      --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "m0=http://127.0.0.1:$peer" \
      --initial-cluster-token "godislock-bats-$$-$RANDOM" \
      "${tls_args[@]}" "${ETCD_EXTRA_ARGS[@]}" \
      --logger zap >>"$ETCD_DIR/etcd.log" 2>&1 3>&- &
    ETCD_PID=$!
    for i in $(seq 1 200); do
      if ! kill -0 "$ETCD_PID" 2>/dev/null; then
        break # exited: port taken; try other ports
      fi
      # /health is true once the member has a leader.
      if curl -sf --noproxy '*' -m 1 "${curl_tls[@]}" \
        "$scheme://127.0.0.1:$client/health" 2>/dev/null |
        grep -q '"health":"true"'; then
        ETCD_CLIENT_PORT=$client
        ETCD_PEER_PORT=$peer
        export ETCD_PID ETCD_DIR ETCD_CLIENT_PORT ETCD_PEER_PORT
        export ETCD_ENDPOINT="$scheme://127.0.0.1:$client"
        return 0
      fi
      sleep 0.05
    done
    kill -KILL "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
  done
  echo "etcd did not start; log: $ETCD_DIR/etcd.log" >&2
  return 1
}

stop_etcd() {
  if [[ -n "${ETCD_PID:-}" ]]; then
    kill -CONT "$ETCD_PID" 2>/dev/null || true
    kill -KILL "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
    ETCD_PID=
  fi
}

# etcdctl_t ARGS...: etcdctl against the private member (as root:PW when
# ETCD_ROOT_PASSWORD is set).
etcdctl_t() {
  local user=()
  if [[ -n "${ETCD_ROOT_PASSWORD:-}" ]]; then
    user=(--user "root:$ETCD_ROOT_PASSWORD")
  fi
  if [[ "$ETCD_ENDPOINT" == https://* ]]; then
    user+=(--cacert "$TLS_DIR/ca.crt")
  fi
  ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINT" --dial-timeout 2s \
    --command-timeout 5s "${user[@]}" "$@"
}

# enable_etcd_auth USER PASSWORD PREFIX: a root user (password in
# ETCD_ROOT_PASSWORD afterwards) and USER, whose role may read and write
# only keys under PREFIX; then authentication on.
enable_etcd_auth() {
  local root_pw=root-pw
  etcdctl_t user add "root:$root_pw" >/dev/null &&
    etcdctl_t user grant-role root root >/dev/null &&
    etcdctl_t role add godislock-test >/dev/null &&
    etcdctl_t role grant-permission godislock-test --prefix=true readwrite \
      "$3" >/dev/null &&
    etcdctl_t user add "$1:$2" >/dev/null &&
    etcdctl_t user grant-role "$1" godislock-test >/dev/null &&
    etcdctl_t auth enable >/dev/null &&
    ETCD_ROOT_PASSWORD=$root_pw
}

# start_etcd_cluster: three private members on loopback (m0..m2). Sets
# ETCD_PIDS, ETCD_CLIENT_PORTS (arrays), ETCD_DIR and exports ETCD_ENDPOINT
# (member 0, for etcdctl_t) and ETCD_CLUSTER_URL
# (etcd://127.0.0.1:P0,127.0.0.1:P1,127.0.0.1:P2). Stop with
# stop_etcd_cluster.
start_etcd_cluster() {
  require_etcd || return 1
  ETCD_DIR=$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/etcd.XXXXXX")
  local i peers=() cluster="" token="godislock-bats-$$-$RANDOM"
  ETCD_CLIENT_PORTS=()
  ETCD_PIDS=()
  for i in 0 1 2; do
    ETCD_CLIENT_PORTS+=("$(free_port)")
    peers+=("$(free_port)")
    cluster+="${cluster:+,}m$i=http://127.0.0.1:${peers[$i]}"
  done
  for i in 0 1 2; do
    start_etcd_member "$i" "$cluster" "$token" "${peers[$i]}"
  done
  ETCD_PEER_PORTS=("${peers[@]}")
  ETCD_CLUSTER_TOKEN=$token
  ETCD_CLUSTER=$cluster
  export ETCD_ENDPOINT="http://127.0.0.1:${ETCD_CLIENT_PORTS[0]}"
  export ETCD_CLUSTER_URL="etcd://127.0.0.1:${ETCD_CLIENT_PORTS[0]},127.0.0.1:${ETCD_CLIENT_PORTS[1]},127.0.0.1:${ETCD_CLIENT_PORTS[2]}"
  for i in 0 1 2; do
    wait_for 30 etcd_member_healthy "$i" ||
      { echo "etcd member $i did not start; logs in $ETCD_DIR" >&2; return 1; }
  done
}

# start_etcd_member I CLUSTER TOKEN PEER_PORT: (re)starts member I with its
# data dir (the cluster's initial state is only read on the first start).
start_etcd_member() {
  local i=$1 client=${ETCD_CLIENT_PORTS[$1]}
  etcd --name "m$i" --data-dir "$ETCD_DIR/data$i" \
    --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$4" \
    --initial-advertise-peer-urls "http://127.0.0.1:$4" \
    --initial-cluster "$2" --initial-cluster-token "$3" \
    --initial-cluster-state new \
    --logger zap >>"$ETCD_DIR/etcd$i.log" 2>&1 3>&- &
  ETCD_PIDS[$i]=$!
}

# etcd_member_healthy I: member I answers and sees a leader.
etcd_member_healthy() {
  curl -sf --noproxy '*' -m 1 "http://127.0.0.1:${ETCD_CLIENT_PORTS[$1]}/health" \
    2>/dev/null | grep -q '"health":"true"'
}

# etcd_leader: prints the index (0..2) of the member that is the leader.
etcd_leader() {
  local i reply
  for i in 0 1 2; do
    reply=$(curl -sf --noproxy '*' -m 1 -X POST -d '{}' \
      "http://127.0.0.1:${ETCD_CLIENT_PORTS[$i]}/v3/maintenance/status" 2>/dev/null) ||
      continue
    if "$PY3" -S -c 'import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if d.get("leader") and d["leader"] == d["header"]["member_id"] else 1)' "$reply"; then
      echo "$i"
      return 0
    fi
  done
  return 1
}

# kill_etcd_member I: SIGKILL member I and reap it.
kill_etcd_member() {
  kill -CONT "${ETCD_PIDS[$1]}" 2>/dev/null || true
  kill -KILL "${ETCD_PIDS[$1]}" 2>/dev/null || true
  wait "${ETCD_PIDS[$1]}" 2>/dev/null || true
}

stop_etcd_cluster() {
  local i
  for i in "${!ETCD_PIDS[@]}"; do
    kill_etcd_member "$i"
  done
  ETCD_PIDS=()
}
