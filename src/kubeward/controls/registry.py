"""The control registry: one function per check plus its metadata, selection and the run loop.

Every check kubeward has is registered here, whatever it judges; the shape says what the function receives.
`scan` runs the three snapshot shapes, so each manifest check is written at its natural grain:
- `pod`: receives a PodView (Pods and every workload's pod template, unwrapped once per object);
- `object`: receives a Resource of the listed kinds;
- `snapshot`: receives the Snapshot and yields (resource, path, message), for cross-object checks.
A control yields (path, message) pairs; the runner turns them into Findings with locations.
The other shapes belong to the commands that read something else (STANDALONE_SHAPES): `node` (a NodeConfig,
`node check`), `certificate` and `pki` (one certificate of a PKI folder, or the folder, `pki check`),
`encryption` (an EncryptionConfiguration, `encryption check`), `etcd` (a probed endpoint, `etcd probe`),
`audit-policy` (an audit Policy, `audit policy check`); their runners live next to what they read and use the
same metadata, selection (`Selection`) and exceptions. A control's docstring is its description (what it
checks, why, and the upstream reference): `kubeward controls` and docs/controls.md print it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from ..findings import (
    ControlMeta,
    ControlResult,
    Finding,
    NotAssessed,
    ObjectRef,
    Report,
    Severity,
    framework_family,
)
from ..gcpause import gc_paused
from ..records import field, record
from ..resource import POD_KINDS, PodView, Resource
from ..snapshot import Snapshot

Hit = tuple[str, str]  # (JSON pointer, message)

# Modules that register controls; imported on first use so `kubeward --help` stays fast.
CONTROL_MODULES = (
    "kubeward.controls.workload",
    "kubeward.controls.network",
    "kubeward.controls.rbac",
    "kubeward.controls.secrets",
    "kubeward.controls.pss",
    "kubeward.controls.rbac_engine",
    "kubeward.controls.netpol",
    "kubeward.controls.apis",
    "kubeward.controls.paths",
)
# Modules that register the checks of the commands that judge something other than manifests.
STANDALONE_MODULES = (
    "kubeward.controls.node",
    "kubeward.pki.checks",
    "kubeward.controls.encryption",
    "kubeward.controls.etcd_probe",
    "kubeward.audit.policycheck",
    "kubeward.creds.base",
)


class Shape(StrEnum):
    """The grain a control is written at (module docstring); a str, so `shape="pod"` and comparisons still read."""

    POD = "pod"
    OBJECT = "object"
    SNAPSHOT = "snapshot"
    NODE = "node"
    CERTIFICATE = "certificate"
    PKI = "pki"
    ENCRYPTION = "encryption"
    ETCD = "etcd"
    AUDIT_POLICY = "audit-policy"
    CREDENTIAL = "credential"


SCAN_SHAPES = frozenset({Shape.POD, Shape.OBJECT, Shape.SNAPSHOT})  # what `scan` and admission run


@record
class Control:
    meta: ControlMeta
    shape: Shape
    func: Callable[..., Iterable[Any]]
    kinds: frozenset[str]
    reads: frozenset[str] = frozenset()  # further kinds a cross-object check consults (not counted as evaluated)
    assesses: bool = True  # False: looks at every object's apiVersion only, which is no judgement of its kind


_REGISTRY: dict[str, Control] = {}
# Retired ids -> the controls that now report their problem (two controls judging one fact became one); users'
# selections, exception files and ignore annotations naming an old id keep working.
_ALIASES: dict[str, tuple[str, ...]] = {}
_loaded = False


def alias(old: str, *ids: str) -> None:
    """Register `old` as another name for `ids` (a merged control)."""
    if old in _REGISTRY or old in _ALIASES:
        raise ValueError(f"duplicate control id {old}")
    _ALIASES[old] = ids


def aliases() -> dict[str, tuple[str, ...]]:
    """Every retired id and the ids it stands for."""
    all_controls()
    return dict(sorted(_ALIASES.items()))


def resolve(ids: Iterable[str]) -> tuple[str, ...]:
    """The ids with every alias replaced by the ids it stands for (order kept, no repeats)."""
    ids = tuple(ids)
    if not ids:
        return ()
    table = aliases()
    out: dict[str, None] = {}
    for i in ids:
        for j in table.get(i, (i,)):
            out[j] = None
    return tuple(out)


def control(
    id: str,
    title: str,
    severity: str,
    category: str,
    *,
    frameworks: Iterable[str] = (),
    remediation: str = "",
    description: str = "",
    shape: Shape | str = Shape.POD,
    kinds: Iterable[str] | None = None,
    reads: Iterable[str] = (),
    assesses: bool = True,
) -> Callable[[Callable[..., Iterable[Any]]], Callable[..., Iterable[Any]]]:
    """Register a check. `kinds` defaults to every pod-carrying kind for pod controls; `reads` names the other
    kinds a cross-object check consults (a ResourceQuota's presence, a Node's addresses), so objects of those
    kinds count as assessed."""
    try:
        grain = Shape(shape)
    except ValueError:
        raise ValueError(f"unknown control shape {shape!r}") from None
    sev = Severity.parse(severity)
    kind_set = frozenset(kinds) if kinds is not None else (POD_KINDS if grain is Shape.POD else frozenset())

    def register(func: Callable[..., Iterable[Any]]) -> Callable[..., Iterable[Any]]:
        if id in _REGISTRY:
            raise ValueError(f"duplicate control id {id}")
        meta = ControlMeta(id=id, title=title, severity=sev, category=category, frameworks=tuple(frameworks),
                           remediation=remediation, description=description or describe(func))
        _REGISTRY[id] = Control(meta, grain, func, kind_set, frozenset(reads), assesses)
        return func

    return register


def describe(func: Callable[..., Any]) -> str:
    """A control's description: its docstring, dedented, paragraphs kept, lines inside a paragraph joined."""
    doc = inspect.cleandoc(func.__doc__ or "")
    return "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n") if p.strip())


def _load(modules: tuple[str, ...]) -> None:
    for mod in modules:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # a real import error inside the module must surface
                raise


def all_controls() -> dict[str, Control]:
    """The controls `scan` runs over a snapshot (shapes pod, object, snapshot), by id."""
    global _loaded
    if not _loaded:
        _load(CONTROL_MODULES)
        _loaded = True
    return {k: c for k, c in sorted(_REGISTRY.items()) if c.shape in SCAN_SHAPES}


_standalone_loaded = False


def every_control() -> dict[str, Control]:
    """Every registered check, of every shape, by id: what exceptions validate against and `kubeward controls`
    lists. Imports the standalone checks' modules (the PKI checks pull in `cryptography`)."""
    global _standalone_loaded
    all_controls()
    if not _standalone_loaded:
        _load(STANDALONE_MODULES)
        _standalone_loaded = True
    return dict(sorted(_REGISTRY.items()))


def controls_of(*shapes: Shape) -> dict[str, Control]:
    """The registered checks of these shapes (one command's pool for `Selection.choose`), by id."""
    every_control()
    return registered(*shapes)


def registered(*shapes: Shape) -> dict[str, Control]:
    """The checks of these shapes registered so far (their module imported by the caller), by id."""
    wanted = frozenset(shapes)
    return {k: c for k, c in sorted(_REGISTRY.items()) if c.shape in wanted}


def meta_of(id: str) -> ControlMeta:
    """The metadata of a registered control (for a module that reports it by its constant)."""
    return _REGISTRY[id].meta


def assessed_kinds() -> frozenset[str]:
    """Every kind some registered control judges or consults: the catalog's reach, not the current selection
    (a scan narrowed to one framework skips Services by choice; a CRD's objects are skipped by every scan)."""
    global _assessed
    if _assessed is None:
        _assessed = frozenset().union(*(c.kinds | c.reads for c in all_controls().values() if c.assesses))
    return _assessed


_assessed: frozenset[str] | None = None


def unassessed_kinds(resources: Iterable[Resource], skip_ns: frozenset[str] = frozenset()) -> list[NotAssessed]:
    """One NotAssessed per API group and kind that no control judges, with its object count (never silent).

    Objects in excluded namespaces were left out by the user and are not counted.
    """
    known = assessed_kinds()
    counts: dict[tuple[str, str], int] = {}
    for r in resources:
        kind = r.kind
        if kind in known or (skip_ns and r.namespace in skip_ns):
            continue
        group = r.api_version.rpartition("/")[0]
        counts[group, kind] = counts.get((group, kind), 0) + 1
    out = []
    for (group, kind), n in sorted(counts.items(), key=lambda item: (item[0][1], item[0][0])):
        what = f"{kind}.{group}" if group else kind
        out.append(NotAssessed(what, f"{n} object{'s' if n != 1 else ''} of a kind no control judges"))
    return out


class SelectionError(ValueError):
    """Bad control selection from the user (unknown id, unknown framework): exit 2."""


@record
class Selection:
    frameworks: tuple[str, ...] = ("all",)
    min_severity: Severity = Severity.INFO
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_namespaces: frozenset[str] = field(default_factory=frozenset)

    def choose(self, controls: dict[str, Control],
               catalog: Callable[[], dict[str, Control]] | None = None) -> list[Control]:
        """The chosen controls of the pool `controls`. `catalog` (every_control) is what ids and frameworks are
        known against when the pool is one command's (asked only when the pool does not know a name): an id of
        another command's is then named as such, and so is a framework only other commands' checks map to."""
        include, exclude = resolve(self.include), resolve(self.exclude)  # retired ids name their successors
        known = controls
        if catalog is not None:
            in_pool = {g for c in controls.values() for f in c.meta.frameworks for g in (f, framework_family(f))}
            if any(c not in controls for c in (*include, *exclude)) or any(
                    f != "all" and f not in in_pool for f in self.frameworks):
                known = catalog()
        unknown = [c for c in (*include, *exclude) if c not in known]
        if unknown:
            raise SelectionError(f"unknown control id(s): {', '.join(unknown)} (see `kubeward controls`)")
        elsewhere = [c for c in include if c not in controls]
        if elsewhere:
            raise SelectionError(f"not a check of this command: {', '.join(elsewhere)} (see `kubeward controls`)")
        known_fw = {framework_family(f) for c in known.values() for f in c.meta.frameworks}
        known_fw |= {f for c in known.values() for f in c.meta.frameworks}
        pool_fw = known_fw if known is controls else {
            g for c in controls.values() for f in c.meta.frameworks for g in (f, framework_family(f))}
        bad_fw = [f for f in self.frameworks if f != "all" and f not in known_fw]
        if bad_fw:
            raise SelectionError(f"unknown framework(s): {', '.join(bad_fw)}")
        chosen = []
        for cid, c in controls.items():
            if include and cid not in include:
                continue
            if cid in exclude or c.meta.severity < self.min_severity:
                continue
            if not include and not any(c.meta.in_framework(f) for f in self.frameworks):
                continue
            chosen.append(c)
        foreign = [f for f in self.frameworks if f != "all" and f not in pool_fw]
        if not chosen and foreign:  # running nothing would pass silently
            raise SelectionError(f"none of this command's checks is in framework {', '.join(foreign)} (see "
                                 f"`kubeward controls --framework {foreign[0]}`)")
        return chosen


def run(snapshot: Snapshot, controls: list[Control], exceptions: Any = None, exclude_namespaces: Iterable[str] = (),
        scope: Callable[[Resource], bool] | None = None) -> Report:
    """Run the chosen controls over the snapshot; exceptions decide what is suppressed (counted, not dropped).
    `scope`: only objects it accepts are judged and reported on (a scan of one namespace); cross-object
    controls still consult the whole snapshot."""
    with gc_paused():
        return _run(snapshot, controls, exceptions, exclude_namespaces, scope)


def _run(snapshot: Snapshot, controls: list[Control], exceptions: Any, exclude_namespaces: Iterable[str],
         scope: Callable[[Resource], bool] | None) -> Report:
    """The run loop.

    Findings come out ordered by severity (highest first), control id, file, line and path. Each control's hits
    are sorted on their own (stable, so ties keep the order the control yielded them) and the blocks are then
    laid out in control order: the same order as one sort of the whole list, at a fraction of the key work.
    """
    skip_ns = frozenset(exclude_namespaces)
    # In a scan of one namespace the objects read only for the cross-object controls are not its objects: a
    # namespace nothing of which could be read is "nothing scanned" (exit 2), never a clean one.
    objects = len(snapshot) if scope is None else sum(1 for r in snapshot.resources if scope(r))
    report = Report(objects=objects, findings=[], errors=list(snapshot.errors),
                    not_assessed=[*snapshot.not_assessed, *unassessed_kinds(snapshot.resources, skip_ns)])
    # Controls with the same kinds share one target list, one list of refs and one list of (resource, pod).
    targets_for: dict[frozenset[str], _Targets] = {}
    blocks: list[tuple[tuple[int, str], list[Finding]]] = []
    suppressed = report.suppressed
    # Paths and messages repeat across objects (a fleet of similar pods): one string each instead of one per
    # finding keeps a 100k-finding report small.
    same_path: dict[str, str] = {}
    same_message: dict[str, str] = {}
    path_of, message_of = same_path.setdefault, same_message.setdefault
    # Whether an exception could silence a finding on an object is one answer per object, asked by every control
    # with a hit on it: computed once (a hundred controls on 4,500 pods asked it 88,000 times).
    silenceable: dict[int, bool] = {}

    def may_silence(res: Resource) -> bool:
        known = silenceable.get(id(res))
        if known is None:
            known = silenceable[id(res)] = exceptions.may_silence(res)
        return known

    for c in controls:
        if c.kinds not in targets_for:
            targets_for[c.kinds] = _Targets(snapshot, c.kinds, skip_ns, scope)
    per_object = _per_object_hits(controls, targets_for)
    for c in controls:
        shared = targets_for[c.kinds]
        meta = c.meta
        result = report.controls[meta.id] = ControlResult(meta, evaluated=len(shared.resources))
        report.evaluated_objects[meta.id] = shared.refs
        hits = per_object.pop(meta.id) if c.shape != Shape.SNAPSHOT else list(c.func(snapshot))
        if skip_ns:
            hits = [h for h in hits if h[0].namespace not in skip_ns]
        if scope is not None and c.shape == Shape.SNAPSHOT:  # the others judged only the targets in scope
            hits = [h for h in hits if scope(h[0])]
        if exceptions is not None and not any(may_silence(res) for res in {id(h[0]): h[0] for h in hits}.values()):
            exceptions_here = None  # no rule and no ignore annotation: nothing can be silenced
        else:
            exceptions_here = exceptions
        found, silenced = findings_of(meta, hits, exceptions_here, path_of, message_of)
        suppressed += silenced
        result.failed = len({id(f.object) for f in found})
        if found:
            found.sort(key=place_in_control)
            blocks.append(((-meta.severity, meta.id), found))
    if exceptions is not None:
        report.expired_exceptions = list(exceptions.expired)
        report.exception_notes = [*exceptions.notes, *exceptions.inline_notes(snapshot.resources)]
    blocks.sort(key=lambda b: b[0])
    findings = report.findings
    for _, found in blocks:
        findings.extend(found)
    return report


def findings_of(meta: ControlMeta, hits: Iterable[tuple[Resource, str, str]], exceptions: Any,
                path_of: Callable[[str, str], str], message_of: Callable[[str, str], str]
                ) -> tuple[list[Finding], list[Finding]]:
    """One control's hits as Findings, in hit order: (reported, suppressed by an exception). `exceptions` is
    None when nothing can silence these objects. The one place a hit becomes a Finding, for the run loop and
    for the monitor, which keeps each object's Findings between evaluations (kubeward.monitor.state)."""
    found: list[Finding] = []
    if exceptions is None:
        return [Finding(meta, res.ref(), res.location(path), path_of(path, path), message_of(message, message))
                for res, path, message in hits], found
    silenced: list[Finding] = []
    for res, path, message in hits:
        finding = Finding(meta, res.ref(), res.location(path), path_of(path, path), message_of(message, message))
        reason = exceptions.reason_for(finding, res)
        if reason is not None:
            finding.suppressed_by = reason
            silenced.append(finding)
        else:
            found.append(finding)
    return found, silenced


class _Targets:
    """What every control of one kind set judges: the resources, their refs and the pods inside them."""

    __slots__ = ("pods", "refs", "resources")

    def __init__(self, snapshot: Snapshot, kinds: frozenset[str], skip_ns: frozenset[str],
                 scope: Callable[[Resource], bool] | None = None) -> None:
        self.resources = [
            r for k in sorted(kinds) for r in snapshot.of_kind(k)
            if (not skip_ns or r.namespace not in skip_ns) and (scope is None or scope(r))
        ]
        self.refs: list[ObjectRef] = [r.ref() for r in self.resources]
        self.pods: list[tuple[Resource, PodView]] | None = None

    def with_pods(self) -> list[tuple[Resource, PodView]]:
        if self.pods is None:
            self.pods = [(r, pod) for r in self.resources if (pod := r.pod()) is not None]
        return self.pods


def _finding_order(f: Finding) -> tuple[int, str, str, int, str]:
    loc = f.location
    return (-f.control.severity, f.control.id, loc.file or "", loc.line or 0, f.path)


def place_in_control(f: Finding) -> tuple[str, int, str]:
    loc = f.location
    return (loc.file or "", loc.line or 0, f.path)


BLOCK = 64  # objects every per-object control judges before the next block: they stay in the CPU caches


def _per_object_hits(controls: list[Control], targets_for: dict[frozenset[str], _Targets]
                     ) -> dict[str, list[tuple[Resource, str, str]]]:
    """Every (resource, path, message) each `pod` and `object` control yields, in target order.

    All controls of one kind set judge a block of objects before moving on to the next block, rather than each
    control sweeping every object: with a hundred controls reading the same few thousand pods, that keeps the
    objects in the CPU caches (a third less time on 4,500 pods). Each control still sees its targets in order,
    so its hits come out exactly as one sweep would yield them.
    """
    hits: dict[str, list[tuple[Resource, str, str]]] = {}
    groups: dict[frozenset[str], list[Control]] = {}
    for c in controls:
        if c.shape != Shape.SNAPSHOT:
            groups.setdefault(c.kinds, []).append(c)
            hits[c.meta.id] = []
    for kinds, group in groups.items():
        targets = targets_for[kinds]
        pods = targets.with_pods() if any(c.shape == Shape.POD for c in group) else []
        resources = targets.resources
        for start in range(0, max(len(pods), len(resources)), BLOCK):
            pod_block = pods[start:start + BLOCK]
            res_block = resources[start:start + BLOCK]
            for c in group:
                func = c.func
                if c.shape == Shape.POD:
                    hits[c.meta.id] += [(res, path, message) for res, pod in pod_block for path, message in func(pod)]
                else:
                    hits[c.meta.id] += [(res, path, message) for res in res_block for path, message in func(res)]
    return hits

