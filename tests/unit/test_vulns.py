"""`kubeward vulns`: the shipped feed held against an independent evaluator for a table of versions, the versions
found in manifests and dumps, the data's date and age, and the command through the normal formats."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.findings import NotAssessed
from kubeward.resource import Resource
from kubeward.vulns.components import Found, from_release, from_resources, image_component, read_version
from kubeward.vulns.cvss import base_score
from kubeward.vulns.feed import shipped
from kubeward.vulns.report import build
from kubeward.vulns.semver import parse

DATA = Path(__file__).parents[2] / "src/kubeward/data/k8s-cve-feed-osv.json.gz"
TABLE = ["1.24.0", "1.27.12", "1.28.8", "1.29.3", "1.30.0", "1.31.1", "1.37.2"]
RELEASE_PACKAGES = {"k8s.io/apiserver", "k8s.io/kubernetes", "k8s.io/controller-manager", "k8s.io/kubelet",
                    "k8s.io/kube-proxy"}


def tiny_affected(version: str, events: list[dict[str, str]]) -> bool:
    """A second evaluator for the feed's plain X.Y.Z versions: integer tuples, intervals [introduced, fixed)."""
    def t(v: str) -> tuple[int, ...]:
        return (-1,) if v == "0" else tuple(int(x) for x in v.split("."))

    evs = sorted(((t(v), k) for e in events for k, v in e.items()), key=lambda x: x[0])
    q, state = t(version), False
    for at, kind in evs:
        if at > q:
            break
        state = kind == "introduced"
    return state


def expected(version: str) -> set[str]:
    doc = json.loads(gzip.decompress(DATA.read_bytes()))
    out = set()
    for rec in doc["records"]:
        for a in rec["affected"]:
            if a["package"]["name"] in RELEASE_PACKAGES and any(tiny_affected(version, r["events"])
                                                                 for r in a["ranges"]):
                out.add(rec["id"])
    return out


@pytest.mark.parametrize("version", TABLE)
def test_feed_table_against_an_independent_evaluator(version: str) -> None:
    report = build(shipped(), from_release(version, parse(version), "--version"), today=dt.date(2024, 11, 18))
    got = {f.control.id for f in report.findings if f.control.category == "vulns" and f.control.id.startswith("CVE")}
    assert got == expected(version)


def test_table_figures() -> None:
    """The figures docs/vulns.md quotes."""
    counts = {v: len(expected(v)) for v in TABLE}
    assert counts == {"1.24.0": 11, "1.27.12": 2, "1.28.8": 2, "1.29.3": 2, "1.30.0": 1, "1.31.1": 0, "1.37.2": 0}


def test_vendored_snapshot_is_the_dated_feed() -> None:
    doc = json.loads(gzip.decompress(DATA.read_bytes()))
    assert (doc["date"], doc["commit"], doc["license"]) == ("2024-11-18", "9760a22", "Apache-2.0")
    assert (DATA.parent / "k8s-cve-feed-osv.LICENSE").read_text().startswith("\n") or "Apache License" in (
        DATA.parent / "k8s-cve-feed-osv.LICENSE").read_text()
    ids = [r["id"] for r in doc["records"]]
    assert len(ids) == len(set(ids)) == 47  # the feed at 9760a22: one OSV record per CVE
    assert max(r["modified"][:10] for r in doc["records"]) <= doc["date"]


@pytest.mark.parametrize(("vector", "score"), [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8), ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
    ("CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8), ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1), ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0)])
def test_cvss_base_scores(vector: str, score: float) -> None:
    assert base_score(vector) == score


@pytest.mark.parametrize(("text", "version", "noted"), [
    ("v1.28.3", "1.28.3", False), ("1.28.3", "1.28.3", False), ("v1.29.0+k3s1", "1.29.0+k3s1", False),
    ("v1.27.3-eks-a5565ad", "1.27.3", True), ("v1.27.3-gke.100", "1.27.3", True),
    ("v1.30.0-rc.1", "1.30.0-rc.1", False)])
def test_read_version(text: str, version: str, noted: bool) -> None:
    v, note = read_version(text)
    assert str(v) == version and bool(note) is noted


@pytest.mark.parametrize(("image", "want"), [
    ("registry.k8s.io/kube-apiserver:v1.28.2", ("kube-apiserver", "v1.28.2")),
    ("k8s.gcr.io/kube-apiserver-amd64:v1.11.0", ("kube-apiserver", "v1.11.0")),
    ("registry.k8s.io/ingress-nginx/controller:v1.9.0@sha256:" + "a" * 64, ("ingress-nginx", "v1.9.0")),
    ("registry.k8s.io/kube-proxy@sha256:" + "a" * 64, ("kube-proxy", None)),
    ("example.com/my-kube-apiserver:v1", None), ("nginx:1.25", None)])
def test_image_component(image: str, want: tuple[str, str | None] | None) -> None:
    assert image_component(image) == want


def res(obj: dict[str, Any]) -> Resource:
    return Resource(obj, file="m.yaml", line=1)


def test_found_in_resources() -> None:
    items = list(from_resources([
        res({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver-cp", "namespace": "kube-system"},
             "spec": {"containers": [{"name": "a", "image": "registry.k8s.io/kube-apiserver:v1.28.2"}],
                      "initContainers": [{"name": "i", "image": "registry.k8s.io/kube-scheduler:latest"}]}}),
        res({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
             "status": {"nodeInfo": {"kubeletVersion": "v1.27.3", "kubeProxyVersion": "v1.27.3"}}}),
        res({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "kp", "namespace": "kube-system"},
             "spec": {"template": {"spec": {"containers": [
                 {"name": "kp", "image": "registry.k8s.io/kube-proxy@sha256:" + "b" * 64}]}}}}),
    ]))
    found = [(i.component, str(i.version), i.path) for i in items if isinstance(i, Found)]
    assert found == [("kube-apiserver", "1.28.2", "/spec/containers/0/image"),
                     ("kubelet", "1.27.3", "/status/nodeInfo/kubeletVersion")]  # kubeProxyVersion is the kubelet's
    unknown = [i for i in items if isinstance(i, NotAssessed)]
    assert len(unknown) == 2 and "'latest' is not a version" in unknown[0].reason and "no tag" in unknown[1].reason


@pytest.mark.parametrize(("today", "stale"), [("2025-02-16", False), ("2025-02-17", True)])
def test_data_age(today: str, stale: bool) -> None:
    """2024-11-18 + 90 days = 2025-02-16: still fresh; a day later the age is a finding of its own."""
    report = build(shipped(), [], today=dt.date.fromisoformat(today))
    ids = [f.control.id for f in report.findings]
    assert ids == (["KW-V000", "KW-V001"] if stale else ["KW-V000"])
    assert "dated 2024-11-18" in report.findings[0].message


MANIFESTS = """\
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver-cp1, namespace: kube-system}
spec:
  containers:
  - {name: kube-apiserver, image: "registry.k8s.io/kube-apiserver:v1.28.2"}
---
apiVersion: v1
kind: Node
metadata: {name: worker-1}
status: {nodeInfo: {kubeletVersion: v1.27.3-eks-a5565ad}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
spec:
  template:
    spec:
      containers:
      - {name: controller, image: "registry.k8s.io/ingress-nginx/controller:v1.9.0"}
"""


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["vulns", *args])


def test_cli_on_manifests(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(MANIFESTS)
    out = invoke(str(f), "-o", "json", "--today", "2024-12-01")
    assert out.exit_code == 1  # CVE-2024-7646 (ingress-nginx) is high
    doc = json.loads(out.stdout)
    hits = {(x["control"]["id"], x["object"]["name"]) for x in doc["findings"]}
    assert ("CVE-2024-7646", "ingress-nginx-controller") in hits
    assert ("CVE-2024-3177", "kube-apiserver-cp1") in hits
    assert ("CVE-2023-5528", "worker-1") in hits
    assert ("KW-V000", "k8s-cve-feed-osv") in hits and ("KW-V001", "k8s-cve-feed-osv") not in hits
    assert "dated 2024-11-18" in out.stderr
    for fmt in ("sarif", "junit", "table", "html"):
        assert invoke(str(f), "-o", fmt).exit_code == 1


def test_cli_version_and_exceptions(tmp_path: Path) -> None:
    out = invoke("--version", "1.30", "-o", "json", "--fail-on", "medium", "--today", "2024-12-01")
    doc = json.loads(out.stdout)
    msgs = [x["message"] for x in doc["findings"] if x["control"]["id"] == "CVE-2024-5321"]
    assert out.exit_code == 1 and msgs and "read as 1.30.0" in msgs[0]
    ex = tmp_path / "ex.yaml"
    ex.write_text("exceptions:\n- controls: [CVE-2024-5321]\n  reason: no Windows nodes\n")
    quiet = invoke("--k8s-version", "1.30", "-o", "json", "--fail-on", "medium", "--exceptions", str(ex),
                   "--today", "2024-12-01")
    assert quiet.exit_code == 0, quiet.output
    assert [x["control"]["id"] for x in json.loads(quiet.stdout)["findings"]] == ["KW-V000"]


def test_cli_old_data_is_a_finding() -> None:
    out = invoke("--version", "1.37.2", "-o", "json", "--fail-on", "medium", "--today", "2026-12-07")
    ids = [x["control"]["id"] for x in json.loads(out.stdout)["findings"]]
    assert ids == ["KW-V000", "KW-V001"] and out.exit_code == 1


@pytest.mark.parametrize("args", [["--version", "1.x"], ["--version", "1.030.1"], [], ["--today", "soon", "--version",
                                                                                          "1.30.1"]])
def test_cli_usage_errors(args: list[str]) -> None:
    out = invoke(*args)
    assert out.exit_code == 2 and out.stderr.startswith("kubeward: ") and "Traceback" not in out.stderr


def test_cli_nothing_found_and_bad_input(tmp_path: Path) -> None:
    plain = tmp_path / "app.yaml"
    plain.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    out = invoke(str(plain))
    assert out.exit_code == 2 and "no Kubernetes component versions found" in out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    good = tmp_path / "good.yaml"
    good.write_text("apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\nstatus: {nodeInfo: {kubeletVersion: v1.37.2}}\n")
    mixed = invoke(str(bad), str(good), "--today", "2024-12-01")
    assert mixed.exit_code == 2 and "bad.yaml" in mixed.stderr  # a clean answer with unread input is not clean


def test_data_option(tmp_path: Path) -> None:
    """--data: a folder of OSV records (dated by the newest) or a feed document; a bad one is one line, exit 2."""
    rec = {"id": "CVE-2099-0001", "modified": "2099-01-02T00:00:00Z", "summary": "test record",
           "affected": [{"package": {"ecosystem": "kubernetes", "name": "k8s.io/kubelet"},
                         "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
                         "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.37.0"}, {"fixed": "1.37.3"}]}]}]}
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "CVE-2099-0001.json").write_text(json.dumps(rec))
    out = invoke("--version", "1.37.2", "--data", str(folder), "-o", "json", "--today", "2099-01-10")
    ids = {x["control"]["id"]: x for x in json.loads(out.stdout)["findings"]}
    assert out.exit_code == 1 and set(ids) == {"KW-V000", "CVE-2099-0001"}
    assert ids["CVE-2099-0001"]["control"]["severity"] == "critical" and "fixed in 1.37.3" in ids[
        "CVE-2099-0001"]["message"]
    assert "dated 2099-01-02" in ids["KW-V000"]["message"]
    # The shipped records laid out as a feed checkout (one OSV file per record) answer as the shipped document.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for r in json.loads(gzip.decompress(DATA.read_bytes()))["records"]:
        (checkout / f"{r['id']}.json").write_text(json.dumps(r))
    same = invoke("--version", "1.24.0", "--data", str(checkout), "-o", "json", "--today", "2024-12-01")
    shipped_ids = invoke("--version", "1.24.0", "-o", "json", "--today", "2024-12-01")

    def cves(r: Any) -> set[str]:
        return {x["control"]["id"] for x in json.loads(r.stdout)["findings"] if x["control"]["id"].startswith("CVE")}
    assert cves(same) == cves(shipped_ids) == expected("1.24.0")
    (folder / "bad.json").write_text(json.dumps({**rec, "id": "X", "affected": [
        {"package": {"name": "k8s.io/kubelet"}, "ranges": [{"type": "SEMVER", "events": [{"fixed": "1.x"}]}]}]}))
    bad = invoke("--version", "1.37.2", "--data", str(folder))
    assert bad.exit_code == 2 and bad.stderr.startswith("kubeward: ") and "bad.json" in bad.stderr
    assert bad.stderr.strip().count("\n") == 0
    for doc in ("nope", str(tmp_path / "missing")):
        assert invoke("--version", "1.37.2", "--data", doc).exit_code == 2


def test_vulns_controls_are_known_everywhere() -> None:
    """KW-V ids are in `kubeward controls` and every exceptions file; CVE ids only in the vulns command's."""
    from kubeward.controls.standalone import known_control_ids

    ids = known_control_ids()
    assert {"KW-V000", "KW-V001", "KW-V010", "KW-V011", "KW-V012", "KW-V100"} <= ids
    assert not any(i.startswith("CVE-") for i in ids)
