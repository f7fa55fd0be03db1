"""Engine-backed scan controls KW-R101…KW-R105 on tests/data/rbac/cluster and small inputs."""

from __future__ import annotations

from kubeward.cli.common import load_snapshot
from kubeward.controls.registry import Selection, all_controls, run

IDS = ("KW-R101", "KW-R102", "KW-R103", "KW-R104")


def findings() -> dict[str, list[tuple[str, str, str, int | None, str]]]:
    snap = load_snapshot(["tests/data/rbac/cluster"])
    report = run(snap, Selection(include=IDS).choose(all_controls()))
    out: dict[str, list[tuple[str, str, str, int | None, str]]] = {i: [] for i in IDS}
    for f in report.findings:
        out[f.control.id].append((str(f.object), f.path, f.location.file or "", f.location.line, f.message))
    return out


def test_engine_controls() -> None:
    got = findings()
    r101 = sorted(o for o, *_ in got["KW-R101"])
    assert r101 == ["ClusterRoleBinding/helpdesk-impersonate", "RoleBinding/kube-system/ci-launch"]
    ci = next(f for f in got["KW-R101"] if f[0] == "RoleBinding/kube-system/ci-launch")
    assert ci[1] == "/roleRef" and ci[2].endswith("bindings.yaml") and ci[3] == 24
    assert "ServiceAccount kube-system/deployer" in ci[4]

    assert [(o, p) for o, p, *_ in got["KW-R102"]] == [("Pod/kube-system/deploy-bot", "/spec/serviceAccountName")]
    assert "cluster-admin via ServiceAccount kube-system/deployer" in got["KW-R102"][0][4]

    assert [(o, p) for o, p, *_ in got["KW-R103"]] == [("RoleBinding/dev/dangling", "/roleRef/name")]

    assert [o for o, *_ in got["KW-R104"]] == ["ClusterRole/crd-viewer"]
    assert 'bound ClusterRole "view" grant: secrets-read' in got["KW-R104"][0][4]


def test_web_pod_without_token_is_not_flagged() -> None:
    assert not any("web" in o for o, *_ in findings()["KW-R102"])


def _scan(*objs: dict[str, object], ids: tuple[str, ...]) -> list[tuple[str, str, str]]:
    from kubeward.resource import Resource
    from kubeward.snapshot import Snapshot

    report = run(Snapshot(Resource(o) for o in objs), Selection(include=ids).choose(all_controls()))  # type: ignore[arg-type]
    return [(f.control.id, str(f.object), f.message) for f in report.findings]


CSR_G = "certificates.k8s.io"
APPROVAL = {"apiGroups": [CSR_G], "resources": ["certificatesigningrequests/approval"], "verbs": ["update"]}
SIGNERS = {"apiGroups": [CSR_G], "resources": ["signers"], "verbs": ["approve"],
           "resourceNames": ["kubernetes.io/kube-apiserver-client"]}


def _cr(*rules: dict[str, object]) -> dict[str, object]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "csr"},
            "rules": list(rules)}


def test_csr_approval_needs_both_halves() -> None:
    assert _scan(_cr(APPROVAL), ids=("KW-R014",)) == []
    assert _scan(_cr(SIGNERS), ids=("KW-R014",)) == []
    (hit,) = _scan(_cr(APPROVAL, SIGNERS), ids=("KW-R014",))
    assert hit[:2] == ("KW-R014", "ClusterRole/csr") and "rules 0 and 1" in hit[2]
    one = {"apiGroups": [CSR_G], "resources": ["certificatesigningrequests/approval", "signers"],
           "verbs": ["update", "approve"]}
    assert "rule 0 allow" in _scan(_cr(one), ids=("KW-R014",))[0][2]
    wild = {"apiGroups": ["*"], "resources": ["*/approval", "signers"], "verbs": ["patch", "approve"]}
    assert len(_scan(_cr(wild), ids=("KW-R014",))) == 1  # */approval and patch count, as the authorizer says
    wrong_group = {"apiGroups": [""], "resources": ["certificatesigningrequests/approval", "signers"], "verbs": ["*"]}
    assert _scan(_cr(wrong_group), ids=("KW-R014",)) == []


def _binding(kind: str, name: str, role_kind: str, role: str, ns: str | None = None) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "metrics", "namespace": "monitoring"}]}


def test_missing_role_is_never_one_every_cluster_has() -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "x", "namespace": "a"},
            "rules": []}
    got = _scan(role,
                _binding("ClusterRoleBinding", "delegator", "ClusterRole", "system:auth-delegator"),
                _binding("RoleBinding", "auth-reader", "Role", "extension-apiserver-authentication-reader",
                         "kube-system"),
                _binding("ClusterRoleBinding", "viewer", "ClusterRole", "view"),
                _binding("ClusterRoleBinding", "scheduler", "ClusterRole", "system:kube-scheduler"),
                _binding("RoleBinding", "elsewhere", "Role", "extension-apiserver-authentication-reader", "monitoring"),
                _binding("ClusterRoleBinding", "typo", "ClusterRole", "system:auth-delegater"),
                ids=("KW-R103",))
    assert sorted(o for _, o, _ in got) == ["ClusterRoleBinding/typo", "RoleBinding/monitoring/elsewhere"]


def test_a_copy_the_cluster_does_not_hold_is_a_finding() -> None:
    """A scan judged RBAC with the copy `kubectl apply` keeps but said nothing of the other: the copy that grants
    nothing in the cluster is named, with the reason (replaced, or a roleRef change the apiserver refuses)."""
    def sub(obj: dict[str, object], user: str) -> dict[str, object]:
        return {**obj, "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]}

    got = _scan(sub(_binding("RoleBinding", "rb", "ClusterRole", "view", "dev"), "a"),
                sub(_binding("RoleBinding", "rb", "ClusterRole", "view", "dev"), "b"),
                sub(_binding("ClusterRoleBinding", "crb", "ClusterRole", "view"), "c"),
                sub(_binding("ClusterRoleBinding", "crb", "ClusterRole", "admin"), "d"),
                sub(_binding("RoleBinding", "rb", "ClusterRole", "view", "prod"), "e"),
                ids=("KW-R105",))
    assert sorted((o, m.split(" defined again")[1][:22]) for _, o, m in got) == [
        ("ClusterRoleBinding/crb", " with another roleRef,"), ("RoleBinding/dev/rb", " at RoleBinding dev/rb")]
    assert _scan(_binding("RoleBinding", "rb", "ClusterRole", "view", "dev"), ids=("KW-R105",)) == []
