"""CI's bounded fuzz run (issue 7, part 3): tests/fuzz/run.sh builds the libFuzzer targets with
clang 14 into <ctest build dir>/fuzz, replays every regression case of tests/fuzz/regressions/,
then fuzzes each target for FUZZ_SECONDS=5 from its seed corpus; any crash fails the test.
Longer runs on demand: FUZZ_SECONDS=600 tests/fuzz/run.sh.

Skipped when clang-14 or libclang-rt-14-dev is missing, unless CI is set: then it fails."""

import glob
import os
import shutil
import signal
import subprocess
import unittest

from harness import BIN

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ_DIR = os.path.normpath(os.path.join(HERE, "..", "fuzz"))
RUN_SH = os.path.join(FUZZ_DIR, "run.sh")
BUILD_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(BIN))), "fuzz")
TARGETS = ("smtp_session", "data_codec", "reply_parser", "proxy_header", "proxy_parser", "config",
           "tenants")
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missing_packages():
    missing = []
    if not shutil.which("clang++-14") or not shutil.which("clang-14"):
        missing.append("clang-14")
    if not glob.glob("/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a"):
        missing.append("libclang-rt-14-dev")
    return missing


MISSING = missing_packages()


@unittest.skipIf(MISSING and not IN_CI, "fuzz smoke test needs " + ", ".join(MISSING))
class FuzzSmokeTest(unittest.TestCase):
    def test_bounded_fuzz_run_and_regressions(self):
        if MISSING:  # under CI a missing package is a failure, not a skip
            self.fail("apt-get install -y " + " ".join(MISSING))
        env = dict(os.environ, FUZZ_SECONDS="5", FUZZ_BUILD_DIR=BUILD_DIR, FUZZ_JOBS="2")
        # Its own process group, so that a timeout also stops the compilers and fuzzers.
        proc = subprocess.Popen(["sh", RUN_SH], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=450)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            self.fail("run.sh took more than 450 s:\n" + (stdout + stderr)[-4000:])
        output = stdout + stderr
        self.assertEqual(proc.returncode, 0, output[-6000:])
        for target in TARGETS:
            line = [l for l in stdout.splitlines() if l.startswith(target + " ")]
            self.assertTrue(line, "no result line for " + target + "\n" + output[-3000:])
            self.assertTrue(line[-1].rstrip().endswith("ok"), line[-1])

        # Every saved crash input, replayed once more by its own binary (libFuzzer runs the
        # files given as arguments once each): a regression case must stay fixed.
        for target in TARGETS:
            cases = sorted(glob.glob(os.path.join(FUZZ_DIR, "regressions", target, "*")))
            if not cases:
                continue
            binary = os.path.join(BUILD_DIR, "tests", "fuzz", "fuzz_" + target)
            replay = subprocess.run([binary] + cases, capture_output=True, text=True, timeout=60)
            self.assertEqual(replay.returncode, 0,
                             target + " regression case fails:\n" + replay.stderr[-4000:])


if __name__ == "__main__":
    unittest.main()
