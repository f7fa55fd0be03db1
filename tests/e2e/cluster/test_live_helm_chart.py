"""kubeward's Helm chart on the real kube-apiserver: every object it renders, with the default values and with every
part enabled, is accepted by a server-side dry-run create (strict field validation, so a misspelt field is an error),
and a pod made from each workload's template is admitted by Pod Security admission in the namespace the chart puts
it in (restricted for every part but the node agent, privileged for it).

The ServiceMonitor/PodMonitor and cert-manager Certificate/Issuer CRDs come from the official Go modules of
prometheus-operator and cert-manager at pinned versions (`go mod download`, checksum-verified like every module
the harness builds), installed before the dry-run. The chart creates no PolicyReport, so that CRD is not needed.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from livekube import wait_default_sa, wait_for

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "deploy" / "helm" / "kubeward"
ALL = CHART / "ci" / "all-enabled-values.yaml"
CRDS = {  # module@version: CRD files inside the module
    "github.com/prometheus-operator/prometheus-operator@v0.85.0": [
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml"],
    "github.com/cert-manager/cert-manager@v1.21.2": [
        "deploy/crds/cert-manager.io_certificates.yaml",
        "deploy/crds/cert-manager.io_issuers.yaml"],
}
POD_TEMPLATE = {"Deployment": ("spec", "template"), "DaemonSet": ("spec", "template"),
                "CronJob": ("spec", "jobTemplate", "spec", "template")}


def _run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def helm() -> Path:
    out = _run([str(REPO / "scripts" / "build-tools")], timeout=1800)
    if out.returncode != 0:
        if shutil.which("go") is None:
            pytest.skip("helm absent and no Go toolchain to build it")
        pytest.fail(f"scripts/build-tools failed: {out.stderr[-1500:]}", pytrace=False)
    return Path(out.stdout.strip().splitlines()[-1]) / "helm"


@pytest.fixture(scope="module")
def crd_files() -> list[Path]:
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain to download the prometheus-operator and cert-manager modules")
    files: list[Path] = []
    for module, paths in CRDS.items():
        out = _run(["go", "mod", "download", "-json", module], timeout=900)
        info = json.loads(out.stdout or "{}")
        if out.returncode != 0 or "Dir" not in info:
            pytest.fail(f"go mod download {module}: {info.get('Error') or out.stderr[-800:]}", pytrace=False)
        files += [Path(info["Dir"]) / p for p in paths]
    return files


# kind -> (group/version, plural, namespaced): every kind the chart renders
REST = {
    "Namespace": ("v1", "namespaces", False), "ServiceAccount": ("v1", "serviceaccounts", True),
    "ConfigMap": ("v1", "configmaps", True), "Service": ("v1", "services", True), "Pod": ("v1", "pods", True),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims", True),
    "ResourceQuota": ("v1", "resourcequotas", True), "LimitRange": ("v1", "limitranges", True),
    "Deployment": ("apps/v1", "deployments", True), "DaemonSet": ("apps/v1", "daemonsets", True),
    "CronJob": ("batch/v1", "cronjobs", True), "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets", True),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies", True),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "Role": ("rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ValidatingWebhookConfiguration": ("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", False),
    "Issuer": ("cert-manager.io/v1", "issuers", True), "Certificate": ("cert-manager.io/v1", "certificates", True),
    "ServiceMonitor": ("monitoring.coreos.com/v1", "servicemonitors", True),
    "PodMonitor": ("monitoring.coreos.com/v1", "podmonitors", True),
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1", "customresourcedefinitions", False),
}


def collection(doc: dict[str, Any]) -> str:
    gv, plural, namespaced = REST[doc["kind"]]
    assert doc["apiVersion"] == gv, doc["apiVersion"]
    base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
    return f"{base}/namespaces/{doc['metadata']['namespace']}/{plural}" if namespaced else f"{base}/{plural}"


def create(admin: Any, doc: dict[str, Any], *, dry_run: bool) -> tuple[int, Any, list[str]]:
    """POST with fieldValidation=Strict (an unknown or duplicated field is an error, not dropped); with dry_run
    the apiserver defaults, validates and admits it and stores nothing. (status, body, Warning headers)."""
    query = {"fieldValidation": "Strict", **({"dryRun": "All"} if dry_run else {})}
    status, raw, hdrs = admin.call("POST", collection(doc), body=doc, query=query)
    warnings = [v for k, v in hdrs.items() if k.lower() == "warning"]
    return status, json.loads(raw) if raw else None, warnings


def accepted(admin: Any, docs: list[dict[str, Any]], *, dry_run: bool = True, warnings_ok: bool = False) -> None:
    refused = []
    for d in docs:
        status, body, warnings = create(admin, d, dry_run=dry_run)
        if status not in (200, 201) and not (status == 409 and not dry_run):
            refused.append(f"{d['kind']}/{d['metadata']['name']}: HTTP {status}: {(body or {}).get('message')}")
        elif warnings and not warnings_ok:
            refused.append(f"{d['kind']}/{d['metadata']['name']}: warnings {warnings}")
    assert refused == []


@pytest.fixture(scope="module")
def crds(admin: Any, crd_files: list[Path]) -> None:
    docs = [d for f in crd_files for d in yaml.safe_load_all(f.read_text()) if d]
    accepted(admin, docs, dry_run=False, warnings_ok=True)  # upstream's files: their warnings are not the chart's

    def established() -> bool:
        for d in docs:
            status, body = admin.json("GET", f"{collection(d)}/{d['metadata']['name']}")
            # a CRD just created may show `status: {conditions: null}` until the apiserver has named it
            conds = (((body or {}).get("status") or {}).get("conditions") or []) if status == 200 else []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                return False
        return True

    wait_for("the CRDs to be established", established, timeout=60)


def render(helm: Path, namespace: str, *args: str) -> list[dict[str, Any]]:
    out = _run([str(helm), "template", "kubeward", str(CHART), "-n", namespace, *args], timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def pod_from_template(doc: dict[str, Any]) -> dict[str, Any]:
    tmpl: Any = doc
    for key in POD_TEMPLATE[doc["kind"]]:
        tmpl = tmpl[key]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{doc['metadata']['name']}-probe", "namespace": doc["metadata"]["namespace"],
                         "labels": tmpl["metadata"].get("labels", {})},
            "spec": tmpl["spec"]}


def check(helm: Path, admin: Any, namespace: str, *args: str) -> int:
    docs = render(helm, namespace, *args)
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    rest = [d for d in docs if d["kind"] != "Namespace"]
    # the Namespaces first (dry-run too), then made for real: namespaced objects need theirs to exist
    accepted(admin, namespaces)
    made = namespaces or [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}}]
    try:
        accepted(admin, made, dry_run=False)
        accepted(admin, rest)
        # Pod Security admission judges pods, not their controllers: a pod from each template, dry-run, under the
        # namespace's label. Its ServiceAccount must exist (the ServiceAccount admission plugin looks it up).
        accepted(admin, [d for d in rest if d["kind"] == "ServiceAccount"], dry_run=False)
        wait_default_sa(admin, [d["metadata"]["name"] for d in made])
        pods = [pod_from_template(d) for d in rest if d["kind"] in POD_TEMPLATE]
        assert pods
        accepted(admin, pods)  # refused, or admitted with a Pod Security warning, fails
        return len(docs)
    finally:
        for d in made:
            admin.json("DELETE", f"/api/v1/namespaces/{d['metadata']['name']}")


def test_default_values_on_the_apiserver(admin: Any, helm: Path) -> None:
    ns = f"kw-chart-{uuid.uuid4().hex[:6]}"
    assert check(helm, admin, ns) == 15


def test_every_part_enabled_on_the_apiserver(admin: Any, helm: Path, crds: None) -> None:
    ns = f"kw-chart-{uuid.uuid4().hex[:6]}"
    n = check(helm, admin, ns, "-f", str(ALL), "--set", f"agent.namespace={ns}-agent")
    assert n == 47


def test_admission_with_a_provided_certificate_on_the_apiserver(admin: Any, helm: Path) -> None:
    from kubeward.admission.manifests import serving_certificate

    ns = f"kw-chart-{uuid.uuid4().hex[:6]}"
    ca, _, _ = serving_certificate(ns)  # a real CA: the apiserver parses caBundle
    n = check(helm, admin, ns, "--set", "admission.enabled=true",
              "--set", f"admission.tls.caBundle={base64.b64encode(ca).decode()}")
    assert n == 26


def test_the_pod_check_has_teeth(admin: Any, helm: Path) -> None:
    """The node agent put in the restricted release namespace: the DaemonSet is admitted only with Pod Security's
    warning (its pods would be refused), and the check counts that warning as a refusal."""
    ns = f"kw-chart-{uuid.uuid4().hex[:6]}"
    with pytest.raises(AssertionError, match=r"DaemonSet/kubeward-agent: warnings .*would violate PodSecurity"):
        check(helm, admin, ns, "--set", "agent.enabled=true", "--set", "agent.namespace=")


def _made(admin: Any, docs: list[dict[str, Any]], kinds: set[str]) -> None:
    accepted(admin, [d for d in docs if d["kind"] in kinds], dry_run=False)


def _cleanup(admin: Any, ns: str, docs: list[dict[str, Any]]) -> None:
    for d in docs:
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            admin.json("DELETE", f"{collection(d)}/{d['metadata']['name']}")
    admin.json("DELETE", f"/api/v1/namespaces/{ns}")


def test_the_scan_jobs_kubeconfig_and_rbac_read_the_cluster(live: Any, admin: Any, helm: Path,
                                                            tmp_path: Path) -> None:
    """The scan CronJob's credentials, for real: its ServiceAccount bound to the chart's ClusterRole, a token the
    TokenRequest API mints (as the kubelet does for the projected volume), and the chart's own kubeconfig text with
    only the server address and the token directory changed. `scan --cluster` then reads every kind it wants but
    Secrets, which it names not assessed (readSecrets is off), and exits 0."""
    rid = uuid.uuid4().hex[:6]
    ns, release = f"kw-chart-{rid}", f"kubeward-{rid}"
    out = _run([str(helm), "template", release, str(CHART), "-n", ns, "--set", "monitor.enabled=false"])
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    sa = f"{release}-scan"
    accepted(admin, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}], dry_run=False)
    try:
        _made(admin, docs, {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"})
        status, doc = admin.json("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}})
        assert status == 201, doc
        mount = tmp_path / "sa"
        mount.mkdir()
        (mount / "token").write_text(doc["status"]["token"])
        (mount / "token").chmod(0o600)
        shutil.copy(live.pki / "ca.crt", mount / "ca.crt")
        cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == f"{sa}-kubeconfig")
        text = cm["data"]["kubeconfig"]
        assert "https://kubernetes.default.svc\n" in text
        text = text.replace("https://kubernetes.default.svc\n", f"{live.server}\n")
        text = text.replace("/var/run/secrets/kubernetes.io/serviceaccount", str(mount))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(text)
        report = tmp_path / "scan.json"
        run = subprocess.run([sys.executable, "-m", "kubeward.cli.main", "scan", "--cluster", "--kubeconfig",
                              str(kubeconfig), "-o", "json", "--output", str(report), "--fail-on", "none"],
                             capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stderr
        not_assessed = [line for line in run.stderr.splitlines() if "not assessed" in line]
        assert len(not_assessed) == 1 and ": secrets: not assessed" in not_assessed[0], run.stderr
        result = json.loads(report.read_text())
        assert [n["what"] for n in result["notAssessed"] if "secret" in n["what"]] == ["secrets"]
        assert result["summary"]["objects"] > 0
    finally:
        _cleanup(admin, ns, docs)


def test_each_part_can_do_what_it_needs_and_no_more(admin: Any, helm: Path) -> None:
    """SubjectAccessReviews for the chart's ServiceAccounts, with their roles stored for real."""
    from livekube import subject_access_review

    rid = uuid.uuid4().hex[:6]
    ns, release = f"kw-chart-{rid}", f"kubeward-{rid}"
    out = _run([str(helm), "template", release, str(CHART), "-n", ns, "--set", "admission.enabled=true",
                "--set", "admission.certManager.enabled=true", "--set", "audit.enabled=true",
                "--set", "audit.certManager.enabled=true"])
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    accepted(admin, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}], dry_run=False)

    def can(part: str, verb: str, resource: str, group: str = "", namespace: str = "") -> bool:
        user = f"system:serviceaccount:{ns}:{release}-{part}"
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
        attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace}
        return subject_access_review(admin, user, groups, attrs, resource=True)

    try:
        _made(admin, docs, {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})

        def settled() -> bool:  # the authorizer's RBAC informer catches up
            return can("monitor", "watch", "pods") and can("admission", "watch", "namespaces")

        wait_for("the chart's RBAC to reach the authorizer", settled, timeout=30)
        assert can("monitor", "watch", "deployments", "apps") and can("monitor", "list", "clusterroles",
                                                                      "rbac.authorization.k8s.io")
        assert can("monitor", "create", "policyreports", "wgpolicyk8s.io", "default")
        assert can("monitor", "create", "leases", "coordination.k8s.io", ns)
        assert not can("monitor", "create", "leases", "coordination.k8s.io", "default")
        assert can("scan", "list", "networkpolicies", "networking.k8s.io")
        assert not can("scan", "watch", "pods")
        for part in ("monitor", "scan", "admission", "audit"):
            assert not can(part, "get", "secrets", namespace=ns), part
            assert not can(part, "create", "pods", namespace=ns), part
        assert not can("admission", "list", "pods")
        assert not can("audit", "list", "namespaces")
    finally:
        _cleanup(admin, ns, docs)
