"""Human-readable report for terminals and CI logs (rich): findings grouped by control, then a summary.

Colour only when asked (the CLI asks when stdout is a TTY); with color=False the output carries no ANSI codes, so
it is safe in files and logs. Every piece of user-supplied text (names, messages, reasons) goes in as rich `Text`,
never as markup, so a manifest cannot inject styling. Very large reports cap the rows per control and say how
many were left out: rich lays out every cell, which is the slow part beyond a few thousand rows.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from io import StringIO
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..findings import ControlMeta, Finding, Report, Severity
from ..textsafe import escape_control

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
DEFAULT_WIDTH = 120
CAP_ABOVE = 5000  # total findings above which rows per control are capped
CAPPED_ROWS = 50
LIST_CAP = 100  # suppressed findings and input errors listed at most


def clean(text: str) -> str:
    """Cell text from a manifest: control characters escaped, tab and newline kept for the cell layout."""
    return escape_control(text, keep_layout=True)


def _t(text: object, style: str = "") -> Text:
    """User-supplied text as a literal, control characters escaped."""
    return Text(clean(str(text)), style=style)


def _width(width: int | None) -> int:
    if width:
        return width
    return shutil.get_terminal_size((DEFAULT_WIDTH, 40)).columns or DEFAULT_WIDTH


def _console(color: bool, width: int) -> Console:
    return Console(
        file=StringIO(),
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
        soft_wrap=False,
    )


def _sev(sev: Severity) -> Text:
    return Text(f" {sev.label.upper()} ", style=SEVERITY_STYLE[sev])


def _control_block(meta: ControlMeta, found: list[Finding], evaluated: int | None, max_rows: int | None) -> Group:
    failed_objects = len({f.object for f in found})
    head = Text.assemble(_sev(meta.severity), " ", (clean(meta.id), "bold"), "  ", clean(meta.title))
    stats = f"  {failed_objects} object(s) failed" + (f" of {evaluated}" if evaluated else "")
    head.append(stats, style="dim")
    if meta.frameworks:
        head.append(clean(f"  [{', '.join(meta.frameworks)}]"), style="dim")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=True, padding=(0, 1))
    table.add_column("Object", overflow="fold", ratio=3)
    table.add_column("Location", overflow="fold", ratio=2, style="cyan")
    table.add_column("Message", overflow="fold", ratio=5)
    rows = found if max_rows is None else found[:max_rows]
    for f in rows:
        table.add_row(_t(f.object), _t(str(f.location) or "-"), _t(f.message))
    parts: list[Any] = [head, table]
    if len(rows) < len(found):
        parts.append(Text(f"  ... and {len(found) - len(rows)} more (use -o json for all)", style="dim italic"))
    if meta.remediation:
        parts.append(Text.assemble(("  Fix: ", "bold green"), clean(meta.remediation)))
    parts.append(Text(""))
    return Group(*parts)


def _bar(score: float, width: int = 20) -> Text:
    filled = round(score / 100 * width)
    style = "green" if score >= 80 else "yellow" if score >= 50 else "red"
    return Text.assemble(("█" * filled, style), ("░" * (width - filled), "dim"))


def _summary(report: Report) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("Objects scanned", str(report.objects))
    if report.coverage is not None:
        grid.add_row("Types read", f"{report.coverage[0]} of {report.coverage[1]}")
    counts = report.by_severity()
    sev_text = Text()
    for sev in sorted(Severity, reverse=True):
        if sev == Severity.INFO:
            continue
        if sev_text:
            sev_text.append("  ")
        sev_text.append(f"{sev.label} {counts[sev.label]}", style=SEVERITY_STYLE[sev] if counts[sev.label] else "")
    info = sum(1 for f in report.findings if f.severity == Severity.INFO)
    if info:
        sev_text.append(f"  info {info}", style="dim")
    grid.add_row("Findings", Text.assemble(f"{len(report.findings)}  (", sev_text, ")"))
    grid.add_row("Suppressed", str(len(report.suppressed)))
    grid.add_row("Input errors", Text(str(len(report.errors)), style="bold red" if report.errors else ""))
    if report.skipped:
        grid.add_row("Skipped", f"{len(report.skipped)} not Kubernetes objects (-v names them)")
    for n in report.not_assessed:
        grid.add_row(Text("NOT ASSESSED", style="bold magenta"), _t(f"{n.what}: {n.reason}"))
    for x in report.expired_exceptions:
        grid.add_row(Text("Expired exception", style="yellow"), _t(x))
    for x in report.exception_notes:
        grid.add_row(Text("Exception note", style="yellow"), _t(x))
    return grid


def _scores(report: Report) -> Table | None:
    scores = report.framework_scores()
    if not scores:
        return None
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=None)
    table.add_column("Framework", style="bold")
    table.add_column("Score", justify="right")
    table.add_column("", no_wrap=True)
    for fw, score in scores.items():
        table.add_row(_t(fw), f"{score:.1f}%", _bar(score))
    return table


def render(report: Report, *, color: bool = False, width: int | None = None, max_rows: int | None = None,
           **_: Any) -> str:
    console = _console(color, _width(width))
    if max_rows is None and len(report.findings) > CAP_ABOVE:
        max_rows = CAPPED_ROWS
    grouped: dict[str, list[Finding]] = defaultdict(list)
    metas: dict[str, ControlMeta] = {}
    for f in report.findings:
        grouped[f.control.id].append(f)
        metas[f.control.id] = f.control
    order = sorted(grouped, key=lambda c: (-metas[c].severity, c))
    if order:
        console.print(Text("Findings", style="bold underline"))
        console.print()
    for cid in order:
        res = report.controls.get(cid)
        console.print(_control_block(metas[cid], grouped[cid], res.evaluated if res else None, max_rows))
    if not report.findings:
        console.print(Text("No findings.", style="bold green") if report.objects else Text("Nothing was scanned."))
        console.print()

    if report.suppressed:
        console.print(Text(f"Suppressed ({len(report.suppressed)})", style="bold underline"))
        sup = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        sup.add_column("Control", no_wrap=True)
        sup.add_column("Object", overflow="fold")
        sup.add_column("Reason", overflow="fold")
        for f in report.suppressed[:LIST_CAP]:
            sup.add_row(_t(f.control.id), _t(f.object), _t(f.suppressed_by or ""))
        console.print(sup)
        if len(report.suppressed) > LIST_CAP:
            console.print(Text(f"  ... and {len(report.suppressed) - LIST_CAP} more", style="dim italic"))
        console.print()
    if report.errors:
        console.print(Text(f"Input errors ({len(report.errors)})", style="bold underline red"))
        for e in report.errors[:LIST_CAP]:
            console.print(_t(f"  {e.file}: {e.message}"))
        if len(report.errors) > LIST_CAP:
            console.print(Text(f"  ... and {len(report.errors) - LIST_CAP} more", style="dim italic"))
        console.print()

    console.print(Text("Summary", style="bold underline"))
    console.print(_summary(report))
    scores = _scores(report)
    if scores is not None:
        console.print()
        console.print(Text("Compliance score per framework (passed / judged objects, mean over controls)",
                           style="bold underline"))
        console.print(scores)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in out.splitlines()) + "\n"
