"""PSA's message helpers, so reasons and details read exactly as the apiserver prints them.

Upstream: policy/helpers.go (joinQuote, pluralize) and policy/checks.go (AggregateCheckResult.ForbiddenDetail:
`reason (detail)` joined by ", ").
"""

from __future__ import annotations

from collections.abc import Iterable


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def join_quote(items: Iterable[str]) -> str:
    """`"a", "b"` — items quoted with plain double quotes, no escaping (as joinQuote)."""
    items = list(items)
    return '"' + '", "'.join(items) + '"' if items else ""


def setters(count_label: tuple[str, str], names: list[str]) -> str:
    """`container "a"` / `containers "a", "b"`."""
    return f"{pluralize(count_label[0], count_label[1], len(names))} {join_quote(names)}"


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               '"': '\\"', "\\": "\\\\"}


def go_quote(text: str) -> str:
    """Go's %q (strconv.Quote): used by PSA for annotation values."""
    out = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def render(reason: str, detail: str) -> str:
    """One violation as PSA prints it: `reason (detail)`, or the bare reason when there is no detail."""
    return f"{reason} ({detail})" if detail else reason
