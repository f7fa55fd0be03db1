"""`creds audit --cluster --node-root` against the real apiserver and its node layout (harness NODE_ROOT): legacy
token Secrets with who uses them, the node's kubeconfigs, certificates and token settings, webhook CA bundles;
no planted value in any output."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from livekube import create, namespace, wait_default_sa

from kubeward.pki.issue import new_ca, new_key
from kubeward.sources.cluster import Client

NS = "creds-live"
PLANTED_TOKEN = "kwplant-live-legacy-token-31337"
WEBHOOKS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


def kw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", *args],
                          capture_output=True, text=True, check=False)


def _token_secret(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": name, "namespace": NS, "annotations": {"kubernetes.io/service-account.name": "default"}},
            "data": {"token": base64.b64encode(PLANTED_TOKEN.encode()).decode()}}


def _expired_ca_bundle() -> str:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=800)
    cert = new_ca("creds-live-webhook-ca", new_key("ecdsa"), days=365, now=past)
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


def test_creds_audit_live_and_node_root(live: Any, admin: Client) -> None:
    namespace(admin, NS)
    wait_default_sa(admin, [NS])
    create(admin, _token_secret("legacy-used"))
    create(admin, _token_secret("legacy-unused"))
    create(admin, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "uses-token", "namespace": NS},
                   "spec": {"containers": [{"name": "c", "image": "registry.example/app:1"}],
                            "volumes": [{"name": "tok", "secret": {"secretName": "legacy-used"}}]}})
    hook = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "creds-live-guard"},
            "webhooks": [{"name": "guard.creds-live.example.com", "failurePolicy": "Ignore", "sideEffects": "None",
                          "admissionReviewVersions": ["v1"],
                          "clientConfig": {"url": "https://guard.invalid/validate", "caBundle": _expired_ca_bundle()},
                          "rules": [{"apiGroups": ["creds-live.invalid"], "apiVersions": ["v1"],
                                     "operations": ["CREATE"], "resources": ["things"]}]}]}
    status, doc = admin.json("POST", WEBHOOKS, body=hook)
    assert status in (201, 409), doc
    try:
        out = kw("creds", "audit", "--cluster", "--kubeconfig", str(live.kubeconfig),
                 "--node-root", str(live.node_root), "-o", "json", "--fail-on", "none")
        table = kw("creds", "audit", "--cluster", "--kubeconfig", str(live.kubeconfig),
                   "--node-root", str(live.node_root), "--fail-on", "none")
    finally:
        admin.json("DELETE", f"{WEBHOOKS}/creds-live-guard")
    assert out.returncode == 0, out.stderr
    assert table.returncode == 0, table.stderr
    doc = orjson.loads(out.stdout)
    assert doc["notAssessed"] == [] and doc["errors"] == []
    legacy = {f["object"]["name"]: f["message"] for f in doc["findings"]
              if f["control"]["id"] == "KW-S003" and f["object"].get("namespace") == NS}
    assert "used by Pod/uses-token" in legacy["legacy-used"], legacy
    assert "unused, delete it" in legacy["legacy-unused"], legacy
    got = {(f["control"]["id"], f["object"]["name"]) for f in doc["findings"]}
    # the node layout: admin.conf and the harness kubeconfig hold a system:masters key; no token cap is set
    assert ("KW-PKI-012", "admin.conf") in got and ("KW-C003", "admin.conf") in got, got
    assert ("KW-PKI-012", "admin.kubeconfig") in got, got
    assert ("KW-C012", "kube-apiserver") in got, got
    assert ("KW-PKI-001", "creds-live-guard") in got, got
    assert not any(cid in ("KW-C010", "KW-C011", "KW-C013") for cid, _ in got), got
    ids = {c["id"] for c in doc["credentials"]}
    assert any(i.endswith("etc/kubernetes/pki/apiserver.crt") for i in ids), ids
    assert any(i.endswith("etc/kubernetes/pki/etcd/server.crt") for i in ids), ids
    assert f"legacy-token:{NS}/legacy-unused" in ids
    assert "webhook:ValidatingWebhookConfiguration/creds-live-guard#guard.creds-live.example.com" in ids
    for text in (out.stdout, out.stderr, table.stdout, table.stderr):
        assert PLANTED_TOKEN not in text
        assert base64.b64encode(PLANTED_TOKEN.encode()).decode().rstrip("=") not in text


def test_creds_audit_without_pod_rights_never_calls_a_token_unused(live: Any, admin: Client, tmp_path: Any) -> None:
    """A reader allowed Secrets but not Pods: pods are not assessed, and no legacy token is called unused."""
    namespace(admin, NS)
    wait_default_sa(admin, [NS])
    create(admin, _token_secret("legacy-unused"))
    kc = tmp_path / "secrets-only.kubeconfig"
    out = kw("pki", "issue-user", str(live.pki), "creds-secrets-only", "--kubeconfig-out", str(kc),
             "--server", live.server)
    assert out.returncode == 0, out.stderr
    rbac = "rbac.authorization.k8s.io/v1"
    create(admin, {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": "creds-secrets-only"},
                   "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]})
    create(admin, {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": "creds-secrets-only"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "creds-secrets-only"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                 "name": "creds-secrets-only"}]})

    def audit_json() -> dict[str, Any]:
        res = kw("creds", "audit", "--cluster", "--kubeconfig", str(kc), "-o", "json", "--fail-on", "none")
        assert res.returncode == 0, res.stderr
        assert "pods: not assessed" in res.stderr
        return dict(orjson.loads(res.stdout))

    from livekube import wait_for

    wait_for("the binding to apply", lambda: any(
        f["object"]["name"] == "legacy-unused" for f in audit_json()["findings"]))
    doc = audit_json()
    assert "pods" in {n["what"] for n in doc["notAssessed"]}
    msg = next(f["message"] for f in doc["findings"] if f["object"]["name"] == "legacy-unused")
    assert "who uses it is unknown" in msg and "delete it" not in msg, msg
