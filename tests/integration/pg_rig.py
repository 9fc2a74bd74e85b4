"""A PostgreSQL server of its own and smtpgate instances sharing it (cluster mode), for the
integration tests. Loopback only: the server listens on 127.0.0.1 at a port of ports.py and keeps
its Unix socket in its own temporary directory; the system's cluster (5432) is never touched.

    with PostgresServer() as pg:
        cluster = Cluster(pg)
        cluster.migrate()
        a = cluster.add_instance()                       # the default listeners of harness.py
        b = cluster.add_instance(listeners=f)            # f(ports) -> listeners, e.g. PROXY
        ...
        cluster.stop()

initdb refuses to run as root: as root the server runs as the `postgres` OS user (runuser);
otherwise as the current user."""

import os
import shutil
import signal
import subprocess
import tempfile
import time

from harness import BIN, Gateway
from ports import free_port

PG_BIN = os.environ.get("SMTPGATE_PG_BIN", "/usr/lib/postgresql/15/bin")


def _as_server_user(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


class PostgresServer:
    """One throw-away PostgreSQL cluster: initdb in a temporary directory, started and stopped
    by the PID in its postmaster.pid."""

    def __init__(self, database="smtpgate"):
        self.dir = tempfile.mkdtemp(prefix="smtpgate-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "server.log")
        self.port = free_port()
        self.database = database
        self.pid = None
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(_as_server_user([os.path.join(PG_BIN, "initdb"), "-D", self.data,
                                        "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                        "--no-sync", "--locale=C"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        self.start()
        self.psql("CREATE DATABASE %s" % database, database="postgres")

    @property
    def conninfo(self):
        return ("host=127.0.0.1 port=%d user=postgres dbname=%s connect_timeout=2"
                % (self.port, self.database))

    def start(self, timeout=30):
        options = ("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s "
                   "-c fsync=off -c full_page_writes=off -c max_connections=100"
                   % (self.port, self.dir))
        subprocess.run(_as_server_user([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data,
                                        "-l", self.log_path, "-o", options, "-w", "-t",
                                        str(timeout), "start"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=timeout + 5)
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline().strip())
        return self

    def stop(self, timeout=30):
        """Fast shutdown of our postmaster by its PID (SIGINT), waiting for it to go."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.pid = None
                return
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGQUIT)  # immediate shutdown after a fast one hung
        time.sleep(1)
        self.pid = None

    def psql(self, sql, database=None):
        """Runs SQL as the superuser; returns the rows as lists of strings."""
        out = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t", "-F", "\t",
                              "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "postgres", "-d", database or self.database, "-c", sql],
                             check=True, capture_output=True, text=True, timeout=30)
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Cluster:
    """smtpgate instances with one store: each has its own directory, spool, ports and admin
    API (harness.Gateway), and "store": {"postgres": ...} in its configuration."""

    def __init__(self, pg, users=(("user@example.com", "secret"),)):
        self.pg = pg
        self.users = users
        self.instances = []

    def store_overrides(self, extra=None):
        store = {"postgres": self.pg.conninfo}
        store.update(extra or {})
        return {"store": store}

    def add_instance(self, listeners=None, overrides=None, start=True, wait_port=None):
        """A new instance; `listeners` replaces the default listeners of harness.Gateway: a
        list, or a function of the new instance's ports (gw.ports) that returns one (the
        PROXY-protocol front: haproxy_rig.proxy_listeners). `overrides` is merged into the
        configuration; `wait_port` is the port the start-up waits for (default: the
        "starttls" one; a PROXY-protocol listener waits for a header, so pass one without)."""
        config = self.store_overrides()
        for key, value in (overrides or {}).items():
            if key == "store":
                config["store"].update(value)
            else:
                config[key] = value
        gw = Gateway(config, None if callable(listeners) else listeners, users=self.users,
                     admin=True)
        if callable(listeners):
            gw.config["listeners"] = listeners(gw.ports)
            gw.write_config()
        self.instances.append(gw)
        if start:
            gw.start(wait_port=wait_port)
        return gw

    def db(self, *args, config=None):
        """`smtpgate db ARGS --config FILE` (the first instance's configuration by default)."""
        if config is None:
            if not self.instances:
                self.add_instance(start=False)
            config = self.instances[0].config_path
        return subprocess.run([BIN, "db"] + list(args) + ["--config", config],
                              capture_output=True, text=True, timeout=60)

    def migrate(self):
        result = self.db("migrate")
        if result.returncode != 0:
            raise AssertionError("smtpgate db migrate failed:\n%s%s" % (result.stdout, result.stderr))
        return result

    def stop(self):
        codes = []
        for gw in self.instances:
            if gw.proc is not None:
                codes.append(gw.stop())
        return codes
