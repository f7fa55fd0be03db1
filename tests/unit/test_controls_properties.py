"""Property tests for the newer controls: precedence, the image reference grammar, RBAC matching, coverage."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.controls.imageref import split_registry
from kubeward.controls.registry import all_controls, assessed_kinds, run, unassessed_kinds
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

ID = st.one_of(st.none(), st.sampled_from([0, 1, 33, 999, 9999, 10000, 10001, 65534, 2**31 - 1]))


def _fires(cid: str, res: Resource) -> bool:
    return bool(run(Snapshot([res]), [all_controls()[cid]]).findings)


@settings(max_examples=150, deadline=None)
@given(pod_uid=ID, c_uid=ID, pod_gid=ID, c_gid=ID, host_users=st.sampled_from([None, True, False]))
def test_low_ids_follow_container_over_pod(pod_uid: Any, c_uid: Any, pod_gid: Any, c_gid: Any, host_users: Any) -> None:
    psc = {k: v for k, v in (("runAsUser", pod_uid), ("runAsGroup", pod_gid)) if v is not None}
    sc = {k: v for k, v in (("runAsUser", c_uid), ("runAsGroup", c_gid)) if v is not None}
    spec: dict[str, Any] = {"securityContext": psc, "containers": [{"name": "c", "image": "x", "securityContext": sc}]}
    if host_users is not None:
        spec["hostUsers"] = host_users
    res = Resource({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}, "spec": spec})
    uid = c_uid if c_uid is not None else pod_uid
    gid = c_gid if c_gid is not None else pod_gid
    mapped = host_users is False
    assert _fires("KW-W057", res) == (not mapped and uid is not None and 0 < uid < 10000)
    assert _fires("KW-W058", res) == (not mapped and gid is not None and 0 < gid < 10000)


COMPONENT = st.from_regex(r"[a-z0-9]{1,6}(?:(?:_|__|-+)[a-z0-9]{1,4})?", fullmatch=True)  # no ".": not a host
HOST = st.sampled_from(["registry.example.com", "localhost", "localhost:5000", "reg:5000", "10.0.0.1:443",
                        "Registry", "docker.io", "index.docker.io", "quay.io"])


@settings(max_examples=300, deadline=None)
@given(host=st.one_of(st.none(), HOST), path=st.lists(COMPONENT, min_size=1, max_size=3))
def test_registry_split_matches_docker_normalization(host: Any, path: list[str]) -> None:
    repo = "/".join(([host] if host else []) + path)
    got = split_registry(repo)
    # normalize.go: a first element that is not localhost and has no '.', ':' or upper case is a Hub namespace
    hub = host is None or host in ("docker.io", "index.docker.io")
    want_host = "docker.io" if hub else host
    want_path = "/".join(path)
    if hub and len(path) == 1:
        want_path = f"library/{want_path}"
    assert got == (want_host, want_path)


RULE = st.fixed_dictionaries({
    "apiGroups": st.lists(st.sampled_from(["", "*", "discovery.k8s.io", "apps", "networking.k8s.io"]), min_size=1,
                          max_size=2),
    "resources": st.lists(st.sampled_from(["services", "services/status", "endpoints", "endpointslices", "*",
                                           "*/status", "nodes/status", "networkpolicies", "pods"]),
                          min_size=1, max_size=3),
    "verbs": st.lists(st.sampled_from(["get", "create", "update", "patch", "delete", "*"]), min_size=1, max_size=3),
})


def _model(rules: list[dict[str, Any]], group: str, resource: str, verbs: set[str]) -> bool:
    """evaluation_helpers.go, written out: verb, group and resource (with `*` and `*/sub`) in one rule."""
    sub = resource.partition("/")[2]
    for r in rules:
        if not (set(r["verbs"]) & (verbs | {"*"})) or not ({group, "*"} & set(r["apiGroups"])):
            continue
        if {"*", resource} & set(r["resources"]) or (sub and f"*/{sub}" in r["resources"]):
            return True
    return False


@settings(max_examples=200, deadline=None)
@given(rules=st.lists(RULE, min_size=1, max_size=3))
def test_traffic_hijack_rbac_controls_match_the_authorizer(rules: list[dict[str, Any]]) -> None:
    role = Resource({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                     "metadata": {"name": "r"}, "rules": rules})
    write = {"create", "update", "patch"}
    assert _fires("KW-R022", role) == (_model(rules, "", "services/status", {"update", "patch"})
                                       or _model(rules, "", "nodes/status", {"update", "patch"}))
    assert _fires("KW-R023", role) == (_model(rules, "", "services", write) or _model(rules, "", "endpoints", write)
                                       or _model(rules, "discovery.k8s.io", "endpointslices", write))
    assert _fires("KW-R024", role) == _model(rules, "networking.k8s.io", "networkpolicies", write | {"delete"})


KIND = st.sampled_from(["Pod", "Service", "ServiceMonitor", "Widget", "CustomResourceDefinition", "Node", "Lease"])


@settings(max_examples=100, deadline=None)
@given(objs=st.lists(st.tuples(KIND, st.sampled_from(["v1", "example.com/v1", "other.io/v2"])), max_size=12))
def test_not_assessed_counts_every_object_of_an_unjudged_kind(objs: list[tuple[str, str]]) -> None:
    resources = [Resource({"apiVersion": api, "kind": kind, "metadata": {"name": f"o{i}", "namespace": "a"}})
                 for i, (kind, api) in enumerate(objs)]
    entries = unassessed_kinds(resources)
    total = sum(int(n.reason.split()[0]) for n in entries)
    assert total == sum(1 for kind, _ in objs if kind not in assessed_kinds())
    assert len({n.what for n in entries}) == len(entries)
