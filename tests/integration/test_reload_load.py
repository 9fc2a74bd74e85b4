"""SIGHUP under continuous load (issue: hardening, reload and drain): 20 reloads while clients
keep sending mail over TLS 1.0 to 1.3 on every listener; the reloads change the configuration,
the tenants file and the certificates, and one of them is broken (refused, the old one keeps
serving). Not one session may fail and every accepted message must be in the spool."""

import json
import os
import shutil
import signal
import threading
import time
import unittest

from harness import Gateway, SmtpConn, make_certificates, send_message

RELOADS = 20
BROKEN_AT = 7
CLIENTS = 4


class ReloadUnderLoadTest(unittest.TestCase):
    def setUp(self):
        # Every client comes from 127.0.0.1 and opens a session after the other: the per-address
        # rates are not what this test is about.
        self.gw = Gateway({"workers": 2,
                           "limits": {"new_connections_per_ip_per_minute": 100000,
                                      "new_tls_handshakes_per_ip_per_minute": 100000}},
                          tenants=[{"id": "example", "domains": ["example.com"],
                                    "allow_legacy_tls_clients": True}]).start()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted = 0
        self.failures = []

    def tearDown(self):
        self.stop.set()
        self.gw.stop()

    def client(self, index):
        port, implicit, version = [("starttls", False, "1.3"), ("implicit", True, "1.2"),
                                   ("legacy", False, "1.0"), ("starttls", False, "1.2")][index % 4]
        n = 0
        deadline = time.time() + 120  # bounded even if the stop event were never set
        while not self.stop.is_set() and time.time() < deadline:
            n += 1
            c = None
            try:
                c = SmtpConn(self.gw.ports[port], implicit=implicit, version=version, timeout=15)
                if not implicit:
                    code, _ = c.read_reply()
                    assert code == 220, code
                    c.expect("EHLO load.test", 250)
                    c.expect("STARTTLS", 220)
                    c.starttls_now(version)
                else:
                    code, _ = c.read_reply()
                    assert code == 220, code
                c.expect("EHLO load.test", 250)
                c.expect("AUTH PLAIN AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0", 235)
                for m in range(3):
                    code, lines = send_message(c, "user@example.com", ["r@example.com"],
                                               ("Subject: c%d s%d m%d\r\n\r\nbody\r\n.\r\n"
                                                % (index, n, m)).encode())
                    assert code == 250, (code, lines)
                    with self.lock:
                        self.accepted += 1
                c.expect("QUIT", 221)
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                with self.lock:
                    self.failures.append("client %d session %d (%s %s): %r" % (index, n, port, version, e))
                time.sleep(0.1)  # a failing gateway is not hammered
            finally:
                if c is not None:
                    c.sock.close()

    def test_twenty_reloads_lose_nothing(self):
        threads = [threading.Thread(target=self.client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        good = json.loads(json.dumps(self.gw.config))
        certs_dir = os.path.join(self.gw.dir, "certs")
        for i in range(RELOADS):
            time.sleep(0.25)
            config = json.loads(json.dumps(good))
            if i == BROKEN_AT:
                config["listeners"][0]["tls"] = "sometimes"  # refused: the old one stays
            else:
                # New certificates, a changed limit and a tenants file rewritten each time.
                os.makedirs(certs_dir, exist_ok=True)
                fresh = make_certificates(certs_dir)
                config["certificates"] = fresh
                config["smtp"] = {"max_recipients": 50 + i}
                with open(self.gw.tenants_path, "w") as f:
                    json.dump({"tenants": [{"id": "example", "domains": ["example.com"],
                                            "allow_legacy_tls_clients": True,
                                            "exceptions": [{"ehlo": "reload-%d.test" % i}]}]}, f)
            tmp = self.gw.config_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(config, f)
            os.replace(tmp, self.gw.config_path)
            self.gw.signal(signal.SIGHUP)
        time.sleep(0.5)
        self.stop.set()
        for t in threads:
            t.join(timeout=60)
        output = self.gw.output()
        self.assertEqual(self.failures, [], output[-3000:])
        self.assertEqual(output.count("reload refused"), 1, output[-3000:])
        self.assertEqual(output.count("reload done"), RELOADS - 1, output[-3000:])
        self.assertGreater(self.accepted, RELOADS)  # the load really ran across the reloads
        self.assertEqual(self.gw.stop(), 0)
        self.assertEqual(len(self.gw.messages()), self.accepted)
        shutil.rmtree(certs_dir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
