"""One --k8s-version: one parser for scan, rbac and vulns, one list of covered minors per shipped data set, and the
scan's RBAC controls judging with the bootstrap policy of the version the scan was given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubeward import apidata, k8sversion
from kubeward.cli.main import cli
from kubeward.controls.settings import ScanSettings, SettingsError, parse_k8s_version
from kubeward.k8sversion import Minor, VersionError

RBAC = "rbac.authorization.k8s.io/v1"
MANIFESTS = [
    {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "own", "namespace": "dev"}, "rules": []},
    {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "viewers", "namespace": "dev"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
     "subjects": [{"kind": "User", "name": "ann"}]},
]


@pytest.mark.parametrize(("text", "want"), [("1.30", Minor(1, 30)), ("v1.30", Minor(1, 30)),
                                            (" 1.30.2 ", Minor(1, 30)), ("1.0", Minor(1, 0)), ("1.37", Minor(1, 37))])
def test_parse(text: str, want: Minor) -> None:
    assert k8sversion.parse(text) == want
    assert parse_k8s_version(text) == (want.major, want.minor)  # the scan's spelling of the same parser


@pytest.mark.parametrize("text", ["1.x", "1.030", "2.1", "1.38", "", "v", "1.30.02", "1.30-rc.1", "1." + "9" * 50])
def test_refused(text: str) -> None:
    with pytest.raises(VersionError):
        k8sversion.parse(text)
    with pytest.raises(SettingsError):
        parse_k8s_version(text)


def test_data_sets() -> None:
    assert k8sversion.supported("api-removals")[-1] == k8sversion.NEWEST
    assert [str(v) for v in k8sversion.supported("api-data")] == list(apidata.supported_versions())
    with pytest.raises(VersionError, match=r"have: 1\.37"):
        k8sversion.require("api-data", Minor(1, 30))
    assert k8sversion.require("api-removals", Minor(1, 30)) == Minor(1, 30)


def test_rbac_and_scan_read_one_parser(tmp_path: Path) -> None:
    """The same spellings are accepted and refused by both commands."""
    f = tmp_path / "rbac.yaml"
    f.write_text("\n---\n".join(json.dumps(m) for m in MANIFESTS))
    r = CliRunner()
    ask = ["rbac", "can-i", "get", "pods", "-n", "dev", "--as", "ann", "-f", str(f), "--k8s-version"]
    ok = r.invoke(cli, [*ask, "v1.37.1"])
    assert ok.exit_code == 0, ok.output
    for bad in ("1.030", "1.36"):
        out = r.invoke(cli, [*ask, bad])
        assert out.exit_code == 2 and out.stderr.startswith("kubeward: --k8s-version ") and out.stderr.count("\n") == 1
        scan = r.invoke(cli, ["scan", str(f), "--k8s-version", bad])
        assert scan.exit_code == (2 if bad == "1.030" else 0) or scan.exit_code == 1


def test_scan_notes_a_version_without_rbac_data() -> None:
    assert ScanSettings((1, 37)).notes() == [] and ScanSettings((1, 37)).rbac_data_version == "1.37"
    old = ScanSettings((1, 30))
    assert old.rbac_data_version == "1.37"
    assert "bootstrap policy of Kubernetes 1.37" in old.notes()[0]


@pytest.fixture
def older_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """A made-up 1.36 data set whose bootstrap policy lacks the `view` ClusterRole."""
    real_load = apidata._load
    monkeypatch.setattr(apidata, "supported_versions", lambda: ("1.36", "1.37"))

    def load(name: str) -> Any:
        if name == "bootstrap-policy-v1.36.json":
            doc = dict(real_load("bootstrap-policy-v1.37.json"))
            doc["objects"] = [o for o in doc["objects"]
                              if not (o["kind"] == "ClusterRole" and o["metadata"]["name"] == "view")]
            return doc
        return real_load(name.replace("v1.36", "v1.37"))

    monkeypatch.setattr(apidata, "_load", load)


def _r103(tmp_path: Path, *args: str) -> list[str]:
    f = tmp_path / "rbac.yaml"
    f.write_text("\n---\n".join(json.dumps(m) for m in MANIFESTS))
    out = CliRunner().invoke(cli, ["scan", str(f), "-o", "json", "--fail-on", "none",
                                   "--include-controls", "KW-R103", *args])
    assert out.exit_code == 0, out.output
    return [x["object"]["name"] for x in json.loads(out.stdout)["findings"] if x["control"]["id"] == "KW-R103"]


def test_scan_rbac_controls_use_the_scan_version(tmp_path: Path, older_data: None) -> None:
    assert _r103(tmp_path) == []  # 1.37: every cluster has ClusterRole view
    assert _r103(tmp_path, "--k8s-version", "1.36") == ["viewers"]  # the 1.36 data has none
    out = CliRunner().invoke(cli, ["rbac", "can-i", "get", "pods", "-n", "dev", "--as", "ann", "-f",
                                   str(tmp_path / "rbac.yaml"), "--k8s-version", "1.36"])
    assert out.exit_code == 1  # the rbac command reads the same data for the same version
