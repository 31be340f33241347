#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages godislock needs to build, test and demo.
# Does nothing when all are present; uses sudo when not root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git clang-format
  libhiredis-dev libcli11-dev libfmt-dev libgtest-dev
  # TLS (rediss://): the library, and the openssl command that makes the
  # tests' throwaway certificates.
  libssl-dev openssl
  redis-server redis-tools
  # The etcd backend: its client (libcurl, nlohmann-json) and the test
  # harness (etcd members started by the tests, etcdctl for setup).
  libcurl4-openssl-dev nlohmann-json3-dev etcd-server etcd-client curl
  bats bats-support bats-assert
  iproute2 iptables procps util-linux python3 mandoc groff-base
  gnuplot-nox libc6-dev
  # Packaging (cpack -G DEB runs dpkg-shlibdeps) and the completion and
  # package tests.
  dpkg-dev file man-db bash-completion zsh fish
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# The redis-server package may try to start a system service; our tests and
# the demo run private servers on their own ports and never use it.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's etcd-server starts a system etcd on 127.0.0.1:2379 where systemd
# runs. Nothing of ours uses it (tests start private members on free
# ports); stop it so that it does not hold the port and the CPU.
if [[ " ${missing[*]} " == *" etcd-server "* ]] &&
  command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
  "${sudo[@]}" systemctl disable --now etcd.service >/dev/null 2>&1 || true
fi
