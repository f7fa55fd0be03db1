"""A real loopback cluster for the differential tests: the same harness as scripts/cluster-up / cluster-down.

Session-scoped: built (or reused from ~/.cache/kubeward/bin) once, started once, always stopped at the end, even
when a test or the start itself fails. Skips with the reason only when the binaries are absent and cannot be built.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
KUBECTL_SRC = REPO / "e2e" / "kubectl"
HARNESS = REPO / "e2e" / "apiserver" / "harness.py"


def _harness() -> Any:
    spec = importlib.util.spec_from_file_location("kubeward_e2e_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


harness = _harness()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    pytest.importorskip("kubernetes", reason="the live source needs the 'kubernetes' package (extra 'cluster')")
    try:
        return Path(harness.build())
    except harness.HarnessError as exc:
        if shutil.which("go") is None:
            pytest.skip(f"kube-apiserver binaries absent and no Go toolchain to build them: {exc}")
        pytest.skip(f"kube-apiserver binaries absent and the build failed: {str(exc)[-1500:]}")


@pytest.fixture(scope="session")
def live(bin_dir: Path) -> Iterator[Any]:
    """The running Cluster (harness.Cluster): kubeconfig, pki, etcd_endpoint, audit_log, restart_apiserver()."""
    state = Path(tempfile.mkdtemp(prefix="kubeward-cluster-")) / "state"
    try:
        cluster = harness.up(state, bin_dir=bin_dir)
    except harness.HarnessError as exc:
        harness.down(state, remove=False)
        pytest.fail(f"cluster did not start: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        harness.down(state, remove=False)
        for comp in harness.COMPONENTS:
            assert not cluster.running(comp), f"{comp} still running after teardown"
        for entry in state.iterdir():  # keep the logs for failures; drop data, keys and configs
            if entry.name not in ("logs", "audit.log"):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


@pytest.fixture(scope="session")
def admin(live: Any) -> Any:
    from kubeward.sources.cluster import Client

    return Client(str(live.kubeconfig))


@pytest.fixture(scope="session")
def kubectl(bin_dir: Path) -> Path:
    """kubectl built from the official v1.37 modules (e2e/kubectl) into the harness cache, once per run."""
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain to build kubectl")
    stamp = hashlib.sha256(b"".join((KUBECTL_SRC / f).read_bytes() for f in ("go.mod", "go.sum", "main.go"))).hexdigest()[:16]
    out = bin_dir / "kubectl"
    if not (out.exists() and (bin_dir / "kubectl.stamp").read_text().strip() == stamp
            if (bin_dir / "kubectl.stamp").exists() else False):
        env = {**os.environ, "GOFLAGS": "-mod=mod -buildvcs=false"}
        r = subprocess.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."], cwd=KUBECTL_SRC, env=env,
                           capture_output=True, text=True, check=False, timeout=1200)
        if r.returncode != 0:
            pytest.fail(f"kubectl build failed: {r.stderr[-1500:]}")
        (bin_dir / "kubectl.stamp").write_text(stamp + "\n")
    return out


# The restart command the rotation tests hand to kubeward: restart the harness apiserver, count the restarts in a
# file, and SIGKILL the rotation (its parent) right after the restarts listed, before it records its step.
RESTART_SCRIPT = """import os, signal, subprocess, sys
from pathlib import Path
count = Path(sys.argv[2])
n = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(n))
out = subprocess.run([sys.executable, {harness!r}, "restart-apiserver", "--state", sys.argv[1]])
if out.returncode:
    sys.exit(out.returncode)
if str(n) in sys.argv[3].split(","):
    os.kill(os.getppid(), signal.SIGKILL)
"""


def rotation_command(c: Any, counter: Path, script: Path, kill_after: str, *command: str) -> list[str]:
    """argv of one `kubeward <command> --cluster` rotation on cluster `c`, whose restart command is RESTART_SCRIPT
    (written to `script`) counting restarts in `counter` and killing the rotation after those in `kill_after`."""
    restart = f"{sys.executable} {script} {c.state} {counter} {kill_after}"
    return [sys.executable, "-c", "from kubeward.cli.main import main; main()", *command, "--cluster",
            "--kubeconfig", str(c.kubeconfig), "--node-root", str(c.node_root), "--restart-command", restart]


def run_rotation(c: Any, counter: Path, script: Path, kill_after: str, *command: str,
                 timeout: float = 600) -> tuple[int, str]:
    """Exit code and stderr of one rotation run to its end (rotation_command's argv; `command` may carry the
    rotation's own options after its name, e.g. `--step retire`)."""
    p = subprocess.run(rotation_command(c, counter, script, kill_after, *command), stderr=subprocess.PIPE,
                       stdout=subprocess.DEVNULL, text=True, timeout=timeout, check=False)
    return p.returncode, p.stderr


@pytest.fixture()
def own_cluster(bin_dir: Path) -> Iterator[Any]:
    """A cluster of the test's own (one that restarts its apiserver must not take the session's down with it)."""
    base = os.environ.get("KUBEWARD_CLUSTER_DIR")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="kubeward-own-", dir=base)) / "state"
    h = harness
    try:
        c = h.up(state, bin_dir=bin_dir)
    except h.HarnessError as exc:
        h.down(state, remove=False)
        pytest.fail(f"cluster did not start: {exc}", pytrace=False)
    try:
        yield c
    finally:
        h.down(state)

