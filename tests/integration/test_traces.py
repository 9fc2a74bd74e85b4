"""Traces and the report end to end (SPEC section 7): a known mix of sessions through the real
gateway, then the admin API, `/metrics` and `smtpgate report` all give exactly those counts, and
the client inventory names the TLS 1.0 client's address, EHLO and AUTH user."""

import base64
import csv
import io
import json
import re
import subprocess
import unittest

from harness import BIN, Gateway, SmtpConn, send_message

OLD_CLIENT = "127.0.0.31"


def plain(user, password):
    return "AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


class TraceReportTest(unittest.TestCase):
    def setUp(self):
        self.gw = Gateway(
            {"legacy_tls": {"speedbump": [{"from": "2020-01-01T00:00:00Z", "reject_percent": 100}]}},
            users=(("user@example.com", "secret"), ("alice@contoso.com", "pw")),
            tenants=[{"id": "contoso", "domains": ["contoso.com"], "allow_legacy_tls_clients": False}],
            admin=True)
        self.gw.start()

    def session(self, port, version=None, source="127.0.0.1", ehlo="client.test", tls=True):
        c = SmtpConn(self.gw.ports[port], implicit=(port == "implicit"), version=version, source=source)
        self.assertEqual(c.read_reply()[0], 220)
        if tls and port != "implicit":
            c.expect("EHLO " + ehlo, 250)
            c.expect("STARTTLS", 220)
            c.starttls_now(version)
        return c

    def message(self, port, version=None, count=1, **kw):
        c = self.session(port, version, **kw)
        c.expect("EHLO " + kw.get("ehlo", "client.test"), 250)
        for i in range(count):
            code, lines = send_message(c, "s@example.com", ["r@example.com"], b"Subject: t\r\n\r\nx\r\n.\r\n")
            self.assertEqual(code, 250, lines)
        c.cmd("QUIT")

    def report(self, *args):
        r = subprocess.run([BIN, "report", "--config", self.gw.config_path, "--format", "json", *args],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_known_mix_is_reported_exactly(self):
        # 7 messages over TLS 1.0 from one old device, on the legacy endpoint, authenticated.
        c = self.session("legacy", "1.0", source=OLD_CLIENT, ehlo="old-scanner")
        c.expect("EHLO old-scanner", 250)
        c.expect(plain("user@example.com", "secret"), 235)
        for _ in range(7):
            code, _ = send_message(c, "user@example.com", ["r@example.com"], b"Subject: s\r\n\r\nx\r\n.\r\n")
            self.assertEqual(code, 250)
        c.cmd("QUIT")
        self.message("legacy", "1.1", count=3)
        for _ in range(4):
            self.message("starttls", "1.2", count=10)
        self.message("implicit", "1.3", count=10)
        self.message("plain", None, count=2, tls=False)
        # Two sessions speedbumped on the strict endpoint (D3), one refused by D5.
        for _ in range(2):
            c = self.session("starttls", "1.0", source="127.0.0.32")
            self.assertEqual(c.cmd("EHLO x")[0], 421)
        c = self.session("legacy", "1.2")
        c.expect("EHLO x", 250)
        self.assertEqual(c.cmd(plain("alice@contoso.com", "pw"))[0], 421)

        expected = {"none": 2, "1.0": 7, "1.1": 3, "1.2": 40, "1.3": 10, "all": 62}
        # The live gateway: the API's report, its drill-down, and the metrics.
        status, api, _ = self.gw.api("/api/v1/report?since=1d")
        self.assertEqual(status, 200, api)
        self.assertEqual({k: api["totals"][k] for k in expected}, expected)
        self.assertEqual(api["totals"]["decisions"], {"D3": 2, "D5": 1})
        status, listed, _ = self.gw.api("/api/v1/messages?tls=1.0&limit=5")
        self.assertEqual((status, listed["total"], len(listed["messages"])), (200, 7, 5))
        self.assertEqual({m["client_ip"] for m in listed["messages"]}, {OLD_CLIENT})
        status, page2, _ = self.gw.api("/api/v1/messages?tls=1.0&limit=5&offset=5")
        self.assertEqual(len(page2["messages"]), 2)
        self.assertFalse({m["id"] for m in listed["messages"]} & {m["id"] for m in page2["messages"]})
        status, api_clients, _ = self.gw.api("/api/v1/clients?tls=1.0")
        self.assertEqual(status, 200)
        self.assertIn((OLD_CLIENT, "old-scanner", "user@example.com", 7),
                      [(c["client_ip"], c["ehlo"], c["auth_user"], c["messages"]) for c in api_clients["clients"]])
        status, text, headers = self.gw.api("/api/v1/messages?tls=1.0&format=csv")
        self.assertEqual(status, 200)
        self.assertIn("attachment", headers["Content-Disposition"])
        rows = list(csv.DictReader(io.StringIO(text)))
        self.assertEqual(len(rows), 7)
        self.assertEqual({r["ehlo"] for r in rows}, {"old-scanner"})

        status, metrics, _ = self.gw.api("/metrics")
        self.assertEqual(status, 200)
        by_version = {v: 0 for v in expected if v != "all"}
        for labels, value in re.findall(r'^smtpgate_messages_total\{([^}]*)\} (\S+)$', metrics, re.M):
            version = re.search(r'version="([^"]*)"', labels).group(1)
            by_version[version] += int(float(value))
        by_version["all"] = sum(by_version.values())
        self.assertEqual(by_version, expected, metrics)
        rules = {rule: int(float(value)) for rule, value in
                 re.findall(r'^smtpgate_decisions_total\{rule="(D[1-7])"\} (\S+)$', metrics, re.M)}
        self.assertEqual({k: v for k, v in rules.items() if v}, {"D3": 2, "D5": 1}, metrics)

        self.assertEqual(self.gw.stop(), 0)  # the store commits everything on the way out

        by_day = self.report()
        totals = by_day["totals"]
        self.assertEqual({k: totals[k] for k in ("none", "1.0", "1.1", "1.2", "1.3", "all")},
                         {"none": 2, "1.0": 7, "1.1": 3, "1.2": 40, "1.3": 10, "all": 62})
        self.assertEqual(len(by_day["days"]), 1)
        self.assertEqual(by_day["days"][0]["all"], 62)
        self.assertEqual(totals["decisions"], {"D3": 2, "D5": 1})

        clients = self.report("--by", "client", "--tls", "1.0")["clients"]
        old = [c for c in clients if c["client_ip"] == OLD_CLIENT]
        self.assertEqual(len(old), 1, clients)
        self.assertEqual(old[0]["ehlo"], "old-scanner")
        self.assertEqual(old[0]["auth_user"], "user@example.com")
        self.assertEqual(old[0]["messages"], 7)
        self.assertEqual(old[0]["endpoint"], "legacy")
        self.assertEqual(old[0]["last_rule"], "D8")
        bumped = [c for c in clients if c["client_ip"] == "127.0.0.32"]
        self.assertEqual(len(bumped), 1, clients)
        self.assertEqual((bumped[0]["messages"], bumped[0]["last_rule"]), (0, "D3"))

        self.assertEqual(self.report("--tenant", "contoso")["totals"]["all"], 0)
        self.assertEqual(self.report("--endpoint", "legacy")["totals"]["all"], 10)


if __name__ == "__main__":
    unittest.main()
