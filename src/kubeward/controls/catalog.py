"""The control catalog as text: `kubeward controls` and docs/controls.md (a test keeps that file current).

Retired ids (a check merged into the control that reports its fact, `registry.alias`) are listed with the
controls they stand for, so an id in an old exceptions file can be looked up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..findings import ControlMeta
from ..formats import DOCUMENTS, document


def render_catalog(metas: Iterable[ControlMeta], fmt: str, aliases: Mapping[str, tuple[str, ...]] | None = None) -> str:
    metas = list(metas)
    listed = {m.id for m in metas}
    retired = {old: ids for old, ids in (aliases or {}).items() if listed.intersection(ids)}
    if fmt in DOCUMENTS:
        named_by: dict[str, list[str]] = {}
        for old, ids in retired.items():
            for cid in ids:
                named_by.setdefault(cid, []).append(old)
        return document([{**m.to_json(), "remediation": m.remediation, "description": m.description,
                          **({"aliases": named_by[m.id]} if m.id in named_by else {})} for m in metas], fmt)
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
        if retired:
            lines += ["", "## Retired ids", "",
                      "Still accepted by selections, exceptions and `kubeward.io/ignore`, for the controls now "
                      "reporting their problem.", "", "| retired id | now reported by |", "|---|---|"]
            lines += [f"| {old} | {', '.join(ids)} |" for old, ids in retired.items()]
        return "\n".join(lines) + "\n"
    width = max((len(i) for i in (*listed, *retired)), default=2)
    out = [f"{m.id:<{width}}  {m.severity.label:<8}  {m.title}  [{', '.join(m.frameworks)}]" for m in metas]
    out += [f"{old:<{width}}  {'alias':<8}  now reported by {', '.join(ids)}" for old, ids in retired.items()]
    return "\n".join(out) + ("\n" if out else "")
