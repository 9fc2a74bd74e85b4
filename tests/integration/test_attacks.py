"""The attack suite (issue 7, part 1): every abuse limit reached with real sockets on loopback,
and after each attack the gateway's memory (VmRSS) and open file descriptors back at their
baseline. Limits are set small so that each test is quick; each attacker appears from its own
127.0.0.X address so that per-address rates never mix between tests.

Limits and their replies:
  new_connections_per_ip_per_minute     421 4.7.0 ... Too many connections from your address
  new_tls_handshakes_per_ip_per_minute  454 4.7.0 TLS not available (implicit TLS: closed)
  timeouts_s.command                    421 4.4.2 for a line trickled one byte at a time
  min_data_rate_bps, data_rate_window   421 4.4.2 Data transfer too slow (slowloris in DATA)
  timeouts_s.data_total                 421 4.4.2 Data transfer too slow (a DATA that never ends)
  timeouts_s.write                      closed (a client that never reads its replies)
  error_delay_ms                        each error reply after the 3rd pauses the session
  client XCLIENT / XFORWARD / PROXY     550 5.7.1 Command not allowed (counted as errors)
  HTTP / ALPACA lines                   421 4.7.0 and closed at once
"""

import os
import socket
import ssl
import time
import unittest

import mta
from harness import SANITIZER, Gateway, GatewayTestCase, SmtpConn, client_context, send_message

RSS_TOLERANCE_KB = 2048  # allocator caching: freed memory is not always returned to the OS
WARMUP_SOURCE = "127.0.0.250"


def proc_stats(pid):
    """(VmRSS in kB, number of open file descriptors) of a process."""
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def raw_socket(port, source, rcvbuf=None, timeout=10):
    """A plain TCP client socket from `source`; a small receive buffer makes a client that
    reads nothing fill up quickly."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


class AttackTestCase(GatewayTestCase):
    """A gateway with small limits; setUp records the baseline after a warm-up session that
    touches every code path once (TLS contexts, the spool, the thread pool), tearDown-side
    checks are explicit: each test calls assertBackToBaseline() once its attack is over."""

    limits = {}
    extra = {}

    def setUp(self):
        overrides = {"trace": {"store": "none"}, "limits": {"timeouts_s": {"drain": 2}}}
        overrides["limits"].update({k: v for k, v in self.limits.items() if k != "timeouts_s"})
        overrides["limits"]["timeouts_s"].update(self.limits.get("timeouts_s", {}))
        overrides.update(self.extra)
        self.overrides = overrides
        super().setUp()
        self.warm_up()
        self.baseline = self.settle()

    def warm_up(self):
        for port_name in ("starttls", "implicit"):
            c = self.connect(port_name, version="1.3", source=WARMUP_SOURCE)
            code, _ = send_message(c, "a@example.com", ["b@example.com"],
                                   b"Subject: warm-up\r\n\r\nbody\r\n.\r\n")
            self.assertEqual(code, 250)
            self.assertEqual(c.cmd("BOGUS")[0], 500)
            c.expect("QUIT", 221)
            c.close()
        c = SmtpConn(self.gw.ports["plain"], source=WARMUP_SOURCE)
        c.read_reply()
        c.expect("EHLO warm.test", 250)
        c.expect("QUIT", 221)
        c.close()

    def settle(self, want_fds=None, timeout=15):
        """Waits until the gateway's fd count is stable (or equal to want_fds)."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            time.sleep(0.3)
            stats = proc_stats(self.gw.proc.pid)
            if want_fds is not None and stats[1] == want_fds:
                time.sleep(0.3)
                return proc_stats(self.gw.proc.pid)
            if want_fds is None and last is not None and stats[1] == last[1]:
                return stats
            last = stats
        return proc_stats(self.gw.proc.pid)

    def assertBackToBaseline(self):
        rss0, fds0 = self.baseline
        rss, fds = self.settle(want_fds=fds0)
        self.assertEqual(fds, fds0, "open file descriptors after the attack (baseline %d)" % fds0)
        if not SANITIZER:  # see harness.SANITIZER
            self.assertLessEqual(rss - rss0, RSS_TOLERANCE_KB,
                                 "VmRSS grew from %d kB to %d kB" % (rss0, rss))

    def wait_for_log(self, text, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.gw.output():
                return True
            time.sleep(0.2)
        return False


class NewConnectionRateTest(AttackTestCase):
    limits = {"new_connections_per_ip_per_minute": 5}

    def test_new_connections_per_ip_per_minute(self):
        src = "127.0.0.21"
        for _ in range(5):
            c = SmtpConn(self.gw.ports["starttls"], source=src)
            self.assertEqual(c.read_reply()[0], 220)
            c.expect("QUIT", 221)
            c.close()
        # The sixth new connection within the minute: refused, whichever listener.
        c = SmtpConn(self.gw.ports["legacy"], source=src)
        code, lines = c.read_reply()
        self.assertEqual(lines, ["421 4.7.0 gw.test Too many connections from your address, "
                                 "try again later"])
        self.assertTrue(c.closed())
        c.close()
        # Implicit TLS cannot carry a 421: closed before any handshake.
        with self.assertRaises((ssl.SSLError, OSError, EOFError)):
            c = SmtpConn(self.gw.ports["implicit"], implicit=True, source=src, timeout=5)
            c.read_reply()
        # A flood of attempts is refused as fast as it comes and holds nothing.
        flood = []
        for _ in range(50):
            s = raw_socket(self.gw.ports["starttls"], src, timeout=5)
            flood.append(s)
        for s in flood:
            data = s.recv(200)
            self.assertTrue(data.startswith(b"421 4.7.0"), data)
            s.close()
        # Another address is not affected.
        c = SmtpConn(self.gw.ports["starttls"], source="127.0.0.22")
        self.assertEqual(c.read_reply()[0], 220)
        c.expect("QUIT", 221)
        c.close()
        self.assertIn("too many new connections from this address per minute", self.gw.wait_output("too many new connections from this address per minute"))
        self.assertBackToBaseline()


class TlsHandshakeRateTest(AttackTestCase):
    limits = {"new_tls_handshakes_per_ip_per_minute": 2}

    def test_new_tls_handshakes_per_ip_per_minute(self):
        src = "127.0.0.31"
        for _ in range(2):
            c = self.connect("starttls", version="1.3", source=src)
            c.expect("QUIT", 221)
            c.close()
        # The third STARTTLS within the minute: 454, and the session stays in plaintext,
        # where this require_tls listener refuses MAIL.
        c = SmtpConn(self.gw.ports["starttls"], source=src)
        self.assertEqual(c.read_reply()[0], 220)
        c.expect("EHLO a.test", 250)
        self.assertEqual(c.cmd("STARTTLS"),
                         (454, ["454 4.7.0 TLS not available: too many TLS handshakes from your "
                                "address"]))
        self.assertEqual(c.cmd("MAIL FROM:<a@example.com>")[0], 530)
        c.expect("NOOP", 250)
        c.expect("QUIT", 221)
        c.close()
        # Implicit TLS over the rate: closed before the handshake.
        with self.assertRaises((ssl.SSLError, OSError, EOFError)):
            c = SmtpConn(self.gw.ports["implicit"], implicit=True, source=src, timeout=5)
            c.read_reply()
        # Many STARTTLS attempts from the same address: each one refused, nothing held.
        held = []
        for _ in range(10):
            c = SmtpConn(self.gw.ports["legacy"], source=src)
            c.read_reply()
            c.expect("EHLO a.test", 250)
            self.assertEqual(c.cmd("STARTTLS")[0], 454)
            held.append(c)
        for c in held:
            c.close()
        # Another address still gets TLS.
        c = self.connect("implicit", version="1.3", source="127.0.0.32")
        c.expect("QUIT", 221)
        c.close()
        self.assertIn("too many TLS handshakes from this address per minute", self.gw.wait_output("too many TLS handshakes from this address per minute"))
        self.assertBackToBaseline()


class CommandTrickleTest(AttackTestCase):
    limits = {"timeouts_s": {"command": 10}}

    def test_command_line_trickled_byte_by_byte_is_cut(self):
        c = SmtpConn(self.gw.ports["plain"], source="127.0.0.41")
        self.assertEqual(c.read_reply()[0], 220)
        c.expect("EHLO trickle.test", 250)
        start = time.time()
        c.sock.settimeout(1)
        got = b""
        # One byte a second, never a line end: every read is new input, none is a line.
        for i in range(25):
            try:
                c.sock.sendall(b"NOOP-AND-SO-ON"[i % 14:i % 14 + 1])
            except OSError:
                break
            try:
                data = c.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            got += data
            if not data or b"\r\n" in got:
                break
        elapsed = time.time() - start
        self.assertTrue(got.startswith(b"421 4.4.2"), got)
        self.assertGreaterEqual(elapsed, 9)
        self.assertLess(elapsed, 18)
        self.assertTrue(c.closed())
        c.close()
        self.assertBackToBaseline()


class DataRateTest(AttackTestCase):
    limits = {"min_data_rate_bps": 1000, "timeouts_s": {"data_rate_window": 2}}

    def test_slowloris_in_data_is_cut(self):
        c = self.connect("starttls", version="1.3", source="127.0.0.51")
        c.expect("MAIL FROM:<a@example.com>", 250)
        c.expect("RCPT TO:<b@example.com>", 250)
        c.expect("DATA", 354)
        c.send("Subject: slow\r\n\r\n")
        start = time.time()
        c.sock.settimeout(0.5)
        got = b""
        for _ in range(40):  # one byte every half second: 2 B/s against 1000 B/s
            try:
                c.send(b"x")
            except OSError:
                break
            try:
                data = c.sock.recv(4096)
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                break
            got += data
            if not data or b"\r\n" in got:
                break
        elapsed = time.time() - start
        self.assertTrue(got.startswith(b"421 4.4.2 gw.test Data transfer too slow"), got)
        self.assertLess(elapsed, 12)
        self.assertTrue(c.closed())
        c.close()
        self.assertEqual(len(self.gw.messages()), 2, "only the warm-up messages were delivered")
        self.assertIn("DATA slower than min_data_rate_bps", self.gw.wait_output("DATA slower than min_data_rate_bps"))
        self.assertBackToBaseline()

    def test_fast_data_passes(self):
        c = self.connect("starttls", version="1.3", source="127.0.0.52")
        body = b"Subject: fast\r\n\r\n" + (b"y" * 998 + b"\r\n") * 3000 + b".\r\n"
        code, lines = send_message(c, "a@example.com", ["b@example.com"], body)
        self.assertEqual(code, 250, lines)
        c.expect("QUIT", 221)
        c.close()
        self.assertBackToBaseline()


class DataRateRelayTest(unittest.TestCase):
    """Relay mode: a message cut for its pace is never completed upstream."""

    def test_slowloris_never_reaches_the_backend(self):
        sink = mta.SmtpSink(None, dump=True)
        sink.start()
        self.addCleanup(sink.cleanup)
        self.addCleanup(sink.stop)
        gw = Gateway({"trace": {"store": "none"},
                      "limits": {"min_data_rate_bps": 1000,
                                 "timeouts_s": {"data_rate_window": 2, "drain": 2}}})
        gw.config["backend"] = {"smtp": "127.0.0.1:%d" % sink.port, "handoff": "none"}
        gw.write_config()
        gw.start()
        self.addCleanup(lambda: self.assertEqual(gw.stop(), 0))

        def session():
            c = SmtpConn(gw.ports["starttls"], source="127.0.0.53")
            self.assertEqual(c.read_reply()[0], 220)
            c.expect("EHLO a.test", 250)
            c.expect("STARTTLS", 220)
            c.starttls_now("1.3")
            c.expect("EHLO a.test", 250)
            c.expect("MAIL FROM:<a@example.com>", 250)
            c.expect("RCPT TO:<b@example.com>", 250)
            c.expect("DATA", 354)
            return c

        c = session()
        c.send("Subject: ok\r\n\r\nfine\r\n.\r\n")
        self.assertEqual(c.read_reply()[0], 250)
        c.close()
        deadline = time.time() + 10
        while len(sink.dumps()) < 1 and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(len(sink.dumps()), 1, "the sink records a completed message")

        c = session()
        c.send("Subject: slow\r\n\r\n")
        c.sock.settimeout(0.5)
        got = b""
        for _ in range(40):
            try:
                c.send(b"x")
                data = c.sock.recv(4096)
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                break
            got += data
            if not data or b"\r\n" in got:
                break
        self.assertTrue(got.startswith(b"421 4.4.2 gw.test Data transfer too slow"), got)
        c.close()
        time.sleep(1)
        self.assertEqual(len(sink.dumps()), 1, "the slow message never completed upstream")


class DataTotalTest(AttackTestCase):
    limits = {"min_data_rate_bps": 10, "timeouts_s": {"data_total": 10, "data_block": 10}}

    def test_data_phase_longer_than_data_total_is_cut(self):
        c = self.connect("starttls", version="1.2", source="127.0.0.55")
        c.expect("MAIL FROM:<a@example.com>", 250)
        c.expect("RCPT TO:<b@example.com>", 250)
        c.expect("DATA", 354)
        start = time.time()
        c.sock.settimeout(0.2)
        got = b""
        for _ in range(100):  # 25 B/s: above min_data_rate_bps, but it never ends
            try:
                c.send(b"abcd\n")
                data = c.sock.recv(4096)
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                break
            got += data
            if not data or b"\r\n" in got:
                break
        elapsed = time.time() - start
        self.assertTrue(got.startswith(b"421 4.4.2 gw.test Data transfer too slow"), got)
        self.assertGreaterEqual(elapsed, 9)
        self.assertLess(elapsed, 18)
        self.assertTrue(c.closed())
        c.close()
        self.assertEqual(len(self.gw.messages()), 2, "only the warm-up messages were delivered")
        self.assertIn("DATA longer than timeouts_s.data_total", self.gw.wait_output("DATA longer than timeouts_s.data_total"))
        self.assertBackToBaseline()


class WriteDeadlineTest(AttackTestCase):
    limits = {"timeouts_s": {"write": 5}}

    def test_client_that_never_reads_is_closed(self):
        rss0, _ = self.baseline
        s = raw_socket(self.gw.ports["plain"], "127.0.0.61", rcvbuf=4096, timeout=0.5)
        # Pipelined NOOPs, never a read: the replies pile up on the gateway's side. Sending
        # stops once nothing more goes out for 3 s (the gateway stopped reading from us).
        chunk = b"NOOP\r\n" * 10000
        sent = 0
        start = last_progress = time.time()
        while sent < 32 * 1024 * 1024 and time.time() - last_progress < 3 \
                and time.time() - start < 60:
            try:
                n = s.send(chunk[sent % len(chunk):] or chunk)
            except socket.timeout:
                continue
            except OSError:
                break  # already closed by the gateway
            sent += n
            last_progress = time.time()
        self.assertLess(sent, 32 * 1024 * 1024, "the gateway never stopped reading")
        peak = proc_stats(self.gw.proc.pid)[0]
        self.assertTrue(self.wait_for_log("write timeout", timeout=30),
                        "sent %d in %.1f s; %s" % (sent, time.time() - start,
                                                   self.gw.output()[-500:]))
        # Closed while we still hold our socket, unread.
        _, fds0 = self.baseline
        self.assertEqual(self.settle(want_fds=fds0)[1], fds0)
        if not SANITIZER:
            self.assertLess(peak - rss0, 16 * 1024, "replies queued without bound")
        s.close()
        self.assertBackToBaseline()


class TarpitTest(AttackTestCase):
    limits = {"error_delay_ms": 3000, "max_errors": 5}

    def test_errors_beyond_the_third_are_slowed_without_blocking_others(self):
        c = SmtpConn(self.gw.ports["plain"], source="127.0.0.71")
        self.assertEqual(c.read_reply()[0], 220)
        start = time.time()
        c.send("BOGUS1\r\nBOGUS2\r\nBOGUS3\r\nBOGUS4\r\nNOOP\r\n")
        times = []
        for _ in range(4):
            self.assertEqual(c.read_reply()[0], 500)
            times.append(time.time() - start)
        self.assertLess(times[3], 2, "errors up to the 4th are answered at once")
        # Meanwhile another client is served at once: the tarpit is a timer, not a sleep.
        other_start = time.time()
        other = SmtpConn(self.gw.ports["plain"], source="127.0.0.72")
        self.assertEqual(other.read_reply()[0], 220)
        other.expect("EHLO other.test", 250)
        other.expect("NOOP", 250)
        self.assertLess(time.time() - other_start, 2)
        other.expect("QUIT", 221)
        other.close()
        # The NOOP after the 4th error waits out the delay.
        c.sock.settimeout(10)
        self.assertEqual(c.read_reply()[0], 250)
        self.assertGreaterEqual(time.time() - start, 2.8)
        # The 5th error is max_errors: closed at once, as before.
        c.send("BOGUS5\r\n")
        self.assertEqual(c.read_reply()[0], 500)
        code, lines = c.read_reply()
        self.assertEqual(lines, ["421 4.7.0 gw.test Error: too many errors"])
        self.assertTrue(c.closed())
        c.close()
        self.assertBackToBaseline()


class SpoofingCommandsTest(AttackTestCase):
    limits = {"max_errors": 4}

    def test_client_xclient_xforward_proxy_are_refused(self):
        c = SmtpConn(self.gw.ports["plain"], source="127.0.0.81")
        # A PROXY header as the very first bytes on a listener without proxy_protocol.
        c.send("PROXY TCP4 192.0.2.66 192.0.2.1 4444 25\r\n")
        self.assertEqual(c.read_reply()[0], 220)
        self.assertEqual(c.read_reply(), (550, ["550 5.7.1 Command not allowed"]))
        c.expect("EHLO spoof.test", 250)
        self.assertEqual(c.cmd("XCLIENT ADDR=192.0.2.66 NAME=trusted.example"),
                         (550, ["550 5.7.1 Command not allowed"]))
        self.assertEqual(c.cmd("XFORWARD ADDR=192.0.2.66"),
                         (550, ["550 5.7.1 Command not allowed"]))
        # Counted as errors: the 4th closes the session.
        c.send("xclient LOGIN=admin\r\n")
        self.assertEqual(c.read_reply(), (550, ["550 5.7.1 Command not allowed"]))
        self.assertEqual(c.read_reply(), (421, ["421 4.7.0 gw.test Error: too many errors"]))
        self.assertTrue(c.closed())
        c.close()
        # Under TLS the same.
        c = self.connect("starttls", version="1.3", source="127.0.0.81")
        self.assertEqual(c.cmd("XCLIENT ADDR=192.0.2.66"), (550, ["550 5.7.1 Command not allowed"]))
        c.expect("QUIT", 221)
        c.close()
        self.assertNotIn("192.0.2.66]", self.gw.output())
        self.assertBackToBaseline()


class CrossProtocolTest(AttackTestCase):
    def test_http_lines_are_closed_at_once(self):
        for request in (b"GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n",
                        b"CONNECT gw.test:443 HTTP/1.1\r\n\r\n",
                        b"POST /form HTTP/1.1\r\nContent-Length: 4\r\n\r\nEHLO"):
            c = SmtpConn(self.gw.ports["plain"], source="127.0.0.91")
            c.send(request)
            self.assertEqual(c.read_reply()[0], 220)
            code, lines = c.read_reply()
            self.assertEqual(code, 421, lines)
            self.assertIn("4.7.0", lines[0])
            self.assertTrue(c.closed(timeout=3))
            c.close()
        self.assertBackToBaseline()


class HandshakeDeadlineTest(AttackTestCase):
    limits = {"timeouts_s": {"handshake": 2}}

    def test_half_client_hello_and_silence_after_starttls(self):
        held = []
        # Implicit TLS: half a ClientHello record, then silence.
        s = raw_socket(self.gw.ports["implicit"], "127.0.0.95")
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40)
        held.append(s)
        # STARTTLS, then nothing at all.
        c = SmtpConn(self.gw.ports["starttls"], source="127.0.0.95")
        c.read_reply()
        c.expect("EHLO a.test", 250)
        c.expect("STARTTLS", 220)
        start = time.time()
        self.assertTrue(c.closed(timeout=8))
        self.assertLess(time.time() - start, 6)
        s.settimeout(8)
        try:
            self.assertEqual(s.recv(100), b"")
        except ConnectionResetError:
            pass
        for s in held:
            s.close()
        c.close()
        self.assertBackToBaseline()


if __name__ == "__main__":
    unittest.main()
