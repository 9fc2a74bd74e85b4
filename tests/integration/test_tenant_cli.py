"""`smtpgate tenant` (SPEC sections 2, 3, 7): the Set-TransportConfig -AllowLegacyTLSClients of
smtpgate. Offline on a tenants file (locked, validated, atomic, audited), bad usage exiting 2,
and through the running gateway's admin API, where a change decides the very next session (D5 on
the legacy endpoint) without restart and survives one."""

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import BIN, GatewayTestCase, free_port

HELP = "https://aka.ms/smtp_auth_tls"
T2 = ("421 4.7.66 Legacy TLS clients are not allowed for this organization. Use a TLS 1.2 "
      "client with the regular endpoint. Visit " + HELP)

TENANTS = [
    {"id": "contoso", "domains": ["contoso.com", "contoso.org"], "allow_legacy_tls_clients": True,
     "exceptions": [{"client": "192.0.2.10/32", "reason": "scanner, 3rd floor",
                     "expires": "2027-03-31"},
                    {"user": "printer@contoso.com"}]},
    {"id": "fabrikam", "domains": ["fabrikam.com"], "allow_legacy_tls_clients": False},
]
USERS = (("alice@contoso.com", "pw-alice"), ("bob@fabrikam.com", "pw-bob"))


def run(*args, env=None, timeout=30):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=env)


def plain(user, password):
    return "AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class TenantCliOfflineTest(unittest.TestCase):
    """--offline: the same read-modify-write as the API, on the file named by the config."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpgate-tenant-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.state = os.path.join(self.dir, "state")
        os.mkdir(self.state)
        self.tenants = os.path.join(self.dir, "tenants.json")
        with open(self.tenants, "w") as f:
            json.dump({"tenants": TENANTS}, f, indent=2)
        self.config = os.path.join(self.dir, "smtpgate.json")
        with open(self.config, "w") as f:
            json.dump({"state_dir": self.state, "tenants": self.tenants}, f)
        self.audit_path = os.path.join(self.state, "audit.jsonl")

    def tenant(self, *args):
        return run("tenant", "--config", self.config, "--offline", *args)

    def ok(self, *args):
        r = self.tenant(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def file(self):
        with open(self.tenants) as f:
            return json.load(f)["tenants"]

    def test_offline_list_table_and_json(self):
        r = self.ok("list")
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["id", "domains", "allow_legacy_tls_clients",
                                            "exceptions"])
        self.assertEqual(lines[1].split(), ["contoso", "contoso.com,contoso.org", "true", "2"])
        self.assertEqual(lines[2].split(), ["fabrikam", "fabrikam.com", "false", "0"])
        listed = json.loads(self.ok("list", "--format", "json").stdout)["tenants"]
        self.assertEqual([t["id"] for t in listed], ["contoso", "fabrikam"])
        self.assertEqual(listed[0]["exceptions"][1], {"index": 1, "user": "printer@contoso.com"})
        # SMTPGATE_CONFIG finds the configuration as --config does.
        env = dict(os.environ, SMTPGATE_CONFIG=self.config)
        r = run("tenant", "list", "--offline", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fabrikam", r.stdout)

    def test_offline_show(self):
        r = self.ok("show", "contoso")
        self.assertIn("allow_legacy_tls_clients:  true", r.stdout)
        self.assertIn("contoso.com, contoso.org", r.stdout)
        row = [l for l in r.stdout.splitlines() if "192.0.2.10/32" in l][0].split()
        self.assertEqual(row[:4], ["0", "client", "192.0.2.10/32", "2027-03-31"])
        shown = json.loads(self.ok("show", "contoso", "--format=json").stdout)
        self.assertEqual(shown["tenant"]["exceptions"][0]["index"], 0)
        r = self.tenant("show", "northwind")
        self.assertEqual(r.returncode, 1)
        self.assertIn('no tenant "northwind"', r.stderr)

    def test_offline_set_flips_writes_and_audits(self):
        r = self.ok("set", "contoso", "--allow-legacy-tls-clients", "false")
        self.assertIn("allow_legacy_tls_clients true -> false", r.stdout)
        self.assertIn("SIGHUP", r.stdout)
        self.assertFalse(self.file()[0]["allow_legacy_tls_clients"])
        self.assertEqual(len(self.file()[0]["exceptions"]), 2)
        self.assertEqual(sorted(os.listdir(self.dir)),
                         ["smtpgate.json", "state", "tenants.json", "tenants.json.lock"])
        audit = read_jsonl(self.audit_path)
        self.assertEqual(len(audit), 1)
        entry = audit[0]
        self.assertTrue(entry["actor"].startswith("offline "), entry)
        self.assertIn("@", entry["actor"])
        self.assertEqual((entry["tenant"], entry["action"]), ("contoso", "set"))
        self.assertTrue(entry["old"]["allow_legacy_tls_clients"])
        self.assertFalse(entry["new"]["allow_legacy_tls_clients"])
        self.assertRegex(entry["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # Setting what is already there changes nothing and records nothing.
        r = self.ok("set", "contoso", "--allow-legacy-tls-clients", "false")
        self.assertIn("unchanged", r.stdout)
        self.assertEqual(len(read_jsonl(self.audit_path)), 1)
        # The audit subcommand reads the same trail.
        r = self.ok("audit", "contoso")
        self.assertIn("set", r.stdout)
        self.assertEqual(json.loads(self.ok("audit", "--format", "json").stdout)["audit"], audit)

    def test_offline_set_creates_with_domains_and_delete(self):
        r = self.tenant("set", "northwind", "--allow-legacy-tls-clients", "true")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--domains", r.stderr)
        r = self.ok("set", "northwind", "--allow-legacy-tls-clients", "true",
                    "--domains", "NorthWind.example, northwind.test")
        self.assertIn("created", r.stdout)
        self.assertEqual(self.file()[2], {"id": "northwind",
                                          "domains": ["northwind.example", "northwind.test"],
                                          "allow_legacy_tls_clients": True, "exceptions": []})
        self.ok("delete", "northwind")
        self.assertEqual([t["id"] for t in self.file()], ["contoso", "fabrikam"])
        self.assertEqual([e["action"] for e in read_jsonl(self.audit_path)], ["create", "delete"])

    def test_offline_exception_add_and_remove(self):
        r = self.ok("exception", "add", "fabrikam", "--client", "198.51.100.7/24",
                    "--expires", "2027-03-31", "--reason", "old copier")
        self.assertIn("exception 0 added: client 198.51.100.0/24", r.stdout)
        self.ok("exception", "add", "fabrikam", "--cert-sha256", "AB:" * 31 + "AB")
        self.ok("exception", "add", "fabrikam", "--ehlo", "Scanner.Fabrikam.com")
        exceptions = self.file()[1]["exceptions"]
        self.assertEqual(exceptions[0], {"client": "198.51.100.0/24", "expires": "2027-03-31",
                                         "reason": "old copier"})
        self.assertEqual(exceptions[1], {"cert_sha256": "ab" * 32})
        self.assertEqual(exceptions[2], {"ehlo": "scanner.fabrikam.com"})
        r = self.ok("exception", "remove", "fabrikam", "1")
        self.assertIn("exception 1 removed: cert_sha256", r.stdout)
        self.assertEqual([list(e)[0] for e in self.file()[1]["exceptions"]], ["client", "ehlo"])
        r = self.tenant("exception", "remove", "fabrikam", "7")
        self.assertEqual(r.returncode, 1)
        self.assertIn("has no exception 7 (0..1)", r.stderr)
        self.assertEqual([e["action"] for e in read_jsonl(self.audit_path)],
                         ["exception add"] * 3 + ["exception remove"])

    def test_offline_validation_error_prints_pointers(self):
        before = open(self.tenants).read()
        r = self.tenant("set", "contoso", "--domains", "contoso.com,fabrikam.com")
        self.assertEqual(r.returncode, 1)
        self.assertIn('the change to tenant "contoso" is invalid', r.stderr)
        self.assertIn("/tenants/0/domains/1: fabrikam.com already belongs to tenant \"fabrikam\" "
                      "(/tenants/1/domains/0)", r.stderr)
        self.assertEqual(open(self.tenants).read(), before)
        self.assertEqual(read_jsonl(self.audit_path), [])

    def test_offline_broken_file_is_reported(self):
        with open(self.tenants, "w") as f:
            f.write('{"tenants": [{"id": "contoso", "domains": ["not a domain"]}]}')
        r = self.tenant("set", "contoso", "--allow-legacy-tls-clients", "true")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/tenants/0/domains/0: must be a DNS name", r.stderr)

    def test_offline_parallel_edits_are_serialised(self):
        procs = [subprocess.Popen([BIN, "tenant", "--config", self.config, "--offline",
                                   "exception", "add", "fabrikam", "--user",
                                   "device%d@fabrikam.com" % n],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for n in range(6)]
        for p in procs:
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
        users = sorted(e["user"] for e in self.file()[1]["exceptions"])
        self.assertEqual(users, ["device%d@fabrikam.com" % n for n in range(6)])
        self.assertEqual(len(read_jsonl(self.audit_path)), 6)

    def test_bad_usage_exits_2(self):
        before = open(self.tenants).read()
        cases = [
            ([], "subcommand is missing"),
            (["frobnicate"], "unknown subcommand 'frobnicate'"),
            (["show"], "the tenant ID is missing"),
            (["show", "a", "b"], "unexpected argument 'b'"),
            (["show", "bad id!"], "is not a tenant ID"),
            (["set", "contoso"], "--allow-legacy-tls-clients true|false"),
            (["set", "contoso", "--allow-legacy-tls-clients", "maybe"], "must be true or false"),
            (["set", "contoso", "--allow-legacy-tls-clients"], "needs a value"),
            (["set", "contoso", "--domains", "not a domain"], "not a DNS name"),
            (["set", "contoso", "--client", "192.0.2.1"], "--client does not apply here"),
            (["exception", "add", "contoso"], "exactly one of --client"),
            (["exception", "add", "contoso", "--user", "a@contoso.com", "--ehlo", "x"],
             "exactly one of --client"),
            (["exception", "add", "contoso", "--client", "192.0.2.300/32"],
             '--client 192.0.2.300/32: "192.0.2.300/32" is not an IPv4 or IPv6 network'),
            (["exception", "add", "contoso", "--user", "nobody"], "--user nobody: must be an address"),
            (["exception", "add", "contoso", "--cert-sha256", "abc"], "--cert-sha256 abc: must be"),
            (["exception", "add", "contoso", "--user", "a@contoso.com", "--expires", "tomorrow"],
             "--expires tomorrow: must be a date"),
            (["exception", "frob", "contoso"], "exception add ID"),
            (["exception", "remove", "contoso"], "index N"),
            (["exception", "remove", "contoso", "-1"], "unexpected option '-1'"),
            (["exception", "remove", "contoso", "x"], "N must be an exception index"),
            (["list", "--format", "xml"], "must be table or json"),
            (["list", "--bogus"], "unexpected option '--bogus'"),
            (["audit", "--limit", "0"], "--limit 0: must be 1..10000"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                r = self.tenant(*args)
                self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))
                self.assertIn(message, r.stderr)
                self.assertIn("smtpgate tenant --help", r.stderr)
        self.assertEqual(open(self.tenants).read(), before)
        self.assertEqual(read_jsonl(self.audit_path), [])

    def test_help(self):
        r = run("tenant", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("exception add ID --client CIDR", r.stdout)
        self.assertIn("--offline", r.stdout)
        r = run("tenant", "set", "contoso", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: smtpgate tenant", r.stdout)
        self.assertIn("tenant SUBCOMMAND", run("--help").stdout)

    def test_without_admin_api_suggests_offline(self):
        r = run("tenant", "--config", self.config, "list")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no admin API", r.stderr)
        self.assertIn("--offline", r.stderr)

    def test_unreachable_api_suggests_offline(self):
        token = os.path.join(self.dir, "admin.token")
        with open(token, "w") as f:
            f.write("0123456789abcdef0123\n")
        port = free_port()
        with open(self.config, "w") as f:
            json.dump({"state_dir": self.state, "tenants": self.tenants,
                       "admin": {"listen": "127.0.0.1:%d" % port, "token_file": token}}, f)
        r = run("tenant", "--config", self.config, "set", "contoso",
                "--allow-legacy-tls-clients", "false")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot reach the admin API at http://127.0.0.1:%d" % port, r.stderr)
        self.assertIn("--offline", r.stderr)
        self.assertTrue(self.file()[0]["allow_legacy_tls_clients"])


class TenantApiTest(GatewayTestCase):
    """Through the running gateway's admin API (needs the admin server)."""

    tenants = TENANTS
    users = USERS

    def setUp(self):
        self.token_dir = tempfile.mkdtemp(prefix="smtpgate-token-")
        self.addCleanup(shutil.rmtree, self.token_dir, True)
        self.token = "tok-" + base64.b16encode(os.urandom(12)).decode().lower()
        self.token_file = os.path.join(self.token_dir, "admin.token")
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        os.chmod(self.token_file, 0o600)
        self.admin_port = free_port()
        self.overrides = {"admin": {"listen": "127.0.0.1:%d" % self.admin_port,
                                    "token_file": self.token_file}}
        super().setUp()
        self.wait_admin()

    def wait_admin(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.admin_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.fail("the admin API did not listen on %d:\n%s" % (self.admin_port, self.gw.output()))

    def tenant(self, *args):
        return run("tenant", "--config", self.gw.config_path, *args)

    def api(self, method, path, body=None, token=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.admin_port, path),
                                     method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + (token or self.token),
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def legacy_auth(self, user="alice@contoso.com", password="pw-alice"):
        c = self.connect("legacy", version="1.0")
        try:
            return c.cmd(plain(user, password))
        finally:
            c.close()

    def test_set_through_api_flips_next_legacy_tls10_session_and_survives_restart(self):
        self.assertEqual(self.legacy_auth()[0], 235)
        r = self.tenant("set", "contoso", "--allow-legacy-tls-clients", "false")
        self.assertEqual(r.returncode, 0, r.stderr + self.gw.output()[-2000:])
        self.assertIn("allow_legacy_tls_clients true -> false", r.stdout)
        self.assertIn("applied to new sessions now", r.stdout)
        # The very next TLS 1.0 session of the tenant on the legacy endpoint: D5, no restart.
        self.assertEqual(self.legacy_auth(), (421, [T2]))
        # Written to the tenants file: a restart keeps it.
        with open(self.gw.tenants_path) as f:
            self.assertFalse(json.load(f)["tenants"][0]["allow_legacy_tls_clients"])
        self.assertEqual(self.gw.stop(), 0)
        self.gw.start()
        self.wait_admin()
        self.assertEqual(self.legacy_auth(), (421, [T2]))
        # And back, through the API again.
        self.assertEqual(self.tenant("set", "contoso", "--allow-legacy-tls-clients",
                                     "true").returncode, 0)
        self.assertEqual(self.legacy_auth()[0], 235)

    def test_audit_visible_via_api(self):
        self.assertEqual(self.tenant("set", "contoso", "--allow-legacy-tls-clients",
                                     "false").returncode, 0)
        status, body = self.api("GET", "/api/v1/audit?tenant=contoso&limit=5")
        self.assertEqual(status, 200, body)
        entry = body["audit"][0]
        self.assertTrue(entry["actor"].startswith("cli "), entry)
        self.assertNotIn(self.token, json.dumps(body))
        self.assertEqual((entry["tenant"], entry["action"]), ("contoso", "set"))
        self.assertTrue(entry["old"]["allow_legacy_tls_clients"])
        self.assertFalse(entry["new"]["allow_legacy_tls_clients"])
        with open(os.path.join(self.gw.dir, "audit.jsonl")) as f:
            self.assertNotIn(self.token, f.read())
        r = self.tenant("audit", "contoso", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["audit"][0], entry)

    def test_exception_add_and_remove_through_api(self):
        self.assertEqual(self.tenant("set", "fabrikam", "--allow-legacy-tls-clients",
                                     "false").returncode, 0)
        self.assertEqual(self.legacy_auth("bob@fabrikam.com", "pw-bob"), (421, [T2]))
        r = self.tenant("exception", "add", "fabrikam", "--user", "bob@fabrikam.com",
                        "--reason", "label printer")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.legacy_auth("bob@fabrikam.com", "pw-bob")[0], 235)
        shown = json.loads(self.tenant("show", "fabrikam", "--format", "json").stdout)
        self.assertEqual(shown["tenant"]["exceptions"],
                         [{"index": 0, "user": "bob@fabrikam.com", "reason": "label printer"}])
        self.assertEqual(self.tenant("exception", "remove", "fabrikam", "0").returncode, 0)
        self.assertEqual(self.legacy_auth("bob@fabrikam.com", "pw-bob"), (421, [T2]))
        status, body = self.api("GET", "/api/v1/audit?tenant=fabrikam")
        self.assertEqual([e["action"] for e in body["audit"]],
                         ["exception remove", "exception add"])

    def test_api_put_validation_and_lists(self):
        status, body = self.api("GET", "/api/v1/tenants")
        self.assertEqual(status, 200, body)
        self.assertEqual([t["id"] for t in body["tenants"]], ["contoso", "fabrikam"])
        status, body = self.api("PUT", "/api/v1/tenants/contoso",
                                {"domains": ["contoso.com", "fabrikam.com"]})
        self.assertEqual(status, 422, body)
        self.assertIn("/tenants/0/domains/1: fabrikam.com already belongs to tenant \"fabrikam\" "
                      "(/tenants/1/domains/0)", body["errors"])
        r = self.tenant("set", "contoso", "--domains", "contoso.com,fabrikam.com")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/tenants/0/domains/1", r.stderr)
        status, body = self.api("PUT", "/api/v1/tenants/northwind",
                                {"domains": ["northwind.example"]})
        self.assertEqual(status, 201, body)
        self.assertEqual(self.api("GET", "/api/v1/tenants/northwind")[0], 200)
        self.assertEqual(self.api("DELETE", "/api/v1/tenants/northwind")[0], 200)
        self.assertEqual(self.api("GET", "/api/v1/tenants/northwind")[0], 404)
        self.assertEqual(self.api("GET", "/api/v1/tenants", token="wrong-token-0123456789")[0],
                         401)
        r = self.tenant("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("contoso", r.stdout)


if __name__ == "__main__":
    unittest.main()
