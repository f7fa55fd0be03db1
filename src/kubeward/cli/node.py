"""`kubeward node check`: CIS control-plane, etcd and worker checks from node files, with typed flags.

The terminal view reads like kube-bench: one `[STATE] id requirement` line per benchmark check, the reasons
under the ones that need attention, and `== Summary <target> ==` totals; the other formats carry the Report.
"""

from __future__ import annotations

import shutil
import textwrap
from collections import Counter
from pathlib import Path

import click

from ..controls.node import FAIL, MANUAL_STATE, PASS, SECTIONS, SKIP, STATES, TARGETS, WARN, BenchmarkCheck
from ..controls.registry import Control, Shape
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
@click.option("--show-passed", is_flag=True, help="List the passed checks too (the totals always count them).")
@output_options(FORMATS)
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True,
              help="Exit 1 when a finding at or above this severity remains (none: report only).")
@exceptions_option
@selection_options(Shape.NODE)
def check_cmd(root: Path, manifests: Path | None, kubelet_config: Path | None, show_passed: bool, fmt: str,
              output_file: str | None, fail_on: str, exceptions_file: str | None, controls: list[Control],
              narrowed: bool) -> None:
    """CIS Kubernetes Benchmark control-plane, etcd and node checks, plus what flags alone cannot show."""
    from ..controls.node import benchmark, run
    from ..sources.node import load_node

    cfg = load_node(root, manifests, kubelet_config)
    if not cfg.components and cfg.kubelet is None:
        print_errors(cfg.errors)
        where = manifests or root / "etc/kubernetes/manifests"
        click.echo(f"kubeward: {where}: no control-plane manifests or kubelet configuration found", err=True)
        raise SystemExit(EXIT_USAGE)
    report = apply_exceptions(run(cfg, controls), exceptions_file)
    if fmt == "table":
        checks = benchmark(report, manual=not narrowed)  # the MANUAL lines belong to the whole benchmark
        width = 100 if output_file else shutil.get_terminal_size((100, 40)).columns
        text = render_benchmark(checks, show_passed=show_passed, color=color_wanted(output_file), width=width)
        states = Counter(c.state for c in checks)
        summary = ", ".join(f"{states[s]} {s}" for s in STATES if s != SKIP or states[s])
        emit(text, output_file, f"{len(checks)} checks: {summary}")
    else:
        emit(render_report(report, fmt), output_file)
    print_errors(report.errors)
    code = exit_code(report, parse_fail_on(fail_on), scanned=True)
    raise SystemExit(EXIT_USAGE if report.errors and code == EXIT_OK else code)
