"""Hostile or corrupt events: whatever the field types, analysis and audit2rbac never raise."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.audit.analyzer import Analyzer, AnalyzerConfig
from kubeward.audit.audit2rbac import collect
from kubeward.audit.detections import builtin
from kubeward.audit.rules import compile_rule

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 500), st.text(max_size=8),
                    st.sampled_from(["pods", "secrets", "create", "get", "exec", "ResponseComplete", "*",
                                     "system:anonymous", "cluster-admin", "10.0.0.1"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                             st.dictionaries(st.sampled_from(
                                                                 ["name", "resource", "subresource", "namespace",
                                                                  "spec", "containers", "rules", "verbs",
                                                                  "resources", "roleRef", "code", "username",
                                                                  "securityContext", "privileged", "data",
                                                                  "hostPath", "path", "volumes", "image"]),
                                                                 inner, max_size=4)), max_leaves=12)

FIELDS = ["stage", "verb", "objectRef", "user", "impersonatedUser", "responseStatus", "requestObject",
          "sourceIPs", "userAgent", "annotations", "requestURI", "stageTimestamp", "auditID"]


@st.composite
def events(draw: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete",
                          "verb": draw(st.sampled_from(["create", "get", "update", "patch", "list"])),
                          "objectRef": {"resource": draw(st.sampled_from(["pods", "secrets", "clusterroles",
                                                                           "rolebindings", "configmaps",
                                                                           "services", "ingresses"]))}}
    for f in draw(st.lists(st.sampled_from(FIELDS), max_size=5, unique=True)):
        ev[f] = draw(json_values)
    return ev


CUSTOM = compile_rule({"id": "c", "match": {"requestObject.spec.containers.image": {"regex": "x"},
                                            "responseStatus.code": {"gte": 200}, "sourceIPs": {"cidr": "10.0.0.0/8"}}},
                      "t")


@settings(max_examples=400, deadline=None)
@given(st.lists(events(), min_size=1, max_size=6))
def test_analyzer_never_raises(evs: list[dict[str, Any]]) -> None:
    an = Analyzer([*builtin(), CUSTOM], AnalyzerConfig(burst_threshold=2, allowed_cidrs=("10.0.0.0/8",),
                                                      allowed_user_agents=("^kubectl",), trusted_images=("x",)))
    for ev in evs:
        an.feed(ev)
    assert an.stats.events == len(evs)
    assert an.stats.alerts == sum(an.stats.by_rule.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(events(), min_size=1, max_size=6))
def test_audit2rbac_never_raises(evs: list[dict[str, Any]]) -> None:
    for ev in evs:
        ev.setdefault("user", {"username": "u"})
    got = collect(evs, "u", include_denied=True)
    assert all(o.verb for o in got)
