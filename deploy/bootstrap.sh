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
  nlohmann-json3-dev libcrypt-dev libsqlite3-dev libevent-dev libpq-dev)
test_packages=(catch2 python3 openssl swaks testssl.sh sslscan
  # The cluster store's server (tests/integration/pg_rig.py starts its own PostgreSQL)
  postgresql
  # libFuzzer targets (tests/fuzz, a bounded run in the suite)
  clang-14 libclang-rt-14-dev
  # Real MTAs as backends (tests/integration/mta.py): Postfix with Cyrus SASL (sasldb) ...
  postfix sasl2-bin libsasl2-modules libsasl2-modules-db
  # ... and the shared libraries of the exim4-daemon-heavy binary unpacked by unpack_exim.
  libidn12 libmariadb3 libspf2-2 libpq5 libldap-2.5-0 libperl5.36 libsqlite3-0 libpam0g
  libgnutls-dane0 libgnutls30 libnsl2 libdb5.3 libpcre2-8-0
  # The browser test of the admin page (tests/browser): headless chromium driven by
  # playwright-core from npm (npm itself below: NodeSource's nodejs already carries it).
  chromium nodejs
  # The PROXY protocol front behind a real HAProxy (tests/integration/test_proxy_front.py) and
  # the systemd unit's `systemd-analyze verify` / systemd-sysusers (test_deploy.py).
  haproxy systemd)

# Exim for the integration tests. Debian's exim4 packages conflict with postfix, so the daemon
# is not installed: exim4-daemon-heavy (the light one lacks PROXY support) is downloaded once
# and unpacked into $exim_dir/root; the tests run its binary with their own configuration.
exim_dir="${SMTPGATE_EXIM_DIR:-/opt/smtpgate-test/exim}"
unpack_exim() {
  local bin="$exim_dir/root/usr/sbin/exim4" debs="$exim_dir/debs"
  if [[ ! -x "$bin" ]]; then
    mkdir -p "$debs"
    if ! compgen -G "$debs/exim4-daemon-heavy_*.deb" >/dev/null; then
      echo "bootstrap: downloading exim4-daemon-heavy into $debs" >&2
      (cd "$debs" && { apt-get download -qq -o APT::Sandbox::User=root exim4-daemon-heavy ||
        { apt-get update -qq && apt-get download -qq -o APT::Sandbox::User=root exim4-daemon-heavy; }; })
    fi
    dpkg -x "$(compgen -G "$debs/exim4-daemon-heavy_*.deb" | tail -n1)" "$exim_dir/root"
  fi
  if ldd "$bin" | grep -q 'not found'; then
    echo "bootstrap: $bin lacks libraries:" >&2
    ldd "$bin" | grep 'not found' >&2
    exit 1
  fi
  # The Debian binary has its user compiled in (as exim4-base's postinst would create it).
  if ! getent passwd Debian-exim >/dev/null; then
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin Debian-exim
  fi
}

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
if [[ "$mode" == test ]] && ! command -v npm >/dev/null; then
  missing+=(npm)
fi
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: run as root (or install these packages first): ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Postfix only as a test backend: no system mailer (no main.cf, so nothing listens on 25).
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" postfix "* && -d /run/systemd/system ]]; then
    systemctl disable --now postfix >/dev/null 2>&1 || true
  fi
  # HAProxy only as a test peer (started by the tests on loopback ports).
  if [[ " ${missing[*]} " == *" haproxy "* && -d /run/systemd/system ]]; then
    systemctl disable --now haproxy >/dev/null 2>&1 || true
  fi
fi
if [[ "$mode" == test ]]; then
  # playwright-core for tests/browser/page_test.mjs, pinned by its package-lock.json.
  if [[ ! -d "$root/tests/browser/node_modules/playwright-core" ]]; then
    echo "bootstrap: installing playwright-core into tests/browser/node_modules" >&2
    (cd "$root/tests/browser" && npm ci --no-audit --no-fund >/dev/null)
  fi
  # kubernetes-models and yaml for tests/k8s/validate.mjs (the deploy/k8s schema check).
  if [[ ! -d "$root/tests/k8s/node_modules/kubernetes-models" ]]; then
    echo "bootstrap: installing kubernetes-models into tests/k8s/node_modules" >&2
    (cd "$root/tests/k8s" && npm ci --no-audit --no-fund >/dev/null)
  fi
  if [[ $(id -u) -eq 0 ]]; then
    unpack_exim
  else
    echo "bootstrap: not root: the Exim rig is not set up ($exim_dir)" >&2
  fi
fi

jobs="${SMTPGATE_TEST_JOBS:-3}"

# A sanitizer stage of `bootstrap.sh test`: the CMake preset of that name (CMakePresets.json:
# its own build tree $root/build-NAME, -O1 with line tables, the sanitizer options of its test
# preset), built and tested. A report aborts the process (abort_on_error), and the integration
# harness also fails a test whose gateway printed one (tests/integration/harness.py).
#   asan: AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer, the whole suite.
#   tsan: ThreadSanitizer, the integration suite with every test gateway on two worker loops,
#         and the gateway/ unit tests (trace writer, metrics, admin threads). The other unit
#         tests (policy/, tls/, gateway/smtp/) are single-threaded code: not built there.
# Left out of both: the fuzz smoke run (its clang build is ASan+UBSan already), the benchmark
# smoke run (it measures CPU time; under a sanitizer it would measure the sanitizer) and the
# testssl.sh scans (minutes of shell per scan; sslscan and our own probes of test_scanners.py
# drive the same handshakes and do run there).
sanitizer_stage() {
  echo "bootstrap: stage $1: building $root/build-$1" >&2
  (cd "$root" && cmake --preset "$1" >/dev/null && cmake --build --preset "$1" -j "$(nproc)")
  echo "bootstrap: stage $1: ctest" >&2
  (cd "$root" && ctest --preset "$1" -j "$jobs")
}

tests=OFF
[[ "$mode" == test ]] && tests=ON
if [[ "$mode" == test ]]; then
  # The stages run first and the plain suite last, so that ctest's closing line is the count
  # of the whole suite. SMTPGATE_TEST_STAGES="" runs the plain suite only.
  for stage in ${SMTPGATE_TEST_STAGES-asan tsan}; do
    case "$stage" in
      asan|tsan) sanitizer_stage "$stage" ;;
      *) echo "bootstrap: unknown test stage $stage (asan, tsan)" >&2; exit 2 ;;
    esac
  done
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSMTPGATE_BUILD_TESTS=$tests >/dev/null
cmake --build "$build" -j "$(nproc)"

case "$mode" in
  run)
    cd "$root"
    exec "$build/gateway/smtpgate" run "$@"
    ;;
  test)
    cd "$build"
    exec ctest --output-on-failure -j "$jobs" "$@"
    ;;
  build)
    ;;
  *)
    echo "usage: bootstrap.sh run|test|build" >&2
    exit 2
    ;;
esac
