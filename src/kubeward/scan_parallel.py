"""The two-process runner of the scan pipeline (kubeward/scan.py): `-o json` of many files.

The files, sorted by their shown name, are cut into contiguous chunks of about equal size. This process takes
chunks from the front and a forked child takes them from the back, first to load them and then to run the
per-object controls (`pod` and `object` shapes) over them, so the two finish together whatever the chunks cost
(findings per byte differ a lot between manifests, and a shared machine slows one CPU more than the other).
Each chunk's findings are rendered as the JSON bytes they take in the document. Findings are ordered by
severity, control id, file, line and path, and every file sits wholly in one chunk, so a control's findings are
its chunks' blocks laid out in chunk order: no merge.

The cross-object controls (`snapshot` shape) need every object: once loading is done the child hands its
objects over (with their key lines, flattened), and this process runs those controls over all of them, in the
serial load order, while the child is already running its chunks; it can then also run chunks the child loaded.

The result is a ScanResult holding byte for byte the document the serial runner writes (same summary, same
order, same exit code); anything unexpected (a failed child, an unknown error source) makes the pipeline fall
back to the serial runner.
`KUBEWARD_WORKERS=1` forces the serial path; `KUBEWARD_WORKERS=2` uses two processes even for small inputs.
"""

from __future__ import annotations

import fcntl
import marshal
import mmap
import os
import pickle
import select
import struct
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .controls.registry import Control, run, unassessed_kinds
from .findings import ControlResult, Finding, InputError, NotAssessed, Report, Severity, count_by_severity
from .formats.json import Parts, item_bytes, render_spliced
from .gcpause import gc_paused
from .resource import Resource
from .snapshot import Snapshot
from .sources.files import load_paths

if TYPE_CHECKING:
    from .scan import ScanResult

MIN_FILES = 500  # below this, forking costs more than it saves
CHUNKS = 32  # enough for the two sides to even out, few enough that per-chunk set-up stays negligible
# Share of the chunks this process loads: it also runs the cross-object controls and assembles the document, and
# it can take over chunks the child loaded (never the reverse), so the child loads more.
PARENT_LOADS = 0.4
_PER_FILE = 512  # weight of a file beyond its bytes, for cutting chunks
Handed = tuple[Any, str | None, int | None, dict[str, int] | None]  # (obj, file, line, pointer lines)
# control id -> (evaluated, failed, findings, rendered findings, [(order key, rendered suppressed finding)]); the
# child's rendered findings travel as (offset, length) in its block spool and come back as a memoryview.
ChunkResult = dict[str, tuple[int, int, int, Any, list[tuple[tuple[int, int, int], bytes]]]]


def workers_wanted(n_files: int, workers: int | None = None) -> int:
    """1 (serial) or 2: `workers` when given (ScanOptions.workers), else KUBEWARD_WORKERS, else 2 on a
    multi-CPU machine for ≥ MIN_FILES files."""
    setting = str(workers) if workers is not None else os.environ.get("KUBEWARD_WORKERS", "").strip()
    if setting:
        try:
            wanted = int(setting)
        except ValueError:
            wanted = 1
        return 2 if wanted >= 2 and n_files >= 2 else 1
    return 2 if (os.cpu_count() or 1) >= 2 and n_files >= MIN_FILES else 1


class _Claims:
    """Which chunk each process takes next, in memory both share: loading and running each have a front (this
    process) and a back (the child). A POSIX record lock makes every claim atomic; it belongs to the process
    holding it, so a child that dies mid-claim cannot leave it taken."""

    _FORMAT = "4i"  # load front, load back, run front, run back

    def __init__(self, chunks: int) -> None:
        self._mem = mmap.mmap(-1, struct.calcsize(self._FORMAT))  # anonymous and shared across fork
        struct.pack_into(self._FORMAT, self._mem, 0, 0, chunks, 0, chunks)
        self._lock = _spool_file()

    def close(self) -> None:
        self._lock.close()

    def _claim(self, slot: int, from_back: bool, limit: int = 0) -> int | None:
        fd = self._lock.fileno()
        fcntl.lockf(fd, fcntl.LOCK_EX)
        try:
            front, back = struct.unpack_from("2i", self._mem, slot * 4)
            if front >= back or (from_back and back - 1 < limit):
                return None
            if from_back:
                back -= 1
                struct.pack_into("i", self._mem, (slot + 1) * 4, back)
                return back
            struct.pack_into("i", self._mem, slot * 4, front + 1)
            return front
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)

    def load(self, from_back: bool) -> int | None:
        return self._claim(0, from_back)

    def run(self, from_back: bool, limit: int = 0) -> int | None:
        """The next chunk to run; the child passes `limit` (the first chunk it loaded): it holds no others."""
        return self._claim(2, from_back, limit)

    def boundary(self) -> int:
        """Once this process stops claiming chunks to load: chunks below this one were loaded here, the rest by
        the child."""
        return int(struct.unpack_from("i", self._mem, 0)[0])


def scan_json(
    files: list[tuple[str, str | None]],
    max_file_bytes: int,
    controls: list[Control],
    exceptions: Any,
    exclude_namespaces: Iterable[str],
) -> ScanResult | None:
    """The two-process scan, or None when it does not apply (stdin, repeated names, a failed child)."""
    names = [shown for shown, _ in files]
    if any(path is None for _, path in files) or len(set(names)) != len(names) or len(files) < 2:
        return None
    skip_ns = tuple(exclude_namespaces)
    chunks = _chunks(files)
    index = {shown: i for i, shown in enumerate(names)}
    per_object = [c for c in controls if c.shape != "snapshot"]
    cross = [c for c in controls if c.shape == "snapshot"]

    try:
        claims = _Claims(len(chunks))
        spools = (_spool_file(), _spool_file(), _spool_file())  # objects, rendered findings, the rest of the results
        read_fd, write_fd = os.pipe()  # one byte per step done; 0 bytes: the child failed
    except OSError:
        return None
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(read_fd)
            with gc_paused():
                _child(chunks, claims, spools, write_fd, max_file_bytes, index, per_object, exceptions, skip_ns)
            status = 0
        finally:
            os._exit(status)

    os.close(write_fd)
    try:
        with gc_paused():
            return _parent(files, chunks, claims, spools, read_fd, max_file_bytes, index, controls, per_object, cross,
                           exceptions, skip_ns)
    finally:
        os.close(read_fd)
        for spool in spools:
            spool.close()
        claims.close()
        os.waitpid(pid, 0)


def _child(chunks: list[list[tuple[str, str | None]]], claims: _Claims, spools: tuple[Any, Any, Any], write_fd: int,
           max_file_bytes: int, index: dict[str, int], per_object: list[Control], exceptions: Any,
           skip_ns: tuple[str, ...]) -> None:
    loaded: dict[int, list[Resource]] = {}
    handed: dict[int, tuple[list[Handed], list[tuple[str, str]], list[tuple[str, str]]]] = {}
    while (i := claims.load(from_back=True)) is not None:
        result = load_paths((), max_file_bytes=max_file_bytes, files=chunks[i], objects_only=True)
        loaded[i] = result.resources
        handed[i] = ([_handed_over(r) for r in result.resources], [(e.file, e.message) for e in result.errors],
                     [(e.file, e.message) for e in result.skipped])
    _spool(spools[0], handed)
    os.write(write_fd, b"o")
    limit = claims.boundary()
    results: dict[int, ChunkResult] = {}
    while (i := claims.run(from_back=True, limit=limit)) is not None:
        results[i] = _run_chunk(loaded[i], index, per_object, exceptions, skip_ns, blocks=spools[1])
    spools[1].flush()
    _spool(spools[2], results)
    os.write(write_fd, b"f")


def _parent(files: list[tuple[str, str | None]], chunks: list[list[tuple[str, str | None]]], claims: _Claims,
            spools: tuple[Any, Any, Any], read_fd: int, max_file_bytes: int, index: dict[str, int],
            controls: list[Control], per_object: list[Control], cross: list[Control], exceptions: Any,
            skip_ns: tuple[str, ...]) -> ScanResult | None:
    resources: dict[int, list[Resource]] = {}
    errors: list[InputError] = []
    skipped: list[InputError] = []
    # This process loads only its share, then runs those chunks while the child loads the rest; the child can
    # run only what it loaded, this process can run anything once the objects are handed over.
    for _ in range(max(1, round(len(chunks) * PARENT_LOADS))):
        i = claims.load(from_back=False)
        if i is None:
            break
        result = load_paths((), max_file_bytes=max_file_bytes, files=chunks[i], objects_only=True)
        resources[i] = result.resources
        errors += result.errors
        skipped += result.skipped
    boundary = claims.boundary()
    received = False
    cross_report: Report | None = None
    results: dict[int, ChunkResult] = {}
    while True:
        # Take the child's objects as soon as they are there (or when a chunk it loaded comes up), so the
        # cross-object controls run while the child is still busy with its chunks.
        i = claims.run(from_back=False)
        if not received and (i is None or i >= boundary or _ready(read_fd)):
            if os.read(read_fd, 1) != b"o":
                return None
            received = True
            for j, (handed, failed, passed_over) in _unspool(spools[0]).items():
                resources[j] = [_received(h) for h in handed]
                errors += [InputError(file, message) for file, message in failed]
                skipped += [InputError(file, message) for file, message in passed_over]
            if set(resources) != set(range(len(chunks))):
                return None
            if cross:
                cross_report = _run_cross(files, cross, exceptions, skip_ns, resources)
                if cross_report is None:
                    return None
        if i is None:
            break
        results[i] = _run_chunk(resources[i], index, per_object, exceptions, skip_ns)
    if os.read(read_fd, 1) != b"f":
        return None
    theirs: dict[int, ChunkResult] = _unspool(spools[2])
    _map_blocks(theirs, spools[1])
    results.update(theirs)
    if set(results) != set(range(len(chunks))):
        return None
    objects = sum(len(r) for r in resources.values())
    notes: list[str] = []
    if exceptions is not None:  # over every object in load order, as the serial run loop does
        notes = [*exceptions.notes, *exceptions.inline_notes(r for i in range(len(chunks)) for r in resources[i])]
    unassessed = unassessed_kinds((r for i in range(len(chunks)) for r in resources[i]), frozenset(skip_ns))
    return _assemble(files, controls, exceptions, [results[i] for i in range(len(chunks))], objects, errors,
                     cross_report, notes, skipped, unassessed)


def _ready(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def _chunks(files: list[tuple[str, str | None]]) -> list[list[tuple[str, str | None]]]:
    """The files sorted by shown name, cut into up to CHUNKS contiguous runs of about equal weight (bytes, plus
    a little per file for opening it)."""
    weight: dict[str, int] = {}
    for shown, path in files:
        try:
            weight[shown] = _PER_FILE + (os.path.getsize(path) if path is not None else 0)
        except OSError:
            weight[shown] = _PER_FILE
    ordered = sorted(files, key=lambda f: f[0])
    n = min(CHUNKS, len(ordered))
    total = sum(weight.values())
    chunks: list[list[tuple[str, str | None]]] = [[] for _ in range(n)]
    taken = 0
    for pos, f in enumerate(ordered):
        # By weight, but never ahead of the files (every chunk gets one) nor so far behind that the files left
        # could not give each remaining chunk one.
        chunks[max(min(n - 1, taken * n // total, pos), n - (len(ordered) - pos))].append(f)
        taken += weight[f[0]]
    return [c for c in chunks if c]


def _spool_file() -> Any:
    """A file in memory (memfd) where the system has it, else a temporary file: the child's output passes
    through it once, and the parent maps it instead of reading it back."""
    try:
        return open(os.memfd_create("kubeward-scan", os.MFD_CLOEXEC), "w+b")
    except (AttributeError, OSError):
        return tempfile.TemporaryFile()


def _map_blocks(results: dict[int, ChunkResult], spool: Any) -> None:
    """Turn the child's (offset, length) block references into views of the mapped spool: its findings reach the
    output without a copy in this process."""
    size = os.fstat(spool.fileno()).st_size
    view = memoryview(mmap.mmap(spool.fileno(), size, access=mmap.ACCESS_READ)) if size else memoryview(b"")
    for controls in results.values():
        for cid, (evaluated, failed, count, (start, length), silenced) in controls.items():
            controls[cid] = (evaluated, failed, count, view[start:start + length], silenced)


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
        return marshal.loads(spool.read())  # marshal.load on a file reads it piece by piece: several times slower
    return pickle.load(spool)  # streamed: the pickle itself is never held beside what it holds


def _handed_over(r: Resource) -> Handed:
    """An object for the parent: its key lines flattened here, where their ids are valid (kept on the object too,
    so this process's own controls reuse them)."""
    return (r.obj, r.file, r.line, r.pointer_lines())


def _received(handed: Handed) -> Resource:
    obj, file, line, lines = handed
    return Resource.with_pointer_lines(obj, file=file, line=line, lines=lines)


def _run_chunk(resources: list[Resource], index: dict[str, int], controls: list[Control], exceptions: Any,
               skip_ns: tuple[str, ...], blocks: Any = None) -> ChunkResult:
    """One chunk's per-object controls, rendered. With `blocks` (the child) each control's findings are written
    there and the result holds (offset, length) instead of the bytes."""
    snapshot = Snapshot(resources)
    report = run(snapshot, controls, exceptions, exclude_namespaces=skip_ns)
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
    out: ChunkResult = {}
    parts = Parts()  # an object's and a location's bytes, shared by its findings of every control
    for cid, result in report.controls.items():
        mine = found.get(cid, [])
        silenced = [
            ((kinds_of[cid].index(f.object.kind) if f.object.kind in kinds_of[cid] else -1, *position[id(f.object)]),
             item_bytes([f], parts))
            for f in suppressed.get(cid, ())
        ]
        rendered: Any = item_bytes(mine, parts)
        if blocks is not None:
            offset = blocks.tell()
            blocks.write(rendered)
            rendered = (offset, len(rendered))
        out[cid] = (result.evaluated, result.failed, len(mine), rendered, silenced)
    return out


def _run_cross(files: list[tuple[str, str | None]], cross: list[Control], exceptions: Any, skip_ns: tuple[str, ...],
               resources: dict[int, list[Resource]]) -> Report | None:
    """The cross-object controls over every object, in the order the serial path loads them."""
    by_file: dict[str, list[Resource]] = {}
    for chunk in resources.values():
        for r in chunk:
            by_file.setdefault(r.file or "", []).append(r)
    if not set(by_file) <= {shown for shown, _ in files}:
        return None
    whole = Snapshot([r for shown, _ in files for r in by_file.get(shown, ())])
    return run(whole, cross, exceptions, exclude_namespaces=skip_ns)


def _assemble(
    files: list[tuple[str, str | None]],
    controls: list[Control],
    exceptions: Any,
    chunks: list[ChunkResult],
    objects: int,
    input_errors: list[InputError],
    cross_report: Report | None,
    notes: list[str],
    input_skipped: list[InputError],
    unassessed: Iterable[NotAssessed] = (),
) -> ScanResult | None:
    from .scan import ScanResult

    errors = _in_file_order(files, input_errors)
    skipped = _in_file_order(files, input_skipped)
    if errors is None or skipped is None:
        return None
    if cross_report is not None and cross_report.objects != objects:
        return None
    cross_found: dict[str, list[Finding]] = {}
    cross_silenced: dict[str, list[Finding]] = {}
    if cross_report is not None:
        for f in cross_report.findings:
            cross_found.setdefault(f.control.id, []).append(f)
        for f in cross_report.suppressed:
            cross_silenced.setdefault(f.control.id, []).append(f)

    report = Report(objects=objects, findings=[], errors=errors, exception_notes=notes,
                    not_assessed=list(unassessed), skipped=skipped)
    if exceptions is not None:
        report.expired_exceptions = list(exceptions.expired)
    blocks: list[tuple[tuple[int, str], list[Any]]] = []
    suppressed: list[bytes] = []
    tallies: list[tuple[Severity, int]] = []  # (severity, findings) of each control with findings
    shared = Parts()
    for c in controls:
        meta = c.meta
        if c.shape == "snapshot":
            if cross_report is None:
                return None
            result = cross_report.controls[meta.id]
            mine = cross_found.get(meta.id, [])
            count, rendered = len(mine), [item_bytes(mine, shared)]
            suppressed.extend(item_bytes([f], shared) for f in cross_silenced.get(meta.id, ()))
            report.controls[meta.id] = ControlResult(meta, result.evaluated, result.failed)
        else:
            parts = [chunk[meta.id] for chunk in chunks]
            count = sum(p[2] for p in parts)
            rendered = [p[3] for p in parts]
            silenced = [s for p in parts for s in p[4]]
            silenced.sort(key=lambda s: s[0])  # stable: one object's findings keep the order the control gave
            suppressed.extend(s[1] for s in silenced)
            report.controls[meta.id] = ControlResult(meta, sum(p[0] for p in parts), sum(p[1] for p in parts))
        if count:
            blocks.append(((-meta.severity, meta.id), rendered))
            tallies.append((meta.severity, count))
    blocks.sort(key=lambda b: b[0])
    counts = (sum(n for _, n in tallies), count_by_severity(tallies), len(suppressed))
    data = render_spliced(report, counts, [block for _, rendered in blocks for block in rendered], suppressed)
    return ScanResult(objects, errors, report.expired_exceptions, notes, frozenset(s for s, _ in tallies),
                      skipped=skipped, rendered_json=data, counts=counts)


def _in_file_order(files: list[tuple[str, str | None]], found: list[InputError]) -> list[InputError] | None:
    """Errors or skipped documents in the serial order: file by file, as the files were listed (None: a file
    that was not listed, which the serial path must handle)."""
    of: dict[str, list[InputError]] = {}
    for e in found:
        of.setdefault(e.file, []).append(e)
    if not set(of) <= {shown for shown, _ in files}:
        return None
    return [e for shown, _ in files for e in of.get(shown, ())]
