"""The PROXY protocol front (SPEC section 3, listeners[].proxy_protocol): raw v1 and v2 headers
from Python, a peer outside `trusted` refused, bad and missing headers closed, and the address in
the header driving everything that uses the client address (the spool's and the trace's
client_ip, the Received line, the report, exceptions by IP, per-IP limits, XCLIENT to the
backend). Then a real HAProxy (/usr/sbin/haproxy) with deploy/haproxy/haproxy.cfg rendered for
loopback in front of the gateway (haproxy_rig.py, shared with test_cluster.py): mail through it
with STARTTLS and implicit TLS, the real client address seen by the gateway, and the gateway
marked down by HAProxy's /healthz check while it drains.

Loopback addresses play the parts: 127.0.0.1 is the load balancer (the only trusted peer),
127.0.0.5 and 127.0.0.6 the real clients named in headers, 127.0.0.9 a stranger."""

import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import time
import unittest

import haproxy_rig
import mta
from harness import BIN, Gateway, SmtpConn, client_context, send_message

LB = "127.0.0.1"
CLIENT = "127.0.0.5"
OTHER = "127.0.0.6"
STRANGER = "127.0.0.9"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
BODY = b"Subject: via proxy\r\n\r\nhello\r\n.\r\n"


def v1(client, port, server="127.0.0.1", server_port=25):
    return ("PROXY TCP4 %s %s %d %d\r\n" % (client, server, port, server_port)).encode()


def v2(client, port, server="127.0.0.1", server_port=25, tlvs=b""):
    block = socket.inet_aton(client) + socket.inet_aton(server) + struct.pack(">HH", port, server_port)
    payload = block + tlvs
    return V2_SIG + b"\x21\x11" + struct.pack(">H", len(payload)) + payload


def v2_local():
    return V2_SIG + b"\x20\x00\x00\x00"


def proxy_listeners(ports, trusted=(LB + "/32",)):
    return haproxy_rig.proxy_listeners(ports, trusted)


def proxy_gateway(overrides=None, tenants=None, backend=None):
    gw = Gateway(overrides, admin=True, tenants=tenants)
    gw.config["listeners"] = proxy_listeners(gw.ports)
    gw.config["trace"] = {"events_jsonl": os.path.join(gw.dir, "events.jsonl")}
    if backend:
        gw.config["backend"] = backend
    gw.write_config()
    # The direct listener answers at once: the proxy ones wait for a header.
    return gw.start(wait_port=gw.ports["plain"])


def events(gw, kind):
    """The trace records of the proxy listeners (the start-up probe uses the direct one)."""
    path = os.path.join(gw.dir, "events.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [e for e in map(json.loads, filter(None, f.read().splitlines()))
                if e["type"] == kind and e["listener"] != "direct"]


def wait_for(predicate, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def metric(gw, name, labels):
    status, text, _ = gw.api("/metrics")
    assert status == 200, text
    want = name + "{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    raise AssertionError("no %s in /metrics" % want)


def starttls_session(port, header, source=LB, ehlo="client.test", version=None):
    """A STARTTLS session that begins with `header` from `source`, up to the post-TLS EHLO."""
    c = SmtpConn(port, source=source)
    c.send(header)
    code, lines = c.read_reply()
    assert code == 220, lines
    c.expect("EHLO " + ehlo, 250)
    c.expect("STARTTLS", 220)
    c.starttls_now(version)
    c.expect("EHLO " + ehlo, 250)
    return c


class TlsOverBio:
    """Implicit TLS whose first flight goes out in one segment with the PROXY header, as a load
    balancer forwards a ClientHello that arrived with the connection."""

    def __init__(self, port, header, source=LB):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                             source_address=(source, 0))
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = client_context().wrap_bio(self.inc, self.out)
        self.buf = b""
        self.done = False
        self.handshake()
        self.sock.sendall(header + self.out.read())  # header and ClientHello together
        for _ in range(50):
            if self.done:
                break
            self.pump()
            self.handshake()
        assert self.done, "TLS handshake did not complete"
        rest = self.out.read()
        if rest:
            self.sock.sendall(rest)

    def handshake(self):
        try:
            self.tls.do_handshake()
            self.done = True
        except ssl.SSLWantReadError:
            pass

    def pump(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("closed during TLS")
        self.inc.write(chunk)

    def send(self, text):
        self.tls.write(text.encode() if isinstance(text, str) else text)
        self.sock.sendall(self.out.read())

    def read_reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                try:
                    self.buf += self.tls.read(65536)
                except ssl.SSLWantReadError:
                    self.pump()
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def expect(self, text, code):
        self.send(text + "\r\n")
        got, lines = self.read_reply()
        assert got == code, (text, lines)
        return lines

    def close(self):
        self.sock.close()


class ProxyFrontTest(unittest.TestCase):
    def setUp(self):
        self.gw = proxy_gateway()

    def tearDown(self):
        code = self.gw.stop()
        self.assertEqual(code, 0, self.gw.output()[-3000:])

    def deliver(self, c):
        code, lines = send_message(c, "sender@example.com", ["rcpt@example.com"], BODY)
        self.assertEqual(code, 250, lines)
        c.expect("QUIT", 221)
        c.close()

    def test_v1_header_names_the_client_everywhere(self):
        c = starttls_session(self.gw.ports["starttls"], v1(CLIENT, 40001))
        self.deliver(c)
        (eml, meta), = wait_for(self.gw.messages, what="the spooled message")
        self.assertEqual(meta["session"]["client_ip"], CLIENT)
        self.assertEqual(meta["session"]["client_port"], 40001)
        received = eml.split(b"Subject:")[0]  # the gateway's Received line, however folded
        self.assertIn(("[%s]" % CLIENT).encode(), received)
        self.assertNotIn(b"[127.0.0.1]", received)
        sessions = wait_for(lambda: events(self.gw, "session"), what="the session trace")
        self.assertEqual(sessions[0]["client_ip"], CLIENT)
        self.assertEqual(sessions[0]["client_port"], 40001)
        self.assertEqual(events(self.gw, "message")[0]["client_ip"], CLIENT)
        # The report: the client inventory credits the message to the header's address (the
        # load balancer's address only shows for the harness's start-up probe, 0 messages).
        status, body, _ = self.gw.api("/api/v1/clients?since=1d")
        self.assertEqual(status, 200, body)
        self.assertEqual([c["client_ip"] for c in body["clients"] if c["messages"]], [CLIENT], body)
        self.assertIn("PROXY v1 from [127.0.0.1]", self.gw.wait_output("PROXY v1 from [127.0.0.1]"))

    def test_v2_header_then_starttls_and_early_bytes_in_one_segment(self):
        # The header and the first command in one write: the command is the session's.
        c = SmtpConn(self.gw.ports["starttls"], source=LB)
        c.send(v2(CLIENT, 40002, tlvs=b"\x04\x00\x03abc") + b"EHLO early.test\r\n")
        self.assertEqual(c.read_reply()[0], 220)
        self.assertEqual(c.read_reply()[0], 250)
        c.expect("STARTTLS", 220)
        c.starttls_now()
        c.expect("EHLO early.test", 250)
        self.deliver(c)
        (_, meta), = wait_for(self.gw.messages, what="the spooled message")
        self.assertEqual(meta["session"]["client_ip"], CLIENT)

    def test_v2_header_before_the_clienthello_on_implicit_tls(self):
        t = TlsOverBio(self.gw.ports["implicit"], v2(CLIENT, 40003))
        self.assertEqual(t.read_reply()[0], 220)
        t.expect("EHLO implicit.test", 250)
        t.expect("MAIL FROM:<sender@example.com>", 250)
        t.expect("RCPT TO:<rcpt@example.com>", 250)
        t.expect("DATA", 354)
        t.send(BODY)
        self.assertEqual(t.read_reply()[0], 250)
        t.close()
        (_, meta), = wait_for(self.gw.messages, what="the spooled message")
        self.assertEqual(meta["session"]["client_ip"], CLIENT)
        self.assertEqual(meta["session"]["listener"], "pp-implicit")

    def test_v2_local_and_v1_unknown_keep_the_connection_address(self):
        for header in (v2_local(), b"PROXY UNKNOWN\r\n"):
            c = starttls_session(self.gw.ports["starttls"], header)
            c.expect("QUIT", 221)
            c.close()
        sessions = wait_for(lambda: len(events(self.gw, "session")) == 2 and events(self.gw, "session"),
                            what="two session traces")
        self.assertEqual([s["client_ip"] for s in sessions], [LB, LB])
        self.assertIn("PROXY v2 LOCAL", self.gw.wait_output("PROXY v2 LOCAL"))
        self.assertIn("PROXY v1 UNKNOWN", self.gw.wait_output("PROXY v1 UNKNOWN"))

    def test_untrusted_peer_is_refused(self):
        c = SmtpConn(self.gw.ports["starttls"], source=STRANGER)
        c.send(v1(CLIENT, 40004))
        self.assertTrue(c.closed(), "an untrusted peer must be closed")
        self.assertEqual(c.buf, b"", "no greeting for an untrusted peer")
        c.close()
        self.assertIn("refused [%s]" % STRANGER, self.gw.wait_output("refused [%s]" % STRANGER))
        self.assertIn("not a trusted PROXY protocol peer", self.gw.wait_output("not a trusted PROXY protocol peer"))
        self.assertEqual(metric(self.gw, "smtpgate_connections_refused_total",
                                {"reason": "proxy_untrusted"}), 1)
        # A listener without proxy_protocol takes the same stranger as a client.
        d = SmtpConn(self.gw.ports["plain"], source=STRANGER)
        self.assertEqual(d.read_reply()[0], 220)
        d.close()

    def test_sighup_changes_the_trusted_networks(self):
        for l in self.gw.config["listeners"]:
            if "proxy_protocol" in l:
                l["proxy_protocol"]["trusted"] = ["127.0.0.2/32"]
        self.gw.write_config()
        self.gw.signal(signal.SIGHUP)
        wait_for(lambda: "reload done" in self.gw.output(), what="the reload")
        c = SmtpConn(self.gw.ports["starttls"], source=LB)
        c.send(v1(CLIENT, 40005))
        self.assertTrue(c.closed(), "no longer trusted after the reload")
        self.assertEqual(c.buf, b"")
        c.close()
        c = starttls_session(self.gw.ports["starttls"], v1(CLIENT, 40006), source="127.0.0.2")
        c.expect("QUIT", 221)
        c.close()
        self.assertIn("refused [%s]" % LB, self.gw.wait_output("refused [%s]" % LB))

    def test_bad_headers_are_closed_with_a_log_line(self):
        cases = [b"EHLO client.test\r\n",                       # no header at all
                 b"PROXY TCP4 127.0.0.5 127.0.0.1 99999 25\r\n",  # port out of range
                 b"PROXY TCP4 " + b"1" * 200,                     # v1 over 107 bytes
                 V2_SIG + b"\x21\x11\xff\xff" + b"\x00" * 64]     # v2 over the cap
        for raw in cases:
            c = SmtpConn(self.gw.ports["starttls"], source=LB)
            c.send(raw)
            self.assertTrue(c.closed(), raw)
            self.assertEqual(c.buf, b"", raw)
            c.close()
        out = self.gw.wait_output("bad PROXY protocol header: v2 header of 65535 bytes")
        self.assertIn("bad PROXY protocol header: not a PROXY protocol header", out)
        self.assertIn("bad PROXY protocol header: v1 header with a port that is not 0..65535", out)
        self.assertIn("bad PROXY protocol header: v1 header longer than 107 bytes", out)
        self.assertIn("bad PROXY protocol header: v2 header of 65535 bytes", out)
        self.assertEqual(metric(self.gw, "smtpgate_connections_refused_total",
                                {"reason": "proxy_header_invalid"}), len(cases))
        self.assertTrue(self.gw.messages() == [] and events(self.gw, "session") == [])


class ProxyConfigTest(unittest.TestCase):
    def test_check_config_and_run_refuse_bad_trusted_lists(self):
        gw = Gateway()
        gw.config["listeners"] = proxy_listeners(gw.ports)
        gw.config["listeners"][0]["proxy_protocol"] = {"trusted": []}
        gw.config["listeners"][1]["proxy_protocol"] = {"trusted": ["10.0.0.0/8", "10.0.0.0/33"]}
        gw.config["listeners"][2]["proxy_protocol"] = {"trusted": ["gw.test"]}
        gw.write_config()
        want = ["/listeners/0/proxy_protocol/trusted: must list at least one network (CIDR) of "
                "the load balancers",
                '/listeners/1/proxy_protocol/trusted/1: "10.0.0.0/33" is not an IPv4 or IPv6 '
                'network (CIDR such as "10.0.0.0/8")',
                '/listeners/2/proxy_protocol/trusted/0: "gw.test" is not an IPv4 or IPv6 '
                'network (CIDR such as "10.0.0.0/8")']
        check = subprocess.run([BIN, "check-config", gw.config_path], capture_output=True,
                               text=True, timeout=30)
        self.assertEqual(check.returncode, 1)
        for line in want:
            self.assertIn(line, check.stdout + check.stderr)
        run = subprocess.run([BIN, "run", "--config", gw.config_path], capture_output=True,
                             text=True, timeout=30)
        self.assertNotEqual(run.returncode, 0)
        for line in want:
            self.assertIn(line, run.stdout + run.stderr)


class ProxyHeaderDeadlineTest(unittest.TestCase):
    def test_a_peer_that_sends_no_header_is_closed_at_the_handshake_timeout(self):
        gw = proxy_gateway({"limits": {"timeouts_s": {"handshake": 1}}})
        try:
            c = SmtpConn(gw.ports["implicit"], source=LB)
            started = time.time()
            self.assertTrue(c.closed(timeout=8))
            self.assertLess(time.time() - started, 6)
            c.close()
            self.assertIn("no complete PROXY protocol header within 1 s", gw.wait_output("no complete PROXY protocol header within 1 s"))
        finally:
            self.assertEqual(gw.stop(), 0, gw.output()[-3000:])


class ProxyPolicyTest(unittest.TestCase):
    """Exceptions by IP and per-IP limits apply to the address in the header."""

    def test_exception_by_ip_applies_to_the_header_address(self):
        tenants = [{"id": "contoso", "domains": ["contoso.com"], "allow_legacy_tls_clients": False,
                    "exceptions": [{"client": CLIENT + "/32", "reason": "scanner"}]}]
        gw = proxy_gateway(tenants=tenants)
        try:
            for client, want in ((CLIENT, 250), (OTHER, 450)):
                c = starttls_session(gw.ports["legacy"], v2(client, 40010), version="1.0")
                c.expect("MAIL FROM:<scanner@contoso.com>", 250)
                code, lines = c.cmd("RCPT TO:<boss@contoso.com>")
                self.assertEqual(code, want, (client, lines))
                if want == 450:
                    self.assertIn("4.7.66", lines[0])
                c.expect("QUIT", 221)
                c.close()
            self.assertRegex(gw.output(), r"decision D8 at RCPT .*client=\[%s\]" % re.escape(CLIENT))
            self.assertRegex(gw.output(), r"decision D6 at RCPT .*client=\[%s\]" % re.escape(OTHER))
        finally:
            self.assertEqual(gw.stop(), 0, gw.output()[-3000:])

    def test_per_ip_limit_counts_the_header_address(self):
        gw = proxy_gateway({"limits": {"max_connections_per_ip": 2}})
        held = []
        try:
            # Three connections from the one load balancer: only the header's client counts.
            for port in (40020, 40021):
                c = SmtpConn(gw.ports["starttls"], source=LB)
                c.send(v1(CLIENT, port))
                self.assertEqual(c.read_reply()[0], 220)
                held.append(c)
            third = SmtpConn(gw.ports["starttls"], source=LB)
            third.send(v1(CLIENT, 40022))
            code, lines = third.read_reply()
            self.assertEqual(code, 421, lines)
            self.assertIn("too many connections from your IP", lines[0])
            third.close()
            other = SmtpConn(gw.ports["starttls"], source=LB)
            other.send(v1(OTHER, 40023))
            self.assertEqual(other.read_reply()[0], 220)
            held.append(other)
            self.assertIn("refused [%s]:40022" % CLIENT, gw.wait_output("refused [%s]:40022" % CLIENT))
            self.assertEqual(metric(gw, "smtpgate_connections_refused_total",
                                    {"reason": "max_connections_per_ip"}), 1)
        finally:
            for c in held:
                c.close()
            self.assertEqual(gw.stop(), 0, gw.output()[-3000:])


class ProxyToBackendTest(unittest.TestCase):
    def test_xclient_carries_the_header_address_to_postfix(self):
        reason = mta.postfix_available()
        if reason:
            raise AssertionError(reason)
        with mta.Postfix() as pf:  # started by the with statement
            gw = proxy_gateway(backend={"smtp": "127.0.0.1:%d" % pf.port, "handoff": "xclient"})
            try:
                c = starttls_session(gw.ports["starttls"], v2(CLIENT, 40030))
                code, lines = send_message(c, "s@example.com", ["r@example.com"], BODY)
                self.assertEqual(code, 250, lines)
                c.expect("QUIT", 221)
                c.close()
                pf.wait_for_log(r"client=unknown\[%s\]" % re.escape(CLIENT))
            finally:
                self.assertEqual(gw.stop(), 0, gw.output()[-3000:])


# --- HAProxy in front (deploy/haproxy/haproxy.cfg) -------------------------------------------

class HaproxyFrontTest(unittest.TestCase):
    """deploy/haproxy/haproxy.cfg run by the real HAProxy (tests/integration/haproxy_rig.py):
    gw1 of the file is this gateway, gw2 and gw3 are dropped."""

    def setUp(self):
        self.gw = Gateway({"limits": {"timeouts_s": {"drain": 30}}}, admin=True)
        self.gw.config["listeners"] = proxy_listeners(self.gw.ports)
        self.gw.config["trace"] = {"events_jsonl": os.path.join(self.gw.dir, "events.jsonl")}
        self.gw.write_config()
        self.gw.start(wait_port=self.gw.ports["plain"])
        self.addCleanup(self.gw.stop, 40)
        self.haproxy = haproxy_rig.Haproxy({"gw1": haproxy_rig.server_ports(self.gw)})
        self.addCleanup(self.haproxy.close)
        self.haproxy.start()
        self.front = self.haproxy.ports

    def server_status(self, backend):
        status = self.haproxy.server_status(backend, "gw1")
        return status and status.split(" ")[0]

    def test_mail_through_haproxy_keeps_the_client_address_and_drain_marks_it_down(self):
        # STARTTLS on the MX front (25), from the "real client" 127.0.0.5.
        c = SmtpConn(self.front[25], source=CLIENT)
        self.assertEqual(c.read_reply()[0], 220)
        c.expect("EHLO client.test", 250)
        c.expect("STARTTLS", 220)
        c.starttls_now()
        c.expect("EHLO client.test", 250)
        code, lines = send_message(c, "a@example.com", ["b@example.com"], BODY)
        self.assertEqual(code, 250, lines)
        c.expect("QUIT", 221)
        c.close()
        # Implicit TLS on 465, from another client.
        t = SmtpConn(self.front[465], implicit=True, source=OTHER)
        self.assertEqual(t.read_reply()[0], 220)
        t.expect("EHLO client.test", 250)
        code, lines = send_message(t, "a@example.com", ["b@example.com"], BODY)
        self.assertEqual(code, 250, lines)
        t.expect("QUIT", 221)
        t.close()
        messages = wait_for(lambda: len(self.gw.messages()) == 2 and self.gw.messages(),
                            what="two messages")
        seen = sorted((m["session"]["listener"], m["session"]["client_ip"]) for _, m in messages)
        self.assertEqual(seen, [("pp-implicit", OTHER), ("pp-starttls", CLIENT)])
        self.assertIn("PROXY v2 from [127.0.0.1]", self.gw.wait_output("PROXY v2 from [127.0.0.1]"))

        # Drain: a session stays open so the gateway keeps running; /healthz turns 503 and
        # HAProxy marks every server of the gateway down.
        held = SmtpConn(self.front[587], source=CLIENT)
        self.assertEqual(held.read_reply()[0], 220)
        self.gw.signal(signal.SIGTERM)
        try:
            wait_for(lambda: self.server_status("smtpgate_mx") == "DOWN", timeout=15,
                     what="HAProxy to mark the draining gateway DOWN")
            # Each backend checks on its own schedule: the others follow within a check or two.
            wait_for(lambda: self.server_status("smtpgate_submissions") == "DOWN" and
                     self.server_status("smtpgate_submission") == "DOWN", timeout=5,
                     what="HAProxy to mark the gateway DOWN in every backend")
            self.assertEqual(self.server_status("smtpgate_submissions"), "DOWN")
            status, body, _ = self.gw.api("/healthz", token=False)
            self.assertEqual(status, 503, body)
        finally:
            held.close()
        self.assertEqual(self.gw.proc.wait(timeout=40), 0)


if __name__ == "__main__":
    unittest.main()
