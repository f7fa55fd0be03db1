"""`scan --cluster -n NS` against the real apiserver: one namespace read the way kubectl get -n reads it, the report
limited to that namespace, and a user with rights in one namespace only sees the rest as NOT ASSESSED, never passed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from livekube import create, namespace, wait_default_sa

from kubeward.sources.cluster import Client

RBAC_GV = "rbac.authorization.k8s.io/v1"
RBAC = "rbac.authorization.k8s.io"


def kw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", *args],
                          capture_output=True, text=True, check=False)


def _pod(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "registry.example/app:1",
                                     "securityContext": {"privileged": True}}]}}


def _impersonator(name: str) -> dict[str, Any]:
    return {"apiVersion": RBAC_GV, "kind": "ClusterRole", "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]}


@pytest.fixture(scope="module")
def two_namespaces(live: Any, admin: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ns-one and ns-two, a privileged pod in each, a ClusterRole bound in ns-one and one bound nowhere; the
    kubeconfig of `one-admin`, who holds the `admin` ClusterRole in ns-one only (kubectl create rolebinding)."""
    for ns in ("ns-one", "ns-two"):
        namespace(admin, ns, {"pod-security.kubernetes.io/enforce": "privileged"})
    wait_default_sa(admin, ["ns-one", "ns-two"])
    for ns in ("ns-one", "ns-two"):
        create(admin, _pod("priv", ns))
    create(admin, _impersonator("one-impersonator"))
    create(admin, _impersonator("unbound-impersonator"))
    create(admin, {"apiVersion": RBAC_GV, "kind": "RoleBinding", "metadata": {"name": "imp", "namespace": "ns-one"},
                   "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "one-impersonator"},
                   "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "carol"}]})
    create(admin, {"apiVersion": RBAC_GV, "kind": "RoleBinding", "metadata": {"name": "one-admin",
                                                                            "namespace": "ns-one"},
                   "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "admin"},
                   "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "one-admin"}]})
    kc = tmp_path_factory.mktemp("ns") / "one-admin.kubeconfig"
    out = kw("pki", "issue-user", str(live.pki), "one-admin", "--kubeconfig-out", str(kc), "--server", live.server)
    assert out.returncode == 0, out.stderr
    return kc


def _objects(doc: dict[str, Any]) -> set[tuple[str, str | None, str]]:
    return {(f["object"]["kind"], f["object"].get("namespace"), f["object"]["name"]) for f in doc["findings"]}


def test_one_namespace_and_the_cluster_roles_bound_in_it(live: Any, two_namespaces: Path) -> None:
    kc = str(live.kubeconfig)
    whole = orjson.loads(kw("scan", "--cluster", "-A", "--kubeconfig", kc, "-o", "json").stdout)
    one = kw("scan", "--cluster", "-n", "ns-one", "--kubeconfig", kc, "-o", "json")
    doc = orjson.loads(one.stdout)
    assert one.returncode == 1, one.stderr
    assert doc["notAssessed"] == [] and doc["summary"]["coverage"]["typesRead"] == \
        doc["summary"]["coverage"]["typesWanted"]
    got = _objects(doc)
    assert ("Pod", "ns-one", "priv") in got and ("ClusterRole", None, "one-impersonator") in got
    assert {ns for _, ns, _ in got} <= {"ns-one", None}
    assert ("ClusterRole", None, "unbound-impersonator") not in got
    assert {("Pod", "ns-two", "priv"), ("ClusterRole", None, "unbound-impersonator")} <= _objects(whole)


def test_a_namespace_admin_sees_the_cluster_scope_as_not_assessed(two_namespaces: Path) -> None:
    kc = str(two_namespaces)
    own = kw("scan", "--cluster", "-n", "ns-one", "--kubeconfig", kc, "-o", "json")
    doc = orjson.loads(own.stdout)
    unknown = {n["what"]: n["reason"] for n in doc["notAssessed"]}
    # `admin` in ns-one: every namespaced type there (and the Namespace by name), no cluster-scoped list.
    assert {"clusterroles.rbac.authorization.k8s.io", "clusterrolebindings.rbac.authorization.k8s.io",
            "nodes"} <= set(unknown) and all("HTTP 403" in r for r in unknown.values())
    assert not any(" in namespace " in w for w in unknown), unknown
    assert ("Pod", "ns-one", "priv") in _objects(doc) and own.returncode == 1
    other = kw("scan", "--cluster", "-n", "ns-two", "--kubeconfig", kc, "-o", "json")
    doc = orjson.loads(other.stdout)
    unknown = {n["what"] for n in doc["notAssessed"]}
    assert {"pods in namespace ns-two", "secrets in namespace ns-two", "namespaces/ns-two"} <= unknown
    assert doc["findings"] == [] and doc["summary"]["objects"] == 0
    assert other.returncode == 2, "a namespace nothing of which could be read is not a clean scan"
    assert "pods in namespace ns-two: not assessed (HTTP 403" in other.stderr


def test_a_namespace_that_does_not_exist_is_an_error(live: Any, two_namespaces: Path) -> None:
    out = kw("scan", "--cluster", "-n", "ns-typo", "--kubeconfig", str(live.kubeconfig))
    assert out.returncode == 2 and "namespace ns-typo not found" in out.stderr and out.stdout == ""
