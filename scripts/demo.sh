#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's demo: installs what is missing, builds, starts a private
# redis-server on a free loopback port, runs two contending jobs through
# `godislock run`, shows that they never overlapped, and stops the server.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
dir=$("$root/scripts/build.sh" plain)
bin="$dir/godislock"

work=$(mktemp -d "${TMPDIR:-/tmp}/godislock-demo.XXXXXX")
port=""
cleanup() {
  [[ -f "$work/redis.pid" ]] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 20); do
  candidate=$((20000 + RANDOM % 40000))
  if redis-server --port "$candidate" --bind 127.0.0.1 --save '' \
      --appendonly no --dir "$work" --daemonize yes \
      --pidfile "$work/redis.pid" --logfile "$work/redis.log" &&
     for _ in $(seq 1 50); do
       redis-cli -p "$candidate" ping 2>/dev/null | grep -q PONG && break
       sleep 0.1
     done && redis-cli -p "$candidate" ping 2>/dev/null | grep -q PONG; then
    port=$candidate
    break
  fi
done
[[ -n "$port" ]] || { echo "demo: could not start redis-server" >&2; exit 1; }
export GODISLOCK_URL="redis://127.0.0.1:$port"
echo "demo: private redis-server on $GODISLOCK_URL (pid $(cat "$work/redis.pid"))"
echo "demo: starting two jobs that each need 'nightly-backup' for 1 second"

job() {
  "$bin" run --name nightly-backup --ttl 5s -- sh -c '
    printf "%s job %s start (fence %s)\n" "$(date +%T.%N | cut -c1-12)" "$1" "$GODISLOCK_FENCE"
    sleep 1
    printf "%s job %s end\n" "$(date +%T.%N | cut -c1-12)" "$1"' sh "$1"
}
start=$(date +%s%N)
job A & a=$!
job B & b=$!
wait "$a"; ra=$?
wait "$b"; rb=$?
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
echo "demo: both exited ($ra, $rb) after ${elapsed} ms: the jobs ran one after the other"
echo "demo: a third job with --nonblock while one holds the lock:"
"$bin" run --name nightly-backup -- sleep 1 &
holder=$!
sleep 0.3
set +e
"$bin" run --name nightly-backup --nonblock -- echo "never printed"
echo "demo: --nonblock exited with $? (75: lock not acquired)"
echo "demo: who holds it (godislock status):"
"$bin" status nightly-backup
set -e
wait "$holder"
keys=$(redis-cli -p "$port" --scan --pattern 'godislock:{nightly-backup}' | wc -l)
echo "demo: lock keys left in Redis after the jobs: $keys"
