"""audit2rbac: generated RBAC allows every observed request and nothing sensitive that was not observed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.audit.audit2rbac import Observed, collect, covered, generate
from kubeward.audit.reader import ReadStats, iter_events
from kubeward.cli.main import cli
from vendored import AUDIT_SAMPLE

SAMPLE = str(AUDIT_SAMPLE)
SEQ = Path(__file__).parent.parent / "data/audit/audit2rbac-alice.jsonl"


def events(path: Path | str) -> list[dict[str, Any]]:
    return list(iter_events([str(path)], ReadStats()))


# Requests alice may make after applying the output, and ones she must still be refused.
OBSERVED = [
    Observed("get", "", "secrets", "", "app", "db"),
    Observed("get", "", "secrets", "", "app", "api-key"),
    Observed("list", "", "configmaps", "", "app"),
    Observed("create", "apps", "deployments", "", "app"),
    Observed("patch", "apps", "deployments", "", "app", "web"),
    Observed("create", "", "pods", "exec", "app", "web-0"),
    Observed("get", "", "nodes", "", "", "node-1"),
    Observed("watch", "", "pods", "", ""),
    Observed("get", path="/metrics"),
]
UNOBSERVED_SENSITIVE = [
    Observed("get", "", "secrets", "", "app", "other"),
    Observed("list", "", "secrets", "", "app"),
    Observed("get", "", "secrets", "", "kube-system", "db"),
    Observed("delete", "apps", "deployments", "", "app", "web"),
    Observed("patch", "apps", "deployments", "", "app", "other"),
    Observed("create", "", "pods", "exec", "app", "db-0"),
    Observed("create", "", "pods", "exec", "kube-system", "web-0"),
    Observed("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", ""),
    Observed("escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", "admin"),
    Observed("get", "", "nodes", "", "", "node-2"),
    Observed("create", "", "serviceaccounts", "token", "app", "default"),
    Observed("get", path="/debug/pprof"),
]


def test_hand_made_sequence_collects_exactly_the_allowed_requests() -> None:
    got = collect(events(SEQ), "alice")
    # The 403, bob's request, the RequestReceived duplicate and discovery are left out; impersonation counts.
    assert sorted(got) == sorted(OBSERVED)


def test_generated_objects_shape() -> None:
    docs = generate(set(OBSERVED), "alice")
    kinds = [(d["kind"], d["metadata"].get("namespace", "")) for d in docs]
    assert kinds == [("ClusterRole", ""), ("ClusterRoleBinding", ""), ("Role", "app"), ("RoleBinding", "app")]
    role = docs[2]
    secrets = [r for r in role["rules"] if "secrets" in r["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["api-key", "db"],
                        "verbs": ["get"]}]
    assert docs[1]["subjects"] == [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]


def test_self_contained_cover_check() -> None:
    docs = generate(set(OBSERVED), "alice")
    assert all(covered(docs, o) for o in OBSERVED)
    assert not any(covered(docs, o) for o in UNOBSERVED_SENSITIVE)


def test_rbac_engine_allows_observed_and_denies_the_rest() -> None:
    rbac = pytest.importorskip("kubeward.engines.rbac", reason="the RBAC engine is not importable in this tree")
    from kubeward.resource import Resource
    from kubeward.snapshot import Snapshot

    docs = generate(set(OBSERVED), "alice")
    index = rbac.RBACIndex.from_snapshot(Snapshot([Resource(d) for d in docs]))
    user = rbac.user_info("alice")

    def req(o: Observed) -> Any:
        if not o.resource_request:
            return rbac.Request.non_resource(o.verb, o.path)
        return rbac.Request(o.verb, o.resource, o.subresource, o.api_group, o.namespace, o.name)

    for o in OBSERVED:
        assert index.authorize(user, req(o)).allowed, o
    for o in UNOBSERVED_SENSITIVE:
        assert not index.authorize(user, req(o)).allowed, o


def test_serviceaccount_subject_and_cli(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["audit2rbac", SAMPLE, "--serviceaccount", "ns1:sa1", "--include-denied"])
    assert r.exit_code == 0, r.stderr
    docs = list(yaml.safe_load_all(r.stdout))
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sa1", "namespace": "ns1"}]
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list"]}]


def test_sample_log_bob_allowed_only() -> None:
    r = CliRunner().invoke(cli, ["audit2rbac", SAMPLE, "--user", "bob", "-o", "json"])
    assert r.exit_code == 0
    items = orjson.loads(r.stdout)["items"]
    assert [(d["kind"], d["metadata"].get("namespace")) for d in items] == [("Role", "default"),
                                                                           ("RoleBinding", "default")]
    assert items[0]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]


@pytest.mark.parametrize(("args", "needle"), [
    ([SAMPLE], "exactly one of"),
    ([SAMPLE, "--user", "a", "--serviceaccount", "x:y"], "exactly one of"),
    ([SAMPLE, "--serviceaccount", "nocolon"], "expected NS:NAME"),
    ([SAMPLE, "--user", "nobody"], "nobody: no allowed requests"),
    (["/no/file", "--user", "bob"], "No such file"),
])
def test_cli_errors(args: list[str], needle: str) -> None:
    r = CliRunner().invoke(cli, ["audit2rbac", *args])
    assert r.exit_code == 2 and needle in r.stderr and "Traceback" not in r.stderr


obs_st = st.builds(
    Observed,
    verb=st.sampled_from(["get", "list", "create", "delete"]),
    api_group=st.sampled_from(["", "apps"]),
    resource=st.sampled_from(["pods", "secrets"]),
    subresource=st.sampled_from(["", "", "exec"]),
    namespace=st.sampled_from(["", "a", "b"]),
    name=st.sampled_from(["", "x", "y"]),
)


@settings(max_examples=150, deadline=None)
@given(st.sets(obs_st, min_size=1, max_size=8), obs_st)
def test_generated_rbac_is_exact(observed: set[Observed], probe: Observed) -> None:
    docs = generate(observed, "u")
    assert all(covered(docs, o) for o in observed)
    if covered(docs, probe):
        # Only what was observed is granted: same verb and resource, in its namespace or via a cluster-wide
        # request, and the same object unless some such request named none.
        same = [o for o in observed if (o.verb, o.api_group, o.combined) == (probe.verb, probe.api_group,
                                                                              probe.combined)
                and o.namespace in (probe.namespace, "")]
        assert same
        assert any(o.name in (probe.name, "") for o in same)


def test_rule_self_check_uses_the_engine_matching() -> None:
    """Generated rules are checked with the RBAC engine's RuleAllows: `*` verbs, `*/sub` resources and URL
    prefixes (a trailing run of `*` is one wildcard, strings.TrimRight in evaluation_helpers.go)."""
    from kubeward.audit.audit2rbac import Observed, rule_covers

    logs = Observed(verb="get", resource="pods", subresource="log", namespace="ns", name="p")
    assert rule_covers({"verbs": ["*"], "apiGroups": [""], "resources": ["*/log"]}, logs)
    assert not rule_covers({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, logs)
    assert not rule_covers({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"], "resourceNames": ["q"]},
                           logs)
    ready = Observed(verb="get", path="/healthz/ready")
    assert rule_covers({"verbs": ["get"], "nonResourceURLs": ["/healthz**"]}, ready)
    assert not rule_covers({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, ready)


def test_one_user_type_across_the_engines() -> None:
    from kubeward import identity
    from kubeward.engines import auditpolicy
    from kubeward.engines.rbac import model

    assert auditpolicy.UserInfo is model.UserInfo is identity.UserInfo
    assert model.user_info("system:serviceaccount:ns:app").groups == (
        "system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")


@pytest.mark.parametrize("args", [["--serviceaccount", "ns1:sa1"], ["--serviceaccount", "ns1/sa1"],
                                  ["--serviceaccount", "ServiceAccount:ns1:sa1"],
                                  ["--user", "system:serviceaccount:ns1:sa1"], ["--user", "ServiceAccount:ns1:sa1"],
                                  ["--user", "ns1/sa1"]])
def test_subjects_read_by_the_one_parser(args: list[str]) -> None:
    r = CliRunner().invoke(cli, ["audit2rbac", SAMPLE, *args, "--include-denied"])
    assert r.exit_code == 0, r.stderr
    binding = next(d for d in yaml.safe_load_all(r.stdout) if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sa1", "namespace": "ns1"}]


def test_user_kind_prefix_and_group_refused() -> None:
    r = CliRunner().invoke(cli, ["audit2rbac", SAMPLE, "--user", "User:bob"])
    assert r.exit_code == 0 and "bob" in r.stdout
    r = CliRunner().invoke(cli, ["audit2rbac", SAMPLE, "--user", "Group:devs"])
    assert r.exit_code == 2 and "a group makes no requests" in r.stderr
