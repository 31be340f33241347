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
# exports GODISLOCK_URL. Extra arguments go to redis-server. With
# --requirepass PW, sets REDIS_PASSWORD (used by rcli only; never exported).
start_redis() {
  REDIS_DIR=$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/redis.XXXXXX")
  REDIS_SOCK="$REDIS_DIR/redis.sock"
  REDIS_PASSWORD=
  local args=("$@") k
  for ((k = 0; k + 1 < ${#args[@]}; k++)); do
    if [[ "${args[k]}" == --requirepass ]]; then
      REDIS_PASSWORD=${args[k + 1]}
    fi
  done
  local attempt port
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    rm -f "$REDIS_DIR/redis.pid" "$REDIS_DIR/redis.log"
    redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$REDIS_SOCK" \
      --save '' --appendonly no --dir "$REDIS_DIR" --daemonize yes \
      --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" "$@" \
      >/dev/null 2>&1 || continue
    local i reply
    for i in $(seq 1 100); do
      # Asked over our private socket, so that a server of someone else on
      # the same port is never mistaken for ours; a server that wants a
      # password answers NOAUTH.
      reply=$(redis-cli -s "$REDIS_SOCK" ping 2>/dev/null) || true
      if [[ "$reply" == PONG || "$reply" == NOAUTH* ]] &&
        [[ -s "$REDIS_DIR/redis.pid" ]]; then
        REDIS_PORT=$port
        REDIS_PID=$(cat "$REDIS_DIR/redis.pid")
        export REDIS_PORT REDIS_PID REDIS_DIR REDIS_SOCK
        export GODISLOCK_URL="redis://127.0.0.1:$REDIS_PORT"
        return 0
      fi
      # Gave up (port taken, bad argument): try another port at once.
      if grep -qE 'aborting|FATAL|Bad directive' "$REDIS_DIR/redis.log" \
        2>/dev/null; then
        break
      fi
      sleep 0.05
    done
    # Not up (port taken, bad argument): do not leave a daemon behind.
    if [[ -s "$REDIS_DIR/redis.pid" ]]; then
      kill -KILL "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
    fi
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
      # A zombie counts as gone: it holds no port, and reaping it is up to
      # init (which may take a while here).
      pid_gone "$REDIS_PID" && break
      sleep 0.02
    done
    REDIS_PID=
  fi
}

rcli() {
  if [[ -n "${REDIS_PASSWORD:-}" ]]; then
    REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -p "$REDIS_PORT" "$@"
  else
    redis-cli -p "$REDIS_PORT" "$@"
  fi
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

# output_is EXPECTED CMD...: CMD prints EXPECTED. For wait_for, which runs
# its arguments anew on every try (a "$(...)" among them is read once, before
# the first).
output_is() {
  local expected=$1
  shift
  [[ "$("$@" 2>/dev/null)" == "$expected" ]]
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

# --- Added for the black-box suites (exit codes, signals, lock loss, ...) ---

# A python3 that starts fast (a pyenv shim on PATH costs ~200 ms a call);
# -S skips site initialisation.
if [[ -x /usr/bin/python3 ]]; then
  PY3=/usr/bin/python3
else
  PY3=$(command -v python3)
fi

# Monotonic milliseconds without forking (/proc/uptime, 10 ms resolution);
# for tolerance windows only.
mono_ms() {
  local up
  read -r up _ </proc/uptime
  local s=${up%.*} frac=${up#*.}
  frac=${frac}00
  echo $((10#$s * 1000 + 10#${frac:0:3}))
}

# Lock keys (not fence keys, not channels) under PREFIX (default
# "godislock:") in database DB (default 0), one a line.
lock_keys() {
  local prefix=${1:-godislock:} db=${2:-0}
  rcli -n "$db" --scan --pattern "${prefix}*" | grep -v ':fence$' || true
}

# Fails (with the keys listed) if any lock key is left.
assert_no_lock_key() {
  local left
  left=$(lock_keys "$@")
  if [[ -n "$left" ]]; then
    echo "lock keys left behind: $left" >&2
    return 1
  fi
}

# True when PID no longer runs (gone, or a zombie nobody reaped yet).
pid_gone() {
  local state
  [[ -r /proc/$1/stat ]] || return 0
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) ||
    return 0
  [[ -z "$state" || "$state" == Z || "$state" == X ]]
}

# file_matches FILE ERE: FILE exists and has a line matching ERE.
file_matches() {
  [[ -e "$1" ]] && grep -Eq -- "$2" "$1"
}

# A loopback TCP port nothing listens on (bound and closed again).
free_port() {
  "$PY3" -S -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# with_std_fds_only CMD...: runs CMD with every fd above 2 closed (bats
# keeps several open; they would be inherited by anything it starts).
with_std_fds_only() {
  "$PY3" -S -c 'import os, sys
os.closerange(3, 65536)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

# Number of clients subscribed to the release channel of lock NAME.
release_subscribers() {
  local prefix=${2:-godislock:} racing queued
  # --no-fair waiters listen on the release channel; queued (fair) waiters
  # each on their own wake-up channel.
  racing=$(rcli pubsub numsub "$prefix{$1}:released" | sed -n 2p)
  queued=$(rcli pubsub channels "$prefix{$1}:wake:*" | grep -c .)
  echo $((racing + queued))
}

# start_holder NAME [OPTIONS...]: runs `godislock run --name NAME OPTIONS`
# in the background with a command that holds the lock until
# release_holder; returns once the command runs. Sets HOLDER_PID (the
# godislock) and HOLDER_DIR (started, go, out, err).
start_holder() {
  local name=$1
  shift
  HOLDER_DIR=$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/holder.XXXXXX")
  "$GODISLOCK" run --name "$name" "$@" -- sh -c \
    ': > "$1/started"; while [ ! -e "$1/go" ]; do sleep 0.02; done' \
    sh "$HOLDER_DIR" >"$HOLDER_DIR/out" 2>"$HOLDER_DIR/err" 3>&- &
  HOLDER_PID=$!
  wait_for 10 test -e "$HOLDER_DIR/started"
}

# start_victim NAME OPTIONS...: a command that writes "got-term" to
# $BATS_TEST_TMPDIR/marker on SIGTERM and exits 0; returns once it runs.
# Sets BG_PID.
start_victim() {
  local name=$1 dir=$BATS_TEST_TMPDIR
  shift
  "$GODISLOCK" run --name "$name" "$@" -- sh -c \
    'trap "echo got-term >\"$1/marker\"; exit 0" TERM
     : >"$1/started"
     sleep 30 &
     wait' sh "$dir" 2>"$dir/err" 3>&- &
  BG_PID=$!
  wait_for 10 test -e "$dir/started"
}

# release_holder: lets the holder's command end; returns godislock's status.
release_holder() {
  : >"$HOLDER_DIR/go"
  wait_job 30 "$HOLDER_PID" || return 100
  return "$WAIT_STATUS"
}

# subscribers_are NAME N: exactly N clients wait on lock NAME's release
# channel (for wait_for; the count is read on every call).
subscribers_are() {
  [[ "$(release_subscribers "$1")" == "$2" ]]
}

# wait_job SECONDS PID: waits for the background job PID, at most SECONDS
# (then kills it and fails); sets WAIT_STATUS to its exit status.
wait_job() {
  local limit=$1 pid=$2
  WAIT_STATUS=
  if ! wait_for "$limit" pid_gone "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "wait_job: job $pid still running after ${limit}s" >&2
    return 1
  fi
  WAIT_STATUS=0
  wait "$pid" || WAIT_STATUS=$?
}

# json EXPR: evaluates a Python expression over the JSON in $output (as
# `d`) and prints the result.
json() {
  python3 -c 'import json, sys; d = json.loads(sys.stdin.read()); print(eval(sys.argv[1]))' \
    "$1" <<<"$output"
}

# --- TLS ---

# Makes the throwaway TLS material once per test file (see
# tests/support/make_tls_certs.sh for the files) and sets TLS_DIR.
tls_certs() {
  TLS_DIR="$BATS_FILE_TMPDIR/tls"
  if [[ ! -s "$TLS_DIR/self.crt" ]]; then
    command -v openssl >/dev/null || skip "openssl not available"
    sh "$BATS_TEST_DIRNAME/../support/make_tls_certs.sh" "$TLS_DIR" \
      >"$BATS_FILE_TMPDIR/tls.log" 2>&1 ||
      { cat "$BATS_FILE_TMPDIR/tls.log" >&2; return 1; }
  fi
  export TLS_DIR
}

# start_redis_tls [CERT [AUTH_CLIENTS]]: start_redis plus a TLS port
# (REDIS_TLS_PORT) serving $TLS_DIR/CERT.crt (default server) and asking
# for client certificates as AUTH_CLIENTS says (default no); exports
# GODISLOCK_URL=rediss://localhost:$REDIS_TLS_PORT. rcli still uses the
# plaintext port.
start_redis_tls() {
  local cert=${1:-server} auth=${2:-no}
  tls_certs
  REDIS_TLS_PORT=$(free_port)
  start_redis --tls-port "$REDIS_TLS_PORT" \
    --tls-cert-file "$TLS_DIR/$cert.crt" --tls-key-file "$TLS_DIR/$cert.key" \
    --tls-ca-cert-file "$TLS_DIR/ca.crt" --tls-auth-clients "$auth"
  export REDIS_TLS_PORT
  export GODISLOCK_URL="rediss://localhost:$REDIS_TLS_PORT"
}
