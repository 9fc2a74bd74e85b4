"""The admin report page (`GET /`, SPEC section 7) in a real browser against a live gateway: a
known mix of messages (3 over TLS 1.0 from one old authenticated client on the legacy endpoint,
2 over TLS 1.2, 1 over TLS 1.3), then tests/browser/page_test.mjs (playwright-core driving
Debian's chromium, headless) loads the page with the token, checks the chart and the totals,
clicks through to the TLS 1.0 messages and clients, exports them as CSV, and saves a screenshot
under the build directory (test-artifacts/admin-page.png).

Skipped when chromium or playwright-core is missing, unless CI is set: then it fails."""

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import BIN, Gateway, SmtpConn, send_message
from ports import free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
PAGE_TEST = os.path.join(BROWSER_DIR, "page_test.mjs")
CHROMIUM = "/usr/bin/chromium"
OLD_CLIENT = "127.0.0.31"


def build_dir():
    if os.environ.get("SMTPGATE_BUILD_DIR"):
        return os.environ["SMTPGATE_BUILD_DIR"]
    # SMTPGATE_BIN is BUILD/gateway/smtpgate.
    return os.path.dirname(os.path.dirname(os.path.abspath(BIN)))


def missing_pieces():
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM + " (apt-get install chromium)")
    if not shutil.which("node"):
        missing.append("node (apt-get install nodejs)")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        missing.append("tests/browser/node_modules/playwright-core (npm ci in tests/browser)")
    return missing


MISSING = missing_pieces()
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def plain(user, password):
    return "AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


@unittest.skipIf(MISSING and not IN_CI, "browser test needs " + ", ".join(MISSING))
class AdminPageTest(unittest.TestCase):
    def setUp(self):
        if MISSING:  # under CI a missing piece is a failure, not a skip
            self.fail("browser test needs " + ", ".join(MISSING))
        self.admin_port = free_port()
        self.token = secrets.token_hex(16)  # 32 characters
        self.gw = Gateway(
            users=(("user@example.com", "secret"),),
            tenants=[{"id": "example", "domains": ["example.com"], "allow_legacy_tls_clients": True}])
        self.token_file = os.path.join(self.gw.dir, "admin.token")
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        os.chmod(self.token_file, 0o600)
        self.gw.config["admin"] = {"listen": "127.0.0.1:%d" % self.admin_port, "token_file": self.token_file}
        self.gw.write_config()
        self.gw.start()
        self.url = "http://127.0.0.1:%d" % self.admin_port
        self.wait_for_admin()

    def tearDown(self):
        code = self.gw.stop()
        if code not in (0, None):
            print(self.gw.output())
        self.assertEqual(code, 0, "smtpgate did not exit cleanly")

    def api(self, path, method="GET", body=None):
        req = urllib.request.Request(self.url + path, method=method, data=body,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def wait_for_admin(self):
        deadline = time.time() + 15
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return
            except (OSError, urllib.error.URLError) as e:
                if time.time() > deadline:
                    raise AssertionError("admin server not up on %s: %s\n%s" % (self.url, e, self.gw.output()))
                time.sleep(0.1)

    def session(self, port, version, source="127.0.0.1", ehlo="client.test"):
        c = SmtpConn(self.gw.ports[port], implicit=(port == "implicit"), version=version, source=source)
        self.assertEqual(c.read_reply()[0], 220)
        if port != "implicit":
            c.expect("EHLO " + ehlo, 250)
            c.expect("STARTTLS", 220)
            c.starttls_now(version)
        c.expect("EHLO " + ehlo, 250)
        return c

    def send(self, c, count, sender="s@example.com"):
        for _ in range(count):
            code, lines = send_message(c, sender, ["r@example.com"], b"Subject: t\r\n\r\nx\r\n.\r\n")
            self.assertEqual(code, 250, lines)
        c.cmd("QUIT")
        c.close()

    def test_report_page_in_a_browser(self):
        # The known mix.
        c = self.session("legacy", "1.0", source=OLD_CLIENT, ehlo="old-scanner")
        c.expect(plain("user@example.com", "secret"), 235)
        self.send(c, 3, sender="user@example.com")
        for _ in range(2):
            self.send(self.session("starttls", "1.2"), 1)
        self.send(self.session("implicit", "1.3"), 1)
        expected = {"none": 0, "1.0": 3, "1.1": 0, "1.2": 2, "1.3": 1, "all": 6}

        # The trace writer is off the event loop: poll the API until it has them all.
        deadline = time.time() + 20
        while True:
            totals = self.api("/api/v1/report?since=7d&by=day&format=json")["totals"]
            got = {k: totals.get(k) for k in expected}
            if got == expected:
                break
            if time.time() > deadline:
                self.fail("the report never showed the mix: %r\n%s" % (got, self.gw.output()))
            time.sleep(0.2)

        # One tenant change, so that the audit trail has an entry (old -> new). Best effort: the
        # page must show the trail either way.
        try:
            tenant = self.api("/api/v1/tenants/example")
            tenant = tenant.get("tenant", tenant)
            tenant["allow_legacy_tls_clients"] = False
            self.api("/api/v1/tenants/example", method="PUT", body=json.dumps(tenant).encode())
            audited = True
        except (urllib.error.HTTPError, KeyError, TypeError, AttributeError) as e:
            print("tenant update for the audit trail failed: %s" % e)
            audited = False

        screenshot = os.path.join(build_dir(), "test-artifacts", "admin-page.png")
        if os.path.exists(screenshot):
            os.unlink(screenshot)
        want = {"totals": {k: v for k, v in expected.items() if k != "all"}, "tls10_client": OLD_CLIENT}
        r = subprocess.run(["node", PAGE_TEST, self.url, self.token, screenshot, json.dumps(want)],
                           cwd=BROWSER_DIR, capture_output=True, text=True, timeout=240)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        self.assertTrue(lines, "no result line from page_test.mjs (exit %d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr))
        result = json.loads(lines[-1])
        print(json.dumps(result, indent=2))
        self.assertEqual(r.returncode, 0, "page_test.mjs failed: %s\n%s" % (result.get("error"), r.stderr))
        self.assertTrue(result["ok"])

        self.assertEqual(result["totals"], expected)
        self.assertAlmostEqual(result["percent"]["1.0"], 50.0, places=1)
        self.assertAlmostEqual(result["percent"]["1.2"], 33.3, places=1)
        self.assertAlmostEqual(result["percent"]["1.3"], 16.7, places=1)
        self.assertGreaterEqual(result["chart"]["segments"], 3)  # 1.0, 1.2 and 1.3 of today
        self.assertEqual(result["segment"]["count"], 3)
        self.assertEqual(result["tls10"]["messages"], 3)
        self.assertEqual(result["tls10"]["rows"], 3)
        self.assertEqual(result["tls10"]["clients"], [OLD_CLIENT])
        self.assertEqual(result["csv"]["rows"], 3)
        if audited:
            self.assertGreaterEqual(result["auditRows"], 1)
        self.assertTrue(os.path.getsize(screenshot) > 10000, screenshot)


if __name__ == "__main__":
    unittest.main()
