"""The control catalog as text: `kubeward controls` and docs/controls.md (a test keeps that file current)."""

from __future__ import annotations

from collections.abc import Iterable

from ..findings import ControlMeta
from ..formats import DOCUMENTS, document


def render_catalog(metas: Iterable[ControlMeta], fmt: str) -> str:
    metas = list(metas)
    if fmt in DOCUMENTS:
        return document([{**m.to_json(), "remediation": m.remediation, "description": m.description} for m in metas],
                        fmt)
    if fmt == "markdown":
        lines = [
            "# Controls",
            "",
            "Generated from the control registry by `kubeward controls -o markdown`; do not edit by hand.",
            "",
            f"{len(metas)} controls.",
            "",
            "| id | severity | category | title | frameworks | remediation |",
            "|---|---|---|---|---|---|",
        ]
        for m in metas:
            cells = [m.id, m.severity.label, m.category, m.title, ", ".join(m.frameworks), m.remediation]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        return "\n".join(lines) + "\n"
    width = max((len(m.id) for m in metas), default=2)
    out = [f"{m.id:<{width}}  {m.severity.label:<8}  {m.title}  [{', '.join(m.frameworks)}]" for m in metas]
    return "\n".join(out) + ("\n" if out else "")
