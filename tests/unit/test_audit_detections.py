"""Built-in detections on hand-made events (tests/data/audit/detection_cases.yaml) and the stateful ones."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeward.audit.analyzer import Analyzer, AnalyzerConfig
from kubeward.audit.detections import escalation_powers, literal_powers

CASES = yaml.safe_load((Path(__file__).parent.parent / "data/audit/detection_cases.yaml").read_text())

BASE: dict[str, Any] = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": "id-1",
    "stage": "ResponseComplete", "requestURI": "/api/v1/x", "verb": "get",
    "user": {"username": "jane@example.com", "groups": ["system:authenticated"]},
    "sourceIPs": ["10.0.0.5"], "userAgent": "kubectl/v1.30.0",
    "responseStatus": {"code": 200}, "stageTimestamp": "2024-05-01T10:00:00.000000Z",
}


def event(**over: Any) -> dict[str, Any]:
    ev = copy.deepcopy(BASE)
    ev.update(copy.deepcopy(over))
    return ev


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_detection_case(case: dict[str, Any]) -> None:
    alerts = Analyzer(config=AnalyzerConfig(burst_threshold=0)).feed(event(**case["event"]))
    assert sorted(a.rule for a in alerts) == sorted(case["expect"])


def test_messages_never_carry_configmap_values() -> None:
    ev = event(verb="create", objectRef={"resource": "configmaps", "namespace": "a", "name": "c"},
               requestObject={"data": {"password": "hunter2-s3cr3t"}})
    [alert] = Analyzer().feed(ev)
    assert "hunter2" not in str(alert.to_json()) and "password" in alert.message


def test_exec_fires_once_per_request_across_stages() -> None:
    an = Analyzer()
    ref = {"resource": "pods", "namespace": "a", "name": "p", "subresource": "exec"}
    started = event(stage="ResponseStarted", verb="create", objectRef=ref, responseStatus={"code": 101})
    done = event(stage="ResponseComplete", verb="create", objectRef=ref, responseStatus={"code": 101})
    other = event(auditID="id-2", stage="ResponseComplete", verb="create", objectRef=ref)
    assert [a.rule for a in an.feed(started)] == ["exec-attach"]
    assert an.feed(done) == []
    assert [a.rule for a in an.feed(other)] == ["exec-attach"]  # a policy omitting ResponseStarted still alerts


def _forbidden(i: int, t: float, user: str = "mallory", ip: str = "203.0.113.9") -> dict[str, Any]:
    secs = f"{t:09.6f}"
    return event(auditID=f"f{i}", verb="list", objectRef={"resource": "secrets", "namespace": "a"},
                 user={"username": user}, sourceIPs=[ip], responseStatus={"code": 403},
                 stageTimestamp=f"2024-05-01T10:00:{secs}Z")


def test_burst_sliding_window() -> None:
    an = Analyzer([], AnalyzerConfig(burst_threshold=3, burst_window=10))
    alerts = []
    # 2 events, then a gap longer than the window: no burst; then 3 inside 10 s: one alert per key (user and IP).
    for i, t in enumerate([0, 1, 20, 22, 25]):
        alerts += an.feed(_forbidden(i, t))
    assert sorted(a.message.split(" from ")[1].split(" within")[0] for a in alerts) == [
        "source IP 203.0.113.9", "user mallory"]
    assert all(a.audit_id == "f4" for a in alerts)
    # Still inside the burst: no repeat alert.
    assert an.feed(_forbidden(5, 26)) == []


def test_burst_re_arms_after_window_drains() -> None:
    an = Analyzer([], AnalyzerConfig(burst_threshold=2, burst_window=5))
    first = an.feed(_forbidden(0, 0, ip="a")) + an.feed(_forbidden(1, 1, ip="b"))
    assert [a.rule for a in first] == ["forbidden-burst"]  # the user key only: IPs differ
    assert an.feed(_forbidden(2, 30, ip="c")) == []  # window drained: below threshold, re-armed
    assert [a.rule for a in an.feed(_forbidden(3, 31, ip="d"))] == ["forbidden-burst"]


def test_burst_counts_the_impersonated_identity() -> None:
    an = Analyzer([], AnalyzerConfig(burst_threshold=2, burst_window=60))
    evs = [event(auditID=str(i), user={"username": "system:admin"}, impersonatedUser={"username": "bob"},
                 sourceIPs=[f"10.0.0.{i}"], responseStatus={"code": 403}) for i in range(2)]
    alerts = [a for e in evs for a in an.feed(e)]
    assert len(alerts) == 1 and "user bob" in alerts[0].message


def test_unexpected_source_once_per_identity() -> None:
    an = Analyzer([], AnalyzerConfig(burst_threshold=0, allowed_cidrs=("10.0.0.0/8",),
                                     allowed_user_agents=(r"^kubectl/",)))
    assert an.feed(event()) == []
    outside = event(sourceIPs=["198.51.100.7"])
    [a] = an.feed(outside)
    assert a.rule == "unexpected-source" and "198.51.100.7" in a.message
    assert an.feed(event(auditID="x", sourceIPs=["198.51.100.7"])) == []  # same user/IP/agent: once
    [b] = an.feed(event(userAgent="curl/8.0"))
    assert "user agent" in b.message


def test_disabled_detection_does_not_fire() -> None:
    ev = event(verb="get", objectRef={"resource": "secrets", "namespace": "a", "name": "s"})
    assert Analyzer(config=AnalyzerConfig(disabled=("secret-read",))).feed(ev) == []


def test_stats_count_by_rule() -> None:
    an = Analyzer()
    for i, c in enumerate(CASES):
        an.feed(event(**{"auditID": f"case-{i}", **c["event"]}))
    assert an.stats.events == len(CASES)
    assert an.stats.alerts == sum(an.stats.by_rule.values()) == sum(len(c["expect"]) for c in CASES)


@pytest.mark.parametrize(("rules", "needle"), [
    ([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}], "secrets"),
    ([{"apiGroups": ["apps"], "resources": ["secrets"], "verbs": ["get"]}], None),
    ([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}], None),
    ([{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}], "impersonate"),
    ([{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}], "proxy"),
    ([{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}], "token"),
    ([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate"]}],
     "escalate"),
])
@pytest.mark.parametrize("powers", [escalation_powers, literal_powers], ids=["engine-or-literal", "literal"])
def test_escalation_powers(rules: list[dict[str, Any]], needle: str | None, powers: Any) -> None:
    found = powers(rules)
    if needle is None:
        assert found == []
    else:
        assert any(needle in p for p in found), found


def test_binding_to_a_role_seen_with_escalation_power() -> None:
    an = Analyzer(config=AnalyzerConfig(burst_threshold=0))
    rb = {"resource": "rolebindings", "apiGroup": "rbac.authorization.k8s.io", "namespace": "a", "name": "b"}
    bind = lambda role, i: event(auditID=f"b{i}", verb="create", objectRef=rb, requestObject={  # noqa: E731
        "roleRef": {"kind": "Role", "name": role}, "subjects": [{"kind": "User", "name": "mallory"}]})
    assert an.feed(bind("reader", 0)) == []  # unknown role: no opinion
    an.feed(event(auditID="r1", verb="create", objectRef={"resource": "roles", "namespace": "a", "name": "reader"},
                  requestObject={"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}))
    [a] = an.feed(bind("reader", 1))
    assert a.rule == "escalation-binding" and "secrets" in a.message and "mallory" in a.message
    # In another namespace the same role name is a different role.
    other = event(auditID="b2", verb="create", objectRef={**rb, "namespace": "z"},
                  requestObject={"roleRef": {"kind": "Role", "name": "reader"}, "subjects": []})
    assert an.feed(other) == []
    edit = event(auditID="b3", verb="create", objectRef=rb,
                 requestObject={"roleRef": {"kind": "ClusterRole", "name": "edit"}, "subjects": []})
    assert [x.rule for x in an.feed(edit)] == ["escalation-binding"]


@pytest.mark.parametrize(("image", "repo"), [
    ("quay.io/calico/node:v3.27@sha256:abc", "quay.io/calico/node"),
    ("localhost:5000/app", "localhost:5000/app"),
    ("localhost:5000/app:1", "localhost:5000/app"),
    ("busybox", "busybox"),
])
def test_image_repository(image: str, repo: str) -> None:
    from kubeward.audit.detections import image_repository

    assert image_repository(image) == repo


def test_trusted_images_silence_pod_detections_only_when_all_are_trusted() -> None:
    an = Analyzer(config=AnalyzerConfig(burst_threshold=0, trusted_images=("quay.io/calico/node",)))
    spec = {"hostNetwork": True, "containers": [{"name": "n", "image": "quay.io/calico/node:v3"}]}
    pod = {"resource": "pods", "namespace": "kube-system", "name": "calico"}
    assert an.feed(event(verb="create", objectRef=pod, requestObject={"spec": spec})) == []
    spec2 = {**spec, "initContainers": [{"name": "i", "image": "evil/tool:1"}]}
    alerts = an.feed(event(auditID="2", verb="create", objectRef=pod, requestObject={"spec": spec2}))
    assert {a.rule for a in alerts} == {"hostnetwork-pod", "pod-in-kube-namespace"}
