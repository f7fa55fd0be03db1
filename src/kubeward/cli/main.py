"""The `kubeward` (and `kubectl-ward`) entry point: command groups loaded lazily so start-up stays fast."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

from ..gcpause import gc_paused

# Start-up imports make module state and no garbage, yet the collector would pass over it some forty times
# (~2 ms of a one-file scan): it is off while this module's imports and a command's modules load.
with gc_paused():
    import click

    from .. import __version__
    from .common import no_color_option
    from .examples import epilog_for

# name -> (module, attribute, one-line help). A group whose module is absent is simply not offered.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "scan": ("kubeward.cli.scan", "scan", "Scan manifests or a cluster and report findings."),
    "demo": ("kubeward.cli.scan", "demo", "Scan the bundled, deliberately insecure demo cluster."),
    "controls": ("kubeward.cli.scan", "controls_cmd", "List the controls (id, severity, frameworks)."),
    "pss": ("kubeward.cli.pss", "group", "Pod Security Standards: check pods, plan namespace levels."),
    "rbac": ("kubeward.cli.rbac", "group", "RBAC: can-i, who-can, matrix, risks, escalation paths."),
    "paths": ("kubeward.cli.paths", "paths", "Attack paths: internet and pods to cluster-admin, secrets, nodes."),
    "netpol": ("kubeward.cli.netpol", "group", "NetworkPolicy: reachability, explain, lint, generate."),
    "pki": ("kubeward.cli.pki", "group", "Certificates: init a kubeadm-style PKI, issue, check, rotate."),
    "authn": ("kubeward.cli.authn", "group", "Authentication: what the x509 authenticator derives."),
    "node": ("kubeward.cli.node", "group", "Control-plane and worker node checks (CIS)."),
    "creds": ("kubeward.cli.creds", "group", "Credentials: kubeconfigs, tokens, certificate expiry, secrets."),
    "encryption": ("kubeward.cli.encryption", "group", "Secrets encryption at rest: generate and check configs."),
    "etcd": ("kubeward.cli.etcd", "group", "etcd: probe mTLS, classify secrets at rest."),
    "audit": ("kubeward.cli.audit", "group", "Audit logging: policies, analysis, live alerts."),
    "audit2rbac": ("kubeward.cli.audit", "audit2rbac", "Minimal RBAC from observed audit events."),
    "agent": ("kubeward.cli.agent", "group", "Node agent: exec allowlists (fanotify), flow monitoring."),
    "admission": ("kubeward.cli.admission", "group", "Admission webhook serving the controls."),
    "monitor": ("kubeward.cli.monitor", "monitor", "Watch a live cluster: alerts, PolicyReports, metrics."),
    "vulns": ("kubeward.cli.vulns", "vulns", "Known Kubernetes CVEs affecting the versions found."),
    "versions": ("kubeward.cli.vulns", "versions", "Component versions found and the version skew policy."),
    "docs": ("kubeward.cli.docs", "docs", "Read the guides (audit, rbac, hardening, …) shipped with kubeward."),
    "completion": ("kubeward.cli.completion", "completion", "Print the shell completion script (bash, zsh, fish)."),
}


def _available(name: str) -> bool:
    module = COMMANDS[name][0]
    return importlib.util.find_spec(module) is not None


class HelpFormatter(click.HelpFormatter):
    """click's formatter, but preformatted (`\b`) lines wider than the terminal are wrapped at a space, with their
    indentation kept: every `--help` fits the terminal (80 columns and up) whatever a docstring holds."""

    def getvalue(self) -> str:
        limit = self.width
        out: list[str] = []
        for line in super().getvalue().split("\n"):
            while len(line) > limit:
                cut = line.rfind(" ", 0, limit + 1)
                indent = len(line) - len(line.lstrip(" "))
                if cut <= indent:
                    break  # one word longer than the line: leave it whole
                out.append(line[:cut].rstrip())
                line = " " * (indent + 2) + line[cut:].lstrip()
            out.append(line)
        return "\n".join(out)


class Context(click.Context):
    formatter_class = HelpFormatter


def _finish(cmd: click.Command, path: str) -> click.Command:
    """Once per command (and each command of a group): the shared `--no-color`, the wrapping help formatter and
    the `Examples:` epilog (cli/examples.py)."""
    if any(p.name == "no_color" for p in cmd.params):
        return cmd
    no_color_option(cmd)
    cmd.context_class = Context
    examples = epilog_for(path)
    if examples and "Examples:" not in (cmd.epilog or ""):
        cmd.epilog = f"{cmd.epilog}\n\n{examples}" if cmd.epilog else examples
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            _finish(sub, f"{path} {name}")
    return cmd


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n in COMMANDS if _available(n)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None or not _available(name):
            return None
        with gc_paused():
            module = importlib.import_module(entry[0])
        return _finish(getattr(module, entry[1]), name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][2]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
             epilog=epilog_for(""))
@click.version_option(__version__, "--version", prog_name="kubeward")
@no_color_option
def cli() -> None:
    """kubeward: Kubernetes security you can see, prove and enforce."""


cli.context_class = Context


def main(argv: list[str] | None = None) -> Any:
    from . import common

    common.CONSOLE = True
    try:
        return cli.main(args=argv, prog_name="kubeward")
    except KeyboardInterrupt:
        click.echo("kubeward: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
