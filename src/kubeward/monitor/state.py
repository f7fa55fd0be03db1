"""The monitor's picture of the cluster and its incremental evaluation.

`ClusterState` holds the objects the watches keep current (per resource type, keyed by namespace and name, each
with its place in a scan's order) and what changed since the last evaluation. `Incremental` makes the report: a
per-object control judges only an object version it has not seen, and the Findings it yields (the exceptions
asked once) are patched into that control's block, kept in the run loop's order; a cross-object (snapshot)
control is re-run only when a kind it read last time changed, in `lane` mode in a thread of its own. What a
snapshot control reads is recorded while it runs (`TracedSnapshot`), not declared: a control's output is a
function of what it read, so if none of that changed, running it again would read the same and yield the same.
The report equals a full scan's of the same objects (the cross-object part once the lane caught up);
tests/unit/test_monitor_state.py checks that over random change sequences.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ..controls.registry import assessed_kinds, findings_of, place_in_control, unassessed_kinds
from ..findings import ControlResult, Finding, NotAssessed, ObjectRef, Report
from ..gcpause import gc_paused
from ..resource import POD_KINDS, Resource
from ..snapshot import Changes, Layout, Snapshot
from ..sources.cluster import ClusterSnapshot, ResourceType

if TYPE_CHECKING:
    from ..controls.registry import Control
    from ..scan import Plan, ScanOptions

T = TypeVar("T")
ALL = "*"  # a read that any change can alter (every object)
NAMESPACES = "@namespaces"  # the set of namespaces (named by a Namespace or used by an object) changed


def in_ns(ns: str) -> str:
    """The read of every object in one namespace, whatever its kind."""
    return f"@ns:{ns}"


def of_value(key: str) -> str:
    """The read of a derived value built `by_value`: changed only when the value itself changed."""
    return f"@value:{key}"

Hit = tuple[Resource, str, str]
FindingKeyT = tuple[str, str, str, str | None, str, str, str]  # control, apiVersion, kind, ns, name, path, message


def finding_key(f: Finding) -> FindingKeyT:
    """What makes a finding the same finding in two evaluations (new / resolved events, report results)."""
    o = f.object
    return (f.control.id, o.api_version, o.kind, o.namespace, o.name, f.path, f.message)


_RESOURCES_SLOT: Any = Snapshot.__dict__["resources"]  # the base class's slot, shadowed by TracedSnapshot.resources


class TracedSnapshot(ClusterSnapshot):
    """A ClusterSnapshot that records which kinds a control reads while `reading()` is active."""

    __slots__ = ("_by_value", "_changes", "_derived_reads", "_previous", "_stack")

    def __init__(self, resources: Iterable[Resource], *, context: str, coverage: tuple[int, int],
                 not_assessed: Iterable[NotAssessed] = (), layout: Layout | None = None) -> None:
        self._stack: list[set[str]] = []
        self._derived_reads: dict[str, set[str]] = {}
        self._by_value: dict[str, Callable[[Snapshot], Any]] = {}  # derived values built by_value: their builds
        self._previous: dict[str, tuple[Any, frozenset[str]]] = {}  # stale values of the snapshot before
        self._changes = Changes()
        super().__init__(resources, context=context, coverage=coverage, not_assessed=not_assessed, layout=layout)

    def seed(self, carried: dict[str, tuple[Any, frozenset[str]]]) -> None:
        """Derived values an earlier snapshot built whose reads did not change since: the same inputs, so the
        same value (they hold objects and data, never the snapshot they were built from)."""
        for key, (value, reads) in carried.items():
            self._derived[key] = value
            self._derived_reads[key] = set(reads)

    def prime(self, previous: dict[str, tuple[Any, frozenset[str]]], changes: Changes) -> None:
        """Derived values of the snapshot before whose reads changed, and what changed since it: a value
        built with an `update` is patched from its earlier self rather than built again. Called again, it
        replaces the values left (the lane primes again after rebuilding the by_value values)."""
        self._previous, self._changes = dict(previous), changes

    def carried(self) -> dict[str, tuple[Any, frozenset[str]]]:
        return {k: (self._derived[k], frozenset(r)) for k, r in self._derived_reads.items() if k in self._derived}

    def _read(self, *kinds: str) -> None:
        for s in self._stack:
            s.update(kinds)

    def reading(self, run: Callable[[], T]) -> tuple[T, frozenset[str]]:
        """`run()`'s result and every kind it read (ALL when it read something any change can alter)."""
        self._stack.append(set())
        try:
            out = run()
        finally:
            reads = self._stack.pop()
        self._read(*reads)
        return out, frozenset(reads)

    @property
    def resources(self) -> tuple[Resource, ...]:
        if self._stack:
            self._read(ALL)
        return _RESOURCES_SLOT.__get__(self)

    @resources.setter
    def resources(self, value: tuple[Resource, ...]) -> None:
        _RESOURCES_SLOT.__set__(self, value)

    def derived(self, key: str, build: Callable[[Snapshot], T], *, by_value: bool = False,
                update: Callable[[T, Snapshot, Changes], T | None] | None = None) -> T:
        # A by_value value's readers record the value as their read, not what it was built from: the monitor
        # rebuilds it first when those inputs change and marks it changed only if it is no longer equal.
        if key not in self._derived_reads:
            before = self._previous.pop(key, None)
            outer, self._stack = self._stack, [set()]  # the reads go to this value alone (_read fills every level)
            try:
                value = update(before[0], self, self._changes) if update is not None and before is not None \
                    else None
                if value is None:
                    value = super().derived(key, build)
                else:  # a patch may read less than a build: the earlier build's reads stay the value's
                    self._derived[key] = value
                    self._stack[0].update(before[1] if before is not None else ())
            finally:
                reads, self._stack = self._stack[0], outer
            self._derived_reads[key] = reads
            if by_value:
                self._by_value[key] = build
                self._read(of_value(key))
            else:
                self._read(*reads)
            return value
        if by_value:
            self._read(of_value(key))
        else:
            self._read(*self._derived_reads[key])
        return super().derived(key, build)

    def refresh(self, key: str, build: Callable[[Snapshot], Any], before: Any) -> bool:
        """Build the by_value value `key` on this snapshot; whether it differs from `before`."""
        return bool(self.derived(key, build, by_value=True) != before)

    def __len__(self) -> int:
        if self._stack:
            self._read(ALL)
        return super().__len__()

    def of_kind(self, *kinds: str) -> list[Resource]:
        if self._stack:
            self._read(*kinds)
        return super().of_kind(*kinds)

    def kinds(self) -> set[str]:
        if self._stack:
            self._read(ALL)
        return super().kinds()

    def in_namespace(self, ns: str) -> list[Resource]:
        if self._stack:
            self._read(in_ns(ns))
        return super().in_namespace(ns)

    def get(self, kind: str, namespace: str | None, name: str) -> Resource | None:
        if self._stack:
            self._read(kind)
        return super().get(kind, namespace, name)

    def workloads(self) -> Any:
        if self._stack:
            self._read(*POD_KINDS)
        return super().workloads()

    def namespaces(self) -> list[str]:
        if self._stack:
            self._read(NAMESPACES, "Namespace")
        return super().namespaces()

    def namespace_labels(self, ns: str) -> dict[str, Any]:
        if self._stack:
            self._read("Namespace")
        return super().namespace_labels(ns)


@dataclass(slots=True)
class TypeState:
    rtype: ResourceType
    objects: dict[tuple[str | None, str], Resource] = field(default_factory=dict)
    # each held key's place in `objects` (increasing in dict order): a scan judges objects in that order
    place: dict[tuple[str | None, str], int] = field(default_factory=dict)
    status: str = "pending"  # pending (never listed) | read | absent (optional API not installed) | unreadable
    reason: str = ""


class ClusterState:
    """The objects of every watched type as the watches last reported them, and what changed since `take()`."""

    def __init__(self, types: Sequence[ResourceType], context: str) -> None:
        self.context = context
        self.types: dict[str, TypeState] = {}
        for t in types:
            self.types.setdefault(t.path, TypeState(t))
        # one type per kind (SCAN_TYPES): the kind names the type an object is held in
        self._path_of = {ts.rtype.kind: path for path, ts in self.types.items()}
        self._turn = {ts.rtype.kind: i for i, ts in enumerate(self.types.values())}
        self.changed_kinds: set[str] = set()  # kinds, in_ns(ns) of every namespace touched, NAMESPACES
        self.dropped: list[Resource] = []  # versions no longer held (replaced or deleted): their hits can go
        self.changed_scopes: set[str | None] = set()  # namespaces (None: cluster-scoped) with an object changed
        self._ns_use: dict[str, int] = {}  # objects per namespace: when one appears or goes, NAMESPACES changed
        self.added: list[Resource] = []  # versions newly held (some may be dropped again before take())
        self.reordered: set[str] = set()  # kinds a relist put in another order (every place renumbered)
        self.regrouped: set[str] = set()  # kinds with an object that came under a new key or went
        self._places = 0

    def _changed(self, res: Resource, delta: int = 0) -> None:
        self.changed_kinds.add(res.kind)
        if delta:
            self.regrouped.add(res.kind)
        ns = res.namespace
        self.changed_scopes.add(ns)
        if ns is None:
            return
        self.changed_kinds.add(in_ns(ns))
        if delta:
            n = self._ns_use.get(ns, 0) + delta
            if n <= 0:
                self._ns_use.pop(ns, None)
                self.changed_kinds.add(NAMESPACES)
            else:
                if n == 1 and delta > 0:
                    self.changed_kinds.add(NAMESPACES)
                self._ns_use[ns] = n

    # -- what the watches report ---------------------------------------------------------------------------
    def replace(self, rtype: ResourceType, items: Iterable[dict[str, Any]]) -> None:
        """A (re)list: the type now holds exactly `items`; objects missing from it were deleted meanwhile."""
        ts = self.types[rtype.path]
        old, new = ts.objects, {}
        added = self.added
        for obj in items:
            res = Resource(obj, cluster=self.context)
            key = (res.namespace, res.name)
            before = old.get(key)
            if before is not None and _same_version(before.obj, obj):
                new[key] = before  # unchanged: keep the judged object
            else:
                new[key] = res
                res.ref()  # made on the loop's thread, as in apply()
                added.append(res)
                self._changed(res, 0 if before is not None else 1)
                if before is not None:
                    self.dropped.append(before)
                    if before.api_version != res.api_version:  # as in apply()
                        self.regrouped.add(res.kind)
        for key, res in old.items():
            if key not in new:
                self._changed(res, -1)
                self.dropped.append(res)
        if ts.status != "read":
            self.changed_scopes.add(None)  # no longer among the types not assessed
        ts.objects, ts.status, ts.reason = new, "read", ""
        self._renumber(ts, old)

    def _renumber(self, ts: TypeState, old: dict[tuple[str | None, str], Resource]) -> None:
        """Places after a relist: kept when the objects still held keep their order and the new ones come after
        them (a relist of what the watch delivered), else every object numbered afresh and the kind reordered."""
        place, last, fresh = ts.place, -1, False
        for key in ts.objects:
            at = place.get(key) if key in old else None
            if at is None:
                fresh = True
            elif fresh or at < last:
                break
            else:
                last = at
        else:
            ts.place = {k: place[k] if k in old and k in place else self._next() for k in ts.objects}
            return
        ts.place = {k: self._next() for k in ts.objects}
        self.reordered.add(ts.rtype.kind)

    def _next(self) -> int:
        self._places += 1
        return self._places

    def apply(self, rtype: ResourceType, event: str, obj: dict[str, Any]) -> None:
        """One watch event: ADDED / MODIFIED put the object, DELETED removes it."""
        ts = self.types[rtype.path]
        obj.setdefault("apiVersion", rtype.group_version)
        obj.setdefault("kind", rtype.kind)
        res = Resource(obj, cluster=self.context)
        key = (res.namespace, res.name)
        if event == "DELETED":
            gone = ts.objects.pop(key, None)
            if gone is not None:
                ts.place.pop(key, None)
                self._changed(gone, -1)
                self.dropped.append(gone)
        else:
            before = ts.objects.get(key)
            self._changed(res, 0 if before is not None else 1)
            if before is not None:
                self.dropped.append(before)
                if before.api_version != res.api_version:  # its ObjectRef is no longer equal
                    self.regrouped.add(res.kind)
            else:
                ts.place[key] = self._next()  # a new key goes last in the dict, and so in a scan's order
            ts.objects[key] = res
            # ref() is a lazy cache, filled here on the loop's thread before a lane run can read the object: else
            # both threads could make one, and Incremental._merge matches findings by its identity
            res.ref()
            self.added.append(res)

    def unreadable(self, rtype: ResourceType, status: int, reason: str) -> None:
        """The type cannot be listed or watched (403, 404, not the API): not assessed, and what was known of it
        is dropped, as a fresh scan would not see it either."""
        ts = self.types[rtype.path]
        absent = status == 404 and rtype.optional
        if not ts.objects and (ts.status, ts.reason) == (("absent", "") if absent else ("unreadable", reason)):
            return  # the same answer as last time: nothing changed
        for res in ts.objects.values():
            self._changed(res, -1)
            self.dropped.append(res)
        ts.objects, ts.place = {}, {}
        self.changed_scopes.add(None)  # the ClusterPolicyReport names the types not assessed
        if absent:
            ts.status, ts.reason = "absent", ""
        else:
            ts.status, ts.reason = "unreadable", reason
        self.changed_kinds.add(rtype.kind)

    # -- what the evaluation reads -------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        """Every type listed at least once (read, absent or refused)."""
        return all(ts.status != "pending" for ts in self.types.values())

    def namespaces(self) -> set[str]:
        """Every namespace some held object is in."""
        return set(self._ns_use)

    def count(self) -> dict[str, int]:
        return {ts.rtype.kind: len(ts.objects) for ts in self.types.values() if ts.status == "read"}

    def not_assessed(self) -> list[NotAssessed]:
        return [NotAssessed(ts.rtype.name, ts.reason or "not listed yet") for ts in self.types.values()
                if ts.status in ("unreadable", "pending")]

    def coverage(self) -> tuple[int, int]:
        read = sum(ts.status == "read" for ts in self.types.values())
        return read, sum(ts.status != "absent" for ts in self.types.values())

    def snapshot(self) -> TracedSnapshot:
        resources = [r for ts in self.types.values() for r in ts.objects.values()]
        return TracedSnapshot(resources, context=self.context, coverage=self.coverage(),
                              not_assessed=self.not_assessed())

    def take(self) -> Taken:
        """What changed since the last call."""
        out = Taken(self.changed_kinds, self.dropped, self.changed_scopes, self.added, self.reordered,
                    self.regrouped)
        self.changed_kinds, self.dropped, self.changed_scopes, self.added = set(), [], set(), []
        self.reordered, self.regrouped = set(), set()
        return out

    def held(self, res: Resource) -> bool:
        """Whether `res` is the version held now (not replaced or deleted since it was added)."""
        ts = self.types.get(self._path_of.get(res.kind, ""))
        return ts is not None and ts.objects.get((res.namespace, res.name)) is res

    def place(self, res: Resource) -> int:
        return self.types[self._path_of[res.kind]].place[res.namespace, res.name]

    def order(self, res: Resource) -> tuple[int, int]:
        """Where a held object comes in snapshot().resources: its type's turn, then its place."""
        return self._turn[res.kind], self.place(res)

    def of_kind(self, kind: str) -> Iterable[Resource]:
        """The held objects of one kind, in a scan's order (ClusterSnapshot.of_kind over snapshot())."""
        ts = self.types.get(self._path_of.get(kind, ""))
        return ts.objects.values() if ts is not None else ()


@dataclass(slots=True)
class Taken:
    kinds: set[str]  # kinds, in_ns(ns) of every namespace touched, NAMESPACES
    dropped: list[Resource]  # versions no longer held (replaced or deleted)
    scopes: set[str | None]  # namespaces (None: cluster-scoped) with an object changed
    added: list[Resource]  # versions newly held (check ClusterState.held: some went again)
    reordered: set[str]  # kinds whose objects a relist numbered afresh
    # kinds with an object under a new key or gone: the others hold the same (namespace, name)s in the same
    # places, each a version whose ObjectRef equals the one before's, so their judged refs stand
    regrouped: set[str]


def _same_version(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same object at the same resourceVersion (a relist of an object the watch already delivered)."""
    va = (a.get("metadata") or {}).get("resourceVersion")
    return bool(va) and va == (b.get("metadata") or {}).get("resourceVersion") and \
        (a.get("metadata") or {}).get("uid") == (b.get("metadata") or {}).get("uid")


@dataclass(slots=True)
class _SnapshotEntry:
    hits: list[Hit]
    reads: frozenset[str]


Key = tuple[str, int, str, str, int, int]  # file, line, path (the run loop's order), kind, place, hit: unique


class _Block:
    """One control's findings in report order: reported ones sorted as the run loop sorts them (place in
    control, then the scan's object order, then the control's yield order), suppressed ones in the scan's
    object order; the reported ones also per namespace, in the same order (the report bodies of a few scopes
    are built without walking every finding). Per-object controls' blocks are patched per object."""

    __slots__ = ("by_ns", "failed", "found", "keys", "skeys", "suppressed")

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self.found: list[Finding] = []
        self.skeys: list[tuple[str, int, int]] = []
        self.suppressed: list[Finding] = []
        self.by_ns: dict[str | None, tuple[list[Key], list[Finding]]] = {}
        self.failed = 0

    @classmethod
    def of(cls, found: list[Finding], suppressed: list[Finding], failed: int) -> _Block:
        """A cross-object control's block, laid out whole (`found` in report order)."""
        block = cls()
        block.found, block.suppressed, block.failed = found, suppressed, failed
        for f in found:
            block.by_ns.setdefault(f.object.namespace, ([], []))[1].append(f)
        return block

    @classmethod
    def laid_out(cls, rows: list[tuple[Key, Finding]], srows: list[tuple[tuple[str, int, int], Finding]],
                 failed: int) -> _Block:
        """A per-object control's block from every object's findings at once (first evaluation, relist)."""
        block = cls()
        rows.sort(key=lambda r: r[0])
        srows.sort(key=lambda r: r[0])
        block.keys = [k for k, _ in rows]
        block.found = [f for _, f in rows]
        block.skeys = [k for k, _ in srows]
        block.suppressed = [f for _, f in srows]
        block.failed = failed
        by_ns = block.by_ns
        for k, f in rows:
            keys, found = by_ns.setdefault(f.object.namespace, ([], []))
            keys.append(k)
            found.append(f)
        return block

    def add(self, kind: str, place: int, found: list[Finding], suppressed: list[Finding]) -> None:
        by_ns = self.by_ns
        for j, f in enumerate(found):
            k = (*place_in_control(f), kind, place, j)
            i = bisect_left(self.keys, k)
            self.keys.insert(i, k)
            self.found.insert(i, f)
            keys, fs = by_ns.setdefault(f.object.namespace, ([], []))
            i = bisect_left(keys, k)
            keys.insert(i, k)
            fs.insert(i, f)
        for j, f in enumerate(suppressed):
            sk = (kind, place, j)
            i = bisect_left(self.skeys, sk)
            self.skeys.insert(i, sk)
            self.suppressed.insert(i, f)
        if found:
            self.failed += 1

    def remove(self, kind: str, place: int, found: list[Finding], suppressed: list[Finding]) -> None:
        by_ns = self.by_ns
        for j, f in enumerate(found):
            k = (*place_in_control(f), kind, place, j)
            i = bisect_left(self.keys, k)
            del self.keys[i], self.found[i]
            ns = f.object.namespace
            keys, fs = by_ns[ns]
            i = bisect_left(keys, k)
            del keys[i], fs[i]
            if not keys:
                del by_ns[ns]
        for j in range(len(suppressed)):
            i = bisect_left(self.skeys, (kind, place, j))
            del self.skeys[i], self.suppressed[i]
        if found:
            self.failed -= 1


@dataclass(slots=True)
class _Judged:
    """One held object version: its place and, per control with hits on it, its (reported, suppressed)
    Findings, the exceptions asked once (they do not change while the monitor runs)."""
    res: Resource
    place: int
    findings: dict[str, tuple[list[Finding], list[Finding]]]


class JudgedRefs(list[ObjectRef]):
    """The objects one kind set judged (Report.evaluated_objects), with their count per namespace kept with
    the list: it is reused while none of its kinds changes, so the report bodies do not count it again."""

    __slots__ = ("_per_ns",)

    def __init__(self, refs: Iterable[ObjectRef], per_ns: dict[str | None, int]) -> None:
        super().__init__(refs)
        self._per_ns = per_ns

    def per_namespace(self) -> dict[str | None, int]:
        return self._per_ns


@dataclass(slots=True)
class _Job:
    """One run of the cross-object lane: the held objects when it started, what changed since the run before."""
    started: float
    resources: list[Resource]
    coverage: tuple[int, int]
    not_assessed: list[NotAssessed]
    changed: set[str]
    layout: list[tuple[str, list[tuple[tuple[str | None, str], Resource]]]]  # the objects by type (Snapshot)
    rerun: dict[str, list[Hit]] = field(default_factory=dict)
    seconds: float | None = None  # how long the run took (written by the lane before `done`, read at the merge)
    cpu: float | None = None  # the lane thread's CPU time for it
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Incremental:
    """The monitor's evaluation: a report equal to a full scan's of the held objects, at a cost that follows
    the change. Per-object controls judge only the object versions added since the last evaluation, and their
    Findings (exceptions asked once per object version) are patched into each control's sorted block;
    cross-object (snapshot) controls re-run only when what they read changed, and in `lane` mode they do so
    in a thread of their own (the cross-object lane), so an object's own findings are reported without
    waiting for them: each lane run starts when the previous one is done, over the objects held then, and its
    results are merged by the next evaluation (`cross_pending()` says one is due). With `lane` off (tests,
    one-shot use) every evaluation is complete."""

    def __init__(self, state: ClusterState, plan: Plan, options: ScanOptions, *, lane: bool = False) -> None:
        from ..controls.registry import Shape

        self.state, self.plan = state, plan
        self.lane = lane
        self._skip_ns = frozenset(options.exclude_namespaces)
        self._exceptions = plan.exceptions
        self._per_kind: dict[str, list[Control]] = {}
        self._object_controls = [c for c in plan.controls if c.shape != Shape.SNAPSHOT]
        self._snapshot_controls = [c for c in plan.controls if c.shape == Shape.SNAPSHOT]
        for c in self._object_controls:
            for k in c.kinds:
                self._per_kind.setdefault(k, []).append(c)
        self._objects: dict[int, _Judged] = {}  # id(resource) -> entry: it holds the object, so the id stays its
        self._blocks: dict[str, _Block] = {c.meta.id: _Block() for c in self._object_controls}
        self._refs: dict[frozenset[str], JudgedRefs] = {}
        self._kind_refs: dict[str, tuple[list[ObjectRef], dict[str | None, int]]] = {}
        # the run loop's order of blocks (severity, highest first, then id)
        self._report_order = [c.meta.id for c in sorted(plan.controls, key=lambda c: (-c.meta.severity, c.meta.id))]
        self._notes: dict[int, tuple[Resource, list[str]]] = {}  # objects whose inline ignore note says something
        self._cross: dict[str, _Block] = {}  # snapshot control -> its findings (laid out whole at each merge)
        self._snapshots: dict[str, _SnapshotEntry] = {}
        self._derived: dict[str, tuple[Any, frozenset[str]]] = {}  # what the last snapshot derived, and its reads
        self._by_value: dict[str, Callable[[Snapshot], Any]] = {}  # the builds of the by_value ones
        self._lane_changed: set[str] = set()  # changed since the last lane run started
        self._lane_before: list[Resource] | None = None  # the objects of the last lane run (its derived values')
        self._job: _Job | None = None
        self._same_path: dict[str, str] = {}
        self._same_message: dict[str, str] = {}
        self.rerun: list[str] = []  # snapshot controls the last evaluation re-ran (merged, in lane mode)
        # scopes (namespaces, None: cluster) whose findings may differ from the evaluation before; None: all
        self.dirty: set[str | None] | None = None
        # the reported findings that came and went in the last evaluation (None: the first, take them all)
        self.delta: tuple[list[Finding], list[Finding]] | None = None
        self.cross_started: float | None = None  # when the lane run merged by the last evaluation started
        self.cross_seconds: float | None = None  # and how long it took (set with it: the lane writes only its job)
        self.cross_cpu: float | None = None  # and the lane thread's CPU time for it
        self._evaluated = False
        self.judged = 0  # objects the last evaluation judged afresh

    # -- the evaluation ------------------------------------------------------------------------------------
    def evaluate(self) -> Report:
        taken = self.state.take()
        first = not self._evaluated
        self.dirty = None if first else set(taken.scopes)
        self._evaluated = True
        added: list[Finding] = []
        removed: list[Finding] = []
        self.rerun, self.judged, self.cross_started = [], 0, None
        self._objects_changed(taken, added, removed)
        self._lane_changed |= taken.kinds
        if self.lane and not first:  # the first report is complete: nothing announced resolved, then new
            job = self._job
            if job is not None and job.done.is_set():
                self._job = None
                self._merge(job, added, removed)
            if self._job is None and self._lane_changed and self._cross_stale(self._lane_changed):
                self._start()
            elif self._job is None:
                self._lane_changed = set()
        elif self._cross_stale(self._lane_changed):
            job = self._new_job()
            self._run_job(job)
            self._merge(job, added, removed)
        else:
            self._lane_changed = set()
        self.delta = None if first else (added, removed)
        return self._report()

    def cross_pending(self) -> bool:
        """A lane run finished and waits to be merged (evaluate() now), or changes wait for one to start."""
        job = self._job
        return job.done.is_set() if job is not None else bool(self._lane_changed)

    def wait_cross(self, timeout: float | None = None) -> bool:
        """Until the lane run in progress is done (tests, benchmarks)."""
        job = self._job
        return job is None or job.done.wait(timeout)

    def _objects_changed(self, taken: Taken, added: list[Finding], removed: list[Finding]) -> None:
        state, blocks, objects = self.state, self._blocks, self._objects
        skip = self._skip_ns
        fresh = list({id(r): r for r in taken.added if id(r) not in objects and state.held(r)}.values())
        # blocks laid out afresh rather than patched: those of a kind a relist renumbered, and every one when
        # most objects are new (the first evaluation): one sort instead of an insertion per finding
        relaid = {c.meta.id for k in taken.reordered for c in self._per_kind.get(k, ())}
        if len(fresh) > max(1000, len(objects) // 4):
            relaid = set(blocks)
        for res in taken.dropped:
            entry = objects.pop(id(res), None)
            self._notes.pop(id(res), None)
            if entry is None:
                continue
            for cid, (found, silenced) in entry.findings.items():
                if cid not in relaid:
                    blocks[cid].remove(res.kind, entry.place, found, silenced)
                    removed += found
        judged = []
        for res in fresh:
            self._note(res)
            if res.kind in self._per_kind and not (skip and res.namespace in skip):
                judged.append(self._judge(res))
        for kind in taken.reordered:
            for res in state.of_kind(kind):
                entry = objects.get(id(res))
                if entry is not None:
                    entry.place = state.place(res)
        for c in self._object_controls:
            cid = c.meta.id
            if cid not in relaid:
                continue
            removed += blocks[cid].found
            rows: list[tuple[Key, Finding]] = []
            srows: list[tuple[tuple[str, int, int], Finding]] = []
            failed = 0
            for k in sorted(c.kinds):
                for res in state.of_kind(k):
                    entry = objects.get(id(res))
                    if entry is None or cid not in entry.findings:
                        continue
                    found, silenced = entry.findings[cid]
                    place = entry.place
                    rows += [((*place_in_control(f), k, place, j), f) for j, f in enumerate(found)]
                    srows += [((k, place, j), f) for j, f in enumerate(silenced)]
                    failed += bool(found)
            blocks[cid] = block = _Block.laid_out(rows, srows, failed)
            added += block.found
        for entry in judged:
            kind = entry.res.kind
            for cid, (found, silenced) in entry.findings.items():
                if cid not in relaid:
                    blocks[cid].add(kind, entry.place, found, silenced)
                    added += found
        stale = taken.reordered | taken.regrouped
        for kind in stale & self._kind_refs.keys():
            del self._kind_refs[kind]
        for kinds in [k for k in self._refs if k & stale]:
            del self._refs[kinds]

    def _judge(self, res: Resource) -> _Judged:
        """Every per-object control's Findings on `res`, judged once per version of the object."""
        from ..controls.registry import Shape

        exceptions: Any = self._exceptions
        if exceptions is not None and not exceptions.may_silence(res):
            exceptions = None
        if len(self._same_path) > 100_000 or len(self._same_message) > 100_000:
            self._same_path, self._same_message = {}, {}  # only shared strings: a long run must not grow them
        path_of, message_of = self._same_path.setdefault, self._same_message.setdefault
        out: dict[str, tuple[list[Finding], list[Finding]]] = {}
        pod = None
        for c in self._per_kind[res.kind]:
            if c.shape == Shape.POD:
                pod = pod or res.pod()
                if pod is None:
                    continue
                hits = [(res, p, m) for p, m in c.func(pod)]
            else:
                hits = [(res, p, m) for p, m in c.func(res)]
            if hits:
                out[c.meta.id] = findings_of(c.meta, hits, exceptions, path_of, message_of)
        entry = self._objects[id(res)] = _Judged(res, self.state.place(res), out)
        self.judged += 1
        return entry

    def _note(self, res: Resource) -> None:
        if self._exceptions is not None:
            notes = self._exceptions.inline_notes([res])
            if notes:
                self._notes[id(res)] = (res, notes)

    # -- the cross-object controls -------------------------------------------------------------------------
    def _cross_stale(self, changed: set[str]) -> bool:
        """Whether some snapshot control (or a derived value one reads) may read differently now."""
        if not changed:
            return False
        if any(c.meta.id not in self._snapshots for c in self._snapshot_controls):
            return True
        reads = [e.reads for e in self._snapshots.values()] + [r for _, r in self._derived.values()]
        return any(ALL in r or r & changed for r in reads)

    def _new_job(self) -> _Job:
        state = self.state
        layout = [(ts.rtype.kind, list(ts.objects.items())) for ts in state.types.values()]
        job = _Job(time.monotonic(), [r for _, items in layout for _, r in items], state.coverage(),
                   state.not_assessed(), self._lane_changed, layout)
        self._lane_changed = set()
        return job

    def _start(self) -> None:
        job = self._job = self._new_job()

        def run() -> None:
            try:
                self._run_job(job)
            except BaseException as e:  # handed to the evaluation that merges it
                job.error = e
            finally:
                job.done.set()

        threading.Thread(target=run, name="kubeward-cross-object", daemon=True).start()

    def _run_job(self, job: _Job) -> None:
        """Re-run the snapshot controls whose reads changed, over a snapshot of the job's objects. Touches only
        the lane's own state (entries, derived values), never what the evaluations read. The cyclic collector
        is paused meanwhile, as for a scan (registry.run): the engines' builds allocate hundreds of thousands
        of objects, and the collections they would trigger walk the whole heap, pausing the evaluations too."""
        began = time.thread_time()
        with gc_paused():
            self._run_job_now(job)
        job.cpu = time.thread_time() - began

    def _run_job_now(self, job: _Job) -> None:
        snap = TracedSnapshot(job.resources, context=self.state.context, coverage=job.coverage,
                              not_assessed=job.not_assessed, layout=job.layout)
        changed = job.changed

        def stale(reads: frozenset[str]) -> bool:
            return ALL in reads or bool(reads & changed)

        diff = _changes(self._lane_before, job.resources) if self._lane_before is not None else None
        if diff is not None:  # first the values stale now, so that a by_value value's build may patch one it reads
            snap.prime({k: v for k, v in self._derived.items() if stale(v[1])}, diff)
        # by_value values whose inputs changed are rebuilt first: only if one is no longer equal do its readers
        # count as changed (a pod edit that keeps every pod's service account leaves the RBAC paths alone)
        for key, build in self._by_value.items():
            held = self._derived.get(key)
            if held is not None and stale(held[1]) and snap.refresh(key, build, held[0]):
                changed.add(of_value(key))
        snap.seed({k: v for k, v in self._derived.items() if not stale(v[1]) and k not in snap._derived})
        if diff is not None:  # then with those stale since, through a by_value value no longer equal
            snap.prime({k: v for k, v in self._derived.items() if stale(v[1]) and k not in snap._derived}, diff)
        try:
            for c in self._snapshot_controls:
                cid = c.meta.id
                entry = self._snapshots.get(cid)
                if entry is not None and not (ALL in entry.reads and changed) and not (entry.reads & changed):
                    continue
                hits, reads = snap.reading(partial(_hits_of, c, snap))
                self._snapshots[cid] = _SnapshotEntry(hits, reads)
                job.rerun[cid] = hits
        finally:
            self._derived = snap.carried()  # each valid for this run's objects: the next run's `before`
            self._lane_before = job.resources
            self._by_value.update(snap._by_value)
        job.seconds = time.monotonic() - job.started

    def _merge(self, job: _Job, added: list[Finding], removed: list[Finding]) -> None:
        """The lane run's results into the report: the Findings of each control it re-ran. A hit on the same
        object version as before keeps its Finding (and the exceptions' verdict on it), so the delta, and the
        scopes whose reports are rebuilt, are those of the hits that came or went."""
        if job.error is not None:
            raise job.error
        skip, exceptions = self._skip_ns, self._exceptions
        by_id = {c.meta.id: c for c in self._snapshot_controls}
        for cid, hits in job.rerun.items():
            self.rerun.append(cid)
            if skip:
                hits = [h for h in hits if h[0].namespace not in skip]
            old = self._cross.get(cid)
            kept: dict[tuple[int, str, str], list[Finding]] = {}
            if old is not None:
                for f in (*old.found, *old.suppressed):
                    kept.setdefault((id(f.object), f.path, f.message), []).append(f)
            new_hits = [h for h in hits if not kept.get((id(h[0].ref()), h[1], h[2]))]
            # the verdicts on kept Findings stand (reason_for depends on the finding and its object only)
            here: Any = exceptions
            if here is not None and not any(here.may_silence(r) for r in {id(h[0]): h[0] for h in new_hits}.values()):
                here = None
            meta, path_of, message_of = by_id[cid].meta, self._same_path.setdefault, self._same_message.setdefault
            found: list[Finding] = []
            silenced: list[Finding] = []
            fresh: list[Finding] = []
            fresh_silenced: list[Finding] = []
            for h in hits:  # in the control's yield order, as the run loop takes them
                same = kept.get((id(h[0].ref()), h[1], h[2]))
                if same:
                    f = same.pop(0)
                    (silenced if f.suppressed_by is not None else found).append(f)
                else:
                    made, made_silenced = findings_of(meta, [h], here, path_of, message_of)
                    found += made
                    fresh += made
                    silenced += made_silenced
                    fresh_silenced += made_silenced
            gone = [f for fs in kept.values() for f in fs]
            if old is not None and not fresh and not fresh_silenced and not gone:
                continue  # the same hits
            found.sort(key=place_in_control)  # stable: ties keep the yield order
            added += fresh
            removed += [f for f in gone if f.suppressed_by is None]
            if self.dirty is not None:
                self.dirty.update(f.object.namespace for f in (*fresh, *fresh_silenced, *gone))
            self._cross[cid] = _Block.of(found, silenced, len({id(f.object) for f in found}))
        self.cross_started, self.cross_seconds, self.cross_cpu = job.started, job.seconds, job.cpu

    # -- the report bodies (policyreport.ScopeIndex) -------------------------------------------------------
    def finding_scopes(self) -> set[str | None]:
        """The namespaces (None: cluster-scoped) of every finding of the last report."""
        out: set[str | None] = set()
        for block in (*self._blocks.values(), *self._cross.values()):
            out.update(block.by_ns)
        return out

    def in_scopes(self, wanted: set[str | None]) -> dict[str | None, list[Finding]]:
        """The last report's findings in each wanted scope, in report order, without walking the others."""
        out: dict[str | None, list[Finding]] = {}
        blocks = [b for cid in self._report_order if (b := self._blocks.get(cid) or self._cross.get(cid))]
        for scope in wanted:
            found: list[Finding] = []
            for block in blocks:
                part = block.by_ns.get(scope)
                if part:
                    found += part[1]
            if found:
                out[scope] = found
        return out

    # -- the report ----------------------------------------------------------------------------------------
    def _targets(self, kinds: frozenset[str]) -> JudgedRefs:
        """The refs a kind set's controls judged (Report.evaluated_objects), from lists kept per kind."""
        refs = self._refs.get(kinds)
        if refs is None:
            per_ns: dict[str | None, int] = {}
            refs = self._refs[kinds] = JudgedRefs((), per_ns)
            for k in sorted(kinds):
                of_kind, counts = self._of_kind(k)
                refs += of_kind
                for ns, n in counts.items():
                    per_ns[ns] = per_ns.get(ns, 0) + n
        return refs

    def _of_kind(self, kind: str) -> tuple[list[ObjectRef], dict[str | None, int]]:
        kept = self._kind_refs.get(kind)
        if kept is None:
            skip = self._skip_ns
            refs = [r.ref() for r in self.state.of_kind(kind) if not skip or r.namespace not in skip]
            counts: dict[str | None, int] = {}
            for ref in refs:
                counts[ref.namespace] = counts.get(ref.namespace, 0) + 1
            kept = self._kind_refs[kind] = (refs, counts)
        return kept

    def _report(self) -> Report:
        """The run loop's report (registry._run, then scan.judge) from the blocks kept: same findings, order,
        counts, suppressed and notes as a full scan's of the held objects."""
        state, exceptions = self.state, self._exceptions
        held = [ts for ts in state.types.values() if ts.status == "read"]
        known = assessed_kinds()
        report = Report(objects=sum(len(ts.objects) for ts in held), findings=[],
                        not_assessed=[*state.not_assessed(), *unassessed_kinds(
                            [r for ts in held if ts.rtype.kind not in known for r in ts.objects.values()],
                            self._skip_ns)])
        blocks: list[tuple[tuple[int, str], list[Finding]]] = []
        for c in self.plan.controls:
            meta = c.meta
            refs = self._targets(c.kinds)
            result = report.controls[meta.id] = ControlResult(meta, evaluated=len(refs))
            report.evaluated_objects[meta.id] = refs
            block = self._blocks.get(meta.id) or self._cross.get(meta.id) or _EMPTY
            found, silenced, result.failed = block.found, block.suppressed, block.failed
            report.suppressed += silenced
            if found:
                blocks.append(((-meta.severity, meta.id), found))
        blocks.sort(key=lambda b: b[0])
        for _, found in blocks:
            report.findings += found
        if exceptions is not None:
            report.expired_exceptions = list(exceptions.expired)
            noted = sorted(self._notes.values(), key=lambda n: state.order(n[0]))
            report.exception_notes = [*exceptions.notes, *(note for _, notes in noted for note in notes)]
        report.coverage = state.coverage()
        return report


_EMPTY = _Block()


def _changes(before: list[Resource], now: list[Resource]) -> Changes:
    """What differs between two lane runs' objects (identity: a new version is a new Resource)."""
    old, new = {id(r) for r in before}, {id(r) for r in now}
    out = Changes()
    for r in before:
        if id(r) not in new:
            out.removed.setdefault(r.kind, []).append(r)
    for r in now:
        if id(r) not in old:
            out.added.setdefault(r.kind, []).append(r)
    return out


def _hits_of(control: Control, snapshot: Snapshot) -> list[Hit]:
    return list(control.func(snapshot))
