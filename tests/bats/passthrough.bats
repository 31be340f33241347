#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The command line after the options reaches the command byte for byte;
# stdin, stdout and stderr are the command's.
bats_require_minimum_version 1.5.0
load helpers

setup() { start_redis; }

@test "everything after -- reaches the command, even words that look like options" {
  run --separate-stderr "$GODISLOCK" run --name pt -- \
    printf '%s\n' --ttl 5 -n -- --name
  assert_success
  assert_equal "$stderr" ""
  assert_equal "$output" $'--ttl\n5\n-n\n--\n--name'
  assert_no_lock_key
}

@test "flock style: options end at the first non-option word" {
  run --separate-stderr "$GODISLOCK" run --name x printf '%s\n' a -b --ttl
  assert_success
  assert_equal "$output" $'a\n-b\n--ttl'
  # The lock was named by --name, not derived from the command.
  run "$GODISLOCK" run --name x -- sh -c 'echo "$GODISLOCK_NAME"'
  assert_output x
}

@test "flock style: --help after the command word is the command's" {
  run --separate-stderr "$GODISLOCK" run --name x echo --help --version
  assert_success
  assert_output '--help --version'
  assert_equal "$stderr" ""
}

@test "the command gets SIGPIPE at its default (yes | head ends)" {
  run bash -c 'set -o pipefail
    "$1" run --name pt -- yes | head -n 1
    echo "status ${PIPESTATUS[0]}"' bash "$GODISLOCK"
  assert_output $'y\nstatus 141'
}

@test "flock style with option values: -w 5 and --ttl 10s before the command" {
  run "$GODISLOCK" run -w 5 --ttl 10s --name x echo -w 5 --ttl
  assert_success
  assert_output '-w 5 --ttl'
}

@test "-c runs the string with /bin/sh" {
  run "$GODISLOCK" run --name pt -c 'echo $0; echo "[$1]"; readlink /proc/$$/exe'
  assert_success
  assert_output "/bin/sh
[]
$(readlink -f /bin/sh)"
  run "$GODISLOCK" run --name pt --command 'exit 7'
  assert_equal "$status" 7
}

@test "arguments with spaces, empty strings and non-ASCII bytes survive" {
  local args=('a b' '' '  two  spaces  ' $'tab\there' $'new\nline' 'ü€'
    $'\xff\xfe\x80' '*' '$HOME' "'quoted'" '"dq"' '\back')
  printf '[%s]\n' "${args[@]}" >"$BATS_TEST_TMPDIR/expected"
  "$GODISLOCK" run --name pt -- printf '[%s]\n' "${args[@]}" \
    >"$BATS_TEST_TMPDIR/actual"
  cmp "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/actual"
  # The same in flock style, without --.
  "$GODISLOCK" run --name pt printf '[%s]\n' "${args[@]}" \
    >"$BATS_TEST_TMPDIR/actual2"
  cmp "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/actual2"
  # And as the argv of a script run with -c.
  "$GODISLOCK" run --name pt -- sh -c 'printf "[%s]\n" "$@"' sh \
    "${args[@]}" >"$BATS_TEST_TMPDIR/actual3"
  cmp "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/actual3"
}

@test "a -c string with non-ASCII bytes and quotes survives" {
  "$GODISLOCK" run --name pt -c $'printf "%s|" "a b" \'\' \xc3\xbc \xff' \
    >"$BATS_TEST_TMPDIR/actual"
  printf '%s|' 'a b' '' 'ü' $'\xff' >"$BATS_TEST_TMPDIR/expected"
  cmp "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/actual"
}

@test "stdin is passed to the command" {
  run bash -c 'echo hi | "$1" run --name pt -- cat' bash "$GODISLOCK"
  assert_success
  assert_output hi
  # Binary data, byte for byte.
  head -c 65536 /dev/urandom >"$BATS_TEST_TMPDIR/blob"
  "$GODISLOCK" run --name pt -- cat <"$BATS_TEST_TMPDIR/blob" \
    >"$BATS_TEST_TMPDIR/copy"
  cmp "$BATS_TEST_TMPDIR/blob" "$BATS_TEST_TMPDIR/copy"
}

@test "stdout and stderr of the command are kept apart" {
  run --separate-stderr "$GODISLOCK" run --name pt -- \
    sh -c 'echo to-out; echo to-err >&2'
  assert_success
  assert_equal "$output" to-out
  assert_equal "$stderr" to-err
}

@test "-x and -o are accepted and change nothing" {
  run "$GODISLOCK" run -x -o --name pt -- echo ok
  assert_success
  assert_output ok
}

@test "the command is found on PATH and through a relative path" {
  mkdir -p "$BATS_TEST_TMPDIR/bin"
  printf '#!/bin/sh\necho "mine $*"\n' >"$BATS_TEST_TMPDIR/bin/mytool"
  chmod 755 "$BATS_TEST_TMPDIR/bin/mytool"
  PATH="$BATS_TEST_TMPDIR/bin:$PATH" run "$GODISLOCK" run --name pt -- \
    mytool x y
  assert_success
  assert_output 'mine x y'
  cd "$BATS_TEST_TMPDIR"
  run "$GODISLOCK" run --name pt -- ./bin/mytool z
  assert_success
  assert_output 'mine z'
}

@test "a script without #! runs with /bin/sh (like execvp)" {
  printf 'echo "no shebang $1"\n' >"$BATS_TEST_TMPDIR/plain"
  chmod 755 "$BATS_TEST_TMPDIR/plain"
  run "$GODISLOCK" run --name pt -- "$BATS_TEST_TMPDIR/plain" arg
  assert_success
  assert_output 'no shebang arg'
}
