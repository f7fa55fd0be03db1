"""`kubeward creds audit`: kubeconfigs, static and legacy tokens, bound-token settings, certificate expiry and
secrets in env, ConfigMaps and annotations, as findings with age, owner and fix. Never prints a credential."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ..formats import FORMATS, render, render_report
from ..textsafe import printable
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    apply_exceptions,
    color_wanted,
    emit,
    exceptions_option,
    exit_code,
    fail,
    fail_on_type,
    output_options,
    parse_fail_on,
    print_errors,
)

SHOWN_EXPIRIES = 15  # rows of the table's credential list (-o json lists all)


@click.group(name="creds")
def group() -> None:
    """Credentials: find them, judge them, watch their expiry."""


def _expiry_rows(expiries: list[object], now: dt.datetime) -> list[dict[str, object]]:
    rows = []
    for e in expiries:
        not_after = getattr(e, "not_after", None)
        rows.append({
            "id": getattr(e, "id", ""), "owner": getattr(e, "owner", ""),
            "notAfter": not_after.strftime("%Y-%m-%dT%H:%M:%SZ") if not_after else None,
            "daysLeft": (not_after - now).days if not_after else None,
        })
    return rows


def _expiry_table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "No credentials found.\n"
    lines = [f"Credentials ({len(rows)}, soonest expiry first):"]
    for r in rows[:SHOWN_EXPIRIES]:
        left = "never expires" if r["notAfter"] is None else f"{r['notAfter']} ({r['daysLeft']} days)"
        lines.append(f"  {printable(str(r['id']))}  owner {printable(str(r['owner']))}  {left}")
    if len(rows) > SHOWN_EXPIRIES:
        lines.append(f"  … and {len(rows) - SHOWN_EXPIRIES} more (-o json lists all)")
    return "\n".join(lines) + "\n"


@group.command("audit", epilog="""\b
Reads: every --kubeconfig FILE (default: $KUBECONFIG or ~/.kube/config);
with --node-root DIR a node's /etc/kubernetes (kube-apiserver manifest: static
token and basic-auth files, service-account token settings; pki/; *.conf) and
/var/lib/kubelet/pki; with --cluster the live cluster (legacy token Secrets and
who uses them, secrets in env, ConfigMaps and annotations, webhook and
APIService CA bundles), through the first --kubeconfig.""")
@click.option("--cluster", "live", is_flag=True, help="Also read the live cluster.")
@click.option("--kubeconfig", "kubeconfigs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="Kubeconfig to judge (repeatable); the first is the --cluster connection.")
@click.option("--context", metavar="NAME", help="Kubeconfig context for --cluster (default: current).")
@click.option("--node-root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A node's filesystem root (kubeadm layout below it).")
@output_options(FORMATS)
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True,
              help="Exit 1 when a finding at or above this severity remains (none: report only).")
@exceptions_option
def audit_cmd(live: bool, kubeconfigs: tuple[Path, ...], context: str | None, node_root: Path | None, fmt: str,
              output_file: str | None, fail_on: str, exceptions_file: str | None) -> None:
    """Find every credential, say how it is held, who owns it, how old it is and when it expires."""
    from ..creds.audit import AuditOptions, audit

    for k in kubeconfigs:
        if not k.is_file():
            fail(f"{k}: no such kubeconfig file")
    snap = None
    if live:
        from ..creds.audit import cluster_types
        from .live import load_cluster_cli

        snap = load_cluster_cli(str(kubeconfigs[0]) if kubeconfigs else None, context, types=cluster_types())
    result = audit(AuditOptions(kubeconfigs=kubeconfigs, node_root=node_root), snap)
    report = apply_exceptions(result.report, exceptions_file)
    now = dt.datetime.now(dt.UTC)
    rows = _expiry_rows(list(result.expiries), now)
    if fmt == "table":  # the findings, then every credential soonest expiry first
        text = render(report, "table", color=color_wanted(output_file)) + "\n" + _expiry_table(rows)
    else:
        text = render_report(report, fmt, facts={"credentials": rows}, color=color_wanted(output_file))
    emit(text, output_file)
    print_errors(report.errors)
    scanned = report.objects > 0 or bool(rows)
    if not scanned:
        given = bool(kubeconfigs or node_root or live)
        click.echo("kubeward: creds audit: nothing could be read (see above)" if given else
                   "kubeward: creds audit: nothing to audit (no kubeconfig, no --node-root, no --cluster)", err=True)
    code = exit_code(report, parse_fail_on(fail_on), scanned=scanned)
    raise SystemExit(EXIT_USAGE if report.errors and code == EXIT_OK else code)



@group.command("rotate-sa-key", epilog="""\b
Steps (each checked with TokenRequest/TokenReview before it is recorded;
the state file records the last done: a stopped run resumes where it was):
  add      new key pair beside the old one; its public key an extra
           --service-account-key-file; restart; old and new tokens work
  switch   --service-account-signing-key-file (and the controller-manager's
           --service-account-private-key-file) -> the new key; restart; new
           tokens carry the new key, old ones still authenticate
  retire   old public key removed; restart; old-key tokens now fail
--step S runs the steps not yet done up to S (default: switch). retire
is the operator's confirmation that every client holds a new token: wait
an hour or more after switch (the kubelet refreshes projected tokens at
80% of their lifetime), then pass --step retire (or --step all).""")
@click.option("--cluster", "live", is_flag=True, required=True, help="Rotate on the live cluster (required).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None, help="Kubeconfig for the cluster.")
@click.option("--context", metavar="NAME", default=None, help="Kubeconfig context (default: current).")
@click.option("--node-root", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="The control-plane node's root: etc/kubernetes/manifests/kube-apiserver.yaml is edited.")
@click.option("--restart-command", required=True, metavar="CMD",
              help="Restarts kube-apiserver (and kube-controller-manager when its manifest changed) and exits 0 "
                   "(run without a shell); readiness is then waited for.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Rotation state (default: NODE_ROOT/etc/kubernetes/sa-key-rotation.json; mode 0600).")
@click.option("--step", "step", type=click.Choice(["add", "switch", "retire", "all"]), default="switch",
              show_default=True, help="Run the remaining steps up to this one (all = through retire).")
def rotate_sa_key_cmd(live: bool, kubeconfig: str | None, context: str | None, node_root: Path,
                      restart_command: str, state_file: Path | None, step: str) -> None:
    """Rotate the service-account token signing key without breaking a client, resumably."""
    from ..creds.rotation import RotationError, command_restart
    from ..creds.sakeys import STEP_OF_OPTION, SAKeyRotation, State
    from ..safefile import SafeFileError
    from ..sources.cluster import Client, ClusterError

    def say(message: str) -> None:
        click.echo(f"kubeward: creds rotate-sa-key: {message}", err=True)

    state_path = state_file or node_root / "etc" / "kubernetes" / "sa-key-rotation.json"
    until = STEP_OF_OPTION[step]
    try:
        done = State.load(state_path)
        if done is not None and done.step == "retired":
            say(f"already complete: tokens are signed by {done.new_private} (remove {state_path} to rotate again)")
            raise SystemExit(EXIT_OK)
        rotation = SAKeyRotation(node_root, Client(kubeconfig, context), state_path,
                                 command_restart(restart_command), say)
        final = rotation.run(until)
    except (RotationError, ClusterError, SafeFileError) as exc:
        fail(f"creds rotate-sa-key: {exc}")
    if final.step == "retired":
        say(f"complete: tokens are signed by {final.new_private}; the old key {final.old_public} no longer verifies")
    elif final.step == "switched":
        say(f"switched: new tokens are signed by {final.new_private}, the old key still verifies; once every client "
            "holds a new token, run again with --step retire")
    else:
        say(f"at step {final.step}: the new key {final.new_public} verifies, the old one still signs")
