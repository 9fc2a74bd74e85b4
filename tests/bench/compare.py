#!/usr/bin/env python3
"""smtpgate side by side with nginx mail, HAProxy and Postfix (issue 6, part 3).

    python3 tests/bench/compare.py [--reps 3] [--quick] [--servers smtpgate,nginx,haproxy,postfix]
                                   [--build DIR] [--out FILE] [--no-install] [--keep]

One command: installs the peers from Debian if missing (nginx + libnginx-mod-mail, haproxy,
postfix), builds smtpgate and its load generator if the build dir lacks them, starts every server
on loopback ports in its own temporary directory with its own self-signed ECDSA P-256
certificate and ONE worker process/thread (Postfix: one smtpd process per connection, by design),
Postfix's smtp-sink as the common backend, then runs the same cases against each server,
interleaving the servers in each repetition, and writes a markdown table of medians.

Measured per server and case, from /proc, of every process of the server (the root process and
all its descendants; children that exited are counted through their parent's cutime/cstime):
  CPU per operation   on-CPU time (per-thread schedstat, in ns) before and after the case,
                      divided by the sessions (handshake cases) or the messages (message cases);
  rate, latency       from the load generator's JSON (tests/bench/loadgen);
  memory              (PSS of all the server's processes while N idle sessions are held - PSS
                      just before) / N, from /proc/PID/smaps_rollup.
The common backend (smtp-sink) and the load generator are not counted.

Python 3 standard library only. Must run as root to start Postfix (and to install packages).
"""

import argparse
import datetime
import json
import os
import platform
import pwd
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PEERS = os.path.join(HERE, "peers")
sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from ports import free_port  # noqa: E402  (the port allocator the integration tests share)
from mta import POSTFIX_DAEMON_DIR, create_postfix_queue, find_program  # noqa: E402  (one Postfix set-up)

ALL_SERVERS = ("smtpgate", "nginx", "haproxy", "postfix")
NGINX_MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"
TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")
# Local addresses the load generator connects from in turn, so that no single source address
# carries thousands of sessions (per-IP limits, 4-tuples in TIME_WAIT).
SOURCES = ",".join("127.0.1.%d" % i for i in range(1, 41))


def log(msg):
    print("compare: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Cases

class Case:
    """One load generator run. per: "session" or "message" (the operation CPU is divided by);
    latency: the loadgen latency series quoted; legacy: run on the server's legacy listener."""

    def __init__(self, key, title, per, latency, args, limit, legacy=False, idle=0, target=None):
        self.key, self.title, self.per, self.latency = key, title, per, latency
        self.args, self.limit, self.legacy, self.idle = args, limit, legacy, idle
        self.target = target  # (text, check(row, rows_of_case) -> bool or None)


def _median_of(rows, server, field):
    r = rows.get(server)
    return r.get(field) if r else None


def make_cases(quick):
    q = quick
    hs = ["--handshake-only", "--concurrency", "5" if q else "50", "--sessions", "20" if q else "2000"]
    idle_n = 50 if q else 2000
    size20m = 200 * 1000 if q else 20 * 1000 * 1000
    return [
        Case("tls13", "STARTTLS + TLS 1.3 handshake-only session", "session", "connect_to_ready",
             ["--tls", "1.3"] + hs, 30 if q else 120,
             target=("≤ 360 µs CPU", lambda r, rows: r["cpu_us"] <= 360)),
        Case("tls12", "STARTTLS + TLS 1.2 handshake-only session", "session", "connect_to_ready",
             ["--tls", "1.2"] + hs, 30 if q else 120,
             target=("≤ 300 µs CPU", lambda r, rows: r["cpu_us"] <= 300)),
        Case("tls10", "STARTTLS + TLS 1.0 handshake-only session (legacy listener)", "session",
             "connect_to_ready", ["--tls", "1.0"] + hs, 30 if q else 120, legacy=True),
        Case("msg10k", "%s message relayed (TLS 1.3, %s sessions)" % (
                 "1 KiB" if q else "10 KiB", "2" if q else "20"), "message", "message",
             ["--tls", "1.3", "--concurrency", "2" if q else "20", "--sessions", "2" if q else "20",
              "--messages", "10" if q else "50", "--size", "1024" if q else "10240"],
             30 if q else 120,
             target=("≤ 100 µs CPU, msg/s ≥ nginx", _msg10k_target)),
        Case("msg20m", "one %s message (TLS 1.3; %s)" % (
                 "200 kB" if q else "20 MB", "1 session" if q else "3 sessions in turn, per message"),
             "message", "message",
             ["--tls", "1.3", "--sessions", "1" if q else "3", "--concurrency", "1",
              "--messages", "1", "--size", str(size20m)],
             30 if q else 120,
             target=("≤ 30 ms CPU", lambda r, rows: r["cpu_us"] <= 30000)),
        Case("idle", "%d idle TLS 1.3 sessions held (Δ PSS per session)" % idle_n, "session",
             "connect_to_ready",
             ["--tls", "1.3", "--idle", str(idle_n), "--idle-seconds", "3" if q else "8",
              "--concurrency", "5" if q else "50"], 40 if q else 300, idle=idle_n,
             target=("≤ 10 KiB", lambda r, rows: r.get("pss_kib") is not None and r["pss_kib"] <= 10)),
        Case("seq", "%d sequential TLS 1.3 sessions: connect → ready for MAIL" % (10 if q else 100),
             "session", "connect_to_ready",
             ["--tls", "1.3", "--handshake-only", "--concurrency", "1",
              "--sessions", "10" if q else "100"], 30 if q else 120,
             target=("p50 ≤ 3 ms", lambda r, rows: r["p50_ms"] <= 3)),
    ]


def _msg10k_target(row, rows):
    ok = row["cpu_us"] <= 100
    nginx_rate = _median_of(rows, "nginx", "rate")
    if nginx_rate is not None:
        ok = ok and row["rate"] >= nginx_rate
    return ok


# ---------------------------------------------------------------------------------------------
# /proc accounting

def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _stat_fields(text):
    # "pid (comm) state ppid ..." -- comm may hold spaces and parentheses.
    return text[text.rindex(")") + 2:].split()


def process_tree(roots):
    """The root PIDs and every live descendant (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        text = _read("/proc/%s/stat" % entry)
        if text:
            children.setdefault(int(_stat_fields(text)[1]), []).append(int(entry))
    out, todo = [], [r for r in roots if r]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def process_cpu(pid):
    """One process's CPU counters: {"start": starttime, "ticks": utime+stime (clock ticks, its
    exited threads included), "reaped": cutime+cstime (ticks of its exited, waited-for
    children), "threads": {tid: (on-CPU ns from schedstat, utime+stime ticks)}} or None."""
    text = _read("/proc/%d/stat" % pid)
    if not text:
        return None
    f = _stat_fields(text)
    # Fields after ")": state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14 starttime=19.
    out = {"start": f[19], "ticks": int(f[11]) + int(f[12]), "reaped": int(f[13]) + int(f[14]),
           "threads": {}}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        tids = []
    for tid in tids:
        sched = _read("/proc/%d/task/%s/schedstat" % (pid, tid))
        tstat = _read("/proc/%d/task/%s/stat" % (pid, tid))
        if sched and tstat:
            tf = _stat_fields(tstat)
            out["threads"][tid] = (int(sched.split()[0]), int(tf[11]) + int(tf[12]))
    return out


def cpu_snapshot(roots):
    """{pid: process_cpu(pid)} of the roots and all their descendants."""
    snap = {}
    for pid in process_tree(roots):
        c = process_cpu(pid)
        if c:
            snap[pid] = c
    return snap


def _accounted_ns(c):
    """All the CPU time a process has used, as far as its counters tell: ns of its live threads,
    ticks of exited threads and of reaped children."""
    live_ns = sum(ns for ns, _ in c["threads"].values())
    live_ticks = sum(t for _, t in c["threads"].values())
    return max(live_ns, c["ticks"] * TICK_NS) if c["ticks"] > live_ticks + len(c["threads"]) else live_ns


def cpu_delta_ns(before, after):
    """CPU used between two snapshots by the processes of a server. Live threads count to the
    ns (schedstat); a process whose threads exited counts in ticks; a process that exited counts
    through its parent's cutime/cstime (ticks), less what it had already used before."""
    total = 0.0
    for pid, a in after.items():
        total += (a["reaped"] - (before[pid]["reaped"] if pid in before and
                                 before[pid]["start"] == a["start"] else 0)) * TICK_NS
        b = before.get(pid)
        if b is None or b["start"] != a["start"]:
            total += _accounted_ns(a)  # started during the interval
        elif set(b["threads"]) <= set(a["threads"]):
            total += sum(ns - b["threads"].get(tid, (0, 0))[0] for tid, (ns, _) in a["threads"].items())
        else:  # some thread exited: only the process's tick counter still has its time
            total += (a["ticks"] - b["ticks"]) * TICK_NS
    for pid, b in before.items():
        a = after.get(pid)
        if a is None or a["start"] != b["start"]:
            # Exited: its whole life is in its parent's cutime/cstime now, counted above.
            total -= _accounted_ns(b) + b["reaped"] * TICK_NS
    return total


def tree_pss_kib(roots):
    total = 0
    for pid in process_tree(roots):
        text = _read("/proc/%d/smaps_rollup" % pid)
        for line in (text or "").splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                break
    return total


# ---------------------------------------------------------------------------------------------
# Servers

def make_certificate(directory, name="gw.test"):
    """A self-signed ECDSA P-256 certificate: (cert, key, pem with both)."""
    cert, key, pem = (os.path.join(directory, n) for n in ("cert.pem", "key.pem", "both.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "30", "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name],
                   check=True, capture_output=True)
    with open(pem, "w") as out:
        for p in (cert, key):
            with open(p) as f:
                out.write(f.read())
    return cert, key, pem


def fill(template, dest, values):
    with open(os.path.join(PEERS, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    with open(dest, "w") as f:
        f.write(text)
    return dest


def listening(port, host="127.0.0.1"):
    """True when something listens on host:port (from /proc/net/tcp: no connection made)."""
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(host.split("."))), port)
    for line in (_read("/proc/net/tcp") or "").splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A":
            return True
    return False


class Server:
    """A server process we started, in its own directory. ports: "main" (the port of the cases),
    "legacy" (TLS 1.0 allowed); mode: how the load generator talks to "main"."""

    name = "server"
    mode = "starttls"
    note = ""
    idle_cap = None  # at most this many idle sessions (Postfix: one process per session)

    def __init__(self, keep=False):
        self.dir = tempfile.mkdtemp(prefix="smtpgate-bench-%s-" % self.name)
        os.chmod(self.dir, 0o755)
        self.keep = keep
        self.proc = None
        self.ports = {}
        self.log_path = os.path.join(self.dir, "output.log")
        self._log = None

    def roots(self):
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []

    def cpu_snapshot(self):
        return cpu_snapshot(self.roots())

    def pss_kib(self):
        return tree_pss_kib(self.roots())

    def spawn(self, cmd, timeout=30, ready=None):
        self._log = open(self.log_path, "ab")
        self._log_start = self._log.tell()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.proc.returncode,
                                                             self.output()))
            if all(listening(p) for p in self.ports.values()) and (ready is None or ready()):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("%s did not listen on %s within %ss:\n%s" % (
            self.name, sorted(self.ports.values()), timeout, self.output()))

    def output(self):
        return (_read(self.log_path) or "")[-4000:]

    def output_since_start(self):
        with open(self.log_path, "rb") as f:
            f.seek(self._log_start)
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Our process first, then SIGKILL to it and to whatever it started that is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            spawned = process_tree([self.proc.pid])[1:]
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                spawned = list(set(spawned + process_tree([self.proc.pid])[1:]))
                self.proc.kill()
                self.proc.wait()
            for pid in spawned:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._log:
            self._log.close()
            self._log = None

    def restart(self):
        """A fresh process (new ports), for a memory measurement that starts from nothing."""
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class SmtpSink(Server):
    """Postfix's smtp-sink: the common backend, discarding every message."""

    name = "smtp-sink"

    def start(self):
        self.port = free_port()
        self.ports = {"main": self.port}
        cmd = [find_program("smtp-sink"), "-h", "sink.test"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]  # required when started as root
        return self.spawn(cmd + ["-m", "10000", "127.0.0.1:%d" % self.port, "1000"])


class Smtpgate(Server):
    name = "smtpgate"
    note = "1 worker; strict STARTTLS, legacy STARTTLS and implicit listeners; traces on (SQLite)"

    def __init__(self, binary, sink_port, keep=False):
        super().__init__(keep)
        self.binary, self.sink_port = binary, sink_port

    def start(self):
        self.ports = {"main": free_port(), "legacy": free_port(), "implicit": free_port()}
        cert, key, _ = make_certificate(self.dir)
        config = {
            "hostname": "gw.test",
            "state_dir": self.dir,
            "workers": 1,
            "listeners": [
                {"name": "strict-starttls", "listen": "127.0.0.1:%d" % self.ports["main"],
                 "tls": "starttls", "endpoint": "strict"},
                {"name": "legacy-starttls", "listen": "127.0.0.1:%d" % self.ports["legacy"],
                 "tls": "starttls", "endpoint": "legacy"},
                {"name": "strict-implicit", "listen": "127.0.0.1:%d" % self.ports["implicit"],
                 "tls": "implicit", "endpoint": "strict"},
            ],
            "certificates": [{"cert": cert, "key": key}],
            "backend": {"smtp": "127.0.0.1:%d" % self.sink_port, "handoff": "none"},
            "limits": {"max_connections": 20000, "max_connections_per_ip": 5000,
                       "timeouts_s": {"drain": 2}},
            "trace": {"store": "sqlite"},
        }
        path = os.path.join(self.dir, "smtpgate.json")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        return self.spawn([self.binary, "run", "--config", path],
                          ready=lambda: " ready: " in self.output_since_start())


class Nginx(Server):
    name = "nginx"
    note = "nginx %s, mail module, 1 worker process, smtp_auth none, proxy_buffer 64k"

    def __init__(self, sink_port, keep=False):
        super().__init__(keep)
        self.sink_port = sink_port
        version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
        self.note = self.note % version.strip().split("/")[-1]

    def start(self):
        self.ports = {"main": free_port(), "legacy": free_port(), "auth": free_port()}
        cert, key, _ = make_certificate(self.dir)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        conf = fill("nginx.conf.in", os.path.join(self.dir, "nginx.conf"), {
            "DIR": self.dir, "MAIL_MODULE": NGINX_MAIL_MODULE, "AUTH_PORT": self.ports["auth"],
            "SINK_PORT": self.sink_port, "CERT": cert, "KEY": key,
            "STARTTLS_PORT": self.ports["main"], "LEGACY_PORT": self.ports["legacy"]})
        return self.spawn(["nginx", "-p", self.dir, "-c", conf],
                          ready=lambda: len(process_tree(self.roots())) >= 2)


class Haproxy(Server):
    name = "haproxy"
    mode = "implicit"
    note = "HAProxy %s, tcp mode, nbthread 1, implicit TLS only (no STARTTLS)"

    def __init__(self, sink_port, keep=False):
        super().__init__(keep)
        self.sink_port = sink_port
        version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout
        self.note = self.note % (version.split()[2] if len(version.split()) > 2 else "?")

    def start(self):
        self.ports = {"main": free_port(), "legacy": free_port()}
        _, _, pem = make_certificate(self.dir)
        cfg = fill("haproxy.cfg.in", os.path.join(self.dir, "haproxy.cfg"), {
            "IMPLICIT_PORT": self.ports["main"], "LEGACY_PORT": self.ports["legacy"],
            "PEM": pem, "SINK_PORT": self.sink_port})
        return self.spawn(["haproxy", "-db", "-f", cfg])


class Postfix(Server):
    name = "postfix"
    # 2000 idle sessions are 2000 smtpd processes: on 2 cores that takes minutes to set up and
    # starves everything else. Its memory per session is per process, so 200 tell the same.
    idle_cap = 200
    note = ("Postfix %s smtpd, opportunistic TLS, discard transport; one smtpd process per "
            "connection by design (master and all its children counted)")

    def __init__(self, procs, keep=False):
        super().__init__(keep)
        self.procs = procs
        version = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True,
                                 text=True).stdout.strip()
        self.note = self.note % version

    def start(self):
        self.ports = {"main": free_port(), "legacy": free_port()}
        cert, key, _ = make_certificate(self.dir)
        conf = os.path.join(self.dir, "conf")
        queue = os.path.join(self.dir, "queue")
        data = os.path.join(self.dir, "data")
        for d in (conf, queue, data):
            os.makedirs(d, exist_ok=True)
        os.chown(data, pwd.getpwnam("postfix").pw_uid, -1)
        values = {"DIR": self.dir, "CERT": cert, "KEY": key, "PROCS": self.procs,
                  "STARTTLS_PORT": self.ports["main"], "LEGACY_PORT": self.ports["legacy"]}
        fill("main.cf.in", os.path.join(conf, "main.cf"), values)
        fill("master.cf.in", os.path.join(conf, "master.cf"), values)
        create_postfix_queue(queue)
        # master in the foreground as our child (-s keeps its output), rather than
        # `postfix -c DIR start`: its PID is ours and its process tree is the server's.
        return self.spawn([os.path.join(POSTFIX_DAEMON_DIR, "master"), "-c", conf, "-s"])


def raise_fd_limit():
    """Thousands of sockets per server and in the load generator: soft limit up to the hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# ---------------------------------------------------------------------------------------------
# Set-up: packages and build

PACKAGES = {"nginx": ["nginx", "libnginx-mod-mail"], "haproxy": ["haproxy"], "postfix": ["postfix"]}


def installed(pkg):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return "install ok installed" in out.stdout


def ensure_packages(servers, allow_install):
    missing = [p for s in servers for p in PACKAGES.get(s, []) if not installed(p)]
    if not missing:
        return
    if not allow_install:
        raise SystemExit("compare: missing packages %s (run without --no-install, as root)" % missing)
    if os.geteuid() != 0:
        raise SystemExit("compare: run as root to install %s" % missing)
    log("installing " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Postfix only as a benchmark peer: no system mailer (as deploy/bootstrap.sh installs it).
    subprocess.run(["debconf-set-selections"], input="postfix postfix/main_mailer_type select "
                   "No configuration\n", text=True, check=True)
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing,
                   env=env, check=True, stdout=subprocess.DEVNULL)
    if os.path.isdir("/run/systemd/system"):
        # The packages' own system services are not the peers: ours run on private ports.
        units = [u for u in ("nginx", "haproxy", "postfix") if u in missing]
        subprocess.run(["systemctl", "disable", "--now"] + units, capture_output=True)


def binaries(build):
    return (os.path.join(build, "gateway", "smtpgate"),
            os.path.join(build, "tests", "bench", "loadgen", "smtpgate-loadgen"))


def ensure_build(build, given, allow_install):
    gate, loadgen = binaries(build)
    if os.access(gate, os.X_OK) and os.access(loadgen, os.X_OK):
        return gate, loadgen
    if given and os.path.exists(os.path.join(build, "CMakeCache.txt")):
        log("building smtpgate and smtpgate-loadgen in " + build)
        subprocess.run(["cmake", "--build", build, "--target", "smtpgate", "smtpgate-loadgen"],
                       check=True)
    else:
        if not allow_install and not os.path.exists(os.path.join(build, "CMakeCache.txt")):
            raise SystemExit("compare: %s has no build (drop --no-install or give --build)" % build)
        log("building smtpgate (RelWithDebInfo) in " + build)
        env = dict(os.environ, SMTPGATE_BUILD_DIR=build)
        subprocess.run(["bash", os.path.join(ROOT, "deploy", "bootstrap.sh"), "build"], env=env,
                       check=True)
        # The load generator is built with the tests (they need catch2 to configure).
        if allow_install and not installed("catch2"):
            ensure_apt(["catch2"])
        subprocess.run(["cmake", "-S", ROOT, "-B", build, "-G", "Ninja",
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DSMTPGATE_BUILD_TESTS=ON"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "--target", "smtpgate", "smtpgate-loadgen"],
                       check=True)
    if not (os.access(gate, os.X_OK) and os.access(loadgen, os.X_OK)):
        raise SystemExit("compare: %s or %s missing after the build" % (gate, loadgen))
    return gate, loadgen


def ensure_apt(pkgs):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + pkgs, env=env,
                   check=True, stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# Running the cases

def idle_sessions(case, server):
    if server.idle_cap and case.idle > server.idle_cap:
        return server.idle_cap
    return case.idle


def run_loadgen(loadgen, server, case, on_held=None):
    """One load generator run against server: (result dict, stderr text)."""
    port = server.ports["legacy" if case.legacy else "main"]
    args = list(case.args)
    if case.idle:
        args[args.index("--idle") + 1] = str(idle_sessions(case, server))
    cmd = [loadgen, "--host", "127.0.0.1", "--port", str(port), "--mode", server.mode,
           "--duration-limit", str(case.limit), "--timeout", "30"] + args
    if case.key != "seq":
        cmd += ["--source", SOURCES]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killer = threading.Timer(case.limit + 30, proc.kill)  # the loadgen bounds itself; belt and braces
    killer.start()
    err = []
    try:
        for line in proc.stderr:
            err.append(line)
            if on_held and "holding" in line and "idle sessions" in line:
                on_held()
        out = proc.stdout.read()
        proc.wait()
    finally:
        killer.cancel()
    if proc.returncode != 0:
        raise RuntimeError("loadgen exited %s: %s\n%s" % (proc.returncode, " ".join(cmd), "".join(err)))
    return json.loads(out.strip().splitlines()[-1]), "".join(err)


def measure(loadgen, server, case):
    """CPU, rate, latency (and PSS for the idle case) of one run of case against server."""
    held = {}

    def on_held():
        time.sleep(1.0)  # let the server settle (buffers released on idle sessions)
        held["pss"] = server.pss_kib()

    if case.idle:
        # A fresh server: pools and heaps that earlier cases grew would hide the memory of the
        # idle sessions (HAProxy keeps its freed pool memory, allocators their free lists).
        server.restart()
    time.sleep(0.3)
    pss_before = server.pss_kib() if case.idle else None
    cpu_before = server.cpu_snapshot()
    result, stderr = run_loadgen(loadgen, server, case, on_held if case.idle else None)
    time.sleep(0.5)  # closes and deferred work (trace writes) belong to the case
    cpu_after = server.cpu_snapshot()
    ops = result["messages_ok"] if case.per == "message" else result["sessions_ok"]
    lat = result["latency_ms"].get(case.latency, {})
    row = {
        "cpu_us": cpu_delta_ns(cpu_before, cpu_after) / 1000.0 / ops if ops else None,
        "rate": result["messages_per_s"] if case.per == "message" else result["sessions_per_s"],
        "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"),
        "ops": ops,
        "failed": result.get("sessions_failed", 0) + result.get("messages_failed", 0),
        "errors": {k: v for k, v in result.get("errors", {}).items() if v},
        "negotiated": result.get("negotiated"),
    }
    if case.idle:
        held_n = result.get("idle_held") or 0
        row["pss_kib"] = ((held["pss"] - pss_before) / held_n) if ("pss" in held and held_n) else None
        row["idle_held"] = held_n
        if held_n < idle_sessions(case, server):
            row["failed"] = row["failed"] or (idle_sessions(case, server) - held_n)
    if ops == 0:
        raise RuntimeError("no operation succeeded: %s" % json.dumps(result))
    return row


def median_rows(samples):
    """{field: median over the repetitions} (numbers only; failures added up)."""
    out = {}
    for field in ("cpu_us", "rate", "p50_ms", "p99_ms", "pss_kib"):
        values = [s[field] for s in samples if s.get(field) is not None]
        out[field] = statistics.median(values) if values else None
    out["failed"] = sum(s["failed"] for s in samples)
    out["reps"] = len(samples)
    out["all_cpu_us"] = [s["cpu_us"] for s in samples if s.get("cpu_us") is not None]
    return out


# ---------------------------------------------------------------------------------------------
# Report

def machine():
    model = "?"
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return model, os.cpu_count(), platform.release()


def loadavg():
    return " ".join((_read("/proc/loadavg") or "? ? ?").split()[:3])


def fmt(value, digits=0):
    if value is None:
        return "—"
    if digits == 0:
        return "{:,}".format(int(round(value))).replace(",", " ")
    return "%.*f" % (digits, value)


def report(args, argv, cases, servers, results, notes, started, load_before, load_after, failures):
    model, cores, kernel = machine()
    lines = [
        "# smtpgate performance, side by side",
        "",
        "Measured by `tests/bench/compare.py` (issue 6). Reproduce with "
        "`python3 tests/bench/compare.py --reps 3` (as root on Debian 12: it installs the peers"
        " and builds smtpgate in `build/`); this run was:",
        "",
        "```",
        "python3 tests/bench/compare.py " + " ".join(shlex.quote(a) for a in argv),
        "```",
        "",
        "- date: %s" % started.strftime("%Y-%m-%d %H:%M UTC"),
        "- machine: %s, %d cores, Linux %s" % (model, cores, kernel),
        "- load average (1/5/15 min) before: %s, after: %s (the after figure includes the "
        "run's own processes)" % (load_before, load_after),
        "- repetitions: %d, servers interleaved in each; medians quoted%s" % (
            args.reps, " (--quick: tiny cases, numbers not meaningful)" if args.quick else ""),
        "",
        "Servers, each with a self-signed ECDSA P-256 certificate, on loopback, with Postfix's "
        "smtp-sink as the common backend (not counted):",
        "",
    ]
    for s in servers:
        lines.append("- **%s**: %s" % (s.name, s.note))
    lines += [
        "",
        "CPU µs/op: user+system CPU time of every process of the server (from /proc, "
        "exited children included) during the case, per session (handshake and idle cases) or "
        "per message. Rate: sessions/s or messages/s at the load generator. Latency: "
        "connect → ready for MAIL (session cases) or MAIL → 250 after the data (message cases). "
        "Δ PSS: (PSS of the server's processes while the idle sessions are held − PSS "
        "before) / sessions, on a server restarted just before. HAProxy only terminates implicit TLS: its rows (marked *implicit*) "
        "are the same cases over implicit TLS, with the backend connection it opens for "
        "every session. The target column is issue 6's target for smtpgate.",
        "",
        "| case | server | CPU µs/op | rate /s | p50 ms | p99 ms | Δ PSS KiB/session | target (smtpgate) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for case in cases:
        rows = {s: median_rows(results[(s, case.key)]) for s in [x.name for x in servers]
                if results.get((s, case.key))}
        for s in servers:
            key = (s.name, case.key)
            if key in failures and not results.get(key):
                lines.append("| %s | %s | failed: %s | | | | | |" % (case.title, s.name, failures[key]))
                continue
            if s.name not in rows:
                continue
            r = rows[s.name]
            name = s.name + (" *implicit*" if s.mode == "implicit" else "")
            if case.idle and idle_sessions(case, s) != case.idle:
                name += " (%d sessions)" % idle_sessions(case, s)
            if r["failed"]:
                name += " (%d failed)" % r["failed"]
            target = ""
            if s.name == "smtpgate" and case.target and r["cpu_us"] is not None:
                text, check = case.target
                target = "%s: **%s**" % (text, "met" if check(r, rows) else "missed")
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                case.title, name, fmt(r["cpu_us"]), fmt(r["rate"]), fmt(r["p50_ms"], 2),
                fmt(r["p99_ms"], 2), fmt(r["pss_kib"], 1) if case.idle else "", target))
    lines += ["", "CPU µs/op of each repetition (spread):", ""]
    for case in cases:
        for s in servers:
            samples = results.get((s.name, case.key))
            if samples:
                lines.append("- %s, %s: %s" % (case.key, s.name, ", ".join(
                    fmt(x["cpu_us"]) for x in samples)))
    names = [s.name for s in servers]
    if "postfix" in names and any(c.idle for c in cases):
        notes.append("Postfix holds each idle session in its own smtpd process: its idle case "
                     "holds %d sessions (not %d) so as not to fork thousands of processes on "
                     "this machine; its Δ PSS per session is per process either way." % (
                         Postfix.idle_cap, max(c.idle for c in cases)))
    if "nginx" in names:
        notes.append("nginx's mail proxy sets no TCP_NODELAY on its sockets: its STARTTLS "
                     "TLS 1.3 sessions and its messages wait for the peer's delayed ACK "
                     "(≈ 40 ms, see its p50); when this script was written, proxy_buffer 4k, "
                     "64k and 1m gave the same message rate here.")
    if notes:
        lines += ["", "Notes:", ""] + ["- " + n for n in notes]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------

def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", help="smtpgate build dir (default ./build; built if missing)")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3, 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="a tiny version of every case (< 1 min)")
    p.add_argument("--servers", default=",".join(ALL_SERVERS),
                   help="comma-separated subset of " + ",".join(ALL_SERVERS))
    p.add_argument("--cases", default="", help="comma-separated subset of the case keys")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "performance.md"))
    p.add_argument("--no-install", action="store_true", help="never install packages or build deps")
    p.add_argument("--keep", action="store_true", help="keep the servers' temporary directories")
    args = p.parse_args(argv)
    # A SIGTERM (or a terminal hang-up) unwinds like Ctrl-C: the servers are stopped below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in wanted:
        if s not in ALL_SERVERS:
            p.error("unknown server %r" % s)
    cases = make_cases(args.quick)
    if args.cases:
        keys = args.cases.split(",")
        cases = [c for c in cases if c.key in keys]
    started = datetime.datetime.now(datetime.timezone.utc)

    ensure_packages(wanted + ["postfix"], not args.no_install)  # smtp-sink comes with postfix
    build = os.path.abspath(args.build or os.path.join(ROOT, "build"))
    gate_bin, loadgen = ensure_build(build, args.build is not None, not args.no_install)
    if os.geteuid() != 0 and "postfix" in wanted:
        log("not root: Postfix skipped")
        wanted.remove("postfix")

    raise_fd_limit()

    load_before = loadavg()
    notes, results, failures = [], {}, {}
    sink = SmtpSink(args.keep)
    servers = []
    try:
        sink.start()
        idle_max = max([c.idle for c in cases] + [50])
        for name in wanted:
            if name == "smtpgate":
                s = Smtpgate(gate_bin, sink.port, args.keep)
            elif name == "nginx":
                s = Nginx(sink.port, args.keep)
            elif name == "haproxy":
                s = Haproxy(sink.port, args.keep)
            else:
                s = Postfix(min(idle_max, Postfix.idle_cap) + 200, args.keep)
            servers.append(s)
            log("starting %s" % name)
            s.start()
        for rep in range(args.reps):
            for case in cases:
                # Interleaved: each repetition runs the case against every server in turn.
                for s in servers:
                    key = (s.name, case.key)
                    try:
                        row = measure(loadgen, s, case)
                    except Exception as e:  # one failing peer must not end the run
                        failures[key] = str(e).splitlines()[0][:200]
                        log("rep %d %s %s: FAILED %s" % (rep + 1, case.key, s.name, e))
                        continue
                    results.setdefault(key, []).append(row)
                    log("rep %d %-6s %-8s cpu %s µs/op, %s/s, p50 %s ms%s%s" % (
                        rep + 1, case.key, s.name, fmt(row["cpu_us"]), fmt(row["rate"]),
                        fmt(row["p50_ms"], 2),
                        ", pss %s KiB/session" % fmt(row.get("pss_kib"), 1) if case.idle else "",
                        ", %d failed %s" % (row["failed"], row["errors"]) if row["failed"] else ""))
    finally:
        for s in servers:
            s.cleanup()
        sink.cleanup()
    load_after = loadavg()
    # Only the load before the run says whether other work was there: the load after counts the
    # run's own last minutes (2000 held sessions, a Postfix smtpd per connection).
    if float(load_before.split()[0]) > 1.0:
        notes.append("the machine was not idle (load average before the run above 1): other work "
                     "shared its 2 cores; compare servers within this run only")
    text = report(args, argv, cases, servers, results, notes, started, load_before, load_after,
                  failures)
    sys.stdout.write(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        log("wrote " + args.out)
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
