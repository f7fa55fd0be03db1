"""Property tests: monotonicity (adding a binding never removes a permission), who-can ⇔ can-i, and the
inverted rule index agrees with brute-force rule evaluation."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.engines.rbac import RBACIndex, Request, UserInfo, rule_allows
from kubeward.engines.rbac.model import MASTERS
from kubeward.engines.rbac.paths import escalation_paths
from kubeward.engines.rbac.risks import find_risks
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

RBAC = "rbac.authorization.k8s.io/v1"
VERBS = ["get", "list", "create", "*"]
GROUPS = ["", "apps", "*"]
RESOURCES = ["pods", "pods/exec", "secrets", "deployments", "deployments/scale", "*/scale", "*", "pods/*"]
NAMESPACES = ["ns1", "ns2"]
USERS = ["alice", "bob", "system:serviceaccount:ns1:sa", "system:serviceaccount:ns2:sa", "*"]

rules = st.fixed_dictionaries({
    "verbs": st.lists(st.sampled_from(VERBS), min_size=1, max_size=2),
    "apiGroups": st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2),
    "resources": st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2),
}, optional={"resourceNames": st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=1),
             "nonResourceURLs": st.lists(st.sampled_from(["/healthz", "/apis/*", "*"]), min_size=1, max_size=1)})
subjects = st.one_of(
    st.builds(lambda n: {"kind": "User", "name": n}, st.sampled_from(["alice", "bob", "*"])),
    st.builds(lambda n: {"kind": "Group", "name": n}, st.sampled_from(["devs", "ops", "system:authenticated"])),
    st.builds(lambda ns: {"kind": "ServiceAccount", "name": "sa", **({"namespace": ns} if ns else {})},
              st.sampled_from(["", "ns1", "ns2"])),
)


@st.composite
def bindings(draw: Any, i: int = 0) -> dict[str, Any]:
    ns = draw(st.sampled_from(["", *NAMESPACES]))
    kind = draw(st.sampled_from(["ClusterRole", "Role"] if ns else ["ClusterRole"]))
    ref = {"kind": kind, "name": draw(st.sampled_from(["c0", "c1", "c2"] if kind == "ClusterRole" else ["r0", "r1"]))}
    meta = {"name": f"b{draw(st.integers(0, 10_000))}", **({"namespace": ns} if ns else {})}
    return {"apiVersion": RBAC, "kind": "RoleBinding" if ns else "ClusterRoleBinding", "metadata": meta,
            "roleRef": ref, "subjects": draw(st.lists(subjects, min_size=1, max_size=3))}


@st.composite
def universes(draw: Any) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for name in ("c0", "c1"):  # c2 stays missing: a dangling reference must never break anything
        objs.append({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name},
                     "rules": draw(st.lists(rules, max_size=3))})
    for ns in NAMESPACES:
        for name in ("r0",):
            objs.append({"apiVersion": RBAC, "kind": "Role", "metadata": {"name": name, "namespace": ns},
                         "rules": draw(st.lists(rules, max_size=3))})
    objs += draw(st.lists(bindings(), max_size=6))
    return objs


requests = st.one_of(
    st.builds(Request, verb=st.sampled_from(["get", "list", "create", "delete"]),
              resource=st.sampled_from(["pods", "secrets", "deployments"]), subresource=st.sampled_from(["", "exec", "scale"]),
              api_group=st.sampled_from(["", "apps"]), namespace=st.sampled_from(["", *NAMESPACES]),
              name=st.sampled_from(["", "a", "b"])),
    st.builds(Request.non_resource, st.sampled_from(["get", "post"]), st.sampled_from(["/healthz", "/apis", "/apis/v1"])),
)
users = st.builds(lambda n, g: UserInfo(n, tuple(g)), st.sampled_from(USERS),
                  st.lists(st.sampled_from(["devs", "ops", "system:authenticated"]), max_size=2, unique=True))


def index_of(objs: list[dict[str, Any]]) -> RBACIndex:
    return RBACIndex.from_snapshot(Snapshot(Resource(o) for o in objs), builtin_roles=False)  # as the reference


@settings(max_examples=300, deadline=None)
@given(universes(), bindings(), st.lists(st.tuples(users, requests), min_size=1, max_size=10))
def test_adding_a_binding_never_removes_a_permission(objs: list[dict[str, Any]], extra: dict[str, Any],
                                                     asks: list[tuple[UserInfo, Request]]) -> None:
    # a new object: a binding of a name already taken replaces that one (kubectl apply), a removal
    extra = {**extra, "metadata": {**extra["metadata"], "name": "added-binding"}}
    before, after = index_of(objs), index_of([*objs, extra])
    for user, req in asks:
        if before.authorize(user, req).allowed:
            assert after.authorize(user, req).allowed, (user, req)


@settings(max_examples=200, deadline=None)
@given(universes(), bindings(), st.lists(st.tuples(users, requests), min_size=1, max_size=10))
def test_a_binding_applied_again_under_a_taken_name_replaces_it(objs: list[dict[str, Any]], extra: dict[str, Any],
                                                                asks: list[tuple[UserInfo, Request]]) -> None:
    """`kubectl apply` of a later copy of a name is an update: the engine answers as over the inputs with the
    earlier copy taken out and the later put in its place, unless the update changes roleRef (refused: the
    earlier copy stays)."""
    kind = extra["kind"]
    taken = next((o for o in objs if o["kind"] == kind), None)
    if taken is not None:  # the update case: the name (and namespace) of a binding already in the inputs
        extra = {**extra, "metadata": dict(taken["metadata"])}
    meta = extra["metadata"]
    key = (kind, meta.get("namespace", "default") if kind == "RoleBinding" else "", meta["name"])

    def same(o: dict[str, Any]) -> bool:
        m = o["metadata"]
        return (o["kind"], m.get("namespace", "default") if o["kind"] == "RoleBinding" else "", m["name"]) == key

    old = next((o for o in objs if same(o)), None)
    refused = old is not None and old["roleRef"] != extra["roleRef"]
    expected = objs if refused else [extra if same(o) else o for o in objs] if old is not None else [*objs, extra]
    got, want = index_of([*objs, extra]), index_of(expected)
    for user, req in asks:
        assert got.authorize(user, req).allowed == want.authorize(user, req).allowed, (user, req)


def _applies(subject: Any, binding_ns: str, user: UserInfo) -> bool:
    key = subject.key(binding_ns)
    return key is not None and (key == ("user", user.name) or (key[0] == "group" and key[1] in user.groups))


@settings(max_examples=300, deadline=None)
@given(universes(), st.lists(st.tuples(users, requests), min_size=1, max_size=10))
def test_who_can_and_can_i_agree(objs: list[dict[str, Any]], asks: list[tuple[UserInfo, Request]]) -> None:
    idx = index_of(objs)
    for user, req in asks:
        allowed = idx.allowed_subjects(req)
        via_who_can = any(_applies(s, ns, user) for s, ns in allowed.subjects)
        assert idx.authorize(user, req).allowed is via_who_can, (user, req)
    masters = UserInfo("root", (MASTERS,))
    assert all(idx.authorize(masters, req).allowed for _, req in asks)


@settings(max_examples=300, deadline=None)
@given(universes(), requests)
def test_rule_index_matches_brute_force(objs: list[dict[str, Any]], req: Request) -> None:
    idx = index_of(objs)
    brute = {key for key, rs in idx.roles.items() if any(rule_allows(req, r) for r in rs)}
    assert idx._allowing_roles(req) == brute
    for g in idx.grants(req):
        found = idx.rule_for(g, req)
        assert found is not None and rule_allows(req, found[1])


junk = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8)
fields = st.sampled_from(["rules", "subjects", "roleRef", "aggregationRule", "metadata"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"]),
                          st.dictionaries(fields, junk, max_size=4)), max_size=6), requests, users)
def test_malformed_objects_never_raise(objs: list[tuple[str, dict[str, Any]]], req: Request, user: UserInfo) -> None:
    """Hostile manifests: whatever the field shapes, building and querying never raise."""
    docs = []
    for kind, body in objs:
        meta = body.get("metadata")
        docs.append({**body, "apiVersion": RBAC, "kind": kind,
                     "metadata": meta if isinstance(meta, dict) else {"name": "x"}})
    snapshot = Snapshot(Resource(o) for o in docs)
    idx = RBACIndex.from_snapshot(snapshot)
    assert isinstance(idx.authorize(user, req).allowed, bool)
    assert idx.allowed_subjects(req).subjects[0][0].name == MASTERS
    assert all(r.paths for r in find_risks(idx))
    assert all(p.steps for p in escalation_paths(idx, snapshot))


def _reference_allowed(objs: list[dict[str, Any]], user: UserInfo, req: Request) -> bool:
    """rule.go VisitRulesFor + rbac.go RuleAllows written the slow, obvious way (no indexes), with the engine's
    own aggregated rules so only binding resolution and subject matching are under test."""
    roles = index_of(objs).roles
    def applies(s: dict[str, Any], binding_ns: str) -> bool:
        kind, name = s.get("kind"), s.get("name")
        if kind == "User":
            return name == user.name
        if kind == "Group":
            return name in user.groups
        if kind == "ServiceAccount":
            ns = s.get("namespace") or binding_ns
            return bool(ns) and user.name == f"system:serviceaccount:{ns}:{name}"
        return False
    first: dict[tuple[str, str, str], dict[str, Any]] = {}
    for o in objs:  # one object per name: a second definition of a binding is not used (index.py)
        if o["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            first.setdefault((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]), o)
    crbs = [o for o in first.values() if o["kind"] == "ClusterRoleBinding"]
    rbs = [o for o in first.values() if o["kind"] == "RoleBinding" and o["metadata"]["namespace"] == req.namespace]
    for b in crbs + (rbs if req.namespace else []):
        bns = b["metadata"].get("namespace", "")
        if not any(applies(s, bns) for s in b["subjects"]):
            continue
        ref = b["roleRef"]
        key = (ref["kind"], bns if ref["kind"] == "Role" else "", ref["name"])
        if any(rule_allows(req, r) for r in roles.get(key, ())):
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(universes(), st.lists(st.tuples(users, requests), min_size=1, max_size=10))
def test_authorize_matches_unindexed_reference(objs: list[dict[str, Any]],
                                               asks: list[tuple[UserInfo, Request]]) -> None:
    idx = index_of(objs)
    for user, req in asks:
        assert idx.authorize(user, req).allowed is _reference_allowed(objs, user, req), (user, req)


labelled = st.fixed_dictionaries({
    "name": st.sampled_from(["a", "b", "c", "d", "e"]),
    "labels": st.dictionaries(st.sampled_from(["x", "y"]), st.just("1"), max_size=2),
    "selects": st.one_of(st.none(), st.sampled_from(["x", "y"])),
    "rules": st.lists(rules, max_size=2),
})


@settings(max_examples=200, deadline=None)
@given(st.lists(labelled, max_size=5, unique_by=lambda r: r["name"]), st.randoms())
def test_aggregation_does_not_depend_on_input_order(specs: list[dict[str, Any]], rnd: Any) -> None:
    objs = []
    for sp in specs:
        o: dict[str, Any] = {"apiVersion": RBAC, "kind": "ClusterRole",
                             "metadata": {"name": sp["name"], "labels": sp["labels"]}, "rules": sp["rules"]}
        if sp["selects"]:
            o["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {sp["selects"]: "1"}}]}
        objs.append(o)
    shuffled = objs[:]
    rnd.shuffle(shuffled)
    a = RBACIndex.from_snapshot(Snapshot(Resource(o) for o in objs), builtin_roles=False)
    b = RBACIndex.from_snapshot(Snapshot(Resource(o) for o in shuffled), builtin_roles=False)
    assert a.roles == b.roles
