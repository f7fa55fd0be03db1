"""`node check --live` against the harness's real processes: each flag flipped on the running kube-apiserver or
etcd flips its verdict, read from /proc/PID/cmdline (no manifest exists anywhere), and the kubelet- and
kube-proxy-shaped processes show the config-file precedence of each binary.

The cluster is the session's; every restart here is undone at the end, so later tests see the usual flags.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "etcd")


def node_check(live: Any, *extra: str) -> dict[str, Any]:
    pids = [str(live.pid(c)) for c in (*COMPONENTS, "kubelet", "kube-proxy") if live.running(c)]
    argv = [sys.executable, "-m", "kubeward.cli.main", "node", "check", "--live", "-o", "json", "--fail-on", "none",
            *(a for p in pids for a in ("--pid", p)), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=120)
    assert out.returncode == 0 and not out.stderr, out.stderr
    return orjson.loads(out.stdout)


def failing(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in doc["findings"]:
        out.setdefault(f["control"]["id"], []).append(f)
    return out


@pytest.fixture(scope="module")
def worker(live: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A kubelet-shaped and a kube-proxy-shaped process with a hardened config tree, stopped at the end."""
    tree = tmp_path_factory.mktemp("worker")
    (tree / "kubelet.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(live.pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"}, "rotateCertificates": True, "serverTLSBootstrap": True,
        "tlsCipherSuites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"], "podPidsLimit": 4096,
        "seccompDefault": True, "readOnlyPort": 0, "eventRecordQPS": 50}))
    (tree / "kubelet.yaml").chmod(0o600)
    (tree / "proxy.kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    (tree / "proxy.kubeconfig").chmod(0o600)
    (tree / "proxy.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "metricsBindAddress": "127.0.0.1:10249", "clientConnection": {"kubeconfig": str(tree / "proxy.kubeconfig")}}))
    live.start_shaped("kubelet", [f"--config={tree / 'kubelet.yaml'}"])
    live.start_shaped("kube-proxy", [f"--config={tree / 'proxy.yaml'}", "--metrics-bind-address=0.0.0.0:10249"])
    try:
        yield tree
    finally:
        live.stop("kubelet")
        live.stop("kube-proxy")


def test_reads_the_running_processes(live: Any, worker: Path) -> None:
    doc = node_check(live)
    bad = failing(doc)
    for cid in ("1.2.1", "1.2.6", "1.2.7", "1.2.8", "1.2.15", "1.2.16", "1.2.27", "1.2.28", "2.2", "2.1",
                "4.2.1", "4.2.2", "4.2.4", "4.2.8", "4.1.3", "4.3.1"):
        assert f"KW-CIS-{cid}" not in bad, bad.get(f"KW-CIS-{cid}")
    assert "KW-CIS-1.2.18" in bad  # the harness keeps one audit backup
    api = live.pid("kube-apiserver")
    assert all(loc == f"/proc/{api}/cmdline" for loc in
               (f["location"]["file"] for cid, fs in bad.items() if cid.startswith("KW-CIS-1.2") for f in fs))
    unread = {n["what"] for n in doc["notAssessed"]}
    assert "kube-scheduler" in unread  # not running here: not assessed, never passed


def test_apiserver_flags_flip_the_verdicts(live: Any, worker: Path) -> None:
    try:
        # pflag: a scalar flag's last value wins, a bare bool is true, a slice flag accumulates
        live.restart_apiserver(extra=("--anonymous-auth=true", "--profiling", "--authorization-mode=AlwaysAllow",
                                      "--audit-log-maxage=30", "--audit-log-maxbackup=10"))
        bad = failing(node_check(live))
        for cid in ("1.2.1", "1.2.15", "1.2.6"):
            assert f"KW-CIS-{cid}" in bad, cid
        assert f"/proc/{live.pid('kube-apiserver')}/cmdline" == bad["KW-CIS-1.2.1"][0]["location"]["file"]
        for cid in ("1.2.7", "1.2.8", "1.2.17", "1.2.18"):  # Node,RBAC still there; audit retention now enough
            assert f"KW-CIS-{cid}" not in bad, cid
        live.restart_apiserver(encryption=False, drop=("audit-log-path", "authorization-mode"),
                               extra=("--authorization-mode=RBAC",))
        doc = node_check(live)
        bad = failing(doc)
        for cid in ("1.2.16", "1.2.28", "1.2.7"):  # no audit log; identity writes first; no Node authorizer
            assert f"KW-CIS-{cid}" in bad, cid
        assert "KW-CIS-1.2.8" not in bad and "KW-CIS-1.2.6" not in bad
        assert "KW-NODE-001" in {n["what"] for n in doc["notAssessed"]}  # no audit backend to judge the policy of
    finally:
        live.restart_apiserver()
    assert "KW-CIS-1.2.1" not in failing(node_check(live))


def test_etcd_client_cert_auth_flips(live: Any, worker: Path) -> None:
    try:
        live.restart_etcd(drop=("client-cert-auth",))  # etcd's default is false
        bad = failing(node_check(live))
        assert "KW-CIS-2.2" in bad
        assert bad["KW-CIS-2.2"][0]["location"]["file"] == f"/proc/{live.pid('etcd')}/cmdline"
    finally:
        live.restart_etcd()
    assert "KW-CIS-2.2" not in failing(node_check(live))


def test_kubelet_command_line_overrides_its_config(live: Any, worker: Path) -> None:
    live.stop("kubelet")
    live.start_shaped("kubelet", [f"--config={worker / 'kubelet.yaml'}", "--anonymous-auth=true", "--event-qps=0"])
    bad = failing(node_check(live))
    assert [f["message"] for f in bad["KW-CIS-4.2.1"]] == ["--anonymous-auth=true: anonymous requests reach the kubelet"]
    assert "KW-CIS-4.2.8" in bad


def test_kube_proxy_flags_apply_only_without_config(live: Any, worker: Path) -> None:
    assert "KW-CIS-4.3.1" not in failing(node_check(live))  # --config replaces --metrics-bind-address
    live.stop("kube-proxy")
    live.start_shaped("kube-proxy", ["--metrics-bind-address=0.0.0.0:10249",
                                     f"--kubeconfig={worker / 'proxy.kubeconfig'}"])
    (worker / "proxy.kubeconfig").chmod(0o644)
    bad = failing(node_check(live))
    assert bad["KW-CIS-4.3.1"][0]["message"].startswith("--metrics-bind-address=0.0.0.0:10249")
    assert "KW-CIS-4.1.3" in bad


def test_policies_section_from_the_api(live: Any, worker: Path) -> None:
    doc = node_check(live, "--cluster", "--kubeconfig", str(live.kubeconfig), "--benchmark", "cis-1.12")
    ids = {f["control"]["id"] for f in doc["findings"]}
    assert "KW-N007" in ids  # 5.3.2: the harness's namespaces have no NetworkPolicy
    assert not any(i.startswith("KW-NODE-") for i in ids)  # --benchmark keeps the benchmark's checks
    assert doc["summary"]["states"]["MANUAL"] >= 5
