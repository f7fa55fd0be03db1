"""Formats render a Report: each module exposes `render(report, **opts) -> str`."""

from __future__ import annotations

import importlib
from typing import Any

from ..findings import Report

FORMATS = ("table", "json", "yaml", "sarif", "junit", "html")
DOCUMENTS = ("json", "yaml")  # the formats of a command's own document (see `document`)
FIRST = 3  # findings per control in the table's default view of a scan (`--details` for all)


def render(report: Report, fmt: str, **opts: Any) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r} (one of: {', '.join(FORMATS)})")
    module = importlib.import_module(f"{__name__}.{fmt}")
    return module.render(report, **opts)


def document(doc: Any, fmt: str) -> str:
    """A command's own JSON-shaped document (`pss check`, `rbac risks`, ...) as `-o json` or `-o yaml` text: the
    one place both are written, so every command that has `-o json` has the same document in YAML."""
    if fmt == "yaml":
        from .yaml import dump

        return dump(doc)
    if fmt != "json":
        raise ValueError(f"{fmt!r} is not a document format (one of: {', '.join(DOCUMENTS)})")
    import orjson

    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
