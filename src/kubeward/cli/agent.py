"""`kubeward agent`: exec allowlisting (learn, enforce) with fanotify, and flow monitoring against NetworkPolicy."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import EXIT_USAGE, fail, load_snapshot, warn

if TYPE_CHECKING:
    from ..agent.pods import PodIndex


@click.group("agent")
def group() -> None:
    """Node agent: exec allowlists enforced with fanotify, network flows checked against policy."""


@group.group("exec")
def exec_group() -> None:
    """Exec allowlisting: learn what runs, then enforce it (FAN_OPEN_EXEC_PERM)."""


def _pods(snapshot: tuple[str, ...], say: Callable[[str], object] = warn) -> PodIndex | None:
    if not snapshot:
        return None
    from ..agent.pods import PodIndex

    snap = load_snapshot(snapshot)
    for e in snap.errors:
        say(str(e).removeprefix("kubeward: "))
    return PodIndex.from_snapshot(snap)


def _check_mounts(mounts: tuple[str, ...]) -> None:
    for m in mounts:
        if not os.path.exists(m):
            fail(f"{m}: no such file or directory (--mount)")


@exec_group.command("learn")
@click.option("--duration", type=click.FloatRange(min=0.1), required=True, metavar="SECONDS",
              help="How long to watch.")
@click.option("--output", "output", type=click.Path(dir_okay=False, writable=True), required=True,
              help="Write the learned ExecAllowlist here ('-' for stdout).")
@click.option("--mount", "mounts", multiple=True, metavar="PATH",
              help="Watch execs from the mount holding PATH (fanotify; exact even for short-lived processes). "
                   "Without it, every exec on the host is watched through the proc connector.")
@click.option("--filesystem", is_flag=True, help="Mark the whole filesystem of each --mount (FAN_MARK_FILESYSTEM).")
@click.option("--notify", is_flag=True,
              help="With --mount: fanotify in notification mode (execs never wait for the learner; a process that "
                   "exits at once may lose its scope).")
@click.option("--snapshot", "snapshot", multiple=True, metavar="PATH",
              help="Manifests with Pod objects (uid, containerStatuses) to name pods and containers.")
@click.option("--name", default="learned", show_default=True, help="metadata.name of the allowlist.")
def learn_cmd(duration: float, output: str, mounts: tuple[str, ...], filesystem: bool, notify: bool,
              snapshot: tuple[str, ...], name: str) -> None:
    """Watch every exec for SECONDS and write the allowlist of what ran, grouped by scope."""
    from ..agent.allowlist import dump_allowlist
    from ..agent.learn import learn

    _check_mounts(mounts)
    if notify and not mounts:
        fail("exec learn: --notify needs --mount (without it the proc connector is used)")
    if output != "-":  # find out now, not after the whole learning period
        parent = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            fail(f"{output}: directory {parent} does not exist or is not writable")
    pods = _pods(snapshot)
    try:
        learned = learn(duration, mounts, pods, filesystem=filesystem, notify=notify,
                        ready=lambda: warn(f"exec learn: watching for {duration:g}s"))
    except OSError as exc:
        fail(f"exec learn: {exc.strerror or exc} (needs root: CAP_SYS_ADMIN for fanotify, CAP_NET_ADMIN "
             "for the proc connector)")
    except KeyboardInterrupt:
        fail("exec learn: interrupted", 130)
    text = dump_allowlist(dict(learned.groups), name)
    if output == "-":
        click.echo(text, nl=False)
    else:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"{output}: {exc.strerror or exc}")
    exes = sum(len(v) for v in learned.groups.values())
    summary = (f"{learned.events} execs, {exes} executables in {len(learned.groups)} scopes"
               + (f", {learned.missed} exited before they could be attributed (not recorded)" if learned.missed else ""))
    if output == "-":
        warn(f"exec learn: {summary}")
    else:
        from .common import wrote

        wrote(output, f"exec learn: {summary}")


@exec_group.command("enforce")
@click.option("--allowlist", "allowlist", type=click.Path(dir_okay=False), required=True,
              help="ExecAllowlist YAML (re-read on SIGHUP).")
@click.option("--mount", "mounts", multiple=True, required=True, metavar="PATH",
              help="Enforce on the mount holding PATH (repeatable).")
@click.option("--filesystem", is_flag=True, help="Mark the whole filesystem of each --mount (FAN_MARK_FILESYSTEM).")
@click.option("--mode", type=click.Choice(["enforce", "alert"]), default="alert", show_default=True,
              help="alert: allow execs the allowlist does not cover but report them (the default, as Falco, "
                   "Tetragon and KubeArmor start); enforce: refuse them with EPERM.")
@click.option("--decision-timeout-ms", type=click.IntRange(min=1, max=60000), default=1000, show_default=True,
              help="No exec waits longer than this for a decision.")
@click.option("--on-timeout", type=click.Choice(["allow", "deny"]), default="allow", show_default=True,
              help="The answer given when a decision times out.")
@click.option("--alerts", "alerts", default="-", show_default=True, metavar="FILE|-",
              help="Append one JSON line per denial/alert here.")
@click.option("--alert-queue", type=click.IntRange(min=1), default=4096, show_default=True, metavar="N",
              help="Alerts waiting for the --alerts output; beyond that they are dropped and counted, so a reader "
                   "that stops reading never holds up an exec.")
@click.option("--snapshot", "snapshot", multiple=True, metavar="PATH",
              help="Manifests with Pod objects to resolve pod/container/image scopes.")
@click.option("--duration", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Stop after SECONDS (default: until SIGTERM/SIGINT).")
def enforce_cmd(allowlist: str, mounts: tuple[str, ...], filesystem: bool, mode: str, decision_timeout_ms: int,
                on_timeout: str, alerts: str, alert_queue: int, snapshot: tuple[str, ...],
                duration: float | None) -> None:
    """Answer FAN_OPEN_EXEC_PERM for the given mounts from the allowlist; SIGHUP reloads it (and the snapshot).

    Starts in alert mode: execs the allowlist does not cover run and are reported; `--mode enforce` refuses them.
    """
    from ..agent.allowlist import AllowlistError
    from ..agent.enforce import EnforceConfig, Enforcer
    from ..alertsinks import AlertSink
    from ..formats import json_line
    from ..outqueue import stderr_log

    _check_mounts(mounts)
    pods = _pods(snapshot)
    # While enforcing, log lines go through a bounded queue too: a stderr nobody reads cannot hold an exec either.
    log = stderr_log()
    config = EnforceConfig(allowlist, mounts, mode, decision_timeout_ms, on_timeout, filesystem, pods,
                           reload_pods=(lambda: _pods(snapshot, log.put)) if snapshot else None)
    try:
        sink = AlertSink(alerts, queue_size=alert_queue, on_problem=log.put)
    except OSError as exc:
        fail(f"{alerts}: {exc.strerror or exc}")
    try:
        enforcer = Enforcer(config, sink, on_error=log.put)
    except AllowlistError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"exec enforce: {exc.strerror or exc} (needs root with CAP_SYS_ADMIN)")
    enforcer.install_signals()
    what = "filesystem" if filesystem else "mount"
    stats = enforcer.run(duration, ready=lambda: log.put(
        f"exec enforce: ready, {mode} mode on {len(mounts)} {what}(s), pid {os.getpid()}"))
    sink.close()
    counters = sink.counters()
    log.put("exec enforce: stopped " + json_line({**stats.to_json(), **counters}).rstrip("\n"))
    if counters["alerts_dropped"] or counters["alerts_failed"]:
        log.put(f"exec enforce: {counters['alerts_dropped']} alerts dropped (output not keeping up or gone at "
                f"exit), {counters['alerts_failed']} could not be written")
    log.close()


@group.command("flows")
@click.option("--snapshot", "snapshot", multiple=True, required=True, metavar="PATH",
              help="Manifests with Pods (status.podIP/podIPs), Namespaces and NetworkPolicies.")
@click.option("--netns", "netns", multiple=True, metavar="NAME",
              help="Read only these network namespaces (ip netns names or files such as /proc/PID/ns/net); "
                   "default: every namespace of the host's processes.")
@click.option("--alerts", "alerts", default="-", show_default=True, metavar="FILE|-",
              help="One JSON line per flow the policies deny.")
@click.option("--flows-out", "flows_out", default=None, metavar="FILE",
              help="Write every observed pod flow as JSON lines for `netpol generate --flows`.")
@click.option("--interval", type=click.FloatRange(min=0.01), default=0.2, show_default=True, metavar="SECONDS",
              help="Polling interval.")
@click.option("--duration", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Stop after SECONDS (default: until SIGTERM/SIGINT).")
def flows_cmd(snapshot: tuple[str, ...], netns: tuple[str, ...], alerts: str, flows_out: str | None,
              interval: float, duration: float | None) -> None:
    """Observe connections, map IPs to pods, alert on every flow the NetworkPolicies deny."""
    from ..agent.flows import run_flows

    try:
        run_flows(snapshot, netns, alerts, flows_out, interval, duration)
    except OSError as exc:
        fail(f"flows: {exc.strerror or exc}", EXIT_USAGE)


@group.group("netpol")
def netpol_group() -> None:
    """NetworkPolicy enforcement with nftables inside pod network namespaces."""


@netpol_group.command("enforce")
@click.option("--snapshot", "snapshot", multiple=True, required=True, metavar="PATH",
              help="Manifests with Pods (IPs, labels), Namespaces and the policies to enforce.")
@click.option("--netns", "netns", multiple=True, required=True, metavar="NAME",
              help="Network namespaces holding pod IPs (ip netns names or files such as /proc/PID/ns/net); "
                   "each gets its own table.")
@click.option("--reject", is_flag=True, help="Reject (ICMP admin-prohibited) instead of dropping: fast failures.")
@click.option("--dry-run", is_flag=True, help="Print the nftables scripts instead of loading them.")
@click.option("--remove", "remove_", is_flag=True, help="Delete the kubeward table from each namespace.")
def netpol_enforce_cmd(snapshot: tuple[str, ...], netns: tuple[str, ...], reject: bool, dry_run: bool,
                       remove_: bool) -> None:
    """Compile the policies to `table inet kubeward` in each namespace (pod-to-pod TCP/UDP/SCTP), atomically."""
    from ..agent.nftables import Compiler, NftError, apply, netns_addresses, remove
    from ..engines.netpol import from_snapshot

    try:
        if remove_:
            for ns in netns:
                remove(ns)
            warn(f"netpol enforce: removed from {len(netns)} namespace(s)")
            return
        snap = load_snapshot(snapshot)
        for e in snap.errors:
            warn(str(e).removeprefix("kubeward: "))
        if not snap.of_kind("Pod"):
            fail(f"{', '.join(snapshot)}: no Pod objects (pod IPs place the rules)")
        compiler = Compiler(from_snapshot(snap))
        for ns in netns:
            plan = compiler.plan(ns, netns_addresses(ns), reject=reject)
            if dry_run:
                click.echo(f"# netns {ns}: {', '.join(plan.pods) or 'no pod of the snapshot'}")
                click.echo(plan.script, nl=False)
                continue
            apply(plan)
            warn(f"netpol enforce: {ns}: {', '.join(plan.pods) or 'no pod of the snapshot'}, {plan.rules} rules")
    except NftError as exc:
        fail(f"netpol enforce: {exc}")
    except FileNotFoundError as exc:
        fail(f"netpol enforce: {exc.filename}: not installed (needs iproute2, nsenter and nftables)")
