"""`scan --cluster -n NS` without a cluster: what is listed where, what a refusal becomes, and what is reported on.
tests/e2e/cluster/test_live_scan_namespace.py proves the same against a real apiserver."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.scan import ScanOptions, scan
from kubeward.sources import cluster as source
from kubeward.sources.cluster import SCAN_TYPES, ClusterError, load_cluster

pytest.importorskip("kubernetes")

RBAC = "rbac.authorization.k8s.io/v1"
LIST_RAW = source.Client.list_raw  # the real pagination over the fake's answers
LIST_VERSIONED = source.Client.list_versioned


def _pod(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25", "securityContext": {"privileged": True}}]}}


def _impersonator(name: str) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]}


OBJECTS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
    _pod("web", "shop"), _pod("api", "other"),
    _impersonator("bound-in-shop"), _impersonator("bound-elsewhere"),
    {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "shop"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bound-in-shop"},
     "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]},
]


class FakeApi:
    """Answers as the apiserver does: /…/<plural> lists every namespace, /…/namespaces/NS/<plural> one,
    /api/v1/namespaces/NAME gets one Namespace; `refused` paths get their status."""

    context = "fake@ctx"

    def __init__(self, objects: list[dict[str, Any]], refused: dict[str, int] | None = None) -> None:
        self.objects, self.refused, self.paths = objects, refused or {}, []
        self.by_path = {t.path: t for t in SCAN_TYPES}

    def list_raw(self, rtype: source.ResourceType, namespace: str | None = None) -> Any:
        return LIST_RAW(self, rtype, namespace)  # type: ignore[arg-type]

    def list_versioned(self, rtype: source.ResourceType, namespace: str | None = None) -> Any:
        return LIST_VERSIONED(self, rtype, namespace)  # type: ignore[arg-type]

    def call(self, method: str, path: str, **_: Any) -> tuple[int, bytes, dict[str, str]]:
        self.paths.append(path)
        json_type = {"Content-Type": "application/json"}
        if path in self.refused:
            return self.refused[path], orjson.dumps({"kind": "Status", "message": "forbidden"}), json_type
        one = re.fullmatch(r"/api/v1/namespaces/([^/]+)", path)
        if one:
            found = [o for o in self.objects if o["kind"] == "Namespace" and o["metadata"]["name"] == one[1]]
            return (200, orjson.dumps(found[0]), json_type) if found else (404, b"{}", json_type)
        m = re.fullmatch(r"(/apis?/.+?)/namespaces/([^/]+)/([^/]+)", path)
        ns, cluster_path = (m[2], f"{m[1]}/{m[3]}") if m else (None, path)
        rtype = self.by_path[cluster_path]
        items = [o for o in self.objects if o["kind"] == rtype.kind
                 and (ns is None or o["metadata"].get("namespace") == ns)]
        doc = {"kind": f"{rtype.kind}List", "apiVersion": rtype.group_version, "metadata": {}, "items": items}
        return 200, orjson.dumps(doc), json_type


def test_namespaced_types_are_listed_in_the_namespace_and_cluster_scoped_ones_whole() -> None:
    api = FakeApi(OBJECTS)
    snap = load_cluster(client=api, namespace="shop")  # type: ignore[arg-type]
    assert "/api/v1/namespaces/shop/pods" in api.paths and "/api/v1/pods" not in api.paths
    assert "/api/v1/namespaces/shop" in api.paths and "/api/v1/namespaces" not in api.paths
    assert "/apis/rbac.authorization.k8s.io/v1/clusterroles" in api.paths
    assert {(r.kind, r.namespace, r.name) for r in snap.resources if r.kind in ("Pod", "Namespace")} == {
        ("Namespace", None, "shop"), ("Pod", "shop", "web")}
    assert snap.coverage[0] == snap.coverage[1] and snap.not_assessed == ()


def test_a_namespace_the_user_may_not_list_is_not_assessed() -> None:
    api = FakeApi(OBJECTS, {"/api/v1/namespaces/shop/pods": 403, "/api/v1/namespaces/shop/secrets": 403})
    snap = load_cluster(client=api, namespace="shop")  # type: ignore[arg-type]
    assert {n.what for n in snap.not_assessed} == {"pods in namespace shop", "secrets in namespace shop"}
    read, wanted = snap.coverage
    assert read == wanted - 2


def test_a_namespace_that_does_not_exist_is_an_error_not_a_clean_scan() -> None:
    with pytest.raises(ClusterError, match="namespace nope not found"):
        load_cluster(client=FakeApi(OBJECTS), namespace="nope")  # type: ignore[arg-type]


def _findings(report: Any) -> set[tuple[str, str | None, str]]:
    return {(f.object.kind, f.object.namespace, f.object.name) for f in report.findings}


def test_findings_are_the_namespace_s_objects_and_the_cluster_roles_bound_in_it() -> None:
    options = ScanOptions(include_controls=("KW-W001", "KW-R009"))
    whole = _findings(scan(load_cluster(client=FakeApi(OBJECTS)), options))  # type: ignore[arg-type]
    one = _findings(scan(load_cluster(client=FakeApi(OBJECTS), namespace="shop"), options))  # type: ignore[arg-type]
    assert ("ClusterRole", None, "bound-elsewhere") in whole and ("Pod", "other", "api") in whole
    assert one == {("Pod", "shop", "web"), ("ClusterRole", None, "bound-in-shop")}


@pytest.fixture
def fake_cluster(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    api = FakeApi(OBJECTS, {"/api/v1/namespaces/shop/secrets": 403})
    monkeypatch.setattr(source, "Client", lambda *_a, **_k: api)
    return api


def _run(*args: str) -> Any:
    r = CliRunner().invoke(cli, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r


def test_scan_cluster_n_reads_one_namespace_and_names_what_it_could_not(fake_cluster: FakeApi) -> None:
    r = _run("scan", "--cluster", "-n", "shop", "-o", "json", "--include-controls", "KW-W001")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1
    assert {(f["object"]["namespace"], f["object"]["name"]) for f in doc["findings"]} == {("shop", "web")}
    assert "secrets in namespace shop: not assessed (HTTP 403: forbidden)" in r.stderr


def test_all_namespaces_is_the_default_and_excludes_n(fake_cluster: FakeApi) -> None:
    r = _run("scan", "--cluster", "-A", "-o", "json", "--include-controls", "KW-W001")
    assert {f["object"]["namespace"] for f in json.loads(r.stdout)["findings"]} == {"shop", "other"}
    r = _run("scan", "--cluster", "-A", "-n", "shop")
    assert r.exit_code == 2 and "give one of them" in r.stderr
    r = _run("scan", "-A", "--demo")
    assert r.exit_code == 2 and "with --cluster" in r.stderr


def test_a_namespace_nothing_of_which_could_be_read_is_not_a_clean_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the cluster-scoped types readable: the objects counted are the namespace's (none), so exit 2."""
    refused = {t.path_in("shop"): 403 for t in SCAN_TYPES if t.namespaced}
    api = FakeApi([o for o in OBJECTS if o["kind"] != "RoleBinding"], {**refused, "/api/v1/namespaces/shop": 403})
    monkeypatch.setattr(source, "Client", lambda *_a, **_k: api)
    r = _run("scan", "--cluster", "-n", "shop", "-o", "json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 2 and doc["summary"]["objects"] == 0 and doc["findings"] == []
    assert "namespaces/shop" in {n["what"] for n in doc["notAssessed"]}
    assert "pods in namespace shop: not assessed (HTTP 403: forbidden)" in r.stderr


def test_cluster_role_bindings_of_the_namespace_s_service_accounts_are_its_concern() -> None:
    def crb(name: str, subject: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "x"},
                "subjects": [subject]}

    objects = [*OBJECTS, crb("sa", {"kind": "ServiceAccount", "name": "app", "namespace": "shop"}),
               crb("group", {"kind": "Group", "name": "system:serviceaccounts:shop"}),
               crb("other-sa", {"kind": "ServiceAccount", "name": "app", "namespace": "other"}),
               crb("all", {"kind": "Group", "name": "system:serviceaccounts"})]
    snap = load_cluster(client=FakeApi(objects), namespace="shop")  # type: ignore[arg-type]
    in_scope = snap.in_scope()
    assert in_scope is not None
    assert {r.name for r in snap.of_kind("ClusterRoleBinding") if in_scope(r)} == {"sa", "group"}
