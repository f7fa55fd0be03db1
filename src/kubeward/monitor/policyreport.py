"""Findings written back as wgpolicyk8s.io/v1alpha2 PolicyReport (one per namespace) and ClusterPolicyReport
(cluster-scoped objects, and the types that could not be read), the format Kyverno, Trivy Operator and
Kubescape share (CRDs: deploy/crds/, from kubernetes-sigs/wg-policy-prototypes policy-report/crd/v1alpha2).

Each report is named `kubeward` and labelled app.kubernetes.io/managed-by=kubeward, so a restarted monitor finds
its own reports, reads back what they said (no finding is announced twice, none resolved while it was down is
missed) and rewrites only what changed. A namespace's report goes when the namespace has no object left.
v1alpha2 knows three severities: critical is written as high and info as low, the exact one kept in
properties.severity. A report holds at most MAX_RESULTS results (an object must stay well under etcd's
1.5 MiB); the rest are counted in summary.fail and named by one more result saying how many were left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ..findings import ControlMeta, Finding, Report, Severity
from ..sources.cluster import Client, ClusterError, quote_path

GROUP, VERSION = "wgpolicyk8s.io", "v1alpha2"
API_VERSION = f"{GROUP}/{VERSION}"
NAME = "kubeward"
SOURCE = "kubeward"
MANAGED = ("app.kubernetes.io/managed-by", "kubeward")
MAX_RESULTS = 2000
NOT_ASSESSED_POLICY = "kubeward-not-assessed"
LEFT_OUT_POLICY = "kubeward-results-left-out"
_V1ALPHA2_SEVERITY = {Severity.CRITICAL: "high", Severity.HIGH: "high", Severity.MEDIUM: "medium",
                      Severity.LOW: "low", Severity.INFO: "low"}

Scope = str | None  # a namespace, or None for the ClusterPolicyReport
FindingKey = tuple[str, str, str, str | None, str, str, str]


# per control (by identity; the entry holds it): the fields all its results share
_STATIC: dict[int, tuple[ControlMeta, dict[str, Any], dict[str, str]]] = {}


def result_of(f: Finding) -> dict[str, Any]:
    o = f.object
    ref: dict[str, Any] = {"apiVersion": o.api_version, "kind": o.kind, "name": o.name}
    if o.namespace is not None:
        ref["namespace"] = o.namespace
    c = f.control
    static = _STATIC.get(id(c))
    if static is None or static[0] is not c:
        static = _STATIC[id(c)] = (
            c, {"policy": c.id, "rule": c.id, "category": c.category, "result": "fail",
                "severity": _V1ALPHA2_SEVERITY[c.severity], "scored": True, "source": SOURCE},
            {"title": c.title, "severity": c.severity.label})
    return {**static[1], "message": f.message, "resources": [ref], "properties": {**static[2], "path": f.path}}


def key_of(result: dict[str, Any]) -> FindingKey | None:
    """The finding a result of ours stands for (monitor.state.finding_key), or None for other results."""
    if not isinstance(result, dict) or result.get("source") != SOURCE or result.get("result") != "fail":
        return None
    refs, props = result.get("resources"), result.get("properties")
    if not (isinstance(refs, list) and refs and isinstance(refs[0], dict) and isinstance(props, dict)):
        return None
    r = refs[0]
    return (str(result.get("policy")), str(r.get("apiVersion", "")), str(r.get("kind", "")), r.get("namespace"),
            str(r.get("name", "")), str(props.get("path", "")), str(result.get("message", "")))


def scopes(report: Report, namespaces: Iterable[str]) -> set[Scope]:
    """Where reports belong: the cluster, every namespace that holds objects or has findings."""
    return {None, *namespaces, *(f.object.namespace for f in report.findings)}


def desired(report: Report, namespaces: Iterable[str], only: set[Scope] | None = None) -> dict[Scope, dict[str, Any]]:
    """The report body for every scope (`only`: just those of them, the others being known unchanged)."""
    wanted = scopes(report, namespaces)
    if only is not None:
        wanted &= only
    by_scope: dict[Scope, list[Finding]] = defaultdict(list)
    for f in report.findings:
        if only is None or f.object.namespace in wanted:
            by_scope[f.object.namespace].append(f)
    passed = _passed(report, wanted, by_scope)
    out: dict[Scope, dict[str, Any]] = {}
    for scope in wanted:
        findings = by_scope.get(scope, [])
        results = [result_of(f) for f in findings[:MAX_RESULTS]]
        if len(findings) > MAX_RESULTS:
            results.append({"policy": LEFT_OUT_POLICY, "result": "fail", "source": SOURCE,
                            "message": f"{len(findings) - MAX_RESULTS} more findings not listed (report size "
                                       "limit); `kubeward scan --cluster` lists them all"})
        errors = 0
        if scope is None:
            for na in report.not_assessed:
                results.append({"policy": NOT_ASSESSED_POLICY, "rule": na.what, "result": "error",
                                "source": SOURCE, "message": f"{na.what}: not assessed: {na.reason}"})
                errors += 1
        out[scope] = {"summary": {"pass": passed.get(scope, 0), "fail": len(findings), "warn": 0,
                                  "error": errors, "skip": 0},
                      "results": results}
    return out


def _passed(report: Report, wanted: set[Scope], by_scope: dict[Scope, list[Finding]]) -> dict[Scope, int]:
    """Per wanted scope (`by_scope`: every finding in them): (control, object) pairs judged without a finding.
    Controls of one kind set share one list of judged objects, so each list is counted once."""
    judged: dict[int, dict[Scope, int]] = {}
    # one ObjectRef per object (Resource.ref), so its id stands for the object
    failed = {scope: len({(f.control.id, id(f.object)) for f in found}) for scope, found in by_scope.items()}
    out: dict[Scope, int] = defaultdict(int)
    for refs in report.evaluated_objects.values():
        counts = judged.get(id(refs))
        if counts is None:
            counts = judged[id(refs)] = defaultdict(int)
            for ref in refs:
                counts[ref.namespace] += 1
        for scope, n in counts.items():
            out[scope] += n
    return {s: max(0, n - failed.get(s, 0)) for s, n in out.items() if s in wanted}


class ReportWriter:
    """Create, update and delete our reports so the cluster holds `desired(...)`; writes only what changed."""

    def __init__(self, client: Client, *, on_write: Callable[[str, str], None] = lambda _v, _o: None,
                 on_problem: Callable[[str], None] = lambda _m: None) -> None:
        self.client, self.on_write, self.on_problem = client, on_write, on_problem
        self._have: dict[Scope, tuple[str, bytes]] = {}  # scope -> (resourceVersion, what we wrote)
        self.pending: set[Scope] = set()  # scopes whose last write failed: rebuilt and retried next time

    @staticmethod
    def path(scope: Scope, name: str = "") -> str:
        if scope is None:
            parts = ["apis", GROUP, VERSION, "clusterpolicyreports"]
        else:
            parts = ["apis", GROUP, VERSION, "namespaces", scope, "policyreports"]
        return quote_path(*parts, *([name] if name else []))

    def load(self) -> set[FindingKey] | None:
        """Our reports in the cluster now; returns the findings they hold (None: they could not be read)."""
        known: set[FindingKey] = set()
        selector = f"{MANAGED[0]}={MANAGED[1]}"
        for plural, scope_of in (("clusterpolicyreports", lambda _d: None),
                                 ("policyreports", lambda d: (d.get("metadata") or {}).get("namespace"))):
            status, doc = self.client.json("GET", quote_path("apis", GROUP, VERSION, plural),
                                           query={"labelSelector": selector})
            if status != 200 or not isinstance(doc, dict):
                self.on_problem(f"{plural}.{GROUP}: list: HTTP {status}" + _message(doc))
                return None
            for item in doc.get("items") or ():
                meta = item.get("metadata") or {}
                if meta.get("name") != NAME:
                    continue
                scope = scope_of(item)
                body = {"summary": item.get("summary"), "results": item.get("results") or []}
                self._have[scope] = (str(meta.get("resourceVersion") or ""), _canon(body))
                known.update(k for k in map(key_of, body["results"]) if k is not None)
        return known

    def sync(self, want: dict[Scope, dict[str, Any]], keep: set[Scope] | None = None) -> int:
        """Write the reports that differ, delete ours no longer wanted (`keep`: the scopes that still are, when
        `want` holds only those that changed); returns the writes that failed."""
        keep = set(want) if keep is None else keep | set(want)
        self.pending &= keep
        failed = 0
        for scope, body in want.items():
            canon = _canon(body)
            have = self._have.get(scope)
            if have is not None and have[1] == canon:
                self.pending.discard(scope)
                continue
            if self._put(scope, body, canon, have[0] if have else None):
                self.pending.discard(scope)
            else:
                self.pending.add(scope)
                failed += 1
        for scope in [s for s in self._have if s not in keep]:
            status, doc = self.client.json("DELETE", self.path(scope, NAME))
            self.on_write("delete", "ok" if status in (200, 202, 404) else "error")
            if status in (200, 202, 404):
                del self._have[scope]
            else:
                failed += 1
                self.on_problem(f"{_where(scope)}: delete: HTTP {status}{_message(doc)}")
        return failed

    def _put(self, scope: Scope, body: dict[str, Any], canon: bytes, rv: str | None) -> bool:
        obj: dict[str, Any] = {
            "apiVersion": API_VERSION, "kind": "PolicyReport" if scope is not None else "ClusterPolicyReport",
            "metadata": {"name": NAME, "labels": {MANAGED[0]: MANAGED[1]}},
            "scope": {"kind": "Namespace", "name": scope} if scope is not None else {"kind": "Cluster"},
            **body}
        if scope is not None:
            obj["metadata"]["namespace"] = scope
        try:
            for _ in range(3):
                if rv is None:
                    status, doc = self.client.json("POST", self.path(scope), body=obj)
                    verb = "create"
                else:
                    obj["metadata"]["resourceVersion"] = rv
                    status, doc = self.client.json("PUT", self.path(scope, NAME), body=obj)
                    verb = "update"
                if status in (200, 201):
                    self.on_write(verb, "ok")
                    self._have[scope] = (str(((doc or {}).get("metadata") or {}).get("resourceVersion") or ""), canon)
                    return True
                if status == 409 or (status == 404 and rv is not None):  # moved or gone since: read it again
                    self.on_write(verb, "conflict")
                    status, cur = self.client.json("GET", self.path(scope, NAME))
                    rv = str(((cur or {}).get("metadata") or {}).get("resourceVersion") or "") if status == 200 \
                        else None
                    continue
                self.on_write(verb, "error")
                self.on_problem(f"{_where(scope)}: {verb}: HTTP {status}{_message(doc)}")
                return False
        except ClusterError as exc:
            self.on_write("write", "error")
            self.on_problem(f"{_where(scope)}: {exc}")
        return False


def _canon(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _where(scope: Scope) -> str:
    return f"policyreport {scope}/{NAME}" if scope is not None else f"clusterpolicyreport {NAME}"


def _message(doc: Any) -> str:
    msg = doc.get("message") if isinstance(doc, dict) else None
    return f": {msg}" if msg else ""
