"""`kubeward scan -o json` on two processes writes the very bytes (and exit code) of the serial path."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeward import scan_parallel
from kubeward.cli.main import cli
from kubeward.cli.scan import DEMO_DIR
from vendored import pss_fixtures

PSS = pss_fixtures()

ANNOTATED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: device-plugin
  namespace: ops
  annotations:
    kubeward.io/ignore: KW-W001, KW-W999
    kubeward.io/ignore-reason: needs device access
spec:
  template:
    metadata:
      labels: {app: dp}
      annotations:
        kubeward.io/ignore: "*"
    spec:
      containers:
      - name: app
        image: nginx
        securityContext: {privileged: true}
---
apiVersion: v1
kind: Pod
metadata: {name: same-line-a, namespace: ops, annotations: {kubeward.io/ignore: KW-W001}}
spec: {hostNetwork: true, containers: [{name: a, image: busybox, securityContext: {privileged: true}}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops}
"""

LIST_JSON = json.dumps({
    "apiVersion": "v1", "kind": "List",
    "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j1", "namespace": "shop"},
         "spec": {"containers": [{"name": "c", "image": "redis", "securityContext": {"runAsUser": 0}}]}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "j2", "namespace": "kube-system"},
         "spec": {"template": {"spec": {"hostPID": True, "containers": [{"name": "c", "image": "x:latest"}]}}}},
    ],
}, indent=1)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Good, broken and annotated manifests side by side."""
    root = tmp_path / "in"
    (root / "a").mkdir(parents=True)
    (root / "z").mkdir()
    (root / "a" / "annotated.yaml").write_text(ANNOTATED)
    (root / "a" / "list.json").write_text(LIST_JSON)
    (root / "a" / "binary.yaml").write_bytes(b"\x00\x01\x02not yaml")
    (root / "broken.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x\n  bad: [\n")
    (root / "scalar.yaml").write_text("just a string\n---\n- a list\n")
    (root / "nokind.yaml").write_text("apiVersion: v1\nmetadata: {name: nokind}\n")
    (root / "z" / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (root / "z" / "empty.yaml").write_text("")
    (root / "z" / "pod.yml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: z\n  namespace: shop\nspec:\n  hostIPC: true\n"
        "  containers:\n  - name: c\n    image: nginx\n"
    )
    return root


@pytest.fixture
def exceptions_file(tmp_path: Path) -> Path:
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    path = tmp_path / "exceptions.yaml"
    path.write_text(
        "exceptions:\n"
        "- controls: [KW-W001, KW-W002]\n  namespaces: [shop, payments]\n  reason: vendor image needs it\n"
        "- controls: ['*']\n  names: ['j2']\n  reason: node agent\n"
        f"- controls: [KW-W003]\n  reason: temporary\n  expires: {yesterday}\n"
    )
    return path


def _scan(monkeypatch: pytest.MonkeyPatch, workers: str, *args: str) -> tuple[int, bytes, str]:
    monkeypatch.setenv("KUBEWARD_WORKERS", workers)
    result = CliRunner().invoke(cli, ["scan", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout_bytes, result.stderr


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records whether each two-process attempt produced the document (False: it fell back to serial)."""
    calls: list[bool] = []
    real = scan_parallel.scan_json

    def spy(*args: object, **kwargs: object) -> object:
        done = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(done is not None)
        return done

    monkeypatch.setattr(scan_parallel, "scan_json", spy)
    return calls


def _same(monkeypatch: pytest.MonkeyPatch, used: list[bool], *args: str) -> tuple[int, bytes]:
    serial = _scan(monkeypatch, "1", *args, "-o", "json")
    assert used == []  # KUBEWARD_WORKERS=1: never forks
    parallel = _scan(monkeypatch, "2", *args, "-o", "json")
    assert used == [True]  # the two-process path wrote the document, no fallback
    assert parallel[1] == serial[1]
    assert parallel == serial  # exit code, stdout bytes and stderr
    return serial[0], serial[1]


def test_demo_broken_files_exceptions_and_annotations(monkeypatch: pytest.MonkeyPatch, used: list[bool],
                                                       mixed: Path, exceptions_file: Path) -> None:
    code, out = _same(monkeypatch, used, str(DEMO_DIR), str(mixed), "--exceptions", str(exceptions_file))
    doc = json.loads(out)
    assert code == 2  # unreadable manifests fail the gate
    used.clear()
    assert _same(monkeypatch, used, str(DEMO_DIR), str(mixed), "--exceptions", str(exceptions_file),
                 "--allow-input-errors")[0] == 1
    assert doc["summary"]["suppressed"] > 0 and doc["expiredExceptions"] and len(doc["errors"]) >= 4
    assert any("annotation" in f["suppressed"]["reason"] for f in doc["suppressed"])
    assert {f["control"]["id"] for f in doc["findings"]} & {"KW-W001"}


def test_excluded_namespaces_threshold_and_fail_on(monkeypatch: pytest.MonkeyPatch, used: list[bool],
                                                   mixed: Path) -> None:
    code, _ = _same(monkeypatch, used, str(mixed), "--demo", "--exclude-namespaces", "shop,ops",
                    "--severity-threshold", "medium", "--fail-on", "critical", "--allow-input-errors")
    assert code in (0, 1)


def test_nothing_readable_exits_2_the_same(monkeypatch: pytest.MonkeyPatch, used: list[bool], tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"bad{i}.yaml").write_text("- not\n- an object\n")
    code, _ = _same(monkeypatch, used, str(tmp_path))
    assert code == 2


def test_stdin_and_repeated_files_stay_serial(monkeypatch: pytest.MonkeyPatch, used: list[bool], mixed: Path) -> None:
    pod = str(mixed / "z" / "pod.yml")
    monkeypatch.setenv("KUBEWARD_WORKERS", "2")
    twice = CliRunner().invoke(cli, ["scan", pod, pod, "-o", "json"])
    monkeypatch.setenv("KUBEWARD_WORKERS", "1")
    twice_serial = CliRunner().invoke(cli, ["scan", pod, pod, "-o", "json"])
    assert twice.stdout_bytes == twice_serial.stdout_bytes and twice.exit_code == twice_serial.exit_code
    assert used == [False]  # repeated names: the serial path wrote it


def test_auto_mode_needs_many_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEWARD_WORKERS", raising=False)
    monkeypatch.setattr(scan_parallel.os, "cpu_count", lambda: 2)
    assert scan_parallel.workers_wanted(scan_parallel.MIN_FILES) == 2
    assert scan_parallel.workers_wanted(scan_parallel.MIN_FILES - 1) == 1
    monkeypatch.setattr(scan_parallel.os, "cpu_count", lambda: 1)
    assert scan_parallel.workers_wanted(10_000) == 1
    monkeypatch.setenv("KUBEWARD_WORKERS", "1")
    monkeypatch.setattr(scan_parallel.os, "cpu_count", lambda: 8)
    assert scan_parallel.workers_wanted(10_000) == 1


def test_pss_sample_byte_identical(monkeypatch: pytest.MonkeyPatch, used: list[bool], tmp_path: Path) -> None:
    files = sorted(str(p) for p in PSS.rglob("*.yaml"))[::6]
    assert len(files) >= 600
    out_serial, out_parallel = tmp_path / "serial.json", tmp_path / "parallel.json"
    serial = _scan(monkeypatch, "1", *files, "-o", "json", "--output", str(out_serial))
    parallel = _scan(monkeypatch, "2", *files, "-o", "json", "--output", str(out_parallel))
    assert used == [True]
    assert parallel[:2] == serial[:2]  # the stderr line names the file each wrote, with the same summary
    assert parallel[2].replace(str(out_parallel), "OUT") == serial[2].replace(str(out_serial), "OUT")
    assert out_parallel.read_bytes() == out_serial.read_bytes()
    total = json.loads(out_serial.read_bytes())["summary"]["findings"]
    assert total > 10_000
    assert f"wrote OUT ({total} findings: " in parallel[2].replace(str(out_parallel), "OUT")


def test_a_failing_child_falls_back_to_one_process(monkeypatch: pytest.MonkeyPatch, used: list[bool],
                                                    mixed: Path) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("child died")

    monkeypatch.setattr(scan_parallel, "_child", broken)  # the forked child runs this and exits 1
    serial = _scan(monkeypatch, "1", str(mixed), "--demo", "-o", "json")
    parallel = _scan(monkeypatch, "2", str(mixed), "--demo", "-o", "json")
    assert used == [False]  # the two-process attempt gave up; the serial path wrote the document
    assert parallel == serial


def test_timestamps_and_other_non_marshal_values_are_handed_over(monkeypatch: pytest.MonkeyPatch, used: list[bool],
                                                                 tmp_path: Path) -> None:
    for i in range(6):  # unquoted timestamps load as datetime, which marshal cannot carry (pickle does)
        (tmp_path / f"p{i}.yaml").write_text(
            f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  creationTimestamp: 2024-05-0{i + 1}T10:00:00Z\n"
            "spec:\n  containers:\n  - name: c\n    image: nginx\n"
        )
    _same(monkeypatch, used, str(tmp_path))


def test_chunks_keep_name_order_and_whole_files(tmp_path: Path) -> None:
    files = []
    for i in range(100):
        f = tmp_path / f"f{i:03}.yaml"
        f.write_text("x" * (i * 37 % 900))
        files.append((str(f), str(f)))
    chunks = scan_parallel._chunks(list(reversed(files)))
    assert 1 < len(chunks) <= scan_parallel.CHUNKS
    assert [f for chunk in chunks for f in chunk] == sorted(files)
    assert all(chunks)
    assert scan_parallel._chunks(files[:3]) == [[f] for f in files[:3]]


def test_claims_from_both_ends_never_overlap() -> None:
    claims = scan_parallel._Claims(7)
    try:
        assert [claims.load(from_back=False), claims.load(from_back=False)] == [0, 1]
        assert [claims.load(from_back=True) for _ in range(6)] == [6, 5, 4, 3, 2, None]
        assert claims.load(from_back=False) is None and claims.boundary() == 2
        # the child runs only what it loaded (>= 2); the parent may run anything left
        assert claims.run(from_back=True, limit=2) == 6
        assert [claims.run(from_back=False) for _ in range(3)] == [0, 1, 2]
        assert [claims.run(from_back=True, limit=2) for _ in range(3)] == [5, 4, 3]
        assert claims.run(from_back=False) is None
        assert claims.run(from_back=True, limit=2) is None
    finally:
        claims.close()
