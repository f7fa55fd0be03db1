"""Engine-backed scan controls KW-R101…KW-R104 on tests/data/rbac/cluster."""

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
