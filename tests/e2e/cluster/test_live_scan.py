"""Live mode for users: `scan --cluster` and `--cluster` on rbac, netpol and pss namespaces, against the real
apiserver; a user who may not list some types gets them as NOT ASSESSED in every format, never as passed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from livekube import create, namespace, wait_default_sa

from kubeward.sources.cluster import SCAN_TYPES, Client, load_cluster

RBAC_GV = "rbac.authorization.k8s.io/v1"


def kw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", *args],
                          capture_output=True, text=True, check=False, env=env)


def _workload(admin: Client) -> None:
    namespace(admin, "scan-live", {"pod-security.kubernetes.io/enforce": "privileged"})
    wait_default_sa(admin, ["scan-live"])
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "priv", "namespace": "scan-live"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "priv"}},
                       "template": {"metadata": {"labels": {"app": "priv"}}, "spec": {"containers": [
                           {"name": "c", "image": "registry.example/app:1",
                            "securityContext": {"privileged": True}}]}}}}
    status, doc = admin.json("POST", "/apis/apps/v1/namespaces/scan-live/deployments", body=deploy)
    assert status in (201, 409), doc.get("message")


def test_scan_cluster_reads_every_type_and_finds_the_workload(live: Any, admin: Client) -> None:
    _workload(admin)
    out = kw("scan", "--cluster", "--kubeconfig", str(live.kubeconfig), "-o", "json", "--fail-on", "critical")
    assert out.returncode in (0, 1), out.stderr
    doc = orjson.loads(out.stdout)
    cov = doc["summary"]["coverage"]
    assert cov["typesRead"] == cov["typesWanted"] >= 18, cov
    assert doc["notAssessed"] == []
    hits = [f for f in doc["findings"] if f["object"]["name"] == "priv" and f["object"]["kind"] == "Deployment"]
    assert any("privileged" in f["path"] for f in hits), hits
    assert all(f["source"]["cluster"] == "kubeward-admin@kubeward-e2e" and "location" not in f for f in hits)


def test_pagination_reads_every_item(live: Any, admin: Client) -> None:
    namespace(admin, "paged")
    for i in range(23):
        create(admin, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}", "namespace": "paged"}})
    import kubeward.sources.cluster as source

    old = source.PAGE_SIZE
    source.PAGE_SIZE = 5
    try:
        snap = load_cluster(types=SCAN_TYPES, client=admin)
    finally:
        source.PAGE_SIZE = old
    names = {r.name for r in snap.of_kind("ConfigMap") if r.namespace == "paged"}
    assert names == {f"cm{i}" for i in range(23)}
    assert all(r.api_version == "v1" and r.kind == "ConfigMap" for r in snap.of_kind("ConfigMap"))


def test_forbidden_types_are_not_assessed_in_every_format(live: Any, admin: Client, tmp_path: Path) -> None:
    kc = tmp_path / "limited.kubeconfig"
    out = kw("pki", "issue-user", str(live.pki), "limited-reader", "--kubeconfig-out", str(kc),
             "--server", live.server)
    assert out.returncode == 0, out.stderr
    create(admin, {"apiVersion": RBAC_GV, "kind": "ClusterRole", "metadata": {"name": "limited-reader"},
                   "rules": [{"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["list"]}]})
    create(admin, {"apiVersion": RBAC_GV, "kind": "ClusterRoleBinding", "metadata": {"name": "limited-reader"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "limited-reader"},
                   "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "limited-reader"}]})
    out = kw("scan", "--cluster", "--kubeconfig", str(kc), "-o", "json")
    doc = orjson.loads(out.stdout)
    unknown = {n["what"]: n["reason"] for n in doc["notAssessed"]}
    cov = doc["summary"]["coverage"]
    assert cov["typesRead"] == 2 and cov["typesWanted"] == len(unknown) + 2, (cov, unknown)
    assert "secrets" in unknown and "HTTP 403" in unknown["secrets"]
    assert "not assessed" in out.stderr
    table = kw("scan", "--cluster", "--kubeconfig", str(kc), "-o", "table").stdout
    assert "NOT ASSESSED" in table and "secrets: HTTP 403" in table and "2 of" in table
    for fmt, marker in (("sarif", "not assessed: secrets"), ("junit", "secrets"), ("html", "Not assessed")):
        text = kw("scan", "--cluster", "--kubeconfig", str(kc), "-o", fmt).stdout
        assert marker in text, fmt
    # Commands that need complete input refuse rather than guess.
    rbac = kw("rbac", "can-i", "get", "pods", "--as", "x", "--cluster", "--kubeconfig", str(kc))
    assert rbac.returncode == 2 and "cannot read every RBAC type" in rbac.stderr


def test_cluster_flag_on_rbac_netpol_and_pss(live: Any, admin: Client) -> None:
    kc = str(live.kubeconfig)
    yes = kw("rbac", "can-i", "create", "pods", "-n", "default", "--as", "x", "--as-group", "system:masters",
             "--cluster", "--kubeconfig", kc)
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes"), yes.stderr
    no = kw("rbac", "can-i", "create", "pods", "-n", "default", "--as", "x", "--cluster", "--kubeconfig", kc)
    assert (no.returncode, no.stdout.strip()) == (1, "no"), no.stderr
    _workload(admin)
    pss = kw("pss", "namespaces", "--cluster", "--kubeconfig", kc, "-o", "json")
    assert pss.returncode in (0, 1), pss.stderr
    assert "scan-live" in pss.stdout
    reach = kw("netpol", "reach", "--cluster", "--kubeconfig", kc)
    assert reach.returncode in (0, 1, 2), reach.stderr
    assert "Traceback" not in reach.stderr
    bad = kw("scan", "--cluster", "--kubeconfig", kc, "--context", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("kubeward: ") and "nope" in bad.stderr


def test_exec_plugin_kubeconfig(live: Any, admin: Client, tmp_path: Path) -> None:
    """A kubeconfig whose user is an exec credential plugin (here: a script printing a bound service-account token
    in an ExecCredential) works for --cluster; the token never appears in the output."""
    import yaml

    create(admin, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "exec-reader",
                                                                               "namespace": "default"}})
    create(admin, {"apiVersion": RBAC_GV, "kind": "ClusterRoleBinding", "metadata": {"name": "exec-reader-view"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                   "subjects": [{"kind": "ServiceAccount", "name": "exec-reader", "namespace": "default"}]})
    status, doc = admin.json("POST", "/api/v1/namespaces/default/serviceaccounts/exec-reader/token",
                             body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                   "spec": {"expirationSeconds": 3600}})
    assert status == 201, doc
    token = doc["status"]["token"]
    cred = tmp_path / "cred.json"
    cred.write_text(orjson.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                                  "status": {"token": token}}).decode())
    kc = {"apiVersion": "v1", "kind": "Config", "current-context": "exec",
          "clusters": [{"name": "c", "cluster": {"server": live.server,
                                                 "certificate-authority": str(live.pki / "ca.crt")}}],
          "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                    "command": "cat", "args": [str(cred)],
                                                    "interactiveMode": "Never"}}}],
          "contexts": [{"name": "exec", "context": {"cluster": "c", "user": "u"}}]}
    path = tmp_path / "exec.kubeconfig"
    path.write_text(yaml.safe_dump(kc))
    out = kw("scan", "--cluster", "--kubeconfig", str(path), "-o", "json")
    doc = orjson.loads(out.stdout)
    unknown = {n["what"] for n in doc["notAssessed"]}
    assert doc["summary"]["coverage"]["typesRead"] >= 10, doc["summary"]
    assert "secrets" in unknown and "pods" not in unknown  # view reads pods, never secrets
    assert token not in out.stdout and token not in out.stderr
