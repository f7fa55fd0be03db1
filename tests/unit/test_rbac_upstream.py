"""The upstream RBAC test tables (tests/data/rbac/*.yaml, transcribed from kubernetes/kubernetes) run against
the engine through real objects and a Snapshot, so parsing, indexing and matching are all exercised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeward.engines.rbac import RBACIndex, Request, Rule, UserInfo, rule_allows
from kubeward.engines.rbac.model import Subject
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

DATA = Path(__file__).resolve().parents[1] / "data" / "rbac"


def load(name: str) -> Any:
    return yaml.safe_load((DATA / name).read_text())


def csv_rule(spec: list[Any]) -> dict[str, Any]:
    """newRule("verbs","groups","resources","urls"): each field split on ",", as upstream (so "" → [""])."""
    rule = {k: str(v).split(",") for k, v in zip(("verbs", "apiGroups", "resources", "nonResourceURLs"), spec, strict=False)}
    if len(spec) > 4:
        rule["resourceNames"] = list(spec[4])
    return rule


def subject(text: str) -> dict[str, str]:
    kind, _, name = text.partition(":")
    if kind == "ServiceAccount" and "/" in name:
        ns, _, name = name.partition("/")
        return {"kind": kind, "name": name, "namespace": ns}
    return {"kind": kind, "name": name}


def objects(case: dict[str, Any], rule_of: Any = csv_rule) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, rules in (case.get("clusterRoles") or {}).items():
        out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
                    "rules": [rule_of(r) for r in rules]})
    for key, rules in (case.get("roles") or {}).items():
        ns, name = key.split("/")
        out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": name, "namespace": ns}, "rules": [rule_of(r) for r in rules]})
    for i, b in enumerate(case.get("bindings") or []):
        kind = "RoleBinding" if b.get("namespace") else "ClusterRoleBinding"
        meta = {"name": f"b{i}", **({"namespace": b["namespace"]} if b.get("namespace") else {})}
        out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": b["kind"], "name": b["role"]},
                    "subjects": [subject(s) for s in b["subjects"]]})
    return out


def index_of(objs: list[dict[str, Any]]) -> RBACIndex:
    return RBACIndex.from_snapshot(Snapshot(Resource(o) for o in objs), builtin_roles=False)  # upstream tables: their roles only


def attrs(spec: Any) -> tuple[UserInfo, Request]:
    if isinstance(spec, dict):
        return (UserInfo(spec.get("user", ""), tuple(spec.get("groups", ()))),
                Request.non_resource(spec["verb"], spec["path"]))
    user, groups, verb, res, sub, ns, group, *name = spec
    return (UserInfo(user, tuple(str(groups).split(","))),
            Request(verb, res, sub, group, ns, name[0] if name else ""))


AUTHORIZER = load("authorizer.yaml")


@pytest.mark.parametrize("case", AUTHORIZER, ids=[c["name"] for c in AUTHORIZER])
def test_authorizer(case: dict[str, Any]) -> None:
    idx = index_of(objects(case))
    for spec in case["shouldPass"]:
        user, req = attrs(spec)
        assert idx.authorize(user, req).allowed, f"incorrectly restricted {spec}"
    for spec in case["shouldFail"]:
        user, req = attrs(spec)
        assert not idx.authorize(user, req).allowed, f"incorrectly passed {spec}"


def test_missing_role_is_recorded_not_fatal() -> None:
    case = next(c for c in AUTHORIZER if c["name"].startswith("a Role is looked up"))
    idx = index_of(objects(case))
    decision = idx.authorize(UserInfo("u"), Request("get", "pods", namespace="ns1"))
    assert decision.allowed
    assert decision.errors == ['RoleBinding "b0/ns1" of Role "missing": Role "ns1/missing" not found']
    assert idx.missing_roles() == [*decision.errors, 'RoleBinding "b2/ns2" of Role "reader": Role "ns2/reader" not found']


RULES = load("rule_matches.yaml")


@pytest.mark.parametrize("case", RULES, ids=[c["name"] for c in RULES])
def test_rule_matches(case: dict[str, Any]) -> None:
    spec = case["rule"]
    rule = Rule.parse({"verbs": spec.get("verbs"), "apiGroups": spec.get("groups"),
                       "resources": spec.get("resources"), "nonResourceURLs": spec.get("urls")})
    for item in case["requests"]:
        if len(item) == 3:
            verb, url, expected = item
            req = Request.non_resource(verb, url)
        else:
            verb, group, res, sub, expected = item
            req = Request(verb, res, sub, group)
        assert rule_allows(req, rule) is expected, f"{case['name']}: {item}"


APPLIES = load("applies_to.yaml")


@pytest.mark.parametrize("case", APPLIES, ids=[c["case"] for c in APPLIES])
def test_applies_to(case: dict[str, Any]) -> None:
    """appliesTo through the index: one binding granting everything; it applies iff the request is allowed."""
    ns = case.get("namespace", "")
    objs = objects({"clusterRoles": {"all": [["*", "*", "*", "*"]]},
                    "bindings": [{"namespace": ns or None, "role": "all", "kind": "ClusterRole",
                                  "subjects": case["subjects"]}]})
    if not ns:
        objs[-1]["metadata"].pop("namespace", None)
    idx = index_of(objs)
    user = UserInfo(case["user"]["name"], tuple(case["user"].get("groups", ())))
    assert idx.authorize(user, Request("get", "pods", namespace=ns or "any")).allowed is case["appliesTo"]


def test_default_rule_resolver() -> None:
    data = load("rule_resolver.yaml")
    named = data["rules"]
    idx = index_of(objects(data, rule_of=lambda n: named[n]))
    for case in data["cases"]:
        user = UserInfo(case["user"]["name"], tuple(case["user"].get("groups", ())))
        got = sorted(str(r.to_json()) for r in idx.rules_for(user, case["namespace"]))
        want = sorted(str(Rule.parse(named[n]).to_json()) for n in case["effectiveRules"])
        assert got == want, case


LOCATOR = load("subject_locator.yaml")


@pytest.mark.parametrize("case", LOCATOR, ids=[c["name"] for c in LOCATOR])
def test_subject_locator(case: dict[str, Any]) -> None:
    idx = index_of(objects(case))
    for action in case["actions"]:
        verb, res, sub, ns, group = action["request"]
        got = idx.allowed_subjects(Request(verb, res, sub, group, ns), super_user=case.get("superUser", ""))
        want = [Subject(**subject(s)) for s in action["subjects"]]
        assert [s for s, _ in got.subjects] == want, action
