"""Formats render a Report: each module exposes `render(report, **opts) -> str`."""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

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


@contextmanager
def streamed(sink: IO[str], fmt: str) -> Iterator[IO[str]]:
    """Where a command writes a JSON document in pieces (`netpol reach`: up to 10^8 pairs): `sink` itself, or for
    `-o yaml` a buffer whose JSON becomes the same document in YAML at the end (held whole, as YAML needs)."""
    if fmt != "yaml":
        yield sink
        return
    buf = io.StringIO()
    yield buf
    import orjson

    sink.write(document(orjson.loads(buf.getvalue()), "yaml"))
