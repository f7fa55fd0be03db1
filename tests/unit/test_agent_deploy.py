"""deploy/agent-daemonset.yaml (the Helm chart's agent, rendered for kubectl apply): the DaemonSet keeps the
promised hardening and its args and allowlist are valid for the CLI."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from kubeward.agent.allowlist import parse_allowlist
from kubeward.cli.agent import group

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "agent-daemonset.yaml"


def docs() -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(DEPLOY.read_text())}


def test_daemonset_hardening() -> None:
    ds = docs()["DaemonSet"]
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostPID"] is True and "hostNetwork" not in spec and spec["automountServiceAccountToken"] is False
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert set(sc["capabilities"]["add"]) <= {"SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"}
        assert not sc.get("privileged")
        assert "--alerts=-" in c["args"]  # alerts to stdout for the log pipeline
    mounts = {v["name"]: v for c in spec["containers"] for v in c.get("volumeMounts", [])}
    assert all(m.get("readOnly") for n, m in mounts.items() if n != "tmp")


def test_configmap_allowlist_parses() -> None:
    cm = docs()["ConfigMap"]
    al = parse_allowlist(yaml.safe_load(cm["data"]["allowlist.yaml"]), "configmap")
    assert al.rules and al.rules[0].scope == {"host": True}


def test_container_args_parse_with_the_cli() -> None:
    for c in docs()["DaemonSet"]["spec"]["template"]["spec"]["containers"]:
        assert "command" not in c  # the image's entrypoint is kubeward
        assert c["args"][0] == "agent"
        argv = c["args"][1:]
        ctx = group.make_context("agent", list(argv), resilient_parsing=False)
        sub_name, sub_cmd, rest = group.resolve_command(ctx, list(argv))
        assert sub_cmd is not None
        if isinstance(sub_cmd, click.Group):
            sub_ctx = sub_cmd.make_context(sub_name, rest, parent=ctx)
            _, leaf, leaf_args = sub_cmd.resolve_command(sub_ctx, rest)
            assert leaf is not None
            leaf.make_context(leaf.name, leaf_args, parent=sub_ctx)  # raises on an unknown or bad option
        else:
            sub_cmd.make_context(sub_name, rest, parent=ctx)
