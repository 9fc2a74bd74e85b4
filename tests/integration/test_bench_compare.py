"""The side-by-side benchmark script (tests/bench/compare.py) on its tiny --quick cases against
smtpgate alone, so that it cannot rot: no package installed, no peer started (CI runs the peers
never; the full comparison is run on demand and written to docs/performance.md)."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

from harness import BIN

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.normpath(os.path.join(HERE, "..", "bench", "compare.py"))
BUILD = os.path.dirname(os.path.dirname(os.path.abspath(BIN)))
LOADGEN = os.path.join(BUILD, "tests", "bench", "loadgen", "smtpgate-loadgen")
CASES = ("tls13", "tls12", "tls10", "msg10k", "msg20m", "idle", "seq")


def smtp_sink_missing():
    for d in ("/usr/sbin", "/usr/bin"):
        if os.access(os.path.join(d, "smtp-sink"), os.X_OK):
            return None
    return "smtp-sink (package postfix) not installed: run deploy/bootstrap.sh test"


class BenchCompareQuickTest(unittest.TestCase):
    def test_quick_smtpgate_table(self):
        reason = smtp_sink_missing()
        if reason:
            self.skipTest(reason)
        self.assertTrue(os.path.exists(LOADGEN), "build the target smtpgate-loadgen: " + LOADGEN)
        with tempfile.TemporaryDirectory(prefix="smtpgate-bench-test-") as tmp:
            out = os.path.join(tmp, "performance.md")
            proc = subprocess.run([sys.executable, COMPARE, "--quick", "--servers", "smtpgate",
                                   "--no-install", "--build", BUILD, "--out", out],
                                  capture_output=True, text=True, timeout=100)
            self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
            with open(out) as f:
                text = f.read()
        self.assertEqual(proc.stdout, text)
        self.assertIn("python3 tests/bench/compare.py --quick --servers smtpgate", text)
        self.assertRegex(text, r"- date: \d{4}-\d\d-\d\d")
        self.assertRegex(text, r"- machine: .+, \d+ cores, Linux \S+")
        self.assertIn("load average", text)
        rows = [line for line in text.splitlines() if line.startswith("| ") and "| smtpgate" in line]
        self.assertEqual(len(rows), len(CASES), "\n".join(rows) + "\n" + proc.stderr[-3000:])
        for row in rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            self.assertEqual(cells[1], "smtpgate", row)  # no "(N failed)"
            cpu, rate, p50, p99, pss, target = cells[2:8]
            for value in (cpu, rate, p50, p99):
                self.assertRegex(value, r"^\d[\d .]*$", row)
            self.assertGreater(float(rate.replace(" ", "")), 0, row)
            if "idle" in cells[0]:
                self.assertRegex(pss, r"^-?\d+(\.\d)?$", row)
            if not cells[0].startswith("STARTTLS + TLS 1.0"):
                self.assertRegex(target, r"\*\*(met|missed)\*\*", row)
        for peer in ("nginx", "haproxy", "postfix"):
            self.assertNotIn("| " + peer, text)


if __name__ == "__main__":
    unittest.main()
