"""`kubeward monitor` against the real kube-apiserver, run as a pod would run it: the in-cluster environment (a
service-account token file, KUBERNETES_SERVICE_HOST/PORT), the upstream PolicyReport CRDs (deploy/crds/), leader
election on a Lease. Creates, patches and deletes show in the PolicyReports and /metrics within a bounded time;
a killed and restarted monitor loses and repeats nothing; a revoked type becomes not assessed; after an apiserver
restart on a compacted etcd the watches get 410 Gone and relist."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from livekube import create, namespace, wait_for

from kubeward.sources.cluster import SCAN_TYPES, Client

REPO = Path(__file__).resolve().parents[3]
RBAC = "rbac.authorization.k8s.io/v1"
NS, APPS = "kw-monitor", "kw-mon-apps"
REPORTS = "/apis/wgpolicyk8s.io/v1alpha2"
BOUND = 30.0  # seconds within which a change must show


def _install_crds(admin: Client) -> None:
    for f in sorted((REPO / "deploy" / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc:
                continue
            doc.pop("status", None)
            status, body = admin.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=doc)
            assert status in (201, 409), body

    def established() -> bool:
        status, _ = admin.json("GET", f"{REPORTS}/policyreports")
        status2, _ = admin.json("GET", f"{REPORTS}/clusterpolicyreports")
        return status == status2 == 200

    wait_for("PolicyReport CRDs served", established)


def _grant(admin: Client) -> None:
    namespace(admin, NS)
    namespace(admin, APPS)
    create(admin, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "monitor", "namespace": NS}})
    rules: list[dict[str, Any]] = []
    for t in SCAN_TYPES:
        if t.plural == "configmaps":
            continue
        group = t.group_version.rpartition("/")[0]
        rules.append({"apiGroups": [group], "resources": [t.plural], "verbs": ["get", "list", "watch"]})
    rules.append({"apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports", "clusterpolicyreports"],
                  "verbs": ["get", "list", "watch", "create", "update", "delete"]})
    sa = [{"kind": "ServiceAccount", "name": "monitor", "namespace": NS}]
    for name, role_rules in (("kw-monitor", rules), ("kw-monitor-configmaps", [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}])):
        create(admin, {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name}, "rules": role_rules})
        create(admin, {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": name},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                       "subjects": sa})
    create(admin, {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "lease", "namespace": NS},
                   "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "create", "update"]}]})
    create(admin, {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "lease", "namespace": NS},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lease"},
                   "subjects": sa})


def _service_account_dir(admin: Client, live: Any, where: Path) -> Path:
    status, doc = admin.json("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/monitor/token",
                             body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                   "spec": {"expirationSeconds": 3600}})
    assert status == 201, doc
    where.mkdir()
    (where / "token").write_text(doc["status"]["token"])
    (where / "ca.crt").write_bytes((live.pki / "ca.crt").read_bytes())
    (where / "namespace").write_text(NS)
    return where


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    def __init__(self, sa: Path, live: Any, out: Path, *extra: str) -> None:
        self.port = _free_port()
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(live.ports["apiserver"]),
                   PYTHONPATH=str(REPO / "src"))
        env.pop("KUBECONFIG", None)
        self.out, self.err = out.with_suffix(".out"), out.with_suffix(".err")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubeward.cli.main", "monitor", "--token-file", str(sa / "token"),
             "--ca-file", str(sa / "ca.crt"), "--host", "127.0.0.1", "--metrics-port", str(self.port),
             "--alert-format", "json", "--batch-window", "0.1", "--watch-timeout", "3", *extra],
            env=env, stdout=self.out.open("wb"), stderr=self.err.open("wb"))

    def get(self, path: str) -> tuple[int, str]:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        except OSError:
            return 0, ""
        finally:
            conn.close()

    def metric(self, line_start: str) -> float | None:
        _, text = self.get("/metrics")
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return None

    def alerts(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.out.read_bytes().splitlines() if line.strip()]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


def _results(admin: Client, ns: str | None) -> list[dict[str, Any]]:
    path = f"{REPORTS}/namespaces/{ns}/policyreports/kubeward" if ns else f"{REPORTS}/clusterpolicyreports/kubeward"
    status, doc = admin.json("GET", path)
    return list(doc.get("results") or []) if status == 200 else []


def _about(results: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    return [r for r in results if r.get("resources") and r["resources"][0]["kind"] == kind
            and r["resources"][0]["name"] == name]


def _deployment(name: str, privileged: bool) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": APPS},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                         {"name": "c", "image": "registry.example/app:1",
                          "securityContext": {"privileged": privileged}}]}}}}


@pytest.fixture()
def monitor_env(live: Any, admin: Client, tmp_path: Path) -> Iterator[tuple[Path, list[Running]]]:
    _install_crds(admin)
    _grant(admin)
    sa = _service_account_dir(admin, live, tmp_path / "sa")
    started: list[Running] = []
    try:
        yield sa, started
    finally:
        for r in started:
            if r.proc.poll() is None:
                r.stop(signal.SIGKILL)


def _compact(live: Any) -> None:
    """Compact etcd at its current revision: every older resourceVersion is gone."""
    from kubeward.sources.etcd import EtcdClient

    pki = live.pki
    etcd = EtcdClient(live.etcd_endpoint, cacert=str(pki / "etcd" / "ca.crt"),
                      cert=str(pki / "apiserver-etcd-client.crt"), key=str(pki / "apiserver-etcd-client.key"))
    head: Any = etcd.call("/v3/kv/range", {"key": "Lw==", "limit": 1})  # the answer's header has the revision
    etcd.call("/v3/kv/compaction", {"revision": str(head["header"]["revision"]), "physical": True})


def _gone(mon: Running) -> float:
    _, text = mon.get("/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("kubeward_monitor_watch_restarts_total{") and 'reason="gone"' in line)


def _alert_key(a: dict[str, Any]) -> bytes:
    return orjson.dumps([a["rule"], a["objectRef"], a["field"], a["message"].split(": ", 1)[1]])


def _privileged(results: list[dict[str, Any]]) -> bool:
    return any("privileged" in (r.get("properties") or {}).get("path", "") for r in results)


def test_monitor_in_cluster(live: Any, admin: Client, monitor_env: tuple[Path, list[Running]],
                            tmp_path: Path) -> None:
    sa, started = monitor_env
    # a namespace being deleted, as the shared harness (no namespace controller) leaves other tests' namespaces:
    # its ServiceAccount stays and is judged, but no PolicyReport can be created there
    gone = f"mon-gone-{os.getpid()}"
    status, doc = admin.json("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                                 "metadata": {"name": gone}})
    assert status == 201, doc
    status, doc = admin.json("POST", f"/api/v1/namespaces/{gone}/serviceaccounts",
                             body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
    assert status in (201, 409), doc
    assert admin.json("DELETE", f"/api/v1/namespaces/{gone}")[0] == 200
    mon = Running(sa, live, tmp_path / "first")
    started.append(mon)
    wait_for("first evaluation", lambda: mon.metric("kubeward_monitor_synced ") == 1.0, timeout=60)
    assert mon.get("/readyz")[0] == 200 and mon.get("/healthz")[0] == 200
    assert mon.metric("kubeward_monitor_leader ") == 1.0
    status, lease = admin.json("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/kubeward-monitor")
    assert status == 200 and lease["spec"]["holderIdentity"], lease

    # create: the finding shows in the namespace's PolicyReport, the metrics and the alert stream
    status, doc = admin.json("POST", f"/apis/apps/v1/namespaces/{APPS}/deployments", body=_deployment("web", True))
    assert status == 201, doc
    wait_for("privileged Deployment reported",
             lambda: _privileged(_about(_results(admin, APPS), "Deployment", "web")), timeout=BOUND)
    _, text = mon.get("/metrics")
    assert f'namespace="{APPS}"' in text and "kubeward_monitor_objects_watched" in text
    assert "kubeward_monitor_change_to_report_seconds_count" in text
    wait_for("new-finding alert", lambda: any(
        a["verb"] == "new" and a["objectRef"].get("name") == "web" for a in mon.alerts()), timeout=BOUND)

    # patch: the finding is resolved
    patched = _deployment("web", False)
    status, doc = admin.json("PUT", f"/apis/apps/v1/namespaces/{APPS}/deployments/web",
                             body=dict(patched, metadata=dict(patched["metadata"],
                                                              resourceVersion=doc["metadata"]["resourceVersion"])))
    assert status == 200, doc
    wait_for("privileged finding resolved",
             lambda: not _privileged(_about(_results(admin, APPS), "Deployment", "web")), timeout=BOUND)
    wait_for("resolved alert", lambda: any(
        a["verb"] == "resolved" and a["objectRef"].get("name") == "web" for a in mon.alerts()), timeout=BOUND)

    # delete: its results go
    status, _ = admin.json("DELETE", f"/apis/apps/v1/namespaces/{APPS}/deployments/web")
    assert status == 200
    wait_for("deleted Deployment's results gone",
             lambda: not _about(_results(admin, APPS), "Deployment", "web"), timeout=BOUND)

    # kill -9, change things while it is down, start again: each change announced once, none repeated
    before: set[bytes] = set()  # what the first monitor last said is open
    for a in mon.alerts():
        (before.add if a["verb"] == "new" else before.discard)(_alert_key(a))
    # The reports are the monitor's memory across restarts. A namespace that cannot hold one (the shared harness
    # runs no namespace controller, so namespaces other tests deleted stay Terminating and refuse new objects)
    # has its findings announced again by the next monitor: the promise holds where a report was written.
    status, listed = admin.json("GET", f"{REPORTS}/policyreports")
    assert status == 200, listed
    remembered = {(i.get("metadata") or {}).get("namespace") for i in listed.get("items") or ()} | {None}
    mon.stop(signal.SIGKILL)
    status, doc = admin.json("POST", f"/apis/apps/v1/namespaces/{APPS}/deployments", body=_deployment("api", True))
    assert status == 201, doc
    # this one rides out the apiserver restart below without losing the Lease
    again = Running(sa, live, tmp_path / "second", "--lease-duration", "120", "--renew-deadline", "90")
    started.append(again)
    # the killed holder's Lease must expire first (leaseDurationSeconds 15)
    wait_for("second monitor evaluated", lambda: again.metric("kubeward_monitor_synced ") == 1.0, timeout=90)
    wait_for("Deployment created while down reported",
             lambda: _privileged(_about(_results(admin, APPS), "Deployment", "api")), timeout=BOUND)
    second = [a for a in again.alerts() if a["verb"] == "new"]
    assert any(a["objectRef"].get("name") == "api" for a in second)
    repeated = [a for a in second if _alert_key(a) in before and a["objectRef"].get("namespace") in remembered]
    assert any(a["objectRef"].get("namespace") == gone for a in second)  # announced again: it had no report
    assert not repeated, repeated[:3]
    results = _results(admin, APPS)
    keys = [orjson.dumps([r["policy"], r["resources"], r.get("properties"), r["message"]]) for r in results]
    assert len(keys) == len(set(keys)), "a result is listed twice"

    # revoke one type: configmaps become not assessed (metric, ClusterPolicyReport)
    status, _ = admin.json("DELETE", f"/apis/{RBAC}/clusterrolebindings/kw-monitor-configmaps")
    assert status == 200
    wait_for("configmaps not assessed",
             lambda: again.metric('kubeward_monitor_not_assessed{resource="configmaps"}') == 1.0, timeout=BOUND)
    wait_for("ClusterPolicyReport names it", lambda: any(
        r.get("result") == "error" and r.get("rule") == "configmaps" for r in _results(admin, None)), timeout=BOUND)

    # etcd compacted and the apiserver restarted: the watches resume from versions that no longer exist, get
    # 410 Gone and relist; later changes are still reported
    gone = _gone(again)
    for i in range(3):  # versions move on
        create(admin, {"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": f"moved-{i}", "namespace": APPS}})
    _compact(live)
    live.restart_apiserver()
    wait_for("a watch relisted after 410 Gone", lambda: _gone(again) > gone, timeout=60)
    status, doc = admin.json("POST", f"/apis/apps/v1/namespaces/{APPS}/deployments", body=_deployment("late", True))
    assert status == 201, doc
    wait_for("changes after the relist still reported",
             lambda: _privileged(_about(_results(admin, APPS), "Deployment", "late")), timeout=BOUND)
    assert again.stop() == 0, again.err.read_text()[-2000:]
    status, lease = admin.json("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/kubeward-monitor")
    assert status == 200 and not lease["spec"].get("holderIdentity"), "the Lease was not released on SIGTERM"


def _vuln_record(rid: str, package: str, introduced: str, fixed: str) -> dict[str, Any]:
    return {"id": rid, "modified": "2026-01-01T00:00:00Z", "summary": f"fixture {rid}",
            "affected": [{"package": {"ecosystem": "kubernetes", "name": package},
                          "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": introduced}, {"fixed": fixed}]}]}]}


def test_monitor_keeps_the_harness_cves_current(live: Any, admin: Client, monitor_env: tuple[Path, list[Running]],
                                                tmp_path: Path) -> None:
    """The harness's own version named affected by a feed fixture: its CVE is in /metrics and the
    ClusterPolicyReport; an image CVE of a pod created later shows in its namespace's PolicyReport, ranked."""
    sa, started = monitor_env
    status, info = admin.json("GET", "/version")
    assert status == 200, info
    major, minor, patch = (int(x) for x in info["gitVersion"].lstrip("v").split("-")[0].split("."))
    feed = tmp_path / "feed"
    feed.mkdir()
    for r in (_vuln_record("CVE-2026-0101", "k8s.io/apiserver", f"{major}.{minor}.0", f"{major}.{minor}.{patch + 1}"),
              _vuln_record("CVE-2026-0102", "k8s.io/apiserver", f"{major}.{minor}.0", f"{major}.{minor}.{patch}")):
        (feed / f"{r['id']}.json").write_text(orjson.dumps(r).decode())
    trivy = tmp_path / "trivy.json"
    trivy.write_bytes(orjson.dumps({
        "SchemaVersion": 2, "ArtifactName": "registry.example/vuln-app:1",
        "Metadata": {"RepoTags": ["registry.example/vuln-app:1"]},
        "Results": [{"Target": "os", "Vulnerabilities": [
            {"VulnerabilityID": "CVE-2026-0201", "PkgName": "openssl", "InstalledVersion": "3.0.1",
             "FixedVersion": "3.0.2", "Severity": "CRITICAL", "Title": "fixture openssl"}]}]}))
    mon = Running(sa, live, tmp_path / "vulns", "--no-leader-elect", "--vuln-data", str(feed), "--images", str(trivy))
    started.append(mon)
    wait_for("first evaluation", lambda: mon.metric("kubeward_monitor_synced ") == 1.0, timeout=60)
    assert mon.metric('kubeward_monitor_findings{control="CVE-2026-0101",namespace="",severity="high"}') == 1.0
    assert mon.metric('kubeward_monitor_findings{control="CVE-2026-0102"') is None  # fixed in exactly this one
    assert mon.metric('kubeward_vulnerabilities{fixable="true",severity="high",source="k8s-cve-feed"}') == 1.0
    age = mon.metric("kubeward_vuln_feed_age_days ")
    assert age is not None and age > 300  # dated 2026-01-01 by its newest record
    wait_for("CVE in the ClusterPolicyReport", lambda: any(
        r["policy"] == "CVE-2026-0101" and r["resources"][0]["kind"] == "KubernetesRelease"
        and info["gitVersion"] in r["message"] for r in _results(admin, None)), timeout=BOUND)
    assert "vulnerability data:" in mon.err.read_text()

    create(admin, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vuln-app", "namespace": APPS},
                   "spec": {"containers": [{"name": "app", "image": "registry.example/vuln-app:1"}]}})
    wait_for("image CVE in the namespace's PolicyReport", lambda: any(
        r["policy"] == "CVE-2026-0201" and r["properties"].get("risk") for r in
        _about(_results(admin, APPS), "Pod", "vuln-app")), timeout=BOUND)
    assert mon.metric('kubeward_vulnerabilities{fixable="true",severity="critical",source="image-report"}') == 1.0
    assert mon.metric(f'kubeward_monitor_findings{{control="CVE-2026-0201",namespace="{APPS}",severity="critical"}}') == 1.0
    assert mon.stop() == 0, mon.err.read_text()[-2000:]
