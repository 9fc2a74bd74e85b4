"""The deployment files (issue 8, part 3): deploy/systemd/smtpgate.service passes
`systemd-analyze verify` without a single warning (with the built binary substituted for
/usr/local/bin/smtpgate, which verify needs to exist) and its sysusers file is accepted by
systemd-sysusers; deploy/k8s validates against the Kubernetes schemas (tests/k8s/validate.mjs,
the npm package kubernetes-models pinned by tests/k8s/package-lock.json), builds with kustomize
(`kubectl kustomize` where kubectl is installed; otherwise the resources of kustomization.yaml
are assembled by validate.mjs), its ConfigMap passes `smtpgate check-config`, and the pieces
agree with each other (ports, probes, grace period longer than the drain).

Missing tools are a skip on a developer's machine and a failure under CI."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN, make_certificates

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
UNIT = os.path.join(ROOT, "deploy", "systemd", "smtpgate.service")
SYSUSERS = os.path.join(ROOT, "deploy", "systemd", "smtpgate.sysusers")
K8S = os.path.join(ROOT, "deploy", "k8s")
VALIDATOR_DIR = os.path.join(ROOT, "tests", "k8s")
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
DEFAULT_DRAIN_S = 60


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        if IN_CI:
            raise AssertionError("missing: " + ", ".join(missing) + " (deploy/bootstrap.sh test)")
        raise unittest.SkipTest("missing: " + ", ".join(missing))


def unit_settings(text):
    """KEY -> [values] of a unit file (every section; repeated keys keep every value)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def seconds(text):
    m = re.fullmatch(r"(\d+)(s|min)?", text)
    assert m, text
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


class SystemdUnitTest(unittest.TestCase):
    def verify(self, text):
        d = tempfile.mkdtemp(prefix="smtpgate-unit-")
        try:
            path = os.path.join(d, "smtpgate.service")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", path],
                               capture_output=True, text=True, timeout=60)
            return r.returncode, (r.stdout + r.stderr).strip()
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_unit_passes_systemd_analyze_verify_without_warnings(self):
        need("systemd-analyze")
        with open(UNIT) as f:
            text = f.read()
        self.assertIn("/usr/local/bin/smtpgate", text)
        built = text.replace("/usr/local/bin/smtpgate", os.path.abspath(BIN))
        code, output = self.verify(built)
        self.assertEqual((code, output), (0, ""), output)
        # The check does see problems: the same unit with a typo and a missing binary.
        code, output = self.verify(built.replace("NoNewPrivileges=", "NoNewPrivilege=")
                                   .replace(os.path.abspath(BIN), "/nonexistent/smtpgate"))
        self.assertIn("NoNewPrivilege", output)
        self.assertIn("/nonexistent/smtpgate", output)

    def test_unit_settings(self):
        with open(UNIT) as f:
            s = unit_settings(f.read())
        self.assertEqual(s["Type"], ["exec"])  # smtpgate does not call sd_notify
        self.assertEqual(s["User"], ["smtpgate"])
        self.assertEqual(s["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        self.assertEqual(s["AmbientCapabilities"], ["CAP_NET_BIND_SERVICE"])
        self.assertEqual(s["CapabilityBoundingSet"], ["CAP_NET_BIND_SERVICE"])
        self.assertGreater(seconds(s["TimeoutStopSec"][0]), DEFAULT_DRAIN_S)
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                           ("SystemCallFilter", "@system-service"),
                           ("ReadWritePaths", "/var/lib/smtpgate"),
                           ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX")):
            self.assertIn(value, s.get(key, []), key)
        self.assertGreaterEqual(int(s["LimitNOFILE"][0]), 20000)
        # The commands are the binary's real ones.
        start = s["ExecStart"][0].split()
        self.assertEqual(start[1:3], ["run", "--config"])
        r = subprocess.run([BIN, "run", "--help"], capture_output=True, text=True, timeout=10)
        self.assertIn("--config", r.stdout + r.stderr)
        self.assertEqual(s["ExecStartPre"][0].split()[1], "check-config")

    def test_sysusers_file(self):
        need("systemd-sysusers")
        root = tempfile.mkdtemp(prefix="smtpgate-sysusers-")
        try:
            os.makedirs(os.path.join(root, "etc"))
            r = subprocess.run(["systemd-sysusers", "--dry-run", "--root=" + root, SYSUSERS],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Creating user 'smtpgate'", r.stdout + r.stderr)
        finally:
            shutil.rmtree(root, ignore_errors=True)


class KubernetesManifestTest(unittest.TestCase):
    def setUp(self):
        need("node")
        if not os.path.isdir(os.path.join(VALIDATOR_DIR, "node_modules", "kubernetes-models")):
            msg = "tests/k8s/node_modules missing (npm ci in tests/k8s; deploy/bootstrap.sh test)"
            if IN_CI:
                self.fail(msg)
            self.skipTest(msg)
        self.tmp = tempfile.mkdtemp(prefix="smtpgate-k8s-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def validate(self, directory, built=None):
        cmd = ["node", os.path.join(VALIDATOR_DIR, "validate.mjs"), directory, "--dump"]
        if built:
            cmd += ["--built", built]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=VALIDATOR_DIR)

    def documents(self):
        built = None
        if shutil.which("kubectl"):
            out = subprocess.run(["kubectl", "kustomize", K8S], capture_output=True, text=True,
                                 timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr)
            built = os.path.join(self.tmp, "built.yaml")
            with open(built, "w") as f:
                f.write(out.stdout)
        r = self.validate(K8S, built)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {(d["kind"], d["metadata"]["name"]): d for d in json.loads(r.stdout)}

    def test_manifests_validate_and_the_kustomization_builds(self):
        docs = self.documents()
        kinds = sorted(k for k, _ in docs)
        self.assertEqual(kinds, ["ConfigMap", "Deployment", "Namespace", "PodDisruptionBudget",
                                 "Secret", "Secret", "Service"])
        # The validator does reject a broken manifest and a missing resource.
        broken = os.path.join(self.tmp, "broken")
        shutil.copytree(K8S, broken)
        path = os.path.join(broken, "deployment.yaml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("containerPort: 2525", "containerPort: twenty-five"))
        r = self.validate(broken)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("containerPort must be integer", r.stderr)
        os.remove(os.path.join(broken, "poddisruptionbudget.yaml"))
        r = self.validate(broken)
        self.assertIn("resource poddisruptionbudget.yaml does not exist", r.stderr)

    def test_the_pieces_agree(self):
        docs = self.documents()
        config = json.loads(docs[("ConfigMap", "smtpgate-config")]["data"]["smtpgate.json"])
        dep = docs[("Deployment", "smtpgate")]
        pod = dep["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        # Every listener has a container port, takes PROXY headers, and the Service maps
        # 25/465/587 onto them.
        listen = {l["name"]: int(l["listen"].rsplit(":", 1)[1]) for l in config["listeners"]}
        self.assertEqual({n: ports[n] for n in listen}, listen)
        for l in config["listeners"]:
            self.assertTrue(l["proxy_protocol"]["trusted"], l["name"])
        svc = docs[("Service", "smtpgate")]["spec"]
        self.assertEqual(svc["type"], "LoadBalancer")
        self.assertIn(svc["externalTrafficPolicy"], ("Local", "Cluster"))
        self.assertEqual(sorted((p["port"], p["targetPort"]) for p in svc["ports"]),
                         [(25, "mx"), (465, "submissions"), (587, "submission")])
        self.assertEqual(svc["selector"], dep["spec"]["selector"]["matchLabels"])
        pdb = docs[("PodDisruptionBudget", "smtpgate")]["spec"]
        self.assertEqual(pdb["selector"]["matchLabels"], dep["spec"]["selector"]["matchLabels"])
        # Probes on /healthz of the admin port.
        admin_port = int(config["admin"]["listen"].rsplit(":", 1)[1])
        self.assertEqual(ports["admin"], admin_port)
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertEqual(container[probe]["httpGet"], {"path": "/healthz", "port": "admin"})
        # Graceful termination: preStop + drain < grace; liveness outlasts the grace period.
        drain = config["limits"]["timeouts_s"]["drain"]
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = pod["terminationGracePeriodSeconds"]
        self.assertGreater(grace, drain + pre_stop)
        live = container["livenessProbe"]
        self.assertGreater(live["periodSeconds"] * live["failureThreshold"], grace)
        # Non-root, no privileges.
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertFalse(container["securityContext"]["allowPrivilegeEscalation"])
        self.assertEqual(container["securityContext"]["capabilities"]["drop"], ["ALL"])
        self.assertIn("memory", container["resources"]["limits"])
        # The Secrets are placeholders, visibly so.
        for name in ("smtpgate-tls", "smtpgate-admin"):
            for value in docs[("Secret", name)]["stringData"].values():
                self.assertIn("REPLACE", value)

    def test_configmap_passes_check_config(self):
        docs = self.documents()
        data = docs[("ConfigMap", "smtpgate-config")]["data"]
        dep = docs[("Deployment", "smtpgate")]["spec"]["template"]["spec"]
        mounts = {m["name"]: m["mountPath"] for m in dep["containers"][0]["volumeMounts"]}
        # The pod's file system under a temporary root: the ConfigMap's files, a certificate
        # and key where the TLS Secret is mounted, a token where the admin Secret is.
        root = self.tmp
        def place(mount, name, content):
            path = root + mounts[mount] + "/" + name
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(content)
            return path
        config_path = place("config", "smtpgate.json",
                            data["smtpgate.json"].replace("/etc/smtpgate/", root + "/etc/smtpgate/")
                            .replace("/var/lib/smtpgate", root + "/var/lib/smtpgate"))
        place("config", "tenants.json", data["tenants.json"])
        cert = make_certificates(self.tmp)[0]
        with open(cert["cert"]) as c, open(cert["key"]) as k:
            place("tls", "tls.crt", c.read())
            place("tls", "tls.key", k.read())
        place("admin", "admin.token", "0123456789abcdef0123456789abcdef\n")
        os.makedirs(root + mounts["state"], exist_ok=True)
        r = subprocess.run([BIN, "check-config", config_path], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration OK", r.stdout)


if __name__ == "__main__":
    unittest.main()
