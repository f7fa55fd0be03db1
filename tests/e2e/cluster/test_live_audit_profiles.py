"""Each generated audit policy profile against the real kube-apiserver: the profile is installed, the apiserver
restarted, one triggering request per detection driven through the API, and `kubeward audit analyze` run on what
the apiserver logged. Every detection the profile does not blind (audit/coverage.py, what `audit policy check
--for-detections` reports and docs/audit.md states) must fire on its own request; the test prints, per profile,
which detections it supports.

Not driven here: `anonymous-allowed` (the harness runs with --anonymous-auth=false) and `serviceaccount-token-other`
(needs a service account's bearer token; covered by unit cases).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from livekube import namespace, wait_default_sa, wait_for

from kubeward.audit.coverage import blinded
from kubeward.audit.policygen import PROFILES, generate
from kubeward.engines.auditpolicy import parse_policy
from kubeward.sources.cluster import Client

RBAC = "/apis/rbac.authorization.k8s.io/v1"
NOT_DRIVEN = {"anonymous-allowed", "serviceaccount-token-other"}


def _kubeward(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", *args],
                          capture_output=True, text=True, check=False)


def _user(live: Any, pki: Path, name: str, *groups: str) -> Client:
    kc = pki.parent / f"{name.replace(':', '_')}.kubeconfig"
    args = ["pki", "issue-user", str(pki), name, "--kubeconfig-out", str(kc), "--server", live.server]
    for g in groups:
        args += ["--group", g]
    out = _kubeward(*args)
    assert out.returncode == 0, out.stderr
    return Client(str(kc))


def _do(c: Client, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
        content_type: str | None = None) -> str:
    h = dict(headers or {})
    if content_type:
        h["Content-Type"] = content_type
    status, _raw, hdrs = c.call(method, path, body=body, headers=h)
    audit_id = {k.lower(): v for k, v in hdrs.items()}.get("audit-id", "")
    assert audit_id, f"{method} {path}: HTTP {status}, no Audit-Id"
    return audit_id


def _drive(admin: Client, prober: Client, node: Client, rid: str) -> dict[str, list[str]]:
    """One request (or a few) per detection; returns the Audit-Ids that must carry each rule's alert."""
    ns = f"prof-{rid}"
    namespace(admin, ns)
    wait_default_sa(admin, [ns, "kube-system"])
    pod = lambda name, spec: {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},  # noqa: E731
                              "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}], **spec}}
    ids: dict[str, list[str]] = {}

    def add(rule: str, audit_id: str) -> None:
        ids.setdefault(rule, []).append(audit_id)

    pods = f"/api/v1/namespaces/{ns}/pods"
    add("privileged-pod", _do(admin, "POST", pods, pod("priv", {"containers": [
        {"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}]})))
    add("dangerous-capabilities", _do(admin, "POST", pods, pod("caps", {"containers": [
        {"name": "c", "image": "busybox:1.36", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]})))
    add("sensitive-mount-pod", _do(admin, "POST", pods, pod("mount", {
        "volumes": [{"name": "h", "hostPath": {"path": "/etc/"}}]})))
    hostns = _do(admin, "POST", pods, pod("hostns", {"hostNetwork": True, "hostPID": True, "hostIPC": True}))
    for r in ("hostnetwork-pod", "hostpid-pod", "hostipc-pod"):
        add(r, hostns)
    add("pod-in-kube-namespace", _do(admin, "POST", "/api/v1/namespaces/kube-system/pods", pod(f"kw-{rid}", {})))
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"kw-{rid}"},
              "spec": {"selector": {"matchLabels": {"a": rid}}, "template": {
                  "metadata": {"labels": {"a": rid}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    add("workload-in-kube-namespace", _do(admin, "POST", "/apis/apps/v1/namespaces/kube-system/deployments", deploy))
    add("exec-attach", _do(admin, "POST", f"{pods}/priv/exec?command=sh&stdout=true"))
    add("port-forward", _do(admin, "POST", f"{pods}/priv/portforward?ports=80"))
    add("ephemeral-container", _do(admin, "PATCH", f"{pods}/priv/ephemeralcontainers", {"spec": {
        "ephemeralContainers": [{"name": "dbg", "image": "busybox:1.36"}]}},
        content_type="application/strategic-merge-patch+json"))
    add("nodeport-service", _do(admin, "POST", f"/api/v1/namespaces/{ns}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80}]}}))
    add("configmap-credentials", _do(admin, "POST", f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "creds"}, "data": {"db_password": "x"}}))
    add("ingress-without-tls", _do(admin, "POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
        "spec": {"defaultBackend": {"service": {"name": "np", "port": {"number": 80}}}}}))
    _do(admin, "POST", f"/api/v1/namespaces/{ns}/secrets", {"apiVersion": "v1", "kind": "Secret",
                                                             "metadata": {"name": "db"}, "stringData": {"k": "v"}})
    add("secret-read", _do(admin, "GET", f"/api/v1/namespaces/{ns}/secrets/db"))
    add("secret-access-denied", _do(prober, "GET", f"/api/v1/namespaces/{ns}/secrets/db"))
    add("cluster-admin-binding", _do(admin, "POST", f"{RBAC}/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": f"kw-{rid}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"mallory-{rid}"}]}))
    wild = _do(admin, "POST", f"{RBAC}/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": f"system:kw-{rid}"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
    for r in ("wildcard-role", "write-role", "system-role-modified", "rbac-escalation"):
        add(r, wild)
    add("exec-role", _do(admin, "POST", f"{RBAC}/namespaces/{ns}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "exec"},
        "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]}))
    add("escalation-binding", _do(admin, "POST", f"{RBAC}/namespaces/{ns}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"mallory-{rid}"}]}))
    add("sa-in-kube-namespace", _do(admin, "POST", "/api/v1/namespaces/kube-system/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"kw-{rid}"}}))
    add("serviceaccount-token", _do(admin, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/default/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}))
    csr = f"kw-{rid}"
    add("csr-created", _do(admin, "POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": csr},
        "spec": {"request": _csr_pem(), "signerName": "example.com/x", "usages": ["client auth"]}}))
    add("csr-approved", _do(admin, "PUT", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{csr}/approval", {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": csr},
        "spec": {"request": _csr_pem(), "signerName": "example.com/x", "usages": ["client auth"]},
        "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "kw", "message": "kw"}]}}))
    add("impersonation", _do(admin, "POST", f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "imp"}}, headers={"Impersonate-User": "bob"}))
    add("admission-config-changed", _do(
        admin, "POST", "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies", {
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": f"kw-{rid}"},
            "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                             "operations": ["CREATE"], "resources": ["pods"]}]},
                     "validations": [{"expression": "true"}]}}))
    _do(admin, "POST", f"/api/v1/namespaces/{ns}/events", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "x"},
        "reason": "R", "message": "m", "type": "Normal"})
    add("events-deleted", _do(admin, "DELETE", f"/api/v1/namespaces/{ns}/events/e"))
    add("persistence-workload", _do(admin, "POST", f"/apis/batch/v1/namespaces/{ns}/cronjobs", {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "beacon"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}}}))
    add("node-proxy", _do(admin, "GET", "/api/v1/nodes/kubeward-e2e/proxy/pods"))
    add("kubelet-api-access", _do(node, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": f"mallory-{rid}", "groups": ["system:authenticated"],
                 "resourceAttributes": {"verb": "create", "resource": "nodes", "subresource": "proxy",
                                        "name": "kubeward-e2e"}}}))
    add("disallowed-user", ids["secret-access-denied"][0])
    add("disallowed-namespace", ids["configmap-credentials"][0])
    # Stateful: the burst alert lands on the request that reaches the threshold, the source alert on the first
    # request of the identity; any of these.
    ids["forbidden-burst"] = ids["secret-access-denied"] + [
        _do(prober, "GET", f"/api/v1/namespaces/{ns}/pods") for _ in range(10)]
    ids["unexpected-source"] = [i for v in ids.values() for i in v]
    return ids


def _csr_pem() -> str:
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    req = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kw")])).sign(key, hashes.SHA256())
    return base64.b64encode(req.public_bytes(serialization.Encoding.PEM)).decode()


def test_each_profile_supports_the_detections_it_promises(live: Any, admin: Client, tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    (pki / "users").mkdir(parents=True)
    for f in ("ca.crt", "ca.key"):
        shutil.copy2(live.pki / f, pki / f)
    prober_name = f"prober-{uuid.uuid4().hex[:6]}"
    prober = _user(live, pki, prober_name)
    node = _user(live, pki, "system:node:kubeward-e2e", "system:nodes")
    rules = tmp_path / "rules.yaml"
    original = live.audit_policy.read_bytes()
    # Other tests judge the shared log against the harness policy: what this test has logged under the generated
    # profiles is cut off again at the end (with the apiserver stopped, so nothing is written meanwhile).
    original_size = live.audit_log.stat().st_size if live.audit_log.exists() else 0
    summary: dict[str, tuple[set[str], set[str]]] = {}
    try:
        for profile in PROFILES:
            live.audit_policy.write_text(generate(profile))
            live.restart_apiserver()
            start = live.audit_log.stat().st_size if live.audit_log.exists() else 0
            rid = f"{profile[:3]}{uuid.uuid4().hex[:6]}"
            ids = _drive(admin, prober, node, rid)
            rules.write_text(f"disallowedUsers: [{prober_name}]\ndisallowedNamespaces: [prof-{rid}]\n")
            # Writes every profile logs; the last ones driven (reads may not be logged at all by `minimal`).
            want = {*ids["kubelet-api-access"], *ids["persistence-workload"], *ids["events-deleted"]}

            def logged(start: int = start) -> bytes:
                with open(live.audit_log, "rb") as fh:
                    fh.seek(start)
                    return fh.read()

            def arrived(want: set[str] = want) -> bool:
                text = logged()
                return all(i.encode() in text for i in want)

            wait_for("the driven requests in the log", arrived, 20)
            part = tmp_path / f"{profile}.log"
            part.write_bytes(logged())
            out = _kubeward("audit", "analyze", str(part), "-o", "json", "--allowed-cidr", "10.0.0.0/8",
                            "--rules", str(rules))
            assert out.returncode in (0, 1), out.stderr
            alerts = orjson.loads(out.stdout)["alerts"]
            fired = {r for r, audit_ids in ids.items()
                     if any(a["rule"] == r and a["auditID"] in audit_ids for a in alerts)}
            blind = {b.detection for b in blinded(parse_policy(yaml.safe_load(generate(profile))))}
            summary[profile] = (fired, blind)
            missing = set(ids) - blind - fired
            assert not missing, f"{profile}: expected to fire, did not: {sorted(missing)}"
    finally:
        live.audit_policy.write_bytes(original)
        live.stop("kube-apiserver")
        if live.audit_log.exists():
            os.truncate(live.audit_log, original_size)
        live.start_apiserver()
    print()
    for profile, (fired, blind) in summary.items():
        print(f"audit profile {profile}: {len(fired)} detections fired on their request; blind by design: "
              f"{', '.join(sorted(blind)) or 'none'}")
    if not summary:
        pytest.fail("no profile ran")
