#!/bin/bash
# SPDX-License-Identifier: MIT
# The polling peer: the usual redis-cli lock script.
#
#   poll_lock.sh [HOST:]PORT KEY COMMAND [ARGS...]
#
# HOST defaults to 127.0.0.1.
#
# SET KEY TOKEN NX PX 30000 until it answers OK, sleeping 100 ms between
# tries; run COMMAND; delete KEY only if it still holds TOKEN (Lua). Gives up
# after 6000 tries (10 minutes) with exit 75, so it is bounded too.
host=127.0.0.1
port=$1
case $port in
  *:*) host=${port%:*} port=${port##*:} ;;
esac
key=$2
shift 2
token="$$-$RANDOM$RANDOM$RANDOM"
tries=0
until redis-cli -h "$host" -p "$port" set "$key" "$token" NX PX 30000 |
  grep -q OK; do
  tries=$((tries + 1))
  if [ "$tries" -ge 6000 ]; then
    exit 75
  fi
  sleep 0.1
done
"$@"
rc=$?
release="if redis.call('get',KEYS[1])==ARGV[1] then"
release="$release return redis.call('del',KEYS[1]) end return 0"
redis-cli -h "$host" -p "$port" eval "$release" 1 "$key" "$token" >/dev/null
exit $rc
