"""node check: typed flag semantics, CIS controls on a kubeadm-like node tree, and the checks beyond flags."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from kubeward.cli.main import cli
from kubeward.controls.node import effective_admission, run
from kubeward.engines.encryption import generate
from kubeward.pki.layout import InitOptions, init
from kubeward.sources.node import load_node, parse_bool, parse_duration, parse_flags

PKI = "/etc/kubernetes/pki"
APISERVER = [
    "kube-apiserver", "--advertise-address=10.0.0.10", "--allow-privileged=true", "--anonymous-auth=false",
    "--authorization-mode=Node,RBAC", f"--client-ca-file={PKI}/ca.crt",
    "--enable-admission-plugins=NodeRestriction,EventRateLimit,AlwaysPullImages",
    f"--etcd-cafile={PKI}/etcd/ca.crt", f"--etcd-certfile={PKI}/apiserver-etcd-client.crt",
    f"--etcd-keyfile={PKI}/apiserver-etcd-client.key", "--etcd-servers=https://127.0.0.1:2379",
    f"--kubelet-client-certificate={PKI}/apiserver-kubelet-client.crt",
    f"--kubelet-client-key={PKI}/apiserver-kubelet-client.key", f"--kubelet-certificate-authority={PKI}/ca.crt",
    "--profiling=false", "--audit-log-path=/var/log/kubernetes/audit.log", "--audit-log-maxage=30",
    "--audit-log-maxbackup=10", "--audit-log-maxsize=100", "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
    f"--service-account-key-file={PKI}/sa.pub", f"--tls-cert-file={PKI}/apiserver.crt",
    f"--tls-private-key-file={PKI}/apiserver.key",
    "--encryption-provider-config=/etc/kubernetes/enc/encryption.yaml",
    "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "--service-account-extend-token-expiration=false",
]
CONTROLLER = ["kube-controller-manager", "--bind-address=127.0.0.1", "--profiling=false",
              "--use-service-account-credentials=true", f"--service-account-private-key-file={PKI}/sa.key",
              f"--root-ca-file={PKI}/ca.crt", "--feature-gates=RotateKubeletServerCertificate=true"]
SCHEDULER = ["kube-scheduler", "--bind-address=127.0.0.1", "--profiling=false"]
ETCD = ["etcd", "--data-dir=/var/lib/etcd", f"--cert-file={PKI}/etcd/server.crt", f"--key-file={PKI}/etcd/server.key",
        "--client-cert-auth=true", f"--trusted-ca-file={PKI}/etcd/ca.crt", f"--peer-cert-file={PKI}/etcd/peer.crt",
        f"--peer-key-file={PKI}/etcd/peer.key", "--peer-client-cert-auth=true",
        f"--peer-trusted-ca-file={PKI}/etcd/ca.crt"]
KUBELET = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
           "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                              "x509": {"clientCAFile": f"{PKI}/ca.crt"}},
           "authorization": {"mode": "Webhook"}, "rotateCertificates": True, "serverTLSBootstrap": True,
           "tlsCipherSuites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
           "podPidsLimit": 4096, "seccompDefault": True}


def pod(name: str, argv: list[str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"hostNetwork": True, "containers": [{"name": name, "image": f"registry.k8s.io/{name}:v1.31.0",
                                                           "command": argv}]}}


def write(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


@pytest.fixture(scope="module")
def tree_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("node")
    init(root / "etc/kubernetes/pki", InitOptions(node_name="cp1", key_type="ecdsa"))
    man = root / "etc/kubernetes/manifests"
    for name, argv in (("kube-apiserver", APISERVER), ("kube-controller-manager", CONTROLLER),
                       ("kube-scheduler", SCHEDULER), ("etcd", ETCD)):
        write(man / f"{name}.yaml", yaml.safe_dump(pod(name, argv), sort_keys=False))
    for conf in ("admin.conf", "super-admin.conf", "scheduler.conf", "controller-manager.conf", "kubelet.conf"):
        write(root / "etc/kubernetes" / conf, "apiVersion: v1\nkind: Config\n")
    write(root / "etc/kubernetes/enc/encryption.yaml", generate("secretbox", ("secrets",)))
    write(root / "etc/kubernetes/audit-policy.yaml",
          "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    write(root / "var/lib/kubelet/config.yaml", yaml.safe_dump(KUBELET))
    write(root / "etc/systemd/system/kubelet.service.d/10-kubeadm.conf", "[Service]\n")
    (root / "var/lib/etcd").mkdir(parents=True, mode=0o700)
    os.chmod(root / "var/lib/etcd", 0o700)
    return root


@pytest.fixture()
def tree(tree_src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "root"
    shutil.copytree(tree_src, dst)
    return dst


def findings(root: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in run(load_node(root)).findings:
        out.setdefault(f.control.id, []).append(f.message)
    return out


def edit_flags(root: Path, component: str, fn) -> None:  # type: ignore[no-untyped-def]
    p = root / f"etc/kubernetes/manifests/{component}.yaml"
    doc = yaml.safe_load(p.read_text())
    doc["spec"]["containers"][0]["command"] = fn(doc["spec"]["containers"][0]["command"])
    p.write_text(yaml.safe_dump(doc, sort_keys=False))


def drop(prefix: str):  # type: ignore[no-untyped-def]
    return lambda argv: [a for a in argv if not a.startswith(prefix)]


def test_hardened_node_is_clean(tree: Path) -> None:
    assert findings(tree) == {}
    from kubeward.controls.node import live_only

    report = run(load_node(tree))
    assert {n.what for n in report.not_assessed} == live_only() and report.objects == 5  # MANUAL offline
    assert all(r.evaluated == 1 for cid, r in report.controls.items() if cid not in live_only())


def test_defaults_are_typed(tree: Path) -> None:
    # removing flags exposes the component defaults: anonymous-auth/profiling true, authz AlwaysAllow
    edit_flags(tree, "kube-apiserver", lambda a: [x for x in a if not x.startswith(
        ("--anonymous-auth", "--profiling", "--authorization-mode"))])
    got = findings(tree)
    assert any("defaults to true" in m for m in got["KW-CIS-1.2.1"])
    assert any("defaults to AlwaysAllow" in m for m in got["KW-CIS-1.2.6"])
    assert {"KW-CIS-1.2.7", "KW-CIS-1.2.8", "KW-CIS-1.2.15"} <= set(got)


def test_admission_effective_set(tree: Path) -> None:
    edit_flags(tree, "kube-apiserver", lambda a: [*a, "--disable-admission-plugins=ServiceAccount",
                                                  "--enable-admission-plugins=AlwaysAdmit"])
    got = findings(tree)
    assert "KW-CIS-1.2.12" in got and "KW-CIS-1.2.10" in got
    assert "KW-CIS-1.2.14" not in got  # the earlier --enable-admission-plugins still counts (slice accumulates)
    assert "KW-CIS-1.2.13" not in got  # NamespaceLifecycle is on by default


def test_bare_bool_and_space_separated(tree: Path) -> None:
    edit_flags(tree, "etcd", lambda a: [x for x in a if not x.startswith("--client-cert-auth")] + ["--auto-tls"])
    edit_flags(tree, "kube-scheduler", lambda a: [a[0], "--bind-address", "0.0.0.0", "--profiling=false"])
    got = findings(tree)
    assert "KW-CIS-2.2" in got and "KW-CIS-2.3" in got
    assert got["KW-CIS-1.4.2"] == ["--bind-address=0.0.0.0: metrics/health served on all interfaces"]


def test_args_without_command(tree: Path) -> None:
    # the image entrypoint runs etcd; every `args` item is a flag (none is mistaken for the executable)
    p = tree / "etc/kubernetes/manifests/etcd.yaml"
    doc = yaml.safe_load(p.read_text())
    c = doc["spec"]["containers"][0]
    c["args"] = [a for a in c.pop("command")[1:] if not a.startswith(("--peer-client-cert-auth", "--client-cert"))]
    c["args"].insert(0, "--client-cert-auth=false")
    p.write_text(yaml.safe_dump(doc))
    got = findings(tree)
    assert got["KW-CIS-2.2"] == ["--client-cert-auth=false; want true"]
    assert "KW-CIS-2.5" in got and "KW-CIS-2.1" not in got


def test_etcd_ca_same_content_as_client_ca(tree: Path) -> None:
    # different path, same CA: kube-bench's "set" test passes, the real check does not
    shutil.copy(tree / "etc/kubernetes/pki/ca.crt", tree / "etc/kubernetes/pki/etcd/ca.crt")
    got = findings(tree)
    assert "same CA key" in got["KW-CIS-2.7"][0]


def test_etcd_trusts_client_ca_path(tree: Path) -> None:
    edit_flags(tree, "etcd", lambda a: [x if not x.startswith("--trusted-ca-file") else f"--trusted-ca-file={PKI}/ca.crt"
                                        for x in a])
    assert "is the apiserver --client-ca-file" in findings(tree)["KW-CIS-2.7"][0]


def test_encryption_identity_first(tree: Path) -> None:
    enc = tree / "etc/kubernetes/enc/encryption.yaml"
    doc = yaml.safe_load(enc.read_text())
    doc["resources"][0]["providers"].reverse()
    enc.write_text(yaml.safe_dump(doc))
    got = findings(tree)
    assert any("identity" in m for m in got["KW-CIS-1.2.28"])
    assert doc["resources"][0]["providers"][1]["secretbox"]["keys"][0]["secret"] not in str(got)


def test_encryption_missing_file_and_unset(tree: Path) -> None:
    (tree / "etc/kubernetes/enc/encryption.yaml").unlink()
    assert "does not exist" in findings(tree)["KW-CIS-1.2.28"][0]
    edit_flags(tree, "kube-apiserver", drop("--encryption-provider-config"))
    got = findings(tree)
    assert "KW-CIS-1.2.27" in got and "KW-CIS-1.2.28" not in got


def test_audit_policy_logs_nothing(tree: Path) -> None:
    write(tree / "etc/kubernetes/audit-policy.yaml",
          "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n")
    assert "no rule logs anything" in findings(tree)["KW-NODE-001"][0]
    edit_flags(tree, "kube-apiserver", drop("--audit-policy-file"))
    assert "--audit-policy-file is not" in findings(tree)["KW-NODE-001"][0]


def test_audit_thresholds(tree: Path) -> None:
    edit_flags(tree, "kube-apiserver", lambda a: [x if not x.startswith("--audit-log-maxage") else "--audit-log-maxage=7"
                                                  for x in a if not x.startswith("--audit-log-maxsize")])
    got = findings(tree)
    assert got["KW-CIS-1.2.17"] == ["--audit-log-maxage=7; want >= 30"]
    assert "defaults to 0" in got["KW-CIS-1.2.19"][0]


def test_file_modes_and_owners(tree: Path) -> None:
    os.chmod(tree / "etc/kubernetes/manifests/kube-apiserver.yaml", 0o644)
    os.chmod(tree / "etc/kubernetes/admin.conf", 0o640)
    os.chmod(tree / "etc/kubernetes/pki/etcd/server.key", 0o644)
    os.chmod(tree / "var/lib/etcd", 0o755)
    if os.geteuid() == 0:
        os.chown(tree / "etc/kubernetes/scheduler.conf", 1000, 1000)
    got = findings(tree)
    assert "mode 0644" in got["KW-CIS-1.1.1"][0]
    assert "KW-CIS-1.1.13" in got and "KW-CIS-1.1.21" in got and "KW-CIS-1.1.11" in got
    if os.geteuid() == 0:
        assert "owned by 1000:1000" in got["KW-CIS-1.1.16"][0]


def test_kubelet_defaults_and_flag_override(tree: Path) -> None:
    cfg = dict(KUBELET)
    cfg.pop("rotateCertificates")
    cfg["readOnlyPort"] = 10255
    cfg["streamingConnectionIdleTimeout"] = "0s"
    write(tree / "var/lib/kubelet/config.yaml", yaml.safe_dump(cfg))
    write(tree / "var/lib/kubelet/kubeadm-flags.env", 'KUBELET_KUBEADM_ARGS="--anonymous-auth=true --pod-infra=x"\n')
    got = findings(tree)
    assert {"KW-CIS-4.2.1", "KW-CIS-4.2.4", "KW-CIS-4.2.5", "KW-CIS-4.2.10"} <= set(got)
    assert got["KW-CIS-4.2.1"][0].startswith("--anonymous-auth=true")


def test_kubelet_hardening_extras(tree: Path) -> None:
    cfg = dict(KUBELET)
    for k in ("serverTLSBootstrap", "podPidsLimit", "seccompDefault"):
        cfg.pop(k)
    cfg["tlsCipherSuites"] = ["TLS_RSA_WITH_AES_128_CBC_SHA"]
    cfg["featureGates"] = {"RotateKubeletServerCertificate": False}
    write(tree / "var/lib/kubelet/config.yaml", yaml.safe_dump(cfg))
    write(tree / "var/lib/kubelet/kubeadm-flags.env", 'KUBELET_KUBEADM_ARGS="--hostname-override=other"\n')
    os.chmod(tree / "etc/systemd/system/kubelet.service.d/10-kubeadm.conf", 0o644)
    got = findings(tree)
    assert {"KW-CIS-4.2.7", "KW-CIS-4.2.9", "KW-CIS-4.2.11", "KW-CIS-4.2.12", "KW-CIS-4.2.13", "KW-CIS-4.2.14",
            "KW-CIS-4.1.1"} <= set(got)
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in got["KW-CIS-4.2.12"][0]
    assert "unlimited" in got["KW-CIS-4.2.13"][0]


def test_kubelet_config_booleans_read_as_written(tree: Path) -> None:
    """A KubeletConfiguration boolean is shown as YAML spells it (test/e2e_node/jenkins/default-kubelet-config.yaml
    leaves rotateCertificates unset: the message said `unset=False`)."""
    cfg = dict(KUBELET, rotateCertificates=False, authentication={"anonymous": {"enabled": True}})
    cfg.pop("seccompDefault")
    write(tree / "var/lib/kubelet/config.yaml", yaml.safe_dump(cfg))
    got = findings(tree)
    assert got["KW-CIS-4.2.10"] == ["/rotateCertificates=false: client certificate rotation is off"]
    assert got["KW-CIS-4.2.14"] == ["/seccompDefault unset=false: containers without a profile run Unconfined"]
    assert got["KW-CIS-4.2.1"] == ["/authentication/anonymous/enabled=true: anonymous requests reach the kubelet"]


def test_static_pods_of_any_file_name_as_the_kubelet_reads_them(tree: Path) -> None:
    """The kubelet reads every file of its static-pod folder but dotfiles (pkg/kubelet/config/file.go
    extractFromDir): GCE's kube-scheduler.manifest was not read, and its CIS 1.4 checks were not assessed."""
    man = tree / "etc/kubernetes/manifests"
    (man / "kube-scheduler.yaml").unlink()
    gce = Path(__file__).parents[1] / "data/upstream/kubernetes/kube-scheduler.manifest"
    shutil.copy(gce, man / "kube-scheduler.manifest")
    write(man / ".kube-scheduler.yaml.swp", "not: [yaml")
    node = load_node(tree)
    assert node.components["kube-scheduler"].manifest.name == "kube-scheduler.manifest"
    assert node.errors == []
    got = findings(tree)
    assert got["KW-CIS-1.4.1"] and got["KW-CIS-1.4.2"]  # GCE leaves --profiling and --bind-address at defaults


def test_locations_point_at_flag_lines(tree: Path) -> None:
    edit_flags(tree, "kube-apiserver", drop("--profiling"))
    edit_flags(tree, "kube-apiserver", lambda a: [*a, "--token-auth-file=/etc/tokens.csv"])
    report = run(load_node(tree))
    f = next(x for x in report.findings if x.control.id == "KW-CIS-1.2.2")
    text = (tree / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text().splitlines()
    assert f.location.line is not None and "--token-auth-file" in text[f.location.line - 1]
    assert f.object.kind == "Pod" and f.object.namespace == "kube-system"


def test_cli_json_and_exit_codes(tree: Path) -> None:
    r = CliRunner().invoke(cli, ["node", "check", "--root", str(tree), "-o", "json"])
    assert r.exit_code == 0, r.output
    doc = orjson.loads(r.output)
    assert doc["findings"] == [] and doc["summary"]["controls"] > 50
    edit_flags(tree, "etcd", drop("--client-cert-auth"))
    r = CliRunner().invoke(cli, ["node", "check", "--root", str(tree), "-o", "json"])
    assert r.exit_code == 1
    assert [f["control"]["frameworks"] for f in orjson.loads(r.output)["findings"]] == [["cis-2.2"]]


def test_cli_nothing_found_and_garbage(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["node", "check", "--root", str(tmp_path)])
    assert r.exit_code == 2 and "no control-plane manifests" in r.output
    write(tmp_path / "m/kube-apiserver.yaml", ":\n  - [unclosed")
    r = CliRunner().invoke(cli, ["node", "check", "--root", str(tmp_path), "--manifests", str(tmp_path / "m")])
    assert r.exit_code == 2 and "kube-apiserver.yaml" in r.output and "Traceback" not in r.output


def test_partial_node_marks_not_assessed(tree: Path) -> None:
    shutil.rmtree(tree / "etc/kubernetes/manifests")
    report = run(load_node(tree))
    from kubeward.controls.node import live_only

    assert {n.what for n in report.not_assessed} - live_only() == {"kube-apiserver", "kube-controller-manager",
                                                                 "kube-scheduler", "etcd"}
    assert report.controls["KW-CIS-1.2.1"].evaluated == 0 and report.controls["KW-CIS-4.2.1"].evaluated == 1


# ---- flag semantics -----------------------------------------------------------------------------------------

def test_parse_flags_forms() -> None:
    f = parse_flags(["--a=1", "--b", "two", "--profiling", "--c", "--enable-admission-plugins=X",
                     "--enable-admission-plugins", "Y,Z", "--a=3", "--", "--ignored=1"])
    assert f.get("a") == "3" and f.get("b") == "two" and f.get("profiling") == "true" and f.get("c") == "true"
    assert f.list("enable-admission-plugins") == ["X", "Y", "Z"] and not f.has("ignored")


@given(st.sampled_from(["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
                        "yes", "on", "tRUE", ""]))
def test_parse_bool_is_strconv(text: str) -> None:
    expected = True if text in ("1", "t", "T", "TRUE", "true", "True") else (
        False if text in ("0", "f", "F", "FALSE", "false", "False") else None)
    assert parse_bool(text) is expected


@given(st.lists(st.sampled_from(["A", "B", "NodeRestriction", "ServiceAccount"]), max_size=4),
       st.lists(st.sampled_from(["A", "ServiceAccount", "NamespaceLifecycle"]), max_size=3))
def test_admission_set_algebra(enable: list[str], disable: list[str]) -> None:
    argv = ["kube-apiserver"]
    if enable:
        argv.append("--enable-admission-plugins=" + ",".join(enable))
    if disable:
        argv.append("--disable-admission-plugins=" + ",".join(disable))
    from kubeward.controls.node import DEFAULT_ON_ADMISSION
    from kubeward.sources.node import Component

    comp = Component("kube-apiserver", Path("x"), None, 0, argv, parse_flags(argv[1:]), "")  # type: ignore[arg-type]
    got = effective_admission(comp)
    for name in {*enable, *disable, "NamespaceLifecycle"}:
        assert (name in got) == ((name in enable or name in DEFAULT_ON_ADMISSION) and name not in disable)


@pytest.mark.parametrize(("text", "secs"), [("0", 0.0), ("0s", 0.0), ("4h0m0s", 14400.0), ("1.5m", 90.0),
                                            ("300ms", 0.3), ("5", None), ("", None), ("1x", None)])
def test_parse_duration(text: str, secs: float | None) -> None:
    assert parse_duration(text) == secs


def test_kubelet_config_fifo_is_an_error_not_a_hang(tree: Path) -> None:
    (tree / "var/lib/kubelet/config.yaml").unlink()
    os.mkfifo(tree / "var/lib/kubelet/config.yaml")
    r = CliRunner().invoke(cli, ["node", "check", "--root", str(tree),
                                 "--kubelet-config", str(tree / "var/lib/kubelet/config.yaml")])
    assert "not a regular file" in r.output and r.exit_code == 2
    assert "Traceback" not in r.output


# ---- the benchmark view ----------------------------------------------------------------------------------------

def states(root: Path, exceptions: Path | None = None) -> dict[str, str]:
    from kubeward.controls.node import benchmark
    from kubeward.exceptions import load_exceptions

    report = run(load_node(root))
    if exceptions is not None:
        load_exceptions(str(exceptions)).apply(report)
    return {c.number: c.state for c in benchmark(report)}


def test_benchmark_hardened_node_passes_all_but_manual(tree: Path) -> None:
    from kubeward.controls.node import MANUAL

    live_only = {"4.1.3", "4.1.4", "4.3.1", "KW-NODE-002"}  # judged from running processes; MANUAL offline
    got = states(tree)
    assert {n for n, s in got.items() if s != "PASS"} == set(MANUAL) | live_only
    assert all(got[n] == "MANUAL" for n in set(MANUAL) | live_only)
    assert got["1.2.1"] == "PASS" and got["KW-NODE-001"] == "PASS"


def test_benchmark_unreadable_inputs_are_warn_never_pass(tree: Path) -> None:
    for p in ("etc/kubernetes/admin.conf", "etc/kubernetes/super-admin.conf", "etc/kubernetes/kubelet.conf",
              "etc/systemd/system/kubelet.service.d/10-kubeadm.conf"):
        (tree / p).unlink()
    shutil.rmtree(tree / "var/lib/etcd")
    (tree / "etc/kubernetes/manifests/kube-scheduler.yaml").unlink()
    for crt in (tree / "etc/kubernetes/pki").rglob("*.crt"):
        crt.unlink()
    report = run(load_node(tree))
    got = states(tree)
    for n in ("1.1.13", "1.1.14", "4.1.5", "4.1.6", "4.1.1", "4.1.2", "1.1.11", "1.1.20", "1.4.1", "1.4.2",
              "1.1.5", "1.1.6", "2.7", "4.1.7", "4.1.8"):
        assert got[n] == "WARN", n
    reasons = {n.what: n.reason for n in report.not_assessed}
    assert "admin.conf" in reasons["KW-CIS-1.1.13"] and "no kubelet service file" in reasons["KW-CIS-4.1.1"]
    assert "could not be compared" in reasons["KW-CIS-2.7"]
    assert report.controls["KW-CIS-1.1.13"].evaluated == 0  # not counted as judged (scores, junit)


def test_benchmark_fail_and_excepted(tree: Path) -> None:
    edit_flags(tree, "kube-apiserver", drop("--anonymous-auth"))
    edit_flags(tree, "kube-apiserver", drop("--profiling"))
    exc = tree / "exceptions.yaml"
    exc.write_text("exceptions:\n- controls: [KW-CIS-1.2.15]\n  reason: profiling stays on for the SRE team\n")
    got = states(tree, exc)
    assert got["1.2.1"] == "FAIL" and got["1.2.15"] == "SKIP"


def test_cli_table_reads_like_kube_bench(tree: Path) -> None:
    edit_flags(tree, "kube-apiserver", drop("--anonymous-auth"))
    os.unlink(tree / "etc/kubernetes/kubelet.conf")
    r = CliRunner().invoke(cli, ["node", "check", "--root", str(tree)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output  # 1.2.1 is medium: under --fail-on high
    out = r.stdout
    assert "[FAIL] 1.2.1 Ensure that the --anonymous-auth argument is set to false\n" in out
    assert "--anonymous-auth unset (defaults to true); want false" in out
    assert "[WARN] 4.1.5 Ensure that the --kubeconfig kubelet.conf file permissions" in out
    assert "[MANUAL] 1.2.20 Ensure that the --request-timeout argument is set as appropriate" in out
    assert "[PASS]" not in out and "[INFO] 1.2 API Server" in out
    summary = out[out.index("== Summary master =="):].splitlines()
    assert summary[1:5] == ["54 checks PASS", "1 checks FAIL", "0 checks WARN", "7 checks MANUAL"]
    total = out[out.index("== Summary total =="):].splitlines()
    assert total[2] == "1 checks FAIL" and total[3] == "2 checks WARN"
    assert "--show-passed lists them" in out
    r = CliRunner().invoke(cli, ["node", "check", "--root", str(tree), "--show-passed"], env={"COLUMNS": "80"})
    assert "[PASS] 1.2.2 Ensure that the --token-auth-file parameter is not set" in r.stdout
    long = [line for line in r.stdout.splitlines() if len(line) > 80]
    assert all(len(line.removeprefix("       - ").split()) == 1 for line in long), long  # only a long path
    assert "\x1b[" not in r.stdout  # not a terminal: no colour


def test_cli_table_to_file_says_what_it_wrote(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "node.txt"
    r = CliRunner().invoke(cli, ["node", "check", "--root", str(tree), "--output", str(out)])
    assert r.exit_code == 0 and r.stdout == ""
    assert r.stderr.strip() == f"kubeward: wrote {out} (94 checks: 84 PASS, 0 FAIL, 0 WARN, 10 MANUAL)"
    assert "== Summary total ==" in out.read_text()


def test_checks_behind_a_failed_flag_are_not_passes(tree: Path) -> None:
    edit_flags(tree, "kube-apiserver", drop("--encryption-provider-config"))
    edit_flags(tree, "kube-apiserver", drop("--audit-log-path"))
    got = states(tree)
    assert got["1.2.27"] == "FAIL" and got["1.2.28"] == "WARN"
    assert got["1.2.16"] == "FAIL" and got["KW-NODE-001"] == "WARN"


def test_worker_node_collapses_the_absent_control_plane(tree: Path) -> None:
    shutil.rmtree(tree / "etc/kubernetes/manifests")
    r = CliRunner().invoke(cli, ["node", "check", "--root", str(tree)], env={"COLUMNS": "200"})
    out = r.stdout
    assert r.exit_code == 0
    assert "[WARN] 1.2.4 … 1.2.19 (16 checks) not assessed: no control-plane static-pod manifests in " in out
    assert "[WARN] 1.2.1 Ensure that the --anonymous-auth argument is set to false" in out  # runs of 2 stay
    total = out[out.index("== Summary total =="):].splitlines()
    assert total[3] == f"{sum(1 for s in states(tree).values() if s == 'WARN')} checks WARN"  # each one counted
    assert "[PASS]" not in out and "4.2.1" not in out  # the kubelet passes


def test_benchmark_colours_states_only_when_asked(tree: Path) -> None:
    from kubeward.cli.node import render_benchmark
    from kubeward.controls.node import benchmark

    edit_flags(tree, "kube-apiserver", drop("--anonymous-auth"))
    checks = benchmark(run(load_node(tree)))
    coloured = render_benchmark(checks, show_passed=True, color=True, width=120)
    plain = render_benchmark(checks, show_passed=True, color=False, width=120)
    assert "\x1b[31m\x1b[1m[FAIL]" in coloured and "\x1b[32m[PASS]" in coloured and "\x1b[" not in plain
    assert len(coloured.splitlines()) == len(plain.splitlines())  # colour codes never change the wrapping


@pytest.mark.parametrize("container", [
    # kube-up's old manifests: a shell that runs the binary and redirects its log
    {"command": ["/bin/sh", "-c", "/usr/local/bin/kube-apiserver --client-ca-file=/srv/ca.crt\n"
                 "  --token-auth-file=/srv/known_tokens.csv --v=2 1>>/var/log/kube-apiserver.log 2>&1"]},
    {"command": ["sh", "-c", "mkfifo /tmp/log; exec kube-apiserver --client-ca-file='/srv/ca.crt' "
                 "--token-auth-file=/srv/known_tokens.csv && echo done"]},
    # kops / kube-up's go-runner wrapper keeps its own flags; the component's follow its binary
    {"command": ["/go-runner", "--log-file=/var/log/kube-apiserver.log", "--also-stdout=true",
                 "/usr/local/bin/kube-apiserver"], "args": ["--client-ca-file=/srv/ca.crt",
                                                            "--token-auth-file=/srv/known_tokens.csv"]},
    {"command": ["/hyperkube", "apiserver", "--client-ca-file=/srv/ca.crt", "--token-auth-file=/srv/t.csv"]},
])
def test_component_flags_behind_a_shell_or_a_wrapper(tmp_path: Path, container: dict) -> None:
    """The flags are the component's own, wherever its binary sits in the command: never "not set" because a
    shell script or a wrapper holds them."""
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver", "namespace": "kube-system"},
           "spec": {"containers": [{"name": "apiserver", "image": "registry.k8s.io/kube-apiserver:v1.31.0",
                                    **container}]}}
    write(tmp_path / "etc/kubernetes/manifests/kube-apiserver.yaml", yaml.safe_dump(doc))
    cfg = load_node(tmp_path)
    flags = cfg.components["kube-apiserver"].flags
    assert flags.get("client-ca-file") == "/srv/ca.crt" and flags.has("token-auth-file"), flags
    assert not flags.has("log-file") and not flags.has("also-stdout") and not cfg.errors


def test_shell_script_without_the_binary_is_an_error_not_unset_flags(tmp_path: Path) -> None:
    doc = pod("kube-apiserver", ["/bin/sh", "-c", "/start.sh"])
    write(tmp_path / "etc/kubernetes/manifests/kube-apiserver.yaml", yaml.safe_dump(doc))
    cfg = load_node(tmp_path)
    assert "kube-apiserver" not in cfg.components
    assert len(cfg.errors) == 1 and "no kube-apiserver command to read the flags from" in cfg.errors[0].message
