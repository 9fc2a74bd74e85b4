"""The command line: check-config with JSON pointers, start-up refusing a bad configuration
with the same messages, --version, --help."""

import json
import os
import subprocess
import tempfile
import unittest

from harness import BIN, Gateway, make_certificates


def run(*args, cwd=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30, cwd=cwd)


class CliTest(unittest.TestCase):
    def write_config(self, config):
        d = tempfile.mkdtemp(prefix="smtpgate-cli-")
        path = os.path.join(d, "smtpgate.json")
        with open(path, "w") as f:
            json.dump(config, f)
        return d, path

    def test_check_config_ok(self):
        gw = Gateway()
        r = run("check-config", gw.config_path)
        self.assertEqual((r.returncode, r.stdout), (0, "configuration OK\n"), r.stderr)

    def test_check_config_lists_every_error_with_pointer(self):
        d, path = self.write_config({
            "workers": "two",
            "listeners": [{"name": "a", "listen": "127.0.0.1:2525"},
                          {"name": "b", "listen": "127.0.0.1:99999", "tls": "sometimes"}],
            "smtp": {"max_mesage_bytes": 10},
            "certificates": [{"cert": "missing.pem", "key": "missing.key"}],
        })
        r = run("check-config", path)
        self.assertEqual(r.returncode, 1)
        errors = r.stderr.strip().splitlines()
        self.assertTrue(any(e.startswith("/workers: ") for e in errors), errors)
        self.assertTrue(any(e.startswith("/listeners/1/listen: ") and "65535" in e for e in errors), errors)
        self.assertTrue(any(e.startswith("/listeners/1/tls: ") for e in errors), errors)
        self.assertIn("/smtp/max_mesage_bytes: unknown key", errors)
        self.assertGreaterEqual(len(errors), 4)

    def test_check_config_reports_missing_certificate_file(self):
        gw = Gateway()
        gw.config["certificates"] = [{"cert": "/nonexistent/c.pem", "key": "/nonexistent/c.key"}]
        with open(gw.config_path, "w") as f:
            json.dump(gw.config, f)
        r = run("check-config", gw.config_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/certificates/0", r.stderr)
        self.assertIn("/nonexistent/c.pem", r.stderr)

    def test_invalid_json(self):
        d = tempfile.mkdtemp()
        path = os.path.join(d, "bad.json")
        with open(path, "w") as f:
            f.write('{"hostname": "x",\n  "workers": }')
        r = run("check-config", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("line 2", r.stderr)

    def test_start_refuses_bad_config_with_the_same_messages(self):
        d, path = self.write_config({"listeners": [{"name": "a", "listen": "127.0.0.1:0"}],
                                     "limits": {"max_errors": 0}})
        check = run("check-config", path)
        start = run("run", "--config", path)
        self.assertEqual(start.returncode, 1)
        for line in check.stderr.strip().splitlines():
            self.assertIn(line, start.stderr)

    def test_check_config_reports_schedule_and_tenant_errors(self):
        gw = Gateway(tenants=[
            {"id": "contoso", "domains": ["contoso.com"],
             "exceptions": [{"client": "192.0.2.300/32"}, {"client": "2001:db8::/129"}]},
            {"id": "fabrikam", "domains": ["fabrikam.com", "contoso.com"], "colour": "blue"},
        ])
        gw.config["legacy_tls"] = {
            "speedbump": [{"from": "2026-03-01T00:00:00Z", "reject_percent": 50},
                          {"from": "2026-01-01T00:00:00Z", "reject_percent": 150}],
            "strict_cutoff": "2025-12-01T00:00:00Z", "after_cutoff": "refuse", "speedbumps": []}
        gw.write_config()
        r = run("check-config", gw.config_path)
        self.assertEqual(r.returncode, 1)
        errors = r.stderr.strip().splitlines()
        expect = [
            "/legacy_tls/after_cutoff: ",
            "/legacy_tls/speedbumps: unknown key",
            "/legacy_tls/speedbump/1/from: must be later than /legacy_tls/speedbump/0/from",
            "/legacy_tls/speedbump/1/reject_percent: must be 0..100",
            "/legacy_tls/strict_cutoff: must be later than the last speedbump step",
        ]
        for prefix in expect:
            self.assertTrue(any(e.startswith(prefix) for e in errors), (prefix, errors))
        # The tenants file is checked when the configuration is otherwise sound.
        del gw.config["legacy_tls"]
        gw.write_config()
        r = run("check-config", gw.config_path)
        self.assertEqual(r.returncode, 1)
        errors = r.stderr.strip().splitlines()
        where = "/tenants: %s: " % gw.tenants_path
        for suffix in ('/tenants/0/exceptions/0/client: "192.0.2.300/32" is not an IPv4 or IPv6 network',
                       "/tenants/0/exceptions/1/client: ",
                       "/tenants/1/colour: unknown key",
                       '/tenants/1/domains/1: contoso.com already belongs to tenant "contoso"'):
            self.assertTrue(any(e.startswith(where + suffix) for e in errors), (suffix, errors))

    def test_version_and_help(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^smtpgate \d+\.\d+\.\d+\n$")
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("check-config FILE", r.stdout)
        r = run("check-config", "--help")
        self.assertIn("JSON pointer", r.stdout)
        r = run("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command", r.stderr)

    def test_print_default_is_a_valid_configuration(self):
        r = run("run", "--print-default")
        self.assertEqual(r.returncode, 0)
        config = json.loads(r.stdout)
        ports = sorted(int(l["listen"].rsplit(":", 1)[1]) for l in config["listeners"])
        self.assertEqual(ports, [2465, 2587, 2588])


if __name__ == "__main__":
    unittest.main()
