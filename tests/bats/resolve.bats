#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Name resolution under a DNS server that stops answering. Each test runs in
# a network namespace of its own, with its own resolv.conf and hosts file
# (`ip netns exec` mounts /etc/netns/NS/* over /etc) and a DNS server there
# on 127.0.0.1:53 that answers one name, or drops every query once told to.
# redis-server and godislock run inside the namespace; nothing is sent
# anywhere else. Needs root and network namespaces, else every test skips.
bats_require_minimum_version 1.5.0
load helpers

NAME=redis.godislock.test

setup() {
  unset GODISLOCK_PASSWORD REDISCLI_AUTH GODISLOCK_NAME GODISLOCK_FENCE
  NS=
  DNS_PID=
  if [[ $(id -u) -ne 0 ]]; then
    skip "needs root to create a network namespace"
  fi
  if ! command -v ip >/dev/null; then
    skip "ip(8) is not installed"
  fi
  NS="godislock-resolve-$$-$BATS_TEST_NUMBER"
  if ! ip netns add "$NS" 2>/dev/null; then
    NS=
    skip "network namespaces are not available"
  fi
  ip -n "$NS" link set lo up
  mkdir -p "/etc/netns/$NS"
  printf 'nameserver 127.0.0.1\n' >"/etc/netns/$NS/resolv.conf"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$NS/hosts"
  MARK=$BATS_TEST_TMPDIR/ran
  DNS_LOG=$BATS_TEST_TMPDIR/dns.log
  DNS_SILENT=$BATS_TEST_TMPDIR/dns.silent
  # start_redis (helpers.bash) runs these by name: here they run in the
  # namespace, so the server listens on its loopback.
  redis-server() { ip netns exec "$NS" redis-server "$@"; }
  redis-cli() { ip netns exec "$NS" redis-cli "$@"; }
  start_redis
}

teardown() {
  terminate_all_children
  stop_redis
  if [[ -n "${DNS_PID:-}" ]]; then
    kill -KILL "$DNS_PID" 2>/dev/null || true
  fi
  if [[ -n "${NS:-}" ]]; then
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "/etc/netns/${NS:?}"
  fi
}

# in_ns CMD...: runs CMD in the test's namespace.
in_ns() {
  ip netns exec "$NS" "$@"
}

# start_dns: a DNS server on the namespace's 127.0.0.1:53 that logs each
# query ("answered"/"dropped" and the name) to $DNS_LOG. It answers $NAME
# with 127.0.0.1 (no AAAA) and any other name with NXDOMAIN, until
# $DNS_SILENT exists; from then on it reads queries and never answers.
start_dns() {
  cat >"$BATS_TEST_TMPDIR/dns.py" <<'EOF'
import os, socket, struct, sys
log, silent, name = sys.argv[1], sys.argv[2], sys.argv[3].lower()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
open(log, "a").close()
while True:
    data, peer = s.recvfrom(4096)
    if len(data) < 12:
        continue
    labels, i = [], 12
    while i < len(data) and data[i] != 0:
        labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace"))
        i += 1 + data[i]
    qname = ".".join(labels).lower()
    qtype = struct.unpack(">H", data[i + 1:i + 3])[0]
    quiet = os.path.exists(silent)
    with open(log, "a") as f:
        f.write("%s %s %d\n" % ("dropped" if quiet else "answered", qname,
                                qtype))
    if quiet:
        continue
    question = data[12:i + 5]
    answers = b""
    if qname == name and qtype == 1:
        answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + \
            socket.inet_aton("127.0.0.1")
    rcode = 0 if qname == name else 3
    header = data[:2] + struct.pack(">HHHHH", 0x8180 | rcode, 1,
                                    1 if answers else 0, 0, 0)
    s.sendto(header + question + answers, peer)
EOF
  # ip itself execs the server (no shell between), so DNS_PID is the
  # server's and the teardown's kill reaches it.
  ip netns exec "$NS" "$PY3" -S "$BATS_TEST_TMPDIR/dns.py" "$DNS_LOG" \
    "$DNS_SILENT" "$NAME" 3>&- &
  DNS_PID=$!
  wait_for 5 test -e "$DNS_LOG"
}

@test "resolve: a name DNS never answers: 69 within --connect-timeout" {
  start_dns
  : >"$DNS_SILENT"
  local sub start elapsed
  for sub in run status release; do
    local args=(rs)
    if [[ $sub == run ]]; then
      args=(--name rs -- touch "$MARK")
    elif [[ $sub == release ]]; then
      args=(--force rs)
    fi
    start=$(mono_ms)
    run --separate-stderr in_ns "$GODISLOCK" "$sub" --connect-timeout 2s \
      --url "redis://$NAME:$REDIS_PORT" "${args[@]}"
    elapsed=$(($(mono_ms) - start))
    assert_equal "$status" 69
    assert_equal "$stderr" "godislock: error: cannot connect to \
redis://$NAME:$REDIS_PORT: cannot resolve host '$NAME' within 2s (DNS did not \
answer)"
    # glibc alone would wait 5 s x 2 attempts.
    if ((elapsed < 1900 || elapsed > 3000)); then
      echo "$sub: exited after ${elapsed} ms, not in [1900, 3000]" >&2
      return 1
    fi
  done
  [[ ! -e "$MARK" ]]
  # The lookups did go to our server, which dropped them.
  run grep -c "^dropped $NAME " "$DNS_LOG"
  assert [ "$output" -ge 3 ]
}

@test "resolve: a name that does not exist: 69 at once, one line" {
  start_dns
  run --separate-stderr in_ns "$GODISLOCK" run --name rs \
    --url "redis://nowhere.godislock.test:$REDIS_PORT" -- touch "$MARK"
  assert_equal "$status" 69
  assert_equal "$stderr" "godislock: error: cannot connect to \
redis://nowhere.godislock.test:$REDIS_PORT: cannot resolve host \
'nowhere.godislock.test': Name or service not known"
  [[ ! -e "$MARK" ]]
}

@test "resolve: an IP literal needs no resolver" {
  start_dns
  : >"$DNS_SILENT"
  run --separate-stderr in_ns "$GODISLOCK" run --name rs --connect-timeout 2s \
    --url "redis://127.0.0.1:$REDIS_PORT" -- touch "$MARK"
  assert_equal "$status" 0
  [[ -e "$MARK" ]]
  assert_equal "$(grep -c . "$DNS_LOG")" 0
}

@test "resolve: a name from the hosts file works end to end" {
  # DNS is silent: the name must come from the hosts file alone.
  start_dns
  : >"$DNS_SILENT"
  printf '127.0.0.1 %s\n' "$NAME" >>"/etc/netns/$NS/hosts"
  run --separate-stderr in_ns "$GODISLOCK" run --name rs --connect-timeout 2s \
    --url "redis://$NAME:$REDIS_PORT" -- sh -c 'echo "$GODISLOCK_FENCE" >"$1"' \
    sh "$MARK"
  assert_equal "$status" 0
  assert_equal "$stderr" ""
  assert_regex "$(cat "$MARK")" '^[0-9]+$'
  assert_no_lock_key
  run --separate-stderr in_ns "$GODISLOCK" status --connect-timeout 2s \
    --url "redis://$NAME:$REDIS_PORT" rs
  # 1: free, as the run released it.
  assert_equal "$status" 1
  assert_equal "$stderr" ""
}

@test "resolve: the refresher keeps the lease when DNS goes silent" {
  start_dns
  local dir=$BATS_TEST_TMPDIR/holder
  mkdir -p "$dir"
  in_ns "$GODISLOCK" run --name rs --ttl 3s --connect-timeout 2s \
    --url "redis://$NAME:$REDIS_PORT" -- sh -c \
    ': >"$1/started"; sleep 6; : >"$1/finished"' sh "$dir" \
    >"$dir/out" 2>"$dir/err" 3>&- &
  local pid=$!
  wait_for 5 test -e "$dir/started"
  # The name was looked up (and answered) before the lock was taken.
  run grep -c "^answered $NAME 1\$" "$DNS_LOG"
  assert [ "$output" -ge 1 ]
  # From now on DNS does not answer, and every client connection is cut,
  # so that the refresher (and the release) must connect again.
  : >"$DNS_SILENT"
  run rcli client kill type normal skipme yes
  assert [ "$output" -ge 1 ]
  # Once more after the refresher's first refresh, to cut its connection
  # (if it made one: one that looked the name up again would still wait).
  sleep 1.5
  rcli client kill type normal skipme yes >/dev/null
  # Well past the lease the holder had when DNS fell silent (3 s), the
  # lock is still held: a contender (by IP, needing no DNS) is turned away.
  sleep 3
  [[ ! -e "$dir/finished" ]]
  run in_ns "$GODISLOCK" run --name rs --no-wait \
    --url "redis://127.0.0.1:$REDIS_PORT" -- true
  assert_equal "$status" 75
  wait_job 15 "$pid"
  assert_equal "$WAIT_STATUS" 0
  [[ -e "$dir/finished" ]]
  assert_equal "$(cat "$dir/err")" ""
  assert_no_lock_key
  # No lookup was made after the first one: every reconnect reused the
  # addresses.
  assert_equal "$(grep -c '^dropped' "$DNS_LOG")" 0
}
