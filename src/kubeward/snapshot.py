"""An immutable set of objects with the indexes every engine and control reads (built once, never re-parsed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from .findings import InputError, NotAssessed
from .records import field, record
from .resource import POD_SPEC_PATHS, Resource

T = TypeVar("T")
METADATA_NAME_LABEL = "kubernetes.io/metadata.name"  # set immutably on every namespace since v1.21


@record
class Changes:
    """The objects that differ between two snapshots, per kind: versions only in the earlier one (`removed`) and
    only in the later one (`added`), each in its snapshot's order; a changed object is in both. What an engine's
    `update` (Snapshot.derived) patches its earlier value with."""

    removed: dict[str, list[Resource]] = field(default_factory=dict)
    added: dict[str, list[Resource]] = field(default_factory=dict)

    def kinds(self) -> set[str]:
        return {*self.removed, *self.added}


@record
class Verdicts:
    """One judging function's results on each object of a snapshot, in the objects' order: `each` by object
    identity (the object, its namespace, its results), `results` all of them in turn (judged_each)."""

    each: dict[int, tuple[Resource, str | None, list[Any]]]
    results: list[Any]


def judged_each(snapshot: Snapshot, key: str, objects: Callable[[Snapshot], Iterable[Resource]],
                judge: Callable[[Snapshot], Callable[[Resource], list[Any]]],
                touched: Callable[[Changes], set[str | None]]) -> list[Any]:
    """The results of `judge(snapshot)(obj)` for each of `objects(snapshot)`, in turn: what a cross-object
    control yields when its verdict on an object depends on the object and its namespace's other objects only.

    Derived as `key` with an update (the monitor's lane): an object version judged in the previous run keeps its
    results unless its namespace is in `touched(changes)`, the namespaces where an object the verdicts read
    (not the judged object itself) changed; the judge stays the control's one predicate, run on fewer objects.
    """
    def verdicts(snap: Snapshot, before: Verdicts | None, stale: set[str | None]) -> Verdicts:
        one, old = judge(snap), before.each if before is not None else {}
        each: dict[int, tuple[Resource, str | None, list[Any]]] = {}
        results: list[Any] = []
        for r in objects(snap):
            got = old.get(id(r))
            if got is None or got[0] is not r or got[1] in stale:
                got = (r, r.namespace, one(r))
            each[id(r)] = got
            results += got[2]
        return Verdicts(each, results)

    return snapshot.derived(key, lambda s: verdicts(s, None, set()),
                            update=lambda before, s, changes: verdicts(s, before, touched(changes))).results


def namespaces_of(changes: Changes, *kinds: str) -> set[str | None]:
    """The namespaces of the objects of `kinds` that changed (touched, judged_each)."""
    return {r.namespace for side in (changes.removed, changes.added) for k in kinds for r in side.get(k, ())}


# objects grouped by kind, each with its (namespace, name): how the monitor holds them (Snapshot._lay_out)
Layout = Iterable[tuple[str, Iterable[tuple[tuple[str | None, str], Resource]]]]


class Snapshot:
    __slots__ = ("_by_key", "_by_kind", "_by_ns", "_derived", "errors", "not_assessed", "resources", "skipped",
                 "source")

    def __init__(
        self,
        resources: Iterable[Resource],
        *,
        errors: Iterable[InputError] = (),
        not_assessed: Iterable[NotAssessed] = (),
        source: str = "files",
        skipped: Iterable[InputError] = (),
        layout: Layout | None = None,
    ) -> None:
        self.resources: tuple[Resource, ...] = tuple(resources)
        self.errors: tuple[InputError, ...] = tuple(errors)
        self.skipped: tuple[InputError, ...] = tuple(skipped)  # input documents that are no Kubernetes object
        self.not_assessed: tuple[NotAssessed, ...] = tuple(not_assessed)
        self.source = source
        self._derived: dict[str, Any] = {}
        if layout is not None and self._lay_out(layout):
            return
        by_kind: dict[str, list[Resource]] = defaultdict(list)
        by_ns: dict[str, list[Resource]] = defaultdict(list)
        by_key: dict[tuple[str, str | None, str], Resource] = {}
        for r in self.resources:
            by_kind[r.kind].append(r)
            ns = r.namespace
            if ns is not None:
                by_ns[ns].append(r)
            by_key.setdefault((r.kind, ns, r.name), r)
        self._by_kind = dict(by_kind)
        self._by_ns = dict(by_ns)
        self._by_key = by_key

    def _lay_out(self, layout: Layout) -> bool:
        """The tables of __init__ from objects already grouped by kind, in `resources` order, each keyed by its
        (namespace, name) (the monitor's held objects, one type per kind): the same tables without asking each
        object its namespace and name. False (nothing set) when an object's kind is not its group's."""
        by_kind: dict[str, list[Resource]] = {}
        by_ns: dict[str, list[Resource]] = {}
        by_key: dict[tuple[str, str | None, str], Resource] = {}
        for kind, items in layout:
            objs = by_kind.setdefault(kind, [])
            for (ns, name), r in items:
                if r.kind != kind:
                    return False
                objs.append(r)
                if ns is not None:
                    got = by_ns.get(ns)
                    if got is None:
                        by_ns[ns] = [r]
                    else:
                        got.append(r)
                by_key.setdefault((kind, ns, name), r)
        self._by_kind = {k: v for k, v in by_kind.items() if v}
        self._by_ns, self._by_key = by_ns, by_key
        return True

    def derived(self, key: str, build: Callable[[Snapshot], T], *, by_value: bool = False,
                update: Callable[[T, Snapshot, Changes], T | None] | None = None) -> T:
        """Data an engine compiles once per snapshot and several controls read (the RBAC index, netpol lint).

        Held by the snapshot itself, so it lives exactly as long as the objects it was built from. `by_value`:
        the value is plain data (no objects of the snapshot) whose readers depend on it only through `==`, so
        the monitor may keep their results when a change leaves it equal (kubeward.monitor.state). `update`:
        how the monitor's next snapshot may patch this value with what changed, `update(value, snapshot,
        changes)`, instead of building it again; it returns the value `build` would (it may mutate `value`,
        which the earlier snapshot no longer reads), or None when it cannot, and then `build` runs. A plain
        snapshot has no earlier value and ignores it.
        """
        if key not in self._derived:
            self._derived[key] = build(self)
        return self._derived[key]

    def __len__(self) -> int:
        return len(self.resources)

    def of_kind(self, *kinds: str) -> list[Resource]:
        if len(kinds) == 1:
            return self._by_kind.get(kinds[0], [])
        return [r for k in kinds for r in self._by_kind.get(k, [])]

    def kinds(self) -> set[str]:
        return set(self._by_kind)

    def in_namespace(self, ns: str) -> list[Resource]:
        return self._by_ns.get(ns, [])

    def get(self, kind: str, namespace: str | None, name: str) -> Resource | None:
        return self._by_key.get((kind, namespace, name))

    def workloads(self) -> Iterator[Resource]:
        """Objects that carry a pod or pod template, kind by kind in a fixed order (a set's order changes with
        the interpreter's hash seed, and with it the order of what is reported)."""
        for kind in POD_SPEC_PATHS:
            yield from self._by_kind.get(kind, [])

    def namespaces(self) -> list[str]:
        """Every namespace named by a Namespace object or used by a namespaced object, sorted."""
        names = {r.name for r in self.of_kind("Namespace")} | set(self._by_ns)
        return sorted(n for n in names if n)

    def namespace_labels(self, ns: str) -> dict[str, Any]:
        """Labels of a namespace; the automatic metadata.name label is present even when the object is not."""
        obj = self.get("Namespace", None, ns)
        labels = dict(obj.labels) if obj is not None else {}
        labels.setdefault(METADATA_NAME_LABEL, ns)
        return labels
