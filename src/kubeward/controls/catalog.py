"""The control catalog as text: `kubeward controls` and docs/controls.md (a test keeps that file current).

Every check comes from the one registry, whatever it judges; its description is its docstring (registry.describe).
Retired ids (a check merged into the control that reports its fact, `registry.alias`) are listed with the
controls they stand for, so an id in an old exceptions file can be looked up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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


def control_page(cid: str, aliases: Mapping[str, tuple[str, ...]]) -> list[ControlMeta]:
    """The controls `kubeward controls ID` explains: the one with that id, or those a retired id stands for.
    Raises SelectionError for an id no check has (the command's exit 2)."""
    from .registry import SelectionError

    metas = {m.id: m for m in catalog_metas()}
    ids = aliases.get(cid, (cid,))
    if any(i not in metas for i in ids):
        raise SelectionError(f"unknown control id: {cid} (see `kubeward controls`)")
    return [metas[i] for i in ids]


def render_page(cid: str, fmt: str, aliases: Mapping[str, tuple[str, ...]], width: int = 100) -> str:
    """One control's full page (id, title, severity, category, frameworks, aliases, description, remediation),
    as `ruff rule X` prints a rule: the table format as text, json/yaml as one document. A retired id prints the
    pages of the controls now reporting its problem (a document with `retired: true` and those pages). The text
    is wrapped at `width` (the terminal's, at most 100)."""
    import textwrap

    metas = control_page(cid, aliases)
    named_by: dict[str, list[str]] = {}
    for old, ids in aliases.items():
        for i in ids:
            named_by.setdefault(i, []).append(old)

    def doc(m: ControlMeta) -> dict[str, object]:
        return {**m.to_json(), "aliases": named_by.get(m.id, []), "description": m.description,
                "remediation": m.remediation}

    retired = cid in aliases
    if fmt in DOCUMENTS:
        body: object = ({"id": cid, "retired": True, "reported_by": [doc(m) for m in metas]} if retired
                        else doc(metas[0]))
        return document(body, fmt)
    if fmt == "markdown":
        out = [f"`{cid}` is a retired id, now reported by {', '.join(m.id for m in metas)}.", ""] if retired else []
        for m in metas:
            out += [f"## {m.id}: {m.title}", "", f"- severity: {m.severity.label}", f"- category: {m.category}",
                    f"- frameworks: {', '.join(m.frameworks) or '-'}",
                    f"- aliases: {', '.join(named_by.get(m.id, [])) or '-'}", "", m.description, "",
                    f"**Remediation:** {m.remediation}", ""]
        return "\n".join(out)
    wrap = textwrap.TextWrapper(width=width)
    out = [f"{cid}  retired id, now reported by {', '.join(m.id for m in metas)}", ""] if retired else []
    for n, m in enumerate(metas):
        if n:
            out.append("")
        out += [f"{m.id}  {m.title}", "",
                f"severity     {m.severity.label}", f"category     {m.category}",
                *textwrap.wrap(", ".join(m.frameworks) or "-", width, initial_indent="frameworks   ",
                               subsequent_indent=" " * 13),
                f"aliases      {', '.join(named_by.get(m.id, [])) or '-'}", ""]
        for para in m.description.split("\n\n"):
            out += [*wrap.wrap(para), ""]
        out += textwrap.wrap(m.remediation, width, initial_indent="Remediation: ", subsequent_indent="  ")
    return "\n".join(out) + "\n"
