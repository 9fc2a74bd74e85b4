"""The admin HTTP server against the real binary: the bearer token, public paths, limits,
reload through the API and token rotation, and start-up errors (SPEC section 7)."""

import json
import os
import signal
import socket
import subprocess
import time
import unittest

from harness import BIN, Gateway


class AdminApiTest(unittest.TestCase):
    def setUp(self):
        self.gw = Gateway(admin=True).start()

    def tearDown(self):
        self.gw.stop()

    def test_token_is_required_except_for_health_and_page(self):
        self.assertEqual(self.gw.api("/healthz", token=False)[:2], (200, "ok\n"))
        for path in ("/metrics", "/api/v1/report", "/api/v1/messages", "/api/v1/clients",
                     "/api/v1/tenants"):
            status, body, headers = self.gw.api(path, token=False)
            self.assertEqual(status, 401, path)
            self.assertIn("bearer token", body["error"])
            self.assertEqual(headers["WWW-Authenticate"], 'Bearer realm="smtpgate"')
            self.assertEqual(self.gw.api(path, token="x" * 32)[0], 401, path)
            self.assertEqual(self.gw.api(path, token=self.gw.admin_token + "x")[0], 401, path)
        status, _, headers = self.gw.api("/api/v1/report")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")

    def test_scheme_is_case_insensitive_and_control_characters_are_refused(self):
        req_token = "bearer " + self.gw.admin_token
        status, _, _ = self.gw.api("/metrics", token=False, headers={"Authorization": req_token})
        self.assertEqual(status, 200)
        # A %0a in the path would forge a line of the gateway's log.
        status, body, _ = self.gw.api("/api/v1/tenants/x%0a2026-01-01T00:00:00.000Z%20info:%20forged",
                                      method="PUT", body={})
        self.assertEqual(status, 400)
        self.assertNotIn("forged", self.gw.output())

    def test_bad_requests_get_clear_answers(self):
        status, body, _ = self.gw.api("/api/v1/report?tls=2.0")
        self.assertEqual(status, 400)
        self.assertIn("'2.0' is not one of none, 1.0, 1.1, 1.2, 1.3", body["error"])
        self.assertEqual(self.gw.api("/api/v1/nothing")[0], 404)
        self.assertEqual(self.gw.api("/api/v1/report", method="DELETE")[0], 405)
        # A body above the limit is refused by the HTTP layer before any handler runs.
        status, _, _ = self.gw.api("/api/v1/reload", method="POST", body=b"x" * (300 * 1024))
        self.assertEqual(status, 413)
        # A method the server does not serve at all.
        with socket.create_connection(("127.0.0.1", self.gw.ports["admin"]), timeout=5) as s:
            s.sendall(b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertRegex(s.recv(200), rb"^HTTP/1\.1 (405|501)")

    def test_reload_through_the_api_rotates_the_token(self):
        old = self.gw.admin_token
        new = "n" * 40
        with open(self.gw.config["admin"]["token_file"], "w") as f:
            f.write(new + "\n")
        status, body, _ = self.gw.api("/api/v1/reload", method="POST")
        self.assertEqual((status, body), (200, {"reloaded": True}))
        self.assertEqual(self.gw.api("/metrics", token=old)[0], 401)
        self.assertEqual(self.gw.api("/metrics", token=new)[0], 200)

        # A bad configuration is refused with its errors, and the old one keeps serving.
        self.gw.config["listeners"][0]["listen"] = "127.0.0.1:0"
        self.gw.write_config()
        status, body, _ = self.gw.api("/api/v1/reload", method="POST", token=new)
        self.assertEqual(status, 422)
        self.assertIn("/listeners/0/listen: port must be 1..65535", body["errors"][0])
        self.assertEqual(self.gw.api("/healthz", token=False)[0], 200)

    def test_sighup_rotates_the_token_too(self):
        new = "r" * 24
        with open(self.gw.config["admin"]["token_file"], "w") as f:
            f.write(new + "\n")
        self.gw.signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and self.gw.api("/metrics", token=new)[0] != 200:
            time.sleep(0.05)
        self.assertEqual(self.gw.api("/metrics", token=new)[0], 200)


class AdminStartupTest(unittest.TestCase):
    def test_a_busy_admin_port_stops_the_start(self):
        gw = Gateway(admin=True)
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", gw.ports["admin"]))
            busy.listen()
            with self.assertRaises(AssertionError) as failed:
                gw.start()
        self.assertIn("admin: cannot listen on 127.0.0.1:%d" % gw.ports["admin"], str(failed.exception))
        gw.stop()

    def test_check_config_names_a_bad_token_file(self):
        gw = Gateway(admin=True)
        with open(gw.config["admin"]["token_file"], "w") as f:
            f.write("short\n")
        r = subprocess.run([BIN, "check-config", gw.config_path], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/admin/token_file: %s: the token must be at least 16 characters"
                      % gw.config["admin"]["token_file"], r.stderr + r.stdout)


if __name__ == "__main__":
    unittest.main()
