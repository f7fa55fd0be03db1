"""Risks, escalation paths and the bootstrap-style admin ← edit ← view aggregation chain."""

from __future__ import annotations

from typing import Any

from kubeward.engines.rbac import RBACIndex, Request, user_info
from kubeward.engines.rbac.paths import escalation_paths
from kubeward.engines.rbac.risks import find_risks
from kubeward.engines.rbac.workloads import pods_by_service_account
from kubeward.findings import Severity
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

RBAC = "rbac.authorization.k8s.io/v1"
AGG = "rbac.authorization.k8s.io/aggregate-to-"


def cr(name: str, *rules: dict[str, Any], labels: dict[str, str] | None = None,
       selects: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": RBAC, "kind": "ClusterRole",
                           "metadata": {"name": name, "labels": labels or {}}, "rules": list(rules)}
    if selects:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {AGG + selects: "true"}}]}
    return obj


def rule(verbs: str, groups: str, resources: str, names: str = "") -> dict[str, Any]:
    r: dict[str, Any] = {"verbs": verbs.split(","), "apiGroups": groups.split(","), "resources": resources.split(",")}
    if names:
        r["resourceNames"] = names.split(",")
    return r


def bind(name: str, role: str, *subjects: str, ns: str = "", role_kind: str = "ClusterRole") -> dict[str, Any]:
    subs = []
    for s in subjects:
        kind, _, rest = s.partition(":")
        if kind == "ServiceAccount":
            sns, _, sname = rest.partition("/")
            subs.append({"kind": kind, "namespace": sns, "name": sname})
        else:
            subs.append({"kind": kind, "name": rest})
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": RBAC, "kind": "RoleBinding" if ns else "ClusterRoleBinding", "metadata": meta,
            "roleRef": {"kind": role_kind, "name": role}, "subjects": subs}


def snap(*objs: dict[str, Any]) -> Snapshot:
    return Snapshot(Resource(o) for o in objs)


BOOTSTRAP = (
    cr("admin", selects="admin"),
    cr("edit", labels={AGG + "admin": "true"}, selects="edit"),
    cr("view", labels={AGG + "edit": "true"}, selects="view"),
    cr("system:aggregate-to-admin", rule("create", "rbac.authorization.k8s.io", "rolebindings"),
       labels={AGG + "admin": "true"}),
    cr("system:aggregate-to-edit", rule("create,delete", "", "pods,secrets"), labels={AGG + "edit": "true"}),
    cr("system:aggregate-to-view", rule("get,list", "", "pods"), labels={AGG + "view": "true"}),
)


def test_nested_aggregation_like_bootstrap_policy() -> None:
    s = snap(*BOOTSTRAP, bind("a", "admin", "User:ann", ns="dev"), bind("e", "edit", "User:ed", ns="dev"),
             bind("v", "view", "User:vi", ns="dev"))
    idx = RBACIndex.from_snapshot(s)
    can = lambda u, v, r, g="": idx.authorize(user_info(u), Request(v, r, "", g, "dev")).allowed  # noqa: E731
    assert can("ann", "get", "pods") and can("ann", "create", "secrets") and can("ann", "create", "rolebindings",
                                                                                  "rbac.authorization.k8s.io")
    assert can("ed", "get", "pods") and can("ed", "delete", "pods")
    assert not can("ed", "create", "rolebindings", "rbac.authorization.k8s.io")
    assert can("vi", "list", "pods") and not can("vi", "create", "pods")
    assert idx.aggregated_from["admin"] == ("edit", "system:aggregate-to-admin")


def categories(risks: list[Any], who: str) -> dict[tuple[str, str], Severity]:
    return {(r.category.id, r.namespace): r.severity for r in risks if r.subject_text == who}


def test_risk_scope_severity_and_cluster_only() -> None:
    s = snap(
        cr("reader", rule("get", "", "secrets")),
        cr("proxy", rule("get", "", "nodes/proxy")),
        cr("csr", rule("update", "certificates.k8s.io", "certificatesigningrequests/approval"),
           rule("approve", "certificates.k8s.io", "signers", names="kubernetes.io/kube-apiserver-client")),
        bind("r1", "reader", "User:u", ns="apps"),
        bind("r2", "reader", "User:k", ns="kube-system"),
        bind("r3", "proxy", "User:u", ns="apps"),  # nodes/proxy is cluster-scoped: a RoleBinding grants nothing
        bind("r4", "proxy", "User:p"),
        bind("r5", "csr", "User:c"),
        bind("r6", "reader", "User:both"), bind("r7", "reader", "User:both", ns="apps"),
    )
    risks = find_risks(RBACIndex.from_snapshot(s))
    assert categories(risks, "User u") == {("secrets-read", "apps"): Severity.HIGH}  # lowered outside kube-system
    assert categories(risks, "User k") == {("secrets-read", "kube-system"): Severity.CRITICAL}
    assert categories(risks, "User p") == {("nodes-proxy", ""): Severity.HIGH}
    assert categories(risks, "User c") == {("csr-approve", ""): Severity.CRITICAL}  # both probes needed
    assert categories(risks, "User both") == {("secrets-read", ""): Severity.CRITICAL}  # namespace grant redundant
    csr = next(r for r in risks if r.subject_text == "User c")
    assert [p.binding.name for p in csr.paths] == ["r5", "r5"]
    assert "only kubernetes.io/kube-apiserver-client" in csr.paths[1].describe()


def test_risks_list_pods_of_service_account_groups() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ci"},
           "spec": {"containers": [{"name": "c", "image": "i"}]}}
    s = snap(cr("runner", rule("create", "", "pods")),
             bind("g", "runner", "Group:system:serviceaccounts:ci", ns="ci"), pod)
    risks = find_risks(RBACIndex.from_snapshot(s), pods_by_service_account(s))
    (r,) = [r for r in risks if r.category.id == "pods-create" and r.subject_text.startswith("Group system:")]
    assert [str(p) for p in r.pods] == ["Pod/ci/p"]


def paths_of(*objs: dict[str, Any], start: str | None = None) -> list[str]:
    s = snap(cr("cluster-admin", rule("*", "*", "*")), bind("root", "cluster-admin", "ServiceAccount:kube-system/boss"),
             *objs)
    return [str(p) for p in escalation_paths(RBACIndex.from_snapshot(s), s, start)]


def test_paths_token_create_respects_resource_names() -> None:
    got = paths_of(cr("tok", rule("create", "", "serviceaccounts/token", names="boss")),
                   bind("t", "tok", "User:eve", ns="kube-system"))
    assert len(got) == 1 and got[0].startswith("User eve -[create tokens for kube-system/boss")
    assert paths_of(cr("tok", rule("create", "", "serviceaccounts/token", names="other")),
                    bind("t", "tok", "User:eve", ns="kube-system")) == []


def test_paths_bind_escalate_impersonate_csr_and_groups() -> None:
    objs = (
        cr("binder", rule("bind", "rbac.authorization.k8s.io", "clusterroles"),
           rule("create", "rbac.authorization.k8s.io", "clusterrolebindings")),
        cr("bind-only", rule("bind", "rbac.authorization.k8s.io", "clusterroles")),
        cr("esc", rule("escalate,update", "rbac.authorization.k8s.io", "clusterroles")),
        cr("imp", rule("impersonate", "", "groups", names="system:masters")),
        cr("csr", rule("create", "certificates.k8s.io", "certificatesigningrequests"),
           rule("update", "certificates.k8s.io", "certificatesigningrequests/approval"),
           rule("approve", "certificates.k8s.io", "signers")),
        cr("pods", rule("create", "", "pods")),
        bind("b1", "binder", "User:b"), bind("b2", "bind-only", "User:nob"), bind("b3", "esc", "User:e"),
        bind("b4", "imp", "User:i"), bind("b5", "csr", "User:c"),
        bind("b6", "pods", "Group:system:serviceaccounts:dev", ns="kube-system"),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x", "namespace": "dev"}},
    )
    got = paths_of(*objs)
    starts = {line.split(" -[")[0] for line in got}
    assert {"User b", "User e", "User i", "User c", "Group system:serviceaccounts:dev"} <= starts
    assert "ServiceAccount dev/x" not in starts  # its group's line stands for it
    assert "User nob" not in starts  # bind without create clusterrolebindings is not enough
    assert "ServiceAccount kube-system/boss" not in starts  # already full authority
    (x,) = paths_of(*objs, start="ServiceAccount dev/x")
    assert x.split(" -[")[1].startswith("member of]-> Group system:serviceaccounts:dev")
    assert x.endswith("-> cluster-admin")


def test_members_of_a_full_authority_group_are_not_escalations() -> None:
    got = paths_of(bind("all", "cluster-admin", "Group:system:authenticated"),
                   {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x", "namespace": "dev"}},
                   bind("u", "cluster-admin", "User:someone", ns="dev"))
    assert got == []


def test_paths_read_a_token_secret() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
              "metadata": {"name": "boss-token", "namespace": "kube-system",
                           "annotations": {"kubernetes.io/service-account.name": "boss"}}}
    got = paths_of(secret, cr("peek", rule("get", "", "secrets", names="boss-token")),
                   bind("p", "peek", "User:mallory", ns="kube-system"))
    assert got == ['User mallory -[read token Secret kube-system/boss-token (RoleBinding "p/kube-system" of '
                   'ClusterRole "peek")]-> ServiceAccount kube-system/boss -[full authority (ClusterRoleBinding '
                   '"root" of ClusterRole "cluster-admin")]-> cluster-admin']
    assert paths_of(secret, cr("peek", rule("list", "", "secrets", names="boss-token")),
                    bind("p", "peek", "User:mallory", ns="kube-system")) == []


def test_a_binding_defined_twice_is_the_last_one_applied() -> None:
    """Two files applying one binding name leave one object: `kubectl apply` creates the first and patches it
    with the second, so the second's subjects hold and the first's are gone (as the NetworkPolicy engine already
    took it); the engine kept the first before, and so missed what the later file grants."""
    s = snap(*BOOTSTRAP, bind("b", "view", "User:old"), bind("b", "view", "User:new"),
             bind("rb", "view", "User:x", ns="dev"), bind("rb", "view", "User:y", ns="dev"),
             bind("rb", "view", "User:z", ns="prod"))
    idx = RBACIndex.from_snapshot(s)
    can = lambda u, ns: idx.authorize(user_info(u), Request("get", "pods", "", "", ns)).allowed  # noqa: E731
    assert can("new", "dev") and not can("old", "dev")
    assert can("y", "dev") and not can("x", "dev") and can("z", "prod")
    assert [p for p in idx.problems if "Binding" in p] == [
        "ClusterRoleBinding b: ClusterRoleBinding defined again at ClusterRoleBinding b: "
        "only the last definition is used",
        "RoleBinding dev/rb: RoleBinding defined again at RoleBinding dev/rb: only the last definition is used"]


def test_a_later_copy_changing_roleref_is_refused_as_the_apiserver_does() -> None:
    """ValidateRoleBindingUpdate refuses a roleRef change, so `kubectl apply` of the second copy fails and the
    first stays: the second copy's subjects must not be granted, and its refusal is named."""
    s = snap(*BOOTSTRAP, bind("b", "view", "User:old"), bind("b", "cluster-admin", "User:new"),
             cr("ro", rule("get", "", "pods")), cr("ro", rule("get", "", "secrets")),
             bind("r", "ro", "User:reader"))
    idx = RBACIndex.from_snapshot(s)
    can = lambda u, res: idx.authorize(user_info(u), Request("get", res, "", "", "dev")).allowed  # noqa: E731
    assert can("old", "pods") and not can("new", "pods") and not can("new", "secrets")
    assert can("reader", "secrets") and not can("reader", "pods")
    assert [p for p in idx.problems if "defined again" in p] == [
        "ClusterRole ro: ClusterRole defined again at ClusterRole ro: only the last definition is used",
        "ClusterRoleBinding b: ClusterRoleBinding defined again with another roleRef, which the apiserver refuses "
        "as an update (roleRef: field is immutable): ClusterRoleBinding b is used"]
