"""`-o yaml`: the same document as `-o json`, in YAML (block style, keys in the JSON's order).

One function for every command: a report is rendered as its JSON contract and that document is dumped, so the two
never drift; commands with their own documents (pss, rbac, netpol, ...) pass them to `document`.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from ..findings import Report

# The C emitter when PyYAML has it (same representers as yaml.safe_dump, several times faster on big reports).
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
WIDTH = 1 << 30  # no folding of long scalars


def dump(doc: Any) -> str:
    """A JSON-shaped document as YAML: block style, insertion order kept, non-ASCII text as itself (as in JSON;
    the emitter still escapes non-printable characters), long strings on one line as kubectl prints them (so a
    message stays greppable)."""
    text: str = yaml.dump(doc, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, allow_unicode=True,
                          width=WIDTH)
    return text


def render(report: Report, **_: Any) -> str:
    from .json import render as render_json

    return dump(orjson.loads(render_json(report)))
