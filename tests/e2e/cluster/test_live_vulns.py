"""`vulns --cluster` against the real apiserver: /version, a Node's kubeletVersion and an add-on pod's image are
read and judged against a feed fixture that names the harness's own version affected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from livekube import create, namespace, wait_default_sa

from kubeward.sources.cluster import Client


def kw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", *args],
                          capture_output=True, text=True, check=False)


def record(rid: str, package: str, introduced: str, fixed: str) -> dict[str, Any]:
    return {"id": rid, "modified": "2026-01-01T00:00:00Z", "summary": f"fixture {rid}",
            "affected": [{"package": {"ecosystem": "kubernetes", "name": package},
                          "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": introduced}, {"fixed": fixed}]}]}]}


def test_vulns_cluster_reads_the_harness_version(live: Any, admin: Client, tmp_path: Path) -> None:
    status, info = admin.json("GET", "/version")
    assert status == 200
    git = info["gitVersion"]
    major, minor, patch = (int(x) for x in git.lstrip("v").split("-")[0].split("."))
    feed = tmp_path / "feed"
    feed.mkdir()
    recs = [record("CVE-2026-0001", "k8s.io/apiserver", f"{major}.{minor}.0", f"{major}.{minor}.{patch + 1}"),
            record("CVE-2026-0002", "k8s.io/apiserver", f"{major}.{minor}.0", f"{major}.{minor}.{patch}"),  # fixed
            record("CVE-2026-0003", "k8s.io/kubelet", "1.36.0", "1.36.2"),
            record("CVE-2026-0004", "k8s.io/ingress-nginx", "0", "1.11.2")]
    for r in recs:
        (feed / f"{r['id']}.json").write_text(json.dumps(r))

    status, doc = admin.json("POST", "/api/v1/nodes", body={
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "vulns-node"},
        "status": {"nodeInfo": {"kubeletVersion": "v1.36.1", "kubeProxyVersion": "v1.36.1"}}})
    assert status in (201, 409), doc
    namespace(admin, "vulns-live")
    wait_default_sa(admin, ["vulns-live"])
    create(admin, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ingress", "namespace": "vulns-live"},
                   "spec": {"containers": [{"name": "controller",
                                            "image": "registry.k8s.io/ingress-nginx/controller:v1.9.0"}]}})

    out = kw("vulns", "--cluster", "--kubeconfig", str(live.kubeconfig), "--data", str(feed), "-o", "json",
             "--today", "2026-01-05")
    assert out.returncode == 1, out.stderr
    hits = {(f["control"]["id"], f["object"]["kind"], f["object"]["name"]): f for f in json.loads(out.stdout)["findings"]}
    ids = {k[0] for k in hits}
    assert {"CVE-2026-0001", "CVE-2026-0003", "CVE-2026-0004", "KW-V000"} <= ids
    assert "CVE-2026-0002" not in ids  # fixed in exactly the harness's version
    api = next(f for k, f in hits.items() if k[0] == "CVE-2026-0001")
    assert api["object"]["kind"] == "KubernetesRelease" and git in api["message"] and "/version" in api["message"]
    assert api["source"]["cluster"]
    assert ("CVE-2026-0003", "Node", "vulns-node") in hits
    assert ("CVE-2026-0004", "Pod", "ingress") in hits
    assert "dated 2026-01-01" in out.stderr


def test_versions_cluster_judges_skew_against_the_harness(live: Any, admin: Client) -> None:
    status, info = admin.json("GET", "/version")
    minor = int(info["minor"].rstrip("+"))
    for name, v in (("skew-ok", f"v1.{minor - 3}.0"), ("skew-old", f"v1.{minor - 4}.2"), ("skew-new", f"v1.{minor + 1}.0")):
        status, doc = admin.json("POST", "/api/v1/nodes", body={
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"nodeInfo": {"kubeletVersion": v}}})
        assert status in (201, 409), doc
    out = kw("versions", "--cluster", "--kubeconfig", str(live.kubeconfig), "-o", "json", "--fail-on", "medium")
    assert out.returncode == 1, out.stderr
    got = {(f["control"]["id"], f["object"]["name"]) for f in json.loads(out.stdout)["findings"]}
    assert ("KW-V012", "skew-old") in got and ("KW-V011", "skew-new") in got
    support = {"KW-V020", "KW-V021", "KW-V022", "KW-V023"}  # each minor's support window, whatever the date
    assert not any(name == "skew-ok" and cid != "KW-V100" and cid not in support for cid, name in got)
    assert any(cid in support and name == "skew-ok" for cid, name in got)
    assert any(cid == "KW-V100" and info["gitVersion"] for cid, _ in got)


def test_vulns_cluster_ranks_image_cves_by_where_they_run(live: Any, admin: Client, tmp_path: Path) -> None:
    """On the real apiserver: the same image CVE in an exposed, privileged pod whose service account reads every
    secret ranks above the one in an isolated, restricted pod without a token; each factor names its engine."""
    namespace(admin, "rank-hot")
    namespace(admin, "rank-cold")
    wait_default_sa(admin, ["rank-hot", "rank-cold"])
    create(admin, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "powerful", "namespace": "rank-hot"}})
    create(admin, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "rank-secret-reader"},
                   "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]})
    create(admin, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "rank-powerful"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "rank-secret-reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "powerful", "namespace": "rank-hot"}]})
    container = {"name": "web", "image": "nginx:1.25.3", "ports": [{"containerPort": 8080, "name": "http"}]}
    create(admin, {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "hot", "namespace": "rank-hot", "labels": {"app": "hot"}},
                   "spec": {"serviceAccountName": "powerful",
                            "containers": [{**container, "securityContext": {"privileged": True}}]}})
    create(admin, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hot", "namespace": "rank-hot"},
                   "spec": {"type": "LoadBalancer", "selector": {"app": "hot"},
                            "ports": [{"port": 80, "targetPort": "http"}]}})
    create(admin, {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "cold", "namespace": "rank-cold", "labels": {"app": "cold"}},
                   "spec": {"automountServiceAccountToken": False,
                            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                            "containers": [{**container, "securityContext": {
                                "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}})
    create(admin, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cold", "namespace": "rank-cold"},
                   "spec": {"type": "NodePort", "selector": {"app": "cold"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    create(admin, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": "deny", "namespace": "rank-cold"},
                   "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    trivy = {"SchemaVersion": 2, "ArtifactName": "nginx:1.25.3", "Metadata": {"RepoTags": ["nginx:1.25.3"]},
             "Results": [{"Target": "debian", "Vulnerabilities": [
                 {"VulnerabilityID": "CVE-2023-44487", "PkgName": "libnghttp2-14", "InstalledVersion": "1.52.0-1",
                  "FixedVersion": "1.52.0-1+deb12u1", "Severity": "HIGH", "Title": "HTTP/2 Rapid Reset"}]}]}
    (tmp_path / "trivy.json").write_text(json.dumps(trivy))
    out = kw("vulns", "--cluster", "--kubeconfig", str(live.kubeconfig), "--images", str(tmp_path / "trivy.json"),
             "-o", "json", "--fail-on", "none", "--today", "2026-01-05")
    assert out.returncode == 0, out.stderr
    ranked = {f["object"]["name"]: f["risk"] for f in json.loads(out.stdout)["findings"]
              if f["control"]["id"] == "CVE-2023-44487" and f["object"]["kind"] == "Pod"}
    assert ranked["hot"]["score"] == 9 and ranked["cold"]["score"] == 3, ranked
    hot = {x["factor"]: (x["present"], x["engine"]) for x in ranked["hot"]["factors"]}
    assert hot == {"exposed": (True, "netpol"), "privileged": (True, "pss"), "service-account": (True, "rbac"),
                   "fix": (True, "image report")}
    cold = {x["factor"]: x for x in ranked["cold"]["factors"]}
    assert cold["exposed"]["present"] is False and "denied by rank-cold/deny" in cold["exposed"]["detail"]
    assert "token not mounted" in cold["service-account"]["detail"]
