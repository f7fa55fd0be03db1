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


def render_report(report: Report, fmt: str, *, facts: dict[str, Any] | None = None, preface: str = "",
                  **opts: Any) -> str:
    """A command's Report in any of FORMATS, with what the command observed beside its findings: `facts` (the
    etcd probe's results, a PKI folder's certificates) become further keys of the JSON/YAML document, after the
    contract's; `preface` (their table) is printed before the findings table. SARIF, JUnit and HTML carry the
    findings only, as for every command."""
    if fmt in DOCUMENTS and facts:
        from .json import document as report_document

        return document({**report_document(report), **facts}, fmt)
    if fmt == "table" and preface:
        return preface + "\n" + render(report, fmt, **opts)
    if fmt != "table":
        opts.pop("color", None)
    return render(report, fmt, **opts)


class UnsupportedFormat(ValueError):
    """A format that makes no sense for a command's answer (an rbac who-can answer in JUnit): a usage error."""


def refuse(fmt: str, supported: tuple[str, ...], what: str) -> UnsupportedFormat:
    """The one-line usage error for `-o FMT` where the answer has no such form."""
    return UnsupportedFormat(f"-o {fmt}: {what} has no {fmt} form (it is not a report of findings); use one of: "
                             f"{', '.join(supported)}")


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


def json_line(record: Any) -> str:
    """One record of a JSON-lines stream (alerts of `netpol check-flows`, agent logs): compact, one line."""
    import orjson

    return orjson.dumps(record).decode() + "\n"


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
