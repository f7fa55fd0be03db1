"""`kubeward scan -o json` on two processes, for large file scans.

The files are split in two by their shown name: this process loads the first part, a forked child the rest. Each
side runs the per-object controls (`pod` and `object` shapes) over its own objects and renders its findings as
the JSON bytes they take in the document. Findings are ordered by severity, control id, file, line and path, and
every file is wholly on one side with all of the parent's names sorting before the child's, so a control's
findings are the parent's block followed by the child's block. Cross-object controls (`snapshot` shape) need every
object: the child also hands over its objects (with their key lines), and the parent runs those controls over the
whole set in the serial load order.

The result is byte for byte what the serial path writes (same summary, same order, same exit code); anything
unexpected (a failed child, an unknown error source) makes the caller fall back to the serial path.
`KUBEWARD_WORKERS=1` forces the serial path; `KUBEWARD_WORKERS=2` uses two processes even for small inputs.
"""

from __future__ import annotations

import marshal
import mmap
import os
import pickle
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .controls.registry import Control, run
from .findings import ControlResult, Finding, InputError, Report, Severity
from .formats.json import item_bytes, render_spliced
from .gcpause import gc_paused
from .resource import Resource, _flatten_lines
from .snapshot import Snapshot
from .sources.files import LoadResult, load_paths

MIN_FILES = 500  # below this, forking costs more than it saves
CHILD_SHARE = 0.58  # the parent also runs the cross-object controls and assembles the document
_KEY_LINES_DONE = {0: {}}  # truthy stand-in: the object's pointer→line map is handed over already flattened


def workers_wanted(n_files: int) -> int:
    """1 (serial) or 2, from KUBEWARD_WORKERS (unset: 2 on a multi-CPU machine for ≥ MIN_FILES files)."""
    setting = os.environ.get("KUBEWARD_WORKERS", "").strip()
    if setting:
        try:
            wanted = int(setting)
        except ValueError:
            wanted = 1
        return 2 if wanted >= 2 and n_files >= 2 else 1
    return 2 if (os.cpu_count() or 1) >= 2 and n_files >= MIN_FILES else 1


@dataclass(slots=True)
class ParallelScan:
    data: list[bytes | memoryview]  # the document, in pieces to write in order (the child's: views of its spool)
    errors: list[InputError]
    expired: list[str]
    objects: int
    failing: set[Severity] = field(default_factory=set)  # severities of controls with unsuppressed findings


@dataclass(slots=True)
class _Part:
    objects: int = 0
    errors: list[InputError] = field(default_factory=list)
    # control id -> (evaluated, failed, findings, rendered findings, [(order key, rendered suppressed finding)]);
    # the child's rendered findings travel as (offset, length) in its block spool, read back as a memoryview
    controls: dict[str, tuple[int, int, int, Any, list[tuple[tuple[int, int, int], bytes]]]] = field(default_factory=dict)


def scan_json(
    files: list[tuple[str, str | None]],
    max_file_bytes: int,
    controls: list[Control],
    exceptions: Any,
    exclude_namespaces: Iterable[str],
) -> ParallelScan | None:
    """The two-process scan, or None when it does not apply (stdin, repeated names, a failed child)."""
    names = [shown for shown, _ in files]
    if any(path is None for _, path in files) or len(set(names)) != len(names) or len(files) < 2:
        return None
    skip_ns = tuple(exclude_namespaces)
    parent_names = _parent_share(files)
    index = {shown: i for i, shown in enumerate(names)}
    mine = [f for f in files if f[0] in parent_names]
    theirs = [f for f in files if f[0] not in parent_names]
    per_object = [c for c in controls if c.shape != "snapshot"]
    cross = [c for c in controls if c.shape == "snapshot"]

    try:
        spools = (_spool_file(), _spool_file(), _spool_file())  # objects, rendered findings, the rest of the part
        read_fd, write_fd = os.pipe()  # one byte per step done; 0 bytes: the child failed
    except OSError:
        return None
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(read_fd)
            with gc_paused():
                loaded = load_paths((), max_file_bytes=max_file_bytes, files=theirs)
                if cross:
                    _spool(spools[0], [_handed_over(r) for r in loaded.resources])
                    os.write(write_fd, b"o")
                part = _run_part(loaded, index, per_object, exceptions, skip_ns, blocks=spools[1])
                spools[1].flush()
                _spool(spools[2], part)
                os.write(write_fd, b"f")
            status = 0
        finally:
            os._exit(status)

    os.close(write_fd)
    try:
        with gc_paused():
            loaded = load_paths((), max_file_bytes=max_file_bytes, files=mine)
            own = _run_part(loaded, index, per_object, exceptions, skip_ns)
            cross_report = None
            if cross:
                if os.read(read_fd, 1) != b"o":
                    return None
                theirs_loaded = _unspool(spools[0])
                cross_report = _run_cross(files, cross, exceptions, skip_ns, loaded.resources, theirs_loaded)
                if cross_report is None:
                    return None
            if os.read(read_fd, 1) != b"f":
                return None
            child: _Part = _unspool(spools[2])
            _map_blocks(child, spools[1])
            return _assemble(files, controls, exceptions, own, child, cross_report)
    finally:
        os.close(read_fd)
        for spool in spools:
            spool.close()
        os.waitpid(pid, 0)


def _spool_file() -> Any:
    """A file in memory (memfd) where the system has it, else a temporary file: the child's output passes
    through it once, and the parent maps it instead of reading it back."""
    try:
        return open(os.memfd_create("kubeward-scan", os.MFD_CLOEXEC), "w+b")
    except (AttributeError, OSError):
        return tempfile.TemporaryFile()


def _map_blocks(part: _Part, spool: Any) -> None:
    """Turn the child's (offset, length) block references into views of the mapped spool: its findings reach the
    output without a copy in this process."""
    size = os.fstat(spool.fileno()).st_size
    view = memoryview(mmap.mmap(spool.fileno(), size, access=mmap.ACCESS_READ)) if size else memoryview(b"")
    for cid, (evaluated, failed, count, (start, length), silenced) in part.controls.items():
        part.controls[cid] = (evaluated, failed, count, view[start:start + length], silenced)


def _spool(spool: Any, value: Any) -> None:
    """marshal where it can (twice as fast as pickle on plain dicts and lists, and both ends are this same
    interpreter); pickle for what it cannot hold (a YAML timestamp is a datetime)."""
    try:
        data = b"m" + marshal.dumps(value)
    except ValueError:
        data = b"p" + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    spool.write(data)
    spool.flush()


def _unspool(spool: Any) -> Any:
    spool.seek(0)
    if spool.read(1) == b"m":
        return marshal.load(spool)
    return pickle.load(spool)  # streamed: the pickle itself is never held beside what it holds


def _handed_over(r: Resource) -> tuple[Any, str | None, int | None, dict[str, int] | None, bool]:
    """An object for the parent's cross-object controls: its key lines flattened here, where their ids are valid
    (kept on the object too, so this process's own controls reuse them)."""
    if r.key_lines and r._lines is None:
        r._lines = _flatten_lines(r.obj, r.key_lines)
    return (r.obj, r.file, r.line, r._lines, bool(r.key_lines))


def _parent_share(files: list[tuple[str, str | None]]) -> frozenset[str]:
    """The names that sort first, up to (1 - CHILD_SHARE) of the bytes to read (work follows size, not count)."""
    sizes = {}
    for shown, path in files:
        try:
            sizes[shown] = os.path.getsize(path) if path is not None else 0
        except OSError:
            sizes[shown] = 0
    ordered = sorted(sizes)
    budget = sum(sizes.values()) * (1 - CHILD_SHARE)
    taken = 0
    cut = 0
    while cut < len(ordered) - 1 and taken + sizes[ordered[cut]] <= budget:
        taken += sizes[ordered[cut]]
        cut += 1
    return frozenset(ordered[:max(cut, 1)])


def _run_part(loaded: LoadResult, index: dict[str, int], controls: list[Control], exceptions: Any,
              skip_ns: tuple[str, ...], blocks: Any = None) -> _Part:
    """One side's per-object controls, rendered. With `blocks` (the child) each control's findings are written
    there as they are rendered and the part holds (offset, length) instead of the bytes."""
    snapshot = Snapshot(loaded.resources, errors=loaded.errors)
    report = run(snapshot, controls, exceptions, exclude_namespaces=skip_ns)
    part = _Part(objects=len(snapshot), errors=loaded.errors)
    found: dict[str, list[Finding]] = {}
    for f in report.findings:
        found.setdefault(f.control.id, []).append(f)
    suppressed: dict[str, list[Finding]] = {}
    for f in report.suppressed:
        suppressed.setdefault(f.control.id, []).append(f)
    position: dict[int, tuple[int, int]] = {}
    if report.suppressed:
        seen: dict[str, int] = {}
        for r in snapshot.resources:
            n = seen[r.file or ""] = seen.get(r.file or "", -1) + 1
            position[id(r.ref())] = (index[r.file or ""], n)
    kinds_of = {c.meta.id: sorted(c.kinds) for c in controls}
    for cid, result in report.controls.items():
        mine = found.get(cid, [])
        silenced = [
            ((kinds_of[cid].index(f.object.kind) if f.object.kind in kinds_of[cid] else -1, *position[id(f.object)]),
             item_bytes([f]))
            for f in suppressed.get(cid, ())
        ]
        rendered: Any = item_bytes(mine)
        if blocks is not None:
            offset = blocks.tell()
            blocks.write(rendered)
            rendered = (offset, len(rendered))
        part.controls[cid] = (result.evaluated, result.failed, len(mine), rendered, silenced)
    return part


def _run_cross(
    files: list[tuple[str, str | None]],
    cross: list[Control],
    exceptions: Any,
    skip_ns: tuple[str, ...],
    own_resources: list[Resource],
    theirs: list[tuple[Any, str | None, int | None, dict[str, int] | None, bool]],
) -> Report | None:
    """The cross-object controls over every object, in the order the serial path loads them."""
    by_file: dict[str, list[Resource]] = {}
    for r in own_resources:
        by_file.setdefault(r.file or "", []).append(r)
    for obj, file, line, lines, had_key_lines in theirs:
        r = Resource(obj, file=file, line=line, key_lines=_KEY_LINES_DONE if had_key_lines else None)
        r._lines = lines
        by_file.setdefault(file or "", []).append(r)
    names = {shown for shown, _ in files}
    if not set(by_file) <= names:
        return None
    whole = Snapshot([r for shown, _ in files for r in by_file.get(shown, ())])
    return run(whole, cross, exceptions, exclude_namespaces=skip_ns)


def _assemble(
    files: list[tuple[str, str | None]],
    controls: list[Control],
    exceptions: Any,
    own: _Part,
    child: _Part,
    cross_report: Report | None,
) -> ParallelScan | None:
    # Input errors in the serial order: file by file, as the files were listed.
    errors_of: dict[str, list[InputError]] = {}
    for e in (*own.errors, *child.errors):
        errors_of.setdefault(e.file, []).append(e)
    if not set(errors_of) <= {shown for shown, _ in files}:
        return None
    errors = [e for shown, _ in files for e in errors_of.get(shown, ())]
    objects = own.objects + child.objects
    if cross_report is not None and cross_report.objects != objects:
        return None
    cross_found: dict[str, list[Finding]] = {}
    cross_silenced: dict[str, list[Finding]] = {}
    if cross_report is not None:
        for f in cross_report.findings:
            cross_found.setdefault(f.control.id, []).append(f)
        for f in cross_report.suppressed:
            cross_silenced.setdefault(f.control.id, []).append(f)

    report = Report(objects=objects, findings=[], errors=errors)
    if exceptions is not None:
        report.expired_exceptions = list(exceptions.expired)
    blocks: list[tuple[tuple[int, str], list[Any]]] = []
    suppressed: list[bytes] = []
    by_severity = {s.label: 0 for s in sorted(Severity, reverse=True) if s != Severity.INFO}
    n_findings = 0
    failing: set[Severity] = set()
    for c in controls:
        meta = c.meta
        if c.shape == "snapshot":
            if cross_report is None:
                return None
            result = cross_report.controls[meta.id]
            mine = cross_found.get(meta.id, [])
            count, rendered = len(mine), [item_bytes(mine)]
            suppressed.extend(item_bytes([f]) for f in cross_silenced.get(meta.id, ()))
            report.controls[meta.id] = ControlResult(meta, result.evaluated, result.failed)
        else:
            a, b = own.controls[meta.id], child.controls[meta.id]
            count, rendered = a[2] + b[2], [a[3], b[3]]
            silenced = a[4] + b[4]
            silenced.sort(key=lambda s: s[0])  # stable: one object's findings keep the order the control gave
            suppressed.extend(s[1] for s in silenced)
            report.controls[meta.id] = ControlResult(meta, a[0] + b[0], a[1] + b[1])
        if count:
            blocks.append(((-meta.severity, meta.id), rendered))
            n_findings += count
            failing.add(meta.severity)
            if meta.severity != Severity.INFO:
                by_severity[meta.severity.label] += count
    blocks.sort(key=lambda b: b[0])
    data = render_spliced(report, (n_findings, by_severity, len(suppressed)),
                          [block for _, rendered in blocks for block in rendered], suppressed)
    return ParallelScan(data, errors, report.expired_exceptions, objects, failing)
