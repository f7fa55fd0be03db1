"""The admission decision core: the same controls and exceptions as `scan`, PSA-style namespace modes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.admission.config import AdmissionConfig, ConfigError, Policy, load_admission_config
from kubeward.admission.decide import (
    WARNING_RUNES,
    WARNINGS_TOTAL_RUNES,
    Decider,
    ReviewError,
    StaticNamespaces,
    cross_object_controls,
    warning_lines,
)
from kubeward.controls.registry import all_controls, run
from kubeward.exceptions import load_exceptions
from kubeward.findings import Severity

REPO = Path(__file__).resolve().parents[2]


def pod(name: str = "p", ns: str = "team", **sc: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "image": "nginx:1.27"}
    if sc:
        c["securityContext"] = sc
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [c]}}


def req(obj: Any, op: str = "CREATE", ns: str = "team", **kw: Any) -> dict[str, Any]:
    r = {"uid": "u1", "operation": op, "namespace": ns, "object": obj,
         "userInfo": {"username": "jane", "groups": ["dev"]}}
    r.update(kw)
    return r


def review(obj: Any, **kw: Any) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req(obj, **kw)}


PRIV = pod(privileged=True)


def test_privileged_pod_denied_naming_controls_and_fields() -> None:
    out = Decider().review(review(PRIV))
    resp = out["response"]
    assert out["apiVersion"] == "admission.k8s.io/v1" and resp["uid"] == "u1"
    assert resp["allowed"] is False and resp["status"]["code"] == 403
    msg = resp["status"]["message"]
    assert "KW-W001" in msg and "/spec/containers/0/securityContext/privileged" in msg
    assert resp["auditAnnotations"]["decision"] == "denied"
    assert "KW-W001:critical" in resp["auditAnnotations"]["findings"]
    # denied findings are not repeated as warnings; lower ones are
    assert resp["warnings"] and not any(w.startswith("KW-W001 ") for w in resp["warnings"])


def test_medium_findings_only_warned_by_default() -> None:
    resp = Decider().review(review(pod()))["response"]
    assert resp["allowed"] is True and "status" not in resp
    assert any(w.startswith("KW-W020 (medium)") for w in resp["warnings"])


@pytest.mark.parametrize(("labels", "allowed", "warned"), [
    ({"kubeward.io/enforce": "none"}, True, True),
    ({"kubeward.io/enforce": "critical", "kubeward.io/warn": "none"}, True, False),
    ({"kubeward.io/enforce": "medium"}, False, True),
    ({"kubeward.io/enforce": "bogus"}, False, False),  # fails closed, as PSA's enforce
])
def test_namespace_label_modes(labels: dict[str, str], allowed: bool, warned: bool) -> None:
    d = Decider(namespaces=StaticNamespaces({"team": labels}))
    resp = d.review(review(pod(runAsNonRoot=True, runAsUser=1000)))["response"]  # medium findings remain
    resp_priv = d.review(review(PRIV))["response"]
    assert resp_priv["allowed"] is (labels.get("kubeward.io/enforce") == "none")
    medium_only = resp["allowed"]
    assert medium_only is allowed
    assert bool(resp.get("warnings")) is warned
    if labels.get("kubeward.io/enforce") == "bogus":
        assert "kubeward.io/enforce" in resp["auditAnnotations"]["policy-errors"]


def test_bad_warn_label_fails_open() -> None:
    p = AdmissionConfig().policy_for({"kubeward.io/warn": "loud"})
    assert p.warn is None and p.enforce == Severity.HIGH and p.errors


def test_exemptions() -> None:
    cfg = AdmissionConfig(exempt_namespaces=frozenset({"kube-system"}), exempt_usernames=frozenset({"ci"}),
                          exempt_groups=frozenset({"system:masters"}))
    d = Decider(cfg)
    assert d.decide(req(pod(ns="kube-system", privileged=True), ns="kube-system")).reason == "exempt-namespace"
    assert d.decide(req(PRIV, userInfo={"username": "ci"})).reason == "exempt-user"
    assert d.decide(req(PRIV, userInfo={"username": "x", "groups": ["system:masters"]})).reason == "exempt-group"
    assert d.decide(req(PRIV)).allowed is False


def test_updates_that_do_not_worsen_pass_unless_configured() -> None:
    relabelled = copy.deepcopy(PRIV)
    relabelled["metadata"]["labels"] = {"a": "b"}
    d = Decider()
    dec = d.decide(req(relabelled, op="UPDATE", oldObject=PRIV))
    assert dec.allowed and dec.reason == "unworsened-update"
    assert d.decide(req(PRIV, op="UPDATE", oldObject=pod())).allowed is False  # became privileged
    strict = Decider(AdmissionConfig(allow_unworsened_updates=False))
    assert strict.decide(req(relabelled, op="UPDATE", oldObject=PRIV)).allowed is False


def test_not_judged_operations_and_subresources() -> None:
    d = Decider()
    assert d.decide(req(PRIV, op="DELETE")).reason == "not-judged"
    assert d.decide(req(PRIV, op="UPDATE", subResource="status", oldObject=PRIV)).reason == "not-judged"
    assert d.decide(req(PRIV, op="UPDATE", subResource="ephemeralcontainers", oldObject=pod())).allowed is False


def test_malformed_reviews() -> None:
    d = Decider()
    for bad in (None, [], {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}},
                {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
                {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}}):
        with pytest.raises(ReviewError):
            d.review(bad)
    resp = d.review(review("not an object"))["response"]
    assert resp["allowed"] is False and resp["status"]["code"] == 400


def test_namespace_object_with_invalid_label_is_refused() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {"kubeward.io/audit": "7"}}}
    resp = Decider().review(review(ns, ns=""))["response"]
    assert resp["allowed"] is False and "kubeward.io/audit" in resp["status"]["message"]


def test_inline_ignore_annotation_is_the_authors_own_and_does_not_bypass_by_default() -> None:
    obj = copy.deepcopy(PRIV)
    obj["metadata"]["annotations"] = {"kubeward.io/ignore": "KW-W001,KW-PSS-privileged",
                                      "kubeward.io/ignore-reason": "debug pod"}
    exc = load_exceptions(None, cwd=Path("/nonexistent"))
    assert Decider(exceptions=exc).decide(req(obj)).allowed is False
    assert Decider(AdmissionConfig(inline_ignores=True), exc).decide(req(obj)).allowed is True  # as in scan


def test_exceptions_file_and_namespace_from_request(tmp_path: Path) -> None:
    exc = tmp_path / "exc.yaml"
    exc.write_text("exceptions:\n- controls: [KW-W001, KW-PSS-privileged]\n  namespaces: [team]\n  reason: lab\n")
    cfgf = tmp_path / "admission.yaml"
    cfgf.write_text("exceptions: exc.yaml\n")
    cfg = load_admission_config(str(cfgf))
    d = Decider(cfg, load_exceptions(cfg.exceptions))
    no_ns = copy.deepcopy(PRIV)
    del no_ns["metadata"]["namespace"]
    assert d.decide(req(no_ns, ns="team")).allowed is True  # the request's namespace places the object
    assert d.decide(req(pod(ns="other", privileged=True), ns="other")).allowed is False


def test_config_is_strict(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    for text, word in (("defaults: {enforce: hgh}\n", "defaults.enforce"), ("defualts: {}\n", "defualts"),
                       ("exemptions: {users: [a]}\n", "users"), ("allowUnworsenedUpdates: yes-ish\n", "allowUnworsened"),
                       ("namespaces: {a: [1]}\n", "namespaces"), ("inlineIgnores: 1\n", "inlineIgnores")):
        f.write_text(text)
        with pytest.raises(ConfigError, match=word):
            load_admission_config(str(f))
    f.write_text("defaults: {enforce: critical, warn: none, audit: low}\nexemptions: {namespaces: [kube-system]}\n")
    cfg = load_admission_config(str(f))
    assert cfg.defaults == Policy(Severity.CRITICAL, None, Severity.LOW)
    assert cfg.exempt_namespaces == {"kube-system"}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=600), min_size=0, max_size=60))
def test_warnings_fit_the_apiservers_limits(messages: list[str]) -> None:
    from kubeward.findings import Finding, Location, ObjectRef

    meta = next(iter(all_controls().values())).meta
    fs = [Finding(meta, ObjectRef("v1", "Pod", "ns", "p"), Location(), "/spec", m) for m in messages]
    lines = warning_lines(fs, Policy())
    assert all(len(w) <= WARNING_RUNES for w in lines)
    assert sum(len(w) for w in lines) <= WARNINGS_TOTAL_RUNES
    assert all(not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in w) for w in lines)
    assert (len(lines) == len(fs)) or "more finding" in lines[-1]


def test_cross_object_controls_are_left_to_scan() -> None:
    ids = {c.meta.id for c in cross_object_controls()}
    assert {"KW-N007", "KW-R101", "KW-W053"} <= ids
    assert not ids & {c.meta.id for c in Decider().controls}


def test_decisions_equal_scan_on_the_demo() -> None:
    """For every demo object: denied exactly when `scan` (same per-object controls) reports critical or high."""
    from kubeward.cli.common import load_snapshot

    snap = load_snapshot([str(REPO / "src/kubeward/demo")])
    d = Decider(AdmissionConfig(inline_ignores=True), load_exceptions(None, cwd=Path("/nonexistent")))
    report = run(snap, d.controls, d.exceptions)
    failing = {f.object for f in report.findings if f.control.severity >= Severity.HIGH}
    agree = 0
    for res in snap.resources:
        dec = d.decide(req(res.obj, ns=res.namespace or ""))
        assert dec.allowed is (res.ref() not in failing), res.ref()
        agree += 1
    assert agree == len(snap.resources) > 20


def test_docs_list_exactly_the_cross_object_controls() -> None:
    import re

    text = (REPO / "docs" / "admission.md").read_text()
    listed = set(re.findall(r"^\| (KW-[A-Z]+\d+) \|", text, re.M))
    assert listed == {c.meta.id for c in cross_object_controls()}


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                    max_leaves=12),
       st.sampled_from(["userInfo", "object", "oldObject", "namespace", "operation", "subResource"]))
def test_any_request_field_of_any_shape_never_crashes(value: Any, key: str) -> None:
    cfg = AdmissionConfig(exempt_usernames=frozenset({"ci"}), exempt_groups=frozenset({"g"}),
                          exempt_namespaces=frozenset({"kube-system"}))
    r = req(PRIV, op="UPDATE", oldObject=PRIV)
    r[key] = value
    out = Decider(cfg).review({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": r})
    assert isinstance(out["response"]["allowed"], bool)


THRESHOLDS = [None, *Severity]


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(THRESHOLDS), st.sampled_from(THRESHOLDS), st.sampled_from(THRESHOLDS),
       st.sampled_from([PRIV, pod(), pod(runAsNonRoot=True, runAsUser=1000)]))
def test_modes_partition_the_findings_and_enforce_is_monotonic(enforce: Any, warn: Any, lower: Any,
                                                                obj: dict[str, Any]) -> None:
    d = Decider(AdmissionConfig(defaults=Policy(enforce, warn, Severity.INFO)))
    findings = d.judge(obj)
    dec = d.decide(req(obj))
    assert dec.allowed is (not dec.denied)
    assert enforce is not None or not dec.denied  # enforce off denies nothing
    assert sorted(f.control.id for f in dec.denied) == sorted(
        f.control.id for f in findings if enforce is not None and f.control.severity >= enforce)
    assert sorted(f.control.id for f in dec.warned) == sorted(
        f.control.id for f in findings if warn is not None and f.control.severity >= warn
        and not (enforce is not None and f.control.severity >= enforce))
    if lower is not None and enforce is not None and lower <= enforce and not dec.allowed:
        stricter = Decider(AdmissionConfig(defaults=Policy(lower, warn, Severity.INFO)))
        assert stricter.decide(req(obj)).allowed is False
