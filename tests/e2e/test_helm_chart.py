"""kubeward's own Helm chart (deploy/helm/kubeward) rendered by the real helm (scripts/build-tools): it lints and
renders with the default values and with every part enabled; kubeward's scan of it leaves nothing at or above
medium, and only the low findings its README explains; the admission objects are the ones `kubeward admission
manifests` prints; the scan's and monitor's read rules are what `scan --cluster` reads. The apiserver's own
verdict on every object is tests/e2e/cluster/test_live_helm_chart.py."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from kubeward.admission.manifests import RULES, manifests
from kubeward.cli.main import cli
from kubeward.sources.cluster import SCAN_TYPES

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "kubeward"
ALL = CHART / "ci" / "all-enabled-values.yaml"
# Labels the chart adds for helm's bookkeeping; `admission manifests` has no release to name.
HELM_LABELS = {"app.kubernetes.io/instance", "app.kubernetes.io/component", "app.kubernetes.io/version",
               "app.kubernetes.io/managed-by", "helm.sh/chart"}
# What stays after the scan, each explained in the chart's README ("Findings that stay").
LOW_STAYING_DEFAULT = {"KW-W042"}
LOW_STAYING_ALL = {"KW-W042", "KW-W048", "KW-W049", "KW-W053", "KW-W054"}


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        out = subprocess.run([str(REPO / "scripts" / "build-tools")], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        if shutil.which("go") is None:
            pytest.skip("helm absent and no Go toolchain to build it")
        pytest.fail(f"scripts/build-tools failed: {exc.stderr[-1500:]}", pytrace=False)
    return Path(out.stdout.strip().splitlines()[-1]) / "helm"


def render(helm: Path, *args: str, release: str = "kubeward", namespace: str = "kubeward") -> list[dict[str, Any]]:
    out = subprocess.run([str(helm), "template", release, str(CHART), "-n", namespace, *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def helm_fails(helm: Path, *args: str) -> str:
    out = subprocess.run([str(helm), "template", "kubeward", str(CHART), *args], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0, out.stdout[:500]
    return out.stderr


def kinds(docs: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in docs:
        counts[d["kind"]] = counts.get(d["kind"], 0) + 1
    return counts


def by_key(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_lint_default_and_all_enabled(helm: Path) -> None:
    for extra in ([], ["-f", str(ALL)]):
        out = subprocess.run([str(helm), "lint", str(CHART), "--strict", *extra], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "0 chart(s) failed" in out.stdout


def test_default_values_render_monitor_and_scan(helm: Path) -> None:
    docs = render(helm)
    assert kinds(docs) == {"ServiceAccount": 2, "ClusterRole": 2, "ClusterRoleBinding": 2, "Role": 1,
                           "RoleBinding": 1, "ConfigMap": 1, "PersistentVolumeClaim": 1, "Service": 1,
                           "Deployment": 1, "CronJob": 1, "NetworkPolicy": 2}
    dep = by_key(docs)[("Deployment", "kubeward-monitor")]
    pod = dep["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["monitor", "--in-cluster", "--leader-elect", "--metrics-port", "9090"]
    assert pod["containers"][0]["image"] == "ghcr.io/kubeward/kubeward:0.1.0"
    assert dep["spec"]["replicas"] == 1
    # one ServiceAccount per part, none of them auto-mounting a token
    sas = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert {d["metadata"]["name"] for d in sas} == {"kubeward-monitor", "kubeward-scan"}
    assert all(d["automountServiceAccountToken"] is False for d in sas)


def test_every_part_enabled_renders(helm: Path) -> None:
    docs = render(helm, "-f", str(ALL))
    k = kinds(docs)
    assert k["Deployment"] == 3 and k["DaemonSet"] == 1 and k["CronJob"] == 1
    assert k["ServiceMonitor"] == 2 and k["PodMonitor"] == 2
    assert k["ValidatingWebhookConfiguration"] == 1 and k["Certificate"] == 4 and k["Issuer"] == 3
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"} == {
        f"kubeward-{p}" for p in ("monitor", "admission", "audit", "agent", "scan")}
    ns = {d["metadata"]["name"]: d["metadata"]["labels"] for d in docs if d["kind"] == "Namespace"}
    assert ns["kubeward"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["kubeward-system"]["pod-security.kubernetes.io/enforce"] == "privileged"
    ds = by_key(docs)[("DaemonSet", "kubeward-agent")]
    assert ds["metadata"]["namespace"] == "kubeward-system"
    for c in ds["spec"]["template"]["spec"]["containers"]:
        assert c["securityContext"]["privileged"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_misconfigurations_are_refused_with_the_key_to_change(helm: Path) -> None:
    assert "additional properties 'enabeld' not allowed" in helm_fails(helm, "--set", "monitor.enabeld=true")
    assert "admission.certManager.enabled" in helm_fails(helm, "--set", "admission.enabled=true")
    assert "audit.tls.secretName" in helm_fails(helm, "--set", "audit.enabled=true")
    assert "agent.namespace" in helm_fails(helm, "--set", "agent.enabled=true", "--set", "namespaces.create=true",
                                           "--set", "agent.namespace=")
    assert "/admission/timeoutSeconds" in helm_fails(helm, "--set", "admission.timeoutSeconds=31")


def _scan(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["scan", *args, "-o", "json", "--fail-on", "none"])
    assert result.exit_code == 0, (result.output, result.exception)
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["errors"] == []
    return doc


def _staying(doc: dict[str, Any]) -> set[str]:
    bad = [(f["control"]["id"], f["object"]["name"], f["message"]) for f in doc["findings"]
           if f["control"]["severity"] not in ("low", "info")]
    assert bad == []
    return {f["control"]["id"] for f in doc["findings"]}


def test_kubewards_own_scan_finds_nothing_at_or_above_medium(helm: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{helm.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    readme = (CHART / "README.md").read_text()
    # the chart as a folder: kubeward renders it with helm itself
    default = _scan(str(CHART), "--release-name", "kubeward", "-n", "kubeward")
    assert _staying(default) == LOW_STAYING_DEFAULT
    # Without -n: with every part on, the node agent's objects are in a namespace of their own, which `scan -n`
    # refuses as `kubectl apply -n` does; helm's release namespace is then `default` (KW-W051).
    every = _scan(str(CHART), "--release-name", "kubeward", "--values", str(ALL))
    assert _staying(every) == LOW_STAYING_ALL | {"KW-W051"}
    # and the rendered text, as `helm template | kubeward scan -` sees it
    rendered = tmp_path / "all.yaml"
    rendered.write_text(yaml.safe_dump_all(render(helm, "-f", str(ALL))))
    assert _staying(_scan(str(rendered))) == LOW_STAYING_ALL
    for cid in LOW_STAYING_ALL:
        assert re.search(rf"^\| `{cid}` ", readme, re.M), f"{cid} stays but the chart README does not say why"
    # the node agent's ignores are each used (an unused one would hide nothing and mislead)
    suppressed = {f["control"]["id"] for f in every["suppressed"]}
    ds = by_key(render(helm, "-f", str(ALL)))[("DaemonSet", "kubeward-agent")]
    ignored = {i.strip() for i in ds["metadata"]["annotations"]["kubeward.io/ignore"].split(",")}
    assert ignored <= suppressed, ignored - suppressed


def _strip_helm(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    for meta in (obj.get("metadata"), ((obj.get("spec") or {}).get("template") or {}).get("metadata")):
        if meta and "labels" in meta:
            meta["labels"] = {k: v for k, v in meta["labels"].items() if k not in HELM_LABELS}
    tmeta = ((obj.get("spec") or {}).get("template") or {}).get("metadata")
    if tmeta:  # the config checksum that rolls the pods when the exemptions change; the CLI has no upgrades
        tmeta.pop("annotations", None)
    return obj


@pytest.mark.parametrize(("cert_manager", "mutual_tls"), [(True, False), (False, False), (False, True)])
def test_admission_objects_are_the_ones_admission_manifests_prints(helm: Path, cert_manager: bool,
                                                                   mutual_tls: bool) -> None:
    ca = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    args = ["--set", "admission.enabled=true", "--set", "monitor.enabled=false", "--set", "scan.enabled=false",
            "--set", "namespaces.create=true"]
    args += (["--set", "admission.certManager.enabled=true"] if cert_manager
             else ["--set", f"admission.tls.caBundle={base64.b64encode(ca).decode()}"])
    if mutual_tls:
        args += ["--set", f"admission.tls.clientCA={base64.b64encode(ca).decode()}"]
    chart = {k: _strip_helm(v) for k, v in by_key(render(helm, *args, namespace="kubeward")).items()}
    cli_objs = manifests("kubeward", cert_manager=cert_manager, ca_bundle=None if cert_manager else ca,
                         client_ca=ca if mutual_tls else None)
    expected = {(d["kind"], d["metadata"]["name"]): d for d in cli_objs}
    assert chart.keys() == expected.keys()
    for key, want in expected.items():
        assert chart[key] == want, key


def test_webhook_rules_are_the_clis() -> None:
    text = (CHART / "templates" / "admission" / "webhook.yaml").read_text()
    for group, resources in RULES:
        assert re.search(r'apiGroups: \[' + (re.escape(group) if group else '""') + r'\]', text), group
        for r in resources:
            assert re.search(rf"\b{r}\b", text), r


@pytest.mark.parametrize("read_secrets", [False, True])
def test_read_rules_are_what_scan_cluster_reads(helm: Path, read_secrets: bool) -> None:
    flag = str(read_secrets).lower()
    docs = by_key(render(helm, "--set", f"monitor.readSecrets={flag}", "--set", f"scan.readSecrets={flag}"))
    wanted = {(t.group_version.split("/")[0] if "/" in t.group_version else "", t.plural) for t in SCAN_TYPES}
    if not read_secrets:
        wanted.discard(("", "secrets"))
    for part, verbs in (("monitor", {"get", "list", "watch"}), ("scan", {"get", "list"})):
        rules = docs[("ClusterRole", f"kubeward-{part}")]["rules"]
        reads = {(g, r) for rule in rules if set(rule["verbs"]) == verbs
                 for g in rule["apiGroups"] for r in rule["resources"]}
        assert reads == wanted, (part, reads ^ wanted)
        for rule in rules:  # no wildcard anywhere
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        writes = [rule for rule in rules if set(rule["verbs"]) - {"get", "list", "watch"}]
        assert [sorted(w["resources"]) for w in writes] == (
            [["clusterpolicyreports", "policyreports"]] if part == "monitor" else [])


def test_image_digest_pins_and_pull_policy_follows(helm: Path) -> None:
    digest = "sha256:" + "a" * 64
    dep = by_key(render(helm, "--set", f"image.digest={digest}"))[("Deployment", "kubeward-monitor")]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert (c["image"], c["imagePullPolicy"]) == (f"ghcr.io/kubeward/kubeward@{digest}", "IfNotPresent")


def _parse_with_the_cli(argv: list[str]) -> None:
    """Resolve argv through kubeward's click groups and build the leaf command's context: an unknown option, a
    missing required one or a bad value raises, as it would in the pod."""
    cmd: click.Command = cli
    name, args = "kubeward", list(argv)
    parent: click.Context | None = None
    while isinstance(cmd, click.Group):
        ctx = cmd.make_context(name, list(args), parent=parent)
        sub_name, sub, rest = cmd.resolve_command(ctx, list(args))
        assert sub is not None and sub_name is not None, args
        cmd, name, args, parent = sub, sub_name, rest, ctx
    cmd.make_context(name, args, parent=parent)


def test_every_container_command_line_parses_with_the_cli(helm: Path, tmp_path: Path) -> None:
    for f in ("tls.crt", "tls.key", "ca.crt"):  # --tls-cert/--client-ca must name existing files
        (tmp_path / f).write_text("")
    checked = []
    for d in render(helm, "-f", str(ALL)):
        spec = d.get("spec", {})
        pod = (spec.get("jobTemplate", {}).get("spec", spec)).get("template", {}).get("spec")
        for c in (pod or {}).get("containers", ()):
            argv = [a.replace("/tls/", f"{tmp_path}/") for a in c["args"]]
            if argv[0] == "monitor" and cli.get_command(click.Context(cli), "monitor") is None:
                continue  # the monitor command is not in this tree yet: its flags are monitor.args
            _parse_with_the_cli(argv)
            checked.append(f"{d['metadata']['name']}/{c['name']}")
    assert sorted(checked) == sorted(["kubeward-admission/webhook", "kubeward-audit/receiver", "kubeward-agent/exec",
                                      "kubeward-agent/flows", "kubeward-scan/scan"]
                                     + (["kubeward-monitor/monitor"] if "kubeward-monitor/monitor" in checked else []))


def test_the_plain_agent_manifest_is_the_charts_rendering(helm: Path) -> None:
    """deploy/agent-daemonset.yaml (for kubectl apply) is the chart's agent with the flows container, after its
    Namespace; the command that regenerates it is in its header."""
    docs = [d for d in yaml.safe_load_all((REPO / "deploy" / "agent-daemonset.yaml").read_text()) if d]
    assert docs[0]["kind"] == "Namespace" and docs[0]["metadata"]["name"] == "kubeward-system"
    assert docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    out = subprocess.run([str(helm), "template", "kubeward", str(CHART), "-n", "kubeward-system", "--show-only",
                          "templates/agent/daemonset.yaml", "--set", "monitor.enabled=false", "--set",
                          "scan.enabled=false", "--set", "agent.enabled=true", "--set", "agent.flows.enabled=true"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert docs[1:] == [d for d in yaml.safe_load_all(out.stdout) if d]
