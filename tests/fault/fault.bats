#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The fault-injection suite in its short mode, one test per scenario (see
# tests/fault/README.md). Each runs `tests/fault/run --short --scenario X`
# against $GODISLOCK_BIN and must end with no violation; the scenario's
# summary line is printed to the TAP stream. Under an ASan build the run is
# shortened automatically (GODISLOCK_FAULT_SCALE overrides).
bats_require_minimum_version 1.5.0
load ../bats/helpers

FAULT="$BATS_TEST_DIRNAME/run"

# fault_scenario NAME [OPTION...]: runs one scenario and asserts it passed.
fault_scenario() {
  run --separate-stderr with_std_fds_only "$FAULT" --short --scenario "$@"
  local line
  while IFS= read -r line; do
    echo "# $line" >&3
  done <<<"$output"
  if [[ -n "$stderr" ]]; then
    while IFS= read -r line; do
      echo "# $line" >&3
    done <<<"$stderr"
  fi
  if ((status == 77)); then
    skip "$(sed -n 's/^[a-z-]* *SKIP //p' <<<"$output")"
  fi
  assert_equal "$status" 0
  assert_line --regexp "^$1 +PASS "
  assert_line --regexp "^fault: 1 scenario\(s\): 1 passed, 0 failed"
}

# script_calls: how many scripts (EVALSHA and EVAL) the server has run.
script_calls() {
  rcli info commandstats |
    sed -nE 's/^cmdstat_(evalsha|eval):calls=([0-9]+).*/\2/p' |
    awk '{ n += $1 } END { print n + 0 }'
}

# ran_and_expired CALLS NAME: a script ran since script_calls said CALLS,
# and lock NAME's key is gone (EXISTS makes Redis expire it on access).
ran_and_expired() {
  (($(script_calls) > $1)) && [[ $(rcli exists "godislock:{$2}") == 0 ]]
}

# The smallest deterministic form of a defect the network and redis-pause
# scenarios found by chance (fixed): an acquire whose reply comes
# back later than the lease's validity still starts the command (which is
# signalled at once, too late: it already runs beside the next holder).
@test "fault: no command starts once its lease may have expired (reply held)" {
  start_redis
  local dir=$BATS_TEST_TMPDIR
  "$GODISLOCK" run --name warm -- true  # scripts cached: no NOSCRIPT round
  local calls
  calls=$(script_calls)
  mkfifo "$dir/ctl"
  "$PY3" -S "$BATS_TEST_DIRNAME/fault_proxy.py" "$REDIS_PORT" \
    <"$dir/ctl" >"$dir/proxy.out" 3>&- &
  exec 4>"$dir/ctl"
  wait_for 5 test -s "$dir/proxy.out"
  local pport
  pport=$(head -n 1 "$dir/proxy.out")
  echo hold-replies >&4
  wait_for 5 grep -q '^mode hold-replies' "$dir/proxy.out"
  # A: its acquire runs on the server at once; the reply is held. Its
  # --kill-signal is WINCH (ignored by default) so that, if it is started,
  # it surely lives long enough to say so (until SIGKILL, --kill-after).
  "$GODISLOCK" run --name held --ttl 600ms --wait 4s --connect-timeout 3s \
    --kill-signal 28 --url "redis://127.0.0.1:$pport" -- sh -c \
    'date +%s%N >"$1/a.start"; sleep 0.5; date +%s%N >"$1/a.end"' \
    sh "$dir" 2>"$dir/a.err" 3>&- 4>&- &
  local a=$!
  # A's acquire ran on the server and its key (PX 600) is gone again.
  wait_for 10 ran_and_expired "$calls" held
  # B: takes the lock directly and holds it for 1.5 s.
  "$GODISLOCK" run --name held --ttl 5s -- sh -c \
    'date +%s%N >"$1/b.start"; sleep 1.5; date +%s%N >"$1/b.end"' \
    sh "$dir" 2>"$dir/b.err" 3>&- 4>&- &
  local b=$!
  wait_for 5 test -e "$dir/b.start"
  echo pass >&4  # heal: A's reply arrives while B holds the lock
  local rc_a=0 rc_b=0
  wait "$a" || rc_a=$?
  wait "$b" || rc_b=$?
  exec 4>&-
  echo "# A: exit $rc_a $(cat "$dir/a.err")" >&3
  assert_equal "$rc_b" 0
  # A may time out (75) or run after B; never while B runs.
  if [[ -e "$dir/a.start" ]]; then
    local a_start b_end
    a_start=$(cat "$dir/a.start")
    b_end=$(cat "$dir/b.end")
    if ((a_start < b_end)); then
      echo "A's command started $(((b_end - a_start) / 1000000)) ms before \
B's ended: two holders at once" >&2
      return 1
    fi
  fi
  assert_no_lock_key
}

@test "fault: redis-restart (kill -9 and restart empty)" {
  fault_scenario redis-restart
}

@test "fault: redis-pause (SIGSTOP redis longer than the TTL)" {
  fault_scenario redis-pause
}

@test "fault: holder-pause (SIGSTOP a holding godislock)" {
  fault_scenario holder-pause
}

@test "fault: holder-kill (kill -9 a holding godislock)" {
  fault_scenario holder-kill
}

@test "fault: network (netns + iptables blackhole, reset, held replies)" {
  fault_scenario network
}

@test "fault: proxy (TCP proxy blackhole, reset, held replies)" {
  fault_scenario proxy
}

@test "fault: pubsub-kill (CLIENT KILL TYPE pubsub)" {
  fault_scenario pubsub-kill
}

@test "fault: script-flush (SCRIPT FLUSH)" {
  fault_scenario script-flush
}

@test "fault: oom (maxmemory 1, noeviction)" {
  fault_scenario oom
}

@test "fault: key-delete (DEL the lock key)" {
  fault_scenario key-delete
}

@test "fault: key-overwrite (SET the lock key to another value)" {
  fault_scenario key-overwrite
}

@test "fault: child-ignores-term (TERM ignored, grandchildren)" {
  fault_scenario child-ignores-term
}

@test "fault: limit-holder-kill (--limit 3, kill -9 a holder)" {
  fault_scenario limit-holder-kill
}

@test "fault: limit-key-delete (--limit 3, DEL a holder's slot key)" {
  fault_scenario limit-key-delete
}

@test "fault: limit-redis-restart (--limit 3, redis kill -9 and restart)" {
  fault_scenario limit-redis-restart
}

@test "fault: shared-holder-pause (--shared mix, SIGSTOP a holder)" {
  fault_scenario shared-holder-pause
}

@test "fault: shared-redis-pause (--shared mix, SIGSTOP redis)" {
  fault_scenario shared-redis-pause
}

@test "fault: fair-waiter-kill (FIFO, kill -9 queued waiters)" {
  fault_scenario fair-waiter-kill
}

@test "fault: fair-pubsub-kill (FIFO through dropped subscriptions)" {
  fault_scenario fair-pubsub-kill
}

@test "fault: fair-shared-row (a dead waiter inside a row of shared ones)" {
  fault_scenario fair-shared-row
}

@test "fault: tls-redis-restart (TLS only: kill -9 redis, restart empty)" {
  tls_certs  # made once for this file
  fault_scenario tls-redis-restart --tls-dir "$TLS_DIR"
}

@test "fault: tls-redis-pause (TLS only: SIGSTOP redis longer than the TTL)" {
  tls_certs  # made once for this file
  fault_scenario tls-redis-pause --tls-dir "$TLS_DIR"
}

@test "fault: tls-proxy (TLS through the TCP proxy: blackhole, reset, held)" {
  tls_certs  # made once for this file
  fault_scenario tls-proxy --tls-dir "$TLS_DIR"
}

@test "fault: sentinel-failover (SENTINEL FAILOVER under contention)" {
  fault_scenario sentinel-failover
}

@test "fault: master-kill (kill -9 the master; Sentinel promotes the replica)" {
  fault_scenario master-kill
}

@test "fault: cluster-reshard (move the lock's slot between masters)" {
  fault_scenario cluster-reshard
}

@test "fault: cluster-failover (CLUSTER FAILOVER of the slot's master)" {
  fault_scenario cluster-failover
}

@test "fault: cluster-master-kill (kill -9 the slot's master; replica promoted)" {
  fault_scenario cluster-master-kill
}

# etcd-leader-kill is run by hand (tests/fault/run --scenario
# etcd-leader-kill): with the leader killed every 2.5 s, etcd is without a
# leader most of the run, and under the ASan build on a loaded machine the
# liveness check was met with no margin (3 sections, the least allowed).
@test "fault: etcd-member-pause (SIGSTOP one etcd member for 1.5 TTL)" {
  fault_scenario etcd-member-pause
}

@test "fault: etcd-majority-loss (3 etcd members, 2 killed for 1.5 TTL)" {
  fault_scenario etcd-majority-loss
}

@test "fault: etcd-network-cut (netns per member, one cut off from its peers)" {
  fault_scenario etcd-network-cut
}

@test "fault: etcd-lease-revoke (revoke the holder's lease)" {
  fault_scenario etcd-lease-revoke
}

@test "fault: etcd-key-delete (delete the holder's key)" {
  fault_scenario etcd-key-delete
}
