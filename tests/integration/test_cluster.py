"""Cluster mode: three smtpgate instances sharing one PostgreSQL (started by the test itself,
tests/integration/pg_rig.py) behind a real HAProxy running deploy/haproxy/haproxy.cfg
(tests/integration/haproxy_rig.py: send-proxy-v2 to each instance, health checks on each
instance's /healthz). Schema migrations, tenant changes reaching every instance within a second,
reports counting the whole cluster under the real client addresses, a database outage that loses
no message, and the SQLite and PostgreSQL reports agreeing on the same records.

Every message goes through HAProxy's MX front (25 in the file: each instance's strict STARTTLS
listener) from a client address of its own (127.0.0.21, .22, ...); the instances take the PROXY
header from 127.0.0.0/8, so HAProxy's own address (127.0.0.1) must never be the one counted.
The tenant checks reach one given instance through HAProxy too: the submission front (587: the
legacy endpoint) with the other servers of its backend in maintenance (HAProxy's stats socket),
from a probe address per instance (127.0.0.31 for instance 1, .32, .33) that only that
instance's log may name."""

import base64
import collections
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

from harness import BIN, Gateway, SmtpConn
from haproxy_rig import Haproxy, proxy_listeners, server_ports
from pg_rig import Cluster, PostgresServer

TENANT = {"id": "example", "domains": ["example.com"], "allow_legacy_tls_clients": True}
BODY = "Subject: cluster\r\n\r\nhello\r\n.\r\n"
TRUSTED = ["127.0.0.0/8"]            # where the instances take a PROXY header from
LB = "127.0.0.1"                     # HAProxy's address toward the instances
MX, SUBMISSION = "smtpgate_mx", "smtpgate_submission"  # the file's backends for 25 and 587


def client(n):
    """The loopback address of test client `n` (21 -> 127.0.0.21)."""
    return "127.0.0.%d" % n


def plain(user, password):
    return "AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


def tls_session(port, source):
    """A session from `source` on `port` after STARTTLS and the second EHLO."""
    c = SmtpConn(port, source=source)
    try:
        code, lines = c.read_reply()
        if code != 220:
            raise AssertionError("greeting: %r" % lines)
        c.expect("EHLO client.test", 250)
        c.expect("STARTTLS", 220)
        c.starttls_now()
        c.expect("EHLO client.test", 250)
    except BaseException:
        c.close()
        raise
    return c


def send_messages(c, count, sender="sender@client.test", rcpt="rcpt@example.org"):
    """`count` messages in the session `c`; returns the replies of the end of DATA."""
    replies = []
    for _ in range(count):
        c.expect("MAIL FROM:<%s>" % sender, 250)
        c.expect("RCPT TO:<%s>" % rcpt, 250)
        c.expect("DATA", 354)
        c.send(BODY)
        replies.append(c.read_reply())
    return replies


def deliver(port, count, source, sender="sender@client.test", rcpt="rcpt@example.org"):
    """`count` messages from `source` in one TLS session on `port` (HAProxy's MX front: the
    strict STARTTLS listener of whichever instance HAProxy picks); returns the replies of the
    end of DATA."""
    c = tls_session(port, source)
    try:
        replies = send_messages(c, count, sender, rcpt)
        c.cmd("QUIT")
    finally:
        c.close()
    return replies


def legacy_auth(port, source):
    """The reply to AUTH of user@example.com on the legacy endpoint (TLS 1.2): 235 when the
    tenant lets legacy clients in, 421 (D5) when it does not."""
    c = tls_session(port, source)
    try:
        return c.cmd(plain("user@example.com", "secret"))
    finally:
        c.close()


def spooled(gws):
    return sum(len([n for n in os.listdir(g.spool_new) if n.endswith(".eml")])
               for g in gws if os.path.isdir(g.spool_new))


def shared_session_ids(gws):
    """Session ids that more than one instance gave to its sessions (by the spools): in the
    shared store one session's record would replace the other's."""
    owners = collections.defaultdict(set)
    for n, gw in enumerate(gws):
        for _, meta in gw.messages():
            owners[meta["session"]["session_id"]].add(n + 1)
    return {sid: sorted(ns) for sid, ns in owners.items() if len(ns) > 1}


def spooled_by_client(gw):
    """{client address: messages} of one instance's spool (the address its session recorded)."""
    return dict(collections.Counter(meta["session"]["client_ip"] for _, meta in gw.messages()))


class ClusterCase(unittest.TestCase):
    instances = 3
    behind_haproxy = True

    def setUp(self):
        self.front = None
        self.pinned = {}  # backend -> the one instance HAProxy sends it to
        self.probed = []  # the instances legacy_auth was aimed at
        self.pg = PostgresServer()
        self.addCleanup(self.pg.close)  # also when setUp fails below; tearDown closes it first
        self.cluster = Cluster(self.pg)
        listeners = (lambda ports: proxy_listeners(ports, TRUSTED)) if self.behind_haproxy else None
        self.gws = [self.cluster.add_instance(listeners=listeners, start=False)
                    for _ in range(self.instances)]

    def start_all(self):
        self.cluster.migrate()
        # All at once, as a rollout starts them: instances that start within the same second
        # must still tell their sessions apart in the shared store. The "plain" port answers
        # at once (with HAProxy in front it is the listener without proxy_protocol).
        errors = []

        def start(gw):
            try:
                gw.start(wait_port=gw.ports["plain"])
            except Exception as e:  # noqa: BLE001 -- raised below
                errors.append(e)

        threads = [threading.Thread(target=start, args=(gw,)) for gw in self.gws]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        if errors:
            raise errors[0]
        if self.behind_haproxy:
            # gw1..gw3 of deploy/haproxy/haproxy.cfg are the instances 1..3.
            self.front = Haproxy({self.name(gw): server_ports(gw) for gw in self.gws})
            self.front.start()

    def tearDown(self):
        if self.front is not None:
            self.front.close()
        codes = self.cluster.stop()
        self.pg.close()
        for gw, code in zip(self.gws, codes):
            if code not in (0, None):
                print(gw.output()[-4000:])
        self.assertTrue(all(code == 0 for code in codes), "an instance did not exit cleanly")

    def name(self, gw):
        """The instance's server name in haproxy.cfg: gw1, gw2, gw3."""
        return "gw%d" % (self.gws.index(gw) + 1)

    def probe(self, gw):
        """The client address of the tenant checks aimed at `gw`: 127.0.0.31 for instance 1."""
        return client(31 + self.gws.index(gw))

    def deliver(self, count, source, sender="sender@client.test"):
        """`count` messages from `source` through HAProxy's MX front (balanced: leastconn)."""
        return deliver(self.front.ports[25], count, source, sender)

    def aim(self, gw):
        """HAProxy's submission front (587) sends every new session to `gw` alone: the other
        servers of its backend in maintenance through the stats socket. The MX front (25)
        stays balanced."""
        if self.pinned.get(SUBMISSION) is not gw:
            self.front.only(SUBMISSION, self.name(gw))
            self.pinned[SUBMISSION] = gw

    def legacy_auth(self, gw):
        """legacy_auth on instance `gw` reached through HAProxy (aim), from probe(gw)."""
        self.aim(gw)
        if gw not in self.probed:
            self.probed.append(gw)
        return legacy_auth(self.front.ports[587], self.probe(gw))

    def assert_probes_landed(self):
        """Every tenant check reached the instance it was aimed at, by its PROXY header: the
        probe address of an instance is in that instance's log and in no other's."""
        logs = [gw.output() for gw in self.gws]
        for aimed in self.gws:
            mark = "client [%s]:" % self.probe(aimed)
            for gw, log in zip(self.gws, logs):
                if gw is aimed and aimed in self.probed:
                    self.assertIn(mark, log, "no check reached %s" % self.name(aimed))
                elif gw is not aimed:
                    self.assertNotIn(mark, log, "a check aimed at %s reached %s"
                                     % (self.name(aimed), self.name(gw)))

    def assert_unique_session_ids(self):
        shared = shared_session_ids(self.gws)
        if shared:
            self.fail("%d session id(s) given by several instances (the store keeps one session "
                      "record per id, so the others' sessions are lost), e.g. %s"
                      % (len(shared), sorted(shared.items())[:3]))

    def report(self, gw, path="/api/v1/report?since=1d"):
        status, body, _ = gw.api(path)
        self.assertEqual(status, 200, body)
        return body

    def client_messages(self, gw):
        """{client address: messages} of the cluster's client inventory through `gw` (only
        clients with messages: the harness's start-up probes come from 127.0.0.1 and send
        none)."""
        clients = self.report(gw, "/api/v1/clients?since=1d")["clients"]
        return {c["client_ip"]: c["messages"] for c in clients if c["messages"]}

    def wait_for_clients(self, expected, timeout=15):
        """Until the client inventory through every instance is `expected` ({address:
        messages}). A client is listed once its session record is in (written when the session
        ends, after its message records), so this also waits for the sessions."""
        deadline = time.time() + timeout
        while True:
            seen = [self.client_messages(gw) for gw in self.gws]
            if all(s == expected for s in seen) or time.time() > deadline:
                break
            time.sleep(0.2)
        for gw, s in zip(self.gws, seen):
            self.assertEqual(s, expected, "the client inventory through " + self.name(gw))

    def wait_for_total(self, gws, total, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            totals = [self.report(g)["totals"]["all"] for g in gws]
            if all(t == total for t in totals):
                return
            time.sleep(0.2)
        self.fail("reports never reached %d messages: %r" % (total, totals))


class SchemaTest(ClusterCase):
    instances = 1
    behind_haproxy = False  # one instance and the command line: the default listeners

    def test_migrate_status_and_refusals(self):
        gw = self.gws[0]
        # Before the schema exists: run refuses and names the command to run.
        run = subprocess.run([BIN, "run", "--config", gw.config_path], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(run.returncode, 1)
        self.assertIn("smtpgate db migrate", run.stderr)
        status = self.cluster.db("status")
        self.assertEqual(status.returncode, 3, status.stdout + status.stderr)
        self.assertIn("pending: 0001_initial", status.stdout)

        first = self.cluster.migrate()
        self.assertIn("applied 0001_initial", first.stdout)
        again = self.cluster.migrate()
        self.assertIn("nothing to do", again.stdout)
        self.assertNotIn("applied", again.stdout)
        status = self.cluster.db("status")
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("up to date", status.stdout)
        self.assertEqual(self.pg.psql("SELECT version, name FROM schema_migrations"),
                         [["1", "0001_initial"]])

        # A schema newer than this binary: migrate and run refuse it.
        self.pg.psql("INSERT INTO schema_migrations (version, name) VALUES (2, '0002_future')")
        result = self.cluster.db("migrate")
        self.assertEqual(result.returncode, 1)
        self.assertIn("newer", result.stderr)
        run = subprocess.run([BIN, "run", "--config", gw.config_path], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(run.returncode, 1)
        self.assertIn("newer", run.stderr)
        self.pg.psql("DELETE FROM schema_migrations WHERE version = 2")
        gw.start()

    def test_store_configuration_errors(self):
        gw = self.gws[0]
        for store, message in (({"postgres": ""}, "/store/postgres"),
                               ({"buffer_records": 10, "postgres": "host=x"},
                                "/store/buffer_records"),
                               ({"buffer_records": 5000}, "\"postgres\" is required")):
            gw.config["store"] = store
            gw.write_config()
            check = subprocess.run([BIN, "check-config", gw.config_path], capture_output=True,
                                   text=True, timeout=30)
            self.assertEqual(check.returncode, 1)
            self.assertIn(message, check.stdout + check.stderr)
        gw.config["store"] = {"postgres": self.pg.conninfo}
        gw.config["tenants"] = os.path.join(gw.dir, "tenants.json")
        gw.write_config()
        check = subprocess.run([BIN, "check-config", gw.config_path], capture_output=True,
                               text=True, timeout=30)
        self.assertEqual(check.returncode, 1)
        self.assertIn("/tenants: not used with", check.stdout + check.stderr)
        # Without a store, `db` has nothing to do and says so.
        plain_gw = Gateway()
        result = self.cluster.db("status", config=plain_gw.config_path)
        self.assertEqual(result.returncode, 1)
        self.assertIn("has no \"store\"", result.stderr)


class TenantTest(ClusterCase):
    def test_tenant_change_reaches_every_instance_within_a_second(self):
        self.start_all()
        one, two, three = self.gws
        # Instance 3's sessions come through HAProxy (the submission front with gw1 and gw2 in
        # maintenance); the changes go to instance 1's admin API.
        self.aim(three)
        status, body, _ = one.api("/api/v1/tenants/example", "PUT", TENANT)
        self.assertEqual(status, 201, body)
        deadline = time.time() + 1.0
        while self.legacy_auth(three)[0] != 235 and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.legacy_auth(three)[0], 235)

        status, shown, _ = two.api("/api/v1/tenants/example")
        self.assertEqual(status, 200)
        revision = shown["revision"]
        flipped = dict(TENANT, allow_legacy_tls_clients=False)
        status, body, _ = one.api("/api/v1/tenants/example?revision=" + revision, "PUT", flipped)
        self.assertEqual(status, 200, body)
        changed_at = time.time()
        code, lines = self.legacy_auth(three)
        while code != 421 and time.time() - changed_at < 1.0:
            time.sleep(0.02)
            code, lines = self.legacy_auth(three)
        self.assertLessEqual(time.time() - changed_at, 1.5)
        self.assertEqual(code, 421, lines)
        self.assertIn("4.7.66", lines[0])
        # A reload keeps the tenants from PostgreSQL (the configuration names no tenants file).
        three.signal(signal.SIGHUP)
        deadline = time.time() + 5
        while "reload done" not in three.output() and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("reload done", three.wait_output("reload done"))
        self.assertEqual(self.legacy_auth(three)[0], 421)

        # The revision read before the change is stale on every instance.
        status, body, _ = two.api("/api/v1/tenants/example?revision=" + revision, "PUT", TENANT)
        self.assertEqual(status, 409, body)
        self.assertIn("current_revision", body)
        status, body, _ = three.api("/api/v1/tenants/bad", "PUT",
                                    {"domains": ["not a domain"]})
        self.assertEqual(status, 422, body)
        self.assertTrue(any("/tenants/1/domains/0" in e for e in body["errors"]), body)
        # The audit trail is the cluster's: both changes through instance 1, seen on instance 3.
        status, body, _ = three.api("/api/v1/audit?tenant=example")
        self.assertEqual(status, 200)
        self.assertEqual([e["action"] for e in body["audit"]], ["set", "create"])
        self.assertEqual(body["audit"][0]["new"]["allow_legacy_tls_clients"], False)

        # The CLI through instance 2's API, and --offline straight into PostgreSQL.
        show = subprocess.run([BIN, "tenant", "--config", two.config_path, "show", "example",
                               "--format", "json"], capture_output=True, text=True, timeout=30)
        self.assertEqual(show.returncode, 0, show.stderr)
        self.assertFalse(json.loads(show.stdout)["tenant"]["allow_legacy_tls_clients"])
        self.aim(one)
        offline = subprocess.run([BIN, "tenant", "--config", two.config_path, "--offline", "set",
                                  "example", "--allow-legacy-tls-clients", "true"],
                                 capture_output=True, text=True, timeout=30)
        self.assertEqual(offline.returncode, 0, offline.stdout + offline.stderr)
        changed_at = time.time()
        code, _ = self.legacy_auth(one)
        while code != 235 and time.time() - changed_at < 1.0:
            time.sleep(0.02)
            code, _ = self.legacy_auth(one)
        self.assertEqual(code, 235)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM tenant_audit"), [["3"]])
        # Through HAProxy, each check reached the instance it was aimed at, under its own
        # client address.
        self.assert_probes_landed()
        self.assertEqual(self.probed, [three, one])


class ReportTest(ClusterCase):
    def test_reports_count_the_whole_cluster(self):
        self.start_all()
        # Three clients (127.0.0.21, .22, .23) through HAProxy's MX front, their sessions open
        # at the same time: leastconn gives each instance one of them.
        sessions = []
        try:
            for i in range(3):
                sessions.append(tls_session(self.front.ports[25], client(21 + i)))
            for i, c in enumerate(sessions):
                replies = send_messages(c, 3 + i, sender="s%d@client.test" % i)
                self.assertTrue(all(code == 250 for code, _ in replies), replies)
                c.cmd("QUIT")
        finally:
            for c in sessions:
                c.close()
        self.assertEqual(spooled(self.gws), 12)
        # Each instance spooled one client's messages, under the client's address.
        self.assertEqual(sorted(sorted(spooled_by_client(gw).items()) for gw in self.gws),
                         [[(client(21), 3)], [(client(22), 4)], [(client(23), 5)]])
        for gw in self.gws:
            self.assertIn("PROXY v2 from [%s]" % LB, gw.wait_output("PROXY v2 from [%s]" % LB))  # send-proxy-v2
        self.wait_for_total(self.gws, 12)
        # Session ids are the cluster's keys (the store's sessions table): unique across
        # instances, even started in the same second.
        self.assert_unique_session_ids()
        # The client inventory of the whole cluster, through each instance: the real clients,
        # not HAProxy's address (and every session record in before the comparisons below).
        self.wait_for_clients({client(21): 3, client(22): 4, client(23): 5})
        for path in ("/api/v1/report?since=1d", "/api/v1/clients?since=1d",
                     "/api/v1/messages?since=1d&limit=100", "/api/v1/report?since=1d&by=sender"):
            bodies = [self.report(gw, path) for gw in self.gws]
            self.assertEqual(bodies[0], bodies[1], path)
            self.assertEqual(bodies[0], bodies[2], path)
        day = self.report(self.gws[0])
        self.assertEqual(day["totals"]["all"], 12)
        listed = self.report(self.gws[1], "/api/v1/messages?since=1d&limit=100")["messages"]
        self.assertEqual(collections.Counter(m["client_ip"] for m in listed),
                         {client(21): 3, client(22): 4, client(23): 5})
        senders = self.report(self.gws[2], "/api/v1/report?since=1d&by=sender")["senders"]
        self.assertEqual([(s["sender"], s["messages"]) for s in senders],
                         [("s2@client.test", 5), ("s1@client.test", 4), ("s0@client.test", 3)])
        # The command line reads the same database.
        cli = subprocess.run([BIN, "report", "--config", self.gws[1].config_path, "--since", "1d",
                              "--format", "json"], capture_output=True, text=True, timeout=30)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertEqual(json.loads(cli.stdout)["totals"], day["totals"])


class OutageTest(ClusterCase):
    def test_database_outage_loses_no_message(self):
        self.start_all()
        one, two, three = self.gws
        status, body, _ = one.api("/api/v1/tenants/example", "PUT",
                                  dict(TENANT, allow_legacy_tls_clients=False))
        self.assertEqual(status, 201, body)
        # Every message through HAProxy's MX front, each sender from an address of its own.
        expected = collections.Counter()
        sent = 0
        for i in range(len(self.gws)):
            ok = sum(1 for code, _ in self.deliver(2, client(21 + i)) if code == 250)
            expected[client(21 + i)] += ok
            sent += ok
        self.assertEqual(sent, 6)
        self.wait_for_total(self.gws, 6)
        before = [spooled([gw]) for gw in self.gws]
        self.aim(two)  # the tenant check below: instance 2 through HAProxy's submission front

        self.pg.stop()
        down_at = time.time()
        accepted = []
        errors = []
        by_client = collections.Counter()

        def sender(source):
            try:
                while time.time() - down_at < 10:
                    codes = [code for code, _ in self.deliver(2, source)]
                    accepted.extend(codes)
                    by_client[source] += sum(1 for code in codes if code == 250)
                    time.sleep(0.1)
            except Exception as e:  # noqa: BLE001 -- reported by the assertion below
                errors.append(repr(e))

        threads = [threading.Thread(target=sender, args=(client(41 + i),))
                   for i in range(len(self.gws))]
        for t in threads:
            t.start()
        # Decisions keep using the last known tenants while the database is away.
        self.assertEqual(self.legacy_auth(two)[0], 421)
        # The writer notices at its next batch (within a second or so).
        deadline = time.time() + 8
        metrics = ""
        while time.time() < deadline and "smtpgate_trace_store_up 0" not in metrics:
            time.sleep(0.1)
            status, metrics, _ = three.api("/metrics")
        for t in threads:
            t.join(timeout=30)
        self.assertEqual(errors, [])
        self.assertTrue(accepted)
        self.assertTrue(all(code == 250 for code in accepted), accepted)
        sent += len(accepted)
        expected.update(by_client)
        self.assertIn("smtpgate_trace_store_up 0", metrics)
        # Every 250 is in a spool.
        self.assertEqual(spooled(self.gws), sent)
        # HAProxy spread the outage's sessions over the three instances (leastconn turns
        # round-robin among servers with as many connections) and kept them all UP: /healthz
        # does not depend on the database.
        self.assertTrue(all(spooled([gw]) > n for gw, n in zip(self.gws, before)),
                        ([spooled([gw]) for gw in self.gws], before))
        self.assertEqual({self.front.server_status(MX, self.name(gw)) for gw in self.gws},
                         {"UP"}, self.front.output())
        # The tenants API and the report say the database is away instead of hanging.
        status, _, _ = one.api("/api/v1/tenants")
        self.assertEqual(status, 503)
        status, body, _ = two.api("/api/v1/report?since=1d")
        self.assertEqual(status, 503, body)

        self.pg.start()
        self.wait_for_total(self.gws, sent, timeout=30)
        for gw in self.gws:
            status, metrics, _ = gw.api("/metrics")
            self.assertIn("smtpgate_trace_dropped_total 0", metrics)
            self.assertIn("smtpgate_trace_store_up 1", metrics)
        # Tenant changes flow again once the watchers are back.
        self.aim(three)
        status, body, _ = one.api("/api/v1/tenants/example", "PUT", TENANT)
        self.assertEqual(status, 200, body)
        deadline = time.time() + 8
        while self.legacy_auth(three)[0] != 235 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.legacy_auth(three)[0], 235)
        self.assert_probes_landed()
        # The counts caught up under the real client addresses, the same through every
        # instance (whose session ids must not collide in the shared store).
        self.assert_unique_session_ids()
        self.wait_for_clients(dict(expected))


# Records fed to both stores: (session id, start ms offset, endpoint, client, ehlo, tls, auth
# user, tenant, rule, messages, sender).
RECORDS = [
    ("a1", 0, "strict", "192.0.2.1", "alpha", "1.2", "", "", "D8", 2, "x@a.test"),
    ("a2", 1000, "strict", "192.0.2.1", "alpha", "1.3", "", "", "D8", 1, "x@a.test"),
    ("b1", 2000, "legacy", "192.0.2.2", "beta", "1.0", "u@example.com", "example", "D8", 3,
     "u@example.com"),
    ("b2", 3000, "legacy", "192.0.2.2", "beta", "1.1", "u@example.com", "example", "D5", 0, ""),
    ("c1", 86400000 + 5000, "strict", "2001:db8::1", "gamma", "none", "", "", "D8", 1,
     "y@c.test"),
    ("c2", 86400000 + 6000, "strict", "2001:db8::1", "gamma", "1.0", "", "", "D3", 0, ""),
    ("d1", 2 * 86400000, "strict", "198.51.100.7", "dëlta ünïcode", "1.2", "", "", "D8", 2,
     "z@d.test"),
]


def record_rows(base_ms):
    sessions, messages = [], []
    for sid, offset, endpoint, ip, ehlo, tls, user, tenant, rule, count, sender in RECORDS:
        start = base_ms + offset
        day = time.strftime("%Y-%m-%d", time.gmtime(start / 1000))
        sessions.append((sid, start, start + 500, day, "l", endpoint, ip, 2525, "", ehlo, tls,
                         "TLS_AES_128_GCM_SHA256" if tls != "none" else "", tls, user, tenant,
                         rule, "221 bye", count))
        for n in range(count):
            at = start + 100 + n
            messages.append((sid, at, time.strftime("%Y-%m-%d", time.gmtime(at / 1000)), "l",
                             endpoint, ip, ehlo, tls, "", user, tenant, sender, 1 + n,
                             1000 * (n + 1), rule, "250 2.0.0 queued", "Q%s%d" % (sid, n)))
    return sessions, messages


def sql_literal(value):
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


SESSION_COLUMNS = ("session_id, started_ms, ended_ms, day, listener, endpoint, client_ip, "
                   "client_port, sni, ehlo, tls_version, tls_cipher, tls_max_offered, auth_user, "
                   "tenant, rule, final_reply, messages")
MESSAGE_COLUMNS = ("session_id, received_ms, day, listener, endpoint, client_ip, ehlo, "
                   "tls_version, tls_cipher, auth_user, tenant, sender, rcpt_count, size, rule, "
                   "reply, queue_id")


class ReportParityTest(unittest.TestCase):
    def test_sqlite_and_postgres_reports_agree(self):
        # The SQLite store: a gateway creates traces.sqlite with its schema, then stops.
        local = Gateway()
        local.start()
        self.assertEqual(local.stop(), 0)
        database = os.path.join(local.dir, "traces.sqlite")
        with PostgresServer() as pg:
            cluster = Cluster(pg)
            remote = cluster.add_instance(start=False)
            cluster.migrate()
            base = int(time.time() * 1000) - 3 * 86400000
            sessions, messages = record_rows(base)
            db = sqlite3.connect(database)
            # Only the records below: not the session of the harness's start-up probe.
            db.execute("DELETE FROM sessions")
            db.execute("DELETE FROM messages")
            db.executemany("INSERT INTO sessions (%s) VALUES (%s)"
                           % (SESSION_COLUMNS, ", ".join("?" * 18)), sessions)
            db.executemany("INSERT INTO messages (%s) VALUES (%s)"
                           % (MESSAGE_COLUMNS, ", ".join("?" * 17)), messages)
            db.commit()
            db.close()
            for table, columns, rows in (("sessions", SESSION_COLUMNS, sessions),
                                         ("messages", MESSAGE_COLUMNS, messages)):
                values = ", ".join("(%s)" % ", ".join(sql_literal(v) for v in row)
                                   for row in rows)
                pg.psql("INSERT INTO %s (%s) VALUES %s" % (table, columns, values))
            compared = 0
            for extra in (["--by", "day"], ["--by", "client"], ["--by", "sender"],
                          ["--by", "message"], ["--by", "day", "--tls", "1.0,1.1"],
                          ["--by", "client", "--endpoint", "legacy"],
                          ["--by", "day", "--tenant", "example"],
                          ["--by", "message", "--client", "2001:db8::1"]):
                outputs = []
                for config in (local.config_path, remote.config_path):
                    result = subprocess.run([BIN, "report", "--config", config, "--since", "7d",
                                             "--format", "json"] + extra,
                                            capture_output=True, text=True, timeout=30)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    outputs.append(json.loads(result.stdout))
                self.maxDiff = None
                self.assertEqual(outputs[0], outputs[1], extra)
                compared += 1
            # Not vacuous: the records are there.
            day = outputs and json.loads(subprocess.run(
                [BIN, "report", "--config", remote.config_path, "--since", "7d", "--format",
                 "json"], capture_output=True, text=True, timeout=30).stdout)
            self.assertEqual(day["totals"]["all"], 9)
            self.assertEqual(day["totals"]["decisions"], {"D3": 1, "D5": 1})
            self.assertEqual(compared, 8)


if __name__ == "__main__":
    unittest.main()
