"""The bootstrap policy of every cluster, from the shipped data generated from a real v1.37 kube-apiserver, and
its merge with the input as the apiserver's reconciliation does it (bootstrap.py)."""

from __future__ import annotations

from typing import Any

import pytest

from kubeward.apidata import UnsupportedVersion, bootstrap_policy, normalise_version, supported_versions
from kubeward.engines.rbac import RBACIndex, Request, user_info
from kubeward.engines.rbac.bootstrap import AUTOUPDATE, reconcile
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

RBAC = "rbac.authorization.k8s.io/v1"


def index(*objs: dict[str, Any], bootstrap: bool = True) -> RBACIndex:
    return RBACIndex.from_snapshot(Snapshot(Resource(o) for o in objs), builtin_roles=bootstrap)


def test_shipped_policy_has_what_every_cluster_has() -> None:
    objs = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in bootstrap_policy()}
    for want in [("ClusterRole", "", "cluster-admin"), ("ClusterRole", "", "system:auth-delegator"),
                 ("ClusterRole", "", "system:public-info-viewer"), ("ClusterRoleBinding", "", "system:discovery"),
                 ("ClusterRoleBinding", "", "system:basic-user"), ("ClusterRole", "", "edit"),
                 ("Role", "kube-system", "extension-apiserver-authentication-reader"),
                 ("RoleBinding", "kube-public", "system:controller:bootstrap-signer")]:
        assert want in objs
    assert all(o["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults" for o in bootstrap_policy())
    assert len(objs) > 130


@pytest.mark.parametrize(("user", "path", "allowed"), [
    (user_info("alice"), "/version", True), (user_info("alice"), "/api", True), (user_info("alice"), "/apis/apps", True),
    (user_info("alice"), "/healthz", True), (user_info("alice"), "/openapi/v2", True),
    (user_info("alice"), "/metrics", False), (user_info("alice"), "/logs", False),
    (user_info("system:anonymous"), "/version", True), (user_info("system:anonymous"), "/api", False),
])
def test_every_cluster_answers_discovery(user: Any, path: str, allowed: bool) -> None:
    assert index().authorize(user, Request.non_resource("get", path)).allowed is allowed
    assert not index(bootstrap=False).authorize(user, Request.non_resource("get", path)).allowed


def test_every_authenticated_user_may_review_itself() -> None:
    req = Request("create", "selfsubjectaccessreviews", "", "authorization.k8s.io")
    assert index().authorize(user_info("alice"), req).allowed


def _cr(name: str, rules: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name, **meta}, "rules": rules}


READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}


def test_input_role_of_a_bootstrap_name_is_unioned_not_replaced() -> None:
    idx = index(_cr("cluster-admin", [READ_PODS]))  # reconciliation adds the missing bootstrap rules back
    assert idx.authorize(user_info("x", ["system:masters"]), Request("delete", "nodes")).allowed
    rules = idx.roles[("ClusterRole", "", "cluster-admin")]
    assert rules[0].to_json() == {**READ_PODS} and len(rules) == 3
    assert "cluster-admin" not in idx.builtin  # the input defines it


def test_autoupdate_false_protects_the_input_role() -> None:
    idx = index(_cr("system:discovery", [READ_PODS], annotations={AUTOUPDATE: "false"}))
    assert not idx.authorize(user_info("alice"), Request.non_resource("get", "/api")).allowed
    assert idx.authorize(user_info("alice"), Request("get", "pods", namespace="dev")).allowed


def test_binding_of_a_bootstrap_name_gets_the_bootstrap_role_and_subjects() -> None:
    crb = {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": "system:discovery"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
           "subjects": [{"kind": "User", "name": "eve"}]}
    idx = index(crb)
    (b,) = [b for b in idx.bindings if b.name == "system:discovery"]
    assert b.role_name == "system:discovery"  # the apiserver recreates it with its own roleRef
    assert [s.name for s in b.subjects] == ["eve", "system:authenticated"]
    assert not b.bootstrap  # the input's own object: judged like any other
    protected = {**crb, "metadata": {"name": "system:discovery", "annotations": {AUTOUPDATE: "false"}}}
    (b,) = [b for b in index(protected).bindings if b.name == "system:discovery"]
    assert b.role_name == "cluster-admin" and [s.name for s in b.subjects] == ["eve"]


def test_reconcile_merges_labels_and_aggregation() -> None:
    have = {"kind": "ClusterRole", "metadata": {"name": "admin", "labels": {"a": "mine"}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}, "rules": []}
    want = {"kind": "ClusterRole", "metadata": {"name": "admin", "labels": {"a": "theirs", "b": "1"}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"z": "w"}}]}, "rules": [READ_PODS]}
    got = reconcile(have, want)
    assert got["metadata"]["labels"] == {"a": "mine", "b": "1"}  # existing values win
    assert got["aggregationRule"]["clusterRoleSelectors"] == [{"matchLabels": {"x": "y"}}, {"matchLabels": {"z": "w"}}]
    assert got["rules"] == [READ_PODS]  # one verb, group and resource: its own breakdown


def test_aggregated_bootstrap_roles_include_input_aggregates() -> None:
    extra = _cr("widget-edit", [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["create"]}],
                labels={"rbac.authorization.k8s.io/aggregate-to-edit": "true"})
    rb = {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "e", "namespace": "dev"},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
          "subjects": [{"kind": "User", "name": "dana"}]}
    idx = index(extra, rb)
    assert idx.authorize(user_info("dana"), Request("create", "widgets", "", "example.com", "dev")).allowed  # edit→admin
    assert idx.authorize(user_info("dana"), Request("create", "rolebindings", "", "rbac.authorization.k8s.io",
                                                    "dev")).allowed


def test_versions() -> None:
    assert supported_versions() == ("1.37",)
    assert normalise_version("v1.37") == normalise_version("1.37.2") == normalise_version(None) == "1.37"
    with pytest.raises(UnsupportedVersion, match=r"supported: 1\.37"):
        normalise_version("1.36")


def test_missing_rules_are_what_covers_leaves_uncovered() -> None:
    from kubeward.engines.rbac.bootstrap import breakdown, uncovered

    basic = [{"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews",
                                                                   "selfsubjectrulesreviews"], "verbs": ["create"]}]
    assert breakdown(basic[0]) == [
        {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"]},
        {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectrulesreviews"]}]
    assert uncovered([{"apiGroups": ["authorization.k8s.io"], "resources": ["*"], "verbs": ["*"]}], basic) == []
    assert len(uncovered([{"apiGroups": ["*"], "resources": ["selfsubjectaccessreviews"], "verbs": ["create"]}],
                         basic)) == 1
    urls = [{"nonResourceURLs": ["/healthz", "/version"], "verbs": ["get"]}]
    assert uncovered([{"nonResourceURLs": ["/*"], "verbs": ["get"]}], urls) == []
    assert uncovered([{"nonResourceURLs": ["/healthz"], "verbs": ["*"]}], urls) == [
        {"verbs": ["get"], "nonResourceURLs": ["/version"]}]
    named = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["a", "b"]}]
    assert uncovered([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["a"]}],
                     named) == [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
                                 "resourceNames": ["b"]}]
    sub = [{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["update"]}]
    assert uncovered([{"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]}], sub) == []
