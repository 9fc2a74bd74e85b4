"""A real HAProxy (/usr/sbin/haproxy, Debian's 2.6) running the committed
deploy/haproxy/haproxy.cfg on loopback in front of smtpgate instances, for the integration tests
(test_proxy_front.py: one gateway; test_cluster.py: three).

    front = Haproxy({"gw1": server_ports(a), "gw2": server_ports(b)})
    front.start()                          # returns once HAProxy's checks say every server is UP
    SmtpConn(front.ports[25], source="127.0.0.21")           # the MX front, from a "client"
    front.set_state("smtpgate_submission", "gw1", "maint")   # the stats socket, level admin
    front.stop()                                             # by its PID

The gateways behind it listen with `proxy_protocol` (proxy_listeners below): HAProxy connects
to them from 127.0.0.1 and names the real client (the test's source address, any 127.x.y.z) in
a PROXY v2 header. HAProxy runs in the foreground (-db), one process, stopped by its PID."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from ports import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
HAPROXY_CFG = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "haproxy", "haproxy.cfg"))
HAPROXY = "/usr/sbin/haproxy"
# The file's fronts: bind port -> backend (the servers of a backend use the same port).
FRONTS = {25: "smtpgate_mx", 465: "smtpgate_submissions", 587: "smtpgate_submission"}


def missing():
    """Why HAProxy cannot run here, or None."""
    if not os.access(HAPROXY, os.X_OK):
        return "HAProxy missing: apt-get install haproxy (deploy/bootstrap.sh test)"
    return None


def proxy_listeners(ports, trusted):
    """The listeners of a gateway behind the front: the three HAProxy forwards to (strict
    STARTTLS for 25, implicit TLS for 465, the legacy endpoint for 587) take a PROXY header from
    `trusted` only; "direct" (ports["plain"]) takes none and answers at once, for the harness's
    start-up probe (a proxy listener waits for a header)."""
    pp = {"trusted": list(trusted)}
    return [
        {"name": "pp-starttls", "listen": "127.0.0.1:%d" % ports["starttls"], "tls": "starttls",
         "endpoint": "strict", "proxy_protocol": pp},
        {"name": "pp-implicit", "listen": "127.0.0.1:%d" % ports["implicit"], "tls": "implicit",
         "endpoint": "strict", "proxy_protocol": pp},
        {"name": "pp-legacy", "listen": "127.0.0.1:%d" % ports["legacy"], "tls": "starttls",
         "endpoint": "legacy", "proxy_protocol": pp},
        {"name": "direct", "listen": "127.0.0.1:%d" % ports["plain"], "tls": "starttls",
         "endpoint": "strict"},
    ]


def server_ports(gw):
    """What a `server` line of the file needs from a harness.Gateway with proxy_listeners and
    an admin port: its port per front (25/465/587) and the health check port."""
    return {"ports": {25: gw.ports["starttls"], 465: gw.ports["implicit"],
                      587: gw.ports["legacy"]},
            "check_port": gw.ports["admin"]}


def render(cfg_text, front_ports, servers, stats_socket):
    """deploy/haproxy/haproxy.cfg for loopback. The committed file is the deployable one; this
    rewrites only what names the machine: the `bind` ports (25, 465, 587 -> front_ports), each
    `server NAME ADDR:PORT` named in `servers` ({"gw1": {"ports": {25: p, 465: p, 587: p},
    "check_port": admin port}, ...}) -> 127.0.0.1 and that gateway's port for the service, with
    its own check port; the file's servers not in `servers` are dropped. Also the stats socket
    path, the global log target (stdout), and the process settings a foreground test cannot use
    (chroot, user, group, daemon). A server or port the file does not have is an error: the
    test must not silently run something else than the committed file."""
    out, section, backend, seen = [], None, None, set()
    for line in cfg_text.splitlines():
        s = line.strip()
        m = re.match(r"(global|defaults|frontend|backend|listen)\b\s*(\S*)", line)
        if m:
            section = m.group(1)
            backend = m.group(2) if section == "backend" else None
        if section == "global" and re.match(r"(chroot|user|group|daemon)\b", s):
            continue
        if section == "global" and s.startswith("stats socket "):
            line = "    stats socket %s mode 600 level admin" % stats_socket
        if section == "global" and s.startswith("log "):
            line = "    log stdout format raw local0"  # no syslog in a test
        m = re.match(r"bind\s+\S*:(\d+)(.*)$", s)
        if m:
            port = int(m.group(1))
            if port not in front_ports:
                raise ValueError("haproxy.cfg binds port %d, which the test does not map" % port)
            line = "    bind 127.0.0.1:%d%s" % (front_ports[port], m.group(2))
        m = re.match(r"server\s+(\S+)\s+\S+:(\d+)(.*)$", s)
        if m:
            name, port, rest = m.group(1), int(m.group(2)), m.group(3)
            if name not in servers:
                continue
            if port not in servers[name]["ports"]:
                raise ValueError("server %s in %s uses port %d, which the test does not map"
                                 % (name, backend, port))
            if not re.search(r"\bport \d+", rest):
                raise ValueError("server %s in %s has no check port" % (name, backend))
            rest = re.sub(r"\bport \d+", "port %d" % servers[name]["check_port"], rest)
            line = "    server %s 127.0.0.1:%d%s" % (name, servers[name]["ports"][port], rest)
            seen.add((backend, name))
        out.append(line)
    for backend in FRONTS.values():
        for name in servers:
            if (backend, name) not in seen:
                raise ValueError("haproxy.cfg has no server %s in backend %s" % (name, backend))
    return "\n".join(out) + "\n"


class Haproxy:
    """The committed configuration rendered for `servers` (see render) on fresh loopback
    ports (self.ports: 25/465/587 -> port), run in the foreground and stopped by its PID."""

    def __init__(self, servers, cfg_path=HAPROXY_CFG):
        reason = missing()
        if reason:
            raise AssertionError(reason)
        self.servers = servers
        self.dir = tempfile.mkdtemp(prefix="smtpgate-haproxy-")
        self.ports = {port: free_port() for port in FRONTS}
        self.stats_socket = os.path.join(self.dir, "haproxy.sock")
        with open(cfg_path) as f:
            self.text = render(f.read(), self.ports, servers, self.stats_socket)
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(self.text)
        self.log_path = os.path.join(self.dir, "haproxy.log")
        self.proc = None
        self.log = None

    def check(self):
        """`haproxy -c`: (exit code, output)."""
        result = subprocess.run([HAPROXY, "-c", "-f", self.cfg], capture_output=True, text=True,
                                timeout=30)
        return result.returncode, result.stdout + result.stderr

    def start(self, timeout=20):
        """Checks the file, starts HAProxy and waits until every server of every backend is
        UP after a passed check (GET /healthz answered 200)."""
        code, output = self.check()
        if code != 0:
            raise AssertionError("haproxy -c refused the rendered file:\n%s\n%s" % (output, self.text))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        try:
            self.wait_until(lambda: self.all_up(), timeout, "HAProxy to mark every server UP")
        except AssertionError:
            self.stop()
            raise
        return self

    def all_up(self):
        """Every server of every backend UP after a passed check (HAProxy starts servers as
        "UP 1/2" before any check has run)."""
        rows = [row for row in self.stat_rows()
                if row.get("svname") not in ("FRONTEND", "BACKEND", None)]
        return len(rows) == len(FRONTS) * len(self.servers) and \
            all(row["status"] == "UP" and row["check_status"] == "L7OK" for row in rows)

    def stop(self, timeout=10):
        """SIGTERM to our HAProxy's PID (SIGKILL after `timeout`); returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        if self.log:
            self.log.close()
            self.log = None
        return self.proc.returncode

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def output(self, tail=3000):
        try:
            with open(self.log_path) as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    # --- the stats socket (level admin) ----------------------------------------------------

    def command(self, text, timeout=5):
        """One command on the stats socket; its answer."""
        s = socket.socket(socket.AF_UNIX)
        try:
            s.settimeout(timeout)
            s.connect(self.stats_socket)
            s.sendall(text.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        return data.decode()

    def stat_rows(self):
        """`show stat` as dicts (pxname, svname, status, ...); [] while the socket is not up."""
        try:
            text = self.command("show stat")
        except OSError:
            return []
        lines = text.splitlines()
        if not lines or not lines[0].startswith("# "):
            return []
        header = lines[0][2:].split(",")
        return [dict(zip(header, l.split(","))) for l in lines[1:] if l]

    def statuses(self):
        """{(backend, server): status} for every server: "UP", "DOWN", "MAINT", "DRAIN", or
        one in transition ("UP 1/2": one failed check of the two that mark it down)."""
        return {(row["pxname"], row["svname"]): row.get("status", "")
                for row in self.stat_rows()
                if row.get("svname") not in ("FRONTEND", "BACKEND", None)}

    def server_status(self, backend, server=None):
        """The status of `server` (by default the backend's first server) in `backend`."""
        for (pxname, svname), status in self.statuses().items():
            if pxname == backend and (server is None or svname == server):
                return status
        return None

    def set_state(self, backend, server, state):
        """`set server BACKEND/SERVER state ready|drain|maint`: HAProxy sends a server in
        maint no new connection (its open ones go on)."""
        answer = self.command("set server %s/%s state %s" % (backend, server, state)).strip()
        if answer:
            raise AssertionError("HAProxy refused set server %s/%s state %s: %s"
                                 % (backend, server, state, answer))

    def only(self, backend, server, timeout=10):
        """Every new connection to `backend` goes to `server`: the others in maint, `server`
        ready and UP (a server leaving maint resumes with the result of its running checks)."""
        for name in self.servers:
            if name != server:
                self.set_state(backend, name, "maint")
        self.set_state(backend, server, "ready")
        self.wait_until(lambda: self.server_status(backend, server) == "UP" and all(
            self.server_status(backend, name) == "MAINT" for name in self.servers
            if name != server), timeout, "%s/%s alone UP" % (backend, server))

    def balance(self, backend, timeout=10):
        """Every server of `backend` back in the rotation (ready and UP)."""
        for name in self.servers:
            self.set_state(backend, name, "ready")
        self.wait_until(lambda: all(self.server_status(backend, name) == "UP"
                                    for name in self.servers), timeout,
                        "every server of %s UP" % backend)

    def wait_until(self, predicate, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("HAProxy exited with %s while waiting for %s:\n%s"
                                     % (self.proc.returncode, what, self.output()))
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s; servers %r\n%s"
                             % (what, self.statuses(), self.output()))
