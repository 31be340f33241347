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

# The rule between the man page's `.\" acl-rule begin/end` comments (or
# `acl-rule-read-only`, given "-read-only"): roff requests dropped, "\-"
# turned into "-", the lines joined.
man_acl_rule() {
  BEGIN_MARK=".\\\" acl-rule$1 begin" END_MARK=".\\\" acl-rule$1 end" awk '
    $0 == ENVIRON["BEGIN_MARK"] { on = 1; next }
    $0 == ENVIRON["END_MARK"] { on = 0 }
    on' "$MAN" | grep -v '^\.' | sed 's/\\-/-/g' | tr '\n' ' ' |
    sed 's/ *$//'
}

# set_user [WORDS...]: (re)makes the ACL user with exactly these words and
# the test's password.
set_user() {
  run rcli ACL SETUSER "$ACL_USER" "$@" ">$ACL_PASSWORD"
  assert_output OK
}

setup() {
  start_redis
  RULE=$("$GODISLOCK" acl-rule)
  ACL_PASSWORD="acl-$RANDOM-$RANDOM"
  local -a words
  read -ra words <<<"$RULE"
  set_user "${words[@]}"
  # Every godislock below is that user; the password comes from the
  # environment, never from the command line.
  export GODISLOCK_URL="redis://$ACL_USER:@127.0.0.1:$REDIS_PORT"
  export GODISLOCK_PASSWORD=$ACL_PASSWORD
}

@test "acl: the rule is the one in force, and holds what godislock and its scripts call" {
  # The words of the rule: reset, on, keys and channels of the default
  # prefix, then commands only.
  local -a words
  read -ra words <<<"$RULE"
  assert_equal "${words[*]:0:4}" 'reset on ~godislock:* &godislock:*'
  local documented
  documented=$(printf '%s\n' "${words[@]:4}" | sort)
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

@test "acl: acl-rule prints the man page's rules; the prefix is escaped for globs" {
  assert_equal "$RULE" "$(man_acl_rule)"
  assert_equal "$("$GODISLOCK" acl-rule --read-only)" "$(man_acl_rule -read-only)"
  run "$GODISLOCK" acl-rule --prefix 'a*b?[c]\d:'
  assert_success
  assert_output 'reset on ~a\*b\?\[c\]\\d:* &a\*b\?\[c\]\\d:*'"${RULE#*'&godislock:*'}"
  GODISLOCK_PREFIX=team: run "$GODISLOCK" acl-rule --read-only
  assert_output --regexp '^reset on ~team:\* \+eval '
  run --separate-stderr "$GODISLOCK" acl-rule --prefix 'a b:'
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: --prefix 'a b:': an ACL rule \
cannot hold a prefix with blanks or control characters"
}

@test "acl: a prefix with glob characters works under its own rule" {
  local prefix='t*[x]:' words
  read -ra words <<<"$("$GODISLOCK" acl-rule --prefix "$prefix")"
  set_user "${words[@]}"
  run "$GODISLOCK" run --prefix "$prefix" -n --name g -- echo ran
  assert_success
  assert_output ran
  # The escaped pattern matches the prefix only, not what the glob would.
  run --separate-stderr "$GODISLOCK" run --prefix 'tz[x]:' -n --name g -- true
  assert_equal "$status" 69
}

@test "acl: --user and GODISLOCK_USER log in as the user; a wrong password or user is 69" {
  export GODISLOCK_URL="redis://127.0.0.1:$REDIS_PORT"
  run "$GODISLOCK" run --user "$ACL_USER" -n --name u -- echo ran
  assert_success
  assert_output ran
  GODISLOCK_USER=$ACL_USER run "$GODISLOCK" status u
  assert_equal "$status" 1
  # The user is really in force: another prefix is refused.
  run --separate-stderr "$GODISLOCK" run --user "$ACL_USER" --prefix x: -n \
    --name u -- true
  assert_equal "$status" 69
  assert_regex "$stderr" "NOPERM"
  GODISLOCK_PASSWORD=wrong run --separate-stderr "$GODISLOCK" run \
    --user "$ACL_USER" -n --name u -- echo ran
  assert_equal "$status" 69
  assert_output ""
  assert_equal "$stderr" "godislock: error: authentication to \
redis://$ACL_USER@127.0.0.1:$REDIS_PORT failed: WRONGPASS invalid \
username-password pair or user is disabled."
  # A user without a password still logs in as that user, never as the
  # default one.
  GODISLOCK_PASSWORD= run --separate-stderr "$GODISLOCK" run \
    --user "$ACL_USER" -n --name u -- echo ran
  assert_equal "$status" 69
  assert_regex "$stderr" "WRONGPASS"
  # The option wins over the URL's user.
  GODISLOCK_URL="redis://nobody:@127.0.0.1:$REDIS_PORT" run "$GODISLOCK" run \
    --user "$ACL_USER" -n --name u -- echo ran
  assert_success
  run --separate-stderr "$GODISLOCK" run --user "" -n --name u -- true
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: --user must not be empty"
  assert_no_lock_key
}

# The keys under the default prefix, sorted, one per line.
prefix_keys() {
  rcli --scan --pattern 'godislock:*' | sort
}

# without WORDS... DROP: WORDS without the word DROP, one per line.
without() {
  local drop=${*: -1} w
  for w in "${@:1:$#-1}"; do
    [[ $w == "$drop" ]] || printf '%s\n' "$w"
  done
}

@test "acl: without any one right of the rule, run is 69 with one NOPERM line naming it, nothing written" {
  local -a words kept
  read -ra words <<<"$RULE"
  local drop n=0 expect before
  for drop in "${words[@]:2}"; do
    n=$((n + 1))
    mapfile -t kept < <(without "${words[@]}" "$drop")
    set_user "${kept[@]}"
    # A cold script cache: EVALSHA then EVAL, so both rights are needed.
    rcli SCRIPT FLUSH >/dev/null
    before=$(prefix_keys)
    run --separate-stderr "$GODISLOCK" run -n --name "r$n" -- echo ran
    case $drop in
      '~'*) expect="NOPERM this user has no permissions to access one of \
the keys used as arguments: the ACL user lacks access to the lock's keys" ;;
      '&'*) expect="NOPERM the ACL user lacks access to the channel \
godislock:{r$n}:acquired " ;;
      +eval | +evalsha) expect="NOPERM this user has no permissions to run \
the '${drop#+}' command: the ACL user lacks $drop " ;;
      *) expect="NOPERM the ACL user lacks $drop " ;;
    esac
    [[ $status == 69 && -z $output && $stderr != *$'\n'* &&
      $stderr == "godislock: error: acquire script: $expect"* ]] ||
      fail "without $drop: status $status, output '$output', stderr '$stderr'"
    assert_equal "$(prefix_keys)" "$before"
  done
  [[ $n -ge 30 ]]
}

@test "acl: the read-only rule: status works; run and release --force are 69, nothing touched" {
  start_holder kept
  local -a words kept_words
  read -ra words <<<"$("$GODISLOCK" acl-rule --read-only)"
  set_user "${words[@]}"
  run --separate-stderr "$GODISLOCK" status kept
  assert_success
  assert_output --regexp "$(hostname):$HOLDER_PID"
  run --separate-stderr "$GODISLOCK" status
  assert_success
  assert_output --partial "lock 'kept': held"
  run --separate-stderr "$GODISLOCK" status --json kept
  assert_success
  local before
  before=$(rcli GET 'godislock:{kept}')
  run --separate-stderr "$GODISLOCK" release --force kept
  assert_equal "$status" 69
  assert_regex "$stderr" "status script: NOPERM the ACL user lacks access to \
the channel godislock:\{kept\}:released, \+ping, \+del, "
  assert_equal "$(rcli GET 'godislock:{kept}')" "$before"
  run --separate-stderr "$GODISLOCK" run -n --name other -- echo ran
  assert_equal "$status" 69
  assert_output ""
  assert_regex "$stderr" "acquire script: NOPERM the ACL user lacks "
  # Without any one right of the read-only rule, status names it.
  local drop
  for drop in "${words[@]:2}"; do
    mapfile -t kept_words < <(without "${words[@]}" "$drop")
    set_user "${kept_words[@]}"
    rcli SCRIPT FLUSH >/dev/null
    run --separate-stderr "$GODISLOCK" status kept
    [[ $status == 69 && $stderr != *$'\n'* && $stderr == *NOPERM* &&
      ( $stderr == *"lacks $drop "* || $stderr == *"lacks $drop,"* ||
        $stderr == *"lacks access to the lock's keys"* ) ]] ||
      fail "without $drop: status $status, stderr '$stderr'"
  done
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
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

@test "acl: AUTH and SELECT go with the first script; when refused, what that script took as the default user is given back" {
  # Warm the script cache, so that the acquire script really runs after
  # the refused AUTH (as the default user, who has no password here).
  run "$GODISLOCK" run -n --name warm -- true
  assert_success
  GODISLOCK_PASSWORD=wrong run --separate-stderr "$GODISLOCK" run -v -n \
    --name given -- echo ran
  assert_equal "$status" 69
  assert_output ""
  [[ $stderr == *"login refused but the acquire script ran: released what it took"* ]]
  [[ $stderr == *"godislock: error: authentication to redis://$ACL_USER@127.0.0.1:$REDIS_PORT failed: WRONGPASS"* ]]
  assert_equal "$(rcli EXISTS 'godislock:{given}')" 0
  assert_equal "$(rcli LLEN 'godislock:{given}:queue')" 0
  # A database the server refuses: the script ran in database 0, and gave
  # back what it took there.
  GODISLOCK_URL="redis://$ACL_USER:@127.0.0.1:$REDIS_PORT/99999" \
    run --separate-stderr "$GODISLOCK" run -n --name given -- echo ran
  assert_equal "$status" 69
  assert_output ""
  assert_equal "$stderr" "godislock: error: cannot select database 99999 on \
redis://$ACL_USER@127.0.0.1:$REDIS_PORT/99999: NOPERM this user has no \
permissions to run the 'select' command"
  assert_equal "$(rcli EXISTS 'godislock:{given}')" 0
  # With +select the user gets its database; the lock lives there.
  local -a words
  read -ra words <<<"$RULE"
  set_user "${words[@]}" +select
  GODISLOCK_URL="redis://$ACL_USER:@127.0.0.1:$REDIS_PORT/3" run \
    "$GODISLOCK" run -n --name db3 -- sh -c \
    'redis-cli -p "$1" -n 3 exists "godislock:{db3}"' sh "$REDIS_PORT"
  assert_success
  assert_output 1
  assert_equal "$(rcli EXISTS 'godislock:{db3}')" 0
}
