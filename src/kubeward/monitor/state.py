"""The monitor's picture of the cluster and its incremental evaluation.

`ClusterState` holds the objects the watches keep current (per resource type, keyed by namespace and name) and
what changed since the last evaluation. `Incremental` is the run loop's source of hits
(controls.registry.HitSource): a per-object control's hits are kept per object and recomputed only for an object
that changed; a cross-object (snapshot) control is re-run only when a kind it read last time changed. What a
snapshot control reads is recorded while it runs (`TracedSnapshot`), not declared: a control's output is a
function of what it read, so if none of that changed, running it again would read the same and yield the same.
Every report still comes out of the one run loop (exceptions, counts, order), so it equals a full scan's of the
same objects; tests/unit/test_monitor_state.py checks that over random change sequences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..findings import Finding, NotAssessed, Report
from ..resource import POD_KINDS, Resource
from ..snapshot import Snapshot
from ..sources.cluster import ClusterSnapshot, ResourceType

if TYPE_CHECKING:
    from ..controls.registry import Control, _Targets
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

    __slots__ = ("_by_value", "_derived_reads", "_stack")

    def __init__(self, resources: Iterable[Resource], *, context: str, coverage: tuple[int, int],
                 not_assessed: Iterable[NotAssessed] = ()) -> None:
        self._stack: list[set[str]] = []
        self._derived_reads: dict[str, set[str]] = {}
        self._by_value: dict[str, Callable[[Snapshot], Any]] = {}  # derived values built by_value: their builds
        super().__init__(resources, context=context, coverage=coverage, not_assessed=not_assessed)

    def seed(self, carried: dict[str, tuple[Any, frozenset[str]]]) -> None:
        """Derived values an earlier snapshot built whose reads did not change since: the same inputs, so the
        same value (they hold objects and data, never the snapshot they were built from)."""
        for key, (value, reads) in carried.items():
            self._derived[key] = value
            self._derived_reads[key] = set(reads)

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

    def derived(self, key: str, build: Callable[[Snapshot], T], *, by_value: bool = False) -> T:
        # A by_value value's readers record the value as their read, not what it was built from: the monitor
        # rebuilds it first when those inputs change and marks it changed only if it is no longer equal.
        if key not in self._derived_reads:
            outer, self._stack = self._stack, [set()]  # the reads go to this value alone (_read fills every level)
            try:
                value = super().derived(key, build)
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
    status: str = "pending"  # pending (never listed) | read | absent (optional API not installed) | unreadable
    reason: str = ""


class ClusterState:
    """The objects of every watched type as the watches last reported them, and what changed since `take()`."""

    def __init__(self, types: Sequence[ResourceType], context: str) -> None:
        self.context = context
        self.types: dict[str, TypeState] = {}
        for t in types:
            self.types.setdefault(t.path, TypeState(t))
        self.changed_kinds: set[str] = set()  # kinds, in_ns(ns) of every namespace touched, NAMESPACES
        self.dropped: list[Resource] = []  # versions no longer held (replaced or deleted): their hits can go
        self.changed_scopes: set[str | None] = set()  # namespaces (None: cluster-scoped) with an object changed
        self._ns_use: dict[str, int] = {}  # objects per namespace: when one appears or goes, NAMESPACES changed

    def _changed(self, res: Resource, delta: int = 0) -> None:
        self.changed_kinds.add(res.kind)
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
        for obj in items:
            res = Resource(obj, cluster=self.context)
            key = (res.namespace, res.name)
            before = old.get(key)
            if before is not None and _same_version(before.obj, obj):
                new[key] = before  # unchanged: keep the judged object
            else:
                new[key] = res
                self._changed(res, 0 if before is not None else 1)
                if before is not None:
                    self.dropped.append(before)
        for key, res in old.items():
            if key not in new:
                self._changed(res, -1)
                self.dropped.append(res)
        if ts.status != "read":
            self.changed_scopes.add(None)  # no longer among the types not assessed
        ts.objects, ts.status, ts.reason = new, "read", ""

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
                self._changed(gone, -1)
                self.dropped.append(gone)
        else:
            before = ts.objects.get(key)
            self._changed(res, 0 if before is not None else 1)
            if before is not None:
                self.dropped.append(before)
            ts.objects[key] = res

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
        ts.objects = {}
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

    def take(self) -> tuple[set[str], list[Resource], set[str | None]]:
        """The kinds changed, the object versions dropped and the scopes touched since the last call."""
        out = self.changed_kinds, self.dropped, self.changed_scopes
        self.changed_kinds, self.dropped, self.changed_scopes = set(), [], set()
        return out


def _same_version(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same object at the same resourceVersion (a relist of an object the watch already delivered)."""
    va = (a.get("metadata") or {}).get("resourceVersion")
    return bool(va) and va == (b.get("metadata") or {}).get("resourceVersion") and \
        (a.get("metadata") or {}).get("uid") == (b.get("metadata") or {}).get("uid")


def _signature(hits: list[Hit]) -> list[tuple[int, str, str]]:
    return [(id(r), p, m) for r, p, m in hits]


@dataclass(slots=True)
class _SnapshotEntry:
    hits: list[Hit]
    reads: frozenset[str]


class Incremental:
    """The registry's HitSource for the monitor: per-object hits cached per object, snapshot controls re-run only
    when what they read changed. `evaluate()` is one pass of the run loop over the current state."""

    def __init__(self, state: ClusterState, plan: Plan, options: ScanOptions) -> None:
        from ..controls.registry import Shape

        self.state, self.plan, self.options = state, plan, options
        self._per_kind: dict[str, list[Control]] = {}
        for c in plan.controls:
            if c.shape != Shape.SNAPSHOT:
                for k in c.kinds:
                    self._per_kind.setdefault(k, []).append(c)
        # id(resource) -> (resource, hits): the entry holds the object, so its id cannot be reused meanwhile
        self._objects: dict[int, tuple[Resource, dict[str, list[tuple[str, str]]]]] = {}
        self._snapshots: dict[str, _SnapshotEntry] = {}
        self._derived: dict[str, tuple[Any, frozenset[str]]] = {}  # what the last snapshot derived, and its reads
        self._by_value: dict[str, Callable[[Snapshot], Any]] = {}  # the builds of the by_value ones
        self._changed: set[str] = set()
        self._snap: TracedSnapshot | None = None
        self.rerun: list[str] = []  # snapshot controls the last evaluation re-ran (for tests and metrics)
        # scopes (namespaces, None: cluster) whose findings may differ from the evaluation before; None: all
        self.dirty: set[str | None] | None = None
        self._evaluated = False
        self.judged = 0  # objects the last evaluation judged afresh

    def evaluate(self) -> Report:
        from ..scan import judge

        self._changed, dropped, scopes = self.state.take()
        self.dirty = set(scopes) if self._evaluated else None
        self._evaluated = True
        for res in dropped:
            self._objects.pop(id(res), None)
        self._snap = snap = self.state.snapshot()
        changed = self._changed

        def stale(reads: frozenset[str]) -> bool:
            return ALL in reads or bool(reads & changed)

        # by_value values whose inputs changed are rebuilt first: only if one is no longer equal do its readers
        # count as changed (a pod edit that keeps every pod's service account leaves the RBAC paths alone)
        for key, build in self._by_value.items():
            held = self._derived.get(key)
            if held is not None and stale(held[1]) and snap.refresh(key, build, held[0]):
                changed.add(of_value(key))
        snap.seed({k: v for k, v in self._derived.items() if not stale(v[1]) and k not in snap._derived})
        self.rerun, self.judged = [], 0
        try:
            return judge(self._snap, self.plan, self.options, hits=self)
        finally:
            self._derived = self._snap.carried()
            self._by_value.update(self._snap._by_value)
            self._snap = None

    # -- HitSource -----------------------------------------------------------------------------------------
    def object_hits(self, controls: list[Control], targets_for: dict[frozenset[str], _Targets]
                    ) -> dict[str, list[Hit]]:
        from ..controls.registry import Shape

        out: dict[str, list[Hit]] = {}
        groups: dict[frozenset[str], list[str]] = {}
        for c in controls:
            if c.shape != Shape.SNAPSHOT:
                out[c.meta.id] = []
                groups.setdefault(c.kinds, []).append(c.meta.id)
        known = self._objects
        for kinds, ids in groups.items():
            for res in targets_for[kinds].resources:
                cached = known.get(id(res))  # _hits_of's cache, looked up here: one call less per object
                hits = cached[1] if cached is not None else self._hits_of(res)
                if not hits:
                    continue
                for cid in ids:
                    found = hits.get(cid)
                    if found:
                        out[cid] += [(res, path, message) for path, message in found]
        return out

    def snapshot_hits(self, control: Control, snapshot: Snapshot) -> list[Hit]:
        cid = control.meta.id
        entry = self._snapshots.get(cid)
        if entry is not None and not (ALL in entry.reads and self._changed) and not (entry.reads & self._changed):
            return entry.hits
        assert isinstance(snapshot, TracedSnapshot)
        hits, reads = snapshot.reading(lambda: list(control.func(snapshot)))
        if entry is not None and self.dirty is not None and _signature(entry.hits) != _signature(hits):
            self.dirty.update(r.namespace for r, _, _ in (*entry.hits, *hits))
        self._snapshots[cid] = _SnapshotEntry(hits, reads)
        self.rerun.append(cid)
        return hits

    def _hits_of(self, res: Resource) -> dict[str, list[tuple[str, str]]]:
        """Every per-object control's hits on `res`, judged once per version of the object."""
        cached = self._objects.get(id(res))
        if cached is not None:
            return cached[1]
        from ..controls.registry import Shape

        hits: dict[str, list[tuple[str, str]]] = {}
        pod = None
        for c in self._per_kind.get(res.kind, ()):
            if c.shape == Shape.POD:
                pod = pod or res.pod()
                if pod is None:
                    continue
                found = list(c.func(pod))
            else:
                found = list(c.func(res))
            if found:
                hits[c.meta.id] = found
        self._objects[id(res)] = (res, hits)
        self.judged += 1
        return hits
