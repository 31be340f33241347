#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The documentation agrees with the binary: `run --help`, the man page and the
# bash, zsh and fish completions list the same long options of `run` (asked
# from each shell, see completions.bats); every exit status in --help is
# documented in the man page and README.md; the man page lints clean; the
# completion loads and completes. Needs no Redis.
load helpers

ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
MAN="$ROOT/man/godislock.1"
COMPLETION="$ROOT/completions/godislock.bash"
README="$ROOT/README.md"

# Long options, one per line, sorted, without the top-level --help/--version
# (they are not options of `run`; excluded from every source alike).
long_options() {
  grep -o -- '--[a-z][a-z-]*' | grep -vxE -- '--(help|version)' | sort -u
}

# The text of man page section $1 (roff source, "\-" turned into "-").
man_section() {
  awk -v want=".SH $1" '
    /^\.SH / { on = ($0 == want || $0 == want "\"") }
    on' "$MAN" | sed 's/\\-/-/g'
}

# Runs the completion function for the words given (the last one is the word
# being completed) in a clean bash; prints COMPREPLY one per line.
complete_words() {
  bash --norc --noprofile -c '
    source "$1" || exit 1
    shift
    spec=$(complete -p godislock) || exit 1
    fn=$(sed -nE "s/.* -F ([^ ]+) .*/\1/p" <<<"$spec")
    [[ -n $fn ]] || exit 1
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    "$fn" godislock "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"
  ' _ "$COMPLETION" "$@"
}

# The exit statuses listed in --help ("  64   ..." and "  126 / 127  ...").
help_exit_codes() {
  "$GODISLOCK" --help | sed -n '/^Exit status:/,$p' |
    grep -oE '^ +[0-9]+( / [0-9]+)? ' | grep -oE '[0-9]+'
}

# The long options the man page documents for subcommand $1: its block of
# OPTIONS (between the roff comments `.\" options: NAME`), plus the
# connection options for status and release, which the page lists once.
man_options() {
  local blocks=$1
  [[ $1 == run ]] || blocks="$1 connection"
  man_section OPTIONS | awk -v want=" $blocks " '
    /^\.\\" options: / { on = index(want, " " $3 " ") > 0; next }
    on' | long_options
}

# What `godislock SUB --<TAB>` offers in zsh and in fish (HOME is a scratch
# directory: both write caches there).
zsh_options() {
  HOME=$BATS_TEST_TMPDIR zsh -f "$BATS_TEST_DIRNAME/lib/zsh_complete.zsh" \
    "$ROOT/completions" "godislock $1 --"
}
fish_options() {
  HOME=$BATS_TEST_TMPDIR XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/.config \
    XDG_DATA_HOME=$BATS_TEST_TMPDIR/.local/share fish -c \
    'source $argv[1]; and complete -C "godislock $argv[2] --"' \
    "$ROOT/completions/godislock.fish" "$1" | cut -f1
}

# same_options SUB: --help, the man page and the three completions list
# the same long options for subcommand SUB; one report naming every source
# that differs.
same_options() {
  local sub=$1 from_help from_man from_bash from_zsh from_fish
  from_help=$("$GODISLOCK" "$sub" --help | long_options)
  from_man=$(man_options "$sub")
  from_bash=$(complete_words godislock "$sub" -- | long_options)
  from_zsh=$(zsh_options "$sub" | long_options)
  from_fish=$(fish_options "$sub" | long_options)
  # Sanity: the extraction found the options at all.
  [[ $from_help == *--url* && $from_help == *--connect-timeout* ]]
  local source text bad=
  for source in man bash zsh fish; do
    text=from_$source
    if [[ ${!text} != "$from_help" ]]; then
      bad+="$sub: $source differs from $sub --help (< help, > $source):"$'\n'
      bad+=$(diff <(echo "$from_help") <(echo "${!text}") | grep '^[<>]')$'\n'
    fi
  done
  [[ -z $bad ]] || fail "$bad"
}

@test "run --help, the man page and the bash, zsh and fish completions list the same long options" {
  command -v zsh >/dev/null || fail "zsh is not installed (scripts/install-deps.sh)"
  command -v fish >/dev/null || fail "fish is not installed (scripts/install-deps.sh)"
  same_options run
  [[ $("$GODISLOCK" run --help | long_options | wc -l) -ge 20 ]]
}

@test "status and release: --help, the man page and the completions list the same long options" {
  command -v zsh >/dev/null || fail "zsh is not installed (scripts/install-deps.sh)"
  command -v fish >/dev/null || fail "fish is not installed (scripts/install-deps.sh)"
  same_options status
  same_options release
}

# The sections of util-linux's flock(1) page (sys-utils/flock.1.adoc), with
# DURATIONS and FILES added.
@test "the man page has its sections in order" {
  run grep -E '^\.SH ' "$MAN"
  assert_success
  assert_output "$(printf '%s\n' '.SH NAME' '.SH SYNOPSIS' '.SH DESCRIPTION' \
    '.SH OPTIONS' '.SH DURATIONS' '.SH EXIT STATUS' '.SH ENVIRONMENT' \
    '.SH FILES' '.SH NOTES' '.SH EXAMPLES' '.SH SEE ALSO')"
}

@test "mandoc -Tlint reports nothing for the man page" {
  command -v mandoc >/dev/null || skip "mandoc is not installed"
  run mandoc -Tlint -W all "$MAN"
  assert_success
  assert_output ""
}

@test "groff -man -ww reports nothing for the man page" {
  command -v groff >/dev/null || skip "groff is not installed"
  run groff -man -ww -z "$MAN"
  assert_success
  assert_output ""
}

@test "the bash completion loads and is registered for godislock" {
  run bash --norc --noprofile -c 'source "$1" && complete -p godislock' _ \
    "$COMPLETION"
  assert_success
  assert_output --regexp '^complete -F [_A-Za-z0-9]+ godislock$'
}

@test "completing 'godislock run --tt' offers --ttl" {
  run complete_words godislock run --tt
  assert_success
  assert_output -- --ttl
}

@test "completing 'godislock ru' offers run" {
  run complete_words godislock ru
  assert_success
  assert_output run
}

@test "the completion offers values, and commands after --" {
  run complete_words godislock run --ttl ''
  assert_success
  assert_line 30s
  run complete_words godislock run --url r
  assert_output $'redis://\nrediss://\nredis-sentinel://\nredis-cluster://'
  run complete_words godislock run -- bas
  assert_line bash
  run complete_words godislock run --name x -- ls /
  assert_line /etc
}

@test "every --kill-signal the completion offers is accepted by godislock" {
  local signals
  signals=$(complete_words godislock run --kill-signal '')
  [[ $signals == *TERM* && $signals == *KILL* ]]
  local s
  for s in $signals; do
    # Valid options, then a refused connection (69): the signal was parsed.
    run "$GODISLOCK" run --url redis://127.0.0.1:1 --connect-timeout 200ms \
      --kill-signal "$s" --name docs -- true
    assert_equal "$status" 69
  done
  run "$GODISLOCK" run --url redis://127.0.0.1:1 --kill-signal NOPE \
    --name docs -- true
  assert_equal "$status" 64
}

@test "every exit status in --help is in the man page EXIT STATUS and README.md" {
  local codes
  codes=$(help_exit_codes | tr '\n' ' ')
  assert_equal "$codes" "64 65 69 70 75 79 126 127 "
  local man_exit readme_exit code
  man_exit=$(man_section 'EXIT STATUS')
  readme_exit=$(sed -n '/^## Exit codes/,/^## /p' "$README")
  for code in $codes; do
    # A .TP tag line of its own in the man page, a table row in the README.
    grep -qx -- "$code" <<<"$man_exit" || fail "man page lacks exit status $code"
    grep -qE "^\| $code \|" <<<"$readme_exit" ||
      fail "README.md lacks exit status $code"
  done
}

@test "exit status 65 names the kind mismatch in --help, the man page and README.md" {
  local help
  help=$("$GODISLOCK" run --help | sed -n '/^  65 /,/^  [0-9]/p' | tr -s ' \n' ' ')
  [[ $help == *"in use as another kind (exclusive, shared, or counted with another --limit)"* ]] ||
    fail "run --help, exit 65: $help"
  man_section 'EXIT STATUS' | sed -n '/^65$/,/^\.TP$/p' | tr '\n' ' ' |
    grep -q 'in use as another kind (exclusive, shared, or counted with another .BR --limit' ||
    fail "the man page's exit status 65 does not name the kind"
  grep -qE '^\| 65 \|.*in use as another kind \(exclusive, shared, counted' "$README" ||
    fail "README.md's exit status 65 does not name the kind"
}

# The flock(1) options in README's migration table: `godislock run` accepts
# those the table maps and refuses (64) those it calls not supported.
@test "README's flock migration table matches what godislock run accepts" {
  local table row opts opt value tail checked=0
  table=$(sed -n '/^## Migrating from flock(1)/,/^## /p' "$README" | grep '^| `')
  [[ -n $table ]] || fail "no flock table in README.md"
  while IFS= read -r row; do
    opts=$(cut -d'|' -f2 <<<"$row" | grep -oE '`-[-a-zA-Z]+' | tr -d '`')
    for opt in $opts; do
      tail=(-- true)
      case $opt in
        -w | --wait | --timeout | -E | --conflict-exit-code) value=(1) ;;
        -c | --command) value=(true) tail=() ;;
        *) value=() ;;
      esac
      # Parsed options lead to a refused connection (69); unknown ones are
      # usage errors (64). -V and --version are godislock's, not run's.
      run "$GODISLOCK" run "$opt" "${value[@]}" --url redis://127.0.0.1:1 \
        --connect-timeout 200ms --name docs "${tail[@]}"
      if [[ $row == *"not supported"* || $row == *"not an option of \`run\`"* ]]; then
        assert_equal "$opt:$status" "$opt:64"
      else
        assert_equal "$opt:$status" "$opt:69"
      fi
      checked=$((checked + 1))
    done
  done <<<"$table"
  ((checked >= 18))
  grep -qF '| `-s`, `--shared` | same' "$README"
}

@test "the man page and README.md tell flock users about -E 1" {
  man_section 'EXIT STATUS' | grep -q -- '-E 1'
  grep -q -- '-E 1' "$README"
  man_section EXAMPLES | grep -qF -- 'godislock run --name backup -n -E 0 -- ./backup.sh'
}

@test "--version, the man page and the package carry the CMake project version" {
  local version
  version=$(sed -nE 's/^project\(godislock VERSION ([0-9.]+) .*/\1/p' \
    "$ROOT/CMakeLists.txt")
  [[ -n $version ]]
  run "$GODISLOCK" --version
  assert_success
  # "godislock 0.1.0", plus "(git description)" when built from git.
  assert_output --regexp "^godislock ${version//./\\.}( \([0-9a-z.-]+\))?$"
  run grep -c "^\.TH GODISLOCK 1 [0-9-]* \"godislock ${version}\"" "$MAN"
  assert_output 1
}

# ARCHITECTURE.md stays true: every file it names exists, every key of the
# layout is used by the scripts, every identifier it names exists,
# and its exit codes are the ones src/app/exit_code.hpp defines.
@test "ARCHITECTURE.md names only files, keys, functions and exit codes that exist" {
  local arch=$ROOT/ARCHITECTURE.md path key suffix fn code checked=0
  [[ -f $arch ]]
  for path in $(grep -oE '`src/[A-Za-z0-9_./-]+`' "$arch" | tr -d '`' | sort -u); do
    [[ -e "$ROOT/$path" ]] || { echo "no such path: $path" >&2; return 1; }
    checked=$((checked + 1))
  done
  for key in $(grep -oE '`P\{NAME\}[^`]*`' "$arch" | tr -d '`' | sort -u); do
    # P{NAME}:slot:K -> ":slot:", P{NAME}:limit -> ":limit".
    suffix=$(sed -E 's/^P\{NAME\}//; s/(TOKEN|K)$//' <<<"$key")
    [[ -z $suffix ]] && continue
    grep -qF "'$suffix" "$ROOT"/src/backend/scripts/*.lua ||
      grep -qF "\"$suffix" "$ROOT"/src/backend/scripts/*.lua "$ROOT"/src/backend/*.cpp ||
      { echo "key not in the scripts: $key ($suffix)" >&2; return 1; }
    checked=$((checked + 1))
  done
  for fn in $(grep -oE '`([a-z]+::)?[a-z_]+`' "$arch" | tr -d '`' |
    grep -E '_|::' | sed -E 's/^[a-z]+:://' | sort -u); do
    grep -rqE "\b$fn\b" "$ROOT/src" ||
      { echo "no $fn in src/" >&2; return 1; }
    checked=$((checked + 1))
  done
  local codes
  codes=$(sed -n '/^## Exit codes/,/^## /p' "$arch" | grep -oE '\b(6[0-9]|7[0-9]|12[67])\b' | sort -u)
  [[ -n $codes ]]
  for code in $codes; do
    grep -qE "= $code,|= $code;" "$ROOT/src/app/exit_code.hpp" ||
      { echo "exit code $code not in exit_code.hpp" >&2; return 1; }
  done
  # And every exit code the code defines is on the page.
  for code in $(grep -oE '= [0-9]+' "$ROOT/src/app/exit_code.hpp" | tr -d '= '); do
    grep -qE "\b$code\b" <<<"$codes" ||
      { echo "exit code $code missing from ARCHITECTURE.md" >&2; return 1; }
  done
  ((checked >= 30))
}
