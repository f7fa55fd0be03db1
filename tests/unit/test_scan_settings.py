"""`scan --k8s-version` and `--allowed-registries`: parsed strictly, passed to the controls, bad values exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.controls.apis import table
from kubeward.controls.registry import all_controls
from kubeward.controls.settings import (
    NEWEST_MINOR,
    SettingsError,
    current,
    parse_allowed_registries,
    parse_k8s_version,
)
from kubeward.controls.workload import split_registry

MANIFEST = """\
apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
kind: FlowSchema
metadata: {name: f}
spec: {}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: app}
spec:
  containers:
  - {name: c, image: "nginx:1.25"}
  - {name: d, image: "registry.example.com/team/web:1"}
"""


def _ids(tmp_path: Path, *args: str) -> tuple[int, list[tuple[str, str]]]:
    f = tmp_path / "m.yaml"
    f.write_text(MANIFEST)
    out = CliRunner().invoke(cli, ["scan", str(f), "-o", "json", "--fail-on", "critical", *args])
    doc = json.loads(out.stdout)
    return out.exit_code, [(x["control"]["id"], x["path"]) for x in doc["findings"]
                           if x["control"]["id"] in ("KW-A001", "KW-A002", "KW-W061")]


def test_k8s_version_selects_removed_or_deprecated(tmp_path: Path) -> None:
    assert _ids(tmp_path) == (0, [("KW-A001", "/apiVersion")])  # default: newest supported, v1beta3 gone in 1.32
    assert _ids(tmp_path, "--k8s-version", "1.31")[1] == [("KW-A002", "/apiVersion")]
    assert _ids(tmp_path, "--k8s-version", "v1.28.3")[1] == []
    assert current().k8s_version == (1, NEWEST_MINOR)  # restored after the scan


def test_allowed_registries_option(tmp_path: Path) -> None:
    code, ids = _ids(tmp_path, "--allowed-registries", "registry.example.com")
    assert code == 0  # --fail-on critical: the high findings alone do not fail
    # nginx resolves to docker.io/library/nginx
    assert ("KW-W061", "/spec/containers/0/image") in ids and ("KW-W061", "/spec/containers/1/image") not in ids
    allowed = _ids(tmp_path, "--allowed-registries", "registry.example.com,docker.io/library")[1]
    assert [i for i in allowed if i[0] == "KW-W061"] == []


@pytest.mark.parametrize("args", [["--k8s-version", "1.38"], ["--k8s-version", "2.1"], ["--k8s-version", "1.030"],
                                  ["--allowed-registries", "https://registry.example.com"],
                                  ["--allowed-registries", "nginx:1.25"]])
def test_bad_settings_exit_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(MANIFEST)
    out = CliRunner().invoke(cli, ["scan", str(f), *args])
    assert out.exit_code == 2
    assert out.stderr.startswith("kubeward: ") and "Traceback" not in out.stderr


def test_parsers() -> None:
    assert parse_k8s_version("1.30") == (1, 30) == parse_k8s_version(" v1.30.2 ")
    with pytest.raises(SettingsError):
        parse_k8s_version("1.x")
    assert parse_allowed_registries(("index.docker.io/library", " ghcr.io/acme/ ")) == ("docker.io/library", "ghcr.io/acme")


@pytest.mark.parametrize("repo,expected", [
    ("nginx", ("docker.io", "library/nginx")),
    ("docker.io/nginx", ("docker.io", "library/nginx")),
    ("index.docker.io/bitnami/redis", ("docker.io", "bitnami/redis")),
    ("bitnami/redis", ("docker.io", "bitnami/redis")),
    ("localhost/web", ("localhost", "web")),
    ("localhost:5000/a/b", ("localhost:5000", "a/b")),
    ("registry:5000/web", ("registry:5000", "web")),
    ("Registry/web", ("Registry", "web")),  # upper case: a host, never a Docker Hub namespace
    ("[::1]:5000/web", ("[::1]:5000", "web")),
    ("quay.io/org/sub/img", ("quay.io", "org/sub/img")),
    ("docker.io/Nginx", None),
    ("a b/c", None),
    ("quay.io/x//y", None),
])
def test_split_registry_follows_the_reference_grammar(repo: str, expected: tuple[str, str] | None) -> None:
    assert split_registry(repo) == expected


def test_deprecation_table_is_consistent() -> None:
    rows = table()
    assert len(rows) >= 45
    for (api, kind), e in rows.items():
        assert "/" in api or api == "v1", api
        assert e.removed_in is None or e.deprecated_in < e.removed_in, (api, kind)
        assert e.removed_in is None or e.removed_in[1] <= NEWEST_MINOR
    # every kind of the table is a kind the API-version controls read
    assert {k for _, k in rows} <= all_controls()["KW-A001"].kinds


def test_two_process_scan_sees_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        (tmp_path / f"f{i}.yaml").write_text(MANIFEST.replace("name: f}", f"name: f{i}}}").replace("name: p,", f"name: p{i},"))
    outs = []
    for workers in ("1", "2"):
        monkeypatch.setenv("KUBEWARD_WORKERS", workers)
        out = CliRunner().invoke(cli, ["scan", str(tmp_path), "-o", "json", "--k8s-version", "1.31",
                                       "--allowed-registries", "registry.example.com"])
        outs.append(out.stdout)
    assert outs[0] == outs[1]
    ids = [f["control"]["id"] for f in json.loads(outs[1])["findings"]]
    assert ids.count("KW-A002") == 4 and ids.count("KW-W061") == 4 and "KW-A001" not in ids
