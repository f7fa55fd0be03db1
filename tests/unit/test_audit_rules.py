"""Custom detection rules (YAML field matchers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeward.audit.analyzer import Analyzer, AnalyzerConfig
from kubeward.audit.rules import RulesError, compile_matcher, load_rules, values

RULES = """
rules:
- id: prod-secret-delete
  severity: high
  message: "{user.username} deleted {objectRef.namespace}/{objectRef.name}"
  match:
    verb: [delete, deletecollection]
    objectRef.resource: secrets
    objectRef.namespace: {prefix: prod-}
    user.username: {notPrefix: "system:"}
    annotations[authorization.k8s.io/decision]: allow
    sourceIPs: {notCidr: [10.0.0.0/8]}
- id: big-response
  severity: low
  match:
    responseStatus.code: {gte: 500}
"""


def _ev(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "1",
                            "stage": "ResponseComplete", "verb": "delete", "user": {"username": "jane"},
                            "sourceIPs": ["192.0.2.1"], "objectRef": {"resource": "secrets", "namespace": "prod-a",
                                                                     "name": "db"},
                            "annotations": {"authorization.k8s.io/decision": "allow"},
                            "responseStatus": {"code": 200}}
    base.update(over)
    return base


@pytest.fixture
def analyzer(tmp_path: Path) -> Analyzer:
    p = tmp_path / "rules.yaml"
    p.write_text(RULES)
    return Analyzer(load_rules(str(p)), AnalyzerConfig(burst_threshold=0))


def test_rule_fires_and_renders_message(analyzer: Analyzer) -> None:
    [a] = analyzer.feed(_ev())
    assert (a.rule, a.severity.label, a.message) == ("prod-secret-delete", "high", "jane deleted prod-a/db")


@pytest.mark.parametrize("over", [
    {"verb": "get"},
    {"user": {"username": "system:admin"}},
    {"sourceIPs": ["10.1.2.3"]},
    {"objectRef": {"resource": "secrets", "namespace": "dev", "name": "db"}},
    {"annotations": {}},
    {"stage": "ResponseStarted"},
])
def test_rule_does_not_fire(analyzer: Analyzer, over: dict[str, Any]) -> None:
    assert analyzer.feed(_ev(**over)) == []


def test_numeric_matcher(analyzer: Analyzer) -> None:
    assert [a.rule for a in analyzer.feed(_ev(verb="get", responseStatus={"code": 503}))] == ["big-response"]


def test_rule_is_indexed_by_verb_and_resource(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(RULES)
    d = load_rules(str(p))[0]
    assert d.verbs == {"delete", "deletecollection"} and d.resources == {"secrets"}


@pytest.mark.parametrize(("text", "needle"), [
    ("rules: [{severity: high}]", "id is required"),
    ("rules: [{id: a, severity: urgent}]", "unknown severity"),
    ("rules: [{id: a, match: {verb: {like: x}}}]", "unknown operator 'like'"),
    ("rules: [{id: a, match: {user.username: {regex: '('}}}]", "bad regex"),
    ("rules: [{id: a, match: {sourceIPs: {cidr: [nope]}}}]", "nope"),
    ("rules: [{id: a}, {id: a}]", "duplicate rule id"),
    ("rules: [{id: a, stages: [Later]}]", "stages"),
    ("rules: {", "invalid YAML"),
    ("42", "rules"),
])
def test_bad_rules_files(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(RulesError) as exc:
        load_rules(str(p))
    assert needle in str(exc.value) and str(p) in str(exc.value)


def test_values_fan_out_over_lists() -> None:
    ev = {"requestObject": {"spec": {"containers": [{"image": "a"}, {"image": "b"}]}}}
    assert values(ev, ("requestObject", "spec", "containers", "image")) == ["a", "b"]
    assert values(ev, ("requestObject", "spec", "containers", "1", "image")) == ["b"]
    assert values(ev, ("nope",)) == []


words = st.lists(st.sampled_from(["a", "b", "c"]), max_size=4)


@given(words, words)
def test_in_and_notin_are_complements(vals: list[str], allowed: list[str]) -> None:
    pos = compile_matcher({"in": allowed}, "t")(vals)
    neg = compile_matcher({"notIn": allowed}, "t")(vals)
    assert pos == any(v in allowed for v in vals)
    assert neg == (not pos)
