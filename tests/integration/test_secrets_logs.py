"""Secrets and logs (issue 7, point 6): AUTH payloads never reach the log, client strings are
logged with their control characters escaped, and internal error texts (paths, errno, backend
connection errors) never reach the client, which gets the generic 4xx of the contract."""

import base64
import os
import shutil
import unittest

from harness import Gateway, GatewayTestCase, SmtpConn
from ports import free_port

PASSWORD = "Pw-0f-the-scanner!"


def b64(text):
    return base64.b64encode(text.encode()).decode()


class SecretsTest(GatewayTestCase):
    users = (("scanner@example.com", PASSWORD),)

    def forbidden(self):
        """Every form the secret could take in a log line."""
        return [PASSWORD, b64("\0scanner@example.com\0" + PASSWORD), b64(PASSWORD),
                b64("\0scanner@example.com\0wrong-" + PASSWORD), b64("wrong-" + PASSWORD)]

    def test_auth_payloads_never_logged(self):
        c = self.connect(version="1.3")
        # PLAIN with the initial response, then LOGIN in three steps: one wrong, one right.
        c.expect("AUTH PLAIN " + b64("\0scanner@example.com\0wrong-" + PASSWORD), 535)
        c.expect("AUTH LOGIN", 334)
        c.expect(b64("scanner@example.com"), 334)
        c.expect(b64("wrong-" + PASSWORD), 535)
        c.expect("AUTH LOGIN", 334)
        c.expect(b64("scanner@example.com"), 334)
        c.expect(b64(PASSWORD), 235)
        c.close()
        c = self.connect(version="1.2")
        c.expect("AUTH PLAIN", 334)
        c.expect(b64("\0scanner@example.com\0" + PASSWORD), 235)
        c.expect("QUIT", 221)
        c.close()
        self.gw.stop()
        log = self.gw.output()
        self.assertIn("AUTH ok for scanner@example.com", log)
        self.assertIn("AUTH failed for scanner@example.com", log)
        for secret in self.forbidden():
            self.assertNotIn(secret, log)

    def test_client_strings_logged_with_controls_escaped(self):
        # An AUTH identity (the one client string logged as it was sent) carrying a terminal
        # escape and a forged log line after CR LF.
        evil = "bob\x1b]0;owned\x07\r\n2026-01-01T00:00:00.000Z info: forged"
        c = self.connect(version="1.3")
        c.expect("AUTH PLAIN " + b64("\0" + evil + "\0nope"), 535)
        c.expect("QUIT", 221)
        c.close()
        self.gw.stop()
        log = self.gw.output()
        self.assertNotIn("\x1b", log)
        self.assertNotIn("\x07", log)
        self.assertFalse([line for line in log.splitlines() if line.startswith("2026-01-01T")],
                         "a client forged a log line:\n" + log)
        self.assertIn("AUTH failed for bob\\x1b]0;owned\\x07\\x0d\\x0a2026-01-01", log)


class InternalErrorsTest(unittest.TestCase):
    def reply_to_message(self, gw):
        c = SmtpConn(gw.ports["starttls"])
        self.assertEqual(c.read_reply()[0], 220)
        c.expect("EHLO client.test", 250)
        c.expect("STARTTLS", 220)
        c.starttls_now("1.3")
        c.expect("EHLO client.test", 250)
        c.expect("AUTH PLAIN " + b64("\0user@example.com\0secret"), 235)
        code, lines = c.cmd("MAIL FROM:<user@example.com>")
        if code == 250:
            c.expect("RCPT TO:<rcpt@example.net>", 250)
            c.expect("DATA", 354)
            c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
            code, lines = c.read_reply()
        c.close()
        return code, "\n".join(lines)

    def assert_generic(self, text, gw, *internal):
        for fragment in internal:
            self.assertNotIn(fragment, text, "an internal error text reached the client")
        self.assertNotIn(gw.dir, text)

    def test_spool_write_error_gives_generic_451(self):
        gw = Gateway(users=(("user@example.com", "secret"),)).start()
        self.addCleanup(gw.stop)
        tmp = os.path.join(gw.dir, "spool", "tmp")
        # The spool's tmp/ replaced by a file (root ignores permissions, not ENOTDIR).
        shutil.rmtree(tmp)
        with open(tmp, "w") as f:
            f.write("not a directory\n")
        code, text = self.reply_to_message(gw)
        self.assertEqual(code, 451)
        self.assertEqual(text, "451 4.3.0 Error: queue file write error")
        self.assert_generic(text, gw, "Not a directory", "errno", "spool")
        gw.stop()
        self.assertIn("spool write failed", gw.wait_output("spool write failed"))  # the detail is in the log only

    def test_unreachable_backend_gives_generic_421(self):
        closed = free_port()  # allocated and never listened on
        gw = Gateway()
        gw.config["backend"] = {"smtp": "127.0.0.1:%d" % closed, "handoff": "none"}
        gw.write_config()
        gw.start()
        self.addCleanup(gw.stop)
        c = SmtpConn(gw.ports["starttls"])
        self.assertEqual(c.read_reply()[0], 220)
        c.expect("EHLO client.test", 250)
        c.expect("STARTTLS", 220)
        c.starttls_now("1.3")
        c.expect("EHLO client.test", 250)
        code, lines = c.cmd("MAIL FROM:<user@example.com>")
        c.close()
        text = "\n".join(lines)
        self.assertEqual(code, 421, text)
        self.assertRegex(text, r"^421 4\.4\.2 \S+ Error: backend not available$")
        self.assert_generic(text, gw, "refused", "ECONNREFUSED", str(closed))
        gw.stop()
        self.assertIn("backend unavailable", gw.wait_output("backend unavailable"))


if __name__ == "__main__":
    unittest.main()
