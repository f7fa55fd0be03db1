"""The stable JSON finding contract (schemaVersion "1", see docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from .. import __version__
from ..findings import ControlMeta, Finding, Location, Report
from ..gcpause import gc_paused

SCHEMA_VERSION = "1"
_CHUNK = 2048  # findings rendered per piece: the pieces are written one after the other, never joined
_FINDINGS_SLOT = "\x00findings"
_SUPPRESSED_SLOT = "\x00suppressed"


def document(report: Report) -> dict[str, Any]:
    doc = _outer(report)
    doc["findings"] = [f.to_json() for f in report.findings]
    doc["suppressed"] = [f.to_json() for f in report.suppressed]
    return doc


def _outer(report: Report, counts: tuple[int, dict[str, int], int] | None = None) -> dict[str, Any]:
    """The document in contract key order, with placeholders where the two finding lists go.

    `counts` (findings, bySeverity, suppressed) stands in for the report's own lists when they are not held as
    Finding objects (the two-process scan hands over rendered findings).
    """
    n_findings, by_severity, n_suppressed = counts or (len(report.findings), report.by_severity(), len(report.suppressed))
    summary: dict[str, Any] = {
        "objects": report.objects,
        "findings": n_findings,
        "bySeverity": by_severity,
        "suppressed": n_suppressed,
        "exceptionNotes": len(report.exception_notes),
        "skipped": len(report.skipped),  # input documents that are no Kubernetes object (Helm values, CI files…)
        "controls": len(report.controls),
        "scores": report.framework_scores(),
    }
    if report.coverage is not None:
        summary["coverage"] = {"typesRead": report.coverage[0], "typesWanted": report.coverage[1]}
    if report.states is not None:
        summary["states"] = dict(report.states)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "kubeward", "version": __version__},
        "summary": summary,
        "findings": _FINDINGS_SLOT,
        "suppressed": _SUPPRESSED_SLOT,
        "errors": [e.to_json() for e in report.errors],
        "notAssessed": [n.to_json() for n in report.not_assessed],
        "expiredExceptions": list(report.expired_exceptions),
        "exceptionNotes": list(report.exception_notes),
        "skipped": [e.to_json() for e in report.skipped],
    }


def render(report: Report, **_: Any) -> str:
    """The same text as dumping `document(report)` with OPT_INDENT_2, built in bounded memory.

    A scan can carry 100k+ findings (a 100 MB document): the finding lists are dumped a chunk at a time and
    spliced into the outer document, so their dicts never exist all at once, and the text grows in place (CPython
    resizes a str with a single reference) instead of joining a second full copy.
    """
    with gc_paused():
        text = ""
        for piece in pieces(report):
            text += piece.decode()
        return text


def pieces(report: Report) -> Iterator[bytes]:
    """The document as consecutive byte pieces, rendered as they are asked for: a writer that takes them one by
    one never holds the whole document (the CLI writes `-o json` this way)."""
    head, middle, tail = _frame(_outer(report))
    yield head
    yield from _list_pieces(report.findings)
    yield middle
    yield from _list_pieces(report.suppressed)
    yield tail
    yield b"\n"


def _frame(outer: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    dumped = orjson.dumps(outer, option=orjson.OPT_INDENT_2)
    # Split before splicing: the slots are the first occurrences (the errors, which echo user text, come after).
    head, rest = dumped.split(orjson.dumps(_FINDINGS_SLOT), 1)
    middle, tail = rest.split(orjson.dumps(_SUPPRESSED_SLOT), 1)
    return head, middle, tail


class Parts:
    """The rendered bytes of the parts findings share (a control's, an object's, a location's), built once per
    part and reused by every finding that has it. The cache belongs to this format, not to the domain objects;
    it is keyed by identity (the runner hands out one ObjectRef and one Location per object and line, and hashing
    a dataclass per finding would cost more than rendering it) and holds every part's owner, so an id can never
    be reused while the cache lives. One per document: `pieces` makes its own; a caller that renders one
    document in several `item_bytes` calls passes one along."""

    __slots__ = ("controls", "locations", "objects", "owners")

    def __init__(self) -> None:
        self.controls: dict[int, tuple[bytes, bytes]] = {}
        self.objects: dict[int, bytes] = {}
        self.locations: dict[int, bytes] = {}
        self.owners: list[object] = []

    def control(self, control: ControlMeta) -> tuple[bytes, bytes]:
        parts = self.controls[id(control)] = (
            b'    {\n      "control": ' + _block(control.to_json(), 3) + _KEY + b'"object": ',
            _KEY + b'"remediation": ' + orjson.dumps(control.remediation),
        )
        self.owners.append(control)
        return parts



def _location_part(loc: Location) -> bytes:
    entry = loc.json_entry()
    return b"" if entry is None else orjson.dumps(entry[0]) + b": " + _block(entry[1], 3) + _KEY


def item_bytes(findings: list[Finding], parts: Parts | None = None) -> bytes:
    """Findings exactly as they sit inside a finding list of the document (items at 4 spaces, ",\n" between),
    without the brackets; b"" for none. Blocks of these joined with ",\n" are a list's inside."""
    return b",\n".join(_items(findings, Parts() if parts is None else parts))


# A finding's keys sit 6 spaces deep in the document (top level → "findings" list → item), its braces 4.
_KEY = b",\n      "
_ITEM_END = b"\n    }"


def _block(value: Any, depth: int) -> bytes:
    """`value` as OPT_INDENT_2 prints it `depth` levels down. orjson's pretty printer indents every nested line by
    two spaces per level and never breaks a line inside a string (newlines are escaped), so a standalone dump
    with each line shifted is the same bytes as the value inside the larger document."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).replace(b"\n", b"\n" + b"  " * depth)


def _items(findings: list[Finding], parts: Parts) -> list[bytes]:
    """Each finding's bytes in the document, spliced from parts rendered once (`Parts`): the control's (metadata
    before, remediation after), the object's and the location's are shared by every finding that has them, and
    the paths and messages repeat across a fleet of similar objects. `Finding.to_json` dumped with OPT_INDENT_2
    and cut out of the list gives the same bytes (tests/unit/test_scan_speedups.py checks it), at about three
    times the cost on a 100k-finding scan."""
    controls, objects, locations, keep = parts.controls, parts.objects, parts.locations, parts.owners.append
    paths: dict[str, bytes] = {}
    messages: dict[str, bytes] = {}
    out: list[bytes] = []
    append = out.append
    last_control: ControlMeta | None = None
    around = (b"", b"")
    for f in findings:
        control, obj, loc = f.control, f.object, f.location
        if control is not last_control:  # findings come grouped by control
            around = controls.get(id(control)) or parts.control(control)
            last_control = control
        obj_part = objects.get(key := id(obj))
        if obj_part is None:
            obj_part = objects[key] = _block(obj.to_json(), 3) + _KEY
            keep(obj)
        loc_part = locations.get(key := id(loc))
        if loc_part is None:
            loc_part = locations[key] = _location_part(loc)
            keep(loc)
        path = paths.get(f.path)
        if path is None:
            path = paths[f.path] = b'"path": ' + orjson.dumps(f.path) + _KEY + b'"message": '
        message = messages.get(f.message)
        if message is None:
            message = messages[f.message] = orjson.dumps(f.message)
        append(b"".join((
            around[0],
            obj_part,
            loc_part,
            path,
            message,
            around[1],
            b"" if f.risk is None else _KEY + b'"risk": ' + _block(f.risk.to_json(), 3),
            b"" if f.suppressed_by is None else _KEY + b'"suppressed": ' + _block({"reason": f.suppressed_by}, 3),
            _ITEM_END,
        )))
    return out


def render_spliced(report: Report, counts: tuple[int, dict[str, int], int], findings: list[bytes | memoryview],
                   suppressed: list[bytes]) -> list[bytes | memoryview]:
    """The document of `report` (objects, controls, errors, ...) with finding lists given as rendered item blocks
    (`item_bytes`, in document order), as pieces to write one after the other (never joined into one copy): the
    same bytes as `pieces` of the report holding those findings."""
    head, middle, tail = _frame(_outer(report, counts))
    return [head, *_list_of_blocks(findings), middle, *_list_of_blocks(suppressed), tail, b"\n"]


def _list_of_blocks(blocks: Sequence[bytes | memoryview]) -> list[bytes | memoryview]:
    pieces: list[bytes | memoryview] = []
    for block in blocks:
        if block:
            pieces += (b",\n" if pieces else b"[\n", block)
    return [*pieces, b"\n  ]"] if pieces else [b"[]"]


def _list_pieces(findings: list[Finding]) -> Iterator[bytes]:
    """A finding list as the value of a top-level key: items at 4 spaces, closing bracket at 2."""
    if not findings:
        yield b"[]"
        return
    yield b"[\n"
    parts = Parts()
    for start in range(0, len(findings), _CHUNK):
        if start:
            yield b",\n"
        yield item_bytes(findings[start:start + _CHUNK], parts)
    yield b"\n  ]"
