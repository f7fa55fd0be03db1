"""Turn composed YAML nodes into the JSON values Kubernetes reads from them, in one pass.

kubectl and the apiserver read YAML with sigs.k8s.io/yaml (v1.6.0 in Kubernetes v1.37): `YAMLToJSONStrict`
decodes with go.yaml.in/yaml/v2 (v2.4.4) into interface{} values, converts them for JSON
(yaml.go `convertToJSONableObject`) and marshals them with encoding/json. PyYAML's C parser and composer are the
same libyaml grammar, so only the resolver and the constructor are replaced here, by those Go rules:

- plain scalars: yaml/v2 resolve.go `resolve`: YAML 1.1 booleans (y, n, yes, no, on, off, true, false in three
  cases), null/~/empty, ints with 0x/0o/0b/leading-0 octal prefixes and `_`, beyond int64 up to uint64, floats
  (`1e3`, `.5`), no sexagesimal (`1:20` is a string); a timestamp stays its text (decode.go `scalar`: timestamps
  decode into interface{} as strings); anything else, `=` and `<<` as values included, is a string;
- explicit tags: `resolvableTag`/`resolve` (`!!int abc` is an error, `!!float 1` is a float), `!!binary` is
  base64-decoded, any other tag leaves the text; tags on mappings and sequences are ignored;
- mappings: decode.go `mapping`/`merge`/`setMapIndex`: merge keys (`<<`) insert the merged mapping's keys in
  place, a merge sequence from its last item; the strict decoder refuses any key set twice in one mapping,
  through merges too; a collection as a key is refused;
- keys become JSON strings as `convertToJSONableObject` does (ints in decimal, bools, floats by
  strconv.FormatFloat(f, 'g', -1, 32)); null and uint64 keys are refused, and so are two keys that become the
  same JSON key (the Go map then keeps one of them at random);
- values go through json.Marshal: NaN and ±Inf are refused; a float is written as its shortest decimal, so an
  integral float below 1e21 is the JSON integer Kubernetes then reads (`1e3` → 1000).

Aliases share the object built for their anchor; the caller has measured the graph first (no cycle, bounded
expansion and depth), so the recursion here stays shallow.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import math
import re
import struct
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..lazyre import lazy

_PREFIX = "tag:yaml.org,2002:"
STR, MAP, SEQ = _PREFIX + "str", _PREFIX + "map", _PREFIX + "seq"
_INT, _FLOAT, _BOOL, _NULL = _PREFIX + "int", _PREFIX + "float", _PREFIX + "bool", _PREFIX + "null"
_TIMESTAMP, _BINARY, _MERGE = _PREFIX + "timestamp", _PREFIX + "binary", _PREFIX + "merge"
# The tag this module's resolver gives a plain scalar that is not a string: its value is looked up by text.
PLAIN = "tag:kubeward.dev,2026:resolved"
_RESOLVABLE = frozenset({"", STR, _BOOL, _INT, _FLOAT, _NULL, _TIMESTAMP})  # resolve.go resolvableTag
_CACHE_MAX = 1 << 16
# Manifests repeat short texts (names, images, booleans); a long one is resolved each time, so the process-wide
# cache stays small whatever the inputs hold.
_CACHED_TEXT_MAX = 256

# Go-typed scalar kinds: s string, i int (int64), u uint64 (beyond int64), f float64, b bool, n null.
GoScalar = tuple[str, Any]


class YAMLProblem(Exception):
    """A document Kubernetes would refuse: the message says where and why, never the value."""


# resolve.go: the first character picks how a plain scalar may resolve.
_HINT: dict[str, str] = {"+": "S", "-": "S", ".": "."}
_HINT.update(dict.fromkeys("0123456789", "D"))
_HINT.update(dict.fromkeys("yYnNtTfFoO~", "M"))
_WORDS: dict[str, GoScalar] = {}
for _value, _kind, _texts in (
    (True, "b", "y Y yes Yes YES true True TRUE on On ON"),
    (False, "b", "n N no No NO false False FALSE off Off OFF"),
    (None, "n", "~ null Null NULL"),
    (math.nan, "f", ".nan .NaN .NAN"),
    (math.inf, "f", ".inf .Inf .INF +.inf +.Inf +.INF"),
    (-math.inf, "f", "-.inf -.Inf -.INF"),
):
    _WORDS.update(dict.fromkeys(_texts.split(), (_kind, _value)))
_WORDS[""] = ("n", None)
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")  # resolve.go yamlStyleFloat
_DOT_FLOAT = lazy(r"\.[0-9]+([eE][-+]?[0-9]+)?\Z")  # what strconv.ParseFloat accepts after a leading '.'
_DIGITS = {16: frozenset("0123456789abcdefABCDEF"), 10: frozenset("0123456789"), 8: frozenset("01234567"),
           2: frozenset("01")}
_INT64 = 1 << 63
_UINT64 = 1 << 64
_TIMESTAMP_SHAPE = lazy(
    # resolve.go allowedTimestampFormats as time.Parse reads them: 2006-1-2, then T/t or one space, 15:4:5 with
    # optional fraction, then Z or ±07:00 (required after T/t, not allowed after the space).
    r"(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<H>[0-9]{1,2}):(?P<M>[0-9]{1,2}):(?P<S>[0-9]{1,2})(?:[.,][0-9]+)?"
    r"(?P<tz>Z|[-+][0-9]{2}:[0-9]{2})?)?\Z"
)


def _go_int(text: str) -> int | None:
    """strconv.ParseInt/ParseUint(text, 0, 64) syntax: optional sign, base prefix or leading-0 octal."""
    neg = text[:1] == "-"
    body = text[1:] if text[:1] in "+-" else text
    base = 10
    if len(body) >= 2 and body[0] == "0" and body[1] in "xXbBoO":
        base = {"x": 16, "b": 2, "o": 8}[body[1].lower()]
        body = body[2:]
    elif len(body) >= 2 and body[0] == "0":
        base, body = 8, body[1:]
    if not body or not _DIGITS[base].issuperset(body):
        return None
    digits = body.lstrip("0") or "0"
    if len(digits) > 64:  # beyond uint64 in any base: out of range, as a syntax error it takes the float path
        return None  # (and int() of thousands of digits is refused by CPython, or slow)
    n = int(digits, base)
    return -n if neg else n


def _underscores_ok(text: str) -> bool:
    """strconv underscoreOK (atoi.go) for a decimal float: each `_` between two digits."""
    saw = "^"
    for c in text.lstrip("+-"):
        if "0" <= c <= "9":
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def go_resolve(tag: str, text: str) -> GoScalar:
    """go-yaml v2 `resolve(tag, in)` for a scalar: its Go-typed value; YAMLProblem when it does not fit its tag."""
    if tag not in _RESOLVABLE:
        if tag == _BINARY:
            return "s", _binary(text)
        return "s", text  # any other tag (custom, !!merge, !!set…) keeps the text
    got = _resolve_text(text) if tag != STR else ("s", text)
    if tag == _TIMESTAMP and _is_timestamp(text):
        got = ("t", text)
    kind = got[0]
    wanted = {"": kind, STR: "s", _BOOL: "b", _INT: "i", _FLOAT: "f", _NULL: "n", _TIMESTAMP: "t"}[tag]
    if kind == wanted or (wanted == "i" and kind == "u"):
        return ("s", text) if kind == "t" else got
    if wanted == "f" and kind == "i":
        return "f", float(got[1])
    raise YAMLProblem(f"the value does not fit its tag !!{tag.removeprefix(_PREFIX)}")


def _resolve_text(text: str) -> GoScalar:
    hint = _HINT.get(text[:1]) if text else "N"
    if hint is None:
        return "s", text
    word = _WORDS.get(text)
    if word is not None:
        return word
    if hint == ".":
        if _DOT_FLOAT.match(text.replace("_", "")) and _underscores_ok(text):
            f = float(text.replace("_", ""))
            if not math.isinf(f):  # strconv.ParseFloat: out of range is an error, the text stays a string
                return "f", f
    elif hint in "DS":
        plain = text.replace("_", "")
        n = _go_int(plain)
        if n is not None and -_INT64 <= n < _INT64:
            return "i", n
        if n is not None and 0 <= n < _UINT64 and plain[:1] not in "+-":
            return "u", n
        if _GO_FLOAT.match(plain):
            f = float(plain)
            if not math.isinf(f):
                return "f", f
    return "s", text


def _is_timestamp(text: str) -> bool:
    m = _TIMESTAMP_SHAPE.match(text)
    if m is None or (m["sep"] is not None and (m["tz"] is None) != (m["sep"] == " ")):
        return False
    year, month, day = int(m["y"]), int(m["m"]), int(m["d"])
    if not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]:
        return False
    return m["H"] is None or (int(m["H"]) < 24 and int(m["M"]) < 60 and int(m["S"]) < 60)


def _binary(text: str) -> str:
    """decode.go: !!binary is base64.StdEncoding (newlines ignored), kept as the bytes' Go string."""
    try:
        data = base64.b64decode(text.replace("\n", "").replace("\r", ""), validate=True)
    except (binascii.Error, ValueError):
        raise YAMLProblem("!!binary value contains invalid base64 data") from None
    return data.decode("utf-8", "kubeward-go-json")


def _go_json_replace(exc: UnicodeError) -> tuple[str, int]:
    """encoding/json writes one U+FFFD for each byte that is not valid UTF-8."""
    assert isinstance(exc, UnicodeDecodeError)
    return "\ufffd" * (exc.end - exc.start), exc.end


codecs.register_error("kubeward-go-json", _go_json_replace)


def json_value(kind: str, value: Any) -> Any:
    """The value as json.Marshal writes it and Kubernetes reads it back."""
    if kind == "f":
        if math.isnan(value) or math.isinf(value):
            raise YAMLProblem(f"{'.nan' if math.isnan(value) else '.inf'} is not a JSON number")
        if value.is_integer() and abs(value) < 1e21:
            # encoding/json writes the shortest digits that read back (as repr does) in 'f' form below 1e21:
            # 2**64 as a float is written 18446744073709552000, the integer Kubernetes then reads.
            from decimal import Decimal  # only here: integral floats are rare, and decimal costs start-up

            return int(Decimal(repr(value)))
    return value


def json_key(kind: str, value: Any) -> str:
    """convertToJSONableObject: a Go map key as a JSON object key."""
    if kind == "s":
        return value
    if kind == "i":
        return str(value)
    if kind == "b":
        return "true" if value else "false"
    if kind == "f":
        return format_float32_g(value)
    raise YAMLProblem(f"a {'null' if kind == 'n' else 'uint64'} mapping key has no JSON form")


def format_float32_g(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32) with go-yaml's .inf/.nan spellings."""
    if math.isnan(value):
        return ".nan"
    try:
        f32 = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        f32 = math.copysign(math.inf, value)
    if math.isinf(f32):
        return ".inf" if f32 > 0 else "-.inf"
    sign = "-" if math.copysign(1.0, f32) < 0 else ""
    if f32 == 0:
        return sign + "0"
    for prec in range(1, 10):  # shortest digits that read back as the same float32
        text = f"{abs(f32):.{prec - 1}e}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == abs(f32):
            break
    mantissa, exp_text = text.split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    exp = int(exp_text)
    if exp < -4 or exp >= 6:  # ftoa.go %g: shortest precision decides with eprec 6
        frac = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{frac}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    point = exp + 1
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


_plain_cache: dict[str, GoScalar] = {}


def _plain(text: str) -> GoScalar:
    got = _plain_cache.get(text)
    if got is None:
        got = _resolve_text(text)
        if len(_plain_cache) < _CACHE_MAX and len(text) <= _CACHED_TEXT_MAX:
            _plain_cache[text] = got
    return got


class GoResolver:
    """Resolver half of a PyYAML loader: plain scalars that are strings get !!str, `<<` gets !!merge, every other
    plain scalar gets PLAIN (its value is looked up by text); quoted and block scalars are strings."""

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if not implicit[0]:
                return STR
            if value == "<<":
                return _MERGE
            return STR if _plain(value)[0] == "s" else PLAIN
        return SEQ if kind is SequenceNode else MAP


def _scalar(node: ScalarNode) -> GoScalar:
    tag = node.tag
    if tag == STR:
        return "s", node.value
    if tag == PLAIN:
        return _plain(node.value)
    if tag == _MERGE and node.value == "<<":
        return "s", "<<"  # `<<` outside a key position is the string (decode.go: resolved "<<" into interface{})
    try:
        return go_resolve(tag, node.value)
    except YAMLProblem as exc:
        raise YAMLProblem(f"line {node.start_mark.line + 1}: {exc}") from None


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def build_document(node: Node, key_lines: dict[int, dict[str, int]], shared: bool) -> Any:
    """The JSON value of a document's root node; fills `key_lines` (id(mapping) → {JSON key: line}).

    `shared` says the document has aliases (nodes reached twice): each collection is then built once and
    shared. Entries are collected aside and merged at the end, so a refused document leaves nothing behind.
    """
    lines: dict[int, dict[str, int]] = {}
    obj = _Builder(lines, {} if shared else None).build(node)
    key_lines.update(lines)
    return obj


class _Builder:
    __slots__ = ("key_lines", "memo")

    def __init__(self, key_lines: dict[int, dict[str, int]], memo: dict[int, Any] | None) -> None:
        self.key_lines = key_lines
        self.memo = memo

    def build(self, node: Node) -> Any:
        cls = node.__class__
        if cls is ScalarNode:
            tag = node.tag
            if tag == STR:
                return node.value
            try:
                return json_value(*_scalar(node))  # type: ignore[arg-type]
            except YAMLProblem as exc:
                msg = str(exc)
                raise YAMLProblem(msg if msg.startswith("line ") else f"line {_line(node)}: {msg}") from None
        memo = self.memo
        if memo is not None:
            done = memo.get(id(node))
            if done is not None:
                return done
        if cls is SequenceNode:
            build = self.build
            out: Any = [item.value if item.__class__ is ScalarNode and item.tag == STR else build(item)
                        for item in node.value]
        else:
            out = self._mapping(node)  # type: ignore[arg-type]
        if memo is not None:
            memo[id(node)] = out
        return out

    def _mapping(self, node: MappingNode) -> dict[str, Any]:
        data: dict[str, Any] = {}
        lines: dict[str, int] = {}
        typed: dict[str, GoScalar] | None = None  # JSON key -> Go key, for keys that were not strings
        build = self.build
        for key_node, value_node in node.value:
            if key_node.__class__ is ScalarNode:
                tag = key_node.tag
                if tag == STR:
                    go_key: GoScalar | None = None
                    key = key_node.value
                elif tag == _MERGE and key_node.value == "<<":
                    self._merge(value_node, data, lines)
                    continue
                else:
                    go_key = _scalar(key_node)
                    try:
                        key = json_key(*go_key)
                    except YAMLProblem as exc:
                        raise YAMLProblem(f"line {_line(key_node)}: {exc}") from None
            else:
                raise YAMLProblem(f"line {_line(key_node)}: a mapping or sequence as a mapping key")
            if key in data:
                before = typed.get(key) if typed is not None else None
                _repeated(key, before, go_key, lines[key], _line(key_node))
            data[key] = (value_node.value if value_node.__class__ is ScalarNode and value_node.tag == STR
                         else build(value_node))
            lines[key] = _line(key_node)
            if go_key is not None:
                if typed is None:
                    typed = {}
                typed[key] = go_key
        self.key_lines[id(data)] = lines
        return data

    def _merge(self, value_node: Node, data: dict[str, Any], lines: dict[str, int]) -> None:
        """decode.go merge: a mapping (or alias to one), or a sequence of them applied from the last."""
        if value_node.__class__ is MappingNode:
            sources = [value_node]
        elif value_node.__class__ is SequenceNode and not self._is_alias(value_node):
            sources = list(reversed(value_node.value))
            if any(s.__class__ is not MappingNode for s in sources):
                raise YAMLProblem(f"line {_line(value_node)}: map merge requires map or sequence of maps as the value")
        else:
            raise YAMLProblem(f"line {_line(value_node)}: map merge requires map or sequence of maps as the value")
        for source in sources:
            merged = self.build(source)
            # An inline mapping merged in is no object of the result: its lines go (its id may be reused).
            merged_lines = (self.key_lines.pop(id(merged), {}) if self.memo is None
                            else self.key_lines.get(id(merged), {}))
            for key, value in merged.items():
                if key in data:
                    raise YAMLProblem(
                        f"line {merged_lines.get(key, _line(source))}: key {key!r} merged in with `<<` is "
                        f"already set at line {lines[key]} (the strict decoder refuses it)"
                    )
                data[key] = value
                lines[key] = merged_lines.get(key, _line(source))

    def _is_alias(self, node: Node) -> bool:
        """A collection already built is reached again: the document names it by an alias here."""
        return self.memo is not None and id(node) in self.memo


def _repeated(key: str, before: GoScalar | None, now: GoScalar | None, first: int, line: int) -> None:
    if (before or ("s", key)) == (now or ("s", key)) and not (before and before[0] == "f" and math.isnan(before[1])):
        raise YAMLProblem(f"line {line}: duplicate key {key!r} (first at line {first}); the strict decoder refuses it")
    raise YAMLProblem(f"line {line}: this key and the one at line {first} both become the JSON key {key!r}")
