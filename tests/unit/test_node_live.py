"""node check on a live node: components recognised from /proc, flags parsed as pflag / Go's flag package do,
kubelet and kube-proxy config-file precedence, manifest drift, and the kube-proxy and event-rate checks.

The /proc here is a tree of pid directories (cmdline, environ, root and cwd links), so every rule is tested
without running anything; tests/e2e/cluster/test_live_node_check.py proves the same on real processes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import kubeward.controls.node.drift as drift
import kubeward.controls.node.kubelet as kubelet_checks
import kubeward.controls.node.kubeproxy as live_checks
from kubeward.controls.node.apiserver import api_anonymous
from kubeward.controls.node.drift import manifest_drift
from kubeward.controls.node.etcd import etcd_client_auth
from kubeward.controls.node.kubelet import kubelet_anonymous, kubelet_authz, kubelet_ro_port
from kubeward.sources.node import parse_flags
from kubeward.sources.nodelive import load_live, proxy_value
from kubeward.sources.proc import discover, identify


def fake_proc(tmp: Path, procs: dict[int, list[str]], env: dict[int, dict[str, str]] | None = None,
              root: Path | None = None) -> Path:
    proc = tmp / "proc"
    for pid, argv in procs.items():
        d = proc / str(pid)
        d.mkdir(parents=True)
        (d / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))
        (d / "environ").write_bytes(b"".join(f"{k}={v}".encode() + b"\0" for k, v in (env or {}).get(pid, {}).items()))
        if root is not None:
            os.symlink(root, d / "root")
            os.symlink("/", d / "cwd")
    (proc / "77").mkdir(parents=True)  # a kernel thread: empty cmdline
    (proc / "77" / "cmdline").write_bytes(b"")
    (proc / "self").mkdir()
    return proc


@pytest.mark.parametrize(("argv", "want"), [
    (["/usr/local/bin/kube-apiserver", "--x=1"], ("kube-apiserver", ["--x=1"])),
    (["/work/bin/kubeward-k8s", "apiserver", "--x=1"], ("kube-apiserver", ["--x=1"])),
    (["kubeward-k8s", "controller-manager"], ("kube-controller-manager", [])),
    (["/hyperkube", "kube-proxy", "--config=/c"], ("kube-proxy", ["--config=/c"])),
    (["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"], ("kubelet", ["--config=/var/lib/kubelet/config.yaml"])),
    (["etcd", "--name", "x"], ("etcd", ["--name", "x"])),
    (["/go-runner", "--", "/usr/local/bin/kube-proxy"], None),  # the wrapper is not the component
    (["kubeward-k8s"], None),
    (["kubeward-k8s", "etcd"], None),
    (["python3", "kube-apiserver"], None),
    ([], None),
])
def test_identify_by_what_runs(argv: list[str], want: tuple[str, list[str]] | None) -> None:
    assert identify(argv) == want


def test_pflag_forms() -> None:
    f = parse_flags(["--anonymous_auth=false", "--profiling", "--v", "2", "positional", "--authorization-mode=Node",
                     "--authorization-mode", "RBAC", "--audit-log-path=/a", "--audit-log-path=/b", "--anonymous-auth"])
    assert f.get("anonymous-auth") == "true"  # normalised name, last occurrence wins
    assert f.get("profiling") == "true" and f.get("v") == "2"
    assert f.list("authorization-mode") == ["Node", "RBAC"]  # a slice flag accumulates
    assert f.get("audit-log-path") == "/b"


def test_goflag_stops_at_first_positional_and_keeps_underscores() -> None:
    f = parse_flags(["-client-cert-auth", "--name=a", "extra", "--auto-tls=true"], "goflag")
    assert f.get("client-cert-auth") == "true" and f.get("name") == "a"
    assert not f.has("auto-tls")
    assert parse_flags(["--data_dir=/x"], "goflag").has("data_dir")


@given(st.lists(st.tuples(st.sampled_from(["audit-log-path", "etcd-servers", "bind-address"]),
                          st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=6),
                          st.booleans()), min_size=1, max_size=8))
def test_pflag_last_scalar_wins(items: list[tuple[str, str, bool]]) -> None:
    argv: list[str] = []
    for name, value, joined in items:
        argv += [f"--{name}={value}"] if joined else [f"--{name}", value]
    flags = parse_flags(argv)
    for name in {n for n, _, _ in items}:
        assert flags.get(name) == [v for n, v, _ in items if n == name][-1]


def test_discover_ambiguous_and_pid_choice(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {10: ["kube-apiserver", "--profiling=false"], 11: ["kubeward-k8s", "apiserver"],
                                12: ["bash"]})
    found = discover(proc)
    assert found.one("kube-apiserver") is None
    assert any("2 kube-apiserver processes (pids 10, 11)" in e.message for e in found.errors)
    chosen = discover(proc, frozenset({11, 12, 99}))
    p = chosen.one("kube-apiserver")
    assert p is not None and p.pid == 11
    messages = sorted(e.message for e in chosen.errors)
    assert messages == ["no such process", "runs bash, not a Kubernetes component"]


def _node(tmp: Path) -> Path:
    root = tmp / "node"
    (root / "etc/kubernetes/manifests").mkdir(parents=True)
    (root / "var/lib/kubelet/conf.d").mkdir(parents=True)
    return root


def _cfg(tmp: Path, procs: dict[int, list[str]], env: dict[int, dict[str, str]] | None = None):  # type: ignore[no-untyped-def]
    root = tmp / "node"
    cfg, _ = load_live(fake_proc(tmp, procs, env, root), root=root)
    return cfg


def test_apiserver_flag_from_process_with_its_source(tmp_path: Path) -> None:
    _node(tmp_path)
    cfg = _cfg(tmp_path, {5: ["kubeward-k8s", "apiserver", "--anonymous-auth=false", "--anonymous-auth=true"]})
    hits = list(api_anonymous(cfg))
    assert len(hits) == 1
    _ref, loc, _path, msg = hits[0]
    assert msg.startswith("--anonymous-auth=true") and loc.file is not None and loc.file.endswith("proc/5/cmdline")
    _node(tmp_path / "b")
    assert list(api_anonymous(_cfg(tmp_path / "b", {5: ["kube-apiserver", "--anonymous-auth=false"]}))) == []


def test_etcd_environment_fills_unset_flags(tmp_path: Path) -> None:
    _node(tmp_path)
    cfg = _cfg(tmp_path, {7: ["etcd", "--name=x"]}, {7: {"ETCD_CLIENT_CERT_AUTH": "true"}})
    assert list(etcd_client_auth(cfg)) == []
    assert cfg.components["etcd"].flags.origin["client-cert-auth"] == "environment ETCD_CLIENT_CERT_AUTH"
    _node(tmp_path / "b")
    cfg = _cfg(tmp_path / "b", {7: ["etcd", "--client-cert-auth=false"]}, {7: {"ETCD_CLIENT_CERT_AUTH": "true"}})
    assert len(list(etcd_client_auth(cfg))) == 1  # the command line wins over the environment


def test_kubelet_flags_override_config_and_dropins(tmp_path: Path) -> None:
    root = _node(tmp_path)
    (root / "var/lib/kubelet/config.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}}, "authorization": {"mode": "Webhook"},
        "readOnlyPort": 0}))
    (root / "var/lib/kubelet/conf.d/10-ro.conf").write_text(yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "readOnlyPort": 10255}))
    cfg = _cfg(tmp_path, {9: ["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml",
                              "--config-dir=/var/lib/kubelet/conf.d", "--anonymous-auth=true"]})
    assert cfg.kubelet is not None and cfg.kubelet_process is not None and cfg.kubelet_process.pid == 9
    assert [m for *_, m in kubelet_anonymous(cfg)] == ["--anonymous-auth=true: anonymous requests reach the kubelet"]
    assert [m for *_, m in kubelet_ro_port(cfg)] == ["/readOnlyPort=10255: unauthenticated read-only API is served"]
    assert list(kubelet_authz(cfg)) == []


def test_kubelet_without_config_runs_the_legacy_defaults(tmp_path: Path) -> None:
    _node(tmp_path)
    cfg = _cfg(tmp_path, {9: ["kubelet", "--kubeconfig=/etc/kubernetes/kubelet.conf"]})
    assert len(list(kubelet_anonymous(cfg))) == 1
    assert len(list(kubelet_authz(cfg))) == 1
    assert len(list(kubelet_ro_port(cfg))) == 1


def test_kubelet_config_named_but_missing_is_an_error(tmp_path: Path) -> None:
    _node(tmp_path)
    cfg = _cfg(tmp_path, {9: ["kubelet", "--config=/nope.yaml"]})
    assert cfg.kubelet is None
    assert [(e.file, e.message) for e in cfg.errors] == [("/nope.yaml", "no such file (named by the running process)")]


def _proxy_conf(root: Path, **values: object) -> None:
    (root / "var/lib/kube-proxy").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/kube-proxy/config.conf").write_text(yaml.safe_dump({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration", **values}))


def test_kube_proxy_config_file_replaces_flags(tmp_path: Path) -> None:
    root = _node(tmp_path)
    _proxy_conf(root, metricsBindAddress="127.0.0.1:10249",
                clientConnection={"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"})
    (root / "var/lib/kube-proxy/kubeconfig.conf").write_text("apiVersion: v1\nkind: Config\n")
    os.chmod(root / "var/lib/kube-proxy/kubeconfig.conf", 0o644)
    cfg = _cfg(tmp_path, {3: ["kube-proxy", "--config=/var/lib/kube-proxy/config.conf",
                              "--metrics-bind-address=0.0.0.0:10249"]})
    v, where = proxy_value(cfg, "metrics-bind-address", "/metricsBindAddress", "")
    assert (v, where) == ("127.0.0.1:10249", "/metricsBindAddress in config.conf")
    assert list(live_checks.proxy_metrics_local(cfg)) == []
    modes = [m for *_, m in live_checks.proxy_kubeconfig_mode(cfg)]
    assert len(modes) == 1 and "mode 0644" in modes[0]


@pytest.mark.parametrize(("argv", "fails"), [
    (["kube-proxy", "--metrics-bind-address=0.0.0.0:10249"], True),
    (["kube-proxy", "--metrics-bind-address=:10249"], True),
    (["kube-proxy", "--metrics-bind-address=[::1]:10249"], False),
    (["kube-proxy"], False),  # the default is 127.0.0.1:10249
])
def test_kube_proxy_metrics_from_flags_without_config(tmp_path: Path, argv: list[str], fails: bool) -> None:
    _node(tmp_path)
    cfg = _cfg(tmp_path, {3: argv})
    assert bool(list(live_checks.proxy_metrics_local(cfg))) is fails


def test_kube_proxy_absent_is_not_assessed(tmp_path: Path) -> None:
    from kubeward.controls.node import NotRead

    _node(tmp_path)
    cfg = _cfg(tmp_path, {5: ["kube-apiserver"]})
    with pytest.raises(NotRead, match="no kube-proxy process"):
        list(live_checks.proxy_metrics_local(cfg))


@pytest.mark.parametrize(("value", "fails"), [(0, True), (50, False), ("fast", True), (-1, True)])
def test_event_record_qps(tmp_path: Path, value: object, fails: bool) -> None:
    root = _node(tmp_path)
    (root / "var/lib/kubelet/config.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "eventRecordQPS": value}))
    cfg = _cfg(tmp_path, {9: ["kubelet", "--config=/var/lib/kubelet/config.yaml"]})
    assert bool(list(kubelet_checks.kubelet_event_qps(cfg))) is fails


def _manifest(root: Path, name: str, argv: list[str]) -> None:
    (root / f"etc/kubernetes/manifests/{name}.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {"containers": [{"name": name, "image": "x", "command": argv}]}}))


def test_running_process_differs_from_its_manifest(tmp_path: Path) -> None:
    root = _node(tmp_path)
    _manifest(root, "kube-apiserver", ["kube-apiserver", "--profiling=false", "--advertise-address=$(POD_IP)"])
    _manifest(root, "kube-scheduler", ["kube-scheduler"])
    cfg = _cfg(tmp_path, {5: ["kube-apiserver", "--profiling=true", "--advertise-address=10.0.0.1"]})
    assert manifest_drift(cfg.components["kube-apiserver"]) == ["profiling"]
    msgs = sorted(m for *_, m in drift.running_matches_manifest(cfg))
    assert msgs == ["kube-apiserver (pid 5) runs with --profiling not as its manifest says",
                    "kube-scheduler: static-pod manifest on disk but no kube-scheduler process running"]


def test_running_process_as_its_manifest_passes(tmp_path: Path) -> None:
    root = _node(tmp_path)
    _manifest(root, "kube-apiserver", ["kube-apiserver", "--profiling=false"])
    cfg = _cfg(tmp_path, {5: ["/usr/local/bin/kube-apiserver", "--profiling=false"]})
    assert list(drift.running_matches_manifest(cfg)) == []


def test_bool_flag_never_takes_the_next_argument(tmp_path: Path) -> None:
    """`--profiling false` is profiling on (pflag: a bool flag's value only after `=`), so it drifts."""
    root = _node(tmp_path)
    _manifest(root, "kube-apiserver", ["kube-apiserver", "--profiling=false"])
    cfg = _cfg(tmp_path, {5: ["kube-apiserver", "--profiling", "false"]})
    assert cfg.components["kube-apiserver"].flags.get("profiling") == "true"
    assert manifest_drift(cfg.components["kube-apiserver"]) == ["profiling"]


def test_kube_proxy_wrong_type_is_a_finding(tmp_path: Path) -> None:
    root = _node(tmp_path)
    _proxy_conf(root, metricsBindAddress=10249)
    cfg = _cfg(tmp_path, {3: ["kube-proxy", "--config=/var/lib/kube-proxy/config.conf"]})
    assert [m for *_, m in live_checks.proxy_metrics_local(cfg)] == [
        "/metricsBindAddress in config.conf=10249 is not an address string"]


def _cli(*args: str) -> Any:
    from click.testing import CliRunner

    from kubeward.cli.main import cli

    return CliRunner().invoke(cli, ["node", "check", *args])


def test_cli_live_json_benchmark_and_errors(tmp_path: Path) -> None:
    root = _node(tmp_path)
    proc = fake_proc(tmp_path, {5: ["kubeward-k8s", "apiserver", "--anonymous-auth=true"],
                                9: ["kubelet", "--config=/missing.yaml"]}, root=root)
    r = _cli("--live", "--proc", str(proc), "--root", str(root), "-o", "json", "--fail-on", "none")
    assert r.exit_code == 2  # the kubelet's config file is not there: a clear error, the rest is judged
    assert "kubeward: /missing.yaml: no such file (named by the running process)" in r.stderr
    doc = orjson.loads(r.stdout)
    ids = {f["control"]["id"] for f in doc["findings"]}
    assert "KW-CIS-1.2.1" in ids
    states = doc["summary"]["states"]
    assert set(states) == {"PASS", "FAIL", "WARN", "MANUAL", "SKIP"} and states["FAIL"] >= 1 and states["MANUAL"] >= 1
    assert {n["what"]: n["reason"] for n in doc["notAssessed"]}["kubelet"] == \
        "the configuration the kubelet names could not be read"
    r = _cli("--live", "--proc", str(proc), "--root", str(root), "--benchmark", "cis-1.12", "--show-passed")
    assert "KW-NODE-00" not in r.stdout and "[FAIL] 1.2.1 " in r.stdout
    assert "== Summary total ==" in r.stdout


def test_cli_pid_needs_live_and_nothing_running_is_exit_2(tmp_path: Path) -> None:
    root = _node(tmp_path)
    r = _cli("--offline", "--root", str(root), "--pid", "5")
    assert r.exit_code == 2 and "--pid needs --live" in r.stderr
    proc = fake_proc(tmp_path, {12: ["bash"]})
    r = _cli("--live", "--proc", str(proc), "--root", str(root))
    assert r.exit_code == 2 and "no Kubernetes component running" in r.stderr


@pytest.mark.parametrize(("mode", "owner", "mode_fails", "owner_fails"), [
    (0o600, (0, 0), False, False), (0o640, (0, 0), True, False), (0o600, (1000, 1000), False, True)])
def test_kube_proxy_kubeconfig_mode_and_owner(tmp_path: Path, mode: int, owner: tuple[int, int], mode_fails: bool,
                                              owner_fails: bool) -> None:
    if os.geteuid() != 0 and owner != (os.getuid(), os.getgid()):
        pytest.skip("changing a file's owner needs root")
    root = _node(tmp_path)
    kc = root / "etc/kube-proxy.kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\n")
    kc.chmod(mode)
    os.chown(kc, *owner)
    cfg = _cfg(tmp_path, {3: ["kube-proxy", "--kubeconfig=/etc/kube-proxy.kubeconfig"]})
    assert bool(list(live_checks.proxy_kubeconfig_mode(cfg))) is mode_fails
    assert bool(list(live_checks.proxy_kubeconfig_owner(cfg))) is owner_fails


def test_kube_proxy_kubeconfig_named_but_absent_is_not_assessed(tmp_path: Path) -> None:
    from kubeward.controls.node import NotRead

    _node(tmp_path)
    cfg = _cfg(tmp_path, {3: ["kube-proxy", "--kubeconfig=/etc/none.kubeconfig"]})
    with pytest.raises(NotRead, match="named by kube-proxy but not found"):
        list(live_checks.proxy_kubeconfig_mode(cfg))


def test_live_only_checks_are_manual_offline(tmp_path: Path) -> None:
    from kubeward.controls.node import benchmark, live_only, run
    from kubeward.sources.node import load_node

    assert live_only() == {"KW-CIS-4.1.3", "KW-CIS-4.1.4", "KW-CIS-4.3.1", "KW-NODE-002"}
    root = _node(tmp_path)
    _manifest(root, "kube-apiserver", ["kube-apiserver"])
    states = {c.number: c.state for c in benchmark(run(load_node(root)))}
    assert {states[n] for n in ("4.1.3", "4.1.4", "4.3.1", "KW-NODE-002")} == {"MANUAL"}


def test_etcd_config_file_replaces_flags_and_environment(tmp_path: Path) -> None:
    root = _node(tmp_path)
    (root / "etc/etcd.yaml").write_text(yaml.safe_dump({
        "name": "e", "data-dir": "/var/lib/etcd",
        "client-transport-security": {"cert-file": "/s.crt", "key-file": "/s.key", "client-cert-auth": False},
        "peer-transport-security": {"client-cert-auth": True, "auto-tls": False}}))
    cfg = _cfg(tmp_path, {7: ["etcd", "--config-file=/etc/etcd.yaml", "--client-cert-auth"]},
               {7: {"ETCD_CLIENT_CERT_AUTH": "true"}})
    e = cfg.components["etcd"]
    assert e.flags.get("client-cert-auth") == "false" and e.flags.get("peer-client-cert-auth") == "true"
    assert e.flags.get("peer-auto-tls") == "false" and e.flags.get("cert-file") == "/s.crt"
    hits = list(etcd_client_auth(cfg))
    assert len(hits) == 1 and hits[0][1].file is not None and hits[0][1].file.endswith("etc/etcd.yaml")


def test_etcd_config_file_unreadable_is_an_error(tmp_path: Path) -> None:
    _node(tmp_path)
    cfg = _cfg(tmp_path, {7: ["etcd", "--config-file=/etc/none.yaml"]})
    assert "etcd" not in cfg.components and len(cfg.errors) == 1 and "none.yaml" in cfg.errors[0].file


@pytest.mark.parametrize(("config", "fails"), [({}, True), ({"enableProfiling": False}, False),
                                               ({"enableProfiling": "no"}, True)])
def test_scheduler_profiling_comes_from_its_config_file(tmp_path: Path, config: dict[str, object], fails: bool) -> None:
    from kubeward.controls.node.scheduler import sch_profiling

    root = _node(tmp_path)
    (root / "etc/scheduler.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration", **config}))
    cfg = _cfg(tmp_path, {4: ["kube-scheduler", "--config=/etc/scheduler.yaml", "--profiling=false"]})
    hits = list(sch_profiling(cfg))
    assert bool(hits) is fails  # --profiling=false is ignored when --config is given
    if hits:
        assert hits[0][1].file is not None and hits[0][1].file.endswith("etc/scheduler.yaml")
