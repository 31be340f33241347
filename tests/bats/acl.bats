#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The least-privilege Redis ACL rule of the man page (NOTES, Redis ACL) is
# enough for run, status and release --force: every test here runs
# godislock as a user that has exactly that rule, read from the man page
# itself, so the page and the tests cannot drift apart. The administrator
# (rcli) is the default user.
bats_require_minimum_version 1.5.0
load helpers

ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
MAN="$ROOT/man/godislock.1"
ACL_USER=locker

# The rule between the man page's `.\" acl-rule begin/end` comments: roff
# requests dropped, "\-" turned into "-", the lines joined; the password
# placeholder stays as "\fIpassword\fP".
man_acl_rule() {
  sed -n '/^\.\\" acl-rule begin$/,/^\.\\" acl-rule end$/p' "$MAN" |
    grep -v '^\.' | sed 's/\\-/-/g' | tr '\n' ' ' | sed 's/ *$//'
}

setup() {
  start_redis
  RULE=$(man_acl_rule)
  [[ $RULE == *'>\fIpassword\fP'* ]] || fail "no ACL rule in the man page"
  ACL_PASSWORD="acl-$RANDOM-$RANDOM"
  local -a words
  read -ra words <<<"${RULE//'\fIpassword\fP'/$ACL_PASSWORD}"
  run rcli ACL SETUSER "$ACL_USER" "${words[@]}"
  assert_output OK
  # Every godislock below is that user; the password comes from the
  # environment, never from the command line.
  export GODISLOCK_URL="redis://$ACL_USER:@127.0.0.1:$REDIS_PORT"
  export GODISLOCK_PASSWORD=$ACL_PASSWORD
}

@test "acl: the man page's rule is the one in force, and holds what godislock and its scripts call" {
  # The words of the rule: reset, on, the password, keys and channels of
  # the default prefix, then commands only.
  local -a words
  read -ra words <<<"$RULE"
  assert_equal "${words[*]:0:5}" 'reset on >\fIpassword\fP ~godislock:* &godislock:*'
  local documented
  documented=$(printf '%s\n' "${words[@]:5}" | sort)
  [[ $(grep -vc '^+' <<<"$documented") == 0 ]] || fail "not a command: $documented"
  # What the scripts call, and what godislock sends itself.
  local called
  called=$( {
    grep -ohE "redis\.p?call\('[A-Za-z]+'(, *'[A-Za-z]+')?" \
      "$ROOT"/src/backend/scripts/*.lua |
      sed -E "s/.*\('([A-Za-z]+)'(, *'([A-Za-z]+)')?/\1 \3/" |
      tr 'A-Z' 'a-z' | sed -E 's/ $//; s/ /|/'
    printf '%s\n' eval evalsha subscribe scan ping
    # On a Redis Cluster: shard channels, redirections, the slot map.
    printf '%s\n' ssubscribe asking 'cluster|shards' 'cluster|slots'
  } | sed 's/^/+/' | sort -u)
  assert_equal "$documented" "$called"
  # Redis took the rule as written: the user's commands are exactly these.
  run rcli ACL GETUSER "$ACL_USER"
  assert_success
  local got
  got=$(sed -n '/^commands$/{n;p}' <<<"$output" | tr ' ' '\n' | grep '^+' | sort)
  assert_equal "$got" "$documented"
  run rcli ACL GETUSER "$ACL_USER"
  assert_line '~godislock:*'
  assert_line '&godislock:*'
}

@test "acl: the user is really limited: another prefix is refused with NOPERM (69)" {
  run --separate-stderr "$GODISLOCK" run --prefix other: --name x -- true
  assert_equal "$status" 69
  assert_regex "$stderr" "NOPERM"
  # And AUTH as that user works from --password-file too.
  printf '%s\n' "$ACL_PASSWORD" >"$BATS_TEST_TMPDIR/pw"
  GODISLOCK_PASSWORD= run "$GODISLOCK" run --password-file \
    "$BATS_TEST_TMPDIR/pw" --name x -- true
  assert_success
}

@test "acl: two runs contend; shared and counted locks work" {
  start_holder busy
  run "$GODISLOCK" run -n --name busy -- true
  assert_equal "$status" 75
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  run "$GODISLOCK" run -n --name busy -- true
  assert_success
  start_holder readers --shared
  run "$GODISLOCK" run -n --shared --name readers -- true
  assert_success
  run "$GODISLOCK" run -n --name readers -- true
  assert_equal "$status" 75
  rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  start_holder slots --limit 2
  run "$GODISLOCK" run -n --limit 2 --name slots -- sh -c 'echo "$GODISLOCK_SLOT"'
  assert_success
  assert_output 2
  rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  assert_no_lock_key
}

@test "acl: a queued waiter is handed the lock by the release" {
  start_holder handover
  local dir=$BATS_TEST_TMPDIR
  "$GODISLOCK" run -v --name handover -- sh -c 'echo "$GODISLOCK_FENCE" >"$1"' \
    sh "$dir/fence" 2>"$dir/waiter.err" 3>&- &
  local waiter=$!
  wait_for 10 test_queue_len handover 1
  wait_for 10 subscribers_are handover 1
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
  wait_job 20 "$waiter"
  assert_equal "$WAIT_STATUS" 0
  [[ -s $dir/fence ]]
  run grep -c "handed over by its releaser" "$dir/waiter.err"
  assert_output 1
  assert_no_lock_key
}

test_queue_len() {
  [[ "$(rcli llen "godislock:{$1}:queue")" == "$2" ]]
}

@test "acl: the lock key deleted by the administrator: the command is stopped, exit 79" {
  local dir=$BATS_TEST_TMPDIR
  "$GODISLOCK" run --name lost --ttl 900ms -- sh -c \
    ': >"$1/started"; exec sleep 30' sh "$dir" 2>"$dir/err" 3>&- &
  local pid=$!
  wait_for 10 test -e "$dir/started"
  rcli del 'godislock:{lost}' >/dev/null
  wait_job 30 "$pid"
  assert_equal "$WAIT_STATUS" 79
  run cat "$dir/err"
  assert_output --regexp "^godislock: error: lock 'lost' lost while the command ran"
}

@test "acl: status with and without names, and --json" {
  start_holder shown
  run --separate-stderr "$GODISLOCK" status shown
  assert_success
  assert_output --regexp "$(hostname):$HOLDER_PID"
  run --separate-stderr "$GODISLOCK" status free
  assert_equal "$status" 1
  # Without a name: SCAN of the prefix.
  run --separate-stderr "$GODISLOCK" status
  assert_success
  assert_output --partial "lock 'shown': held"
  run --separate-stderr "$GODISLOCK" status --json shown
  assert_success
  assert_equal "$(json 'd[0]["name"], d[0]["state"], d[0]["holders"][0]["pid"]')" \
    "('shown', 'held', $HOLDER_PID)"
  run --separate-stderr "$GODISLOCK" status --json
  assert_success
  assert_equal "$(json '[x["name"] for x in d]')" "['shown']"
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
}

@test "acl: release --force breaks the lock; its holder exits 79" {
  start_holder broken --ttl 3s
  run --separate-stderr "$GODISLOCK" release --force broken
  assert_success
  assert_line --index 0 "released lock 'broken', held by:"
  wait_job 30 "$HOLDER_PID"
  assert_equal "$WAIT_STATUS" 79
  run "$GODISLOCK" release --force broken
  assert_equal "$status" 1
  assert_no_lock_key
}
