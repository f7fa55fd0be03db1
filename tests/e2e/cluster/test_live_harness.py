"""scripts/cluster-up and cluster-down keep their contract: the last lines name KUBECONFIG, PKI and ETCD_ENDPOINT;
a second cluster-up replaces the first without stray processes; cluster-down stops everything and removes state."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _pids(state: Path) -> dict[str, int]:
    run = state / "run"
    return {p.stem: int(p.read_text().split()[0]) for p in run.glob("*.pid")} if run.exists() else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and not stat.read_text().split(") ")[-1].startswith("Z")


def _up(state: Path) -> list[str]:
    out = subprocess.run([str(REPO / "scripts" / "cluster-up"), "--state", str(state)], capture_output=True,
                         text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


def test_cluster_up_twice_then_down(bin_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    second: dict[str, int] = {}
    try:
        lines = _up(state)
        assert [line.split("=", 1)[0] for line in lines[-4:]] == ["KUBECONFIG", "PKI", "ETCD_ENDPOINT", "NODE_ROOT"]
        kubeconfig, pki = Path(lines[-4].split("=", 1)[1]), Path(lines[-3].split("=", 1)[1])
        assert kubeconfig.is_file() and (pki / "ca.key").is_file() and (pki / "etcd" / "ca.crt").is_file()
        assert lines[-2].split("=", 1)[1].startswith("https://127.0.0.1:")
        # NODE_ROOT is laid out like a kubeadm node: the manifest's host paths resolve below it
        node = Path(lines[-1].split("=", 1)[1])
        from kubeward.sources.node import load_node

        flags = load_node(node).components["kube-apiserver"].flags
        assert flags.get("client-ca-file") == "/etc/kubernetes/pki/ca.crt"
        assert flags.get("audit-log-path") == "/var/log/kubernetes/audit.log"
        assert (node / "etc/kubernetes/pki/ca.crt").is_file() and (node / "etc/kubernetes/admin.conf").is_file()
        first = _pids(state)
        assert set(first) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        assert all(_alive(p) for p in first.values())
        _up(state)
        second = _pids(state)
        assert not any(_alive(p) for p in first.values()), "the first cluster's processes must be stopped"
        assert all(_alive(p) for p in second.values()) and set(second.values()).isdisjoint(first.values())
    finally:
        down = subprocess.run([str(REPO / "scripts" / "cluster-down"), "--state", str(state)], capture_output=True,
                              text=True, check=False, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not any(_alive(p) for p in second.values())
    assert not state.exists()
