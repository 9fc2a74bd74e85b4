"""Signals: SIGTERM lets a session finish its message, then 421s what is left after the drain
time and exits 0; SIGHUP reloads (a bad configuration is refused and the running one stays)."""

import json
import signal
import time
import unittest

from harness import Gateway, SmtpConn, client_context, hash_password, send_message


def tls_session(gw, port="starttls"):
    c = SmtpConn(gw.ports[port])
    assert c.read_reply()[0] == 220
    c.expect("EHLO a.test", 250)
    c.expect("STARTTLS", 220)
    c.starttls_now("1.3")
    c.expect("EHLO a.test", 250)
    return c


class LifecycleTest(unittest.TestCase):
    def test_sigterm_drains_then_421(self):
        gw = Gateway({"limits": {"timeouts_s": {"drain": 2}}}).start()
        c = tls_session(gw)
        c.expect("MAIL FROM:<a@example.com>", 250)
        gw.signal(signal.SIGTERM)
        time.sleep(0.3)
        # New connections are refused at once...
        with self.assertRaises(OSError):
            SmtpConn(gw.ports["starttls"], timeout=2).read_reply()
        # ...while the open session may still finish its message.
        c.expect("RCPT TO:<b@example.com>", 250)
        c.expect("DATA", 354)
        c.send("Subject: drain\r\n\r\nx\r\n.\r\n")
        self.assertEqual(c.read_reply()[0], 250)
        code, lines = c.read_reply()  # the drain deadline passes
        self.assertEqual(code, 421)
        self.assertIn("4.3.2", lines[0])
        self.assertEqual(gw.proc.wait(timeout=10), 0)
        self.assertEqual(len(gw.messages()), 1)

    def test_second_signal_stops_at_once(self):
        gw = Gateway({"limits": {"timeouts_s": {"drain": 600}}}).start()
        c = tls_session(gw)
        gw.signal(signal.SIGINT)
        time.sleep(0.3)
        gw.signal(signal.SIGINT)
        self.assertEqual(c.read_reply()[0], 421)
        self.assertEqual(gw.proc.wait(timeout=10), 0)

    def test_sighup_reload(self):
        gw = Gateway().start()
        try:
            # A bad configuration is refused; the running one stays in force.
            good = dict(gw.config)
            with open(gw.config_path, "w") as f:
                json.dump({**good, "workers": -1}, f)
            gw.signal(signal.SIGHUP)
            time.sleep(0.5)
            self.assertIn("reload refused", gw.wait_output("reload refused"))
            self.assertEqual(tls_session(gw).cmd("QUIT")[0], 221)
            # A good one (a new user in the users file) applies to new sessions.
            with open(good["backend"]["users"], "a") as f:
                f.write("new@example.com:%s\n" % hash_password("pw2"))
            with open(gw.config_path, "w") as f:
                json.dump(good, f)
            gw.signal(signal.SIGHUP)
            time.sleep(0.5)
            self.assertIn("reload done", gw.wait_output("reload done"))
            c = tls_session(gw)
            self.assertEqual(c.cmd("AUTH PLAIN AG5ld0BleGFtcGxlLmNvbQBwdzI=")[0], 235)
        finally:
            self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    unittest.main()
