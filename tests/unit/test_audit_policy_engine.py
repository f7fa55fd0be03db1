"""The audit policy evaluator against the upstream checker_test.go cases (transcribed as data) and properties."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kubeward.engines.auditpolicy import (
    Attributes,
    PolicyError,
    UserInfo,
    attributes_from_event,
    parse_policy,
    path_matches,
    union_stages,
)

DATA = yaml.safe_load((Path(__file__).parent.parent / "data/audit/checker_cases.yaml").read_text())


def _attrs(key: str) -> Attributes:
    a = DATA["attrs"][key]
    user = UserInfo(a["user"]["name"], tuple(a["user"]["groups"])) if a["user"] else None
    return Attributes(a["verb"], a.get("resource", ""), a.get("subresource", ""), a.get("apiGroup", ""),
                      a.get("namespace", ""), a.get("name", ""), a["path"], a["resourceRequest"], user)


def _policy(names: list[str], stages: list[str] | None, **extra: Any) -> Any:
    return parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": stages,
                         "rules": [DATA["rules"][n] for n in names], **extra})


LEVEL_CASES = [(c, s) for s in DATA["levelCasePolicyStages"] for c in DATA["levelCases"]]


@pytest.mark.parametrize(("case", "stages"), LEVEL_CASES,
                         ids=[f"{c['attrs']}-{'+'.join(c['rules'])}-{len(s)}" for c, s in LEVEL_CASES])
def test_checker_levels(case: dict[str, Any], stages: list[str]) -> None:
    d = _policy(case["rules"], stages).evaluate(_attrs(case["attrs"]))
    assert d.level == case["level"]
    assert d.omit_stages == frozenset(stages)


@pytest.mark.parametrize("case", DATA["stageCases"], ids=lambda c: f"{c['attrs']}-{c['rules'][0]}")
def test_checker_omit_stages(case: dict[str, Any]) -> None:
    d = _policy(case["rules"], case["policyStages"]).evaluate(_attrs(case["attrs"]))
    assert d.level == case["level"]
    assert d.omit_stages == frozenset(case["omitStages"])


@pytest.mark.parametrize("case", DATA["unionStages"])
def test_union_stages(case: dict[str, Any]) -> None:
    assert union_stages(case["a"], case["b"]) == frozenset(case["exp"])


@pytest.mark.parametrize("case", DATA["omitManagedFields"], ids=lambda c: c["name"])
def test_omit_managed_fields(case: dict[str, Any]) -> None:
    rule: dict[str, Any] = {"level": "RequestResponse", "verbs": ["get"]}
    if case["rule"] is not None:
        rule["omitManagedFields"] = case["rule"]
    p = parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitManagedFields": case["policy"],
                      "rules": [rule]})
    assert p.evaluate(Attributes("get", resource_request=False)).omit_managed_fields is case["want"]


def test_res_slash_star_matches_bare_resource_as_upstream() -> None:
    # checker.go compares only the resource part for `res/*`, so the bare resource matches too.
    p = _policy(["getPodSubResourceWildcardMatching"], None)
    assert p.evaluate(_attrs("namespaced")).level == "Request"


def test_star_slash_sub_needs_a_subresource() -> None:
    assert _policy(["getPodResourceWildcardMatching"], None).evaluate(_attrs("namespaced")).level == "None"


@pytest.mark.parametrize(("doc", "needle"), [
    ({"rules": [{"level": "Everything"}]}, "rules[0].level"),
    ({"rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}]}, "both regular resources"),
    ({"rules": [{"level": "None", "nonResourceURLs": ["healthz"]}]}, "must start with '/'"),
    ({"rules": [{"level": "None", "nonResourceURLs": ["/a*b"]}]}, "last character"),
    ({"rules": [{"level": "None", "resources": [{"resourceNames": ["x"]}]}]}, "requires at least one resource"),
    ({"rules": [{"level": "None", "resources": [{"group": "rbac.authorization.k8s.io/v1"}]}]}, "valid API group"),
    ({"rules": [{"level": "None", "omitStages": ["Later"]}]}, "unsupported stage"),
    ({"kind": "ConfigMap"}, "expected Policy"),
])
def test_validation(doc: dict[str, Any], needle: str) -> None:
    full = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", **doc}
    with pytest.raises(PolicyError, match=None) as exc:
        parse_policy(full)
    assert needle in str(exc.value)


def test_attributes_from_event() -> None:
    ev = {"verb": "get", "requestURI": "/api/v1/namespaces/a/pods/p/log?x=1", "user": {"username": "u", "groups": ["g"]},
          "objectRef": {"resource": "pods", "namespace": "a", "name": "p", "subresource": "log"}}
    a = attributes_from_event(ev)
    assert (a.resource_request, a.namespace, a.resource, a.subresource, a.name, a.path) == (
        True, "a", "pods", "log", "p", "/api/v1/namespaces/a/pods/p/log")
    nr = attributes_from_event({"verb": "get", "requestURI": "/healthz?verbose", "user": {"username": "u"}})
    assert (nr.resource_request, nr.path) == (False, "/healthz")


segment = st.sampled_from(["", "a", "ab", "/", "*", "/logs", "/logs/x"])


@given(st.lists(segment, max_size=4).map("".join), st.lists(segment, max_size=3).map("".join))
def test_path_matches_prefix_property(path: str, prefix: str) -> None:
    # A `prefix*` spec matches exactly the paths that start with the prefix (once trailing stars are dropped).
    spec = prefix.rstrip("*") + "*"
    assert path_matches(path, spec) == path.startswith(prefix.rstrip("*"))


rule_st = st.fixed_dictionaries({"level": st.sampled_from(["None", "Metadata", "Request", "RequestResponse"])},
                                optional={"verbs": st.lists(st.sampled_from(["get", "create", "list"]), max_size=2),
                                          "userGroups": st.lists(st.sampled_from(["humans", "x"]), max_size=2),
                                          "namespaces": st.lists(st.sampled_from(["", "default"]), max_size=2)})


@given(st.lists(rule_st, max_size=5), st.lists(rule_st, max_size=5), st.sampled_from(sorted(DATA["attrs"])))
def test_first_match_wins(before: list[dict[str, Any]], after: list[dict[str, Any]], key: str) -> None:
    # Whatever follows a catch-all never changes the outcome; the catch-all decides when nothing before it matches.
    base = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy"}
    attrs = _attrs(key)
    p1 = parse_policy({**base, "rules": [*before, {"level": "Metadata"}, *after]})
    p2 = parse_policy({**base, "rules": [*before, {"level": "Metadata"}]})
    assert p1.evaluate(attrs) == p2.evaluate(attrs)
    if not before or parse_policy({**base, "rules": before}).evaluate(attrs).rule is None:  # no rules: no match
        assert p1.evaluate(attrs).level == "Metadata"
