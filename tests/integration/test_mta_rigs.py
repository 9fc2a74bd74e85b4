"""The real-MTA rigs of mta.py on their own, without the gateway: a private Postfix (XCLIENT,
PROXY, Cyrus SASL, maildir), a private Exim (PROXY v1/v2) and Postfix's smtp-sink, each talked
to with smtplib or a raw socket. If these fail, the relay tests that use the rigs cannot pass."""

import os
import smtplib
import socket
import ssl
import unittest

import mta

SENDER = "sender@example.org"
MESSAGE = ("From: sender@example.org\r\nTo: rcpt@example.com\r\nSubject: rig %s\r\n"
           "Message-ID: <%s@rig.test>\r\n\r\nline one\r\n.leading dot\r\nline three\r\n")


def root_only(reason_of):
    reason = reason_of()
    return unittest.skipIf(os.geteuid() != 0, reason or "needs root")


def _message(tag):
    return MESSAGE % (tag, tag)


class _RigTest(unittest.TestCase):

    def rig(self, rig):
        self.addCleanup(rig.cleanup)
        return rig.start()

    def smtp(self, port, **kwargs):
        s = smtplib.SMTP("127.0.0.1", port, timeout=10, **kwargs)
        self.addCleanup(s.close)
        return s

    def proxy_smtp(self, header, port):
        s = mta.ProxySMTP(header, "127.0.0.1", port, timeout=10)
        self.addCleanup(s.close)
        return s

    def login(self, s, mechanism, user, password):
        s.user, s.password = user, password
        if mechanism == "PLAIN":
            return s.auth("PLAIN", s.auth_plain)
        return s.auth("LOGIN", s.auth_login, initial_response_ok=False)


@root_only(mta.postfix_available)
class PostfixRigTest(_RigTest):

    def test_postfix_delivers_exactly_once(self):
        pf = self.rig(mta.Postfix())
        s = self.smtp(pf.port)
        s.ehlo("client.test")
        self.assertEqual(s.sendmail(SENDER, ["rcpt@example.com"], _message("once")), {})
        s.quit()
        msgs = pf.wait_for_messages(1)
        # Give a duplicate delivery the time to show up, then insist on one message.
        pf.wait_for_log(r"removed")
        self.assertEqual(len(pf.messages()), 1, msgs)
        msg = msgs[0]
        self.assertEqual(msg["Subject"], "rig once")
        self.assertEqual(msg["Delivered-To"], "rcpt@example.com")
        self.assertEqual(msg["Return-Path"], "<%s>" % SENDER)
        self.assertIn(b"line one\n.leading dot\nline three\n", msg.body)
        self.assertEqual(len(pf.queue_ids()), 1)
        self.assertIn(pf.queue_ids()[0], msg["Received"])

    def test_postfix_xclient_changes_the_logged_client(self):
        pf = self.rig(mta.Postfix())
        s = self.smtp(pf.port)
        code, caps = s.ehlo("gateway.test")
        self.assertEqual(code, 250)
        self.assertIn(b"XCLIENT", caps)
        code, reply = s.docmd("XCLIENT", "ADDR=192.0.2.10 NAME=[UNAVAILABLE]")
        self.assertEqual(code, 220, reply)
        s.ehlo_resp = None
        s.ehlo("client.test")
        s.sendmail(SENDER, ["rcpt@example.com"], _message("xclient"))
        s.quit()
        msg = pf.wait_for_messages(1)[0]
        pf.wait_for_log(r"client=unknown\[192\.0\.2\.10\]")
        self.assertEqual(list(pf.clients().values()), ["unknown[192.0.2.10]"])
        self.assertIn("[192.0.2.10]", msg["Received"])

    def test_postfix_xclient_refused_when_not_authorized(self):
        pf = self.rig(mta.Postfix(xclient_hosts=[]))
        s = self.smtp(pf.port)
        code, caps = s.ehlo("gateway.test")
        self.assertNotIn(b"XCLIENT", caps)
        code, reply = s.docmd("XCLIENT", "ADDR=192.0.2.10")
        self.assertEqual(code, 550, reply)

    def test_postfix_proxy_v1_header_sets_the_client(self):
        pf = self.rig(mta.Postfix(proxy_protocol="haproxy"))
        s = self.proxy_smtp(mta.proxy_v1_header("192.0.2.20", "127.0.0.1", 40020, 25), pf.port)
        s.ehlo("client.test")
        s.sendmail(SENDER, ["rcpt@example.com"], _message("proxy1"))
        s.quit()
        pf.wait_for_messages(1)
        pf.wait_for_log(r"connect from unknown\[192\.0\.2\.20\]")
        self.assertEqual(list(pf.clients().values()), ["unknown[192.0.2.20]"])

    def test_postfix_proxy_v2_header_with_ssl_tlvs_sets_the_client(self):
        pf = self.rig(mta.Postfix(proxy_protocol="haproxy"))
        header = mta.proxy_v2_header("192.0.2.21", "127.0.0.1", 40021, 465,
                                     mta.ssl_tlv("TLSv1", "ECDHE-RSA-AES128-SHA"))
        s = self.proxy_smtp(header, pf.port)
        s.ehlo("client.test")
        s.sendmail(SENDER, ["rcpt@example.com"], _message("proxy2"))
        s.quit()
        pf.wait_for_messages(1)
        self.assertEqual(list(pf.clients().values()), ["unknown[192.0.2.21]"])

    def test_postfix_proxy_service_drops_a_session_without_header(self):
        pf = self.rig(mta.Postfix(proxy_protocol="haproxy"))
        with socket.create_connection(("127.0.0.1", pf.port), timeout=10) as sock:
            sock.sendall(b"EHLO client.test\r\n")
            data = sock.recv(4096)
        self.assertFalse(data.startswith(b"250"), data)
        pf.wait_for_log(r"(?i)proxy|haproxy")

    def test_postfix_sasl_plain_and_login_succeed(self):
        users = {"alice@example.com": "s3cret!", "bob": "pw-bob"}
        pf = self.rig(mta.Postfix(sasl_users=users))
        for user, password in users.items():
            for mech in ("PLAIN", "LOGIN"):
                with self.subTest(user=user, mech=mech):
                    s = self.smtp(pf.port)
                    code, caps = s.ehlo("client.test")
                    self.assertRegex(caps.decode(), r"(?m)^AUTH PLAIN LOGIN$")
                    code, reply = self.login(s, mech, user, password)
                    self.assertEqual(code, 235, reply)
                    s.quit()
        pf.wait_for_log(r"(?s)(auth=1 quit=1 commands=3.*){4}")

    def test_postfix_sasl_wrong_password_gets_535(self):
        pf = self.rig(mta.Postfix(sasl_users={"alice@example.com": "right"}))
        for mech in ("PLAIN", "LOGIN"):
            with self.subTest(mech=mech):
                s = self.smtp(pf.port)
                s.ehlo("client.test")
                with self.assertRaises(smtplib.SMTPAuthenticationError) as caught:
                    self.login(s, mech, "alice@example.com", "wrong")
                self.assertEqual(caught.exception.smtp_code, 535)

    def test_postfix_relay_needs_auth_once_xclient_names_a_stranger(self):
        pf = self.rig(mta.Postfix(sasl_users={"alice@example.com": "pw"}, domains=["example.com"]))
        s = self.smtp(pf.port)
        s.ehlo("gateway.test")
        self.assertEqual(s.docmd("XCLIENT", "ADDR=192.0.2.10 NAME=[UNAVAILABLE]")[0], 220)
        s.ehlo_resp = None
        s.ehlo("client.test")
        s.mail(SENDER)
        code, reply = s.rcpt("someone@elsewhere.example")
        self.assertEqual(code, 554, reply)  # relay access denied for 192.0.2.10
        self.assertEqual(s.rcpt("rcpt@example.com")[0], 250)
        s.rset()
        self.assertEqual(self.login(s, "PLAIN", "alice@example.com", "pw")[0], 235)
        s.mail(SENDER)
        self.assertEqual(s.rcpt("someone@elsewhere.example")[0], 250)

    def test_postfix_rejects_bare_lf_in_data(self):
        pf = self.rig(mta.Postfix())
        if pf.service_options.get("smtpd_forbid_bare_newline") != "reject":
            self.skipTest("this Postfix has no smtpd_forbid_bare_newline")
        with socket.create_connection(("127.0.0.1", pf.port), timeout=10) as sock:
            f = sock.makefile("rb")

            def reply():
                lines = []
                while True:
                    line = f.readline()
                    lines.append(line)
                    if len(line) < 4 or line[3:4] != b"-":
                        return b"".join(lines)

            self.assertTrue(reply().startswith(b"220"))
            for cmd, want in ((b"EHLO client.test\r\n", b"250"), (b"MAIL FROM:<a@example.org>\r\n", b"250"),
                              (b"RCPT TO:<b@example.com>\r\n", b"250"), (b"DATA\r\n", b"354")):
                sock.sendall(cmd)
                self.assertTrue(reply().startswith(want))
            sock.sendall(b"Subject: smuggle\r\n\r\nbare\nline\r\n.\r\n")
            self.assertRegex(reply(), rb"^5\d\d ")
        pf.wait_for_log(r"bare <LF> received")
        self.assertEqual(pf.messages(), [])

    def test_postfix_starttls_mode(self):
        pf = self.rig(mta.Postfix(tls=True))
        s = self.smtp(pf.port)
        code, caps = s.ehlo("client.test")
        self.assertIn(b"STARTTLS", caps)
        ctx = ssl.create_default_context(cafile=pf.cert)
        ctx.check_hostname = False
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.sendmail(SENDER, ["rcpt@example.com"], _message("tls"))
        s.quit()
        msg = pf.wait_for_messages(1)[0]
        self.assertRegex(msg["Received"], r"ESMTPS")
        pf.wait_for_log(r"TLS connection established from")

    def test_postfix_runs_the_recipe_service(self):
        pf = mta.Postfix()
        self.addCleanup(pf.cleanup)
        _, recipe = mta.read_master_cf_service(mta.POSTFIX_SERVICES, mta.RECIPE_XCLIENT_SERVICE)
        for name, value in recipe:
            if name != "smtpd_authorized_xclient_hosts":
                self.assertEqual(pf.service_options.get(name), value, name)
        with open(os.path.join(pf.conf_dir, "master.cf")) as f:
            self.assertTrue(f.read().splitlines()[1].startswith("127.0.0.1:%d inet" % pf.port))
        proxy = mta.Postfix(proxy_protocol="haproxy")
        self.addCleanup(proxy.cleanup)
        self.assertEqual(proxy.service_options["smtpd_upstream_proxy_protocol"], "haproxy")


@root_only(mta.exim_available)
class EximRigTest(_RigTest):

    def test_exim_is_built_with_proxy_support(self):
        ex = mta.Exim()
        self.addCleanup(ex.cleanup)
        out = ex.exim("-bV")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"Support for:.* PROXY")

    def test_exim_proxy_v1_logs_the_client_and_delivers(self):
        ex = self.rig(mta.Exim())
        s = self.proxy_smtp(mta.proxy_v1_header("192.0.2.30", "127.0.0.1", 40030, 587), ex.port)
        code, caps = s.ehlo("client.test")
        self.assertIn(b"[192.0.2.30]", caps)
        self.assertEqual(s.sendmail(SENDER, ["rcpt@example.com"], _message("exim1")), {})
        s.quit()
        msg = ex.wait_for_messages(1)[0]
        self.assertEqual(msg["Subject"], "rig exim1")
        self.assertIn(b"line one\n.leading dot\nline three\n", msg.body)
        line = ex.wait_for_log(r"<= sender@example\.org H=\(client\.test\) \[192\.0\.2\.30\]:40030 "
                               r".*PRX=127\.0\.0\.1").group(0)
        self.assertIn("for rcpt@example.com", ex.log())
        self.assertEqual(len(ex.message_ids()), 1, line)

    def test_exim_proxy_v2_with_ssl_tlvs_logs_the_client(self):
        ex = self.rig(mta.Exim())
        header = mta.proxy_v2_header("192.0.2.31", "127.0.0.1", 40031, 465, mta.ssl_tlv())
        s = self.proxy_smtp(header, ex.port)
        s.ehlo("client.test")
        s.sendmail(SENDER, ["rcpt@example.com"], _message("exim2"))
        s.quit()
        ex.wait_for_messages(1)
        ex.wait_for_log(r"<= sender@example\.org H=\(client\.test\) \[192\.0\.2\.31\]:40031 ")

    def test_exim_refuses_a_session_without_proxy_header(self):
        ex = self.rig(mta.Exim())
        # Plain SMTP where the header should be: Exim takes the line for a broken header,
        # greets, and then refuses every command with 503.
        with socket.create_connection(("127.0.0.1", ex.port), timeout=10) as sock:
            f = sock.makefile("rb")
            sock.sendall(b"EHLO client.test\r\n")
            self.assertTrue(f.readline().startswith(b"220"))
            sock.sendall(b"EHLO client.test\r\n")
            self.assertRegex(f.readline(), rb"^503 .*[Pp]roxy")
            sock.sendall(b"MAIL FROM:<a@example.org>\r\n")
            self.assertTrue(f.readline().startswith(b"503"))
        self.assertEqual(ex.messages(), [])

    def test_exim_plain_smtp_without_hosts_proxy(self):
        ex = self.rig(mta.Exim(proxy_protocol_hosts=None))
        s = self.smtp(ex.port)
        s.ehlo("client.test")
        s.sendmail(SENDER, ["rcpt@example.com"], _message("plain"))
        s.quit()
        ex.wait_for_messages(1)
        ex.wait_for_log(r"<= sender@example\.org H=\(client\.test\) \[127\.0\.0\.1\]")

    def test_exim_auth_and_relay_acl(self):
        ex = self.rig(mta.Exim(sasl_users={"alice@example.com": "pw"}, domains="example.com"))
        s = self.proxy_smtp(mta.proxy_v1_header("192.0.2.32", "127.0.0.1", 40032, 587), ex.port)
        s.ehlo("client.test")
        s.mail(SENDER)
        self.assertEqual(s.rcpt("someone@elsewhere.example")[0], 550)  # relay not permitted
        s.rset()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as caught:
            self.login(s, "PLAIN", "alice@example.com", "wrong")
        self.assertEqual(caught.exception.smtp_code, 535)
        self.assertEqual(self.login(s, "LOGIN", "alice@example.com", "pw")[0], 235)
        s.mail(SENDER)
        self.assertEqual(s.rcpt("someone@elsewhere.example")[0], 250)


@root_only(lambda: None if mta.find_program("smtp-sink") else "smtp-sink missing")
class SmtpSinkRigTest(_RigTest):

    def test_smtp_sink_answers_and_dumps(self):
        sink = self.rig(mta.SmtpSink(None, dump=True))
        s = self.smtp(sink.port)
        code, caps = s.ehlo("gateway.test")
        self.assertEqual(code, 250)
        self.assertIn(b"XCLIENT", caps)
        self.assertEqual(s.sendmail(SENDER, ["rcpt@example.com"], _message("sink")), {})
        s.quit()
        dumps = sink.dumps()
        self.assertEqual(len(dumps), 1)
        self.assertIn(b"X-Rcpt-Args: <rcpt@example.com>", dumps[0])
        self.assertIn(b"Subject: rig sink", dumps[0])

    def test_smtp_sink_fault_flags(self):
        cases = [
            (["-Q", "."], smtplib.SMTPDataError, 421),       # 421 + close after the end of DATA
            (["-r", "rcpt"], smtplib.SMTPRecipientsRefused, 450),
            (["-f", "mail"], smtplib.SMTPSenderRefused, 500),
            (["-q", "data"], smtplib.SMTPServerDisconnected, None),  # closes without a reply
        ]
        for flags, error, code in cases:
            with self.subTest(flags=flags):
                sink = self.rig(mta.SmtpSink(None, *flags))
                s = self.smtp(sink.port)
                s.ehlo("gateway.test")
                with self.assertRaises(error) as caught:
                    s.sendmail(SENDER, ["rcpt@example.com"], _message("fault"))
                if code is not None:
                    got = getattr(caught.exception, "smtp_code", None)
                    if got is None:  # SMTPRecipientsRefused carries a dict
                        got = list(caught.exception.recipients.values())[0][0]
                    self.assertEqual(got, code)

    def test_smtp_sink_refuses_at_connect(self):
        sink = self.rig(mta.SmtpSink(None, "-Q", "connect"))
        with self.assertRaises((smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected)) as caught:
            self.smtp(sink.port)
        if isinstance(caught.exception, smtplib.SMTPConnectError):
            self.assertEqual(caught.exception.smtp_code, 421)


if __name__ == "__main__":
    unittest.main()
