"""External TLS scanners against the strict and legacy endpoints (issue 7, part 2).

testssl.sh (Debian 12: 3.0.8, installed as `testssl`) and sslscan (2.0.7) scan the real binary on
loopback, in the open phase (no schedule) and after the strict cutoff with refuse-handshake:
  - protocols: open, every endpoint offers TLS 1.0-1.3; after the cutoff the strict endpoint
    (STARTTLS and the implicit-TLS listener) offers TLS 1.2 and 1.3 only, the legacy one all four;
    never SSLv2/SSLv3 (testssl -p, sslscan);
  - TLS_FALLBACK_SCSV honoured (testssl -Z, sslscan);
  - no client-initiated renegotiation and no insecure renegotiation (testssl -R, sslscan, and an
    `openssl s_client` "R" probe of our own, as testssl counts a failed probe as "not vulnerable");
  - no SSLv2/3, 3DES, RC4, NULL, EXPORT, anonymous or MD5 suites; ECDSA and RSA certificates both
    served (sslscan);
  - a raw STARTTLS command-injection probe (CVE-2011-0411): testssl 3.0.8 has no such check (only
    CCS injection, -I, which is not this), so the test does it itself over a socket.

A missing scanner skips its tests, except under CI (CI set and not false/0), where the bootstrap
installs them (deploy/bootstrap.sh test_packages) and a missing one is a failure.

testssl spends most of its time starting up (hundreds of awk and openssl processes, ~30 s of CPU
per run, before the first packet), so each test method makes one testssl run (-p -Z -R together, on
one listener in one phase) and ctest spreads the five runs over its jobs; each run is bounded by
SMTPGATE_SCAN_TIMEOUT seconds (default 108, under ctest's 120 s per test). sslscan (under a second
per listener) scans every listener of a phase in parallel threads."""

import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest
import xml.etree.ElementTree as ElementTree

from harness import Gateway, SmtpConn, client_context

SCAN_TIMEOUT = float(os.environ.get("SMTPGATE_SCAN_TIMEOUT", "108"))

# After the strict cutoff, with the handshake refused (D1): the strict endpoint's TLS < 1.2 fails
# with a protocol_version alert, the legacy endpoint is unaffected.
CUTOFF = {"legacy_tls": {"speedbump": [{"from": "2020-01-01T00:00:00Z", "reject_percent": 5},
                                       {"from": "2020-03-01T00:00:00Z", "reject_percent": 50}],
                         "strict_cutoff": "2020-06-01T00:00:00Z",
                         "after_cutoff": "refuse-handshake"}}
# A scanner opens hundreds of connections and handshakes a minute, all from 127.0.0.1, and sends
# odd commands: the per-IP abuse limits and the error tarpit are lifted to their maxima for it
# (they have their own tests).
SCAN_LIMITS = {"limits": {"max_connections_per_ip": 100000,
                          "new_connections_per_ip_per_minute": 100000,
                          "new_tls_handshakes_per_ip_per_minute": 100000,
                          "max_errors": 1000, "error_delay_ms": 0}}

PROTOCOLS = ("TLS1", "TLS1_1", "TLS1_2", "TLS1_3")  # testssl's JSON ids
SSLSCAN_VERSIONS = {"TLS1": "1.0", "TLS1_1": "1.1", "TLS1_2": "1.2", "TLS1_3": "1.3"}
ALL_TLS = set(PROTOCOLS)
MODERN_TLS = {"TLS1_2", "TLS1_3"}
# Cipher names (OpenSSL or IANA spelling, as sslscan prints either) that must never be accepted.
WEAK_CIPHER = re.compile(r"(^|[-_])(RC4|DES|3DES|DES-CBC3|NULL|EXP|EXPORT|ADH|AECDH|anon|MD5|"
                         r"IDEA|SEED|RC2|PSK|SRP)([-_]|$)", re.IGNORECASE)

_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _which(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


# Debian's package installs the script as `testssl`; upstream names it testssl.sh.
TESTSSL = os.environ.get("SMTPGATE_TESTSSL") or _which("testssl", "testssl.sh")
SSLSCAN = os.environ.get("SMTPGATE_SSLSCAN") or _which("sslscan")
OPENSSL = _which("openssl")
TOOLS = {"testssl": (TESTSSL, "testssl.sh"), "sslscan": (SSLSCAN, "sslscan"),
         "openssl": (OPENSSL, "openssl")}


def run_bounded(cmd, timeout, cwd=None, stdin=subprocess.DEVNULL):
    """Run cmd in its own process group; on timeout kill that group (testssl leaves openssl
    children behind otherwise). Returns (returncode, output, seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=cwd, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError("%s: no result within %.0f s:\n%s" % (
            os.path.basename(cmd[0]), timeout, out.decode("utf-8", "replace")[-3000:]))
    return proc.returncode, out.decode("utf-8", "replace"), time.monotonic() - started


def scan_testssl(port, starttls, checks, workdir, label):
    """One testssl run; returns {json id: (severity, finding)} and the run's seconds."""
    json_path = os.path.join(workdir, "testssl-%s.json" % label)
    if os.path.exists(json_path):
        os.unlink(json_path)
    cmd = [TESTSSL, *checks, "--warnings", "off", "--quiet", "--color", "0", "--nodns", "none",
           "--jsonfile", json_path]
    if starttls:
        cmd += ["-t", "smtp"]
    cmd.append("127.0.0.1:%d" % port)
    code, out, seconds = run_bounded(cmd, SCAN_TIMEOUT, cwd=workdir)
    try:
        with open(json_path) as f:
            entries = json.load(f)
    except (OSError, ValueError) as e:
        raise AssertionError("testssl %s (exit %s) left no JSON (%s):\n%s" % (label, code, e, out[-3000:]))
    findings = {e["id"]: (e.get("severity", ""), e.get("finding", "")) for e in entries}
    if "scanTime" not in findings or any(s == "FATAL" for s, _ in findings.values()):
        raise AssertionError("testssl %s did not complete (exit %s):\n%s" % (label, code, out[-3000:]))
    findings["_output"] = ("", out)
    return findings, seconds


def scan_sslscan(port, starttls, workdir, label):
    """One sslscan run: protocols, ciphers, renegotiation, fallback, certificate."""
    xml_path = os.path.join(workdir, "sslscan-%s.xml" % label)
    cmd = [SSLSCAN, "--no-colour", "--timeout=5", "--xml=" + xml_path]
    if starttls:
        cmd.append("--starttls-smtp")
    cmd.append("127.0.0.1:%d" % port)
    code, out, seconds = run_bounded(cmd, 60, cwd=workdir)
    try:
        test = ElementTree.parse(xml_path).getroot().find("ssltest")
    except (OSError, ElementTree.ParseError) as e:
        raise AssertionError("sslscan %s (exit %s) left no XML (%s):\n%s" % (label, code, e, out[-3000:]))
    if test is None:
        raise AssertionError("sslscan %s found no TLS server (exit %s):\n%s" % (label, code, out[-3000:]))
    result = {"protocols": {}, "ciphers": [], "certificates": [], "output": out, "seconds": seconds}
    for p in test.findall("protocol"):
        result["protocols"]["%s%s" % (p.get("type"), p.get("version"))] = p.get("enabled") == "1"
    for c in test.findall("cipher"):
        result["ciphers"].append((c.get("sslversion"), c.get("cipher"), c.get("strength")))
    reneg = test.find("renegotiation")
    result["renegotiation"] = None if reneg is None else (reneg.get("supported") == "1",
                                                         reneg.get("secure") == "1")
    for cert in test.iter("certificate"):
        pk = cert.find("pk")
        if pk is not None:
            result["certificates"].append(pk.get("type"))
    # sslscan 2.0.7 prints the fallback result on its console only, not in the XML.
    if "Server supports TLS Fallback SCSV" in out:
        result["fallback"] = True
    elif "Server does not support TLS Fallback SCSV" in out:
        result["fallback"] = False
    else:
        result["fallback"] = None
    return result


def in_parallel(jobs):
    """Run {label: callable} in threads; returns {label: result}; re-raises the first failure
    after every job ended (so that no scan outlives its gateway)."""
    results, errors = {}, []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {pool.submit(job): label for label, job in jobs.items()}
        for future in concurrent.futures.as_completed(futures):
            try:
                results[futures[future]] = future.result()
            except BaseException as e:  # noqa: B902 (collected, re-raised below)
                errors.append("%s: %s" % (futures[future], e))
    if errors:
        raise AssertionError("\n".join(errors))
    return results


class ScannerCase(unittest.TestCase):
    """A gateway with the scan limits and the given schedule; the tools are checked first."""

    overrides = None
    tools = ()

    def setUp(self):
        for tool in self.tools:
            path, package = TOOLS[tool]
            if not path:
                message = "%s not installed (Debian package %s)" % (tool, package)
                if _CI:
                    self.fail(message + ": CI is set, the bootstrap installs it")
                self.skipTest(message)
        overrides = json.loads(json.dumps(SCAN_LIMITS))
        overrides.update(json.loads(json.dumps(self.overrides or {})))
        self.gw = Gateway(overrides).start()
        self.timings = {}

    def tearDown(self):
        if self.timings:
            print("\n  scan times: " + ", ".join("%s %.1f s" % kv for kv in sorted(self.timings.items())))
        code = self.gw.stop()
        if code not in (0, None):
            print(self.gw.output()[-5000:])
        self.assertEqual(code, 0, "smtpgate did not exit cleanly")

    # testssl ------------------------------------------------------------------------------
    def run_testssl(self, targets, checks=("-p", "-Z", "-R")):
        """targets: {label: (port name, starttls)} -> {label: findings}, scanned in parallel."""
        jobs = {label: (lambda p=port, s=starttls, l=label: scan_testssl(self.gw.ports[p], s, list(checks),
                                                                          self.gw.dir, l))
                for label, (port, starttls) in targets.items()}
        results = in_parallel(jobs)
        out = {}
        for label, (findings, seconds) in results.items():
            self.timings["testssl " + label] = seconds
            out[label] = findings
        return out

    def check_testssl(self, port_name, offered):
        """testssl -p -Z -R on one listener: protocols, fallback SCSV, renegotiation."""
        label = {"starttls": "strict-starttls", "implicit": "strict-implicit",
                 "legacy": "legacy-starttls"}[port_name]
        findings = self.run_testssl({label: (port_name, port_name != "implicit")})[label]
        self.assertProtocols(findings, offered, label)
        self.assertFallbackHonoured(findings, label, lowest_offered_is_tls12="TLS1_1" not in offered)
        self.assertNoRenegotiation(findings, label)
        return findings

    def assertProtocols(self, findings, offered, label):
        report = {p: findings.get(p, ("", "missing"))[1] for p in ("SSLv2", "SSLv3") + PROTOCOLS}
        for p in ("SSLv2", "SSLv3"):
            self.assertTrue(report[p].startswith("not offered"), "%s: %s %r" % (label, p, report))
        for p in PROTOCOLS:
            finding = report[p]
            if p in offered:
                self.assertTrue(finding.startswith("offered"), "%s: %s should be offered: %r" % (label, p, report))
            else:
                self.assertTrue(finding.startswith("not offered"),
                                "%s: %s should not be offered: %r" % (label, p, report))

    def assertFallbackHonoured(self, findings, label, lowest_offered_is_tls12=False):
        severity, finding = findings.get("fallback_SCSV", ("", "missing"))
        if lowest_offered_is_tls12:
            # Nothing to fall back to: testssl says so and rates it OK.
            self.assertEqual((severity, finding), ("OK", "no protocol below TLS 1.2 offered"), label)
        else:
            self.assertEqual((severity, finding), ("OK", "supported"),
                             "%s: TLS_FALLBACK_SCSV (testssl -Z) should be 'Downgrade attack "
                             "prevention supported'" % label)

    def assertNoRenegotiation(self, findings, label):
        # RFC 5746 (renegotiation_info) is advertised: that is the secure kind, and harmless.
        self.assertEqual(findings.get("secure_renego"), ("OK", "supported"), label)
        severity, finding = findings.get("secure_client_renego", ("", "missing"))
        self.assertEqual(severity, "OK", "%s: client-initiated renegotiation: %s" % (label, finding))
        self.assertIn("not vulnerable", finding, label)

    # sslscan ------------------------------------------------------------------------------
    def run_sslscan(self, targets):
        jobs = {label: (lambda p=port, s=starttls, l=label: scan_sslscan(self.gw.ports[p], s, self.gw.dir, l))
                for label, (port, starttls) in targets.items()}
        results = in_parallel(jobs)
        for label, result in results.items():
            self.timings["sslscan " + label] = result["seconds"]
        return results

    def assertSslscan(self, result, offered, label):
        protocols = result["protocols"]
        self.assertFalse(protocols.get("ssl2", True), "%s: SSLv2 %r" % (label, protocols))
        self.assertFalse(protocols.get("ssl3", True), "%s: SSLv3 %r" % (label, protocols))
        for p in PROTOCOLS:
            key = "tls" + SSLSCAN_VERSIONS[p]
            self.assertEqual(protocols.get(key), p in offered, "%s: %s in %r" % (label, key, protocols))
        ciphers = result["ciphers"]
        self.assertTrue(ciphers, label)
        versions = {v for v, _, _ in ciphers}
        expected = {"TLSv" + SSLSCAN_VERSIONS[p] for p in offered}
        self.assertEqual(versions, expected, "%s: cipher versions %r" % (label, ciphers))
        weak = [c for c in ciphers if WEAK_CIPHER.search(c[1]) or c[2] in ("null", "anonymous", "weak", "medium")]
        self.assertEqual(weak, [], "%s: weak suites accepted" % label)
        # Renegotiation: sslscan counts an advertised RFC 5746 extension as "supported"; what must
        # never appear is the insecure (pre-RFC 5746) kind.
        self.assertIsNotNone(result["renegotiation"], label)
        supported, secure = result["renegotiation"]
        self.assertFalse(supported and not secure, "%s: insecure renegotiation" % label)
        self.assertTrue(result["fallback"], "%s: TLS_FALLBACK_SCSV:\n%s" % (label, result["output"][-2000:]))
        # The certificate sslscan's default hello gets is the ECDSA one (preferred when offered).
        self.assertEqual(result["certificates"], ["EC"], label)
        # The RSA certificate authenticates the RSA suites of TLS 1.0/1.1 (ECDHE-RSA, plain RSA).
        if offered & {"TLS1", "TLS1_1"}:
            rsa = [c for c in ciphers if c[0] in ("TLSv1.0", "TLSv1.1") and not re.search("ECDSA", c[1])]
            self.assertTrue(rsa, "%s: no RSA-authenticated suite: %r" % (label, ciphers))

    # own probes ---------------------------------------------------------------------------
    def renegotiation_probe(self, port_name, version):
        """openssl s_client, EHLO, then "R" (client-initiated renegotiation), then EHLO again:
        the server must refuse the renegotiation, so the second EHLO is never answered."""
        port = self.gw.ports[port_name]
        flag = {"1.0": "-tls1", "1.1": "-tls1_1", "1.2": "-tls1_2"}[version]
        cmd = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port, flag, "-crlf"]
        if port_name != "implicit":
            cmd += ["-starttls", "smtp"]
        if version in ("1.0", "1.1"):
            cmd += ["-cipher", "DEFAULT@SECLEVEL=0"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        lines, cond = [], threading.Condition()

        def reader():
            for raw in proc.stdout:
                with cond:
                    lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                    cond.notify_all()
            with cond:
                lines.append(None)  # EOF
                cond.notify_all()

        threading.Thread(target=reader, daemon=True).start()

        def wait_for(predicate, timeout):
            with cond:
                return cond.wait_for(lambda: predicate(lines) or None in lines, timeout)

        def ehlo_replies(ls):
            return sum(1 for l in ls if l and l.startswith("250-" + self.gw.config["hostname"]))

        label = "%s TLS %s" % (port_name, version)
        try:
            proc.stdin.write(b"EHLO before.test\n")
            proc.stdin.flush()
            wait_for(lambda ls: ehlo_replies(ls) >= 1, 20)
            self.assertEqual(ehlo_replies(lines), 1, "%s: no EHLO reply over TLS:\n%s" % (label, lines))
            proc.stdin.write(b"R\n")
            proc.stdin.flush()
            wait_for(lambda ls: "RENEGOTIATING" in ls, 10)
            self.assertIn("RENEGOTIATING", lines, label)
            try:
                proc.stdin.write(b"EHLO after.test\n")
                proc.stdin.flush()
            except BrokenPipeError:
                pass
            # The refusal ends the session: s_client exits on the alert or the close.
            wait_for(lambda ls: False, 10)
            after = lines[lines.index("RENEGOTIATING"):]
            self.assertEqual(ehlo_replies(after), 0, "%s: the session went on after a renegotiation:\n%s"
                             % (label, "\n".join(l for l in after if l is not None)))
            self.assertIn(None, lines, "%s: the connection stayed open after the renegotiation attempt" % label)
            return [l for l in after if l is not None]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            # When the refusal has already ended s_client, the write of "EHLO after" failed with
            # EPIPE and its bytes are still in the pipe's buffer: close() would flush them and
            # raise the same error again (seen in CI as a failed probe, on the correct outcome).
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            proc.stdout.close()

    def injection_probe(self, port_name, version, injected):
        """CVE-2011-0411: STARTTLS plus a command in one packet. The plaintext remainder must be
        discarded: the first reply inside TLS answers what the client sends after the handshake."""
        label = "%s TLS %s %r" % (port_name, version, injected)
        c = SmtpConn(self.gw.ports[port_name])
        try:
            self.assertEqual(c.read_reply()[0], 220, label)
            c.expect("EHLO probe.test", 250)
            c.send(b"STARTTLS\r\n" + injected)  # one write, one segment on loopback
            code, lines = c.read_reply()
            self.assertEqual(code, 220, "%s: %r" % (label, lines))
            # Give a vulnerable server the time to answer the injected command in plaintext.
            c.sock.settimeout(0.3)
            try:
                c.buf += c.sock.recv(4096)
            except socket.timeout:
                pass
            self.assertEqual(c.buf, b"", "%s: plaintext after the 220" % label)
            c.sock.settimeout(10)
            got = c.starttls_now(version)
            self.assertEqual(got, {"1.0": "TLSv1", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}[version], label)
            code, lines = c.cmd("EHLO after.test")
            self.assertEqual(code, 250, "%s: first reply inside TLS: %r" % (label, lines))
            self.assertTrue(len(lines) > 1 and lines[0].startswith("250-" + self.gw.config["hostname"]),
                            "%s: the first reply inside TLS is not the EHLO reply: %r" % (label, lines))
            code, lines = c.cmd("NOOP")
            self.assertEqual(code, 250, "%s: %r" % (label, lines))
            c.sock.settimeout(0.3)
            with self.assertRaises((socket.timeout, ssl.SSLError), msg="%s: an extra reply" % label):
                data = c.sock.recv(4096)
                if not data:
                    raise AssertionError("%s: closed" % label)
                self.fail("%s: unsolicited reply inside TLS: %r" % (label, data))
        finally:
            c.close()


class TestsslOpenStrictTest(ScannerCase):
    """No schedule: the strict endpoint offers TLS 1.0-1.3, honours TLS_FALLBACK_SCSV and
    refuses client-initiated renegotiation. One testssl run per test: ctest spreads them."""

    tools = ("testssl",)

    def test_testssl_strict_starttls_open(self):
        self.check_testssl("starttls", ALL_TLS)


class TestsslOpenLegacyTest(ScannerCase):
    tools = ("testssl",)

    def test_testssl_legacy_starttls_open(self):
        self.check_testssl("legacy", ALL_TLS)


class OpenPhaseSslscanTest(ScannerCase):
    tools = ("sslscan",)
    targets = {"strict-starttls": ("starttls", True), "strict-implicit": ("implicit", False),
               "legacy-starttls": ("legacy", True)}

    def test_sslscan_protocols_ciphers_certificates(self):
        results = self.run_sslscan(self.targets)
        for label, result in sorted(results.items()):
            self.assertSslscan(result, ALL_TLS, label)

    # Found by this scan and fixed (tls/client_hello.cc): ECDSA suites the server does not enable
    # (ECDHE-ECDSA-AES128-SHA256) counted as ECDSA support, so a TLS 1.2 hello offering them next
    # to RSA suites got the ECDSA certificate and "no shared cipher"; sslscan then never saw an
    # ECDHE-RSA suite at TLS 1.2.
    def test_sslscan_rsa_certificate_suites_at_tls12(self):
        results = self.run_sslscan(self.targets)
        for label, result in sorted(results.items()):
            rsa12 = [c for c in result["ciphers"] if c[0] == "TLSv1.2" and "ECDHE-RSA" in c[1]]
            self.assertTrue(rsa12, "%s: no ECDHE-RSA suite at TLS 1.2: %r" % (label, result["ciphers"]))


class TestsslClosedStrictStarttlsTest(ScannerCase):
    """After the cutoff with refuse-handshake: the strict endpoint offers TLS 1.2 and 1.3 only
    (so there is nothing to fall back to), refused by D1's protocol_version alert."""

    overrides = CUTOFF
    tools = ("testssl",)

    def test_testssl_strict_starttls_after_cutoff(self):
        self.check_testssl("starttls", MODERN_TLS)
        self.assertIn(" decision D1 at handshake", self.gw.wait_output(" decision D1 at handshake"))


class TestsslClosedStrictImplicitTest(ScannerCase):
    overrides = CUTOFF
    tools = ("testssl",)

    def test_testssl_strict_implicit_after_cutoff(self):
        self.check_testssl("implicit", MODERN_TLS)
        self.assertIn(" decision D1 at handshake", self.gw.wait_output(" decision D1 at handshake"))


class TestsslClosedLegacyTest(ScannerCase):
    """After the cutoff the legacy endpoint still offers TLS 1.0 and 1.1."""

    overrides = CUTOFF
    tools = ("testssl",)

    def test_testssl_legacy_starttls_after_cutoff(self):
        self.check_testssl("legacy", ALL_TLS)


class ClosedPhaseSslscanTest(ScannerCase):
    overrides = CUTOFF
    tools = ("sslscan",)

    def test_sslscan_agrees_after_cutoff(self):
        results = self.run_sslscan({"strict-starttls": ("starttls", True),
                                    "strict-implicit": ("implicit", False),
                                    "legacy-starttls": ("legacy", True)})
        self.assertSslscan(results["strict-starttls"], MODERN_TLS, "strict-starttls")
        self.assertSslscan(results["strict-implicit"], MODERN_TLS, "strict-implicit")
        self.assertSslscan(results["legacy-starttls"], ALL_TLS, "legacy-starttls")


class RenegotiationProbeTest(ScannerCase):
    """Client-initiated renegotiation with openssl s_client's "R", on every listener and legacy
    version the open phase allows (TLS 1.3 has no renegotiation)."""

    tools = ("openssl",)

    def test_client_initiated_renegotiation_refused(self):
        for port_name, version in (("starttls", "1.2"), ("starttls", "1.0"), ("implicit", "1.2"),
                                   ("implicit", "1.1"), ("legacy", "1.2"), ("legacy", "1.0")):
            # s_client's interactive "R" races with its own reads on a loaded machine (seen once
            # in a full parallel run, not reproduced alone): a probe that fails is repeated once,
            # and the first failure is printed so that it is not lost.
            try:
                self.renegotiation_probe(port_name, version)
            except (AssertionError, OSError) as first:
                sys.stderr.write("renegotiation probe %s %s, first attempt: %s\n"
                                 % (port_name, version, first))
                self.renegotiation_probe(port_name, version)


class StartTlsInjectionTest(ScannerCase):
    """CVE-2011-0411 probe on both STARTTLS listeners, modern and legacy TLS; the injected
    command is RSET, a MAIL FROM (whose 503/250 would show) and a second STARTTLS."""

    tools = ()

    def test_injected_commands_never_answered(self):
        for port_name, version in (("starttls", "1.3"), ("starttls", "1.2"), ("starttls", "1.0"),
                                   ("legacy", "1.3"), ("legacy", "1.0")):
            for injected in (b"RSET\r\n", b"MAIL FROM:<inject@example.com>\r\n", b"STARTTLS\r\n",
                             b"RSET\r\nNOOP\r\nQUIT\r\n"):
                self.injection_probe(port_name, version, injected)


class ClosedInjectionTest(ScannerCase):
    """After the cutoff: the injection is discarded on the strict endpoint too, and a legacy
    client's handshake is still refused there whatever was injected before it."""

    overrides = CUTOFF
    tools = ()

    def test_injection_after_cutoff(self):
        self.injection_probe("starttls", "1.2", b"RSET\r\n")
        self.injection_probe("legacy", "1.0", b"RSET\r\n")
        c = SmtpConn(self.gw.ports["starttls"])
        try:
            c.read_reply()
            c.expect("EHLO probe.test", 250)
            c.send(b"STARTTLS\r\nRSET\r\n")
            self.assertEqual(c.read_reply()[0], 220)
            with self.assertRaises(ssl.SSLError):
                c.sock = client_context("1.0").wrap_socket(c.sock)
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
