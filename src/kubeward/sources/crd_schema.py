"""CustomResourceDefinition schemas are read by nothing in kubeward: blank them before the YAML parser sees them.

A CRD-heavy install (a monitoring stack, an operator's install.yaml) is mostly `openAPIV3Schema` trees: 90 % of its
lines, and most of a scan's time goes to composing and building them. No control, engine or command reads a
schema (controls judge CRDs by apiVersion, names and scope; discovery reads names, versions and scope), so the
loader replaces each schema with `{}` and blanks its lines. Blank lines keep every other line where it was, so
file:line of every finding is unchanged.

Only what is certainly a schema is touched, at the text level, in block-style YAML:
- the document (lines between column-0 `---` markers, which end any block scalar, YAML 1.2 §9.1.4) has the
  top-level keys `apiVersion: apiextensions.k8s.io/...` and `kind: CustomResourceDefinition` at column 0;
- the line is the bare key `openAPIV3Schema:` (nothing after the colon but a comment), directly under a
  `schema:` key one level up (CustomResourceValidation in apiextensions.k8s.io/v1 and v1beta1 `validation:`);
- its value is the lines indented deeper than the key, up to the first line that is not;
- the text of block scalars (an annotation holding YAML) is never looked into, and a document with a quoted
  scalar spanning lines is left whole.
A file that holds aliases and anchors is left whole (an alias could point into a schema). The schema's own YAML
is then not checked: a syntax error inside it, which the apiserver would refuse, is not reported.
"""

from __future__ import annotations

import re
from itertools import pairwise

from ..lazyre import lazy

_KEY = "openAPIV3Schema:"
_SCHEMA_KEY = lazy(r"( *)openAPIV3Schema:[ \t]*(?:#.*)?")
_PARENT = lazy(r" *(?:schema|validation):[ \t]*(?:#.*)?")
# Patterns that begin with a newline: the regex engine then scans for that one character (fast) instead of trying
# `^` at every position. Texts are searched with a newline in front.
_CRD_KIND = lazy(r"\nkind:[ \t]*(['\"]?)CustomResourceDefinition\1[ \t]*(?:#[^\n]*)?(?=\r?\n|\Z)")
_CRD_GROUP = lazy(
    r"\napiVersion:[ \t]*(['\"]?)apiextensions\.k8s\.io/v1(?:beta1)?\1[ \t]*(?:#[^\n]*)?(?=\r?\n|\Z)")
# A line that starts a block scalar (`key: |`, `- >-`, `key: !!str |2`): over-matching only leaves more as it is.
_BLOCK_SCALAR = lazy(r"(?:^|[ \t])[|>][0-9+-]*[ \t]*(?:#.*)?$")
# A quote left open at the end of a line (a double- or single-quoted scalar spanning lines).
_QUOTE_OPEN = lazy(r"""(?:^|[ \t:\-\[{,])(?:"(?:[^"\\]|\\.)*|'(?:[^']|'')*)$""")
_DOC_START = lazy(r"\n(?=(?:---|\.\.\.)(?:[ \t\r\n]|\Z))")


def blank_crd_schemas(text: str) -> str:
    """`text` with every CRD schema replaced by `{}` and its lines left empty (same line count)."""
    if _KEY not in text or ("&" in text and "*" in text):
        return text
    starts = [0, *(m.start() + 1 for m in _DOC_START.finditer(text)), len(text)]
    parts = []
    for begin, end in pairwise(starts):
        doc = text[begin:end]
        if _KEY in doc and _CRD_KIND.search("\n" + doc) and _CRD_GROUP.search("\n" + doc):
            doc = _blank_document(doc)
        parts.append(doc)
    return "".join(parts)


def _blank_document(doc: str) -> str:
    """Walk the document's lines outside schemas and block scalars; jump over those (a regex finds where each
    ends), so the walk costs what the few lines around the schemas cost."""
    schema_key, parent_key = _SCHEMA_KEY.fullmatch, _PARENT.fullmatch  # bound once: called for every line
    block_scalar, quote_open = _BLOCK_SCALAR.search, _QUOTE_OPEN.search
    out: list[str] = []
    pos, n = 0, len(doc)
    parent: tuple[int, bool] = (-1, False)  # (indent, is a schema/validation key) of the last content line
    while pos < n:
        eol = doc.find("\n", pos)
        end = n if eol < 0 else eol + 1
        line = doc[pos:end].rstrip("\r\n")
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            out.append(doc[pos:end])
            pos = end
            continue
        indent = len(line) - len(stripped)
        key = schema_key(line)
        if key is not None and parent[1] and parent[0] < indent:
            stop = _value_end(doc, end, indent, sequence_at_indent=True)
            out.append(f"{key.group(1)}openAPIV3Schema: {{}}" + ("\n" if eol >= 0 else ""))
            out.append("\n" * doc.count("\n", end, stop))
            parent = (indent, False)
            pos = stop
            continue
        parent = (indent, bool(parent_key(line)))
        if block_scalar(line):  # its text is data: copied as it is
            end = _value_end(doc, end, indent, sequence_at_indent=False)
        elif quote_open(line):  # a quoted scalar may go on over lines: leave the document whole
            return doc
        out.append(doc[pos:end])
        pos = end
    return "".join(out)


def _value_end(doc: str, start: int, indent: int, *, sequence_at_indent: bool) -> int:
    """Where the value of a key at `indent` that starts at `start` (a line start) ends: the start of the first
    line holding content at `indent` or less (blank and comment lines belong to the value); with
    `sequence_at_indent`, `- ` items at the key's own indent belong to it too (`key:` then `- item`, as PyYAML
    dumps it)."""
    pattern = _ENDS_SEQ[indent] if sequence_at_indent else _ENDS[indent]
    m = pattern.search(doc, start - 1)  # `start` follows a newline: the pattern begins with it
    return m.start() + 1 if m is not None else len(doc)


class _EndPatterns(dict[int, "re.Pattern[str]"]):
    def __init__(self, sequence_at_indent: bool) -> None:
        super().__init__()
        self._seq = sequence_at_indent

    def __missing__(self, indent: int) -> re.Pattern[str]:
        # A line whose first non-space character (not a comment) is at column <= indent; at exactly `indent`, a
        # sequence item does not end the value when items at the key's indent belong to it.
        shallower = rf" {{0,{indent - 1}}}[^ \r\n#]" if indent else r"(?!)"
        at = rf" {{{indent}}}(?!- |-\r?(?:\n|\Z))[^ \r\n#]" if self._seq else rf" {{{indent}}}[^ \r\n#]"
        pattern = self[indent] = re.compile(rf"\n(?:{shallower}|{at})")
        return pattern


_ENDS = _EndPatterns(sequence_at_indent=False)
_ENDS_SEQ = _EndPatterns(sequence_at_indent=True)
