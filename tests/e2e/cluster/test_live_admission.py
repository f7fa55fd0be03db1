"""`kubeward admission serve` registered as a ValidatingWebhookConfiguration on the real kube-apiserver (by URL on
127.0.0.1, caBundle from kubeward's PKI), with namespace modes read through its namespace watch: a privileged pod
denied with the control named, a compliant pod admitted, warn mode admitting with the warnings kubectl prints, an
exempt namespace admitted; then with the webhook stopped, failurePolicy Fail refuses and Ignore admits."""

from __future__ import annotations

import base64
import importlib.util
import re
import signal
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from livekube import namespace, wait_default_sa, wait_for

HERE = Path(__file__).resolve().parent
HOOKS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


def _certs() -> Any:
    spec = importlib.util.spec_from_file_location("kubeward_admission_certs", HERE.parents[1] / "unit" / "admission_certs.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pod(name: str, ns: str, *, privileged: bool = False) -> dict[str, Any]:
    sc: dict[str, Any] = {"privileged": True} if privileged else {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsUser": 10001, "runAsGroup": 10001,
        "capabilities": {"drop": ["ALL"]}}
    spec: dict[str, Any] = {"automountServiceAccountToken": False,
                            "containers": [{"name": "c", "image": "registry.example.com/app@sha256:" + "a" * 64,
                                            "securityContext": sc,
                                            "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                                          "requests": {"cpu": "1", "memory": "1Gi"}}}]}
    if not privileged:
        spec["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def post_pod(admin: Any, obj: dict[str, Any], dry_run: bool = False) -> tuple[int, Any, list[str]]:
    ns = obj["metadata"]["namespace"]
    status, raw, hdrs = admin.call("POST", f"/api/v1/namespaces/{ns}/pods", body=obj,
                                   query={"dryRun": "All"} if dry_run else None)
    warnings = [v for k, v in hdrs.items() if k.lower() == "warning"]
    return status, orjson.loads(raw) if raw else None, warnings


def test_webhook_on_the_real_apiserver(live: Any, admin: Any, kubectl: Path, tmp_path: Path) -> None:
    ca, crt, key = _certs().webhook_pki(tmp_path)
    rid = uuid.uuid4().hex[:6]
    enforced, warned, exempt = f"adm-enf-{rid}", f"adm-warn-{rid}", f"adm-exempt-{rid}"
    cfg = tmp_path / "admission.yaml"
    cfg.write_text(f"exemptions: {{namespaces: [{exempt}]}}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeward.cli.main", "admission", "serve", "--port", "0", "--tls-cert", str(crt),
         "--tls-key", str(key), "--config", str(cfg), "--kubeconfig", str(live.kubeconfig)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    first = proc.stderr.readline().decode()
    err: list[bytes] = []
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
    m = re.search(r"https://127\.0\.0\.1:(\d+)/validate", first)
    assert m, first
    url = f"https://127.0.0.1:{m.group(1)}"
    ctx = ssl.create_default_context(cafile=str(ca))
    hook_name = f"admission-e2e-{rid}"
    label = {"kubeward-e2e-admission": rid}  # the webhook sees only this test's namespaces
    namespace(admin, enforced, {**label, "kubeward.io/enforce": "high", "kubeward.io/warn": "medium"})
    namespace(admin, warned, {**label, "kubeward.io/enforce": "none", "kubeward.io/warn": "medium"})
    namespace(admin, exempt, label)
    wait_default_sa(admin, [enforced, warned, exempt])

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for("admission serve to list namespaces", ready, timeout=30)

    def hook(policy: str) -> dict[str, Any]:
        return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": hook_name},
                "webhooks": [{"name": "pods.kubeward.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                              "timeoutSeconds": 10, "failurePolicy": policy,
                              "clientConfig": {"url": f"{url}/validate",
                                               "caBundle": base64.b64encode(ca.read_bytes()).decode()},
                              "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                                         "resources": ["pods"], "scope": "Namespaced"}],
                              "namespaceSelector": {"matchLabels": label}},
                             # cluster-scoped: namespaceSelector does not apply, so only this test's labelled objects
                             {"name": "rbac.kubeward.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                              "timeoutSeconds": 10, "failurePolicy": policy,
                              "clientConfig": {"url": f"{url}/validate",
                                               "caBundle": base64.b64encode(ca.read_bytes()).decode()},
                              "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "apiVersions": ["v1"],
                                         "operations": ["CREATE", "UPDATE"], "resources": ["clusterrolebindings"],
                                         "scope": "Cluster"}],
                              "objectSelector": {"matchLabels": label}}]}

    status, doc = admin.json("POST", HOOKS, body=hook("Fail"))
    assert status == 201, doc
    try:
        # The apiserver picks webhook configurations up from its informer: wait until ours answers.
        wait_for("the webhook to be called", lambda: "kubeward" in str(
            post_pod(admin, pod(f"probe-{uuid.uuid4().hex[:4]}", enforced, privileged=True), dry_run=True)[1]),
            timeout=30)

        status, doc, _ = post_pod(admin, pod("priv", enforced, privileged=True))
        assert status == 403, doc
        msg = doc["message"]
        assert 'admission webhook "pods.kubeward.io" denied the request: kubeward:' in msg, msg
        assert "KW-W001" in msg and "/spec/containers/0/securityContext/privileged" in msg

        status, doc, warnings = post_pod(admin, pod("good", enforced))
        assert status == 201, doc
        assert not warnings  # only low findings remain under warn=medium

        status, doc, warnings = post_pod(admin, pod("priv", warned, privileged=True))
        assert status == 201, doc
        assert any("KW-W001 (critical) Privileged container" in w for w in warnings), warnings
        assert all(w.startswith("299 - ") for w in warnings), warnings
        # and kubectl shows them as a user sees them
        manifest = tmp_path / "warned.json"
        manifest.write_bytes(orjson.dumps(pod("priv2", warned, privileged=True)))
        out = subprocess.run([str(kubectl), "--kubeconfig", str(live.kubeconfig), "create", "-f",
                              str(manifest)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert re.search(r"^Warning: KW-W001 \(critical\) Privileged container", out.stderr, re.M), out.stderr

        status, doc, _ = post_pod(admin, pod("priv", exempt, privileged=True))
        assert status == 201, doc

        # The namespace watch: relabelling the warn namespace to enforce reaches the webhook without a restart...
        merge = {"Content-Type": "application/merge-patch+json"}
        status, doc = admin.json("PATCH", f"/api/v1/namespaces/{warned}", headers=merge,
                                 body={"metadata": {"labels": {"kubeward.io/enforce": "high"}}})
        assert status == 200, doc
        wait_for("the relabelled namespace to be enforced", lambda: post_pod(
            admin, pod(f"p-{uuid.uuid4().hex[:4]}", warned, privileged=True), dry_run=True)[0] == 403, timeout=30)
        # ...and an UPDATE that does not worsen the privileged pod admitted before is let through, as PSA does
        status, doc = admin.json("PATCH", f"/api/v1/namespaces/{warned}/pods/priv", headers=merge,
                                 body={"metadata": {"labels": {"touched": "yes"}}})
        assert status == 200, doc
        with urllib.request.urlopen(f"{url}/metrics", context=ctx, timeout=10) as r:
            metrics = r.read().decode()
        assert re.search(r'^kubeward_admission_reviews_total\{decision="unworsened-update"\} [1-9]', metrics, re.M)
        assert re.search(r'^kubeward_admission_findings_total\{control="KW-W001",mode="deny"\} [1-9]', metrics, re.M)

        crb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": f"admins-{rid}", "labels": label},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}]}
        status, doc = admin.json("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", body=crb,
                                 query={"dryRun": "All"})
        assert status == 403 and 'webhook "rbac.kubeward.io" denied' in doc["message"], doc
        assert "KW-R017" in doc["message"], doc["message"]

        # The webhook stopped: Fail refuses, Ignore admits.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        status, doc, _ = post_pod(admin, pod("after", enforced), dry_run=True)
        assert status >= 500 and "failed calling webhook" in doc["message"], doc
        status, current = admin.json("GET", f"{HOOKS}/{hook_name}")
        assert status == 200
        ignore = hook("Ignore")
        ignore["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        status, doc = admin.json("PUT", f"{HOOKS}/{hook_name}", body=ignore)
        assert status == 200, doc
        wait_for("failurePolicy Ignore to apply",
                 lambda: post_pod(admin, pod("after", enforced, privileged=True), dry_run=True)[0] == 201, timeout=30)
    finally:
        admin.request("DELETE", f"{HOOKS}/{hook_name}")
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    text = b"".join(err).decode()
    assert "Traceback" not in text, text
    assert re.search(r"admission serve: \d+ reviews \(.*denied \d+", text), text


def test_client_ca_lets_the_apiserver_through_and_refuses_others(live: Any, admin: Any, tmp_path: Path) -> None:
    """`admission serve --client-ca`: the apiserver presents the client certificate of its admission kubeconfig
    (the harness's AdmissionConfiguration, `live.admission_kubeconfig`, signed by the cluster CA) and its reviews
    are decided; a client without a certificate, or with one from another CA, is refused at the handshake."""
    certs = _certs()
    ca, crt, key = certs.webhook_pki(tmp_path)
    (tmp_path / "other").mkdir()
    _, other_crt, other_key = certs.client_pki(tmp_path / "other")
    rid = uuid.uuid4().hex[:6]
    ns = f"adm-mtls-{rid}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeward.cli.main", "admission", "serve", "--port", "0", "--tls-cert", str(crt),
         "--tls-key", str(key), "--client-ca", str(live.pki / "ca.crt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    first = proc.stderr.readline().decode()
    err: list[bytes] = []
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
    m = re.search(r"https://127\.0\.0\.1:(\d+)/validate", first)
    assert m and "client certificates required" in first, first
    url = f"https://127.0.0.1:{m.group(1)}"
    label = {"kubeward-e2e-mtls": rid}
    namespace(admin, ns, label)
    wait_default_sa(admin, [ns])
    hook_name = f"admission-mtls-{rid}"
    hook = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": hook_name},
            "webhooks": [{"name": "pods.kubeward.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                          "timeoutSeconds": 10, "failurePolicy": "Fail",
                          "clientConfig": {"url": f"{url}/validate",
                                           "caBundle": base64.b64encode(ca.read_bytes()).decode()},
                          "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                     "resources": ["pods"], "scope": "Namespaced"}],
                          "namespaceSelector": {"matchLabels": label}}]}
    status, doc = admin.json("POST", HOOKS, body=hook)
    assert status == 201, doc
    try:
        # Denied by the webhook (not "failed calling webhook"): the handshake with the apiserver's certificate worked.
        wait_for("the webhook to be called", lambda: "KW-W001" in str(
            post_pod(admin, pod(f"p-{uuid.uuid4().hex[:4]}", ns, privileged=True), dry_run=True)[1]), timeout=30)
        status, doc, _ = post_pod(admin, pod("good", ns), dry_run=True)
        assert status == 201, doc

        def handshake(cert: Path | None, keyfile: Path | None) -> str:
            ctx = ssl.create_default_context(cafile=str(ca))
            if cert is not None:
                ctx.load_cert_chain(str(cert), str(keyfile))
            try:
                with urllib.request.urlopen(f"{url}/healthz", context=ctx, timeout=10) as r:
                    return f"HTTP {r.status}"
            except (ssl.SSLError, ConnectionError, urllib.error.URLError) as exc:
                return f"refused: {exc}"

        assert handshake(None, None).startswith("refused"), "a client without a certificate was served"
        assert handshake(other_crt, other_key).startswith("refused"), "a certificate from another CA was served"
    finally:
        admin.request("DELETE", f"{HOOKS}/{hook_name}")
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    text = b"".join(err).decode()
    assert "Traceback" not in text, text
    assert re.search(r"admission serve: \d+ reviews \(.*denied \d+", text), text


@pytest.mark.parametrize("client_ca", [None, b"-----BEGIN CERTIFICATE-----\n"], ids=["tls", "mutual-tls"])
def test_manifests_are_accepted_by_the_real_apiserver(admin: Any, client_ca: bytes | None) -> None:
    """Every object `admission manifests` prints passes the apiserver's validation (server-side dry-run create),
    with and without --client-ca (its ConfigMap, volume and TCP probes)."""
    from kubeward.admission.manifests import manifests

    ns = f"kubeward-{uuid.uuid4().hex[:6]}"
    objs = manifests(ns, image="ghcr.io/kubeward/kubeward@sha256:" + "0" * 64, ca_bundle=b"-----BEGIN CERTIFICATE-----",
                     client_ca=client_ca)
    namespace(admin, ns)  # the namespaced objects' dry-run needs the namespace to exist
    accepted = 0
    for obj in objs:
        if obj["kind"] == "Namespace":
            continue
        group_version = obj["apiVersion"]
        plural = {"ServiceAccount": "serviceaccounts", "ClusterRole": "clusterroles",
                  "ClusterRoleBinding": "clusterrolebindings", "ConfigMap": "configmaps", "Deployment": "deployments",
                  "PodDisruptionBudget": "poddisruptionbudgets", "Service": "services",
                  "NetworkPolicy": "networkpolicies", "ResourceQuota": "resourcequotas", "LimitRange": "limitranges",
                  "ValidatingWebhookConfiguration": "validatingwebhookconfigurations"}[obj["kind"]]
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        namespaced = "namespace" in obj["metadata"]
        path = f"{base}/namespaces/{ns}/{plural}" if namespaced else f"{base}/{plural}"
        status, doc = admin.json("POST", path, body=obj, query={"dryRun": "All"})
        assert status == 201, (obj["kind"], doc)
        accepted += 1
    assert accepted == len(objs) - 1
