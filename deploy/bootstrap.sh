#!/usr/bin/env bash
# One-step set-up on Debian 12 (as root): installs the missing packages, builds smtpgate, then
#   bootstrap.sh run   -> runs smtpgate on its embedded default (127.0.0.1:2587/2465/2588)
#   bootstrap.sh test  -> runs every test through ctest
#   bootstrap.sh build -> only builds
set -euo pipefail

mode="${1:-run}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SMTPGATE_BUILD_DIR:-$root/build}"

build_packages=(build-essential cmake ninja-build libuv1-dev android-libboringssl-dev libfmt-dev
  nlohmann-json3-dev libcrypt-dev)
test_packages=(catch2 python3 openssl swaks)

missing=()
wanted=("${build_packages[@]}")
if [[ "$mode" == test ]]; then
  wanted+=("${test_packages[@]}")
fi
for p in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: run as root (or install these packages first): ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

tests=OFF
[[ "$mode" == test ]] && tests=ON
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSMTPGATE_BUILD_TESTS=$tests >/dev/null
cmake --build "$build" -j "$(nproc)"

case "$mode" in
  run)
    cd "$root"
    exec "$build/gateway/smtpgate" run "$@"
    ;;
  test)
    cd "$build"
    exec ctest --output-on-failure -j "${SMTPGATE_TEST_JOBS:-3}" "$@"
    ;;
  build)
    ;;
  *)
    echo "usage: bootstrap.sh run|test|build" >&2
    exit 2
    ;;
esac
