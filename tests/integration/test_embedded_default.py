"""`smtpgate` with no configuration: the embedded default of SPEC section 9 on 127.0.0.1
2587/2465/2588, self-signed certificates and a demo user under ./var, the spool backend."""

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import BIN, Gateway, SmtpConn, client_context, send_message


class EmbeddedDefaultTest(unittest.TestCase):
    def setUp(self):
        self.cwd = tempfile.mkdtemp(prefix="smtpgate-default-")
        self.gw = Gateway()
        self.gw.ports = {"starttls": 2587, "implicit": 2465, "legacy": 2588}
        self.gw.start(args=[], cwd=self.cwd, wait_port=2588)

    def tearDown(self):
        self.assertEqual(self.gw.stop(), 0, self.gw.output())

    def spool(self):
        new = os.path.join(self.cwd, "var", "spool", "new")
        return sorted(os.listdir(new)) if os.path.isdir(new) else []

    def test_first_start_creates_state_and_delivers(self):
        out = self.gw.output()
        self.assertIn("127.0.0.1:2587", out)
        self.assertIn("demo AUTH user", out)
        for name in ("ecdsa.pem", "ecdsa.key", "rsa.pem", "rsa.key"):
            self.assertTrue(os.path.exists(os.path.join(self.cwd, "var", "tls", name)), name)
        self.assertEqual(os.stat(os.path.join(self.cwd, "var", "tls", "rsa.key")).st_mode & 0o077, 0)

        r = subprocess.run(["swaks", "--to", "a@example.com", "--server", "127.0.0.1:2587", "-tls"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run(["swaks", "--to", "a@example.com", "--server", "127.0.0.1:2465", "-tlsc"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        files = self.spool()
        self.assertEqual(len([f for f in files if f.endswith(".eml")]), 2, files)
        metas = [json.load(open(os.path.join(self.cwd, "var", "spool", "new", f)))
                 for f in files if f.endswith(".json")]
        self.assertEqual(sorted(m["session"]["listener"] for m in metas),
                         ["strict-implicit", "strict-starttls"])
        self.assertTrue(all(m["session"]["tls"]["version"] in ("1.2", "1.3") for m in metas))

    def test_legacy_port_tls_1_0_gets_rsa_and_demo_auth(self):
        with open(os.path.join(self.cwd, "var", "demo-credentials.txt")) as f:
            user, password = f.read().split()
        c = SmtpConn(2588)
        c.read_reply()
        c.expect("EHLO old-printer", 250)
        c.expect("STARTTLS", 220)
        # An old device: TLS 1.0 and RSA key exchange only.
        self.assertEqual(c.starttls_now("1.0", ciphers="AES128-SHA:@SECLEVEL=0"), "TLSv1")
        c.expect("EHLO old-printer", 250)
        token = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        c.expect("AUTH PLAIN " + token, 235)
        code, lines = send_message(c, user, ["b@example.com"], b"Subject: old\r\n\r\nx\r\n.\r\n")
        self.assertEqual(code, 250, lines)
        meta = json.load(open(os.path.join(self.cwd, "var", "spool", "new",
                                           [f for f in self.spool() if f.endswith(".json")][0])))
        self.assertEqual(meta["session"]["tls"]["version"], "1.0")
        self.assertEqual(meta["session"]["endpoint"], "legacy")
        self.assertEqual(meta["auth_user"], user)

    def test_restart_keeps_certificates_and_credentials(self):
        cert = open(os.path.join(self.cwd, "var", "tls", "ecdsa.pem")).read()
        cred = open(os.path.join(self.cwd, "var", "demo-credentials.txt")).read()
        self.assertEqual(self.gw.stop(), 0)
        self.gw.start(args=[], cwd=self.cwd, wait_port=2588)
        self.assertEqual(open(os.path.join(self.cwd, "var", "tls", "ecdsa.pem")).read(), cert)
        self.assertEqual(open(os.path.join(self.cwd, "var", "demo-credentials.txt")).read(), cred)
        self.assertIn(cred.split()[1], self.gw.wait_output(cred.split()[1]))


if __name__ == "__main__":
    unittest.main()
