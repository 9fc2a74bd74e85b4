"""Real mail servers as backends for the integration tests (standard library only).

    Postfix(port=None, sasl_users={"alice@example.com": "pw"}, xclient_hosts=["127.0.0.0/8"],
            proxy_protocol=None | "haproxy", maildir=True, tls=False, domains=None)
    Exim(port=None, proxy_protocol_hosts="127.0.0.0/8", sasl_users=None, domains="*")
    SmtpSink(port=None, *flags)            -- Postfix's smtp-sink with fault flags (see below)

Each rig lives in its own temporary directory (configuration, queue/spool, maildir, log), listens
on 127.0.0.1:PORT (a free port unless given), runs as a child process of the test (killed by its
PID, with every process it spawned) and is a context manager:

    with Postfix(sasl_users={"alice@example.com": "secret"}) as pf:
        ... talk to 127.0.0.1:pf.port ...
        msg = pf.wait_for_messages(1)[0]          # Message: .raw, .headers, .body
        pf.log()                                  # the maillog text: client=unknown[192.0.2.10]

The Postfix smtpd service and the Exim listener are generated from the recipes in deploy/
(deploy/postfix/master.cf.smtpgate, deploy/postfix/sasl/smtpd.conf, deploy/exim/*.conf), so the
tests run what the README tells mail admins to install.

Exim comes from Debian's exim4-daemon-heavy package, unpacked (not installed: it conflicts with
postfix) by `deploy/bootstrap.sh test` into /opt/smtpgate-test/exim/root (SMTPGATE_EXIM_DIR
overrides /opt/smtpgate-test/exim). The light daemon is built without PROXY support.

smtp-sink fault flags (smtp-sink(1); CMD is connect, helo, ehlo, mail, rcpt, data, ".", rset,
quit, ... and may be a comma-separated list):
    -Q CMD    reply 421 and disconnect after CMD (e.g. "-Q ." : lost after the end of DATA)
    -q CMD    disconnect without any reply after CMD (e.g. "-q data", "-q .")
    -r CMD    soft reject CMD: "450 4.3.0 Error: command failed" (text: -b TEXT)
    -f CMD    hard reject CMD: "500 5.3.0 Error: command failed" (text: -B TEXT)
    -A DELAY  after "354" wait DELAY seconds, reply 550 and stop reading (abort inside DATA)
    -w DELAY  wait DELAY seconds before answering DATA; -W CMD:DELAY the same for any command
    -a -C -F -p -e -E -8 -N   do not offer AUTH, XCLIENT, XFORWARD, PIPELINING, ESMTP (EHLO is
              rejected), ENHANCEDSTATUSCODES, 8BITMIME, DSN
    -n N / -M N  exit after N sessions / N messages (a backend that goes away)
"""

import atexit
import base64
import email.parser
import email.policy
import glob
import ipaddress
import os
import pwd
import grp
import re
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEPLOY = os.path.normpath(os.path.join(HERE, "..", "..", "deploy"))
POSTFIX_SERVICES = os.path.join(DEPLOY, "postfix", "master.cf.smtpgate")
POSTFIX_SASL_CONF = os.path.join(DEPLOY, "postfix", "sasl", "smtpd.conf")
EXIM_MAIN = os.path.join(DEPLOY, "exim", "smtpgate-main.conf")
EXIM_ACL = os.path.join(DEPLOY, "exim", "smtpgate-acl.conf")

# The ports the recipes name; the rigs substitute their own.
RECIPE_XCLIENT_SERVICE = "127.0.0.1:10025"
RECIPE_PROXY_SERVICE = "127.0.0.1:10027"
RECIPE_EXIM_PORT = 10026

EXIM_DIR = os.environ.get("SMTPGATE_EXIM_DIR", "/opt/smtpgate-test/exim")
EXIM_BIN = os.path.join(EXIM_DIR, "root", "usr", "sbin", "exim4")
EXIM_USER = "Debian-exim"  # compiled into Debian's exim binary

POSTFIX_DAEMON_DIR = "/usr/lib/postfix/sbin"
MAIL_UID_USER = "nobody"  # Postfix virtual(8) delivers as this user


from ports import free_port  # noqa: E402  (one allocator for every test process)


def find_program(name, dirs=("/usr/sbin", "/usr/bin", "/usr/lib/postfix/sbin", "/sbin", "/bin")):
    for d in dirs:
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def postfix_available():
    """None if the Postfix rig can run here, else the reason."""
    if os.geteuid() != 0:
        return "the Postfix rig needs root (master runs as root, delivers as %s)" % MAIL_UID_USER
    for prog in ("postfix", "postconf", "saslpasswd2"):
        if not find_program(prog):
            return "%s not found: run deploy/bootstrap.sh test (packages postfix, sasl2-bin)" % prog
    if not os.access(os.path.join(POSTFIX_DAEMON_DIR, "master"), os.X_OK):
        return "Postfix master not found in " + POSTFIX_DAEMON_DIR
    return None


def exim_available():
    """None if the Exim rig can run here, else the reason."""
    if os.geteuid() != 0:
        return "the Exim rig needs root (Exim refuses -C configurations otherwise)"
    if not os.access(EXIM_BIN, os.X_OK):
        return "%s missing: run deploy/bootstrap.sh test (unpacks exim4-daemon-heavy)" % EXIM_BIN
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        return "user %s missing: run deploy/bootstrap.sh test" % EXIM_USER
    return None


# ---------------------------------------------------------------------------------------------
# Processes

def _children_of(pid):
    """Every live descendant of pid (from /proc), deepest last."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ..." -- comm may contain spaces and parentheses.
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _listening(port, host="127.0.0.1"):
    """True when something listens on host:port (read from /proc/net/tcp, so that waiting for
    a server never opens a session: no PROXY header timeouts, no smtp-sink -n session used)."""
    want = "%s:%04X" % ("".join("%02X" % b for b in reversed(socket.inet_aton(host))), port)
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def create_postfix_queue(queue_dir):
    """The queue directories with the owners and modes of the installed postfix-files (what
    `postfix check` would create; that takes seconds, this takes milliseconds)."""
    owners = {"root": 0, "$mail_owner": pwd.getpwnam("postfix").pw_uid, "-": -1}
    groups = {"-": -1, "$setgid_group": grp.getgrnam("postdrop").gr_gid}
    meta = subprocess.run(["postconf", "-h", "meta_directory"], capture_output=True,
                          text=True).stdout.strip() or "/etc/postfix"
    with open(os.path.join(meta, "postfix-files")) as f:
        for line in f:
            fields = line.strip().split(":")
            if len(fields) < 5 or fields[1] != "d" or not fields[0].startswith("$queue_directory"):
                continue
            path = queue_dir + fields[0][len("$queue_directory"):]
            os.makedirs(path, exist_ok=True)
            os.chown(path, owners.get(fields[2], -1), groups.get(fields[3], -1))
            os.chmod(path, int(fields[4], 8))


_LIVE = set()


@atexit.register
def _stop_all():
    """A test that forgot stop() must not leave daemons behind."""
    for rig in list(_LIVE):
        rig.stop()


class _Rig:
    """A server process we own, in its own directory."""

    name = "rig"

    def __init__(self, port=None, prefix="smtpgate-mta-"):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix=prefix)
        # Postfix and Exim drop privileges: their users must reach into the directory.
        os.chmod(self.dir, 0o755)
        self.proc = None
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self._stderr = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, cmd, timeout=20):
        if self.proc is not None and self.proc.poll() is None:
            # A second daemon on the same port would find the first one listening, and the
            # first would be left running when stop() ends the second (seen: `with rig:` does
            # start() already).
            raise RuntimeError("%s in %s is already running" % (self.name, self.dir))
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        _LIVE.add(self)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.proc.returncode,
                                                             self.diagnostics()))
            if _listening(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("%s did not listen on 127.0.0.1:%d within %ss:\n%s" % (
            self.name, self.port, timeout, self.diagnostics()))

    def diagnostics(self):
        out = []
        try:
            with open(self.stderr_path, errors="replace") as f:
                out.append(f.read())
        except OSError:
            pass
        try:
            out.append(self.log())
        except OSError:
            pass
        return "\n".join(out)[-6000:]

    def log(self):
        return ""

    def stop(self, timeout=10):
        """SIGTERM to our process, then SIGKILL to it and to anything it started that is left."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            spawned = _children_of(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                spawned = list(set(spawned + _children_of(self.proc.pid)))
                self.proc.kill()
                self.proc.wait()
            for pid in spawned:
                _kill_pid(pid, signal.SIGKILL)
        if self._stderr:
            self._stderr.close()
            self._stderr = None
        _LIVE.discard(self)
        return self.proc.returncode

    def cleanup(self):
        """stop() and remove the directory (keep it with SMTPGATE_KEEP_RIGS=1)."""
        self.stop()
        if not os.environ.get("SMTPGATE_KEEP_RIGS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def wait_for_log(self, pattern, timeout=10):
        """The first match of the regular expression in log(), waiting for it to appear."""
        deadline = time.time() + timeout
        while True:
            m = re.search(pattern, self.log())
            if m:
                return m
            if time.time() > deadline:
                raise AssertionError("%s log has no %r after %ss:\n%s" % (
                    self.name, pattern, timeout, self.log()[-4000:]))
            time.sleep(0.1)

    # Maildir -----------------------------------------------------------------------------------

    maildir = None

    def messages(self):
        """Every delivered message, oldest first."""
        if not self.maildir:
            return []
        paths = []
        for sub in ("new", "cur"):
            paths += glob.glob(os.path.join(self.maildir, sub, "*"))
        paths.sort(key=lambda p: (os.stat(p).st_mtime_ns, os.path.basename(p)))
        return [Message(p) for p in paths]

    def wait_for_messages(self, n=1, timeout=15):
        """At least n delivered messages (all of them, oldest first), or AssertionError."""
        deadline = time.time() + timeout
        while True:
            found = self.messages()
            if len(found) >= n:
                return found
            if time.time() > deadline:
                raise AssertionError("%s: %d of %d messages after %ss; log:\n%s" % (
                    self.name, len(found), n, timeout, self.log()[-4000:]))
            time.sleep(0.1)


class Message:
    """One delivered message: raw bytes as stored (LF line ends), parsed headers, body."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.raw = f.read()
        self.headers = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            self.raw, headersonly=True)
        sep = self.raw.find(b"\n\n")
        self.body = self.raw[sep + 2:] if sep >= 0 else b""

    def __getitem__(self, name):
        return self.headers[name]

    def get_all(self, name):
        return self.headers.get_all(name) or []

    def __repr__(self):
        return "<Message %s %d bytes>" % (os.path.basename(self.path), len(self.raw))


# ---------------------------------------------------------------------------------------------
# Postfix

def read_master_cf_service(path, service):
    """(type, private, unpriv, chroot, wakeup, maxproc, command) and the ordered list of
    (name, value) "-o" overrides of one service entry of a master.cf file."""
    entry, options, current = None, [], False
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not line[0].isspace():
                fields = line.split()
                current = fields[0] == service
                if current:
                    entry = fields[1:]
                continue
            if current:
                parts = stripped.split()
                for i, word in enumerate(parts):
                    if word == "-o" and i + 1 < len(parts):
                        name, _, value = parts[i + 1].partition("=")
                        options.append((name, value))
    if entry is None:
        raise ValueError("%s has no service %s" % (path, service))
    return entry, options


def read_sasl_conf(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition(":")
                out.append((key.strip(), value.strip()))
    return out


def make_certificate(directory, name="localhost"):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "30", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=DNS:" + name],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


# The internal services of a minimal Postfix (no chroot anywhere: the queue is private).
_POSTFIX_INTERNAL = """\
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix(_Rig):
    """A private Postfix instance: the smtpd service of deploy/postfix/master.cf.smtpgate on
    127.0.0.1:port, Cyrus SASL with a private sasldb, delivery of every recipient into one
    maildir (self.maildir), logging into self.maillog (postlogd).

    sasl_users: {"alice@example.com": "secret", "bob": "pw"}; "user@realm" is stored as user
        "user" in realm "realm" (log in as "user@realm"), a bare name in realm myhostname.
    xclient_hosts: smtpd_authorized_xclient_hosts (None or [] turns XCLIENT off).
    proxy_protocol: None (the recipe's XCLIENT service) or "haproxy" (its PROXY service).
    maildir: False throws accepted messages away (virtual_transport = discard).
    tls: True offers STARTTLS with a generated certificate (smtpd_tls_security_level = may).
    domains: None accepts every domain as local; a list makes only those local, so that
        reject_unauth_destination applies to the others.
    main_cf / service_options: extra main.cf settings / extra -o overrides for the service.
    """

    name = "postfix"

    def __init__(self, port=None, sasl_users=None, xclient_hosts=("127.0.0.0/8",),
                 proxy_protocol=None, maildir=True, tls=False, domains=None,
                 hostname="mx.test", main_cf=None, service_options=None):
        super().__init__(port, prefix="smtpgate-postfix-")
        if proxy_protocol not in (None, "haproxy"):
            raise ValueError("proxy_protocol: None or 'haproxy'")
        self.hostname = hostname
        self.conf_dir = os.path.join(self.dir, "conf")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        # Debian's Postfix reads Cyrus's smtpd.conf from $config_directory/sasl whatever
        # cyrus_sasl_config_path says; the rig sets both to the same place.
        self.sasl_dir = os.path.join(self.conf_dir, "sasl")
        self.mail_base = os.path.join(self.dir, "mail")
        self.maildir = os.path.join(self.mail_base, "inbox") if maildir else None
        self.maillog = os.path.join(self.dir, "maillog")
        self.sasldb = os.path.join(self.sasl_dir, "sasldb2")
        for d in (self.conf_dir, self.queue_dir, self.data_dir, self.sasl_dir, self.mail_base):
            os.makedirs(d)
        nobody = pwd.getpwnam(MAIL_UID_USER)
        os.chown(self.data_dir, pwd.getpwnam("postfix").pw_uid, -1)
        os.chown(self.mail_base, nobody.pw_uid, nobody.pw_gid)
        os.chmod(self.mail_base, 0o700)

        recipe = RECIPE_PROXY_SERVICE if proxy_protocol else RECIPE_XCLIENT_SERVICE
        entry, options = read_master_cf_service(POSTFIX_SERVICES, recipe)
        overrides = {
            "smtpd_authorized_xclient_hosts": ",".join(xclient_hosts or ()),
        }
        self.cert = self.key = None
        if tls:
            tls_dir = os.path.join(self.dir, "tls")
            os.makedirs(tls_dir)
            self.cert, self.key = make_certificate(tls_dir, hostname)
            overrides.update({"smtpd_tls_security_level": "may",
                              "smtpd_tls_loglevel": "1",
                              "smtpd_tls_cert_file": self.cert,
                              "smtpd_tls_key_file": self.key})
        overrides.update(service_options or {})
        if not self._supports("smtpd_forbid_bare_newline"):
            options = [(k, v) for k, v in options if not k.startswith("smtpd_forbid_bare_newline")]
        seen = set()
        merged = []
        for k, v in options:
            merged.append((k, overrides.get(k, v)))
            seen.add(k)
        merged += [(k, v) for k, v in overrides.items() if k not in seen]
        self.service_options = dict(merged)

        lines = ["127.0.0.1:%d %s" % (self.port, "  ".join(entry))]
        lines += ["  -o %s=%s" % (k, v) for k, v in merged]
        with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
            f.write("# generated by tests/integration/mta.py from %s (%s)\n" % (
                os.path.relpath(POSTFIX_SERVICES, DEPLOY), recipe))
            f.write("\n".join(lines) + "\n" + _POSTFIX_INTERNAL)

        main = [
            ("compatibility_level", "3.6"),
            ("queue_directory", self.queue_dir),
            ("data_directory", self.data_dir),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            ("myhostname", hostname),
            ("mydomain", "test"),
            ("myorigin", "$myhostname"),
            ("mydestination", ""),
            ("relay_domains", ""),
            ("relayhost", ""),
            ("inet_interfaces", "loopback-only"),
            ("inet_protocols", "ipv4"),
            ("mynetworks", "127.0.0.0/8"),
            ("local_recipient_maps", ""),
            ("alias_maps", ""),
            ("alias_database", ""),
            ("biff", "no"),
            ("append_dot_mydomain", "no"),
            ("smtputf8_enable", "yes"),
            ("smtp_dns_support_level", "disabled"),
            ("message_size_limit", "20480000"),
            ("delay_warning_time", "0"),
            ("smtpd_banner", "$myhostname ESMTP"),
            ("virtual_mailbox_domains", "static:all" if domains is None else ", ".join(domains)),
            ("virtual_mailbox_base", self.mail_base),
            ("virtual_mailbox_maps", "static:inbox/"),
            ("virtual_uid_maps", "static:%d" % nobody.pw_uid),
            ("virtual_gid_maps", "static:%d" % nobody.pw_gid),
            ("virtual_minimum_uid", "1"),
            ("virtual_transport", "virtual" if maildir else "discard"),
            ("maillog_file", self.maillog),
            ("maillog_file_prefixes", self.dir),
            ("cyrus_sasl_config_path", self.sasl_dir),
        ]
        main += list((main_cf or {}).items())
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            f.write("# generated by tests/integration/mta.py\n")
            for k, v in main:
                f.write("%s = %s\n" % (k, v))

        # Cyrus SASL: the recipe's smtpd.conf with a private sasldb.
        with open(os.path.join(self.sasl_dir, "smtpd.conf"), "w") as f:
            for k, v in read_sasl_conf(POSTFIX_SASL_CONF):
                f.write("%s: %s\n" % (k, self.sasldb if k == "sasldb_path" else v))
        self.sasl_users = dict(sasl_users or {})
        for user, password in self.sasl_users.items():
            name, _, realm = user.partition("@")
            subprocess.run(["saslpasswd2", "-f", self.sasldb, "-p", "-c", "-u", realm or hostname,
                            name], input=password.encode(), check=True, capture_output=True)
        if os.path.exists(self.sasldb):
            os.chown(self.sasldb, 0, grp.getgrnam("postfix").gr_gid)
            os.chmod(self.sasldb, 0o640)

    @staticmethod
    def _supports(parameter):
        out = subprocess.run(["postconf", "-d", parameter], capture_output=True, text=True)
        return out.returncode == 0 and "unknown parameter" not in out.stderr

    def _create_queue(self):
        create_postfix_queue(self.queue_dir)

    def check(self):
        """`postfix check` on this instance: (returncode, output)."""
        out = subprocess.run(["postfix", "-c", self.conf_dir, "check"], capture_output=True,
                             text=True, timeout=60)
        return out.returncode, out.stdout + out.stderr

    def start(self, timeout=20):
        self._create_queue()
        if os.environ.get("SMTPGATE_POSTFIX_CHECK"):
            code, out = self.check()
            if code != 0:
                raise RuntimeError("postfix check failed:\n" + out)
        # master stays in the foreground as our child (it never forks itself away); -s keeps
        # its stdout. Our own main.cf keeps it away from /etc/postfix's instance.
        try:
            return self._spawn([os.path.join(POSTFIX_DAEMON_DIR, "master"), "-c", self.conf_dir,
                                "-s"], timeout)
        except RuntimeError as e:
            # Errors before postlogd runs go to syslog, which the rig has not: ask postfix.
            raise RuntimeError("%s\npostfix check says:\n%s" % (e, self.check()[1])) from None

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    _QUEUE_ID = r"[0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}"

    def queue_ids(self):
        """The queue ids of received messages, in log order ("ID: client=..." lines)."""
        out = []
        for m in re.finditer(r"\]: (%s): client=" % self._QUEUE_ID, self.log()):
            if m.group(1) not in out:
                out.append(m.group(1))
        return out

    def clients(self):
        """{queue id: "name[addr]" or "name[addr]:port"} from the "client=" log lines."""
        return {m.group(1): m.group(2) for m in
                re.finditer(r"\]: (%s): client=([^,\s]+)" % self._QUEUE_ID, self.log())}


# ---------------------------------------------------------------------------------------------
# Exim

def read_exim_settings(path):
    """The (name, value) settings of a main-section snippet, comments dropped."""
    out = []
    with open(path) as f:
        for line in f:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            name, _, value = stripped.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def _exim_string(value):
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


class Exim(_Rig):
    """A private Exim daemon (exim4-daemon-heavy unpacked under SMTPGATE_EXIM_DIR) with the
    listener of deploy/exim/smtpgate-main.conf on 127.0.0.1:port and the RCPT ACL of
    deploy/exim/smtpgate-acl.conf; every local recipient goes into one maildir (self.maildir).

    proxy_protocol_hosts: the hosts_proxy list (Exim reads PROXY v1 and v2); None or "" for
        plain SMTP.
    sasl_users: {"alice@example.com": "secret"} for AUTH PLAIN and LOGIN (plaintext
        authenticators against an lsearch file).
    domains: the local_domains list ("*": all; e.g. "example.com : example.org").
    """

    name = "exim"

    def __init__(self, port=None, proxy_protocol_hosts="127.0.0.0/8", sasl_users=None,
                 domains="*", hostname="exim.test", main_options=None):
        super().__init__(port, prefix="smtpgate-exim-")
        user = pwd.getpwnam(EXIM_USER)
        self.spool = os.path.join(self.dir, "spool")
        self.log_dir = os.path.join(self.dir, "log")
        self.maildir = os.path.join(self.dir, "mail")
        for d in (self.spool, self.log_dir, self.maildir):
            os.makedirs(d)
            os.chown(d, user.pw_uid, user.pw_gid)
            os.chmod(d, 0o750)
        self.config_path = os.path.join(self.dir, "exim.conf")
        self.passwd_path = os.path.join(self.dir, "passwd")

        main = []
        for name, value in read_exim_settings(EXIM_MAIN):
            if name == "local_interfaces":
                value = value.replace(".%d" % RECIPE_EXIM_PORT, ".%d" % self.port)
            elif name == "hosts_proxy":
                if not proxy_protocol_hosts:
                    continue
                value = value.replace("{%d}" % RECIPE_EXIM_PORT, "{%d}" % self.port)
                value = value.replace("<; 127.0.0.1", "<; " + proxy_protocol_hosts)
            main.append((name, value))
        main += list((main_options or {}).items())

        lines = [
            "# generated by tests/integration/mta.py from deploy/exim/smtpgate-*.conf",
            # Exim re-executes itself (for deliveries) under this name, not its compiled-in one.
            "exim_path = " + EXIM_BIN,
            "exim_user = " + EXIM_USER,
            "exim_group = " + EXIM_USER,
            "trusted_users = root",
            "primary_hostname = " + hostname,
            "qualify_domain = " + hostname,
            "spool_directory = " + self.spool,
            "log_file_path = %s/%%slog" % self.log_dir,
            "pid_file_path = " + os.path.join(self.dir, "exim.pid"),
            "notifier_socket =",
            "keep_environment =",
            "disable_ipv6 = true",
            "host_lookup =",
            "rfc1413_hosts =",
            "rfc1413_query_timeout = 0s",
            "tls_advertise_hosts =",
            "message_size_limit = 20M",
            "domainlist local_domains = " + domains,
        ]
        lines += ["%s = %s" % kv for kv in main]
        with open(EXIM_ACL) as f:
            acl = f.read()
        lines += ["", "begin acl", "", acl, "",
                  "begin routers", "",
                  "maildir_all:",
                  "  driver = accept",
                  "  transport = maildir_delivery", "",
                  "begin transports", "",
                  "maildir_delivery:",
                  "  driver = appendfile",
                  "  directory = " + self.maildir,
                  "  maildir_format",
                  "  create_directory",
                  "  delivery_date_add",
                  "  envelope_to_add",
                  "  return_path_add",
                  "  user = " + EXIM_USER,
                  "  group = " + EXIM_USER,
                  "  mode = 0600", "",
                  "begin retry", "",
                  "*  *  F,1h,5m", ""]
        self.sasl_users = dict(sasl_users or {})
        if self.sasl_users:
            with open(self.passwd_path, "w") as f:
                for user_name, password in self.sasl_users.items():
                    # lsearch: a quoted key; the data is the rest of the line, as it is.
                    if password != password.strip() or "\n" in password:
                        raise ValueError("Exim rig: passwords without edge spaces or newlines")
                    f.write("%s: %s\n" % (_exim_string(user_name), password))
            # Read by the receiving process, which runs as the Exim user.
            os.chown(self.passwd_path, user.pw_uid, user.pw_gid)
            os.chmod(self.passwd_path, 0o600)
            check = ("${if and{{!eq{%s}{}}{eq{%s}{${lookup{%s}lsearch{" + self.passwd_path +
                     "}}}}}}")
            lines += ["begin authenticators", "",
                      "plain_server:",
                      "  driver = plaintext",
                      "  public_name = PLAIN",
                      "  server_prompts = :",
                      "  server_condition = " + check % ("$auth3", "$auth3", "$auth2"),
                      "  server_set_id = $auth2", "",
                      "login_server:",
                      "  driver = plaintext",
                      "  public_name = LOGIN",
                      "  server_prompts = <| Username:: | Password::",
                      "  server_condition = " + check % ("$auth2", "$auth2", "$auth1"),
                      "  server_set_id = $auth1", ""]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        # Exim insists: the configuration belongs to root and nobody else may write it.
        os.chown(self.config_path, 0, 0)
        os.chmod(self.config_path, 0o644)

    def exim(self, *args, **kwargs):
        """Run the Exim binary with this configuration (e.g. "-bV", "-bP", "-bt", "a@b")."""
        return subprocess.run([EXIM_BIN, "-C", self.config_path, *args], capture_output=True,
                              text=True, timeout=30, **kwargs)

    def start(self, timeout=20):
        check = self.exim("-bV")
        if check.returncode != 0:
            raise RuntimeError("exim -bV with %s failed:\n%s%s" % (self.config_path, check.stdout,
                                                                 check.stderr))
        # -bdf: the daemon stays in the foreground as our child; no queue runner (no -q).
        return self._spawn([EXIM_BIN, "-C", self.config_path, "-bdf"], timeout)

    def log(self):
        out = []
        for name in ("mainlog", "paniclog"):
            try:
                with open(os.path.join(self.log_dir, name), errors="replace") as f:
                    out.append(f.read())
            except FileNotFoundError:
                pass
        return "".join(out)

    def message_ids(self):
        """Exim ids of received messages ("<=" lines), in log order."""
        return re.findall(r"^\S+ \S+ (\S+) <= ", self.log(), re.M)


# ---------------------------------------------------------------------------------------------
# smtp-sink

class SmtpSink(_Rig):
    """Postfix's smtp-sink on 127.0.0.1:port with the given flags (see the module docstring);
    with dump=True every transaction is written to a file under self.dump_dir."""

    name = "smtp-sink"

    def __init__(self, port=None, *flags, dump=False, hostname="sink.test"):
        super().__init__(port, prefix="smtpgate-sink-")
        self.flags = [str(f) for f in flags]
        self.hostname = hostname
        self.dump_dir = os.path.join(self.dir, "dump") if dump else None
        if self.dump_dir:
            os.makedirs(self.dump_dir)
            if os.geteuid() == 0:
                nobody = pwd.getpwnam(MAIL_UID_USER)
                os.chown(self.dump_dir, nobody.pw_uid, nobody.pw_gid)

    def start(self, timeout=10):
        prog = find_program("smtp-sink")
        if not prog:
            raise RuntimeError("smtp-sink not found: install the postfix package")
        cmd = [prog, "-h", self.hostname]
        if os.geteuid() == 0:
            cmd += ["-u", MAIL_UID_USER]  # required when started as root
        if self.dump_dir:
            cmd += ["-d", self.dump_dir + "/%H%M%S."]
        cmd += self.flags + ["127.0.0.1:%d" % self.port, "64"]
        return self._spawn(cmd, timeout)

    def log(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def dumps(self):
        """The raw dump files (bytes), oldest first."""
        if not self.dump_dir:
            return []
        paths = sorted(glob.glob(os.path.join(self.dump_dir, "*")), key=os.path.getmtime)
        out = []
        for p in paths:
            with open(p, "rb") as f:
                out.append(f.read())
        return out


def smtp_sink(port=None, *flags, **kwargs):
    """A started SmtpSink (stop() it, or use it as a context manager)."""
    return SmtpSink(port, *flags, **kwargs).start()


# ---------------------------------------------------------------------------------------------
# PROXY protocol headers and clients

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_SUBTYPE_SSL_CIPHER = 0x23
PP2_CLIENT_SSL = 0x01


def proxy_v1_header(src, dst, sport, dport):
    family = "TCP6" if ipaddress.ip_address(src).version == 6 else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (family, src, dst, sport, dport)).encode()


def _tlv(kind, value):
    return struct.pack("!BH", kind, len(value)) + value


def ssl_tlv(version="TLSv1.2", cipher="ECDHE-RSA-AES128-GCM-SHA256"):
    """The PP2_TYPE_SSL TLV with the version (0x21) and cipher (0x23) sub-TLVs."""
    sub = _tlv(PP2_SUBTYPE_SSL_VERSION, version.encode()) + _tlv(PP2_SUBTYPE_SSL_CIPHER,
                                                                  cipher.encode())
    return _tlv(PP2_TYPE_SSL, struct.pack("!BI", PP2_CLIENT_SSL, 0) + sub)


def proxy_v2_header(src, dst, sport, dport, tlvs=b""):
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version != b.version:
        raise ValueError("source and destination of different families")
    family = 0x11 if a.version == 4 else 0x21  # TCP over IPv4 / IPv6
    body = a.packed + b.packed + struct.pack("!HH", sport, dport) + tlvs
    return PROXY_V2_SIGNATURE + struct.pack("!BBH", 0x21, family, len(body)) + body


class ProxySMTP(smtplib.SMTP):
    """smtplib.SMTP that sends a PROXY header before reading the greeting."""

    def __init__(self, header, host="", port=0, **kwargs):
        self._proxy_header = header
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)
        sock.sendall(self._proxy_header)
        return sock


def auth_plain_response(user, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password)).encode()).decode()
