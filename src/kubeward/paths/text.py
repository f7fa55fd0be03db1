"""The plain-text views of `kubeward paths`: the ranked list, one path explained (`--why`), the fixes."""

from __future__ import annotations

from collections.abc import Callable

from ..textsafe import escape_control
from . import Analysis
from .cut import Cut
from .rank import Path

Table = Callable[[list[tuple[list[str], ...]], int], str]


def _from(a: Analysis) -> str:
    return a.sources[0] if len(a.sources) == 1 else f"any of {len(a.sources)} pods"


def render_table(a: Analysis, shown: list[Path], cut: Cut | None, width: int, table: Table) -> str:
    if not a.paths:
        return f"no attack paths from {_from(a)} to {a.target}\n"
    head = f"{len(a.paths)} attack path{'s' if len(a.paths) != 1 else ''} from {_from(a)} to {a.target}"
    if len(shown) < len(a.paths):
        head += f" (the first {len(shown)} shown)"
    rows: list[tuple[list[str], ...]] = [(["#"], ["SCORE"], ["STEPS"], ["PATH"])]
    for i, p in enumerate(shown, 1):
        rows.append(([str(i)], [str(p.cost)], [str(len(p.steps))], [escape_control(" → ".join(p.key))]))
    out = head + "\n" + table(rows, width)
    if cut is not None:
        out += "\n" + render_fixes(cut)
    else:
        out += "\n`--why N` explains a path; `--fixes` shows the fewest changes that cut them all.\n"
    return out


def render_why(p: Path, n: int) -> str:
    lines = [f"path {n}: {escape_control(str(p))} (score {p.cost})"]
    for i, s in enumerate(p.steps, 1):
        e = s.main
        lines.append(f"  {i}. → {escape_control(s.node)}  [{e.kind.value}, {e.engine}, cost {e.cost}]")
        lines.append(f"     because: {escape_control(e.evidence)}")
        if e.obj is not None:
            where = f" ({e.file}:{e.line})" if e.file and e.line else f" ({e.file})" if e.file else ""
            lines.append(f"     object:  {escape_control(str(e.obj))}{escape_control(where)}")
        lines.append(f"     fix:     {escape_control(e.fix)}" if e.fix else "     fix:     none at this step "
                     "(structural: membership or what the kubelet needs)")
    return "\n".join(lines) + "\n"


def render_fixes(cut: Cut) -> str:
    if cut.uncuttable:
        return "no set of fixes cuts every path: some path has only structural steps\n"
    if not cut.fixes:
        return "no fixes needed\n"
    lines = [f"{len(cut.fixes)} change{'s' if len(cut.fixes) != 1 else ''} cut every path:"]
    for e in cut.fixes:
        n = cut.breaks.get((e.src, e.dst), 0)
        where = f" [{e.obj}]" if e.obj is not None else ""
        lines.append(f"  - {escape_control(e.fix)}{escape_control(where)} (breaks {n} listed path{'s' if n != 1 else ''})")
    return "\n".join(lines) + "\n"
