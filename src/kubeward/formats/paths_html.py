"""Attack paths as one self-contained HTML page: an SVG graph of the listed paths (laid out in columns by step, so
it is drawn without any script), the ranked list, and each path's steps with evidence, object and fix. A small
inline script makes it interactive: clicking a path (or opening the page at `#path=N`) highlights its nodes and
edges and shows its steps; clicking a node highlights every path through it. Same rules as the scan report
(formats/html.py): no external URL, a Content-Security-Policy that forbids loading anything, autoescaping on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..paths.rank import Path
from .html import _environment

COLUMN, ROW, LEFT, TOP = 194, 60, 10, 30
NODE_W, NODE_H = 170, 36
LABEL = 22  # characters that fit a box at 12px
COLOURS = {"internet": "#b42318", "pod": "#2f6fdb", "ServiceAccount": "#0f8a7e", "User": "#7048e8",
           "Group": "#7048e8", "node": "#e8590c", "cluster-admin": "#7a1010", "secrets": "#9c36b5",
           "any": "#5b6578", "create-pods": "#5b6578"}


@dataclass(frozen=True, slots=True)
class Box:
    id: str
    label: str
    x: int
    y: int
    colour: str
    paths: str  # space-separated path numbers through it


@dataclass(frozen=True, slots=True)
class Line:
    d: str  # SVG path data
    paths: str
    kind: str


def _kind(node: str) -> str:
    head = node.split(" ", 1)[0]
    return "secrets" if node.startswith("secrets") else head


def layout(paths: list[Path]) -> tuple[list[Box], list[Line], int, int]:
    column: dict[str, int] = {}
    through: dict[str, list[int]] = {}
    for n, p in enumerate(paths, 1):
        for i, node in enumerate(p.key):
            column[node] = max(column.get(node, i), i)  # longest-path layering: most edges run forwards
            through.setdefault(node, []).append(n)
    if paths:  # the target ends every path: the last column, so no edge runs backwards into it
        others = [c for node, c in column.items() if node != paths[0].target]
        column[paths[0].target] = max(others, default=0) + 1
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for node in sorted(column, key=lambda v: (column[v], min(through[v]), v)):
        c = column[node]
        r = rows.get(c, 0)
        rows[c] = r + 1
        place[node] = (LEFT + c * COLUMN, TOP + r * ROW)
    if paths:  # the target alone in its column, halfway down: edges into it do not run behind other boxes
        tallest = max(rows.values())
        place[paths[0].target] = (place[paths[0].target][0], TOP + (tallest - 1) * ROW // 2)
    boxes = [Box(node, node if len(node) <= LABEL else node[:LABEL - 1] + "…", x, y, COLOURS.get(_kind(node), "#5b6578"),
                 " ".join(map(str, sorted(set(through[node]))))) for node, (x, y) in place.items()]
    seen: dict[tuple[str, str], list[int]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for n, p in enumerate(paths, 1):
        prev = p.source
        for s in p.steps:
            seen.setdefault((prev, s.node), []).append(n)
            kinds[(prev, s.node)] = s.main.kind.value
            prev = s.node
    lines = []
    for (a, b), ns in seen.items():
        (x1, y1), (x2, y2) = place[a], place[b]
        sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
        if ex <= sx:  # a step back to an earlier column: loop below the boxes
            d = f"M{sx},{sy} C{sx + 40},{sy + 50} {ex - 40},{ey + 50} {ex},{ey}"
        else:
            mid = (sx + ex) // 2
            d = f"M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}"
        lines.append(Line(d, " ".join(map(str, sorted(set(ns)))), kinds[(a, b)]))
    width = LEFT * 2 + (max(column.values(), default=0) + 1) * COLUMN
    height = TOP * 2 + max(rows.values(), default=1) * ROW
    return boxes, lines, width, height


def render_html(paths: list[Path], source: str, target: str, total: int, fixes: list[dict[str, Any]] | None) -> str:
    boxes, lines, width, height = layout(paths)
    return _environment().get_template("paths.html.j2").render(
        version=__version__, title=f"kubeward attack paths: {source} → {target}", source=source, target=target,
        total=total, paths=paths, boxes=boxes, lines=lines, width=width, height=height, node_w=NODE_W, node_h=NODE_H,
        fixes=fixes or [], graph_title="Graph", list_title="Paths",
    )
