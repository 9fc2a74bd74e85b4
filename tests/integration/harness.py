"""Shared helpers for the integration tests: start the real smtpgate binary on free loopback
ports with a generated configuration, and talk to it with real TLS clients (Python's ssl and
smtplib, openssl s_client, swaks) pinned to TLS 1.0, 1.1, 1.2 or 1.3."""

import atexit
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

BIN = os.environ.get("SMTPGATE_BIN", os.path.join(os.path.dirname(__file__), "../../build/gateway/smtpgate"))

VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}
OPENSSL_FLAGS = {"1.0": "-tls1", "1.1": "-tls1_1", "1.2": "-tls1_2", "1.3": "-tls1_3"}


from ports import free_port  # noqa: E402  (one allocator for every test process)

# What a sanitizer build (bootstrap.sh test stages asan and tsan) prints when it finds a bug.
# The stages set abort_on_error, so a report also ends the process abnormally; the log is read
# as well because a report in a gateway that is then stopped by SIGTERM must fail the test too.
# Set by the test presets asan and thread (CMakePresets.json): the binary under test runs under
# that sanitizer, whose own memory (shadow, ASan's quarantine of freed blocks) makes the
# process's RSS no measure of ours. Leaks are LeakSanitizer's to find there.
SANITIZER = os.environ.get("SMTPGATE_SANITIZER", "")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                     "ThreadSanitizer: ", "runtime error: ")
_started = []


def sanitizer_report(text):
    """The first sanitizer report in a process's output, or None."""
    for marker in SANITIZER_MARKERS:
        at = text.find(marker)
        if at >= 0:
            start = text.rfind("\n", 0, max(0, at - 200)) + 1
            return text[start:start + 6000]
    return None


@atexit.register
def _stop_leftovers():
    """A gateway a test forgot to stop is stopped here; its sanitizer report still fails the run."""
    found = False
    for gw in _started:
        if gw.proc is not None and gw.proc.poll() is None:
            try:
                gw.stop()
            except AssertionError as e:
                print(e, file=sys.stderr)
                found = True
    if found:
        sys.stderr.flush()
        os._exit(1)


def client_context(version=None, ciphers=None):
    """A client context pinned to one version. OpenSSL 3 refuses TLS < 1.2 at its default
    security level, so legacy versions drop to level 0 as the old devices we model do."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version in ("1.0", "1.1"):
        ctx.set_ciphers(ciphers or "DEFAULT:@SECLEVEL=0")
    elif ciphers:
        ctx.set_ciphers(ciphers)
    if version:
        ctx.minimum_version = VERSIONS[version]
        ctx.maximum_version = VERSIONS[version]
    return ctx


def make_certificates(directory, names=("localhost", "gw.test")):
    """An ECDSA and an RSA self-signed certificate for the same names (openssl CLI)."""
    san = ",".join("DNS:" + n for n in names)
    out = []
    for kind, newkey in (("ecdsa", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]),
                         ("rsa", ["-newkey", "rsa:2048"])):
        cert = os.path.join(directory, kind + ".pem")
        key = os.path.join(directory, kind + ".key")
        subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", key, "-out", cert,
                        "-days", "30", "-subj", "/CN=" + names[0], "-addext", "subjectAltName=" + san],
                       check=True, capture_output=True)
        out.append({"cert": cert, "key": key})
    return out


def deep_merge(target, overrides):
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        else:
            target[key] = value
    return target


def hash_password(password):
    return subprocess.run(["openssl", "passwd", "-6", password], check=True, capture_output=True,
                          text=True).stdout.strip()


class Gateway:
    """One smtpgate process with its own directory, configuration and ports."""

    def __init__(self, overrides=None, listeners=None, users=(("user@example.com", "secret"),),
                 tenants=None, admin=False):
        self.dir = tempfile.mkdtemp(prefix="smtpgate-it-")
        self.ports = {"starttls": free_port(), "implicit": free_port(), "legacy": free_port(),
                      "plain": free_port()}
        users_file = os.path.join(self.dir, "users.txt")
        with open(users_file, "w") as f:
            for user, password in users:
                f.write("%s:%s\n" % (user, hash_password(password)))
        self.config = {
            "hostname": "gw.test",
            "state_dir": self.dir,
            # SMTPGATE_TEST_WORKERS=2 runs the suite on several event loops (the TSan stage).
            "workers": int(os.environ.get("SMTPGATE_TEST_WORKERS", "1")),
            "listeners": listeners or [
                {"name": "strict-starttls", "listen": "127.0.0.1:%d" % self.ports["starttls"],
                 "tls": "starttls", "endpoint": "strict"},
                {"name": "strict-implicit", "listen": "127.0.0.1:%d" % self.ports["implicit"],
                 "tls": "implicit", "endpoint": "strict"},
                {"name": "legacy-starttls", "listen": "127.0.0.1:%d" % self.ports["legacy"],
                 "tls": "starttls", "endpoint": "legacy"},
                {"name": "plain-mx", "listen": "127.0.0.1:%d" % self.ports["plain"],
                 "tls": "starttls", "endpoint": "strict", "require_tls": False},
            ],
            "certificates": make_certificates(self.dir),
            "backend": {"spool": os.path.join(self.dir, "spool"), "users": users_file},
            # Short drain so that stopping a gateway with idle test sessions is quick.
            "limits": {"timeouts_s": {"drain": 2}},
        }
        if tenants is not None:
            self.tenants_path = os.path.join(self.dir, "tenants.json")
            with open(self.tenants_path, "w") as f:
                json.dump({"tenants": tenants}, f, indent=2)
            self.config["tenants"] = self.tenants_path
        self.admin_token = None
        if admin:
            self.ports["admin"] = free_port()
            self.admin_token = secrets.token_hex(16)
            token_file = os.path.join(self.dir, "admin.token")
            with open(token_file, "w") as f:
                f.write(self.admin_token + "\n")
            os.chmod(token_file, 0o600)
            self.config["admin"] = {"listen": "127.0.0.1:%d" % self.ports["admin"],
                                    "token_file": token_file}
        deep_merge(self.config, overrides or {})
        self.config_path = os.path.join(self.dir, "smtpgate.json")
        self.write_config()
        self.proc = None
        self.log_path = os.path.join(self.dir, "stderr.log")

    def write_config(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)

    @property
    def spool_new(self):
        return os.path.join(self.dir, "spool", "new")

    def start(self, args=None, cwd=None, wait_port=None):
        self.log = open(self.log_path, "w")
        cmd = [BIN] + (args if args is not None else ["run", "--config", self.config_path])
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=cwd or self.dir)
        _started.append(self)
        port = wait_port or self.ports["starttls"]
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("smtpgate exited with %s:\n%s" % (self.proc.returncode, self.output()))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            # Listening is not enough: signals (SIGHUP in a test) are handled once "ready".
            if " ready: " in self.output():
                return self
            time.sleep(0.02)
        raise AssertionError("smtpgate did not listen on %d:\n%s" % (port, self.output()))

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_output(self, text, timeout=10):
        """The log once it holds `text` (or at the deadline). A worker writes its log lines at
        the end of its loop iteration, so a client may see a reply or a close a moment before
        the line that goes with it is in the log."""
        deadline = time.time() + timeout
        out = self.output()
        while text not in out and time.time() < deadline:
            time.sleep(0.02)
            out = self.output()
        return out

    @property
    def admin_url(self):
        return "http://127.0.0.1:%d" % self.ports["admin"]

    def api(self, path, method="GET", body=None, token=True, headers=None, raw=False):
        """One admin API request: (status, parsed JSON or text, response headers)."""
        req = urllib.request.Request(self.admin_url + path, method=method)
        if token:
            req.add_header("Authorization", "Bearer %s" % (self.admin_token if token is True else token))
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, data=data, timeout=20) as resp:
                status, payload, hdrs = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as e:
            status, payload, hdrs = e.code, e.read(), e.headers
        text = payload.decode("utf-8", "replace")
        if not raw and hdrs.get("Content-Type", "").startswith("application/json"):
            return status, json.loads(text), hdrs
        return status, text, hdrs

    def signal(self, signum):
        self.proc.send_signal(signum)

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.proc:
            return None
        self.log.close()
        report = sanitizer_report(self.output())
        if report:
            raise AssertionError("smtpgate (exit %s) reported a bug:\n%s" % (self.proc.returncode, report))
        return self.proc.returncode

    def messages(self):
        """(eml bytes, json dict) of every message in the spool, oldest first."""
        out = []
        if not os.path.isdir(self.spool_new):
            return out
        for name in sorted(os.listdir(self.spool_new)):
            if name.endswith(".eml"):
                base = os.path.join(self.spool_new, name[:-4])
                with open(base + ".eml", "rb") as f:
                    eml = f.read()
                with open(base + ".json") as f:
                    meta = json.load(f)
                out.append((eml, meta))
        return out


class SmtpConn:
    """A line-level SMTP client over a raw socket, able to start TLS pinned to one version and
    to send arbitrary bytes (for transcripts the smtplib module would refuse to produce)."""

    def __init__(self, port, implicit=False, version=None, host="127.0.0.1", sni=None, timeout=10,
                 source=None, ciphers=None):
        # Any 127.x.y.z is a local address: a test client can appear from another "host".
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""
        if implicit:
            self.starttls_now(version, sni, ciphers)

    def starttls_now(self, version=None, sni=None, ciphers=None):
        ctx = client_context(version, ciphers)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=sni)
        return self.sock.version()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_reply(self):
        """One complete (possibly multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; partial: %r" % self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.read_reply()

    def expect(self, text, code):
        got, lines = self.cmd(text)
        if got != code:
            raise AssertionError("%r: expected %d, got %r" % (text, code, lines))
        return lines

    def closed(self, timeout=5):
        """True when the server closes the connection (reads nothing more)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def send_message(conn, sender, rcpts, body):
    conn.expect("MAIL FROM:<%s>" % sender, 250)
    for r in rcpts:
        conn.expect("RCPT TO:<%s>" % r, 250)
    conn.expect("DATA", 354)
    conn.send(body)
    return conn.read_reply()


class GatewayTestCase(unittest.TestCase):
    overrides = None
    listeners = None
    tenants = None
    users = (("user@example.com", "secret"),)

    def setUp(self):
        self.gw = Gateway(self.overrides, self.listeners, users=self.users,
                          tenants=self.tenants).start()

    def tearDown(self):
        code = self.gw.stop()
        if code not in (0, None):
            print(self.gw.output())
        self.assertEqual(code, 0, "smtpgate did not exit cleanly")

    def connect(self, port_name="starttls", version=None, ehlo="client.test", tls=True, sni=None,
                source=None, ciphers=None, ehlo_after_tls=True):
        port = self.gw.ports[port_name]
        implicit = port_name == "implicit"
        c = SmtpConn(port, implicit=implicit, version=version, sni=sni, source=source,
                     ciphers=ciphers)
        code, _ = c.read_reply()
        self.assertEqual(code, 220)
        if tls and not implicit:
            c.expect("EHLO " + ehlo, 250)
            c.expect("STARTTLS", 220)
            c.starttls_now(version, sni, ciphers)
        if ehlo_after_tls:
            c.expect("EHLO " + ehlo, 250)
        return c
