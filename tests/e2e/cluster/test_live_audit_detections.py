"""Audit detections on a real apiserver's log (issue 8): attacker-looking requests are driven through the API of the
live cluster, then `kubeward audit analyze <the real audit log> -o json` runs through the CLI and each expected rule
must fire on exactly the request (Audit-Id) or user that caused it, while benign requests raise nothing.

What the log can carry is set by e2e/apiserver/audit-policy.yaml: writes by members of `audit-request-group` are
logged at Request (so the body, `requestObject`, is there for the pod, service, configmap and RBAC detections);
secret reads and everything else are logged at Metadata, which is all `secret-read`, `impersonation` and
`forbidden-burst` need. The admin's own writes fall to the Metadata catch-all, so its cluster-admin binding (made
here to empower the writer) has no body in the log and cannot be judged: the test asserts that it raises nothing
rather than pretend otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from livekube import create, namespace, subject_access_review, wait_default_sa, wait_for

from kubeward.sources.cluster import Client

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def _kubeward(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", *args],
                          capture_output=True, text=True, check=False)


def _user_client(live: Any, pki: Path, name: str, groups: tuple[str, ...] = ()) -> Client:
    """A client certificate from the harness CA (copied to a private directory so the users this test issues never
    collide with the files of other tests), through `kubeward pki issue-user`."""
    kc = pki.parent / f"{name}.kubeconfig"
    args = ["pki", "issue-user", str(pki), name, "--kubeconfig-out", str(kc), "--server", live.server]
    for g in groups:
        args += ["--group", g]
    out = _kubeward(*args)
    assert out.returncode == 0, out.stderr
    return Client(str(kc))


def _do(client: Client, method: str, path: str, body: Any = None,
        headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    """One request: (status, parsed body, Audit-Id)."""
    status, raw, hdrs = client.call(method, path, body=body, headers=headers)
    audit_id = {k.lower(): v for k, v in hdrs.items()}.get("audit-id", "")
    assert audit_id, f"{method} {path}: no Audit-Id header"
    return status, orjson.loads(raw) if raw else None, audit_id


def _ok(result: tuple[int, Any, str], *codes: int) -> str:
    status, doc, audit_id = result
    assert status in codes, f"HTTP {status}: {doc}"
    return audit_id


def _events(path: Path) -> list[dict[str, Any]]:
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [orjson.loads(line) for line in lines if line.strip()]


def test_detections_fire_on_the_real_audit_log(live: Any, admin: Client, tmp_path: Path) -> None:
    rid = uuid.uuid4().hex[:8]
    ns = f"det-{rid}"
    writer, reader, prober = f"det-writer-{rid}", f"det-reader-{rid}", f"det-prober-{rid}"
    pki = tmp_path / "pki"
    (pki / "users").mkdir(parents=True)
    for f in ("ca.crt", "ca.key"):
        shutil.copy2(live.pki / f, pki / f)

    # --- setup as admin (logged at Metadata) --------------------------------------------------------------------
    namespace(admin, ns)
    create(admin, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": f"det-writer-admin-{rid}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": writer}]})
    create(admin, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "secret-reader", "namespace": ns},
                   "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]})
    create(admin, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "secret-reader", "namespace": ns},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": reader}]})
    create(admin, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns},
                   "stringData": {"password": "hunter2"}})
    create(admin, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain", "namespace": ns},
                   "data": {"color": "blue"}})
    wait_for("RBAC for the writer and the reader", lambda: subject_access_review(
        admin, writer, ["audit-request-group"], {"verb": "create", "resource": "clusterrolebindings",
                                                 "group": "rbac.authorization.k8s.io"}, True)
        and subject_access_review(admin, reader, [], {"verb": "get", "resource": "secrets", "namespace": ns,
                                                      "name": "db"}, True), 30)
    wait_default_sa(admin, [ns])

    w = _user_client(live, pki, writer, ("audit-request-group",))  # its writes are logged at Request
    r = _user_client(live, pki, reader)
    p = _user_client(live, pki, prober)
    started = time.monotonic()

    # --- the requests the detections must see -------------------------------------------------------------------
    crb, wild = f"det-crb-{rid}", f"det-wild-{rid}"
    ids = {
        "cluster-admin-binding": _ok(_do(w, "POST", f"{RBAC}/clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": crb},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"mallory-{rid}"}]}), 201),
        "wildcard-role": _ok(_do(w, "POST", f"{RBAC}/clusterroles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": wild},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}), 201),
        "nodeport-service": _ok(_do(w, "POST", f"/api/v1/namespaces/{ns}/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "exposed"},
            "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}}), 201),
        "privileged-pod": _ok(_do(w, "POST", f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
            "spec": {"containers": [{"name": "shell", "image": "busybox:1.36",
                                     "securityContext": {"privileged": True}}]}}), 201),
        "configmap-credentials": _ok(_do(w, "POST", f"/api/v1/namespaces/{ns}/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "creds"},
            "data": {"db_password": "hunter2", "aws_access_key_id": "AKIAEXAMPLE"}}), 201),
        "secret-read": _ok(_do(r, "GET", f"/api/v1/namespaces/{ns}/secrets/db"), 200),
        "impersonation": _ok(_do(admin, "GET", f"/api/v1/namespaces/{ns}/secrets/db",
                                 headers={"Impersonate-User": reader}), 200),
    }
    burst = [_ok(_do(p, "GET", f"/api/v1/namespaces/{ns}/secrets/db"), 403) for _ in range(12)]
    benign = {
        "admin get configmap": _ok(_do(admin, "GET", f"/api/v1/namespaces/{ns}/configmaps/plain"), 200),
        "writer creates a plain configmap": _ok(_do(w, "POST", f"/api/v1/namespaces/{ns}/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
            "data": {"log_level": "debug"}}), 201),
        "writer creates an unprivileged pod": _ok(_do(w, "POST", f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
            "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}}), 201),
    }

    driven = {*ids.values(), *burst, *benign.values()}
    wait_for("driven requests in the audit log", lambda: driven <= {
        e["auditID"] for e in _events(live.audit_log) if e["stage"] == "ResponseComplete"}, 15)
    logged = {e["auditID"]: e for e in _events(live.audit_log) if e["stage"] == "ResponseComplete"}
    # The policy gives the body to the detections that need it (else the assertions below could not hold).
    for rule in ("cluster-admin-binding", "wildcard-role", "nodeport-service", "privileged-pod",
                 "configmap-credentials"):
        assert logged[ids[rule]]["level"] == "Request" and "requestObject" in logged[ids[rule]], rule
    assert logged[ids["secret-read"]]["level"] == "Metadata"

    out = _kubeward("audit", "analyze", str(live.audit_log), "-o", "json")
    assert out.returncode in (0, 1), out.stderr
    report = orjson.loads(out.stdout)
    assert not report["errors"], report["errors"][:5]
    by_id: dict[str, list[dict[str, Any]]] = {}
    for a in report["alerts"]:
        by_id.setdefault(a["auditID"], []).append(a)

    def fired(rule: str) -> dict[str, Any]:
        hits = [a for a in by_id.get(ids[rule], ()) if a["rule"] == rule]
        assert len(hits) == 1, f"{rule}: expected one alert on audit id {ids[rule]}, got {by_id.get(ids[rule])}"
        return hits[0]

    a = fired("cluster-admin-binding")
    assert (a["user"], a["severity"], a["objectRef"]["name"]) == (writer, "critical", crb)
    assert f"User:mallory-{rid}" in a["message"]
    a = fired("wildcard-role")
    assert (a["user"], a["objectRef"]["resource"], a["objectRef"]["name"]) == (writer, "clusterroles", wild)
    a = fired("nodeport-service")
    assert (a["user"], a["objectRef"]["namespace"], a["objectRef"]["resource"]) == (writer, ns, "services")
    a = fired("privileged-pod")
    assert (a["user"], a["objectRef"]["namespace"]) == (writer, ns) and "shell" in a["message"]
    a = fired("configmap-credentials")
    assert (a["user"], a["objectRef"]["namespace"]) == (writer, ns)
    assert "aws_access_key_id" in a["message"] and "password" in a["message"] and "hunter2" not in a["message"]
    a = fired("secret-read")
    assert (a["user"], a["objectRef"]["namespace"], a["objectRef"]["name"]) == (reader, ns, "db")
    a = fired("impersonation")
    assert a["user"] == "kubeward-admin" and f"acted as {reader}" in a["message"]

    # The prober's refused reads: one burst alert for that user (keyed by the refused identity), and being refused
    # they are not secret reads.
    bursts = [a for a in report["alerts"] if a["rule"] == "forbidden-burst" and a["user"] == prober
              and f"user {prober}" in a["message"]]
    assert len(bursts) == 1 and bursts[0]["auditID"] in burst, bursts
    assert not [a for i in burst for a in by_id.get(i, ()) if a["rule"] not in ("forbidden-burst",
                                                                                 "secret-access-denied")]
    assert all([a["rule"] for a in by_id[i] if a["rule"] == "secret-access-denied"] for i in burst)

    # Benign requests raise nothing; the admin's own cluster-admin binding is logged at Metadata (no roleRef in the
    # log), so nothing can be said about it and nothing is.
    for what, i in benign.items():
        assert not by_id.get(i), f"{what}: {by_id[i]}"
    empower_ids = {e["auditID"] for e in logged.values() if e["verb"] == "create"
                   and (e.get("objectRef") or {}).get("name") == f"det-writer-admin-{rid}"}
    assert len(empower_ids) == 1 and all(logged[i]["level"] == "Metadata" and not by_id.get(i) for i in empower_ids)
    assert not [a for a in report["alerts"] if a["rule"] == "cluster-admin-binding"
                and a["objectRef"].get("name") == f"det-writer-admin-{rid}"]

    elapsed = time.monotonic() - started
    assert elapsed < 60, f"{elapsed:.1f}s"
    print(f"\naudit detections: {len(ids) + 1} rules fired on the real log for the driven requests "
          f"({report['stats']['events']} events, {report['stats']['alerts']} alerts in all), "
          f"{len(benign) + 1} benign requests raised none, {elapsed:.1f}s")
