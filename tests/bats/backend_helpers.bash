# SPDX-License-Identifier: MIT
# One interface over the two backends, for the scenarios that are written
# once and run against each (core/scenarios.bats, through core_redis.bats
# and core_etcd.bats). Loaded after helpers.bash and etcd_helpers.bash.
# BACKEND (redis or etcd) comes from the name of the test file bats runs;
# each helper below calls its redis_ or etcd_ version.
#
#   start_backend / stop_backend  a private redis-server or single-member
#                                 etcd; GODISLOCK_URL names it
#   holder_token NAME             what marks the holder of lock NAME
#   lock_fence NAME               the fence of the holder of lock NAME
#   waiters_are NAME N            N waiters queue for lock NAME
#   only_holder_left NAME         lock NAME keeps nothing of a waiter
#   delete_lock_key NAME          deletes the holder's key
#   end_lease NAME                ends the holder's lease on the server
#   nothing_left                  no lock (nor etcd lease) is left
#   WAITING_RE                    what -v prints once a waiter waits for
#                                 the holder to go

case $(basename "$BATS_TEST_FILENAME" .bats) in
  core_redis)
    BACKEND=redis
    WAITING_RE='waiting for its release'
    ;;
  core_etcd)
    BACKEND=etcd
    WAITING_RE='watching godislock:[^ ]+/[0-9a-f]+ for its deletion'
    ;;
  *)
    echo "backend_helpers: run through core_redis.bats or core_etcd.bats," \
      "not $BATS_TEST_FILENAME" >&2
    return 1
    ;;
esac
BATS_TEST_NAME_PREFIX="$BACKEND: "

start_backend() { "${BACKEND}_start"; }
stop_backend() { "${BACKEND}_stop"; }
holder_token() { "${BACKEND}_holder_token" "$@"; }
lock_fence() { "${BACKEND}_lock_fence" "$@"; }
waiters_are() { "${BACKEND}_waiters_are" "$@"; }
only_holder_left() { "${BACKEND}_only_holder_left" "$@"; }
delete_lock_key() { "${BACKEND}_delete_lock_key" "$@"; }
end_lease() { "${BACKEND}_end_lease" "$@"; }
nothing_left() { "${BACKEND}_nothing_left"; }

setup() {
  unset GODISLOCK_PASSWORD REDISCLI_AUTH
  start_backend
}

teardown() {
  terminate_all_children
  stop_backend
}

# --- Redis: the key godislock:{NAME}, its fence counter and its queue ---

redis_start() { start_redis; }
redis_stop() { stop_redis; }

redis_holder_token() {
  rcli get "godislock:{$1}"
}

# The lock's fence counter: the holder's fence while it is held.
redis_lock_fence() {
  rcli get "godislock:{$1}:fence"
}

# N tokens in the queue and N waiters subscribed (to their wake-up or to the
# release channel).
redis_waiters_are() {
  [[ "$(rcli llen "godislock:{$1}:queue")" == "$2" ]] &&
    subscribers_are "$1" "$2"
}

# The holder's key is there; no queue key, no waiter keys.
redis_only_holder_left() {
  assert_equal "$(rcli exists "godislock:{$1}")" 1
  assert_equal "$(rcli llen "godislock:{$1}:queue")" 0
  assert_equal "$(rcli exists "godislock:{$1}:queue")" 0
  assert_equal "$(rcli --scan --pattern "godislock:{$1}:waiter:*")" ""
}

redis_delete_lock_key() {
  rcli del "godislock:{$1}"
}

# The key's TTL cut to 1 ms: it expires at once.
redis_end_lease() {
  assert_equal "$(rcli pexpire "godislock:{$1}" 1)" 1
}

# No lock key (fence keys may stay until they expire).
redis_nothing_left() {
  assert_no_lock_key
}

# --- etcd: keys godislock:NAME/<lease ID in hex>, the oldest one holds ---

etcd_start() {
  start_etcd || return 1
  export GODISLOCK_URL="etcd://127.0.0.1:$ETCD_CLIENT_PORT"
}

etcd_stop() { stop_etcd; }

# etcd_keys NAME: the keys of lock NAME, oldest (the holder) first.
etcd_keys() {
  etcdctl_t get --prefix --keys-only --sort-by=CREATE --order=ASCEND \
    "godislock:$1/" | sed '/^$/d'
}

# etcd_holder_key NAME: the holder's key; fails when lock NAME is free.
etcd_holder_key() {
  local key
  key=$(etcd_keys "$1" | head -n 1)
  [[ -n $key ]] && echo "$key"
}

# etcd_on_holder NAME ARGS...: etcdctl ARGS on the holder's key.
etcd_on_holder() {
  local key
  key=$(etcd_holder_key "$1") || return 1
  shift
  etcdctl_t "$@" "$key"
}

# The holder's key and its value (who holds).
etcd_holder_token() {
  etcd_on_holder "$1" get
}

# The holder key's create revision.
etcd_lock_fence() {
  etcd_on_holder "$1" get --write-out=json |
    "$PY3" -S -c 'import json, sys
print(json.load(sys.stdin)["kvs"][0]["create_revision"])'
}

# N keys behind the holder's.
etcd_waiters_are() {
  [[ "$(etcd_keys "$1" | wc -l)" == $(($2 + 1)) ]]
}

etcd_only_holder_left() {
  assert_equal "$(etcd_keys "$1" | wc -l)" 1
}

etcd_delete_lock_key() {
  etcd_on_holder "$1" del
}

# The holder's lease (its key ends in the lease ID) revoked.
etcd_end_lease() {
  local key
  key=$(etcd_holder_key "$1") || return 1
  etcdctl_t lease revoke "${key##*/}"
}

# No key under the prefix and no lease.
etcd_nothing_left() {
  local keys
  keys=$(etcdctl_t get --prefix --keys-only godislock: | sed '/^$/d')
  if [[ -n $keys ]]; then
    echo "etcd keys left behind: $keys" >&2
    return 1
  fi
  [[ "$(etcdctl_t lease list | head -n 1)" == "found 0 leases" ]] ||
    { echo "etcd leases left behind" >&2; return 1; }
}
