"""Human-readable report for terminals and CI logs: the summary first, then one line per failed control (most
severe first, then most failed objects) with its findings under it.

Layout is done here rather than by rich's table fitting: rich folds a cell mid-word when a column is too narrow,
which cuts object names and paths. Here an object name and a `file:line` are single units that are never broken
(a unit wider than the terminal sits alone on its line, whole), and messages wrap only at spaces. Rich is used for
styles only. Colour only when asked (the CLI asks when stdout is a TTY); with color=False there are no ANSI codes.
Every piece of user-supplied text goes in as rich `Text`, never as markup, with control characters escaped.

Paths are shown as ruff does (its `fs::relativize_path`): relative to the working directory when they are under it,
otherwise as given (kubectl too prints file names as given). A caller may name another base (the demo names its
own folder, which a pip install puts far from any working directory); the summary then says where that is.

By default (`first=None`) every finding is listed; `scan` asks for its first few per control (`first=3`) unless
`--details`. Very large reports cap the rows per control and say how many were left out.
"""

from __future__ import annotations

import shutil
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from io import StringIO
from typing import Any

from rich.console import Console
from rich.text import Text

from ..findings import ControlMeta, Finding, Report, Severity
from ..textsafe import escape_control
from . import FIRST as FIRST  # the default view's findings per control, re-exported
from .paths import Paths

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
INDENT = 4  # findings under their control line
MIN_MESSAGE = 24  # narrowest message column worth aligning findings in columns for
ID_COLUMN = 18  # ids are aligned up to this width
BADGE = 11  # " CRITICAL " and the others padded to it, one space after


def clean(text: object) -> str:
    """One-line text from a manifest: every control character escaped (a newline too, so a name stays one unit)."""
    return escape_control(str(text))


def _t(text: object, style: str = "") -> Text:
    """User-supplied text as a literal, control characters escaped."""
    return Text(clean(text), style=style)


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


def _wrap(text: str, width: int) -> list[str]:
    """Words in lines of at most `width` cells, broken only at spaces (a longer word gets a line of its own)."""
    return textwrap.wrap(text, max(width, 1), break_long_words=False, break_on_hyphens=False) or [""]


def _flow(units: list[Text], width: int, start: Text, indent: int, gap: int = 2) -> list[Text]:
    """Place unbreakable units left to right after `start`, `gap` spaces apart, a new line at `indent` when the
    next one does not fit; a unit wider than a line sits alone on its line, whole."""
    lines: list[Text] = []
    line, col, fresh = start.copy(), start.cell_len, True
    for unit in units:
        if not fresh and col + gap + unit.cell_len > width:
            lines.append(line)
            line, col, fresh = Text(" " * indent), indent, True
        if not fresh:
            line.append(" " * gap)
            col += gap
        line.append_text(unit)
        col += unit.cell_len
        fresh = False
    lines.append(line)
    return lines


def _rows(cells: Sequence[tuple[Text, ...]], messages: Sequence[str], width: int, indent: int) -> list[Text]:
    """Rows of unbreakable cells and a wrapped message: in aligned columns when they leave the message room,
    otherwise each row's cells on one line (or more, never cutting one) and its message under them."""
    if not cells:
        return []
    widths = [max(row[i].cell_len for row in cells) for i in range(len(cells[0]))]
    msg_col = indent + sum(w + 2 for w in widths)
    out: list[Text] = []
    if msg_col + MIN_MESSAGE <= width:
        for row, message in zip(cells, messages, strict=True):
            line = Text(" " * indent)
            for cell, w in zip(row, widths, strict=True):
                line.append_text(cell)
                line.append(" " * (w - cell.cell_len + 2))
            parts = _wrap(message, width - msg_col)
            line.append(parts[0])
            out.append(line)
            out.extend(Text(" " * msg_col + part) for part in parts[1:])
        return out
    for row, message in zip(cells, messages, strict=True):
        out.extend(_flow(list(row), width, Text(" " * indent), indent))
        out.extend(Text(" " * (indent + 2) + part) for part in _wrap(message, width - indent - 2))
    return out


def _badge(sev: Severity) -> Text:
    label = f" {sev.label.upper()} "
    return Text.assemble((label, SEVERITY_STYLE[sev]), " " * (BADGE - len(label)))


class _Control:
    __slots__ = ("evaluated", "failed", "found", "meta")

    def __init__(self, meta: ControlMeta, found: list[Finding], evaluated: int | None) -> None:
        self.meta, self.found, self.evaluated = meta, found, evaluated
        self.failed = len({f.object for f in found})

    def count(self) -> str:
        return f"{self.failed}/{self.evaluated}" if self.evaluated else str(self.failed)


def _controls(report: Report) -> list[_Control]:
    """Failed controls, most severe first, then the most failed objects: what to fix first leads."""
    grouped: dict[str, list[Finding]] = defaultdict(list)
    metas: dict[str, ControlMeta] = {}
    for f in report.findings:
        grouped[f.control.id].append(f)
        metas[f.control.id] = f.control
    out = []
    for cid, found in grouped.items():
        res = report.controls.get(cid)
        out.append(_Control(metas[cid], found, res.evaluated if res else None))
    out.sort(key=lambda c: (-c.meta.severity, -c.failed, c.meta.id))
    return out


def _control_lines(controls: list[_Control], width: int, paths: Paths, *, first: int | None, max_rows: int | None,
                   findings_from: Severity, fixes: bool, hint: str) -> list[Text]:
    id_w = min(max(len(clean(c.meta.id)) for c in controls), ID_COLUMN)  # a longer id pushes its own line only
    count_w = max(len(c.count()) for c in controls)
    title_col = BADGE + id_w + 2 + count_w + 2
    lines: list[Text] = []
    for c in controls:
        start = Text.assemble(_badge(c.meta.severity), (clean(c.meta.id).ljust(id_w), "bold"), "  ",
                              c.count().rjust(count_w), "  ")
        hang = title_col if width - title_col >= MIN_MESSAGE else INDENT + 2
        lines.extend(_flow([Text(w) for w in clean(c.meta.title).split()], width, start, hang, gap=1))
        shown = 0 if c.meta.severity < findings_from else len(c.found)
        if first is not None:
            shown = min(shown, first)
        if max_rows is not None:
            shown = min(shown, max_rows)
        rows = c.found[:shown]
        cells = [(_t(f.object), Text(paths.where(f.location) or "-", style="cyan")) for f in rows]
        lines.extend(_rows(cells, [clean(_message(f)) for f in rows], width, INDENT))
        if 0 < shown < len(c.found):
            how = hint if hint and shown == first else "-o json"  # cut by the view, or by the cap
            more = f"… {len(c.found) - shown} more finding(s) ({how} for all)"
            lines.append(Text(" " * INDENT + more, style="dim italic"))
        if fixes and c.meta.remediation:
            lines.extend(_flow([Text(w) for w in clean(c.meta.remediation).split()], width,
                               Text.assemble(" " * INDENT, ("Fix: ", "bold green")), INDENT + 5, gap=1))
            lines.append(Text(""))
    return lines


def _message(f: Finding) -> str:
    """The message, and for a ranked vulnerability its risk and the factors behind it."""
    return f.message if f.risk is None else f"{f.message} [{f.risk.summary()}]"


def _collapsed(controls: list[_Control], width: int, hint: str) -> list[Text]:
    """One line for the controls left out of the listing, counted per severity."""
    if not controls:
        return []
    per: dict[Severity, int] = defaultdict(int)
    for c in controls:
        per[c.meta.severity] += 1
    counts = [Text(f"{n} {sev.label}{',' if i < len(per) - 1 else ''}")
              for i, (sev, n) in enumerate(sorted(per.items(), reverse=True))]
    head = [Text(w) for w in f"{len(controls)} more failed control(s):".split()]
    tail = [Text(w) for w in f"({hint} lists them)".split()] if hint else []
    units = [*head, *counts, *tail]
    return [Text.assemble(line, style="dim") for line in
            _flow(units, width, Text("+ "), 2, gap=1)]


class _Grid:
    """Key/value rows laid out like the rest: keys in one column, each value flowed after them in units that are
    never cut (a str or Text value is split at spaces; a list gives its units, placed two spaces apart)."""

    def __init__(self) -> None:
        self.rows: list[tuple[Text, list[Text], int]] = []

    def add_row(self, key: str | Text, value: str | Text | list[Text]) -> None:
        key = key if isinstance(key, Text) else Text(key)
        key.stylize("bold")
        if isinstance(value, list):
            self.rows.append((key, value, 2))
        else:
            text = value if isinstance(value, Text) else Text(value)
            self.rows.append((key, list(text.split(" ", allow_blank=False)) or [Text("")], 1))

    def lines(self, width: int) -> list[Text]:
        col = max(k.cell_len for k, _, _ in self.rows) + 2
        out: list[Text] = []
        for key, units, gap in self.rows:
            start = Text.assemble(key, " " * (col - key.cell_len))
            out.extend(_flow(units, width, start, col, gap=gap))
        return out


def _summary(report: Report, controls: int, paths_from: str | None) -> _Grid:
    grid = _Grid()
    grid.add_row("Objects scanned", str(report.objects))
    if paths_from:
        grid.add_row("Files in", [_t(paths_from)])
    if report.coverage is not None:
        grid.add_row("Types read", f"{report.coverage[0]} of {report.coverage[1]}")
    counts = report.by_severity()
    pairs: list[tuple[Severity, int]] = [(sev, counts[sev.label]) for sev in sorted(Severity, reverse=True)
                                         if sev != Severity.INFO]
    info = sum(1 for f in report.findings if f.severity == Severity.INFO)
    if info:
        pairs.append((Severity.INFO, info))
    tally = [Text(f"{sev.label} {n}", style=(SEVERITY_STYLE[sev] if sev != Severity.INFO else "dim") if n else "")
             for sev, n in pairs]
    tally[0], tally[-1] = Text.assemble("(", tally[0]), Text.assemble(tally[-1], ")")
    found = [Text(str(len(report.findings))), *tally]
    if controls:
        found.append(Text(f"from {controls} control(s)"))
    grid.add_row("Findings", found)
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
    scores = report.framework_scores()
    if scores:  # "name score" pairs are never split
        grid.add_row("Compliance", [Text(f"{fw} {score:.1f}%", style=_score_style(score))
                                    for fw, score in scores.items()])
    return grid


def _score_style(score: float) -> str:
    return "green" if score >= 80 else "yellow" if score >= 50 else "red"


def render(report: Report, *, color: bool = False, width: int | None = None, max_rows: int | None = None,
           first: int | None = None, findings_from: Severity = Severity.INFO, list_from: Severity = Severity.INFO,
           base: str | None = None, hint: str = "", **_: Any) -> str:
    """`first`: findings shown per control (None: all, with the suppressed list); `findings_from`: controls
    below this severity get their line only; `list_from`: controls below it are counted in one line; `base`: the
    folder whose files are shown relative to it (the others: relative to the working directory when under it, else
    as given); `hint`: the option that shows all."""
    width = _width(width)
    console = _console(color, width)
    paths = Paths(base)
    if max_rows is None and len(report.findings) > CAP_ABOVE:
        max_rows = CAPPED_ROWS
    controls = _controls(report)

    console.print(Text("Summary", style="bold underline"))
    for line in _summary(report, len(controls), paths.base).lines(width):
        console.print(line, overflow="ignore", crop=False, no_wrap=True)
    console.print()
    if report.errors:
        console.print(Text(f"Input errors ({len(report.errors)})", style="bold underline red"))
        for e in report.errors[:LIST_CAP]:
            units = [Text(f"{paths.show(e.file)}:"), *(Text(w) for w in clean(e.message).split())]
            for line in _flow(units, width, Text("  "), 4, gap=1):
                console.print(line, overflow="ignore", crop=False, no_wrap=True)
        if len(report.errors) > LIST_CAP:
            console.print(Text(f"  ... and {len(report.errors) - LIST_CAP} more", style="dim italic"))
        console.print()

    listed = [c for c in controls if c.meta.severity >= list_from]
    if listed:
        console.print(Text("Failed controls (severity, id, failed/total objects, title) and their findings",
                           style="bold underline"))
        lines = _control_lines(listed, width, paths, first=first, max_rows=max_rows, findings_from=findings_from,
                               fixes=first is None, hint=hint)
        lines += _collapsed([c for c in controls if c.meta.severity < list_from], width, hint)
        for line in lines:
            console.print(line, overflow="ignore", crop=False, no_wrap=True)
        console.print()
    elif not report.findings:
        console.print(Text("No findings.", style="bold green") if report.objects else Text("Nothing was scanned."))
        console.print()

    if report.suppressed and first is None:
        console.print(Text(f"Suppressed ({len(report.suppressed)})", style="bold underline"))
        rows = report.suppressed[:LIST_CAP]
        cells = [(_t(f.control.id), _t(f.object)) for f in rows]
        for line in _rows(cells, [clean(f.suppressed_by or "") for f in rows], width, 2):
            console.print(line, overflow="ignore", crop=False, no_wrap=True)
        if len(report.suppressed) > LIST_CAP:
            console.print(Text(f"  ... and {len(report.suppressed) - LIST_CAP} more", style="dim italic"))
        console.print()
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in out.splitlines()) + "\n"
