#!/bin/sh
# Builds the libFuzzer targets (clang 14) if needed, replays the regression cases, then runs
# every target for a bounded time with its seed corpus and dictionary, and prints per target
# execs/s, coverage (cov:, ft:) and crashes. Exit status: non-zero when any target crashed
# (sanitizer report, invariant violation, timeout, out of memory) or did not build.
#
#   tests/fuzz/run.sh                      30 s per target, build tree ./build-fuzz
#   FUZZ_SECONDS=600 tests/fuzz/run.sh     longer runs on demand
#   FUZZ_TARGETS="smtp_session data_codec" tests/fuzz/run.sh
#   FUZZ_BUILD_DIR=/tmp/fz tests/fuzz/run.sh
#
# New corpus units go to $FUZZ_BUILD_DIR/corpus/<target> (the seeds in tests/fuzz/corpus are
# only read); crash inputs to $FUZZ_BUILD_DIR/crashes/<target>/. A crash becomes a regression
# case: copy it to tests/fuzz/regressions/<target>/ once fixed.
set -u

SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_DIR="$SRC_DIR/tests/fuzz"
BUILD_DIR=${FUZZ_BUILD_DIR:-$SRC_DIR/build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-30}
JOBS=${FUZZ_JOBS:-2}
TARGETS=${FUZZ_TARGETS:-"smtp_session data_codec reply_parser proxy_header proxy_parser config tenants"}
CC_BIN=${FUZZ_CC:-clang-14}
CXX_BIN=${FUZZ_CXX:-clang++-14}

if ! command -v "$CXX_BIN" >/dev/null 2>&1; then
  echo "run.sh: $CXX_BIN not found: apt-get install -y clang-14 libclang-rt-14-dev" >&2
  exit 2
fi

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  echo "== configure $BUILD_DIR"
  mkdir -p "$BUILD_DIR"
  # -O1 with line tables only: what libFuzzer recommends, and it compiles config.cc (nlohmann
  # templates under ASan) about 3x faster than RelWithDebInfo's -O2 -g, for CI's bounded run.
  CC=$CC_BIN CXX=$CXX_BIN cmake -S "$SRC_DIR" -B "$BUILD_DIR" -DSMTPGATE_FUZZ=ON \
    -DSMTPGATE_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" >"$BUILD_DIR/fuzz-configure.log" 2>&1 ||
    { cat "$BUILD_DIR/fuzz-configure.log" >&2; echo "run.sh: configure failed" >&2; exit 2; }
fi
echo "== build (-j$JOBS)"
cmake --build "$BUILD_DIR" --target smtpgate_fuzz -j"$JOBS" >"$BUILD_DIR/fuzz-build.log" 2>&1 ||
  { tail -n 60 "$BUILD_DIR/fuzz-build.log" >&2; echo "run.sh: build failed" >&2; exit 2; }

BIN_DIR="$BUILD_DIR/tests/fuzz"
LOG_DIR="$BUILD_DIR/fuzz-logs"
mkdir -p "$LOG_DIR"
# Sanitizer reports must stop the run and carry a stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-"detect_leaks=1:abort_on_error=0:symbolize=1"}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-"print_stacktrace=1:halt_on_error=1"}

failed=0
summary=""
for t in $TARGETS; do
  bin="$BIN_DIR/fuzz_$t"
  if [ ! -x "$bin" ]; then
    echo "run.sh: no binary $bin" >&2
    failed=1
    continue
  fi
  crash_dir="$BUILD_DIR/crashes/$t"
  corpus_dir="$BUILD_DIR/corpus/$t"
  mkdir -p "$crash_dir" "$corpus_dir"

  # 1. Regression cases: each file once (libFuzzer runs files given as arguments).
  regressions=0
  reg_status=ok
  if [ -d "$FUZZ_DIR/regressions/$t" ]; then
    set -- "$FUZZ_DIR/regressions/$t"/*
    if [ -e "$1" ]; then
      regressions=$#
      if ! "$bin" "$@" >"$LOG_DIR/$t.regressions.log" 2>&1; then
        reg_status=FAILED
        failed=1
        echo "== $t: a regression case fails again:" >&2
        grep -E "invariant violated|ERROR:|SUMMARY:|Running:" "$LOG_DIR/$t.regressions.log" >&2
      fi
    fi
  fi

  # 2. Bounded fuzzing from the seeds (read-only) and what earlier runs found.
  dict=""
  [ -f "$FUZZ_DIR/$t.dict" ] && dict="-dict=$FUZZ_DIR/$t.dict"
  seeds=""
  [ -d "$FUZZ_DIR/corpus/$t" ] && seeds="$FUZZ_DIR/corpus/$t"
  echo "== $t: ${SECONDS_EACH}s"
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$crash_dir/" $dict "$corpus_dir" $seeds >"$LOG_DIR/$t.log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG_DIR/$t.log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOG_DIR/$t.log" | tail -n 1)
  cov=$(grep -E '^#[0-9]+.*cov: ' "$LOG_DIR/$t.log" | tail -n 1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(grep -E '^#[0-9]+.*ft: ' "$LOG_DIR/$t.log" | tail -n 1 | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  crashes=$(find "$crash_dir" -type f | wc -l)
  status=ok
  if [ "$rc" -ne 0 ]; then
    status="CRASH (exit $rc)"
    failed=1
    echo "== $t crashed; log: $LOG_DIR/$t.log" >&2
    grep -E "invariant violated|detail|ERROR:|SUMMARY:|Test unit written" "$LOG_DIR/$t.log" | head -n 20 >&2
  fi
  line=$(printf '%-14s execs %-9s execs/s %-7s cov %-6s ft %-6s regressions %s/%s  crash files %s  %s' \
    "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$regressions" "$reg_status" \
    "$crashes" "$status")
  echo "$line"
  summary="$summary$line
"
done

echo "== summary (${SECONDS_EACH}s per target; crash inputs under $BUILD_DIR/crashes/)"
printf '%s' "$summary"
exit $failed
