#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's test command: installs what is missing, builds the plain and
# the sanitized (ASan + UBSan) variants, runs every test (unit, integration,
# bats, and the fault-injection suite in its short mode) against both, and
# ends with "tests: N passed, M failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

"$root/scripts/install-deps.sh" || { echo "tests: 0 passed, 1 failed"; exit 1; }

export GODISLOCK_REQUIRE_REDIS=1
passed=0
failed=0
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/godislock-test.XXXXXX")

# Runs every test against the variant built in $2.
test_variant() {
  local variant=$1 dir=$2
  echo "== ctest ($variant): unit and integration"
  local ctest_log="$log_dir/ctest-$variant.log"
  (cd "$dir" && ctest -LE bats -j2 --output-on-failure --timeout 300) \
    >"$ctest_log" 2>&1
  grep -E "tests passed|tests failed|\*\*\*|Test +#.*(Failed|Timeout|Exception)" "$ctest_log" |
    grep -vE " Passed +[0-9.]+ sec" | tail -n 40
  # "100% tests passed, 0 tests failed out of 57"
  local total bad
  total=$(sed -nE 's/.*tests failed out of ([0-9]+).*/\1/p' "$ctest_log" | tail -n1)
  bad=$(sed -nE 's/.* ([0-9]+) tests failed out of.*/\1/p' "$ctest_log" | tail -n1)
  if [[ -z "$total" ]]; then
    echo "ctest ($variant) did not run"
    failed=$((failed + 1))
  else
    passed=$((passed + total - bad))
    failed=$((failed + bad))
  fi
  echo "== bats ($variant)"
  # The docs, completion and package tests check files and the release
  # package, not the binary's behaviour: the plain pass runs them once.
  local suites=() f
  for f in "$root"/tests/bats/*.bats; do
    case $(basename "$f") in
      docs.bats | completions.bats | package.bats)
        [[ $variant == plain ]] && suites+=("$f") ;;
      *) suites+=("$f") ;;
    esac
  done
  # The fault-injection suite runs beside the other bats files: both mostly
  # wait, each on its own redis-server, and neither needs the machine to
  # itself (its checks are about overlaps and fences, not speed).
  local bats_log="$log_dir/bats-$variant.log"
  local fault_log="$log_dir/fault-$variant.log"
  GODISLOCK_BIN="$dir/godislock" bats --tap "$root/tests/fault" \
    >"$fault_log" 2>&1 &
  local fault_pid=$!
  GODISLOCK_BIN="$dir/godislock" bats --tap "${suites[@]}" >"$bats_log" 2>&1
  wait "$fault_pid"
  local log ok notok
  for log in "$bats_log" "$fault_log"; do
    grep -E "^not ok|^#" "$log" | head -n 80
    ok=$(grep -cE "^ok " "$log")
    notok=$(grep -cE "^not ok " "$log")
    if ((ok + notok == 0)); then
      echo "$(basename "$log" .log) ran no test"
      tail -n 20 "$log"
      failed=$((failed + 1))
    fi
    echo "$(basename "$log" .log): $ok passed, $notok failed"
    passed=$((passed + ok))
    failed=$((failed + notok))
  done
}

echo "== build (plain)"
if plain_dir=$("$root/scripts/build.sh" plain); then
  # The ASan build runs meanwhile at the lowest priority: the plain tests
  # mostly wait (for locks, sleeps, timeouts) and leave the CPUs to it.
  nice -n 19 "$root/scripts/build.sh" asan >"$log_dir/build-asan.out" \
    2>"$log_dir/build-asan.err" &
  asan_build=$!
  test_variant plain "$plain_dir"
  echo "== build (asan)"
  if wait "$asan_build"; then
    test_variant asan "$(cat "$log_dir/build-asan.out")"
  else
    echo "build (asan) FAILED"
    tail -n 40 "$log_dir/build-asan.err"
    failed=$((failed + 1))
  fi
else
  echo "build (plain) FAILED"
  failed=$((failed + 1))
fi

echo "logs: $log_dir"
echo "tests: $passed passed, $failed failed"
((failed == 0))
