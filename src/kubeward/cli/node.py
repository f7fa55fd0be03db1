"""`kubeward node check`: CIS control-plane, etcd and worker checks from node files, with typed flags.

The terminal view reads like kube-bench: one `[STATE] id requirement` line per benchmark check, the reasons
under the ones that need attention, and `== Summary <target> ==` totals; the other formats carry the Report.
"""

from __future__ import annotations

import functools
import shutil
import textwrap
from collections import Counter
from pathlib import Path

import click

from ..controls.node import FAIL, MANUAL_STATE, PASS, SKIP, STATES, WARN, BenchmarkCheck
from ..controls.node import SECTIONS as NODE_SECTIONS
from ..controls.node import TARGETS as NODE_TARGETS
from ..controls.node.policies import SECTIONS as POLICY_SECTIONS
from ..controls.registry import Control, Shape
from ..findings import Report
from ..formats import FORMATS, render_report
from ..textsafe import printable
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    apply_exceptions,
    color_wanted,
    emit,
    exceptions_option,
    exit_code,
    fail_on_type,
    output_options,
    parse_fail_on,
    print_errors,
    selection_options,
)
from .live import live_options, live_request

SECTIONS = {**NODE_SECTIONS, **POLICY_SECTIONS}
TARGETS = {**NODE_TARGETS, "5": "policies"}
STATE_STYLE = {PASS: {"fg": "green"}, FAIL: {"fg": "red", "bold": True}, WARN: {"fg": "yellow"},
               MANUAL_STATE: {"fg": "cyan"}, SKIP: {"dim": True}}
DETAILS_SHOWN = 5  # reasons listed under one check; the rest are counted (-o json has them all)
COLLAPSE_AT = 3  # consecutive WARN checks with the same reason shown as one line


def _runs(checks: list[BenchmarkCheck]) -> list[list[BenchmarkCheck]]:
    """Consecutive WARN checks with the same reason grouped; every other check alone."""
    runs: list[list[BenchmarkCheck]] = []
    for c in checks:
        last = runs[-1] if runs else None
        if last and c.state == WARN and last[-1].state == WARN and last[-1].details == c.details:
            last.append(c)
        else:
            runs.append([c])
    return [r for run in runs for r in ([run] if len(run) >= COLLAPSE_AT else [[c] for c in run])]


def _checks(report: Report, cluster: bool, narrowed: bool) -> list[BenchmarkCheck]:
    """The benchmark view: the node checks (with the MANUAL lines unless a selection flag narrowed the run) and,
    with --cluster, section 5."""
    from ..controls.node import benchmark
    from ..controls.node.policies import policy_checks

    return benchmark(report, manual=not narrowed) + (policy_checks(report) if cluster else [])


@click.group(name="node")
def group() -> None:
    """Control-plane and worker node checks (CIS)."""


def _wrap(text: str, width: int, indent: int) -> list[str]:
    """Wrapped at spaces only: flags, paths and ids are never split."""
    return textwrap.wrap(text, width=max(width - indent, 40), break_long_words=False, break_on_hyphens=False) or [""]


def render_benchmark(checks: list[BenchmarkCheck], *, show_passed: bool, color: bool, width: int) -> str:
    """kube-bench's layout: `[INFO]` section headings, `[STATE] id title`, reasons and fixes indented under the
    checks that need attention, `== Summary <target> ==` per target and in total. PASS lines only when asked."""

    def tag(state: str) -> str:
        label = f"[{state}]"
        return click.style(label, **STATE_STYLE[state]) if color else label  # type: ignore[arg-type]

    lines: list[str] = []
    totals: Counter[str] = Counter()
    targets = sorted({c.section.split(".")[0] for c in checks}, key=int)
    for target in targets:
        mine = [c for c in checks if c.section.split(".")[0] == target]
        lines.append(f"[INFO] {target} {SECTIONS[target]}")
        for section in dict.fromkeys(c.section for c in mine):
            if section != target:
                lines.append(f"[INFO] {section} {SECTIONS[section]}")
            shown_here = [c for c in mine if c.section == section and (c.state != PASS or show_passed)]
            for run in _runs(shown_here):
                if len(run) >= COLLAPSE_AT:  # one component absent: its checks share one reason
                    numbers = f"{run[0].number} … {run[-1].number}"
                    text = _wrap(f"({len(run)} checks) {printable(run[0].details[0])}", width, len(numbers) + 8)
                    lines.append(f"{tag(WARN)} {numbers} {text[0]}")
                    lines += [" " * (len(numbers) + 8) + t for t in text[1:]]
                    continue
                c = run[0]
                head = f"{tag(c.state)} {c.number} "
                pad = len(f"[{c.state}] {c.number} ")
                title = _wrap(printable(c.title), width, pad)
                lines.append(head + title[0])
                lines += [" " * pad + t for t in title[1:]]
                shown = c.details[:DETAILS_SHOWN]
                for d in shown:
                    wrapped = _wrap(printable(d), width, 9)
                    lines += ["       " + ("- " if i == 0 else "  ") + t for i, t in enumerate(wrapped)]
                if len(c.details) > len(shown):
                    lines.append(f"         … and {len(c.details) - len(shown)} more (-o json lists all)")
                if c.state == FAIL and c.remediation:
                    fix = _wrap("Fix: " + printable(c.remediation), width, 7)
                    lines += ["       " + t for t in fix]
        counts = Counter(c.state for c in mine)
        totals.update(counts)
        lines += ["", f"== Summary {TARGETS.get(target, target)} ==", *_counts(counts), ""]
    lines += ["== Summary total ==", *_counts(totals)]
    if not show_passed and totals[PASS]:
        lines.append(f"({totals[PASS]} passed checks not listed: --show-passed lists them)")
    return "\n".join(lines) + "\n"


def _counts(counts: Counter[str]) -> list[str]:
    return [f"{counts[s]} checks {s}" for s in STATES if s != SKIP or counts[s]]


@group.command("check", epilog="""\b
States: PASS judged and fine; FAIL findings (exit 1 at or above --fail-on);
WARN not assessed (component or file not found, not readable): never a pass;
MANUAL not decidable from node files (how to check by hand is shown);
SKIP every finding excepted (--exceptions).""")
@click.option("--root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("/"),
              show_default=True, help="Node filesystem root (host paths in manifests resolve below it).")
@click.option("--manifests", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Static-pod manifests (default: ROOT/etc/kubernetes/manifests).")
@click.option("--kubelet-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="KubeletConfiguration (default: ROOT/var/lib/kubelet/config.yaml).")
@click.option("--live/--offline", "live", default=None,
              help="Read the running components from the process table (default: when --root is / and any "
                   "component runs), or only the files under --root.")
@click.option("--proc", "proc_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("/proc"),
              show_default=True, help="Process table read with --live.")
@click.option("--pid", "pids", type=int, multiple=True,
              help="Judge only these processes (repeatable): a node running several copies of a component.")
@click.option("--benchmark", type=click.Choice(["cis-1.12"]), default=None,
              help="Only the benchmark's checks (kubeward's own checks beyond it are left out).")
@click.option("--show-passed", is_flag=True, help="List the passed checks too (the totals always count them).")
@functools.partial(live_options, cluster_help="Also judge CIS section 5 (policies) from this cluster's API "
                   "(--context, --kubeconfig).")
@output_options(FORMATS)
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True,
              help="Exit 1 when a finding at or above this severity remains (none: report only).")
@exceptions_option
@selection_options(Shape.NODE)
def check_cmd(root: Path, manifests: Path | None, kubelet_config: Path | None, live: bool | None, proc_dir: Path,
              pids: tuple[int, ...], benchmark: str | None, show_passed: bool, fmt: str, output_file: str | None,
              fail_on: str, exceptions_file: str | None, controls: list[Control], narrowed: bool) -> None:
    """CIS Kubernetes Benchmark control-plane, etcd and node checks, plus what flags alone cannot show.

    On a live node each component's flags are read from its process (/proc/PID/cmdline) and merged with the
    config files it names, with the precedence the binary uses; findings name the process they came from."""
    from ..controls.node import run
    from ..sources.node import load_node

    cfg = None
    if live or (live is None and root == Path("/") and manifests is None and kubelet_config is None):
        from ..sources.nodelive import from_processes
        from ..sources.proc import discover

        found = discover(proc_dir, frozenset(pids) if pids else None)
        if found.processes or found.errors or live:
            cfg = from_processes(found, load_node(root, manifests))
            if not found.processes:
                print_errors(cfg.errors)
                unread = f" ({found.unreadable} processes not readable)" if found.unreadable else ""
                click.echo(f"kubeward: {proc_dir}: no Kubernetes component running{unread}", err=True)
                raise SystemExit(EXIT_USAGE)
    elif pids:
        raise click.UsageError("--pid needs --live (processes are read only on a live node)")
    if cfg is None:
        cfg = load_node(root, manifests, kubelet_config)
    if not cfg.components and cfg.kubelet is None and cfg.proxy is None:
        print_errors(cfg.errors)
        if cfg.live:
            click.echo(f"kubeward: {proc_dir}: no running component could be judged", err=True)
            raise SystemExit(EXIT_USAGE)
        where = manifests or root / "etc/kubernetes/manifests"
        click.echo(f"kubeward: {where}: no control-plane manifests or kubelet configuration found", err=True)
        raise SystemExit(EXIT_USAGE)
    if benchmark:  # the benchmark's own checks (KW-CIS-<number>); its MANUAL lines stay
        controls = [c for c in controls if c.meta.id.startswith("KW-CIS-")]
    report = run(cfg, controls)
    cluster = live_request()
    if cluster is not None:  # section 5 from the API
        from ..controls.node.policies import cluster_report, merge

        report = merge(report, cluster_report(*cluster))
    report = apply_exceptions(report, exceptions_file)
    if fmt == "table":
        checks = _checks(report, cluster is not None, narrowed)
        width = 100 if output_file else shutil.get_terminal_size((100, 40)).columns
        text = render_benchmark(checks, show_passed=show_passed, color=color_wanted(output_file), width=width)
        states = Counter(c.state for c in checks)
        summary = ", ".join(f"{states[s]} {s}" for s in STATES if s != SKIP or states[s])
        emit(text, output_file, f"{len(checks)} checks: {summary}")
    else:
        states = Counter(c.state for c in _checks(report, cluster is not None, narrowed))
        report.states = {s: states[s] for s in STATES}  # kube-bench's totals, beside the findings
        emit(render_report(report, fmt), output_file)
    print_errors(report.errors)
    code = exit_code(report, parse_fail_on(fail_on), scanned=True)
    raise SystemExit(EXIT_USAGE if report.errors and code == EXIT_OK else code)
