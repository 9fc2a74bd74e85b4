"""SPEC section 8: bind a privileged port and read the keys as root, then run as `user`; the
files the gateway keeps writing are handed to that user. Needs root (as CI runs)."""

import os
import pwd
import random
import socket
import subprocess
import unittest

from harness import BIN, Gateway, SmtpConn, send_message


def privileged_port():
    for port in random.sample(range(900, 1000), 100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port below 1024")


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


@unittest.skipUnless(os.geteuid() == 0 or os.environ.get("CI"), "needs root")
class PrivilegeDropTest(unittest.TestCase):
    def test_binds_below_1024_then_runs_as_the_user(self):
        nobody = pwd.getpwnam("nobody")
        gw = Gateway({"user": "nobody"})
        port = privileged_port()
        gw.config["listeners"][0]["listen"] = "127.0.0.1:%d" % port
        gw.ports["starttls"] = port
        gw.write_config()
        os.chmod(gw.dir, 0o755)  # the state directory is handed over, its parent must be passable
        gw.start()
        try:
            self.assertIn("running as user nobody", gw.wait_output("running as user nobody"))
            self.assertEqual(uid_of(gw.proc.pid), [nobody.pw_uid] * 4)  # real, effective, saved, fs
            # Mail still goes through: the spool and the trace store belong to the user now.
            c = SmtpConn(port)
            self.assertEqual(c.read_reply()[0], 220)
            c.expect("EHLO a.test", 250)
            c.expect("STARTTLS", 220)
            c.starttls_now("1.3")
            c.expect("EHLO a.test", 250)
            code, _ = send_message(c, "a@example.com", ["b@example.com"], b"Subject: x\r\n\r\nx\r\n.\r\n")
            self.assertEqual(code, 250)
            c.cmd("QUIT")
            self.assertEqual(os.stat(os.path.join(gw.dir, "spool", "new")).st_uid, nobody.pw_uid)
        finally:
            self.assertEqual(gw.stop(), 0)
        self.assertEqual(len(gw.messages()), 1)
        r = subprocess.run([BIN, "report", "--config", gw.config_path, "--format", "json"],
                           capture_output=True, text=True, timeout=30)
        self.assertIn('"all": 1', r.stdout)

    def test_an_unknown_user_stops_the_start(self):
        gw = Gateway({"user": "smtpgate-no-such-user"})
        with self.assertRaises(AssertionError) as failed:
            gw.start()
        self.assertIn('/user: no such user "smtpgate-no-such-user"', str(failed.exception))
        gw.stop()


if __name__ == "__main__":
    unittest.main()
