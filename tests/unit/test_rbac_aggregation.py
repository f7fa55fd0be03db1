"""Aggregated ClusterRoles: the controller's test table (tests/data/rbac/aggregation.yaml) and the fixpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeward.engines.rbac import RBACIndex, Request, Rule, UserInfo
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

DATA = yaml.safe_load((Path(__file__).resolve().parents[1] / "data" / "rbac" / "aggregation.yaml").read_text())
SETS = {
    "hammer": [{"verbs": ["hammer"], "resources": ["nails"]}, {"verbs": ["hammer"], "resources": ["wedges"]}],
    "chisel": [{"verbs": ["chisel"], "resources": ["mortises"]}],
    "saw": [{"verbs": ["saw"], "resources": ["boards"]}],
}


def cluster_role(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                           "metadata": {"name": name, "labels": spec.get("labels") or {}},
                           "rules": [r for s in spec.get("rules") or [] for r in SETS[s]]}
    if "selectors" in spec:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": m} for m in spec["selectors"]]}
    return obj


@pytest.mark.parametrize("case", DATA, ids=[c["name"] for c in DATA])
def test_sync_cluster_role(case: dict[str, Any]) -> None:
    objs = [cluster_role(n, s) for n, s in case["roles"].items()] + [cluster_role("combined", case["combined"])]
    idx = RBACIndex.from_snapshot(Snapshot(Resource(o) for o in objs))
    want = tuple(Rule.parse(r) for s in case["expected"] for r in SETS[s])
    assert idx.roles[("ClusterRole", "", "combined")] == want
    assert idx.problems == []


def test_aggregated_rules_authorize_through_bindings() -> None:
    saw = cluster_role("saw", {"labels": {"a": "b"}})
    saw["rules"] = [{"verbs": ["saw"], "apiGroups": [""], "resources": ["boards"]}]
    agg = cluster_role("agg", {"selectors": [{"a": "b"}]})
    agg["rules"] = [{"verbs": ["hammer"], "apiGroups": [""], "resources": ["nails"]}]
    objs = [saw, agg,
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "x"},
             "roleRef": {"kind": "ClusterRole", "name": "agg"}, "subjects": [{"kind": "User", "name": "u"}]}]
    idx = RBACIndex.from_snapshot(Snapshot(Resource(o) for o in objs))
    assert idx.authorize(UserInfo("u"), Request("saw", "boards", namespace="ns")).allowed
    assert not idx.authorize(UserInfo("u"), Request("hammer", "nails", namespace="ns")).allowed  # replaced


def test_invalid_selector_is_reported_and_rules_kept() -> None:
    bad = cluster_role("agg", {"rules": ["hammer"]})
    bad["aggregationRule"] = {"clusterRoleSelectors": [{"matchExpressions": [{"key": "a", "operator": "Bogus"}]}]}
    idx = RBACIndex.from_snapshot(Snapshot([Resource(bad)]))
    assert idx.roles[("ClusterRole", "", "agg")] == tuple(Rule.parse(r) for r in SETS["hammer"])
    assert len(idx.problems) == 1 and "invalid clusterRoleSelector" in idx.problems[0]
