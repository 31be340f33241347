# SPDX-License-Identifier: MIT
# etcd helpers for the bats suites, loaded after helpers.bash:
#   load helpers
#   load etcd_helpers
# start_etcd starts a private single-member etcd on free loopback ports
# with its own data dir under $BATS_TEST_TMPDIR (never the system etcd on
# 2379); stop_etcd kills it by PID; etcdctl_t runs etcdctl against it. A
# teardown that uses them should call stop_etcd (terminate_all_children
# also reaps it, as a background job of the test).

# Starts etcd; sets ETCD_PID, ETCD_DIR, ETCD_CLIENT_PORT, ETCD_PEER_PORT and
# exports ETCD_ENDPOINT (http://127.0.0.1:PORT). Skips the test when etcd is
# not installed, unless GODISLOCK_REQUIRE_ETCD=1.
start_etcd() {
  if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    if [[ -n "${GODISLOCK_REQUIRE_ETCD:-}" ]]; then
      echo "etcd or etcdctl not installed" >&2
      return 1
    fi
    skip "etcd not installed (Debian: etcd-server etcd-client)"
  fi
  ETCD_DIR=$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/etcd.XXXXXX")
  local attempt i client peer
  for attempt in 1 2 3; do
    client=$(free_port)
    peer=$(free_port)
    rm -rf "$ETCD_DIR/data"
    etcd --name m0 --data-dir "$ETCD_DIR/data" \
      --listen-client-urls "http://127.0.0.1:$client" \
      --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" \
      --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "m0=http://127.0.0.1:$peer" \
      --initial-cluster-token "godislock-bats-$$-$RANDOM" \
      --logger zap >>"$ETCD_DIR/etcd.log" 2>&1 3>&- &
    ETCD_PID=$!
    for i in $(seq 1 200); do
      if ! kill -0 "$ETCD_PID" 2>/dev/null; then
        break # exited: port taken; try other ports
      fi
      # /health is true once the member has a leader.
      if curl -sf --noproxy '*' -m 1 "http://127.0.0.1:$client/health" 2>/dev/null |
        grep -q '"health":"true"'; then
        ETCD_CLIENT_PORT=$client
        ETCD_PEER_PORT=$peer
        export ETCD_PID ETCD_DIR ETCD_CLIENT_PORT ETCD_PEER_PORT
        export ETCD_ENDPOINT="http://127.0.0.1:$client"
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
