"""Messages reach the spool over STARTTLS and implicit TLS, with every TLS version, and carry
their TLS facts into ID.json and the Received: line."""

import smtplib
import subprocess
import unittest

from harness import GatewayTestCase, client_context, send_message

BODY = b"Subject: hello\r\nFrom: a@example.com\r\n\r\nline one\r\n..dotted\r\n.\r\n"


class DeliveryTest(GatewayTestCase):
    def deliver_with(self, version, port_name):
        c = self.connect(port_name, version=version)
        code, lines = send_message(c, "sender@example.com", ["rcpt@example.org"], BODY)
        self.assertEqual(code, 250, lines)
        self.assertRegex(lines[0], r"^250 2\.0\.0 Ok: queued as [0-9A-Z]+$")
        queue_id = lines[0].rsplit(" ", 1)[1]
        c.expect("QUIT", 221)
        c.close()
        msgs = self.gw.messages()
        self.assertEqual(len(msgs), 1)
        eml, meta = msgs[0]
        self.assertEqual(meta["id"], queue_id)
        self.assertEqual(meta["mail_from"], "sender@example.com")
        self.assertEqual(meta["rcpt_to"], ["rcpt@example.org"])
        self.assertEqual(meta["session"]["tls"]["version"], version)
        self.assertTrue(eml.startswith(b"Received: from client.test ([127.0.0.1])\r\n"), eml[:200])
        self.assertIn(b"with ESMTPS", eml)
        self.assertIn(("tls " + meta["session"]["tls"]["cipher"]).encode(), eml)
        # Exactly the message the client sent, unstuffed, after the Received: line.
        self.assertTrue(eml.endswith(b"Subject: hello\r\nFrom: a@example.com\r\n\r\nline one\r\n.dotted\r\n"), eml)
        return meta

    def test_legacy_port_tls_1_0(self):
        meta = self.deliver_with("1.0", "legacy")
        self.assertEqual(meta["session"]["endpoint"], "legacy")

    def test_legacy_port_tls_1_1(self):
        self.deliver_with("1.1", "legacy")

    def test_legacy_port_tls_1_2(self):
        self.deliver_with("1.2", "legacy")

    def test_legacy_port_tls_1_3(self):
        meta = self.deliver_with("1.3", "legacy")
        self.assertTrue(meta["session"]["tls"]["cipher"].startswith("TLS_"))

    def test_strict_starttls_tls_1_3(self):
        meta = self.deliver_with("1.3", "starttls")
        self.assertEqual(meta["session"]["endpoint"], "strict")
        self.assertEqual(meta["session"]["listener"], "strict-starttls")

    def test_implicit_tls_1_2(self):
        self.deliver_with("1.2", "implicit")

    def test_smtplib_starttls_and_auth(self):
        s = smtplib.SMTP("127.0.0.1", self.gw.ports["starttls"], timeout=10)
        s.ehlo("client.test")
        self.assertNotIn("auth", s.esmtp_features, "AUTH must not be offered before TLS")
        self.assertIn("starttls", s.esmtp_features)
        s.starttls(context=client_context("1.2"))
        s.ehlo("client.test")
        self.assertIn("auth", s.esmtp_features)
        self.assertNotIn("starttls", s.esmtp_features)
        s.login("user@example.com", "secret")
        s.sendmail("user@example.com", ["x@example.net", "y@example.net"], "Subject: s\r\n\r\nbody\r\n")
        s.quit()
        eml, meta = self.gw.messages()[0]
        self.assertEqual(meta["auth_user"], "user@example.com")
        self.assertEqual(meta["rcpt_to"], ["x@example.net", "y@example.net"])
        self.assertIn(b"with ESMTPSA", eml)
        self.assertNotIn(b" for <", eml, "several recipients are never named in Received:")

    def test_smtplib_implicit_tls(self):
        s = smtplib.SMTP_SSL("127.0.0.1", self.gw.ports["implicit"], timeout=10,
                             context=client_context("1.3"))
        s.ehlo("client.test")
        self.assertNotIn("starttls", s.esmtp_features)
        s.sendmail("a@example.com", ["b@example.com"], "Subject: s\r\n\r\nbody\r\n")
        s.quit()
        self.assertEqual(self.gw.messages()[0][1]["session"]["tls"]["version"], "1.3")

    def test_swaks_starttls(self):
        r = subprocess.run(["swaks", "--to", "a@example.com", "--from", "s@example.com",
                            "--server", "127.0.0.1:%d" % self.gw.ports["starttls"], "-tls",
                            "--helo", "swaks.test"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("250 2.0.0 Ok: queued as", r.stdout)
        eml, meta = self.gw.messages()[0]
        self.assertEqual(meta["helo"], "swaks.test")
        self.assertIn(meta["session"]["tls"]["version"], ("1.2", "1.3"))

    def test_swaks_implicit_tls(self):
        r = subprocess.run(["swaks", "--to", "a@example.com", "--from", "s@example.com",
                            "--server", "127.0.0.1:%d" % self.gw.ports["implicit"], "-tlsc"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(self.gw.messages()), 1)

    def test_openssl_s_client_each_version(self):
        for version, flag in (("1.0", "-tls1"), ("1.1", "-tls1_1"), ("1.2", "-tls1_2"), ("1.3", "-tls1_3")):
            script = ("EHLO s-client.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
                      "DATA\r\nSubject: v%s\r\n\r\nbody\r\n.\r\nQUIT\r\n" % version)
            r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.gw.ports["legacy"],
                                "-starttls", "smtp", flag, "-cipher", "DEFAULT:@SECLEVEL=0",
                                "-ign_eof", "-quiet"],
                               input=script.encode(), capture_output=True, timeout=60)
            out = r.stdout.decode("utf-8", "replace")
            self.assertIn("250 2.0.0 Ok: queued as", out, (version, out, r.stderr[-2000:]))
            self.assertIn("221 2.0.0 Bye", out)
        versions = sorted(m["session"]["tls"]["version"] for _, m in self.gw.messages())
        self.assertEqual(versions, ["1.0", "1.1", "1.2", "1.3"])

    def test_plaintext_listener_without_require_tls(self):
        c = self.connect("plain", tls=False)
        code, lines = send_message(c, "a@example.com", ["b@example.com"], b"Subject: p\r\n\r\nx\r\n.\r\n")
        self.assertEqual(code, 250, lines)
        eml, meta = self.gw.messages()[0]
        self.assertIn(b"with ESMTP\r\n", eml)
        self.assertNotIn(b"\ttls ", eml)


if __name__ == "__main__":
    unittest.main()
