"""Findings written back as wgpolicyk8s.io/v1alpha2 PolicyReport (one per namespace) and ClusterPolicyReport
(cluster-scoped objects, and the types that could not be read), the format Kyverno, Trivy Operator and
Kubescape share (CRDs: deploy/crds/, from kubernetes-sigs/wg-policy-prototypes policy-report/crd/v1alpha2).

Each report is named `kubeward` and labelled app.kubernetes.io/managed-by=kubeward, so a restarted monitor finds
its own reports, reads back what they said (no finding is announced twice, none resolved while it was down is
missed) and rewrites only what changed. A namespace's report goes when the namespace has no object left.
v1alpha2 knows three severities: critical is written as high and info as low, the exact one kept in
properties.severity. One object holds at most MAX_RESULTS results (it must stay well under etcd's 1.5 MiB):
a scope with more is written as several, `kubeward`, `kubeward-2`, ... (each with the summary of its own
results), and read back as one, so a restart knows every finding it announced, however many there are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

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
    props = {**static[2], "path": f.path}
    if f.risk is not None:  # a ranked vulnerability finding: its risk where it runs (docs/vulns.md#risk-ranking)
        props["risk"] = str(f.risk.score)
    return {**static[1], "message": f.message, "resources": [ref], "properties": props}


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


class ScopeIndex(Protocol):
    """The report's findings per scope, kept by whoever made the report (monitor.state.Incremental), so the
    bodies of a few scopes are built without walking every finding."""

    def finding_scopes(self) -> set[Scope]: ...

    def in_scopes(self, wanted: set[Scope]) -> dict[Scope, list[Finding]]: ...


def scopes(report: Report, namespaces: Iterable[str], index: ScopeIndex | None = None) -> set[Scope]:
    """Where reports belong: the cluster, every namespace that holds objects or has findings."""
    with_findings = index.finding_scopes() if index is not None else (f.object.namespace for f in report.findings)
    return {None, *namespaces, *with_findings}


def desired(report: Report, namespaces: Iterable[str], only: set[Scope] | None = None,
            index: ScopeIndex | None = None) -> dict[Scope, dict[str, Any]]:
    """The report body for every scope (`only`: just those of them, the others being known unchanged);
    `index`: the report's findings per scope, when its maker keeps them."""
    wanted = scopes(report, namespaces, index)
    if only is not None:
        wanted &= only
    by_scope: dict[Scope, list[Finding]]
    if index is not None:
        by_scope = index.in_scopes(wanted)
    else:
        by_scope = defaultdict(list)
        for f in report.findings:
            if only is None or f.object.namespace in wanted:
                by_scope[f.object.namespace].append(f)
    passed = _passed(report, wanted, by_scope)
    out: dict[Scope, dict[str, Any]] = {}
    for scope in wanted:
        findings = by_scope.get(scope, [])
        results = [result_of(f) for f in findings]
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
            kept = getattr(refs, "per_namespace", None)  # the monitor's lists count once (state.JudgedRefs)
            if kept is not None:
                counts = judged[id(refs)] = kept()
            else:
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
        # scope -> ({object name: resourceVersion}, the body we wrote, canonical)
        self._have: dict[Scope, tuple[dict[str, str], bytes]] = {}
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
        parts: dict[Scope, dict[int, tuple[str, dict[str, Any]]]] = defaultdict(dict)
        for plural, scope_of in (("clusterpolicyreports", lambda _d: None),
                                 ("policyreports", lambda d: (d.get("metadata") or {}).get("namespace"))):
            status, doc = self.client.json("GET", quote_path("apis", GROUP, VERSION, plural),
                                           query={"labelSelector": selector})
            if status != 200 or not isinstance(doc, dict):
                self.on_problem(f"{plural}.{GROUP}: list: HTTP {status}" + _message(doc))
                return None
            for item in doc.get("items") or ():
                meta = item.get("metadata") or {}
                n = _part(meta.get("name"))
                if n is None:
                    continue
                parts[scope_of(item)][n] = (str(meta.get("resourceVersion") or ""),
                                            {"summary": item.get("summary"), "results": item.get("results") or []})
        for scope, got in parts.items():
            body = _joined([got[n][1] for n in sorted(got)])
            self._have[scope] = ({_name(n): got[n][0] for n in got}, _canon(body))
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
            if self._write(scope, body, canon, have[0] if have else {}):
                self.pending.discard(scope)
            else:
                self.pending.add(scope)
                failed += 1
        for scope in [s for s in self._have if s not in keep]:
            names = self._have[scope][0]
            for name in sorted(names):
                if self._delete(scope, name):
                    del names[name]
                else:
                    failed += 1
            if not names:
                del self._have[scope]
        return failed

    def _write(self, scope: Scope, body: dict[str, Any], canon: bytes, rvs: dict[str, str]) -> bool:
        """The scope's body as one object per MAX_RESULTS results; objects of a longer earlier body deleted."""
        rvs = dict(rvs)
        written: dict[str, str] = {}
        ok = True
        for n, part in enumerate(_split(body)):
            name = _name(n)
            rv = self._put(scope, name, part, rvs.get(name))
            if rv is None:
                ok = False
            else:
                written[name] = rv
        for name in sorted(set(rvs) - set(written)):
            if ok and self._delete(scope, name):
                continue
            written.setdefault(name, rvs[name])  # still there: deleted at the next write
            ok = False
        self._have[scope] = (written, canon if ok else b"")
        return ok

    def _delete(self, scope: Scope, name: str) -> bool:
        status, doc = self.client.json("DELETE", self.path(scope, name))
        self.on_write("delete", "ok" if status in (200, 202, 404) else "error")
        if status not in (200, 202, 404):
            self.on_problem(f"{_where(scope, name)}: delete: HTTP {status}{_message(doc)}")
        return status in (200, 202, 404)

    def _put(self, scope: Scope, name: str, body: dict[str, Any], rv: str | None) -> str | None:
        """Create or update one object; returns its new resourceVersion, None when the write failed."""
        obj: dict[str, Any] = {
            "apiVersion": API_VERSION, "kind": "PolicyReport" if scope is not None else "ClusterPolicyReport",
            "metadata": {"name": name, "labels": {MANAGED[0]: MANAGED[1]}},
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
                    status, doc = self.client.json("PUT", self.path(scope, name), body=obj)
                    verb = "update"
                if status in (200, 201):
                    self.on_write(verb, "ok")
                    return str(((doc or {}).get("metadata") or {}).get("resourceVersion") or "")
                if status == 409 or (status == 404 and rv is not None):  # moved or gone since: read it again
                    self.on_write(verb, "conflict")
                    status, cur = self.client.json("GET", self.path(scope, name))
                    rv = str(((cur or {}).get("metadata") or {}).get("resourceVersion") or "") if status == 200 \
                        else None
                    continue
                self.on_write(verb, "error")
                self.on_problem(f"{_where(scope, name)}: {verb}: HTTP {status}{_message(doc)}")
                return None
        except ClusterError as exc:
            self.on_write("write", "error")
            self.on_problem(f"{_where(scope, name)}: {exc}")
        return None


def _name(n: int) -> str:
    return NAME if n == 0 else f"{NAME}-{n + 1}"


def _part(name: Any) -> int | None:
    """The index of one of our objects by its name (`kubeward` 0, `kubeward-2` 1, ...), None for others."""
    if name == NAME:
        return 0
    if isinstance(name, str) and name.startswith(NAME + "-") and name[len(NAME) + 1:].isdigit():
        n = int(name[len(NAME) + 1:])
        return n - 1 if n >= 2 else None
    return None


def _counts(results: list[dict[str, Any]]) -> dict[str, int]:
    return {"fail": sum(r.get("result") == "fail" for r in results),
            "error": sum(r.get("result") == "error" for r in results)}


def _split(body: dict[str, Any]) -> list[dict[str, Any]]:
    """One body per object: the whole when it fits, else MAX_RESULTS results each, the first carrying the passes."""
    results = body.get("results") or []
    if len(results) <= MAX_RESULTS:
        return [body]
    summary = body.get("summary") or {}
    out = []
    for i in range(0, len(results), MAX_RESULTS):
        chunk = results[i:i + MAX_RESULTS]
        out.append({"summary": {"pass": summary.get("pass", 0) if i == 0 else 0, "warn": 0, "skip": 0,
                                **_counts(chunk)}, "results": chunk})
    return out


def _joined(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The body several objects of one scope were split from (`_split` reversed)."""
    if len(parts) == 1:
        return parts[0]
    results = [r for p in parts for r in p["results"]]
    first = parts[0].get("summary") or {}
    return {"summary": {"pass": first.get("pass", 0), **_counts(results), "warn": 0, "skip": 0},
            "results": results}


def _canon(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _where(scope: Scope, name: str = NAME) -> str:
    return f"policyreport {scope}/{name}" if scope is not None else f"clusterpolicyreport {name}"


def _message(doc: Any) -> str:
    msg = doc.get("message") if isinstance(doc, dict) else None
    return f": {msg}" if msg else ""
