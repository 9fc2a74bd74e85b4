"""Relay to real MTAs (SPEC sections 5, 6): a real Postfix (XCLIENT, Cyrus SASL) and a real Exim
(PROXY v1/v2) behind the gateway, clients pinned to every TLS version, each message delivered
exactly once with the real client address; SMTP smuggling; backend faults (smtp-sink)."""

import base64
import time
import unittest

import mta
from harness import Gateway, SmtpConn, send_message

CLIENT = "127.0.0.23"  # the test client appears from this address


def relay_gateway(port, handoff="xclient", **overrides):
    gw = Gateway(overrides)
    gw.config["backend"] = {"smtp": "127.0.0.1:%d" % port, "handoff": handoff}
    gw.write_config()
    return gw.start()


def tls_session(gw, port="legacy", version="1.2", ehlo="client.test"):
    c = SmtpConn(gw.ports[port], implicit=(port == "implicit"), version=version, source=CLIENT)
    assert c.read_reply()[0] == 220
    if port != "implicit":
        c.expect("EHLO " + ehlo, 250)
        c.expect("STARTTLS", 220)
        c.starttls_now(version)
    lines = c.expect("EHLO " + ehlo, 250)
    return c, lines


def require(reason):
    # A missing MTA is a set-up error, not a reason to pass: fail with what to run.
    if reason:
        raise AssertionError(reason)


def plain(user, password):
    return "AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


class PostfixRelayTest(unittest.TestCase):
    def setUp(self):
        require(mta.postfix_available())
        self.pf = mta.Postfix(sasl_users={"alice@example.com": "pw-alice"})
        self.pf.start()
        self.gw = relay_gateway(self.pf.port)

    def tearDown(self):
        self.assertEqual(self.gw.stop(), 0, self.gw.output()[-3000:])
        self.pf.stop()
        self.pf.cleanup()

    def test_every_tls_version_delivered_once_with_the_real_client(self):
        for version in ("1.0", "1.1", "1.2", "1.3"):
            c, _ = tls_session(self.gw, "legacy", version)
            code, lines = send_message(c, "sender@example.com", ["rcpt@example.com"],
                                       ("Subject: v%s\r\n\r\nbody %s\r\n.\r\n" % (version, version)).encode())
            self.assertEqual(code, 250, lines)
            self.assertRegex(lines[0], r"^250 2\.0\.0 Ok: queued as \w+")  # Postfix's own reply
            c.expect("QUIT", 221)
        messages = self.pf.wait_for_messages(4)
        subjects = sorted(m["Subject"] for m in messages)
        self.assertEqual(subjects, ["v1.0", "v1.1", "v1.2", "v1.3"], "each message exactly once")
        for m in messages:
            version = m["Subject"][1:]
            received = [h for h in m.get_all("Received") if "smtpgate" in h]
            self.assertEqual(len(received), 1)
            self.assertIn("TLSv1" if version == "1.0" else "TLSv" + version, received[0])
            self.assertIn("tls TLS_", received[0])
            self.assertIn("[%s]" % CLIENT, received[0])
        # XCLIENT: Postfix logged the real client, not the gateway.
        self.pf.wait_for_log(r"client=unknown\[%s\]" % CLIENT.replace(".", r"\."))
        self.assertGreaterEqual(list(self.pf.clients().values()).count("unknown[%s]" % CLIENT), 4)

    def test_post_tls_ehlo_shows_backend_capabilities(self):
        c, lines = tls_session(self.gw, "starttls", "1.3")
        keywords = [l[4:] for l in lines[1:]]
        self.assertTrue(any(k.startswith("AUTH ") and "PLAIN" in k for k in keywords), keywords)
        self.assertNotIn("STARTTLS", keywords)
        self.assertFalse(any(k.startswith("XCLIENT") for k in keywords), keywords)

    def test_auth_against_real_sasl(self):
        c, _ = tls_session(self.gw, "starttls", "1.3")
        c.expect(plain("alice@example.com", "pw-alice"), 235)
        code, lines = send_message(c, "alice@example.com", ["bob@example.com"], b"Subject: auth\r\n\r\nx\r\n.\r\n")
        self.assertEqual(code, 250, lines)
        c, _ = tls_session(self.gw, "starttls", "1.2")
        code, lines = c.cmd(plain("alice@example.com", "wrong"))
        self.assertEqual(code, 535, lines)  # the backend's own 535
        c, _ = tls_session(self.gw, "starttls", "1.2")
        c.expect("AUTH LOGIN", 334)
        c.expect(base64.b64encode(b"alice@example.com").decode(), 334)
        c.expect(base64.b64encode(b"pw-alice").decode(), 235)
        self.assertEqual(len(self.pf.wait_for_messages(1)), 1)

    SMUGGLING = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r.\r\n", b"\r\n.\r", b"\r\n\x00.\r\n",
                 b"\r\n.\x00\r\n", b"\n..\n", b"\r\r\n.\r\r\n"]

    def smuggle_all(self, expect_code):
        for i, seq in enumerate(self.SMUGGLING):
            c, _ = tls_session(self.gw, "legacy", "1.2")
            body = (b"Subject: smuggle %d\r\n\r\nbefore" % i + seq +
                    b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
                    b"Subject: smuggled\r\n\r\nevil")
            c.expect("MAIL FROM:<a@example.com>", 250)
            c.expect("RCPT TO:<b@example.com>", 250)
            c.expect("DATA", 354)
            # Write in small pieces so that the sequence also straddles buffer boundaries.
            for k in range(0, len(body), 7):
                c.send(body[k:k + 7])
            c.send(b"\r\n.\r\n")  # the one real end of data
            code, lines = c.read_reply()
            self.assertEqual(code, expect_code, (seq, lines))
            c.expect("QUIT", 221)

    def test_client_drop_mid_data_is_never_completed_upstream(self):
        c, _ = tls_session(self.gw, "legacy", "1.2")
        c.expect("MAIL FROM:<a@example.com>", 250)
        c.expect("RCPT TO:<b@example.com>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: cut\r\n\r\nhalf a message\r\n")
        c.close()  # the client is gone before its final dot
        self.pf.wait_for_log(r"lost connection after DATA|disconnect from", timeout=10)
        time.sleep(1)
        self.assertEqual(self.pf.messages(), [])

    def test_smuggling_normalize(self):
        self.smuggle_all(250)
        messages = self.pf.wait_for_messages(len(self.SMUGGLING))
        time.sleep(1)
        messages = self.pf.messages()
        self.assertEqual(len(messages), len(self.SMUGGLING), "one message in, one message out")
        self.assertFalse(any(m["Subject"] == "smuggled" for m in messages))


class PostfixBareLfRejectTest(PostfixRelayTest):
    def setUp(self):
        require(mta.postfix_available())
        self.pf = mta.Postfix()
        self.pf.start()
        self.gw = relay_gateway(self.pf.port, smtp={"bare_lf": "reject"})

    def test_smuggling_reject(self):
        self.smuggle_all_mixed()

    def smuggle_all_mixed(self):
        # Sequences with a bare CR or LF are refused (550) and never completed upstream; the
        # NUL ones are content.
        for i, seq in enumerate(self.SMUGGLING):
            c, _ = tls_session(self.gw, "legacy", "1.2")
            c.expect("MAIL FROM:<a@example.com>", 250)
            c.expect("RCPT TO:<b@example.com>", 250)
            c.expect("DATA", 354)
            c.send(b"Subject: r%d\r\n\r\nx" % i + seq + b"y\r\n.\r\n")
            code, lines = c.read_reply()
            bare = b"\r" in seq.replace(b"\r\n", b"") or b"\n" in seq.replace(b"\r\n", b"")
            self.assertEqual(code, 550 if bare else 250, (seq, lines))
        time.sleep(1)
        subjects = sorted(m["Subject"] for m in self.pf.messages())
        self.assertEqual(subjects, sorted("r%d" % i for i, s in enumerate(self.SMUGGLING)
                                          if b"\x00" in s))

    # The inherited cases run with bare_lf=reject too, except the normalize-only ones.
    test_smuggling_normalize = None
    test_client_drop_mid_data_is_never_completed_upstream = None
    test_every_tls_version_delivered_once_with_the_real_client = None
    test_auth_against_real_sasl = None
    test_post_tls_ehlo_shows_backend_capabilities = None


class PostfixStartTlsTest(unittest.TestCase):
    def test_starttls_toward_the_backend(self):
        require(mta.postfix_available())
        with mta.Postfix(tls=True) as pf:  # started by the with statement
            gw = Gateway()
            gw.config["backend"] = {"smtp": "127.0.0.1:%d" % pf.port, "handoff": "xclient",
                                    "tls": "starttls"}
            gw.write_config()
            gw.start()
            try:
                c, _ = tls_session(gw, "legacy", "1.0")
                code, lines = send_message(c, "a@example.com", ["b@example.com"], b"Subject: tls\r\n\r\nx\r\n.\r\n")
                self.assertEqual(code, 250, lines)
                self.assertEqual(len(pf.wait_for_messages(1)), 1)
                # Postfix saw TLS from the gateway, and the real client through XCLIENT.
                pf.wait_for_log(r"TLS connection established from")
                pf.wait_for_log(r"client=unknown\[%s\]" % CLIENT.replace(".", r"\."))
            finally:
                self.assertEqual(gw.stop(), 0, gw.output()[-3000:])


class EximProxyTest(unittest.TestCase):
    def run_with(self, handoff):
        require(mta.exim_available())
        with mta.Exim() as exim:  # started by the with statement
            gw = relay_gateway(exim.port, handoff)
            try:
                for version in ("1.0", "1.3"):
                    c, _ = tls_session(gw, "legacy", version)
                    code, lines = send_message(c, "s@example.com", ["r@example.com"],
                                               ("Subject: %s %s\r\n\r\nx\r\n.\r\n" % (handoff, version)).encode())
                    self.assertEqual(code, 250, lines)
                    self.assertIn("id=", lines[0])  # Exim's own reply
                    c.expect("QUIT", 221)
                messages = exim.wait_for_messages(2)
                self.assertEqual(sorted(m["Subject"] for m in messages),
                                 ["%s 1.0" % handoff, "%s 1.3" % handoff])
                exim.wait_for_log(r"\[%s\]" % CLIENT.replace(".", r"\."))
            finally:
                self.assertEqual(gw.stop(), 0, gw.output()[-3000:])

    def test_proxy_v1(self):
        self.run_with("proxy-v1")

    def test_proxy_v2(self):
        self.run_with("proxy-v2")


class FaultTest(unittest.TestCase):
    """Backend faults: the client never gets a 250 for a message the backend did not take."""

    def sink(self, *flags):
        sink = mta.SmtpSink(None, *flags)
        sink.start()
        self.addCleanup(sink.cleanup)
        self.addCleanup(sink.stop)
        gw = relay_gateway(sink.port, "none")
        self.addCleanup(lambda: self.assertEqual(gw.stop(), 0))
        c, _ = tls_session(gw, "starttls", "1.3")
        return c

    def transaction(self, c):
        code, lines = c.cmd("MAIL FROM:<a@example.com>")
        if code != 250:
            return code, lines
        code, lines = c.cmd("RCPT TO:<b@example.com>")
        if code != 250:
            return code, lines
        code, lines = c.cmd("DATA")
        if code != 354:
            return code, lines
        c.send("Subject: f\r\n\r\nx\r\n.\r\n")
        return c.read_reply()

    def test_backend_refused(self):
        gw = relay_gateway(mta.free_port(), "none", limits={"timeouts_s": {"backend_connect": 2}})
        self.addCleanup(lambda: self.assertEqual(gw.stop(), 0))
        c, _ = tls_session(gw, "starttls", "1.3")
        code, lines = c.cmd("MAIL FROM:<a@example.com>")
        self.assertEqual(code, 421, lines)
        self.assertIn("4.4.2", lines[0])

    def test_backend_421_at_mail(self):
        code, lines = self.transaction(self.sink("-Q", "mail"))
        self.assertIn(code, (421, 451), lines)

    def test_backend_soft_reject_rcpt_passes_through(self):
        code, lines = self.transaction(self.sink("-r", "rcpt"))
        self.assertEqual(code, 450, lines)

    def test_backend_closes_after_final_dot(self):
        code, lines = self.transaction(self.sink("-q", "."))
        self.assertEqual(code, 451, lines)
        self.assertIn("4.4.1", lines[0])

    def test_backend_421_after_final_dot(self):
        code, lines = self.transaction(self.sink("-Q", "."))
        self.assertEqual(code, 421, lines)  # the backend's own reply, never a 250

    def test_backend_421_at_greeting(self):
        code, lines = self.transaction(self.sink("-Q", "connect"))
        self.assertEqual(code, 421, lines)
        self.assertIn("4.4.2", lines[0])

    def test_backend_rejects_inside_data(self):
        # smtp-sink -A: after 354 it waits, answers 550 early and stops reading.
        c = self.sink("-A", "1")
        c.expect("MAIL FROM:<a@example.com>", 250)
        c.expect("RCPT TO:<b@example.com>", 250)
        c.expect("DATA", 354)
        c.send("Subject: early\r\n\r\n")
        time.sleep(2)
        c.send("more\r\n.\r\n")
        code, lines = c.read_reply()
        self.assertNotEqual(code, 250, lines)
        self.assertIn(code // 100, (4, 5), lines)

    def test_slow_backend_times_out(self):
        sink = mta.SmtpSink(None, "-W", "rcpt:30")
        sink.start()
        self.addCleanup(sink.cleanup)
        self.addCleanup(sink.stop)
        gw = relay_gateway(sink.port, "none", limits={"timeouts_s": {"command": 10}})
        self.addCleanup(lambda: self.assertEqual(gw.stop(), 0))
        c, _ = tls_session(gw, "starttls", "1.3")
        c.sock.settimeout(40)
        c.expect("MAIL FROM:<a@example.com>", 250)
        start = time.time()
        code, lines = c.cmd("RCPT TO:<b@example.com>")
        self.assertEqual(code, 451, lines)
        self.assertGreaterEqual(time.time() - start, 9)

    def test_backend_disconnects_at_data(self):
        code, lines = self.transaction(self.sink("-q", "data"))
        self.assertEqual(code, 451, lines)


if __name__ == "__main__":
    unittest.main()
