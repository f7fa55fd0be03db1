"""Read Kubernetes objects from files, folders and stdin, keeping each object's origin (file, line).

Values are what Kubernetes reads from the same text (see yaml_build). Hostile input is bounded before it can
hurt: files over a size limit and anything that is not a regular file (a FIFO, a socket, a device; a pipe only
when it has a writer) are refused unread, binary and non-UTF-8 files are named as such, recursive aliases and
alias expansion are measured on the composed graph (billion laughs), and deep nesting is caught. Every problem
becomes one `InputError`; the other documents and files are still read.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
import yaml

from ..findings import InputError
from ..formats.paths import display_path
from ..lazyre import lazy
from ..records import field, record
from ..resource import Resource
from .crd_schema import blank_crd_schemas
from .yaml_build import GoResolver, YAMLProblem, build_document

EXTENSIONS = (".yaml", ".yml", ".json")
DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024
# A document whose aliases add more nodes than this when expanded is treated as an alias bomb. Real manifests with
# anchors add a few; the classic "billion laughs" adds 10^9. Size alone is bounded by --max-file-size.
MAX_ALIAS_EXPANSION = 1_000_000
# Deeper documents are refused: real objects (even CRD schemas) stay far below, and engines may walk recursively.
MAX_DEPTH = 512
_DEEP_INDENT = re.compile(rf"\n {{{MAX_DEPTH},}}\S")
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv"})

class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer):
    """libyaml's grammar in Python (PyYAML without libyaml, and the composer below)."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)


if TYPE_CHECKING:
    from yaml._yaml import CParser as _Parser
else:
    try:
        from yaml._yaml import CParser as _Parser
    except ImportError:  # PyYAML built without libyaml: the same grammar, in Python
        _Parser = _PyParser


@record
class LoadResult:
    resources: list[Resource] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    skipped: list[InputError] = field(default_factory=list)  # documents that are no Kubernetes object at all
    files_read: int = 0
    objects_only: bool = False  # files that yielded at least one object


class _Doc(NamedTuple):
    number: int  # 0-based position in the stream (`index` would shadow tuple.index)
    obj: Any
    line: int
    key_lines: dict[int, dict[str, int]]
    item_lines: dict[int, int] | None = None  # id(item) -> line, for JSON Lists (no per-key lines there)


class _InputProblem(Exception):
    """A user-input problem: becomes a one-line error, never a traceback."""


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
    objects_only: bool = False,
) -> LoadResult:
    """Load every object; `files` may be a pre-expanded iter_files() list and `on_file` ticks a progress bar.

    `objects_only` (the scan and the other cluster readers) also counts configuration files (kubelet, kubeadm,
    kustomize, audit policy… see `config_file_kind`) as skipped instead of returning them.
    """
    result = LoadResult(objects_only=objects_only)
    for shown, path in files if files is not None else iter_files(paths):
        if on_file is not None:
            on_file()
        data = b""
        errors = len(result.errors)
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
        if len(result.errors) > errors and path is not None and data:
            hint = _helm_hint(path, data)
            if hint:  # the file's errors are the chart's syntax: each says what to scan instead
                result.errors[errors:] = [InputError(e.file, e.message + hint) for e in result.errors[errors:]]
            elif b"{{" in data:
                result.errors[errors:] = _template_hints(result.errors[errors:], data)
    return result


_ERROR_LINE = lazy(r"\bline (\d+)\b")
_TEMPLATE_HINT = " (the line holds template syntax {{ ... }}: render the template first and scan its output)"
_HINT_CHECKS = 1000  # the errors of one file whose line is looked at; the rest keep their plain message
_STEPS = (65536, 1024, 64)  # block sizes the walk skips by, largest first


def _template_hints(errors: list[InputError], data: bytes) -> list[InputError]:
    """A YAML error on a line holding `{{ ... }}` (Jinja, Go templates, Salt, Ansible outside a chart) is the
    template's syntax, not a broken manifest: say so rather than leave the user reading YAML rules.

    The lines are found in one walk over the text for all errors (they come in document order), counting
    newlines in blocks at C speed, so a hostile file of many failing documents costs no more than a read."""
    wanted = {}
    for i, e in enumerate(errors[:_HINT_CHECKS]):
        m = _ERROR_LINE.search(e.message)
        if m is not None:
            wanted[i] = int(m.group(1))
    holding: set[int] = set()
    pos, line, size = 0, 1, len(data)
    for n in sorted(set(wanted.values())):
        for step in _STEPS:  # skip whole blocks, then smaller ones, while line n lies beyond them
            while pos + step < size and line + (k := data.count(b"\n", pos, pos + step)) < n:
                line, pos = line + k, pos + step
        while line < n and (nl := data.find(b"\n", pos)) >= 0:
            line, pos = line + 1, nl + 1
        if line != n:
            break  # past the end: no later line exists either
        end = data.find(b"\n", pos)
        if b"{{" in data[pos:end if end >= 0 else size]:
            holding.add(n)
    return [InputError(e.file, e.message + _TEMPLATE_HINT) if wanted.get(i) in holding else e
            for i, e in enumerate(errors)]


def _helm_hint(path: str, data: bytes) -> str:
    """What to scan instead of a file whose errors come from Helm, or "": a packaged chart (`helm package`'s
    .tgz), or a file in a `templates` folder that holds template actions, read on its own (a chart folder is
    rendered, never walked: sources/render.py), whose YAML errors are the template syntax's."""
    if data.startswith(b"\x1f\x8b") and _packaged_chart(data):
        import shlex

        shown = shlex.quote(display_path(path))
        return (f" (a packaged Helm chart: kubeward scan {shown} renders it; to read it here, "
                f"helm template {shown} | kubeward ... -f -)")
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.basename(parent) != "templates" or b"{{" not in data:
        return ""
    chart = os.path.dirname(parent)
    if os.path.exists(os.path.join(chart, "Chart.yaml")):
        return f" (a template of the Helm chart {display_path(chart)}: scan that folder to have it rendered)"
    return " (a Helm template in a folder without Chart.yaml: render its chart, e.g. helm template CHART | kubeward scan -)"


def is_packaged_chart(path: str) -> bool:
    """A file `helm package` wrote (see _packaged_chart), judged from its first 64 KiB; a folder walk never
    yields one (kubectl and kubeward read only .yaml, .yml and .json there), so this asks of named files only."""
    if not path.endswith((".tgz", ".tar.gz")):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return False  # read as a file: its error is named there
    return head.startswith(b"\x1f\x8b") and _packaged_chart(head)


def _packaged_chart(data: bytes) -> bool:
    """A gzip'd tar whose first member is CHART/Chart.yaml, as `helm package` writes it (helm
    pkg/chart/v2/util/save.go writeTarContents: Chart.yaml first); only that header is decompressed."""
    import io
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            first = tar.next()
    except (tarfile.TarError, OSError, EOFError):
        return False
    return first is not None and first.name.count("/") == 1 and first.name.endswith("/Chart.yaml")


def _read_bounded(path: str, limit: int) -> bytes:
    """The file's bytes, refusing before reading anything that is not a regular file: opening a FIFO blocks
    until a writer comes, a device never ends (O_NONBLOCK makes the open itself return at once)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _InputProblem("no such file or directory") from None
    except IsADirectoryError:
        raise _InputProblem("is a directory") from None
    except PermissionError:
        raise _InputProblem("permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a unix socket
            raise _InputProblem("not a regular file (a socket)") from None
        raise _InputProblem(exc.strerror or str(exc)) from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if stat.S_ISFIFO(st.st_mode):
            return _read_pipe(fd, limit)
        if not stat.S_ISREG(st.st_mode):
            raise _InputProblem("is a directory" if stat.S_ISDIR(st.st_mode) else f"not a regular file ({_file_type(st.st_mode)})")
        if st.st_size > limit:
            raise _InputProblem(_too_big(st.st_size, limit))
        try:
            return fh.read(min(limit, st.st_size + 65536) + 1)  # exact-size buffer; read(limit) would allocate limit
        except OSError as exc:
            raise _InputProblem(exc.strerror or str(exc)) from None


def _read_pipe(fd: int, limit: int) -> bytes:
    """A pipe is read only when something writes to it (`scan <(helm template .)`): with no writer (a FIFO
    nobody opened for writing) a non-blocking read ends at once, and the FIFO is refused instead of waited on."""
    try:
        first = os.read(fd, 65536)
    except BlockingIOError:
        first = None  # a writer is there, nothing written yet
    if first == b"":
        raise _InputProblem("not a regular file (a FIFO with no writer)")
    os.set_blocking(fd, True)
    chunks = [first] if first else []
    size = len(first or b"")
    while size <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a file"


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
    start = 0  # where the YAML path begins: after the JSON objects of a JSON stream
    if shown.endswith(".json") or text.lstrip()[:1] in ("{", "["):
        docs = _json_doc(text, shown)
        if docs is not None:
            _add_documents(docs, shown, result)
            return
        if text.lstrip()[:1] == "{":
            stream, start, problem = _json_stream(text)
            _add_documents(stream, shown, result)
            if problem is not None:
                result.errors.append(InputError(shown, problem))
            if problem is not None or start >= len(text):
                return
    first = start and text.count("\n", 0, start)  # documents after a JSON object keep their numbers and lines

    def refuse(index: int, problem: str) -> None:
        result.errors.append(InputError(shown, f"document {index + 1 + bool(start)}: {problem}"))

    rest = "\n" * first + text[start:] if start else text
    yaml_docs = _yaml_docs(blank_crd_schemas(rest), refuse)
    _add_documents((d._replace(number=d.number + 1) for d in yaml_docs) if start else yaml_docs, shown, result)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Go's encoding/json, which kubectl and the apiserver decode with, refuses NaN and Infinity; Python's takes them.
_JSON = json.JSONDecoder(parse_constant=_no_constant)
_WS = lazy(r"[ \t\n\r]*")


def _skip_ws(text: str, i: int) -> int:
    """The offset of the first non-whitespace character at or after `i` (JSON's four whitespace characters)."""
    m = _WS.match(text, i)
    assert m is not None  # `*` matches the empty string anywhere
    return m.end()


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


def _json_stream(text: str) -> tuple[list[_Doc], int, str | None]:
    """JSON values one after another (`{...}{...}`, what Go's json.Decoder reads), as kubectl takes a file whose
    first character is `{` (apimachinery util/yaml YAMLOrJSONDecoder): the objects; where YAML takes over, when
    at most one object decoded before something that is not JSON (kubectl then switches to YAML for the rest,
    past the whitespace up to the first newline); and the problem that ends a stream of two or more objects (no
    switch any more: an error, the objects before it kept, as kubectl has applied them)."""
    docs: list[_Doc] = []
    i = _skip_ws(text, 0)
    end = 0
    while i < len(text):
        try:
            obj, end_of_obj = _JSON.raw_decode(text, i)
        except RecursionError:
            return docs, len(text), f"document {len(docs) + 1}: nested too deeply"
        except ValueError as exc:  # JSONDecodeError, or NaN/Infinity, which Go's decoder refuses
            if len(docs) > 1:
                line = text.count("\n", 0, getattr(exc, "pos", i)) + 1
                return docs, len(text), f"document {len(docs) + 1}: invalid JSON at line {line}: {getattr(exc, 'msg', exc)}"
            if not docs:
                return [], 0, None  # not a JSON stream: YAML from the start
            m = _WS_TO_NEWLINE.match(text, end)
            return docs, m.end() if m else end, None
        if text.count("[", i, end_of_obj) + text.count("{", i, end_of_obj) > MAX_DEPTH and _object_depth(obj) > MAX_DEPTH:
            return docs, len(text), f"document {len(docs) + 1}: nested more than {MAX_DEPTH} levels deep"
        line = _first_key_line(text, i) if isinstance(obj, dict) else text.count("\n", 0, i) + 1
        docs.append(_Doc(len(docs), obj, line, {}))
        end = end_of_obj
        i = _skip_ws(text, end)
    return docs, len(text), None


_WS_TO_NEWLINE = lazy(r"[^\S\n]*\n?")  # consumeWhitespace: spaces up to and including the first newline


def _json_list(text: str) -> list[_Doc] | None:
    """Decode a top-level JSON object key by key, and its `items` array item by item, recording item offsets."""
    decode = _JSON.raw_decode
    try:
        i = _skip_ws(text, 0)
        if text[i] != "{":
            return None
        top: dict[str, Any] = {}
        spans: list[tuple[int, int]] = []
        i = _skip_ws(text, i + 1)
        while text[i] != "}":
            key, i = decode(text, i)
            i = _skip_ws(text, i)
            if text[i] != ":":
                return None
            i = _skip_ws(text, i + 1)
            if key == "items" and text[i] == "[":
                items: list[Any] = []
                i = _skip_ws(text, i + 1)
                while text[i] != "]":
                    start = i
                    item, i = decode(text, i)
                    items.append(item)
                    spans.append((start, i))
                    i = _skip_ws(text, i)
                    if text[i] == ",":
                        i = _skip_ws(text, i + 1)
                    elif text[i] != "]":
                        return None
                top[key] = items
                i += 1
            else:
                top[key], i = decode(text, i)
            i = _skip_ws(text, i)
            if text[i] == ",":
                i = _skip_ws(text, i + 1)
            elif text[i] != "}":
                return None
        if text[_skip_ws(text, i + 1):]:
            return None
    except (ValueError, IndexError):
        return None
    except RecursionError:
        raise _InputProblem(f"document 1: nested more than {MAX_DEPTH} levels deep") from None
    if not (isinstance(top.get("items"), list) and spans):
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


class _NodeLoader(_Parser, GoResolver):
    """libyaml's parser and composer (C when available) with the Go resolver: nodes, never Python objects."""


class _ReanchoringLoader(_PyParser, GoResolver):
    """For the rare text that defines an anchor twice: libyaml's composer refuses it, go-yaml lets the later
    definition win (decode.go parser.anchor overwrites), and so does this composer."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if not self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor
            if anchor is not None:
                self.anchors.pop(anchor, None)
        return super().compose_node(parent, index)


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


def _graph_measure(node: yaml.Node) -> tuple[int, int, int, yaml.Node | None]:
    """(node count after alias expansion, unique nodes, depth, a node that contains itself) of a composed
    document, linear in unique nodes. A node reached again while its own children are being walked is an alias
    inside its own anchor: expanding it would never end (go-yaml v2 decode.go: "anchor value contains itself")."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        key = id(n)
        if isinstance(n, yaml.ScalarNode):
            size[key], depth[key] = 1, 1
            continue
        children = [c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode) else list(n.value)
        if done:
            open_nodes.discard(key)
            size[key] = min(_SIZE_CAP, 1 + sum(size.get(id(c), 0) for c in children))
            depth[key] = 1 + max((depth.get(id(c), 0) for c in children), default=0)
            continue
        if key in size:
            continue
        open_nodes.add(key)
        stack.append((n, True))
        for c in children:
            if id(c) in open_nodes:
                return 0, 0, 0, c
            if id(c) not in size:
                stack.append((c, False))
    return size[id(node)], len(size), depth[id(node)], None


def _graph_problem(node: yaml.Node) -> str | None:
    size, unique, depth, recursive = _graph_measure(node)
    if recursive is not None:
        return (f"line {recursive.start_mark.line + 1}: an alias refers to the node anchored here from inside "
                "it (a recursive document Kubernetes refuses)")
    if size - unique > MAX_ALIAS_EXPANSION:
        return f"YAML aliases expand to over {MAX_ALIAS_EXPANSION:,} extra nodes (alias bomb?)"
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    return None


def yaml_values(text: str) -> list[tuple[Any, str | None]]:
    """Each document of `text` as Kubernetes reads it: (its JSON value, None), or (None, why it is refused)."""
    out: list[tuple[Any, str | None]] = []
    try:
        for doc in _yaml_docs(text, lambda _index, problem: out.append((None, problem))):
            out.append((doc.obj, None))
    except _InputProblem as exc:
        out.append((None, str(exc)))
    return out


def _yaml_docs(text: str, refuse: Callable[[int, str], None], loader_class: type = _NodeLoader,
               skip: int = 0) -> Iterator[_Doc]:
    """The documents of one YAML text; a document Kubernetes would refuse goes to `refuse(index, problem)`
    and the next one is read; a syntax error ends the text (the parser cannot resynchronise). The first `skip`
    documents are composed and passed over (a restart after a redefined anchor)."""
    loader = loader_class(text)
    key_lines: dict[int, dict[str, int]] = {}
    # Measuring the composed graph costs a walk; do it only when the text could hold aliases or deep nesting.
    measure = ("&" in text and "*" in text) or text.count("[") + text.count("{") > MAX_DEPTH or bool(
        _DEEP_INDENT.search(text)
    )
    index = 0
    try:
        while loader.check_node():
            try:
                node = loader.get_node()
            except RecursionError:
                raise _InputProblem(f"document {index + 1}: nested too deeply") from None
            if node is None:
                break
            if index < skip:
                index += 1
                continue
            problem = _graph_problem(node) if measure else None
            if problem is None:
                try:
                    obj = build_document(node, key_lines, measure)
                except YAMLProblem as exc:
                    problem = str(exc)
                except RecursionError:
                    problem = "nested too deeply"
                else:
                    yield _Doc(index, obj, node.start_mark.line + 1, key_lines)
            if problem is not None:
                refuse(index, problem)
            index += 1
    except yaml.composer.ComposerError as exc:
        if "duplicate anchor" not in (exc.context or "") or loader_class is _ReanchoringLoader:
            raise _InputProblem(f"invalid YAML at {_where(exc, index)}: {exc.problem}") from None
        restart = True
    except yaml.YAMLError as exc:
        where = _where(exc, index)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "maximum nesting depth" in problem:  # libyaml >= 0.2.6 (PyYAML 6.0.4 wheels) stops deep input itself
            raise _InputProblem(f"document {index + 1}: nested more than {MAX_DEPTH} levels deep") from None
        raise _InputProblem(f"invalid YAML at {where}: {problem}") from None
    except RecursionError:
        raise _InputProblem(f"document {index + 1}: nested too deeply") from None
    else:
        restart = False
    finally:
        loader.dispose()
    if restart:
        yield from _yaml_docs(text, refuse, _ReanchoringLoader, skip=index)


def _where(exc: yaml.YAMLError, index: int) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}" if mark is not None else f"document {index + 1}"


def _add_documents(docs: Iterable[_Doc], shown: str, result: LoadResult) -> None:
    for index, obj, line, key_lines, item_lines in docs:
        if obj is None:
            continue  # empty document (e.g. a trailing '---')
        where = f"document {index + 1}"
        if not isinstance(obj, dict):
            result.skipped.append(InputError(shown, f"{where}: a {_json_type(obj)}, not a Kubernetes object"))
            continue
        if obj.get("items") is not None:
            _add_list(obj, shown, key_lines, item_lines, result, where, line)
            continue
        reason = _not_an_object(obj, shown, result.objects_only)
        if reason is not None:
            result.skipped.append(InputError(shown, f"{where}: {reason}, not a Kubernetes object"))
            continue
        _add_object(obj, shown, key_lines, result, where, _first_line(obj, key_lines, line))


def _not_an_object(obj: dict[str, Any], shown: str, objects_only: bool) -> str | None:
    """Why a mapping is no Kubernetes object, or None. Neither apiVersion nor kind: Helm values, CI workflows,
    compose files, a kustomization without its optional header (kustomize also takes `kind: Kustomization` or
    the apiVersion alone); a Helm chart's Chart.yaml (apiVersion v1/v2, no kind; helm pkg/chartutil
    ChartfileName). Otherwise one of the two missing is a broken manifest, an input error."""
    version, kind = obj.get("apiVersion"), obj.get("kind")
    if not version and not kind:
        return "no apiVersion and kind"
    if not version and kind in _KUSTOMIZE_KINDS:
        return f"a {kind} (kustomize)"
    if not kind and os.path.basename(shown) == "Chart.yaml":
        return "a Helm chart's Chart.yaml"
    if objects_only and isinstance(version, str) and config_file_kind(version, kind if isinstance(kind, str) else ""):
        named = str(kind or version)
        return f"{'an' if named[:1] in 'AEIOUaeiou' else 'a'} {named} configuration file"
    return None


_KUSTOMIZE_KINDS = frozenset({"Kustomization", "Component"})
# API groups of configuration files that components read from disk and no apiserver serves: component configs
# (kubelet, kube-proxy, scheduler, controller managers, apiserver admission/encryption/authn/authz configs, Pod
# Security admission), kustomize, kubeadm, audit policies, exec credentials, and local-cluster tools' configs.
_CONFIG_GROUPS = frozenset({"kubeadm.k8s.io", "audit.k8s.io", "client.authentication.k8s.io", "kind.x-k8s.io",
                            "k3d.io", "skaffold", "ctlptl.dev"})
_CONFIG_SUFFIXES = (".config.k8s.io", ".admission.k8s.io")


def config_file_kind(api_version: str, kind: str) -> bool:
    """A configuration file's kind, not an API object: what `scan` counts as skipped rather than as an object
    (v1 `Config` is a kubeconfig, client-go tools/clientcmd/api/v1)."""
    group = api_version.rpartition("/")[0]
    return (group in _CONFIG_GROUPS or group.endswith(_CONFIG_SUFFIXES)
            or (api_version == "v1" and kind == "Config"))


def _add_list(obj: dict[str, Any], shown: str, key_lines: dict[int, dict[str, int]], item_lines: dict[int, int] | None,
              result: LoadResult, where: str, line: int) -> None:
    """A List as kubectl reads it (apimachinery unstructured.go decodeToList: any object with `items` is a list):
    an item without kind and apiVersion, as the API serves typed lists (PodList, NamespaceList...), gets the
    list's kind minus `List` and the list's apiVersion. An item that is a list itself is flattened in turn, in
    kubectl's order: a list's own objects first, then those of the lists it holds (cli-runtime
    pkg/resource/visitor.go FlattenListVisitor)."""
    pending = [(obj, where, line)]
    for current, at, at_line in pending:  # the loop takes the lists appended while it runs
        items = current["items"]
        if not isinstance(items, list):
            result.errors.append(InputError(shown, f"{at}: items is a {_json_type(items)}, not a list of objects"))
            continue
        list_kind, list_version = current.get("kind"), current.get("apiVersion")
        item_kind = list_kind.removesuffix("List") if isinstance(list_kind, str) else ""
        for i, item in enumerate(items):
            item_line = item_lines.get(id(item), at_line) if item_lines else _first_line(item, key_lines, at_line)
            if isinstance(item, dict) and not item.get("kind") and not item.get("apiVersion") and item_kind:
                item["kind"], item["apiVersion"] = item_kind, list_version
            if isinstance(item, dict) and item.get("items") is not None:
                pending.append((item, f"{at} item {i + 1}", item_line))
                continue
            _add_object(item, shown, key_lines, result, f"{at} item {i + 1}", item_line)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__)


def _first_line(obj: Any, key_lines: dict[int, dict[str, int]], default: int) -> int:
    lines = key_lines.get(id(obj)) if isinstance(obj, dict) else None
    return min(lines.values()) if lines else default


_META_STRINGS = ("name", "generateName", "namespace")
_META_MAPS = ("labels", "annotations")


def _metadata_problem(meta: dict[str, Any]) -> str | None:
    """What the apiserver's decoder refuses in ObjectMeta (k8s.io/apimachinery/pkg/apis/meta/v1/types.go: name,
    generateName and namespace are strings, labels and annotations map[string]string; JSON null is the empty
    value). `namespace: y` or `labels: {enabled: true}` read as booleans, as kubectl reads them: judging such an
    object under the name "True" would be judging something the cluster never holds."""
    for key in _META_STRINGS:
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            return (f"metadata.{key} is a {_json_type(value)}, not a string (Kubernetes refuses it; quote the value)")
    for key in _META_MAPS:
        values = meta.get(key)
        if values is None:
            continue
        if not isinstance(values, dict):
            return f"metadata.{key} is a {_json_type(values)}, not a mapping of strings"
        for k, v in values.items():
            if v is not None and not isinstance(v, str):
                return (f"metadata.{key}.{k} is a {_json_type(v)}, not a string (Kubernetes refuses it; "
                        "quote the value)")
    return None


def _add_object(obj: Any, shown: str, key_lines: dict[int, dict[str, int]], result: LoadResult, where: str, line: int) -> None:
    if not isinstance(obj, dict):
        result.errors.append(InputError(shown, f"{where}: a {_json_type(obj)}, not a Kubernetes object"))
        return
    missing = [k for k in ("apiVersion", "kind") if not isinstance(obj.get(k), str) or not obj.get(k)]
    if missing:
        result.errors.append(InputError(shown, f"{where}: missing {' and '.join(missing)}"))
        return
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        result.errors.append(InputError(shown, f"{where}: metadata is not a mapping"))
        return
    problem = _metadata_problem(meta) if meta else None
    if problem:
        result.errors.append(InputError(shown, f"{where}: {problem}"))
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
        def refuse(index: int, problem: str) -> None:
            result.errors.append(InputError(shown, f"document {index + 1}: {problem}"))

        docs = [d.obj for d in _yaml_docs(_text(data), refuse)]
    except _InputProblem as exc:
        return [], [*result.errors, InputError(shown, str(exc))]
    return docs, result.errors


class ConfigFileError(Exception):
    """A configuration file that cannot be used; the message is one line, `<file>: <reason>`."""


def load_config_document(path: str, *, max_file_bytes: int = CONFIG_MAX_BYTES) -> Any:
    """The one document of a configuration file (custom audit rules, a Pod Security admission configuration)
    through `load_config`'s guards; None when the file holds none."""
    docs, errors = load_config(path, max_file_bytes=max_file_bytes)
    if errors:
        raise ConfigFileError(f"{errors[0].file}: {errors[0].message}")
    docs = [d for d in docs if d is not None]
    if len(docs) > 1:
        raise ConfigFileError(f"{display_path(path)}: {len(docs)} YAML documents; a configuration file holds one")
    return docs[0] if docs else None
