"""The TLS decision (SPEC section 4, rules D1-D8) end to end: the real binary with a tenants
file, clients pinned to TLS 1.0-1.3 over STARTTLS and implicit TLS, exact reply texts."""

import base64
import json
import re
import signal
import socket
import ssl
import time
import unittest

from harness import Gateway, GatewayTestCase, SmtpConn, client_context, send_message

HELP = "https://aka.ms/smtp_auth_tls"
T1 = ("421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to "
      "support TLS 1.2. Visit " + HELP)
T2 = ("421 4.7.66 Legacy TLS clients are not allowed for this organization. Use a TLS 1.2 "
      "client with the regular endpoint. Visit " + HELP)

TENANTS = [
    {"id": "contoso", "domains": ["contoso.com"], "allow_legacy_tls_clients": False,
     "exceptions": [{"client": "127.0.0.5/32", "reason": "scanner, 3rd floor"},
                    {"user": "printer@contoso.com"},
                    {"ehlo": "scanner-7.contoso.test"},
                    {"client": "127.0.0.6/32", "reason": "expired", "expires": "2020-01-31"}]},
    {"id": "fabrikam", "domains": ["fabrikam.com"], "allow_legacy_tls_clients": True},
]
USERS = (("alice@contoso.com", "pw-alice"), ("printer@contoso.com", "pw-printer"),
         ("bob@fabrikam.com", "pw-bob"), ("user@example.com", "secret"))

PAST_STEPS = [{"from": "2020-01-01T00:00:00Z", "reject_percent": 5},
              {"from": "2020-03-01T00:00:00Z", "reject_percent": 50}]


def plain(user, password):
    return "AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


class DecisionCase(GatewayTestCase):
    tenants = TENANTS
    users = USERS

    def assertDecisionLogged(self, rule, text=None):
        deadline = time.time() + 3
        while time.time() < deadline:
            lines = [l for l in self.gw.output().splitlines() if " decision %s " % rule in l]
            if lines and (text is None or any(text in l for l in lines)):
                return lines
            time.sleep(0.05)
        self.fail("no decision %s logged:\n%s" % (rule, self.gw.output()[-3000:]))

    def handshake_fails(self, port_name, version, sni=None):
        c = SmtpConn(self.gw.ports[port_name], implicit=False)
        if port_name != "implicit":
            c.read_reply()
            c.expect("EHLO a.test", 250)
            c.expect("STARTTLS", 220)
        with self.assertRaises(ssl.SSLError) as ctx:
            c.starttls_now(version, sni)
        return str(ctx.exception)


class OpenPhaseTest(DecisionCase):
    """No schedule: the strict endpoint is open. D4, D5, D6, D8 and the exceptions."""

    def test_d8_legacy_tls_on_strict_while_open(self):
        c = self.connect("starttls", version="1.0")
        c.expect(plain("bob@fabrikam.com", "pw-bob"), 235)
        code, lines = send_message(c, "bob@fabrikam.com", ["x@example.net"], b"Subject: d8\r\n\r\nx\r\n.\r\n")
        self.assertEqual(code, 250, lines)
        meta = self.gw.messages()[0][1]
        self.assertEqual(meta["session"]["rule"], "D8")
        self.assertEqual(meta["session"]["tenant"], "fabrikam")
        self.assertDecisionLogged("D8", "tenant=fabrikam")

    def test_d4_strict_legacy_tls_tenant_not_allowed(self):
        c = self.connect("starttls", version="1.0")
        # A wrong password still gets the 421: credentials are never checked.
        self.assertEqual(c.cmd(plain("alice@contoso.com", "WRONG")), (421, [T1]))
        self.assertTrue(c.closed())
        lines = self.assertDecisionLogged("D4", "tenant=contoso")
        self.assertIn("tls=TLSv1 ", lines[0])

    def test_d4_auth_login_refused_before_the_password(self):
        c = self.connect("implicit", version="1.1")
        self.assertEqual(c.cmd("AUTH LOGIN " + base64.b64encode(b"alice@contoso.com").decode()),
                         (421, [T1]))
        self.assertTrue(c.closed())

    def test_d4_exceptions_never_apply_on_strict(self):
        c = self.connect("starttls", version="1.1", source="127.0.0.5")
        self.assertEqual(c.cmd(plain("alice@contoso.com", "pw-alice"))[0], 421)

    def test_d8_modern_tls_on_strict_for_any_tenant(self):
        for version in ("1.2", "1.3"):
            c = self.connect("starttls", version=version)
            c.expect(plain("alice@contoso.com", "pw-alice"), 235)
            c.cmd("QUIT")

    def test_d5_legacy_endpoint_refuses_tls12_of_tenant_not_opted_in(self):
        c = self.connect("legacy", version="1.2")
        self.assertEqual(c.cmd(plain("alice@contoso.com", "pw-alice")), (421, [T2]))
        self.assertTrue(c.closed())
        self.assertDecisionLogged("D5", "tenant=contoso")
        # The opted-in tenant goes on, with any version.
        for version in ("1.0", "1.3"):
            c = self.connect("legacy", version=version)
            c.expect(plain("bob@fabrikam.com", "pw-bob"), 235)

    def test_exceptions_let_one_cidr_and_one_user_through(self):
        # The scanner's address is excepted: any contoso user from it passes.
        c = self.connect("legacy", version="1.0", source="127.0.0.5")
        c.expect(plain("alice@contoso.com", "pw-alice"), 235)
        # The printer's user is excepted from anywhere.
        c = self.connect("legacy", version="1.0")
        c.expect(plain("printer@contoso.com", "pw-printer"), 235)
        code, _ = send_message(c, "printer@contoso.com", ["x@example.net"], b"Subject: scan\r\n\r\nx\r\n.\r\n")
        self.assertEqual(code, 250)
        # Everyone else of the tenant is refused, and an expired exception is no exception.
        for source in ("127.0.0.1", "127.0.0.6"):
            c = self.connect("legacy", version="1.0", source=source)
            self.assertEqual(c.cmd(plain("alice@contoso.com", "pw-alice")), (421, [T2]))

    def test_d6_per_recipient_on_legacy_endpoint(self):
        c = self.connect("legacy", version="1.0")
        c.expect("MAIL FROM:<dev@example.net>", 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@contoso.com>"), (450, ["450" + T2[3:]]))
        c.expect("RCPT TO:<bob@fabrikam.com>", 250)
        c.expect("RCPT TO:<someone@unknown.example>", 250)  # default_allow
        c.expect("DATA", 354)
        c.send("Subject: d6\r\n\r\nx\r\n.\r\n")
        self.assertEqual(c.read_reply()[0], 250)
        self.assertEqual(self.gw.messages()[0][1]["rcpt_to"], ["bob@fabrikam.com", "someone@unknown.example"])
        self.assertDecisionLogged("D6", "tenant=contoso")

    def test_exception_by_ehlo_name(self):
        c = self.connect("legacy", version="1.1", ehlo="scanner-7.contoso.test")
        c.expect(plain("alice@contoso.com", "pw-alice"), 235)
        c = self.connect("legacy", version="1.1", ehlo="laptop.contoso.test")
        self.assertEqual(c.cmd(plain("alice@contoso.com", "pw-alice")), (421, [T2]))

    def test_d6_strict_text(self):
        c = self.connect("starttls", version="1.1")
        c.expect("MAIL FROM:<dev@example.net>", 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@contoso.com>"), (450, ["450" + T1[3:]]))
        c.expect("RCPT TO:<bob@fabrikam.com>", 250)

    def test_d7_plaintext_mail_on_require_tls(self):
        c = SmtpConn(self.gw.ports["starttls"])
        c.read_reply()
        c.expect("EHLO a.test", 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.com>"),
                         (530, ["530 5.7.0 Must issue a STARTTLS command first"]))
        self.assertDecisionLogged("D7")

    def test_rsa_only_tls_1_0_client_on_legacy_endpoint(self):
        c = self.connect("legacy", version="1.0", ciphers="AES128-SHA:@SECLEVEL=0")
        self.assertEqual(c.sock.cipher()[0], "AES128-SHA")
        c.expect(plain("bob@fabrikam.com", "pw-bob"), 235)
        code, _ = send_message(c, "bob@fabrikam.com", ["x@example.net"], b"Subject: rsa\r\n\r\nx\r\n.\r\n")
        self.assertEqual(code, 250)
        self.assertEqual(self.gw.messages()[0][1]["session"]["tls"]["cipher"],
                         "TLS_RSA_WITH_AES_128_CBC_SHA")


class TenantReloadTest(DecisionCase):
    def test_sighup_applies_tenant_changes_to_open_sessions(self):
        waiting = self.connect("legacy", version="1.0")  # open before the change
        c = self.connect("legacy", version="1.0")
        self.assertEqual(c.cmd(plain("alice@contoso.com", "pw-alice")), (421, [T2]))
        tenants = json.load(open(self.gw.tenants_path))
        tenants["tenants"][0]["allow_legacy_tls_clients"] = True  # contoso opts in
        with open(self.gw.tenants_path, "w") as f:
            json.dump(tenants, f)
        self.gw.signal(signal.SIGHUP)
        deadline = time.time() + 5
        while "reload done" not in self.gw.output() and time.time() < deadline:
            time.sleep(0.05)
        waiting.expect(plain("alice@contoso.com", "pw-alice"), 235)
        c = self.connect("legacy", version="1.0")
        c.expect(plain("alice@contoso.com", "pw-alice"), 235)
        # A broken tenants file is refused and the last good one stays in force.
        with open(self.gw.tenants_path, "w") as f:
            f.write('{"tenants": [{"id": "contoso", "domains": ["not a domain"]}]}')
        self.gw.signal(signal.SIGHUP)
        deadline = time.time() + 5
        while "reload refused" not in self.gw.output() and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("/tenants/0/domains/0", self.gw.wait_output("/tenants/0/domains/0"))
        c = self.connect("legacy", version="1.0")
        c.expect(plain("alice@contoso.com", "pw-alice"), 235)


class ClosedRefuseHandshakeTest(DecisionCase):
    overrides = {"legacy_tls": {"speedbump": PAST_STEPS, "strict_cutoff": "2020-06-01T00:00:00Z",
                                "after_cutoff": "refuse-handshake"}}

    def test_d1_strict_starttls_refuses_tls_1_0_and_1_1(self):
        for version in ("1.0", "1.1"):
            error = self.handshake_fails("starttls", version)
            self.assertIn("VERSION", error.upper())
        self.assertDecisionLogged("D1")

    def test_d1_strict_implicit_refuses_tls_1_1(self):
        c = SmtpConn(self.gw.ports["implicit"])
        with self.assertRaises(ssl.SSLError):
            c.starttls_now("1.1")

    def test_d1_modern_and_legacy_endpoint_unaffected(self):
        c = self.connect("starttls", version="1.2")
        c.expect("NOOP", 250)
        c = self.connect("legacy", version="1.0")
        c.expect(plain("bob@fabrikam.com", "pw-bob"), 235)


class ClosedReplyTest(DecisionCase):
    overrides = {"legacy_tls": {"speedbump": PAST_STEPS, "strict_cutoff": "2020-06-01T00:00:00Z",
                                "after_cutoff": "reply"}}

    def test_d2_first_command_gets_421(self):
        c = self.connect("starttls", version="1.1", ehlo_after_tls=False)
        self.assertEqual(c.cmd("EHLO a.test"), (421, [T1]))
        self.assertTrue(c.closed())
        self.assertDecisionLogged("D2")
        c = self.connect("implicit", version="1.0", ehlo_after_tls=False)
        c.send("EHLO a.test\r\nMAIL FROM:<a@example.com>\r\n")
        self.assertEqual(c.read_reply(), (421, [T1]))
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"", "nothing is answered after the 421")

    def test_d2_modern_clients_go_on(self):
        c = self.connect("starttls", version="1.3")
        c.expect("NOOP", 250)


class Speedbump100Test(DecisionCase):
    overrides = {"legacy_tls": {"speedbump": [{"from": "2020-01-01T00:00:00Z", "reject_percent": 100}]}}

    def test_d3_every_legacy_connection_rejected(self):
        for _ in range(20):
            c = self.connect("starttls", version="1.0", ehlo_after_tls=False)
            self.assertEqual(c.cmd("EHLO a.test"), (421, [T1]))
        self.assertDecisionLogged("D3")
        c = self.connect("legacy", version="1.0")  # the legacy endpoint has no speedbump
        c.expect("NOOP", 250)


class Speedbump0Test(DecisionCase):
    overrides = {"legacy_tls": {"speedbump": [{"from": "2020-01-01T00:00:00Z", "reject_percent": 0}]}}

    def test_d3_no_legacy_connection_rejected(self):
        for _ in range(20):
            c = self.connect("implicit", version="1.1")
            c.expect("NOOP", 250)


class Speedbump30Test(DecisionCase):
    overrides = {"legacy_tls": {"speedbump": [{"from": "2020-01-01T00:00:00Z", "reject_percent": 30}]}}

    def test_d3_about_30_percent_of_300_connections(self):
        rejected = 0
        for _ in range(300):
            c = self.connect("starttls", version="1.0", ehlo_after_tls=False)
            code, lines = c.cmd("EHLO a.test")
            if code == 421:
                self.assertEqual(lines, [T1])
                rejected += 1
            else:
                self.assertEqual(code, 250)
                c.cmd("QUIT")
            c.close()
        # Binomial(300, 0.3): sd = 7.9, so 60..120 is beyond 3.7 sd on either side.
        self.assertTrue(60 <= rejected <= 120, rejected)


class BySniTest(DecisionCase):
    overrides = {
        "hostnames": {"smtp.gw.test": "strict", "smtp-legacy.gw.test": "legacy"},
        "default_endpoint": "strict",
        "legacy_tls": {"speedbump": PAST_STEPS, "strict_cutoff": "2020-06-01T00:00:00Z",
                       "after_cutoff": "refuse-handshake"},
    }

    def setUp(self):
        self.gw = Gateway(self.overrides, users=self.users, tenants=self.tenants)
        self.gw.config["listeners"] = [{"name": "split", "tls": "starttls", "endpoint": "by-sni",
                                        "listen": "127.0.0.1:%d" % self.gw.ports["starttls"]}]
        self.gw.write_config()
        self.gw.start()

    def test_same_port_different_rules_by_sni(self):
        # smtp-legacy.gw.test is the legacy endpoint: TLS 1.0 goes on for an opted-in tenant.
        c = self.connect("starttls", version="1.0", sni="smtp-legacy.gw.test")
        c.expect(plain("bob@fabrikam.com", "pw-bob"), 235)
        # ...and refuses a tenant that did not opt in, whatever the version.
        c = self.connect("starttls", version="1.3", sni="smtp-legacy.gw.test")
        self.assertEqual(c.cmd(plain("alice@contoso.com", "pw-alice")), (421, [T2]))
        # smtp.gw.test, and no SNI at all (default_endpoint), is strict and closed: D1.
        self.handshake_fails("starttls", "1.0", sni="smtp.gw.test")
        self.handshake_fails("starttls", "1.1", sni=None)
        c = self.connect("starttls", version="1.3", sni="smtp.gw.test")
        c.expect(plain("alice@contoso.com", "pw-alice"), 235)


if __name__ == "__main__":
    unittest.main()
