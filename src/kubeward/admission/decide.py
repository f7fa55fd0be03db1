"""The admission decision: one AdmissionReview v1 request judged with the same controls and exceptions as `scan`.

The object is run through the registry's run loop as a one-object snapshot, so a decision is exactly what `scan`
reports for that object. Controls of the `snapshot` shape judge an object against the rest of the cluster (is
there a NetworkPolicy, a ResourceQuota, which RBAC paths lead to cluster-admin); a review carries one object, so
they are not run here (`cross_object_controls()` lists them; docs/admission.md names them).

What the apiserver does with the answer (k8s.io/apiserver/pkg/admission/plugin/webhook/validating/dispatcher.go):
a denial's `status.message` becomes `admission webhook "<name>" denied the request: <message>`; each warning goes
to the client as a `Warning: 299` header (no control characters, k8s.io/apimachinery/pkg/util/net NewWarningHeader;
past 4096 runes in total every warning is cut to 256 runes, k8s.io/apiserver/pkg/endpoints/filters/warning.go);
each audit annotation key is prefixed `<webhook name>/` and must then be a qualified name
(k8s.io/apiserver/pkg/admission/attributes.go checkKeyFormat).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from ..controls.registry import Control, Selection, all_controls, run
from ..findings import Finding, Severity
from ..resource import Resource
from ..snapshot import Snapshot
from ..textsafe import printable
from .config import AdmissionConfig, Policy

API_VERSION = "admission.k8s.io/v1"
WARNING_RUNES = 256  # per warning: what the apiserver keeps once the total is over its limit
WARNINGS_TOTAL_RUNES = 4096  # the apiserver's total before it starts cutting
MESSAGE_FINDINGS = 10  # findings named in a denial; the rest are counted
ANNOTATION_CHARS = 1024
# PSA evaluates pods on CREATE/UPDATE and the ephemeralcontainers subresource only; other subresources (status,
# binding, exec, ...) do not carry a spec a user chose (pod-security-admission/admission/admission.go).
JUDGED_SUBRESOURCES = ("", "ephemeralcontainers")


class NamespaceLabels(Protocol):
    def labels(self, namespace: str) -> dict[str, str] | None: ...


class StaticNamespaces:
    """Namespace labels from the configuration (`namespaces:`), for offline decisions."""

    def __init__(self, labels: dict[str, dict[str, str]] | None = None) -> None:
        self._labels = dict(labels or {})

    def labels(self, namespace: str) -> dict[str, str] | None:
        return self._labels.get(namespace)


class ReviewError(ValueError):
    """The body is not an AdmissionReview v1 request: HTTP 400, and the apiserver applies its failurePolicy."""


def admission_controls(include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[Control]:
    """The controls a single review can run: every `pod` and `object` control (as selected)."""
    chosen = Selection(include=include, exclude=exclude).choose(all_controls())
    return [c for c in chosen if c.shape != "snapshot"]


def cross_object_controls() -> list[Control]:
    """The controls that need the whole cluster and so are never run on a single review."""
    return [c for c in all_controls().values() if c.shape == "snapshot"]


@dataclass(slots=True)
class Decision:
    allowed: bool
    reason: str  # denied, allowed, exempt-namespace, exempt-user, exempt-group, unworsened-update, not-judged
    policy: Policy | None = None
    denied: list[Finding] = field(default_factory=list)
    warned: list[Finding] = field(default_factory=list)
    audited: list[Finding] = field(default_factory=list)
    message: str = ""
    code: int = 403

    def response(self, uid: str) -> dict[str, Any]:
        resp: dict[str, Any] = {"uid": uid, "allowed": self.allowed}
        if not self.allowed:
            resp["status"] = {"code": self.code, "reason": "Forbidden" if self.code == 403 else "BadRequest",
                              "message": self.message}
        warnings = warning_lines(self.warned, self.policy)
        if warnings:
            resp["warnings"] = warnings
        resp["auditAnnotations"] = self.annotations()
        return resp

    def annotations(self) -> dict[str, str]:
        out = {"decision": self.reason}
        if self.policy is not None:
            out["policy"] = self.policy.describe()
            if self.policy.errors:
                out["policy-errors"] = _cut("; ".join(self.policy.errors), ANNOTATION_CHARS)
        if self.audited:
            ids = sorted({f"{f.control.id}:{f.control.severity.label}" for f in self.audited})
            out["findings"] = _cut(",".join(ids), ANNOTATION_CHARS)
        return out


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def finding_line(f: Finding) -> str:
    """One finding as the client reads it: id, severity, what and where (input text made printable)."""
    return _line(f.control.id, f.control.severity.label, f.control.title, f.message, f.path)


@lru_cache(maxsize=8192)  # the same few hundred lines recur across reviews of similar objects
def _line(cid: str, severity: str, title: str, message: str, path: str) -> str:
    return printable(f"{cid} ({severity}) {title}: {message} [{path or '/'}]")


def warning_lines(findings: list[Finding], policy: Policy | None) -> list[str]:
    """Each at most WARNING_RUNES, all together at most WARNINGS_TOTAL_RUNES, so the apiserver cuts none; what
    does not fit is counted in the last line."""
    out: list[str] = []
    total = 0
    for i, f in enumerate(findings):
        line = _cut(finding_line(f), WARNING_RUNES)
        rest = len(findings) - i
        tail = f"kubeward: {rest} more finding(s) at or above warn threshold; see `kubeward admission test`"
        if total + len(line) + len(tail) > WARNINGS_TOTAL_RUNES and rest > 1:
            out.append(tail)
            break
        out.append(line)
        total += len(line)
    return out


def denial_message(findings: list[Finding], policy: Policy) -> str:
    shown = "; ".join(finding_line(f) for f in findings[:MESSAGE_FINDINGS])
    more = len(findings) - MESSAGE_FINDINGS
    return (f"kubeward: {len(findings)} finding(s) at or above enforce={_label(policy.enforce)}: {shown}"
            + (f"; and {more} more" if more > 0 else ""))


def _label(s: Severity | None) -> str:
    return s.label if s is not None else "none"


class FileExceptions:
    """The exceptions file's rules without the objects' own `kubeward.io/ignore` annotations (the run loop's
    exceptions interface): at admission the object's author must not be able to exempt it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.expired = inner.expired
        self.notes = inner.notes

    def may_silence(self, res: Resource) -> bool:
        return bool(self.inner.rules)

    def reason_for(self, finding: Finding, res: Resource | None = None) -> str | None:
        return self.inner.reason_for(finding)  # without the resource: rules only

    def inline_notes(self, resources: Any) -> list[str]:
        return []


class Decider:
    """Judges requests; safe to call from many threads (the run loop is serialised: it is CPU-bound anyway)."""

    def __init__(self, config: AdmissionConfig | None = None, exceptions: Any = None,
                 namespaces: NamespaceLabels | None = None) -> None:
        self.config = config or AdmissionConfig()
        self.controls = admission_controls(self.config.include, self.config.exclude)
        self.exceptions = (FileExceptions(exceptions) if exceptions is not None and not self.config.inline_ignores
                           else exceptions)
        self.namespaces = namespaces if namespaces is not None else StaticNamespaces(self.config.namespaces)
        self._lock = threading.Lock()
        self._for_kind: dict[str, list[Control]] = {}

    def controls_for(self, kind: str) -> list[Control]:
        """The chosen controls that judge this kind (the run loop would give the others no target)."""
        found = self._for_kind.get(kind)
        if found is None:
            found = [c for c in self.controls if kind in c.kinds]
            if len(self._for_kind) < 1024:  # kinds come from requests: keep the memo bounded
                self._for_kind[kind] = found
        return found

    def judge(self, obj: dict[str, Any], origin: Resource | None = None) -> list[Finding]:
        """What `scan` reports for this object alone (exceptions applied), highest severity first. `origin`: the
        file and lines the object was read from (`admission test`), so findings point into the file."""
        res = Resource(obj) if origin is None else Resource(obj, file=origin.file, line=origin.line,
                                                            key_lines=origin.key_lines)
        controls = self.controls_for(res.kind)
        if not controls:
            return []
        snap = Snapshot([res], source="admission")
        with self._lock:
            return run(snap, controls, self.exceptions).findings

    def review(self, review: Any) -> dict[str, Any]:
        """An AdmissionReview in, an AdmissionReview out (ReviewError when the body is not one)."""
        request = parse_review(review)
        decision = self.decide(request)
        return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": decision.response(request["uid"])}

    def decide(self, request: dict[str, Any], origin: Resource | None = None) -> Decision:
        cfg = self.config
        op = request.get("operation")
        if op not in ("CREATE", "UPDATE") or (request.get("subResource") or "") not in JUDGED_SUBRESOURCES:
            return Decision(True, "not-judged")
        user_info = request.get("userInfo")
        user: dict[str, Any] = user_info if isinstance(user_info, dict) else {}
        username = user.get("username")
        if isinstance(username, str) and username in cfg.exempt_usernames:
            return Decision(True, "exempt-user")
        groups = user.get("groups")
        if isinstance(groups, list) and cfg.exempt_groups.intersection(g for g in groups if isinstance(g, str)):
            return Decision(True, "exempt-group")
        obj = request.get("object")
        if not isinstance(obj, dict):
            return Decision(False, "bad-object", code=400, message="kubeward: failed to decode the object")
        obj = with_namespace(obj, request.get("namespace"))
        res = Resource(obj)
        ns = res.name if res.kind == "Namespace" else res.namespace
        if ns is not None and ns in cfg.exempt_namespaces:
            return Decision(True, "exempt-namespace")
        if res.kind == "Namespace":
            labels: dict[str, Any] | None = res.labels
        else:
            labels = self.namespaces.labels(ns) if ns is not None else None
        policy = cfg.policy_for(labels)
        if res.kind == "Namespace" and policy.errors:  # as PSA's ValidateNamespace refuses bad level labels
            return Decision(False, "denied", policy, message="kubeward: invalid namespace label(s): "
                            + printable("; ".join(policy.errors)), code=400)
        findings = self.judge(obj, origin)
        enforce, warn, audit = policy.enforce, policy.warn, policy.audit
        denied = [f for f in findings if enforce is not None and f.control.severity >= enforce]
        audited = [f for f in findings if audit is not None and f.control.severity >= audit]
        if denied and op == "UPDATE" and cfg.allow_unworsened_updates and isinstance(request.get("oldObject"), dict):
            old_failing = {f.control.id for f in self.judge(with_namespace(request["oldObject"], ns))}
            if all(f.control.id in old_failing for f in denied):
                warned = [f for f in findings if warn is not None and f.control.severity >= warn]
                return Decision(True, "unworsened-update", policy, warned=warned, audited=audited)
        held = {id(f) for f in denied}
        warned = [f for f in findings if id(f) not in held and warn is not None and f.control.severity >= warn]
        if denied:
            return Decision(False, "denied", policy, denied, warned, audited, denial_message(denied, policy))
        return Decision(True, "allowed", policy, warned=warned, audited=audited)


def with_namespace(obj: dict[str, Any], namespace: Any) -> dict[str, Any]:
    """The request's namespace on an object that does not name one (the apiserver fills it in before storage)."""
    meta = obj.get("metadata")
    if isinstance(namespace, str) and namespace and isinstance(meta, dict) and not meta.get("namespace"):
        return {**obj, "metadata": {**meta, "namespace": namespace}}
    return obj


def parse_review(review: Any) -> dict[str, Any]:
    """The request of an admission.k8s.io/v1 AdmissionReview (v1beta1 is not offered: the webhook configuration
    asks for admissionReviewVersions [v1])."""
    if not isinstance(review, dict):
        raise ReviewError("body is not a JSON object")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != "AdmissionReview":
        raise ReviewError(f"expected apiVersion {API_VERSION} kind AdmissionReview, got "
                          f"{printable(str(review.get('apiVersion')))[:64]} {printable(str(review.get('kind')))[:64]}")
    request = review.get("request")
    if not isinstance(request, dict):
        raise ReviewError("AdmissionReview has no request")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise ReviewError("AdmissionReview request has no uid")
    return request
