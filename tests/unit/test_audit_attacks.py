"""Real-shaped events (tests/data/audit/attack_cases.yaml): attempts worded and graded as attempts, the shared
control-plane allow-list, pod facts from the scan's controls, workloads planted in kube-system, the new rules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kubeward.audit.analyzer import Analyzer, AnalyzerConfig
from kubeward.audit.detections import Settings, builtin

DATA = Path(__file__).parent.parent / "data/audit"
ATTACKS = yaml.safe_load((DATA / "attack_cases.yaml").read_text())["cases"]
CASES = yaml.safe_load((DATA / "detection_cases.yaml").read_text())


@pytest.mark.parametrize("case", ATTACKS, ids=lambda c: c["name"])
def test_attack_case(case: dict[str, Any]) -> None:
    an = Analyzer(config=AnalyzerConfig(burst_threshold=0))
    alerts = [a for ev in case["events"] for a in an.feed(copy.deepcopy(ev))]
    assert [a.rule for a in alerts] == case["expect"]
    if "severities" in case:
        assert [a.severity.label for a in alerts] == case["severities"]
    for a, needle in zip(alerts, case.get("messages", ()), strict=False):
        assert needle in a.message, (needle, a.message)


def test_every_builtin_detection_has_a_positive_case() -> None:
    fired = {r for c in CASES for r in c["expect"]} | {r for c in ATTACKS for r in c["expect"]}
    settings = Settings(disallowed_users=frozenset({"x"}), disallowed_namespaces=frozenset({"y"}))
    missing = {d.id for d in builtin(settings)} - fired - {"disallowed-user", "disallowed-namespace"}
    assert not missing


def _pod(code: int, **over: Any) -> dict[str, Any]:
    ev = copy.deepcopy(ATTACKS[2]["events"][0])
    ev["responseStatus"] = {"code": code}
    ev.update(over)
    return ev


def test_no_rule_words_a_refused_request_as_done() -> None:
    an = Analyzer(config=AnalyzerConfig(burst_threshold=0))
    for case in ATTACKS:
        for ev in case["events"]:
            ev = copy.deepcopy(ev)
            ev["responseStatus"] = {"code": 403, "status": "Failure", "reason": "Forbidden"}
            for a in an.feed(ev):
                assert a.outcome == {"code": 403, "allowed": False, "reason": "Forbidden"}
                if a.rule != "secret-access-denied":  # a rule about refusals, worded as one
                    assert a.message.startswith("refused attempt (code 403 Forbidden)"), a.message


def test_attempt_is_one_severity_lower_and_done_keeps_its_own() -> None:
    an = Analyzer(config=AnalyzerConfig(burst_threshold=0))
    [done] = an.feed(_pod(201, auditID="d"))
    [tried] = an.feed(_pod(422, auditID="t"))
    assert (done.severity.label, tried.severity.label) == ("high", "medium")
    assert done.message.startswith("pod web/priv created with a privileged container")
    assert done.field == "/requestObject/spec/containers/0/securityContext/privileged"


def test_repeated_attempts_feed_the_burst() -> None:
    an = Analyzer(config=AnalyzerConfig(burst_threshold=3, burst_window=60))
    rules = [a.rule for i in range(3) for a in an.feed(_pod(422, auditID=f"a{i}"))]  # 422: admission said no
    assert rules.count("privileged-pod") == 3 and rules.count("forbidden-burst") == 2  # per user and per IP


def test_control_plane_allow_list_is_configurable() -> None:
    ev = copy.deepcopy(ATTACKS[5]["events"][0])  # the service account reading a registry secret
    from kubeward.audit.identities import Identities

    ids = Identities(users=frozenset({"system:serviceaccount:web:app"}), prefixes=(), groups=frozenset())
    assert Analyzer(config=AnalyzerConfig(burst_threshold=0, identities=ids)).feed(copy.deepcopy(ev)) == []
    assert [a.rule for a in Analyzer(config=AnalyzerConfig(burst_threshold=0)).feed(ev)] == ["secret-read"]


def test_impersonating_a_controller_is_not_exempt() -> None:
    ev = copy.deepcopy(ATTACKS[5]["events"][0])
    ev["user"] = {"username": "mallory@example.com"}
    ev["impersonatedUser"] = {"username": "system:serviceaccount:kube-system:expand-controller"}
    assert {a.rule for a in Analyzer(config=AnalyzerConfig(burst_threshold=0)).feed(ev)} == {
        "secret-read", "impersonation"}


def test_disallowed_users_and_namespaces() -> None:
    s = Settings(disallowed_users=frozenset({"admin"}), disallowed_namespaces=frozenset({"prod-pci"}))
    an = Analyzer(builtin(s), AnalyzerConfig(burst_threshold=0))
    ev = copy.deepcopy(ATTACKS[0]["events"][0])
    ev["user"] = {"username": "admin"}
    ev["objectRef"]["namespace"] = "prod-pci"
    assert {a.rule for a in an.feed(ev)} >= {"disallowed-user", "disallowed-namespace", "dangerous-capabilities"}


_vals = st.sampled_from([None, True, False, 0, 1, "true", [], {}])
_sc = st.fixed_dictionaries({}, optional={
    "privileged": _vals, "capabilities": st.fixed_dictionaries({}, optional={
        "add": st.one_of(_vals, st.lists(st.sampled_from(["SYS_ADMIN", "NET_RAW", "CHOWN", "bpf", "CAP_BPF"]))),
        "drop": st.just(["ALL"])})})
_container = st.fixed_dictionaries({"name": st.just("c")}, optional={"securityContext": st.one_of(_sc, _vals)})
_spec = st.fixed_dictionaries({}, optional={
    "hostPID": _vals, "hostIPC": _vals, "hostNetwork": _vals,
    "volumes": st.lists(st.one_of(st.just({"name": "e", "emptyDir": {}}),
                                  st.builds(lambda p: {"name": "h", "hostPath": {"path": p}},
                                            st.sampled_from(["/etc/", "//proc", "/data", "/var/run/docker.sock"])))),
    "containers": st.lists(_container, max_size=2), "initContainers": st.lists(_container, max_size=1)})


@given(_spec)
def test_pod_gates_are_never_narrower_than_the_controls(spec: dict[str, Any]) -> None:
    from kubeward.audit import podfacts

    ev = {"objectRef": {"resource": "pods"}, "requestObject": {"kind": "Pod", "spec": spec}}
    gated = podfacts._judge(ev)
    view = podfacts.pod_view(ev)
    assert view is not None
    full = {g: [(f"/requestObject{p}", m) for cid in g for p, m in podfacts._control(cid)(view)]
            for g in podfacts.ALL_GROUPS}
    assert {g: h for g, h in full.items() if h} == {g: h for g, h in gated.items() if h}
