"""The load generator of tests/bench/ (smtpgate-loadgen) on tiny cases against a real smtpgate,
so that it cannot rot: handshake-only sessions, a pinned legacy version, messages with AUTH
(checked in the spool), idle sessions held, and its refusals of bad options."""

import json
import os
import subprocess
import unittest

from harness import BIN, GatewayTestCase

LOADGEN = os.path.normpath(os.path.join(os.path.dirname(BIN), "..", "tests", "bench", "loadgen",
                                        "smtpgate-loadgen"))
NO_ERRORS = {"connect": 0, "tls": 0, "timeout": 0, "closed": 0, "protocol": 0, "rejected": 0,
             "aborted": 0}


class LoadgenCase(GatewayTestCase):
    """Runs the load generator against this test's gateway; returns its JSON and its stderr."""

    def loadgen(self, *args, port="starttls", timeout=60):
        self.assertTrue(os.path.exists(LOADGEN), "build the target smtpgate-loadgen: " + LOADGEN)
        cmd = [LOADGEN, "--port", str(self.gw.ports[port]), "--duration-limit", "30",
               "--timeout", "10"] + list(args)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertEqual(len(lines), 1, proc.stdout)
        result = json.loads(lines[0])
        self.assertFalse(result["duration_limit_hit"], result)
        return result, proc.stderr

    def assertClean(self, result, sessions):
        self.assertEqual(result["sessions_ok"], sessions, result)
        self.assertEqual(result["sessions_failed"], 0, result)
        self.assertEqual(result["errors"], NO_ERRORS, result)


class LoadgenTest(LoadgenCase):
    def test_handshake_only_tls_1_3(self):
        result, _ = self.loadgen("--tls", "1.3", "--handshake-only", "--sessions", "20",
                                 "--concurrency", "5")
        self.assertClean(result, 20)
        self.assertEqual(result["mode"], "starttls")
        self.assertEqual(result["tls"], "1.3")
        self.assertEqual(result["negotiated"], {"TLSv1.3": 20})
        self.assertEqual(result["messages_ok"], 0)
        self.assertEqual(result["replies"], {})
        for name in ("connect_to_ready", "handshake"):
            latency = result["latency_ms"][name]
            self.assertEqual(latency["n"], 20, latency)
            self.assertLessEqual(latency["p50"], latency["p90"])
            self.assertLessEqual(latency["p99"], latency["max"])
            self.assertGreater(latency["p50"], 0)
        self.assertGreater(result["sessions_per_s"], 0)
        self.assertEqual(self.gw.messages(), [])

    def test_tls_1_0_on_the_legacy_endpoint(self):
        result, _ = self.loadgen("--tls", "1.0", "--handshake-only", "--sessions", "3",
                                 port="legacy")
        self.assertClean(result, 3)
        self.assertEqual(result["negotiated"], {"TLSv1": 3})

    def test_tls_failure_is_counted_not_fatal(self):
        # Implicit TLS against the STARTTLS port: the clear-text greeting breaks the handshake.
        result, _ = self.loadgen("--mode", "implicit", "--handshake-only", "--sessions", "2")
        self.assertEqual(result["sessions_ok"], 0, result)
        self.assertEqual(result["sessions_failed"], 2, result)
        self.assertEqual(result["errors"]["tls"], 2, result)
        self.assertEqual(result["negotiated"], {})

    def test_messages_with_auth(self):
        result, _ = self.loadgen("--tls", "1.3", "--sessions", "2", "--concurrency", "2",
                                 "--messages", "10", "--size", "10240",
                                 "--auth", "user@example.com:secret",
                                 "--from", "user@example.com", "--to", "rcpt@example.org")
        self.assertClean(result, 2)
        self.assertEqual(result["messages_ok"], 20, result)
        self.assertEqual(result["messages_failed"], 0, result)
        self.assertEqual(result["replies"], {"250": 20}, result)
        self.assertEqual(result["latency_ms"]["message"]["n"], 20)
        self.assertGreater(result["messages_per_s"], 0)
        self.assertGreater(result["bytes_per_s"], 0)
        msgs = self.gw.messages()
        self.assertEqual(len(msgs), 20)
        for eml, meta in msgs:
            self.assertEqual(meta["auth_user"], "user@example.com")
            self.assertEqual(meta["mail_from"], "user@example.com")
            self.assertEqual(meta["rcpt_to"], ["rcpt@example.org"])
            self.assertEqual(meta["session"]["tls"]["version"], "1.3")
            self.assertIn(b"\r\nSubject: smtpgate-loadgen test message\r\n", eml)
            # Every 40th line starts with a dot: stuffed on the wire, one dot in the spool.
            self.assertIn(b"\r\n.", eml)
            self.assertNotIn(b"\r\n..", eml)
            body = eml.split(b"\r\n\r\n", 1)[1]
            self.assertTrue(body.endswith(b"\r\n"))
            # The message is 10240 octets as generated; the gateway adds a Received: line.
            self.assertGreaterEqual(len(eml), 10240)
            self.assertLess(len(eml), 10240 + 1024)

    def test_refused_messages_are_counted(self):
        # A malformed recipient: each pipelined MAIL/RCPT/DATA fails on RCPT, the session goes
        # on (RSET) with the next message and still ends with QUIT.
        result, _ = self.loadgen("--tls", "1.3", "--sessions", "2", "--messages", "2",
                                 "--to", "bad<address")
        self.assertClean(result, 2)
        self.assertEqual(result["messages_ok"], 0, result)
        self.assertEqual(result["messages_failed"], 4, result)
        self.assertEqual(sum(result["replies"].values()), 4, result)
        self.assertTrue(all(code.startswith("5") for code in result["replies"]), result)
        self.assertEqual(self.gw.messages(), [])

    def test_implicit_tls_one_message(self):
        result, _ = self.loadgen("--mode", "implicit", "--tls", "1.2", "--messages", "1",
                                 "--size", "100000", "--to", "rcpt@example.org",
                                 "--from", "sender@example.com", port="implicit")
        self.assertClean(result, 1)
        self.assertEqual(result["replies"], {"250": 1}, result)
        self.assertEqual(result["negotiated"], {"TLSv1.2": 1})
        self.assertEqual(len(self.gw.messages()), 1)

    def test_idle_sessions_held(self):
        result, stderr = self.loadgen("--tls", "1.3", "--idle", "20", "--idle-seconds", "1",
                                      "--concurrency", "10")
        self.assertClean(result, 20)
        self.assertEqual(result["idle_held"], 20, result)
        self.assertIn("holding 20 idle sessions", stderr)
        self.assertGreaterEqual(result["elapsed_s"], 1.0)
        self.assertEqual(result["latency_ms"]["connect_to_ready"]["n"], 20)


class LoadgenSpeedbumpTest(LoadgenCase):
    """Every legacy connection on the strict endpoint gets 421 (rule D3): counted per code."""
    overrides = {"legacy_tls": {"speedbump": [{"from": "2020-01-01T00:00:00Z", "reject_percent": 100}]}}

    def test_421_counted(self):
        result, _ = self.loadgen("--tls", "1.0", "--handshake-only", "--sessions", "3")
        self.assertEqual(result["sessions_ok"], 0, result)
        self.assertEqual(result["sessions_failed"], 3, result)
        self.assertEqual(result["errors"]["rejected"], 3, result)
        self.assertEqual(result["replies"], {"421": 3}, result)
        self.assertEqual(result["negotiated"], {"TLSv1": 3})


class LoadgenOptionsTest(unittest.TestCase):
    def run_loadgen(self, *args):
        self.assertTrue(os.path.exists(LOADGEN), "build the target smtpgate-loadgen: " + LOADGEN)
        return subprocess.run([LOADGEN] + list(args), capture_output=True, text=True, timeout=30)

    def test_bad_options_exit_2(self):
        for args in (["--sessions", "5"],  # no port
                     ["--port", "25", "--tls", "1.4"],
                     ["--port", "25", "--concurrency", "0"],
                     ["--port", "25", "--mode", "plain", "--handshake-only"],
                     ["--port", "25", "--auth", "nocolon"],
                     ["--port", "25", "--source", "not-an-address"],
                     ["--port", "25", "--bogus", "1"]):
            proc = self.run_loadgen(*args)
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))
            self.assertEqual(proc.stdout, "", args)
            self.assertIn("smtpgate-loadgen:", proc.stderr)

    def test_connection_refused_is_counted(self):
        from ports import free_port
        port = free_port()
        proc = self.run_loadgen("--port", str(port), "--sessions", "3", "--concurrency", "3",
                                "--timeout", "5")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        result = json.loads(proc.stdout)
        self.assertEqual(result["sessions_failed"], 3)
        self.assertEqual(result["errors"]["connect"], 3)


if __name__ == "__main__":
    unittest.main()
