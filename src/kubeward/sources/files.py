"""Read Kubernetes objects from files, folders and stdin, keeping each object's origin (file, line).

Hostile input is bounded before it can hurt: files over a size limit are refused unread, binary and non-UTF-8
files are named as such, alias expansion is measured on the composed graph (billion laughs), and deep nesting
is caught. Every problem becomes one `InputError`; the other files are still read.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
import yaml

from ..findings import InputError
from ..resource import Resource
from .yaml_build import BAD_SCALAR, CachedResolver, Unsupported, build_document

EXTENSIONS = (".yaml", ".yml", ".json")
DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024
# A document whose aliases add more nodes than this when expanded is treated as an alias bomb. Real manifests with
# anchors add a few; the classic "billion laughs" adds 10^9. Size alone is bounded by --max-file-size.
MAX_ALIAS_EXPANSION = 1_000_000
# Deeper documents are refused: real objects (even CRD schemas) stay far below, and engines may walk recursively.
MAX_DEPTH = 512
_DEEP_INDENT = re.compile(rf"\n {{{MAX_DEPTH},}}\S")
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv"})

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class LoadResult:
    resources: list[Resource] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    files_read: int = 0  # files that yielded at least one object


class _Doc(NamedTuple):
    index: int
    obj: Any
    line: int
    key_lines: dict[int, dict[str, int]]
    item_lines: dict[int, int] | None = None  # id(item) -> line, for JSON Lists (no per-key lines there)


class _InputProblem(Exception):
    """A user-input problem: becomes a one-line error, never a traceback."""


def display_path(path: str) -> str:
    """Paths relative to the working directory when below it (as the JSON contract wants), else absolute."""
    if not os.path.isabs(path):
        return os.path.normpath(path)
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def iter_files(paths: Iterable[str], *, take_dir: Callable[[str], bool] | None = None) -> Iterator[tuple[str, str | None]]:
    """Expand positional arguments: files as given, folders recursively (sorted), '-' as stdin. A folder that
    `take_dir` claims (a Helm chart, a kustomization: sources/render.py) is not walked."""
    for arg in paths:
        if arg == "-":
            yield "-", None
        elif os.path.isdir(arg):
            for root, dirs, files in os.walk(arg):
                if take_dir is not None and take_dir(root):
                    dirs[:] = []
                    continue
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
                for name in sorted(files):
                    if name.endswith(EXTENSIONS):
                        full = os.path.join(root, name)
                        yield display_path(full), full
        else:
            yield display_path(arg), arg


def load_paths(
    paths: Iterable[str],
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    stdin: Any = None,
    files: list[tuple[str, str | None]] | None = None,
    on_file: Callable[[], None] | None = None,
) -> LoadResult:
    """Load every object; `files` may be a pre-expanded iter_files() list and `on_file` ticks a progress bar."""
    result = LoadResult()
    for shown, path in files if files is not None else iter_files(paths):
        if on_file is not None:
            on_file()
        try:
            if path is None:
                stream = stdin if stdin is not None else sys.stdin.buffer
                data = stream.read(max_file_bytes + 1)
                shown = "<stdin>"
            else:
                data = _read_bounded(path, max_file_bytes)
            if len(data) > max_file_bytes:
                raise _InputProblem(_too_big(len(data), max_file_bytes))
            before = len(result.resources)
            parse_bytes(data, shown, result)
            if len(result.resources) > before:
                result.files_read += 1
        except _InputProblem as exc:
            result.errors.append(InputError(shown, str(exc)))
    return result


def _read_bounded(path: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise _InputProblem(_too_big(size, limit))
            return fh.read(min(limit, size + 65536) + 1)  # exact-size buffer; read(limit) would allocate limit
    except FileNotFoundError:
        raise _InputProblem("no such file or directory") from None
    except IsADirectoryError:
        raise _InputProblem("is a directory") from None
    except PermissionError:
        raise _InputProblem("permission denied") from None
    except OSError as exc:
        raise _InputProblem(exc.strerror or str(exc)) from None


def _too_big(size: int, limit: int) -> str:
    return f"file is {size / 2**20:.1f} MiB, over the {limit / 2**20:.0f} MiB limit (raise it with --max-file-size)"


def _text(data: bytes) -> str:
    """A file's bytes as text: binary and non-UTF-8 input named as such, a byte-order mark dropped."""
    if b"\x00" in data[:8192]:
        raise _InputProblem("binary file, not YAML or JSON")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _InputProblem(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    return text[1:] if text.startswith("\ufeff") else text


def parse_bytes(data: bytes, shown: str, result: LoadResult) -> None:
    """Decode one file's bytes into objects; per-document problems are recorded and the rest still load."""
    text = _text(data)
    if shown.endswith(".json") or text.lstrip()[:1] in ("{", "["):
        docs = _json_doc(text, shown)
        if docs is not None:
            _add_documents(docs, shown, result)
            return
    _add_documents(_yaml_docs(text, shown, result), shown, result)


_JSON = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def _json_doc(text: str, shown: str) -> list[_Doc] | None:
    """Fast path for JSON: orjson for one object; a walk over the top level for `*List` files so each item keeps
    its own line (what `kubectl get -o json` prints). None means "not JSON after all": the YAML path decides."""
    if '"items"' in text:
        listed = _json_list(text)
        if listed is not None:
            return listed
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc).lower():  # newer orjson versions stop at 1024 levels themselves
            raise _InputProblem(f"document 1: nested more than {MAX_DEPTH} levels deep") from None
        return None  # maybe YAML that happens to start with '{' or '['; the YAML path reports errors
    if text.count("[") + text.count("{") > MAX_DEPTH and _object_depth(obj) > MAX_DEPTH:
        raise _InputProblem(f"document 1: nested more than {MAX_DEPTH} levels deep")
    return [_Doc(0, obj, _first_key_line(text, 0) if isinstance(obj, dict) else 1, {})]


def _json_list(text: str) -> list[_Doc] | None:
    """Decode a top-level JSON object key by key, and its `items` array item by item, recording item offsets."""
    decode, ws = _JSON.raw_decode, _WS.match
    try:
        i = ws(text, 0).end()
        if text[i] != "{":
            return None
        top: dict[str, Any] = {}
        spans: list[tuple[int, int]] = []
        i = ws(text, i + 1).end()
        while text[i] != "}":
            key, i = decode(text, i)
            i = ws(text, i).end()
            if text[i] != ":":
                return None
            i = ws(text, i + 1).end()
            if key == "items" and text[i] == "[":
                items: list[Any] = []
                i = ws(text, i + 1).end()
                while text[i] != "]":
                    start = i
                    item, i = decode(text, i)
                    items.append(item)
                    spans.append((start, i))
                    i = ws(text, i).end()
                    if text[i] == ",":
                        i = ws(text, i + 1).end()
                    elif text[i] != "]":
                        return None
                top[key] = items
                i += 1
            else:
                top[key], i = decode(text, i)
            i = ws(text, i).end()
            if text[i] == ",":
                i = ws(text, i + 1).end()
            elif text[i] != "}":
                return None
        if text[ws(text, i + 1).end():]:
            return None
    except (ValueError, IndexError):
        return None
    except RecursionError:
        raise _InputProblem(f"document 1: nested more than {MAX_DEPTH} levels deep") from None
    if not (isinstance(top.get("kind"), str) and top["kind"].endswith("List") and "items" in top and spans):
        return [_Doc(0, top, _first_key_line(text, 0), {})] if isinstance(top.get("kind"), str) else None
    for (start, end), item in zip(spans, top["items"], strict=True):
        if text.count("[", start, end) + text.count("{", start, end) > MAX_DEPTH and _object_depth(item) > MAX_DEPTH:
            raise _InputProblem(f"document 1: an item is nested more than {MAX_DEPTH} levels deep")
    # Items become documents of their own with the line of their first key; `_add_documents` unwraps the List.
    lines: dict[int, int] = {}
    line, pos = 1, 0
    for (start, _), item in zip(spans, top["items"], strict=True):
        first = text.find('"', start) if isinstance(item, dict) else start
        line += text.count("\n", pos, first)
        pos = first
        lines[id(item)] = line
    return [_Doc(0, top, _first_key_line(text, 0), {}, lines)]


def _first_key_line(text: str, start: int) -> int:
    """1-based line of the first key of the JSON object that opens at or after `start`."""
    first = text.find('"', text.find("{", start))
    return text.count("\n", 0, first) + 1 if first >= 0 else 1


class _PositionLoader(CachedResolver, _Loader):  # type: ignore[misc,valid-type]
    """CSafeLoader that also records, for every mapping, the 1-based line of each key (for file:line).

    Documents are built by `yaml_build.build_document`; `construct_yaml_map` serves the documents it leaves to
    SafeConstructor (aliases, merge keys, explicit tags).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_lines: dict[int, dict[str, int]] = {}

    def construct_yaml_map(self, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
        data: dict[Any, Any] = {}
        yield data
        data.update(self.construct_mapping(node))
        self.key_lines[id(data)] = {
            k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)
        }


_PositionLoader.add_constructor("tag:yaml.org,2002:map", _PositionLoader.construct_yaml_map)


def _object_depth(obj: Any) -> int:
    """Nesting depth of a plain object, iteratively (no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return deepest


_SIZE_CAP = 1 << 62  # keeps the sums small integers however deep the sharing goes


def _graph_measure(node: yaml.Node) -> tuple[int, int, int]:
    """(node count after alias expansion, unique nodes, depth) of a composed document, linear in unique nodes."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        key = id(n)
        if key in size:
            continue
        if isinstance(n, yaml.ScalarNode):
            size[key], depth[key] = 1, 1
            continue
        children = [c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode) else list(n.value)
        if done:
            size[key] = min(_SIZE_CAP, 1 + sum(size.get(id(c), 0) for c in children))
            depth[key] = 1 + max((depth.get(id(c), 0) for c in children), default=0)
        else:
            stack.append((n, True))
            stack.extend((c, False) for c in children if id(c) not in size)
    return size[id(node)], len(size), depth[id(node)]


def _graph_problem(node: yaml.Node) -> str | None:
    size, unique, depth = _graph_measure(node)
    if size - unique > MAX_ALIAS_EXPANSION:
        return f"YAML aliases expand to over {MAX_ALIAS_EXPANSION:,} extra nodes (alias bomb?)"
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    return None


def _construct(loader: _PositionLoader, node: yaml.Node, fast: bool) -> Any:
    """One composed document as objects; a problem with it (not with the file) is an _InputProblem."""
    if fast:
        try:
            return build_document(node, loader, loader.key_lines)
        except Unsupported:
            pass  # SafeConstructor builds it below
        except yaml.constructor.ConstructorError as exc:
            raise _InputProblem(_constructor_problem(exc)) from None
    try:
        return loader.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        problem = _constructor_problem(exc)
    except RecursionError:
        problem = "nested too deeply"
    except BAD_SCALAR:
        problem = f"a value does not fit its explicit tag (line {node.start_mark.line + 1} or below)"
    # SafeConstructor keeps per-document state when it stops half-way; the next document starts afresh.
    loader.constructed_objects.clear()
    loader.recursive_objects.clear()
    loader.state_generators.clear()
    raise _InputProblem(problem)


def _constructor_problem(exc: yaml.constructor.ConstructorError) -> str:
    mark = exc.problem_mark
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return f"{where}{exc.problem or 'cannot build the document'}"


def _yaml_docs(text: str, shown: str, result: LoadResult) -> Iterator[_Doc]:
    loader = _PositionLoader(text)
    # Measuring the composed graph costs a walk; do it only when the text could hold a bomb or deep nesting.
    measure = ("&" in text and "*" in text) or text.count("[") + text.count("{") > MAX_DEPTH or bool(
        _DEEP_INDENT.search(text)
    )
    fast = not measure  # aliases and deep nesting: SafeConstructor, after the measuring
    index = 0
    try:
        while loader.check_node():
            try:
                node = loader.get_node()
            except RecursionError:
                raise _InputProblem(f"document {index + 1}: nested too deeply") from None
            if node is None:
                break
            if measure:
                problem = _graph_problem(node)
                if problem:
                    result.errors.append(InputError(shown, f"document {index + 1}: {problem}"))
                    index += 1
                    continue
            line = node.start_mark.line + 1
            try:
                obj = _construct(loader, node, fast)
            except _InputProblem as exc:
                result.errors.append(InputError(shown, f"document {index + 1}: {exc}"))
                index += 1
                continue
            yield _Doc(index, obj, line, loader.key_lines)
            index += 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else f"document {index + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "maximum nesting depth" in problem:  # libyaml >= 0.2.6 (PyYAML 6.0.4 wheels) stops deep input itself
            raise _InputProblem(f"document {index + 1}: nested more than {MAX_DEPTH} levels deep") from None
        raise _InputProblem(f"invalid YAML at {where}: {problem}") from None
    except RecursionError:
        raise _InputProblem(f"document {index + 1}: nested too deeply") from None
    finally:
        loader.dispose()


def _add_documents(docs: Iterable[_Doc], shown: str, result: LoadResult) -> None:
    for index, obj, line, key_lines, item_lines in docs:
        if obj is None:
            continue  # empty document (e.g. a trailing '---')
        where = f"document {index + 1}"
        if not isinstance(obj, dict):
            result.errors.append(InputError(shown, f"{where}: is a {type(obj).__name__}, not a Kubernetes object"))
            continue
        kind = obj.get("kind")
        items = obj.get("items")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
            for i, item in enumerate(items):
                item_line = item_lines.get(id(item), line) if item_lines else _first_line(item, key_lines, line)
                _add_object(item, shown, key_lines, result, f"{where} item {i + 1}", item_line)
            continue
        _add_object(obj, shown, key_lines, result, where, _first_line(obj, key_lines, line))


def _first_line(obj: Any, key_lines: dict[int, dict[str, int]], default: int) -> int:
    lines = key_lines.get(id(obj)) if isinstance(obj, dict) else None
    return min(lines.values()) if lines else default


def _add_object(obj: Any, shown: str, key_lines: dict[int, dict[str, int]], result: LoadResult, where: str, line: int) -> None:
    if not isinstance(obj, dict):
        result.errors.append(InputError(shown, f"{where}: is a {type(obj).__name__}, not a Kubernetes object"))
        return
    missing = [k for k in ("apiVersion", "kind") if not isinstance(obj.get(k), str) or not obj.get(k)]
    if missing:
        result.errors.append(InputError(shown, f"{where}: missing {' and '.join(missing)}"))
        return
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        result.errors.append(InputError(shown, f"{where}: metadata is not a mapping"))
        return
    result.resources.append(Resource(obj, file=shown, line=line, key_lines=key_lines))


CONFIG_MAX_BYTES = 1 << 20  # kubeward's own configuration files (exceptions, rules): far below this


def load_config(path: str, *, max_file_bytes: int = CONFIG_MAX_BYTES) -> tuple[list[Any], list[InputError]]:
    """The documents of a configuration file that is not a Kubernetes object (an exceptions file, custom rules).

    The same bounded read and YAML guards as manifests (alias bombs, deep nesting); a file over the limit is
    refused whole, never cut short (a truncated rule file could mean a wider rule). Errors name the file.
    """
    shown = display_path(path)
    result = LoadResult()
    too_big = f"file is over the {max_file_bytes >> 10} KiB limit for configuration files"
    try:
        try:
            size = os.stat(path).st_size
        except OSError:
            size = 0  # the read below names the problem
        if size > max_file_bytes:
            raise _InputProblem(too_big)
        data = _read_bounded(path, max_file_bytes)
        if len(data) > max_file_bytes:
            raise _InputProblem(too_big)
        docs = [d.obj for d in _yaml_docs(_text(data), shown, result)]
    except _InputProblem as exc:
        return [], [*result.errors, InputError(shown, str(exc))]
    return docs, result.errors
