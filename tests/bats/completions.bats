#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The bash, zsh and fish completions load and complete what they should,
# and `godislock completion SHELL` prints them byte for byte. Each shell is
# driven for real: bash by calling the registered function with COMP_WORDS
# set, zsh through compinit in a pseudo-terminal (lib/zsh_complete.zsh),
# fish with `complete -C`. Needs no Redis.
load helpers
bats_require_minimum_version 1.5.0

ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
BASH_COMPLETION="$ROOT/completions/godislock.bash"
ZSH_DIR="$ROOT/completions"
FISH_COMPLETION="$ROOT/completions/godislock.fish"
BASH_COMPLETION_PKG=/usr/share/bash-completion/bash_completion

setup() {
  # zsh and fish write caches and history under $HOME and XDG dirs.
  export HOME="$BATS_TEST_TMPDIR/home"
  export XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share"
  export XDG_CACHE_HOME="$HOME/.cache"
  mkdir -p "$HOME"
}

# Completes the words given (the last one is the word being completed) with
# the bash completion in a clean bash; prints COMPREPLY sorted, one per line.
# With BASH_COMPLETION_FIRST=1 the bash-completion package is loaded first.
bash_complete() {
  bash --norc --noprofile -c '
    if [[ $BASH_COMPLETION_FIRST == 1 ]]; then
      source "$2" || exit 1
    fi
    source "$1" || exit 1
    shift 2
    spec=$(complete -p godislock) || exit 1
    fn=$(sed -nE "s/.* -F ([^ ]+) .*/\1/p" <<<"$spec")
    [[ -n $fn ]] || exit 1
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    "$fn" godislock "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"
  ' _ "$BASH_COMPLETION" "$BASH_COMPLETION_PKG" "$@" 2>/dev/null | sort -u
}

# Completes a command line with zsh's completion system; sorted candidates.
zsh_complete() {
  command -v zsh >/dev/null || fail "zsh is not installed (scripts/install-deps.sh)"
  zsh -f "$BATS_TEST_DIRNAME/lib/zsh_complete.zsh" "$ZSH_DIR" "$1" | sort -u
}

# Completes a command line with fish; sorted candidates without descriptions.
fish_complete() {
  command -v fish >/dev/null || fail "fish is not installed (scripts/install-deps.sh)"
  fish -c 'source $argv[1]; or exit 1; complete -C $argv[2]' \
    "$FISH_COMPLETION" "$1" | cut -f1 | sort -u
}

sorted() {
  printf '%s\n' "$@" | sort -u
}

# --- bash ---

@test "bash: the completion is registered for godislock" {
  run bash --norc --noprofile -c 'source "$1" && complete -p godislock' _ \
    "$BASH_COMPLETION"
  assert_success
  assert_output --regexp '^complete -F [_A-Za-z0-9]+ godislock$'
}

@test "bash: subcommands and top-level options complete" {
  run bash_complete godislock ''
  assert_output "$(sorted run status release completion acl-rule)"
  run bash_complete godislock --
  assert_output "$(sorted --help --version)"
  run bash_complete godislock completion ''
  assert_output "$(sorted bash zsh fish)"
}

@test "bash: run options complete, with --limit, --shared and --exclusive" {
  run bash_complete godislock run --
  assert_line --ttl
  assert_line --limit
  assert_line --shared
  assert_line --exclusive
  assert_line --kill-signal
  assert_line --password-file
  refute_line --json
  run bash_complete godislock run --ttl 5s --li
  assert_output --limit
  # The options of each subcommand, and no others.
  run bash_complete godislock status --
  assert_line --json
  assert_line --url
  refute_line --ttl
  run bash_complete godislock release --f
  assert_output --force
}

@test "bash: option values complete" {
  run bash_complete godislock run --kill-signal ''
  assert_output "$(sorted TERM INT HUP QUIT KILL USR1 USR2 ALRM PIPE)"
  run bash_complete godislock run --kill-signal = U
  assert_output "$(sorted USR1 USR2)"
  run bash_complete godislock run --url ''
  assert_output "$(sorted redis:// rediss:// redis-sentinel:// redis-cluster:// unix:// etcd:// etcds://)"
  run bash_complete godislock status --url rediss
  assert_output rediss://
  echo secret >"$BATS_TEST_TMPDIR/pw.txt"
  run bash_complete godislock release --password-file "$BATS_TEST_TMPDIR/pw"
  assert_output "$BATS_TEST_TMPDIR/pw.txt"
  run bash_complete godislock run -nw ''
  assert_line 30s
}

@test "bash: the command after run completes, with or without --" {
  run bash_complete godislock run -- bas
  assert_line bash
  run bash_complete godislock run --ttl 5s bas
  assert_line bash
  # An option of the command is not taken for one of ours.
  run bash_complete godislock run -- ls /
  assert_line /etc
  run bash_complete godislock run -w 5s ls --tt
  assert_output ""
}

@test "bash: with bash-completion loaded, the command's own completion is used" {
  [[ -r $BASH_COMPLETION_PKG ]] ||
    skip "bash-completion is not installed (scripts/install-deps.sh)"
  BASH_COMPLETION_FIRST=1 run bash_complete godislock run -- ls --colo
  assert_line --color
  BASH_COMPLETION_FIRST=1 run bash_complete godislock run -n ls --colo
  assert_line --color
  BASH_COMPLETION_FIRST=1 run bash_complete godislock run -- ech
  assert_line echo
  # Our own options still complete before the command.
  BASH_COMPLETION_FIRST=1 run bash_complete godislock run --tt
  assert_output --ttl
}

# --- zsh ---

@test "zsh: compinit loads _godislock from fpath and binds it to godislock" {
  command -v zsh >/dev/null || fail "zsh is not installed (scripts/install-deps.sh)"
  run zsh -f -c '
    fpath=("$1" $fpath)
    autoload -U compinit && compinit -u -d "$2" || exit 1
    print -r -- "$_comps[godislock]"
    autoload +X _godislock && whence -w _godislock
  ' _ "$ZSH_DIR" "$BATS_TEST_TMPDIR/zcompdump"
  assert_success
  assert_output "$(printf '%s\n' _godislock '_godislock: function')"
}

@test "zsh: subcommands, run options and values complete" {
  run zsh_complete 'godislock '
  assert_output "$(sorted run status release completion acl-rule)"
  run zsh_complete 'godislock run --'
  assert_line --ttl
  assert_line --limit
  assert_line --shared
  assert_line --exclusive
  refute_line --json
  run zsh_complete 'godislock run --kill-signal '
  assert_output "$(sorted TERM INT HUP QUIT KILL USR1 USR2 ALRM PIPE)"
  run zsh_complete 'godislock run --url '
  assert_output "$(sorted redis:// rediss:// redis-sentinel:// redis-cluster:// unix:// etcd:// etcds://)"
  run zsh_complete 'godislock status --'
  assert_line --json
  refute_line --ttl
  run zsh_complete 'godislock release --f'
  assert_output --force
  run zsh_complete 'godislock completion '
  assert_output "$(sorted bash zsh fish)"
}

@test "zsh: the command after run completes with its own completion" {
  run zsh_complete 'godislock run -- ech'
  assert_line echo
  run zsh_complete 'godislock run -- ls --colo'
  assert_line --color
  run zsh_complete 'godislock run -n ls --colo'
  assert_line --color
  refute_line --ttl
}

@test "zsh: the output of godislock completion zsh works sourced after compinit" {
  command -v zsh >/dev/null || fail "zsh is not installed (scripts/install-deps.sh)"
  # Sourcing binds the function at once (compdef), without an error from
  # _arguments, which only a completion function may call.
  run --separate-stderr zsh -f -c '
    autoload -U compinit && compinit -u -d "$2" || exit 1
    source <("$1" completion zsh) || exit 1
    print -r -- "$_comps[godislock]"
    whence -w _godislock
  ' _ "$GODISLOCK" "$BATS_TEST_TMPDIR/zcompdump"
  assert_success
  assert_equal "$stderr" ""
  assert_output "$(printf '%s\n' _godislock '_godislock: function')"
  # And it completes, with nothing of completions/ in $fpath.
  local sourced="source <(${GODISLOCK@Q} completion zsh)"
  run zsh -f "$BATS_TEST_DIRNAME/lib/zsh_complete.zsh" "" 'godislock run --tt' \
    "$sourced"
  assert_success
  assert_output --ttl
  run zsh -f "$BATS_TEST_DIRNAME/lib/zsh_complete.zsh" "" 'godislock ' \
    "$sourced"
  assert_equal "$(sort <<<"$output")" "$(sorted run status release completion acl-rule)"
}

@test "zsh: the output of godislock completion zsh works installed in fpath as _godislock" {
  command -v zsh >/dev/null || fail "zsh is not installed (scripts/install-deps.sh)"
  mkdir -p "$BATS_TEST_TMPDIR/site-functions"
  "$GODISLOCK" completion zsh >"$BATS_TEST_TMPDIR/site-functions/_godislock"
  run zsh -f "$BATS_TEST_DIRNAME/lib/zsh_complete.zsh" \
    "$BATS_TEST_TMPDIR/site-functions" 'godislock run --tt'
  assert_success
  assert_output --ttl
  run zsh -f "$BATS_TEST_DIRNAME/lib/zsh_complete.zsh" \
    "$BATS_TEST_TMPDIR/site-functions" 'godislock status --js'
  assert_output --json
}

@test "zsh: sourced before compinit, the completion says what is missing" {
  command -v zsh >/dev/null || fail "zsh is not installed (scripts/install-deps.sh)"
  run --separate-stderr zsh -f -c 'source <("$1" completion zsh)' _ \
    "$GODISLOCK"
  assert_failure
  assert_equal "$stderr" \
    "godislock: zsh completion needs compinit first: autoload -U compinit && compinit"
}

# --- fish ---

@test "fish: the completion loads and run options complete" {
  command -v fish >/dev/null || fail "fish is not installed (scripts/install-deps.sh)"
  run --separate-stderr fish -c \
    'source $argv[1]; and complete -C "godislock run --"' "$FISH_COMPLETION"
  assert_success
  assert_equal "$stderr" ""
  assert_line --regexp $'^--ttl\t'
  assert_line --regexp $'^--limit\t'
  assert_line --regexp $'^--shared\t'
  assert_line --regexp $'^--exclusive\t'
}

@test "fish: subcommands, values and the options of each subcommand" {
  run fish_complete 'godislock '
  assert_output "$(sorted run status release completion acl-rule)"
  run fish_complete 'godislock run --kill-signal '
  assert_output "$(sorted TERM INT HUP QUIT KILL USR1 USR2 ALRM PIPE)"
  run fish_complete 'godislock status --'
  assert_line --json
  refute_line --ttl
  run fish_complete 'godislock release --f'
  assert_output --force
  run fish_complete 'godislock completion '
  assert_output "$(sorted bash zsh fish)"
}

@test "fish: the command after run completes with its own completion" {
  run fish_complete 'godislock run -- ech'
  assert_line echo
  run fish_complete 'godislock run -- ls --colo'
  assert_line --color
  run fish_complete 'godislock run -nw 5s ls --colo'
  assert_line --color
  refute_line --ttl
}

# --- godislock completion SHELL ---

@test "godislock completion SHELL prints the file of completions/ byte for byte" {
  local shell file
  for shell in bash zsh fish; do
    case $shell in
      bash) file="$ROOT/completions/godislock.bash" ;;
      zsh) file="$ROOT/completions/_godislock" ;;
      fish) file="$ROOT/completions/godislock.fish" ;;
    esac
    "$GODISLOCK" completion "$shell" >"$BATS_TEST_TMPDIR/$shell.out"
    cmp "$file" "$BATS_TEST_TMPDIR/$shell.out" ||
      fail "godislock completion $shell differs from $file"
  done
}

@test "the output of godislock completion bash works when sourced" {
  run bash --norc --noprofile -c '
    source <("$1" completion bash) || exit 1
    COMP_WORDS=(godislock run --kill-s); COMP_CWORD=2
    _godislock_module godislock --kill-s run
    printf "%s\n" "${COMPREPLY[@]}"
  ' _ "$GODISLOCK"
  assert_success
  assert_output --kill-signal
}

@test "godislock completion with a bad or missing shell is a usage error" {
  run "$GODISLOCK" completion tcsh
  assert_equal "$status" 64
  assert_output "godislock: error: unknown shell 'tcsh' for completion (use bash, zsh or fish)"
  run "$GODISLOCK" completion
  assert_equal "$status" 64
  assert_equal "${#lines[@]}" 1
  assert_output --regexp '^godislock: error: .*bash, zsh or fish'
  run "$GODISLOCK" completion bash zsh
  assert_equal "$status" 64
  assert_equal "${#lines[@]}" 1
  assert_output --regexp '^godislock: error: '
}

@test "godislock completion --help names the shells" {
  run "$GODISLOCK" completion --help
  assert_success
  assert_line "Usage: godislock completion bash|zsh|fish"
}

@test "acl-rule's options complete in bash, zsh and fish" {
  run bash_complete godislock acl-rule --
  assert_output "$(sorted --help --prefix --read-only)"
  run zsh_complete "godislock acl-rule --"
  assert_line --regexp '^--prefix'
  assert_line --regexp '^--read-only'
  run fish_complete "godislock acl-rule --"
  assert_line --regexp '^--prefix'
  assert_line --regexp '^--read-only'
}
