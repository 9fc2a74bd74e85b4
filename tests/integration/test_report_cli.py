"""`smtpgate report`: the inbound messages report read from STATE_DIR/traces.sqlite, written
here with Python's sqlite3 and the schema of gateway/trace_schema.h, as JSON, table and CSV;
bad options exit 2."""

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest

from harness import BIN

SCHEMA_H = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../gateway/trace_schema.h")


def schema_sql():
    with open(SCHEMA_H) as f:
        text = f.read()
    return text.split('R"SQL(', 1)[1].split(')SQL"', 1)[0]


def utc_day(ms):
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def run(*args, env=None, cwd=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30, env=env,
                          cwd=cwd)


class ReportCliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpgate-report-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.state = os.path.join(self.dir, "state")
        os.mkdir(self.state)
        self.config = os.path.join(self.dir, "smtpgate.json")
        with open(self.config, "w") as f:
            json.dump({"state_dir": self.state}, f)
        self.now = int(time.time() * 1000)
        self.db = sqlite3.connect(os.path.join(self.state, "traces.sqlite"))
        self.db.executescript(schema_sql())
        self.sessions = 0
        # Within the default 7 days: 3 TLS 1.0 messages of a legacy scanner, 5 TLS 1.2 and
        # 2 TLS 1.3 of a modern client, 1 plaintext; 2 refused sessions (D3), one D5.
        self.add("192.0.2.10", "scanner.example", "1.0", 3, auth="scan@acme.example",
                 endpoint="legacy", ago_h=30)
        self.add("198.51.100.5", "mail.acme.example", "1.2", 5, ago_h=2)
        self.add("198.51.100.5", "mail.acme.example", "1.3", 2, ago_h=1)
        self.add("192.0.2.12", "cam", "none", 1, endpoint="legacy", ago_h=3)
        self.add("203.0.113.7", 'old,"box"', "1.1", 0, rule="D3", ago_h=4)
        self.add("203.0.113.7", 'old,"box"', "1.1", 0, rule="D3", ago_h=5)
        self.add("203.0.113.8", "x", "1.2", 0, rule="D5", endpoint="legacy", tenant="globex",
                 ago_h=6)
        # Outside the default range: 10 days ago.
        self.add("192.0.2.99", "ancient", "1.0", 4, ago_h=240)
        self.db.commit()
        self.db.close()

    def add(self, ip, ehlo, tls, messages, auth="", endpoint="strict", tenant="acme", rule="D8",
            ago_h=1):
        self.sessions += 1
        sid = "S%d" % self.sessions
        started = self.now - ago_h * 3600 * 1000
        self.db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, 'l1', ?, ?, 40000, '', ?, ?, 'C', ?, ?, ?, ?,"
            " '250 ok', ?)",
            (sid, started, started + 1000, utc_day(started), endpoint, ip, ehlo, tls, tls, auth,
             tenant, rule, messages))
        for n in range(messages):
            at = started + 10 * (n + 1)
            self.db.execute(
                "INSERT INTO messages (session_id, received_ms, day, listener, endpoint, client_ip,"
                " ehlo, tls_version, tls_cipher, auth_user, tenant, sender, rcpt_count, size, rule,"
                " reply, queue_id) VALUES (?, ?, ?, 'l1', ?, ?, ?, ?, 'C', ?, ?, ?, 1, 10, ?,"
                " '250 ok', 'Q')",
                (sid, at, utc_day(at), endpoint, ip, ehlo, tls, auth, tenant,
                 "from@" + ehlo.replace('"', "").replace(",", ""), rule))

    def report(self, *args):
        r = run("report", "--config", self.config, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_json_by_day_counts(self):
        out = json.loads(self.report("--format", "json"))
        totals = out["totals"]
        self.assertEqual({k: totals[k] for k in ("none", "1.0", "1.1", "1.2", "1.3", "all")},
                         {"none": 1, "1.0": 3, "1.1": 0, "1.2": 5, "1.3": 2, "all": 11})
        self.assertEqual(totals["percent"]["1.0"], 27.3)
        self.assertEqual(totals["decisions"], {"D3": 2, "D5": 1})
        self.assertEqual(sum(d["all"] for d in out["days"]), 11)
        self.assertEqual([d["date"] for d in out["days"]], sorted(d["date"] for d in out["days"]))
        # --since reaches the old messages; --tenant and --tls narrow.
        self.assertEqual(json.loads(self.report("--format", "json", "--since", "30d"))["totals"]["all"], 15)
        self.assertEqual(json.loads(self.report("--format=json", "--since=24h"))["totals"]["all"], 8)
        narrowed = json.loads(self.report("--format", "json", "--tls", "1.0,1.1", "--endpoint", "legacy"))
        self.assertEqual(narrowed["totals"]["all"], 3)
        self.assertEqual(narrowed["totals"]["decisions"], {})
        globex = json.loads(self.report("--format", "json", "--tenant", "globex"))
        self.assertEqual((globex["totals"]["all"], globex["totals"]["decisions"]), (0, {"D5": 1}))

    def test_by_client_inventory(self):
        clients = json.loads(self.report("--by", "client", "--format", "json"))["clients"]
        self.assertEqual([c["client_ip"] for c in clients],
                         ["203.0.113.7", "192.0.2.10", "198.51.100.5", "192.0.2.12", "203.0.113.8"])
        scanner = clients[1]
        self.assertEqual((scanner["ehlo"], scanner["auth_user"], scanner["tenant"], scanner["endpoint"]),
                         ("scanner.example", "scan@acme.example", "acme", "legacy"))
        self.assertEqual((scanner["versions"], scanner["messages"], scanner["last_rule"]),
                         ({"1.0": 1}, 3, "D8"))
        self.assertRegex(scanner["first_seen"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        refused = clients[0]
        self.assertEqual((refused["versions"], refused["messages"], refused["last_rule"]),
                         ({"1.1": 2}, 0, "D3"))
        legacy = json.loads(self.report("--by", "client", "--format", "json", "--tls", "1.0,1.1"))
        self.assertEqual([c["client_ip"] for c in legacy["clients"]], ["203.0.113.7", "192.0.2.10"])
        table = self.report("--by", "client")
        self.assertTrue(table.startswith("client_ip "), table)
        self.assertIn("scan@acme.example", table)

    def test_csv(self):
        rows = list(csv.reader(io.StringIO(self.report("--by", "client", "--format", "csv"), newline="")))
        self.assertEqual(rows[0][:5], ["client_ip", "ehlo", "auth_user", "tenant", "endpoint"])
        self.assertEqual(rows[1][:2], ["203.0.113.7", 'old,"box"'])
        self.assertEqual(len(rows), 6)
        days = list(csv.reader(io.StringIO(self.report("--format", "csv"), newline="")))
        self.assertEqual(days[0], ["date", "none", "1.0", "1.1", "1.2", "1.3", "all"])
        self.assertEqual(sum(int(r[6]) for r in days[1:]), 11)
        senders = list(csv.reader(io.StringIO(self.report("--by", "sender", "--format", "csv"), newline="")))
        self.assertEqual(senders[1][:2], ["from@mail.acme.example", "7"])

    def test_table_by_day(self):
        out = self.report()
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["date", "none", "1.0", "1.1", "1.2", "1.3", "all"])
        total = [l for l in lines if l.startswith("TOTAL")]
        self.assertEqual(len(total), 1)
        self.assertIn("3 (27.3%)", total[0])
        self.assertTrue(total[0].endswith(" 11"))
        self.assertIn("refused sessions: D3 2, D5 1", out)

    def test_config_from_environment_and_missing_database(self):
        env = dict(os.environ, SMTPGATE_CONFIG=self.config)
        r = run("report", "--format", "json", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["totals"]["all"], 11)
        empty = os.path.join(self.dir, "empty.json")
        with open(empty, "w") as f:
            json.dump({"state_dir": os.path.join(self.dir, "nothing-here")}, f)
        r = run("report", "--config", empty, "--format", "json", "--by", "client")
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, {"total": 0, "offset": 0, "limit": 0, "clients": []}), r.stderr)

    def test_bad_options_exit_2(self):
        for args in (["--tls", "1.4"], ["--since", "banana"], ["--by", "week"],
                     ["--format", "xml"], ["--endpoint", "by-sni"], ["--bogus"], ["--since"],
                     ["extra"], ["--tls", ""]):
            r = run("report", "--config", self.config, *args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertEqual(r.stdout, "", args)
            self.assertIn("smtpgate report:", r.stderr, args)
        r = run("report", "--tls", "1.4")
        self.assertIn("'1.4'", r.stderr)

    def test_unreadable_config_exits_1(self):
        r = run("report", "--config", os.path.join(self.dir, "missing.json"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.json", r.stderr)

    def test_help(self):
        r = run("report", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("usage: smtpgate report"), r.stdout)
        self.assertIn("--by day|client|sender", r.stdout)
        r = run("--help")
        self.assertIn("  report ", r.stdout)


if __name__ == "__main__":
    unittest.main()
