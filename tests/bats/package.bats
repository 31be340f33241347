#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The Debian package: `cpack -G DEB` builds it with the right control fields
# and files; installed into a scratch root (dpkg --root, never the real
# system) the binary runs, `man godislock` shows the page and the
# completions load; `dpkg -r` removes every file. Needs no Redis.
#
# The package is made from a build with the release settings (no
# sanitizer, static libstdc++/fmt/hiredis): the build directory of
# $GODISLOCK_BIN if it is one, else the plain build/ of scripts/build.sh,
# else a fresh build in a temp dir (about a minute on 2 cores). cpack
# packages what the build directory holds, so the binary is brought up to
# date first.
load helpers

ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

# Succeeds if directory $1 is a CMake build of this source tree with the
# release settings and a CPack configuration.
is_release_build() {
  local cache="$1/CMakeCache.txt"
  [[ -f $cache && -f $1/CPackConfig.cmake ]] &&
    grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$cache" &&
    grep -qx 'GODISLOCK_SANITIZE:BOOL=OFF' "$cache" &&
    grep -qx 'GODISLOCK_STATIC_DEPS:BOOL=ON' "$cache"
}

setup_file() {
  command -v dpkg-deb >/dev/null ||
    skip "dpkg-deb is not installed (scripts/install-deps.sh)"
  local build
  build=$(cd "$(dirname "$GODISLOCK_BIN")" && pwd)
  if ! is_release_build "$build"; then
    build="$ROOT/build"
  fi
  if ! is_release_build "$build"; then
    build="$BATS_FILE_TMPDIR/build"
    cmake -S "$ROOT" -B "$build" -G Ninja -DGODISLOCK_BUILD_TESTS=OFF \
      >"$BATS_FILE_TMPDIR/configure.log" 2>&1 ||
      { cat "$BATS_FILE_TMPDIR/configure.log" >&2; return 1; }
  fi
  # cpack installs what is built (it builds nothing with Ninja) into a
  # staging dir under -B and writes the .deb there.
  local out="$BATS_FILE_TMPDIR/pkg" log="$BATS_FILE_TMPDIR/cpack.log"
  { cmake --build "$build" --target godislock godislock_man &&
    (cd "$build" && cpack -G DEB -B "$out"); } >"$log" 2>&1 ||
    { cat "$log" >&2; return 1; }
  local debs=("$out"/godislock_*.deb)
  [[ -f ${debs[0]} ]] || { echo "cpack made no .deb" >&2; return 1; }
  export DEB=${debs[0]}
  export VERSION
  VERSION=$(sed -nE 's/^project\(godislock VERSION ([0-9.]+).*/\1/p' \
    "$ROOT/CMakeLists.txt")
}

@test "the package has the right control fields" {
  local arch
  arch=$(dpkg --print-architecture)
  assert_equal "$(basename "$DEB")" "godislock_${VERSION}_${arch}.deb"
  assert_equal "$(dpkg-deb -f "$DEB" Package)" godislock
  assert_equal "$(dpkg-deb -f "$DEB" Version)" "$VERSION"
  assert_equal "$(dpkg-deb -f "$DEB" Architecture)" "$arch"
  assert_equal "$(dpkg-deb -f "$DEB" Section)" utils
  assert_equal "$(dpkg-deb -f "$DEB" Priority)" optional
  run dpkg-deb -f "$DEB" Maintainer
  assert_output --regexp '^[^<>]+ <[^<>@ ]+@[^<>@ ]+>$'
  run dpkg-deb -f "$DEB" Description
  assert_line --index 0 "run a command while holding a distributed lock in Redis"
  assert [ "${#lines[@]}" -ge 3 ]
  run dpkg-deb -f "$DEB" Recommends
  assert_output --partial redis-server
  # libcurl is loaded only for etcd:// URLs.
  assert_output --partial 'libcurl4 (>= 7.66)'
  # dpkg-shlibdeps found only libc6: libstdc++, libgcc, fmt and hiredis are
  # linked statically.
  run dpkg-deb -f "$DEB" Depends
  assert_output --regexp '^libc6 \(>= [0-9.]+\)$'
  # And the control file passes dpkg's own checks.
  run dpkg-deb --info "$DEB"
  assert_success
}

@test "the package holds the binary, the man page, the three completions and the copyright" {
  run bash -c "dpkg-deb --contents \"\$1\" | awk '!/\\/\$/ { print \$6 }' | sort" \
    _ "$DEB"
  assert_success
  assert_output "$(printf '%s\n' \
    ./usr/bin/godislock \
    ./usr/share/bash-completion/completions/godislock \
    ./usr/share/doc/godislock/copyright \
    ./usr/share/fish/vendor_completions.d/godislock.fish \
    ./usr/share/man/man1/godislock.1.gz \
    ./usr/share/zsh/site-functions/_godislock)"
  # Our license, and the notices of the libraries linked in statically.
  run bash -c 'dpkg-deb --fsys-tarfile "$1" |
    tar -xO ./usr/share/doc/godislock/copyright' _ "$DEB"
  assert_success
  assert_line "MIT License"
  assert_line --regexp '^Copyright \(c\) [0-9]+ the godislock authors$'
  assert_line --partial "===== hiredis"
  assert_line --partial "License: BSD-3-Clause"
  assert_line --partial "===== fmt"
  # Owned by root, with the usual modes.
  run dpkg-deb --contents "$DEB"
  assert_line --regexp '^-rwxr-xr-x root/root .* \./usr/bin/godislock$'
  assert_line --regexp '^-rw-r--r-- root/root .* \./usr/share/man/man1/godislock\.1\.gz$'
  refute_line --regexp '^[^ ]+ [^r][^ ]*/'
}

@test "installed with dpkg into a scratch root, it runs, has its man page and completions, and removes cleanly" {
  local root="$BATS_TEST_TMPDIR/root"
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
  : >"$root/var/lib/dpkg/status"
  # --force-depends: the scratch root's dpkg database knows no libc6;
  # --force-not-root and --log keep dpkg away from the real system.
  run dpkg --root="$root" --log=/dev/null --force-depends --force-not-root \
    --force-script-chrootless -i "$DEB"
  assert_success
  run dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Status} ${Version}' \
    godislock
  assert_output "install ok installed $VERSION"

  # The binary: the package's version, stripped, needing only libc.
  run "$root/usr/bin/godislock" --version
  assert_success
  assert_output --regexp "^godislock $VERSION( |\$)"
  if command -v file >/dev/null; then
    run file -L "$root/usr/bin/godislock"
    assert_output --partial ", stripped"
  fi
  run bash -c "readelf -d \"\$1\" | sed -nE 's/.*Shared library: \\[(.*)\\]/\\1/p'" \
    _ "$root/usr/bin/godislock"
  assert_success
  refute_line --regexp '^lib(stdc\+\+|gcc_s|fmt|hiredis)'

  # The man page, found through MANPATH like an installed one.
  run env MANPATH="$root/usr/share/man" MANWIDTH=80 man -P cat godislock
  assert_success
  assert_line --regexp '^GODISLOCK\(1\) '
  assert_line --regexp '^ +godislock - run a command while holding a distributed lock in Redis$'

  # The completions load from where they were installed.
  run bash --norc --noprofile -c '
    source "$1" || exit 1
    COMP_WORDS=(godislock ru); COMP_CWORD=1
    _godislock_module godislock ru godislock
    printf "%s\n" "${COMPREPLY[@]}"
  ' _ "$root/usr/share/bash-completion/completions/godislock"
  assert_success
  assert_output run
  local src shell file
  for shell in bash zsh fish; do
    case $shell in
      bash) file=usr/share/bash-completion/completions/godislock ;;
      zsh) file=usr/share/zsh/site-functions/_godislock ;;
      fish) file=usr/share/fish/vendor_completions.d/godislock.fish ;;
    esac
    "$root/usr/bin/godislock" completion "$shell" | cmp - "$root/$file" ||
      fail "installed $file differs from godislock completion $shell"
  done
  if command -v zsh >/dev/null; then
    run env HOME="$BATS_TEST_TMPDIR" zsh -f -c '
      fpath=("$1" $fpath)
      autoload -U compinit && compinit -u -d "$2" || exit 1
      print -r -- "$_comps[godislock]"' _ \
      "$root/usr/share/zsh/site-functions" "$BATS_TEST_TMPDIR/zcompdump"
    assert_output _godislock
  fi
  if command -v fish >/dev/null; then
    run env HOME="$BATS_TEST_TMPDIR" fish -c \
      'source $argv[1]; and complete -C "godislock run --li"' \
      "$root/usr/share/fish/vendor_completions.d/godislock.fish"
    assert_output --regexp $'^--limit\t'
  fi

  # Removal takes every file with it.
  run dpkg --root="$root" --log=/dev/null --force-not-root \
    --force-script-chrootless -r godislock
  assert_success
  run find "$root" -path "$root/var" -prune -o -print
  assert_output "$root"
  run dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Status}' godislock
  refute_output --partial "install ok installed"
}
