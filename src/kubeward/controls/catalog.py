"""The control catalog as text: `kubeward controls` and docs/controls.md (a test keeps that file current).

Every check comes from the one registry, whatever it judges; its description is its docstring (registry.describe)."""

from __future__ import annotations

from collections.abc import Iterable

from ..findings import ControlMeta
from ..formats import DOCUMENTS, document


def catalog_metas(frameworks: tuple[str, ...] = ("all",)) -> list[ControlMeta]:
    """What `kubeward controls` lists (and docs/controls.md holds): scan controls, then the checks of the other
    commands (node, pki, encryption, etcd, audit policy, vulns), each part by id."""
    from .registry import SCAN_SHAPES, Selection, every_control
    from .standalone import vulns_metas

    chosen = Selection(frameworks=frameworks).choose(every_control())  # frameworks known to any check
    others = {c.meta.id: c.meta for c in chosen if c.shape not in SCAN_SHAPES}
    others.update({m.id: m for m in vulns_metas() if any(m.in_framework(f) for f in frameworks)})
    return [c.meta for c in chosen if c.shape in SCAN_SHAPES] + [others[k] for k in sorted(others)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n\n", "<br><br>").replace("\n", " ")


def render_catalog(metas: Iterable[ControlMeta], fmt: str) -> str:
    metas = list(metas)
    if fmt in DOCUMENTS:
        return document([{**m.to_json(), "remediation": m.remediation, "description": m.description} for m in metas],
                        fmt)
    if fmt == "markdown":
        lines = [
            "# Controls",
            "",
            "Generated from the control registry by `kubeward controls -o markdown`; do not edit by hand. The last",
            "column is each check's docstring: what it checks, why, and the upstream reference.",
            "",
            f"{len(metas)} controls.",
            "",
            "| id | severity | category | title | frameworks | remediation | what and why |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in metas:
            cells = [m.id, m.severity.label, m.category, m.title, ", ".join(m.frameworks), m.remediation,
                     m.description]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        return "\n".join(lines) + "\n"
    width = max((len(m.id) for m in metas), default=2)
    out = [f"{m.id:<{width}}  {m.severity.label:<8}  {m.title}  [{', '.join(m.frameworks)}]" for m in metas]
    return "\n".join(out) + ("\n" if out else "")
