# SPDX-License-Identifier: MIT
# One interface over the two backends, for the scenarios that are written
# once and run against each (core/scenarios.bats, through core_redis.bats
# and core_etcd.bats). Loaded after helpers.bash and etcd_helpers.bash.
# BACKEND (redis or etcd) comes from the name of the test file bats runs.
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
  core_redis) BACKEND=redis ;;
  core_etcd) BACKEND=etcd ;;
  *)
    echo "backend_helpers: run through core_redis.bats or core_etcd.bats," \
      "not $BATS_TEST_FILENAME" >&2
    return 1
    ;;
esac
BATS_TEST_NAME_PREFIX="$BACKEND: "

if [[ $BACKEND == redis ]]; then
  WAITING_RE='waiting for its release'
else
  WAITING_RE='watching godislock:[^ ]+/[0-9a-f]+ for its deletion'
fi

start_backend() {
  if [[ $BACKEND == redis ]]; then
    start_redis
  else
    start_etcd || return 1
    export GODISLOCK_URL="etcd://127.0.0.1:$ETCD_CLIENT_PORT"
  fi
}

stop_backend() {
  if [[ $BACKEND == redis ]]; then
    stop_redis
  else
    stop_etcd
  fi
}

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

holder_token() {
  if [[ $BACKEND == redis ]]; then
    rcli get "godislock:{$1}"
  else
    local key
    key=$(etcd_holder_key "$1") || return 1
    etcdctl_t get "$key"
  fi
}

# Redis: the lock's fence counter (the holder's, while held). etcd: the
# holder key's create revision.
lock_fence() {
  if [[ $BACKEND == redis ]]; then
    rcli get "godislock:{$1}:fence"
  else
    local key
    key=$(etcd_holder_key "$1") || return 1
    etcdctl_t get --write-out=json "$key" |
      "$PY3" -S -c 'import json, sys
print(json.load(sys.stdin)["kvs"][0]["create_revision"])'
  fi
}

# Redis: N tokens in the queue and N waiters subscribed (to wake-up or
# release channels). etcd: N keys behind the holder's.
waiters_are() {
  if [[ $BACKEND == redis ]]; then
    [[ "$(rcli llen "godislock:{$1}:queue")" == "$2" ]] &&
      subscribers_are "$1" "$2"
  else
    [[ "$(etcd_keys "$1" | wc -l)" == $(($2 + 1)) ]]
  fi
}

# The holder's key is there and no waiter left anything: Redis, no queue
# key and no waiter keys; etcd, the holder's key only.
only_holder_left() {
  if [[ $BACKEND == redis ]]; then
    assert_equal "$(rcli exists "godislock:{$1}")" 1
    assert_equal "$(rcli llen "godislock:{$1}:queue")" 0
    assert_equal "$(rcli exists "godislock:{$1}:queue")" 0
    assert_equal "$(rcli --scan --pattern "godislock:{$1}:waiter:*")" ""
  else
    assert_equal "$(etcd_keys "$1" | wc -l)" 1
  fi
}

delete_lock_key() {
  if [[ $BACKEND == redis ]]; then
    rcli del "godislock:{$1}"
  else
    local key
    key=$(etcd_holder_key "$1") || return 1
    etcdctl_t del "$key"
  fi
}

# Redis: the key's TTL set to 1 ms (it expires at once). etcd: the holder's
# lease (its key ends in the lease ID, in hex) revoked.
end_lease() {
  if [[ $BACKEND == redis ]]; then
    assert_equal "$(rcli pexpire "godislock:{$1}" 1)" 1
  else
    local key
    key=$(etcd_holder_key "$1") || return 1
    etcdctl_t lease revoke "${key##*/}"
  fi
}

# Redis: no lock key (fence keys may stay until they expire). etcd: no key
# under the prefix and no lease.
nothing_left() {
  if [[ $BACKEND == redis ]]; then
    assert_no_lock_key
  else
    local keys
    keys=$(etcdctl_t get --prefix --keys-only godislock: | sed '/^$/d')
    if [[ -n $keys ]]; then
      echo "etcd keys left behind: $keys" >&2
      return 1
    fi
    [[ "$(etcdctl_t lease list | head -n 1)" == "found 0 leases" ]] ||
      { echo "etcd leases left behind" >&2; return 1; }
  fi
}

setup() {
  unset GODISLOCK_PASSWORD REDISCLI_AUTH
  start_backend
}

teardown() {
  terminate_all_children
  stop_backend
}
