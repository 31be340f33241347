# SPDX-License-Identifier: MIT
# Shared helpers for the bats suites. Each test file loads this with
#   load helpers
# and gets: $GODISLOCK (the binary), start_redis / stop_redis (a private
# redis-server on a free loopback port in $BATS_TEST_TMPDIR, stopped by PID),
# rcli (redis-cli against it), wait_for (bounded condition polling for
# tests only), and a teardown that kills every background job.

bats_load_library bats-support
bats_load_library bats-assert

GODISLOCK=${GODISLOCK_BIN:?set GODISLOCK_BIN to the godislock binary}

# Starts redis-server; sets REDIS_PORT, REDIS_PID, REDIS_DIR, REDIS_SOCK and
# exports GODISLOCK_URL. Extra arguments go to redis-server.
start_redis() {
  REDIS_DIR=$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/redis.XXXXXX")
  REDIS_SOCK="$REDIS_DIR/redis.sock"
  local attempt port
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$REDIS_SOCK" \
      --save '' --appendonly no --dir "$REDIS_DIR" --daemonize yes \
      --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" "$@" \
      >/dev/null 2>&1 || continue
    local i
    for i in $(seq 1 100); do
      if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
        REDIS_PORT=$port
        REDIS_PID=$(cat "$REDIS_DIR/redis.pid")
        export REDIS_PORT REDIS_PID REDIS_DIR REDIS_SOCK
        export GODISLOCK_URL="redis://127.0.0.1:$REDIS_PORT"
        return 0
      fi
      sleep 0.05
    done
  done
  if [[ -n "${GODISLOCK_REQUIRE_REDIS:-}" ]]; then
    echo "could not start redis-server" >&2
    return 1
  fi
  skip "redis-server not available"
}

stop_redis() {
  if [[ -n "${REDIS_PID:-}" ]]; then
    kill -CONT "$REDIS_PID" 2>/dev/null || true
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.02
    done
    REDIS_PID=
  fi
}

rcli() {
  redis-cli -p "$REDIS_PORT" "$@"
}

# wait_for SECONDS COMMAND...: runs COMMAND every 20 ms until it succeeds;
# fails after SECONDS.
wait_for() {
  local limit=$1
  shift
  local end=$((SECONDS + limit + 1))
  while ((SECONDS < end)); do
    if "$@"; then
      return 0
    fi
    sleep 0.02
  done
  echo "wait_for: timed out after ${limit}s: $*" >&2
  return 1
}

# Monotonic milliseconds (for tolerance windows, never exact timings).
now_ms() {
  python3 -c 'import time; print(int(time.monotonic()*1000))'
}

terminate_all_children() {
  local pids
  pids=$(jobs -p)
  if [[ -n "$pids" ]]; then
    kill -KILL $pids 2>/dev/null || true
    wait $pids 2>/dev/null || true
  fi
}

# Default teardown; a file that defines its own should call this.
teardown() {
  terminate_all_children
  stop_redis
}
