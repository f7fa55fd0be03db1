"""One CLI grammar: `-o yaml` is the `-o json` document wherever JSON exists; `--demo` on the reading commands;
inputs as positional paths or kubectl's `-f/--filename`."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from kubeward.cli.common import DEMO_DIR
from kubeward.cli.main import cli
from kubeward.findings import Finding, Location, ObjectRef, Report
from kubeward.formats import DOCUMENTS, FORMATS, document, render

FLOW = '{"src": "shop-frontend/storefront", "dst": "payments/ledger", "port": 8080, "protocol": "TCP"}\n'


def run(*args: str) -> tuple[int, str]:
    """Exit code and stdout (warnings on stderr stay out of the documents compared)."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout


def run_all(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


# Commands offering `-o json` on inputs a test can give (the others: test_report_commands_offer_yaml).
DOC_COMMANDS = [
    ("scan", "--demo"),
    ("demo",),
    ("controls",),
    ("pss", "check", "--demo", "--level", "restricted"),
    ("pss", "namespaces", "--demo"),
    ("netpol", "lint", "--demo"),
    ("netpol", "reach", "--demo"),
    ("netpol", "reach", "--demo", "--port", "5432"),
    ("netpol", "explain", "shop-frontend/storefront", "payments/ledger", "--port", "8080", "--demo"),
    ("rbac", "who-can", "get", "secrets", "-n", "payments", "--demo"),
    ("rbac", "matrix", "--sa", "payments/ledger", "-n", "payments", "--demo"),
    ("rbac", "risks", "--demo"),
    ("rbac", "paths", "--demo"),
]


@pytest.mark.parametrize("argv", DOC_COMMANDS, ids=" ".join)
def test_yaml_is_the_json_document(argv: tuple[str, ...]) -> None:
    code_j, as_json = run(*argv, "-o", "json")
    code_y, as_yaml = run(*argv, "-o", "yaml")
    assert code_j == code_y, as_yaml
    assert yaml.safe_load(as_yaml) == json.loads(as_json)
    assert not as_yaml.lstrip().startswith(("{", "[")), "block style"


def test_report_of_a_standalone_check_in_yaml(tmp_path: Path) -> None:
    conf = tmp_path / "enc.yaml"
    conf.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                    "- resources: [secrets]\n  providers:\n  - identity: {}\n")
    code_j, as_json = run("encryption", "check", str(conf), "-o", "json")
    code_y, as_yaml = run("encryption", "check", str(conf), "-o", "yaml")
    assert code_j == code_y and json.loads(as_json)["summary"]["findings"] >= 1
    assert yaml.safe_load(as_yaml) == json.loads(as_json)


def test_audit_commands_in_yaml(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(json.dumps({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete", "auditID": "1",
        "verb": "create", "requestURI": "/api/v1/namespaces/dev/pods/web/exec", "user": {"username": "jane"},
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "dev", "name": "web"},
        "sourceIPs": ["10.0.0.1"], "responseStatus": {"code": 101},
        "stageTimestamp": "2024-05-01T10:00:00Z"}) + "\n")
    policy = tmp_path / "policy.yaml"
    assert run("audit", "policy", "generate", "--profile", "minimal", "--output", str(policy))[0] == 0
    for argv in (("audit", "analyze", str(log)), ("audit", "policy", "check", str(policy))):
        code_j, as_json = run(*argv, "-o", "json")
        code_y, as_yaml = run(*argv, "-o", "yaml")
        assert code_j == code_y, as_yaml
        assert yaml.safe_load(as_yaml) == json.loads(as_json)


def test_yaml_through_the_formats_seam() -> None:
    assert "yaml" in FORMATS and DOCUMENTS == ("json", "yaml")
    doc = {"z": 1, "a": [{"b": "x" * 200}], "é": "ü"}
    text = document(doc, "yaml")
    assert text == f"z: 1\na:\n- b: {'x' * 200}\né: ü\n"  # keys in order, block style, long strings unfolded
    assert json.loads(document(doc, "json")) == doc
    with pytest.raises(ValueError):
        document(doc, "table")


def test_yaml_escapes_terminal_control_characters() -> None:
    evil = "x\x1b[2J\x9b\x07y"
    report = Report(objects=1, findings=[])
    from kubeward.findings import ControlMeta, Severity

    m = ControlMeta("KW-T1", "t", Severity.HIGH, "workload")
    report.findings.append(Finding(m, ObjectRef("v1", "Pod", "ns", evil), Location("a.yaml", 1), "/p", evil))
    out = render(report, "yaml")
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
    assert yaml.safe_load(out)["findings"][0]["object"]["name"] == evil


def test_report_commands_offer_yaml() -> None:
    for argv in (("node", "check"), ("encryption", "check"), ("pki", "check"), ("etcd", "probe"),
                 ("etcd", "secrets-at-rest"), ("pki", "rotate"), ("authn", "whoami"), ("scan",), ("pss", "check")):
        code, out = run(*argv, "--help")
        assert code == 0 and "yaml" in out, argv


@pytest.mark.parametrize("argv", [
    ("pss", "check", "--level", "baseline"),
    ("pss", "namespaces"),
    ("netpol", "reach"),
    ("netpol", "lint"),
    ("netpol", "explain", "shop-frontend/storefront", "payments/ledger", "--port", "8080"),
    ("scan",),
    ("rbac", "matrix", "--sa", "payments/ledger", "-n", "payments"),
    ("rbac", "risks"),
    ("rbac", "paths"),
])
def test_demo_is_the_demo_folder_and_f_is_a_positional_path(argv: tuple[str, ...]) -> None:
    by_demo = run(*argv, "--demo", "-o", "json")
    by_path = run(*argv, str(DEMO_DIR), "-o", "json")
    by_f = run(*argv, "-f", str(DEMO_DIR), "-o", "json")
    by_long = run(*argv, "--filename", str(DEMO_DIR), "-o", "json")
    by_recursive = run(*argv, "-R", "-f", str(DEMO_DIR), "-o", "json")  # kubectl's habit: folders always recurse
    assert by_demo[0] in (0, 1), by_demo[1]
    assert by_demo == by_path == by_f == by_long == by_recursive


@pytest.mark.parametrize("argv", [
    ("rbac", "can-i", "get", "secrets", "-n", "payments", "--as", "jane"),
    ("rbac", "who-can", "get", "secrets", "-n", "payments", "-o", "json"),
])
def test_rbac_request_commands_take_demo_and_f(argv: tuple[str, ...]) -> None:
    """can-i and who-can keep kubectl's positional VERB RESOURCE [NAME]: inputs by -f or --demo only."""
    by_demo, by_f = run(*argv, "--demo"), run(*argv, "-f", str(DEMO_DIR))
    assert by_demo == by_f and by_demo[0] in (0, 1), by_demo
    code, out = run_all(*argv[:4], "secrets-extra", str(DEMO_DIR), *argv[4:])
    assert code == 2 and "unexpected extra argument" in out


def test_netpol_generate_and_check_flows_take_demo(tmp_path: Path) -> None:
    flows = tmp_path / "flows.jsonl"
    flows.write_text(FLOW)
    code, out = run("netpol", "generate", "--demo", "--flows", str(flows))
    assert code == 0 and "kind: NetworkPolicy" in out
    code, out = run("netpol", "check-flows", "--demo", "--flows", str(flows))
    assert code in (0, 1) and "Usage" not in out


def test_f_and_positional_paths_add_up(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for p, name in ((a, "a"), (b, "b")):
        p.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: ns}}\n")
    code, out = run("scan", str(a), "-f", str(b), "-o", "json")
    assert json.loads(out)["summary"]["objects"] == 2, out
    code, out = run("scan", "-f", "-", "-o", "json")  # '-' is stdin for -f too
    assert code == 2  # empty stdin: nothing scanned


def test_demo_with_cluster_is_refused() -> None:
    code, out = run_all("scan", "--demo", "--cluster")
    assert code == 2 and "no --demo" in out


def test_pss_tables_show_paths_relative_to_the_working_directory(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\n"
        "spec: {containers: [{name: c, image: nginx, securityContext: {privileged: true}}]}\n")
    monkeypatch.chdir(tmp_path)
    code, out = run("pss", "check", "--level", "baseline", str(tmp_path / "k8s"))
    assert code == 1 and "Pod/ns/p  k8s/pod.yaml:1" in out and str(tmp_path) not in out
    code, out = run("pss", "namespaces", str(tmp_path / "k8s"))
    assert "rejected at baseline:latest: Pod/ns/p k8s/pod.yaml:1:" in out and str(tmp_path) not in out


@pytest.mark.parametrize("argv", [("pss", "check", "--level", "baseline"), ("pss", "namespaces"),
                                  ("netpol", "reach")], ids=" ".join)
def test_all_namespaces_is_the_default_and_excludes_n(argv: tuple[str, ...]) -> None:
    """kubectl's -A wherever a filtering -n is: the same answer as no -n; with -n a usage error."""
    assert run(*argv, "--demo", "-A") == run(*argv, "--demo")
    code, out = run_all(*argv, "--demo", "-A", "-n", "payments")
    assert code == 2 and "-n/--namespace and -A/--all-namespaces: give one of them" in out


# Path arguments that are no input to read, so kubectl's -f would mislead: the PKI folder these write into.
WRITES_INTO = {("pki", "init"), ("pki", "issue-user"), ("pki", "kubeconfig"), ("pki", "rotate")}


def _leaf_commands() -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(cli)
    out: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(sub, (*path, name))
        else:
            out.append((path, cmd))

    walk(cli, ())
    return out


def test_every_command_taking_input_paths_takes_f_too() -> None:
    """kubectl's grammar: an input given as an argument may be given with -f/--filename (repeatable) instead."""
    missing = [" ".join(path) for path, cmd in _leaf_commands()
               if path not in WRITES_INTO
               and any(isinstance(p, click.Argument) and isinstance(p.type, click.Path) for p in cmd.params)
               and not any("--filename" in p.opts and "-f" in p.opts and getattr(p, "multiple", False)
                           for p in cmd.params)]
    assert missing == []


def _inputs(tmp_path: Path) -> dict[tuple[str, ...], tuple[list[str], str]]:
    """Per single-input command: the other arguments, and an input for it made with kubeward itself."""
    from vendored import AUDIT_SAMPLE

    def made(*argv: str) -> None:
        code, out = run_all(*argv)
        assert code == 0, out

    made("encryption", "generate", "--output", str(tmp_path / "enc.yaml"))
    made("audit", "policy", "generate", "--output", str(tmp_path / "policy.yaml"))
    made("pki", "init", str(tmp_path / "pki"))
    pki = tmp_path / "pki"
    return {
        ("encryption", "check"): ([], str(tmp_path / "enc.yaml")),
        ("audit", "policy", "check"): ([], str(tmp_path / "policy.yaml")),
        ("pki", "check"): ([], str(pki)),
        ("authn", "whoami"): (["--ca", str(pki / "ca.crt")], str(pki / "apiserver-kubelet-client.crt")),
        ("audit", "analyze"): ([], str(AUDIT_SAMPLE)),
        ("audit2rbac",): (["--user", "bob"], str(AUDIT_SAMPLE)),
    }


def test_f_is_the_positional_input_of_the_file_commands(tmp_path: Path) -> None:
    for argv, (extra, given) in _inputs(tmp_path).items():
        by_arg, by_f = run(*argv, *extra, given), run(*argv, *extra, "-f", given)
        assert by_arg == by_f and by_arg[0] in (0, 1), (argv, by_arg)
        assert by_arg[1].strip(), argv


def test_a_single_input_command_wants_exactly_one(tmp_path: Path) -> None:
    _, given = _inputs(tmp_path)["encryption", "check"]
    for argv, n in (((), 0), ((given, "-f", given), 2), (("-f", given, "-f", given), 2)):
        code, out = run_all("encryption", "check", *argv)
        assert code == 2 and f"give one FILE (as an argument or with -f), not {n}" in out


def test_several_logs_by_f_add_up(tmp_path: Path) -> None:
    from vendored import AUDIT_SAMPLE

    one = CliRunner().invoke(cli, ["audit", "analyze", "-f", str(AUDIT_SAMPLE), "-o", "json"])
    two = CliRunner().invoke(cli, ["audit", "analyze", str(AUDIT_SAMPLE), "-f", str(AUDIT_SAMPLE), "-o", "json"])
    assert json.loads(two.stdout)["stats"]["events"] == 2 * json.loads(one.stdout)["stats"]["events"]
