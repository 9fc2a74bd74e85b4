"""SMTP behaviour over real sockets: the STARTTLS plaintext wipe, pipelining, DATA smuggling,
require_tls, and every limit reached (line length, errors, size, recipients, connections,
timeouts). The process stays up throughout."""

import socket
import ssl
import time
import unittest

from harness import GatewayTestCase, SmtpConn, client_context, send_message


class StartTlsTest(GatewayTestCase):
    def test_starttls_wipes_pipelined_plaintext(self):
        c = SmtpConn(self.gw.ports["starttls"])
        self.assertEqual(c.read_reply()[0], 220)
        c.expect("EHLO a.test", 250)
        # The injected RSET travels in the same write as STARTTLS (CVE-2011-0411 style).
        c.send("STARTTLS\r\nRSET\r\n")
        code, lines = c.read_reply()
        self.assertEqual(code, 220, lines)
        self.assertEqual(lines, ["220 2.0.0 Ready to start TLS"])
        self.assertEqual(c.buf, b"", "nothing may follow the 220 in plaintext")
        c.starttls_now("1.3")
        # Were RSET answered, its 250 would be the first thing read after the handshake.
        code, lines = c.cmd("NOOP")
        self.assertEqual(lines, ["250 2.0.0 Ok"])
        c.sock.settimeout(0.5)
        with self.assertRaises((socket.timeout, ssl.SSLError)):
            c.sock.recv(100)
        c.sock.settimeout(10)
        # State was reset: a new EHLO is required.
        self.assertEqual(c.cmd("MAIL FROM:<a@example.com>")[0], 503)
        c.expect("EHLO a.test", 250)
        c.expect("MAIL FROM:<a@example.com>", 250)

    def test_require_tls_refuses_plaintext_mail(self):
        c = SmtpConn(self.gw.ports["starttls"])
        c.read_reply()
        lines = c.expect("EHLO a.test", 250)
        self.assertIn("250-STARTTLS", lines + [l.replace("250 ", "250-") for l in lines[-1:]])
        self.assertFalse(any("AUTH" in l for l in lines))
        self.assertEqual(c.cmd("MAIL FROM:<a@example.com>"),
                         (530, ["530 5.7.0 Must issue a STARTTLS command first"]))
        self.assertEqual(c.cmd("AUTH PLAIN AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0")[0], 530)

    def test_tls_1_3_handshake_sees_the_ehlo_of_the_new_session(self):
        c = self.connect("starttls", version="1.3")
        lines = c.expect("EHLO again.test", 250)
        self.assertIn("AUTH PLAIN LOGIN", [l[4:] for l in lines])
        self.assertFalse(any("STARTTLS" in l for l in lines))


class PipeliningTest(GatewayTestCase):
    def test_whole_transaction_in_one_write(self):
        c = self.connect("starttls", version="1.2")
        c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<bad address>\r\n"
               "RCPT TO:<c@example.com>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        codes = [c.read_reply()[0] for _ in range(8)]
        self.assertEqual(codes, [250, 250, 501, 250, 354, 250, 250, 221])
        self.assertEqual(self.gw.messages()[0][1]["rcpt_to"], ["b@example.com", "c@example.com"])

    def test_smuggling_sequences_do_not_end_data(self):
        c = self.connect("starttls", version="1.3")
        body = (b"Subject: s\r\n\r\nA\n.\nMAIL FROM:<evil@example.com>\n"
                b"B\r\n.\nC\n.\r\nD\r.\rE\r\n.\r\r\nF\r\n.\r\n")
        code, lines = send_message(c, "a@example.com", ["b@example.com"], body)
        self.assertEqual(code, 250, lines)
        c.expect("QUIT", 221)
        msgs = self.gw.messages()
        self.assertEqual(len(msgs), 1, "one client message is exactly one message")
        eml = msgs[0][0]
        content = eml[eml.index(b"Subject: s"):]
        self.assertEqual(content, b"Subject: s\r\n\r\nA\r\n.\r\nMAIL FROM:<evil@example.com>\r\n"
                                  b"B\r\n.\r\nC\r\n.\r\nD\r\n.\r\nE\r\n.\r\n\r\nF\r\n")


class LimitsTest(GatewayTestCase):
    overrides = {
        "smtp": {"max_message_bytes": 4096, "max_recipients": 3},
        "limits": {"max_errors": 4, "max_connections_per_ip": 5,
                   "timeouts_s": {"command": 10, "handshake": 1, "data_block": 10}},
    }

    def test_command_line_limit(self):
        c = self.connect("starttls", version="1.2")
        c.expect("NOOP " + "x" * 505, 250)  # 511 octets + CRLF = 512: allowed
        self.assertEqual(c.cmd("NOOP " + "x" * 507), (500, ["500 5.5.6 Line too long"]))
        self.assertEqual(c.cmd("NOOP " + "x" * 100000)[0], 500)
        c.expect("NOOP", 250)

    def test_max_errors_closes_with_421(self):
        c = self.connect("starttls", version="1.2")
        for _ in range(3):
            self.assertEqual(c.cmd("BOGUS")[0], 500)
        c.send("BOGUS\r\n")
        self.assertEqual(c.read_reply()[0], 500)
        code, lines = c.read_reply()
        self.assertEqual(code, 421)
        self.assertIn("4.7.0", lines[0])
        self.assertTrue(c.closed())

    def test_message_size_limit(self):
        c = self.connect("starttls", version="1.3")
        self.assertEqual(c.cmd("MAIL FROM:<a@example.com> SIZE=5000")[0], 552)
        code, lines = send_message(c, "a@example.com", ["b@example.com"],
                                   b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" + b"y" * 5000 + b"\r\n.\r\n")
        self.assertEqual(code, 552, lines)
        self.assertIn("5.3.4", lines[0])
        c.expect("NOOP", 250)
        self.assertEqual(self.gw.messages(), [])

    def test_recipient_limit(self):
        c = self.connect("starttls", version="1.3")
        c.expect("MAIL FROM:<a@example.com>", 250)
        for i in range(3):
            c.expect("RCPT TO:<r%d@example.com>" % i, 250)
        self.assertEqual(c.cmd("RCPT TO:<r4@example.com>"), (452, ["452 4.5.3 Error: too many recipients"]))

    def test_connections_per_ip_limit(self):
        # The harness's readiness probe is a connection too: let the gateway see it close.
        time.sleep(0.3)
        held = []
        for _ in range(5):
            c = SmtpConn(self.gw.ports["starttls"])
            self.assertEqual(c.read_reply()[0], 220)
            held.append(c)
        extra = SmtpConn(self.gw.ports["starttls"])
        code, lines = extra.read_reply()
        self.assertEqual(code, 421)
        self.assertIn("4.7.0", lines[0])
        self.assertTrue(extra.closed())
        held.pop().cmd("QUIT")
        time.sleep(0.3)
        again = SmtpConn(self.gw.ports["starttls"])
        self.assertEqual(again.read_reply()[0], 220)

    def test_handshake_timeout(self):
        c = SmtpConn(self.gw.ports["starttls"])
        c.read_reply()
        c.expect("EHLO a.test", 250)
        c.expect("STARTTLS", 220)
        c.send(b"\x16\x03\x01\x00")  # half a TLS record header, then silence
        start = time.time()
        self.assertTrue(c.closed(timeout=5))
        self.assertLess(time.time() - start, 4)

    def test_command_timeout(self):
        c = self.connect("starttls", version="1.3")
        c.sock.settimeout(30)  # longer than the server's 10 s, or the client gives up first
        start = time.time()
        code, lines = c.read_reply()
        self.assertEqual(code, 421)
        self.assertIn("4.4.2", lines[0])
        self.assertGreaterEqual(time.time() - start, 9)
        self.assertTrue(c.closed())

    def test_bare_lf_normalized_by_default(self):
        c = self.connect("starttls", version="1.3")
        code, _ = send_message(c, "a@example.com", ["b@example.com"], b"Subject: lf\n\nbody\n.\r\n.\r\n")
        self.assertEqual(code, 250)
        self.assertTrue(self.gw.messages()[0][0].endswith(b"Subject: lf\r\n\r\nbody\r\n.\r\n"))


class TotalConnectionsTest(GatewayTestCase):
    overrides = {"limits": {"max_connections": 3, "max_connections_per_ip": 100,
                            "timeouts_s": {"data_block": 10}}}

    def test_total_connection_limit(self):
        time.sleep(0.3)  # the readiness probe's connection must be gone first
        held = [SmtpConn(self.gw.ports["starttls"]) for _ in range(3)]
        for c in held:
            self.assertEqual(c.read_reply()[0], 220)
        extra = SmtpConn(self.gw.ports["legacy"])
        code, lines = extra.read_reply()
        self.assertEqual(code, 421)
        self.assertEqual(lines, ["421 4.7.0 gw.test Error: too many connections"])
        self.assertTrue(extra.closed())

    def test_data_timeout(self):
        c = self.connect("starttls", version="1.2")
        c.expect("MAIL FROM:<a@example.com>", 250)
        c.expect("RCPT TO:<b@example.com>", 250)
        c.expect("DATA", 354)
        c.send("Subject: stalled\r\n\r\nhalf a message")
        c.sock.settimeout(30)  # longer than the server's 10 s, or the client gives up first
        start = time.time()
        code, lines = c.read_reply()
        self.assertEqual(code, 421)
        self.assertIn("4.4.2", lines[0])
        self.assertGreaterEqual(time.time() - start, 9)
        self.assertTrue(c.closed())
        self.assertEqual(self.gw.messages(), [], "a message cut by a timeout is never delivered")


class BareLfRejectTest(GatewayTestCase):
    overrides = {"smtp": {"bare_lf": "reject"}}

    def test_bare_lf_rejected(self):
        c = self.connect("starttls", version="1.3")
        code, lines = send_message(c, "a@example.com", ["b@example.com"], b"Subject: lf\n\nbody\r\n.\r\n")
        self.assertEqual(code, 550, lines)
        self.assertIn("5.5.2", lines[0])
        c.expect("NOOP", 250)
        self.assertEqual(self.gw.messages(), [])


if __name__ == "__main__":
    unittest.main()
