#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures and builds one variant: scripts/build.sh [plain|asan]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
variant=${1:-plain}
case "$variant" in
  plain) dir="$root/build"; extra=() ;;
  asan) dir="$root/build-asan"; extra=(-DGODISLOCK_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
  *) echo "build.sh: unknown variant '$variant' (plain or asan)" >&2; exit 64 ;;
esac
cmake -S "$root" -B "$dir" -G Ninja -DGODISLOCK_WERROR=ON "${extra[@]}" >/dev/null
ninja -C "$dir" >/dev/null
echo "$dir"
