"""Soundness of the policy lint: when it says a rule is shadowed, the earlier rule really matches everything the
later one would (checked against the exact evaluator on generated requests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.audit.policycheck import SENSITIVE, _catches_all, shadows
from kubeward.engines.auditpolicy import Attributes, UserInfo, parse_rule, rule_matches

small = lambda *xs: st.lists(st.sampled_from(xs), max_size=2, unique=True)  # noqa: E731

group_resources = st.fixed_dictionaries(
    {"group": st.sampled_from(["", "apps"])},
    optional={"resources": small("pods", "pods/log", "pods/*", "*/log", "*", "secrets", "serviceaccounts/token"),
              "resourceNames": small("a", "b")},
).filter(lambda g: not (g.get("resourceNames") and not g.get("resources")))

resource_rule = st.fixed_dictionaries(
    {"level": st.just("Metadata")},
    optional={"users": small("u1", "u2"), "userGroups": small("g1", "g2"), "verbs": small("get", "create"),
              "namespaces": small("", "ns"), "resources": st.lists(group_resources, max_size=2)},
)
url_rule = st.fixed_dictionaries(
    {"level": st.just("Metadata")},
    optional={"users": small("u1", "u2"), "verbs": small("get", "post"),
              "nonResourceURLs": small("*", "/logs", "/logs*", "/lo*", "/metrics")},
)
rules = st.one_of(resource_rule, url_rule)

attrs = st.one_of(
    st.builds(Attributes,
              user=st.one_of(st.none(), st.builds(UserInfo, st.sampled_from(["u1", "u2", "u3"]),
                                                  small("g1", "g2", "g3").map(tuple))),
              verb=st.sampled_from(["get", "create", "list"]), resource_request=st.just(True),
              namespace=st.sampled_from(["", "ns", "other"]), api_group=st.sampled_from(["", "apps"]),
              resource=st.sampled_from(["pods", "secrets", "serviceaccounts", "nodes"]),
              subresource=st.sampled_from(["", "log", "exec", "token"]), name=st.sampled_from(["", "a", "b", "c"])),
    st.builds(Attributes,
              user=st.builds(UserInfo, st.sampled_from(["u1", "u2"])), verb=st.sampled_from(["get", "post"]),
              resource_request=st.just(False), path=st.sampled_from(["/logs", "/logs/x", "/lo", "/metrics", "/x"])),
)


@settings(max_examples=400, deadline=None)
@given(rules, rules, st.lists(attrs, min_size=1, max_size=20))
def test_shadows_is_sound(ri: dict[str, Any], rj: dict[str, Any], probes: list[Attributes]) -> None:
    i, j = parse_rule(ri, 0), parse_rule(rj, 1)
    if shadows(i, j):
        for a in probes:
            if rule_matches(j, a):
                assert rule_matches(i, a), (ri, rj, a)


def test_shadows_finds_the_obvious() -> None:
    catch_all = parse_rule({"level": "None"}, 0)
    pods = parse_rule({"level": "Metadata", "resources": [{"group": "", "resources": ["pods"]}]}, 1)
    star = parse_rule({"level": "Metadata", "resources": [{"group": "", "resources": ["*"]}]}, 2)
    assert shadows(catch_all, pods) and shadows(star, pods) and not shadows(pods, star)


@settings(max_examples=300, deadline=None)
@given(resource_rule, st.sampled_from(SENSITIVE), st.sampled_from(["", "ns", "x"]), st.sampled_from(["", "a", "z"]),
       st.sampled_from(["u1", "u3"]))
def test_catches_all_is_sound(raw: dict[str, Any], s: Any, ns: str, name: str, user: str) -> None:
    rule = parse_rule(raw, 0)
    if _catches_all(rule, s):
        for verb in s.verbs:
            a = Attributes(verb, s.resource, s.subresource, s.group, ns, name, user=UserInfo(user, ("g3",)))
            assert rule_matches(rule, a)


def _ids_of(path: Any) -> dict[str, list[str]]:
    from kubeward.audit.policycheck import check_file

    found: dict[str, list[str]] = {}
    for f in check_file(str(path)).findings:
        found.setdefault(f.control.id, []).append(f.path)
    return found


def test_rule_level_omit_stages_count_for_double_logging(tmp_path: Any) -> None:
    """The GCE policy omits RequestReceived on every rule that logs, none at the policy level: nothing is
    logged twice (the apiserver unions policy and rule omitStages, checker.go)."""
    from pathlib import Path

    gce = Path(__file__).parents[1] / "data/upstream/kubernetes/gce-audit-policy.yaml"
    assert "AUDIT-POL-005" not in _ids_of(gce)
    one = tmp_path / "one.yaml"
    one.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
                   "- level: Metadata\n  resources: [{group: ''}]\n  omitStages: [RequestReceived]\n"
                   "- level: Metadata\n")
    assert _ids_of(one)["AUDIT-POL-005"] == ["/rules/1"]
    every = tmp_path / "every.yaml"
    every.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  users: [a]\n"
                     "- level: Metadata\n")
    assert _ids_of(every)["AUDIT-POL-005"] == [""]



def test_a_policy_is_named_by_its_file_not_placed_in_a_namespace(tmp_path: Any) -> None:
    """An audit Policy is a file the apiserver reads, not a namespaced object: its findings named it
    `Policy/default/` (no name, the namespaced kinds' default namespace)."""
    from kubeward.audit.policycheck import check_file

    policy = tmp_path / "audit-policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    found = check_file(str(policy)).findings
    assert [(f.control.id, f.object.namespace, f.object.name) for f in found] == [
        ("AUDIT-POL-005", None, "audit-policy.yaml")]
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nmetadata: {name: gce}\nrules:\n- level: Metadata\n")
    assert [f.object.name for f in check_file(str(policy)).findings] == ["gce"]


# k8s.io/apiserver v0.37.2 pkg/audit/policy/reader_test.go policyDefPattern (Apache License 2.0)
APISERVER_POLICY = """\
apiVersion: audit.k8s.io/{version}
kind: Policy
rules:
  - level: None
    nonResourceURLs:
      - /healthz*
      - /version
  - level: RequestResponse
    users: ["tim"]
    userGroups: ["testers", "developers"]
    verbs: ["patch", "delete", "create"]
    resources:
      - group: ""
      - group: "rbac.authorization.k8s.io"
        resources: ["clusterroles", "clusterrolebindings"]
    namespaces: ["default", "kube-system"]
  - level: Metadata
"""


@pytest.mark.parametrize(("text", "error"), [
    (APISERVER_POLICY.replace("{version}", "v1"), None),
    (APISERVER_POLICY.replace("{version}", "v1beta1"),
     "apiVersion is 'audit.k8s.io/v1beta1', expected audit.k8s.io/v1 (v1alpha1 and v1beta1 are no longer read)"),
    ("apiVersion: audit.k8s.io/v1\nkind: Policy", "no rules: the kube-apiserver refuses a policy with 0 rules"),
])
def test_policies_the_apiserver_refuses_are_errors(tmp_path: Any, text: str, error: str | None) -> None:
    """reader.go LoadPolicyFromBytes reads audit.k8s.io/v1 only and refuses 0 rules (TestPolicyCntCheck): both
    were linted as valid policies."""
    from kubeward.audit.policycheck import check_file

    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    report = check_file(str(policy))
    assert [e.message for e in report.errors] == ([] if error is None else [f"invalid audit policy: {error}"])
    assert report.objects == (1 if error is None else 0)


def test_a_field_the_apiserver_drops_is_reported(tmp_path: Any) -> None:
    """reader_test.go policyWithUnknownField: `verbs` indented under `resources` decodes leniently and is
    dropped, so the None rule silences every verb on leases; kubeward took the policy as written."""
    from kubeward.audit.policycheck import check_file

    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  resources:\n"
                      "  - group: coordination.k8s.io\n    resources:\n    - \"leases\"\n"
                      "    verbs: [\"watch\", \"get\", \"list\"] # invalid indentation on verbs\n"
                      "- level: Metadata\n  omitStages: [RequestReceived]\n  levle: x\n")
    found = [(f.path, f.location.line) for f in check_file(str(policy)).findings if f.control.id == "AUDIT-POL-009"]
    assert found == [("/rules/0/resources/0/verbs", 9), ("/rules/1/levle", 12)]
    gce = Path(__file__).parents[1] / "data/upstream/kubernetes/gce-audit-policy.yaml"
    assert "AUDIT-POL-009" not in _ids_of(gce)
