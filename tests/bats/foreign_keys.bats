#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A key of a lock's layout (not only the lock key) that holds a type
# godislock never gives it: every subcommand exits 65 with one line naming
# the key and its type, and leaves the key (and the rest) alone; a refresh
# that meets one reports the lock lost (79), naming the key.
bats_require_minimum_version 1.5.0
load helpers

setup() { start_redis; }

# The keys under the default prefix with their types, one per line.
key_types() {
  local k
  for k in $(rcli --scan --pattern 'godislock:*' | sort); do
    echo "$k $(rcli type "$k")"
  done
}

@test "run: a foreign queue key: exit 65, one line, nothing written" {
  rcli set 'godislock:{k}:queue' x
  run --separate-stderr "$GODISLOCK" run --name k -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 65
  assert_equal "$stderr" "godislock: error: lock 'k': key \
'godislock:{k}:queue' holds a string, not a lock; left alone (use another \
--name or --prefix)"
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  run key_types
  assert_output 'godislock:{k}:queue string'
  run rcli get 'godislock:{k}:queue'
  assert_output x
}

@test "run: a foreign fence key: exit 65, the command does not start" {
  rcli rpush 'godislock:{k}:fence' x
  run --separate-stderr "$GODISLOCK" run --name k -- touch "$BATS_TEST_TMPDIR/ran"
  assert_equal "$status" 65
  assert_equal "$stderr" "godislock: error: lock 'k': key \
'godislock:{k}:fence' holds a list, not a lock; left alone (use another \
--name or --prefix)"
  [[ ! -e "$BATS_TEST_TMPDIR/ran" ]]
  run key_types
  assert_output 'godislock:{k}:fence list'
}

@test "run: a key made foreign while the command runs: the release exits 65 and leaves the lock" {
  run --separate-stderr "$GODISLOCK" run --name k -- \
    redis-cli -p "$REDIS_PORT" set 'godislock:{k}:queue' x
  assert_equal "$status" 65
  assert_equal "$stderr" "godislock: error: lock 'k': key \
'godislock:{k}:queue' holds a string, not a lock; left alone, and the lock \
with it: it expires within 30s (use another --name or --prefix)"
  # Nothing was released or deleted: the hold lapses with its TTL.
  run rcli type 'godislock:{k}'
  assert_output string
  run rcli get 'godislock:{k}:queue'
  assert_output x
}

@test "run: a key made foreign before a refresh: the lock is lost (79), naming the key" {
  run --separate-stderr "$GODISLOCK" run --name k --ttl 900ms -- sh -c \
    'redis-cli -p "$1" del "godislock:{k}:fence" >/dev/null
     redis-cli -p "$1" rpush "godislock:{k}:fence" x >/dev/null; sleep 30' \
    sh "$REDIS_PORT"
  assert_equal "$status" 79
  assert_equal "${#stderr_lines[@]}" 1
  assert_regex "$stderr" "^godislock: error: lock 'k' lost while the \
command ran: key 'godislock:\{k\}:fence' holds a list, not a lock; left \
alone, so the lease could not be extended; the command was sent signal 15"
  run rcli type 'godislock:{k}:fence'
  assert_output list
}

@test "status: a foreign key of a lock named: exit 65, one line" {
  rcli rpush 'godislock:{k}:fence' x
  run --separate-stderr "$GODISLOCK" status k
  assert_equal "$status" 65
  assert_output "lock 'k': key 'godislock:{k}:fence' was not made by \
godislock (it holds a list); left alone"
  run key_types
  assert_output 'godislock:{k}:fence list'
}

@test "release --force: a foreign holder record: exit 65, one line, the hold is not broken" {
  start_holder k
  local token
  token=$(rcli get 'godislock:{k}')
  rcli del "godislock:{k}:holder:$token" >/dev/null
  rcli rpush "godislock:{k}:holder:$token" x >/dev/null
  run --separate-stderr "$GODISLOCK" release --force k
  assert_equal "$status" 65
  assert_equal "$stderr" "godislock: error: lock 'k': key \
'godislock:{k}:holder:$token' was not made by godislock (it holds a list); \
left alone"
  run rcli get 'godislock:{k}'
  assert_output "$token"
  run rcli type "godislock:{k}:holder:$token"
  assert_output list
  # Once the key is gone, the holder's run ends normally.
  rcli del "godislock:{k}:holder:$token" >/dev/null
  local rc=0
  release_holder || rc=$?
  assert_equal "$rc" 0
}
