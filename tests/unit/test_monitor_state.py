"""The monitor's incremental evaluation gives exactly a full scan's report of the same objects, after any sequence
of creates, patches, deletes, relists and types becoming unreadable (and readable again)."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeward.findings import Report
from kubeward.monitor import events as ev
from kubeward.monitor.metrics import MonitorMetrics
from kubeward.monitor.policyreport import desired, scopes
from kubeward.monitor.state import ClusterState, Incremental, finding_key
from kubeward.resource import Resource
from kubeward.scan import ScanOptions, load, plan, scan
from kubeward.scan import settings as scan_settings
from kubeward.sources.cluster import SCAN_TYPES, ClusterSnapshot, ResourceType

DEMO = Path(__file__).resolve().parents[2] / "src" / "kubeward" / "demo"
TYPES = {t.kind: t for t in SCAN_TYPES}


def _base() -> dict[str, list[dict[str, Any]]]:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in load([str(DEMO)]).resources:
        if r.kind in TYPES:
            by.setdefault(r.kind, []).append(r.obj)
    return by


BASE = _base()


def _summary(report: Report) -> tuple[Any, ...]:
    return (sorted(map(finding_key, report.findings)), sorted(map(finding_key, report.suppressed)),
            sorted((cid, r.evaluated, r.failed) for cid, r in report.controls.items()),
            sorted((n.what, n.reason) for n in report.not_assessed), report.coverage, report.objects)


def _canon(bodies: dict[str | None, Any]) -> list[tuple[str, bytes]]:
    import orjson

    return sorted((str(k), orjson.dumps(v, option=orjson.OPT_SORT_KEYS)) for k, v in bodies.items())


def _full(state: ClusterState, options: ScanOptions) -> Report:
    """A fresh scan of the same objects: new Resource objects, nothing cached."""
    fresh = [Resource(copy.deepcopy(r.obj), cluster=state.context) for r in state.snapshot().resources]
    return scan(ClusterSnapshot(fresh, context=state.context, coverage=state.coverage(),
                                not_assessed=state.not_assessed()), options)


def _seeded() -> ClusterState:
    state = ClusterState(SCAN_TYPES, "ctx")
    for t in SCAN_TYPES:
        state.replace(t, copy.deepcopy(BASE.get(t.kind, [])))
    return state


def _mutate(obj: dict[str, Any], how: int) -> None:
    """A change a user could make, each touching something some control reads."""
    meta = obj.setdefault("metadata", {})
    spec = obj.get("spec")
    if how == 0:
        meta.setdefault("labels", {})["app"] = "changed"
    elif how == 1 and isinstance(spec, dict):
        tmpl = spec.get("template", {}).get("spec") if "template" in spec else spec
        for c in (tmpl or {}).get("containers") or ():
            sc = c.setdefault("securityContext", {})
            sc["privileged"] = not sc.get("privileged", False)
    elif how == 2 and "roleRef" in obj:
        obj["roleRef"]["name"] = "cluster-admin" if obj["roleRef"].get("name") != "cluster-admin" else "view"
    elif how == 3 and "rules" in obj:
        obj["rules"] = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    elif how == 4 and isinstance(spec, dict) and "podSelector" in spec:
        spec["podSelector"] = {}
        spec["policyTypes"] = ["Ingress", "Egress"]
    elif how == 6 and isinstance(spec, dict):  # another service account: the RBAC paths through the pod move
        tmpl = spec.get("template", {}).get("spec") if "template" in spec else spec
        if isinstance(tmpl, dict):
            tmpl["serviceAccountName"] = "ci-runner" if tmpl.get("serviceAccountName") in (None, "default") else \
                "default"
    else:
        meta.setdefault("annotations", {})["kubeward.io/ignore"] = "KW-W001"
    meta["resourceVersion"] = str(int(meta.get("resourceVersion") or 0) + 1)


# one step: (operation, kind index, object index, variant)
STEP = st.tuples(st.sampled_from(["add", "modify", "delete", "recreate", "relist", "forbid", "allow"]),
                 st.integers(0, len(SCAN_TYPES) - 1), st.integers(0, 50), st.integers(0, 6))


def _step(state: ClusterState, op: str, t: ResourceType, i: int, variant: int, serial: int) -> None:
    ts = state.types[t.path]
    current = [r.obj for r in ts.objects.values()]
    pool = current or BASE.get(t.kind, [])
    if op == "forbid":
        state.unreadable(t, 403, "HTTP 403: forbidden")
    elif op == "allow" or op == "relist" or ts.status != "read":
        state.replace(t, copy.deepcopy(current if op == "relist" else pool))
    elif op == "add" and pool:
        obj = copy.deepcopy(pool[i % len(pool)])
        obj["metadata"]["name"] = f"{obj['metadata'].get('name', 'x')}-{serial}"
        if variant % 2 and t.kind != "Namespace" and "namespace" in obj["metadata"]:
            obj["metadata"]["namespace"] = f"new-ns-{variant}"
        state.apply(t, "ADDED", obj)
    elif op == "modify" and current:
        obj = copy.deepcopy(current[i % len(current)])
        _mutate(obj, variant)
        state.apply(t, "MODIFIED", obj)
    elif op == "delete" and current:
        state.apply(t, "DELETED", copy.deepcopy(current[i % len(current)]))
    elif op == "recreate" and current:  # deleted and made again under its name: it now comes last
        state.apply(t, "DELETED", copy.deepcopy(current[i % len(current)]))
        state.apply(t, "ADDED", copy.deepcopy(current[i % len(current)]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_equals_full_scan_after_random_changes(seed: int) -> None:
    options = ScanOptions()

    @settings(max_examples=12, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.lists(STEP, min_size=1, max_size=6), min_size=1, max_size=5))
    def run(batches: list[list[tuple[str, int, int, int]]]) -> None:
        with scan_settings(options):
            state = _seeded()
            inc = Incremental(state, plan(options), options)
            written = desired(inc.evaluate(), state.namespaces())
            serial = 0
            for batch in batches:
                for op, ti, i, variant in batch:
                    serial += 1
                    _step(state, op, SCAN_TYPES[ti], i, variant, serial)
                got = inc.evaluate()
                full = _full(state, options)
                assert _summary(got) == _summary(full)
                # the objects each control judged, in a scan's order (kept per kind while its keys stay put)
                assert {c: list(refs) for c, refs in got.evaluated_objects.items()} == \
                    {c: list(refs) for c, refs in full.evaluated_objects.items()}
                # the reports rewritten (only the scopes the evaluation marked dirty) hold what a full rewrite would
                written.update(desired(got, state.namespaces(), only=inc.dirty, index=inc))
                for gone in set(written) - scopes(got, state.namespaces(), inc):
                    del written[gone]
                assert _canon(written) == _canon(desired(full, state.namespaces()))

    hypothesis.seed(seed)(run)()


def test_nothing_changed_reruns_nothing() -> None:
    options = ScanOptions()
    with scan_settings(options):
        inc = Incremental(_seeded(), plan(options), options)
        first = inc.evaluate()
        again = inc.evaluate()
    assert inc.rerun == [] and inc.judged == 0
    assert _summary(first) == _summary(again) and first.findings


def test_a_pod_change_judges_one_object_and_leaves_rbac_alone() -> None:
    options = ScanOptions()
    with scan_settings(options):
        state = _seeded()
        inc = Incremental(state, plan(options), options)
        inc.evaluate()
        pod = copy.deepcopy(next(iter(state.types[TYPES["Pod"].path].objects.values())).obj)
        _mutate(pod, 1)
        state.apply(TYPES["Pod"], "MODIFIED", pod)
        inc.evaluate()
    assert inc.judged == 1
    assert "KW-R103" not in inc.rerun and "KW-R025" not in inc.rerun  # the RBAC index is not rebuilt
    assert "KW-N106" in inc.rerun  # the pod's network reachability is


def test_a_pod_change_that_keeps_its_service_account_leaves_the_rbac_paths_alone() -> None:
    options = ScanOptions()
    with scan_settings(options):
        state = _seeded()
        inc = Incremental(state, plan(options), options)
        inc.evaluate()
        pod = copy.deepcopy(next(iter(state.types[TYPES["Pod"].path].objects.values())).obj)
        _mutate(pod, 1)
        state.apply(TYPES["Pod"], "MODIFIED", pod)
        inc.evaluate()
        assert "KW-R101" not in inc.rerun  # who runs as which service account did not change
        _mutate(pod, 6)
        state.apply(TYPES["Pod"], "MODIFIED", copy.deepcopy(pod))
        inc.evaluate()
        assert "KW-R101" in inc.rerun  # it did now


def test_a_binding_change_reruns_the_rbac_controls_only() -> None:
    options = ScanOptions()
    with scan_settings(options):
        state = _seeded()
        inc = Incremental(state, plan(options), options)
        inc.evaluate()
        t = TYPES["ClusterRoleBinding"]
        crb = copy.deepcopy(next(iter(state.types[t.path].objects.values())).obj)
        _mutate(crb, 2)
        state.apply(t, "MODIFIED", crb)
        inc.evaluate()
    assert inc.judged == 1
    assert "KW-R101" in inc.rerun and not any(c.startswith("KW-N") for c in inc.rerun)


def test_a_forbidden_type_is_not_assessed_and_its_objects_gone() -> None:
    options = ScanOptions()
    with scan_settings(options):
        state = _seeded()
        inc = Incremental(state, plan(options), options)
        inc.evaluate()
        state.unreadable(TYPES["Pod"], 403, "HTTP 403: pods is forbidden")
        report = inc.evaluate()
    assert ("pods", "HTTP 403: pods is forbidden") in {(n.what, n.reason) for n in report.not_assessed}
    assert not any(f.object.kind == "Pod" for f in report.findings)
    read, wanted = report.coverage or (0, 0)
    assert read == wanted - 1


def _settle(inc: Incremental, keys: Any = None) -> Report:
    """Evaluations until the cross-object lane has nothing left to merge or start; `keys` (a Counter of
    finding keys) follows each evaluation's delta."""
    report = _evaluate(inc, keys)
    while inc.cross_pending() or not inc.wait_cross(0):
        assert inc.wait_cross(60)
        report = _evaluate(inc, keys)
    return report


def _evaluate(inc: Incremental, keys: Any) -> Report:
    """One evaluation; with `keys` (Counter of the findings' keys so far, and `keys.metrics`), the alerts and
    metrics that follow its delta must be those a comparison of the whole reports gives."""
    before = {k: 1 for k in keys} if keys is not None else {}
    report = inc.evaluate()
    if keys is not None:
        assert inc.delta is not None
        info = {finding_key(f): (f.control.severity, f.control.title) for f in (*inc.delta[1], *report.findings)}
        events = ev.follow(keys, *inc.delta)
        assert keys == Counter(map(finding_key, report.findings))
        assert events == ev.diff({k: info[k] for k in before}, {k: info[k] for k in keys})
        keys.metrics.observe_report(report, {}, 0.0, inc.delta)
        fresh = MonitorMetrics()
        fresh.observe_report(report, {}, 0.0)
        assert _findings_series(keys.metrics) == _findings_series(fresh)
    return report


def _findings_series(metrics: MonitorMetrics) -> list[str]:
    return sorted(line for line in metrics.render().decode().splitlines()
                  if line.startswith("kubeward_monitor_findings{"))


class _Keys(Counter[Any]):
    metrics: MonitorMetrics


@pytest.mark.parametrize("lane", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_patched_findings_equal_a_full_scan_over_seeded_random_changes(seed: int, lane: bool) -> None:
    """Random create/modify/delete/relist sequences (relists also in another order, which renumbers every
    place); after each batch the kept findings, the delta of findings that came and went (what alerts and
    metrics follow), and (once the lane caught up) the reports equal a fresh scan's."""
    import random

    rnd = random.Random(seed)
    options = ScanOptions()
    with scan_settings(options):
        state = _seeded()
        inc = Incremental(state, plan(options), options, lane=lane)
        report = inc.evaluate()
        keys = _Keys(map(finding_key, report.findings))
        keys.metrics = MonitorMetrics()
        keys.metrics.observe_report(report, {}, 0.0)
        for serial in range(1, 40):
            t = SCAN_TYPES[rnd.randrange(len(SCAN_TYPES))]
            op = rnd.choice(["add", "modify", "modify", "delete", "relist", "shuffle"])
            if op == "shuffle" and state.types[t.path].status == "read":
                items = [copy.deepcopy(r.obj) for r in state.types[t.path].objects.values()]
                rnd.shuffle(items)
                state.replace(t, items)
            else:
                _step(state, "relist" if op == "shuffle" else op, t, rnd.randrange(50), rnd.randrange(7), serial)
            if rnd.random() < 0.3:
                continue  # several changes in one batch
            report = _evaluate(inc, keys) if rnd.random() < 0.7 else _settle(inc, keys)
            if not lane:
                assert _summary(report) == _summary(_full(state, options))
        report = _settle(inc, keys)
        full = _full(state, options)
        assert _summary(report) == _summary(full)
        assert [finding_key(f) for f in report.findings] == [finding_key(f) for f in full.findings]
        assert report.exception_notes == full.exception_notes
        assert _canon(desired(report, state.namespaces())) == _canon(desired(full, state.namespaces()))
        assert _canon(desired(report, state.namespaces(), index=inc)) == _canon(desired(full, state.namespaces()))
        assert scopes(report, state.namespaces(), inc) == scopes(full, state.namespaces())
