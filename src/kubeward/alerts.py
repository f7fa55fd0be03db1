"""The one alert record of kubeward's streams: `audit analyze`, `watch` and `serve` (the JSON contract of issue
8) and the node agent's exec enforcer and flow monitor; the folding of identical alerts for the table.

An alert says who (user, groups, the identity impersonated), what (verb, objectRef or the non-resource URL),
when, from where (sourceIPs, user agent), the outcome (allowed or refused, with the code) and why (the rule, its
message and the field of the event that triggered it). The agent's alerts say the same of a node: where (node,
the process's cgroup scope: pod, namespace, container, image), what (the process: pid, ppid, uid, executable
path; or the flow: source and destination pods and addresses, port, protocol), the outcome (the decision and
mode, the policies that deny the flow) and why (the allowlist rule and reason). Each kind keeps its JSON shape:
the audit record, or the agent's `type: exec` / `type: flow` lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .findings import Severity
from .textsafe import printable, redact_credentials


def now_rfc3339() -> str:
    """The current time as the agent's alerts carry it (UTC, microseconds, `Z`)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_time(ev: dict[str, Any]) -> str:
    """stageTimestamp (v1), else requestReceivedTimestamp, else the v1beta1 `timestamp`."""
    return ev.get("stageTimestamp") or ev.get("requestReceivedTimestamp") or ev.get("timestamp") or ""


def source_ips(ev: dict[str, Any]) -> list[str]:
    """sourceIPs as a list of strings: exporters that flatten it write one string ("10.0.0.1, 10.0.0.2", the
    X-Forwarded-For form), which is split, never iterated character by character."""
    ips = ev.get("sourceIPs")
    if isinstance(ips, list):
        return [ip for ip in ips if isinstance(ip, str)]
    if isinstance(ips, str):
        return [p.strip() for p in ips.split(",") if p.strip()]
    return []


def connection_ip(ev: dict[str, Any]) -> str:
    """The address of the connection that reached the apiserver: the LAST sourceIPs entry. utilnet.SourceIPs
    (apimachinery/pkg/util/net/http.go) lists the X-Forwarded-For entries, then X-Real-Ip, then always appends
    req.RemoteAddr unless it equals the last one; every entry before it is what the client (or a proxy) claimed."""
    ips = source_ips(ev)
    return ips[-1] if ips else ""


def _user(u: Any) -> dict[str, Any]:
    return u if isinstance(u, dict) else {}


def outcome(ev: dict[str, Any]) -> dict[str, Any]:
    """{"allowed": bool, "code": N} from responseStatus (and the authorization decision when recorded); an event
    without a response status (RequestReceived, Metadata exports that drop it) has no code."""
    rs = ev.get("responseStatus")
    rs = rs if isinstance(rs, dict) else {}
    c = rs.get("code")
    out: dict[str, Any] = {}
    if isinstance(c, int):
        out["code"] = c
    decision = (ev.get("annotations") or {}).get("authorization.k8s.io/decision") if isinstance(
        ev.get("annotations"), dict) else None
    refused = (isinstance(c, int) and c >= 400) or rs.get("status") == "Failure" or decision == "forbid"
    out["allowed"] = not refused
    if isinstance(rs.get("reason"), str) and rs["reason"]:
        out["reason"] = rs["reason"]
    return out


@dataclass(slots=True)
class Alert:
    rule: str  # "" for an exec no allowlist rule matched (JSON null there)
    severity: Severity
    audit_id: str
    time: str
    user: str
    source_ips: list[str]
    verb: str
    object_ref: dict[str, Any]
    message: str
    groups: list[str] = field(default_factory=list)
    impersonated: dict[str, Any] | None = None  # {"username", "groups"} when the caller impersonated
    user_agent: str = ""
    request_uri: str = ""
    outcome: dict[str, Any] = field(default_factory=dict)
    field: str = ""  # JSON pointer into the event of what triggered the rule ("" when the event as a whole did)
    # The node agent's alerts (kind "exec" or "flow"; "audit" for the rest).
    kind: str = "audit"
    node: str = ""  # the node the agent runs on, when it knows it
    process: dict[str, Any] | None = None  # exec: {"pid", "ppid", "uid", "exe"}
    scope: dict[str, Any] | None = None  # exec: the process's cgroup scope (pod, namespace, container, image, ...)
    flow: dict[str, Any] | None = None  # flow: {"src", "dst", "port", "protocol", "denied", "policies", "srcIP", "dstIP"}
    mode: str = ""  # exec: the enforcer's mode (alert or enforce)

    @classmethod
    def exec_alert(cls, *, time: str, pid: int, ppid: int | None, uid: int | None, exe: str, scope: dict[str, Any],
                   decision: str, rule: str | None, reason: str, mode: str, node: str = "") -> Alert:
        """An exec the allowlist does not cover (or a pinned digest that does not match): denied in enforce mode."""
        sev = Severity.HIGH if decision == "deny" else Severity.MEDIUM
        return cls(rule or "", sev, "", time, "", [], "exec", {}, reason,
                   outcome={"allowed": decision != "deny", "decision": decision}, kind="exec", node=node,
                   process={"pid": pid, "ppid": ppid, "uid": uid, "exe": exe}, scope=scope, mode=mode)

    @classmethod
    def flow_alert(cls, *, time: str, message: str, flow: dict[str, Any], node: str = "") -> Alert:
        """A connection the NetworkPolicies deny (`flow` as the netpol engine's FlowChecker reports it)."""
        return cls("", Severity.HIGH, "", time, "", [], "connect", {}, message, outcome={"allowed": False},
                   kind="flow", node=node, flow=flow)

    @classmethod
    def of(cls, rule: str, severity: Severity, ev: dict[str, Any], message: str, trigger: str = "") -> Alert:
        u = _user(ev.get("user"))
        imp = _user(ev.get("impersonatedUser"))
        ref = ev.get("objectRef")
        groups = u.get("groups")
        return cls(rule, severity, str(ev.get("auditID", "")), event_time(ev), str(u.get("username", "")),
                   source_ips(ev), str(ev.get("verb", "")), dict(ref) if isinstance(ref, dict) else {}, message,
                   [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else [],
                   {"username": imp.get("username", ""), "groups": list(imp.get("groups") or ())} if imp else None,
                   str(ev.get("userAgent") or ""), redact_credentials(str(ev.get("requestURI") or "")), outcome(ev),
                   trigger)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "exec":
            proc = self.process or {}
            d: dict[str, Any] = {"time": self.time, "type": "exec", "pid": proc.get("pid"), "ppid": proc.get("ppid"),
                 "uid": proc.get("uid"), "exe": proc.get("exe"), "scope": self.scope or {},
                 "decision": self.outcome.get("decision"), "rule": self.rule or None, "reason": self.message,
                 "mode": self.mode, "severity": self.severity.label}
            return {**d, "node": self.node} if self.node else d
        if self.kind == "flow":
            d = {"time": self.time, "type": "flow", "alert": self.message, **(self.flow or {}),
                 "severity": self.severity.label}
            return {**d, "node": self.node} if self.node else d
        d = {
            "rule": self.rule, "severity": self.severity.label, "auditID": self.audit_id, "time": self.time,
            "user": self.user, "groups": self.groups, "sourceIPs": self.source_ips, "userAgent": self.user_agent,
            "verb": self.verb, "objectRef": self.object_ref, "requestURI": self.request_uri,
            "outcome": self.outcome, "message": self.message}
        if self.impersonated is not None:
            d["impersonatedUser"] = self.impersonated
        if self.field:
            d["field"] = self.field
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Alert:
        return cls(d["rule"], Severity.parse(d["severity"]), d.get("auditID", ""), d.get("time", ""),
                   d.get("user", ""), list(d.get("sourceIPs") or ()), d.get("verb", ""),
                   dict(d.get("objectRef") or {}), d.get("message", ""), list(d.get("groups") or ()),
                   d.get("impersonatedUser"), d.get("userAgent", ""), d.get("requestURI", ""),
                   dict(d.get("outcome") or {}), d.get("field", ""))

    def target(self) -> str:
        if self.kind == "exec":
            return str((self.process or {}).get("exe", ""))
        if self.kind == "flow":
            f = self.flow or {}
            return f"{f.get('src', '?')} -> {f.get('dst', '?')} {f.get('port', '?')}/{f.get('protocol', '?')}"
        r = self.object_ref
        if not r:
            return self.request_uri.split("?", 1)[0]  # a non-resource request: its URL
        res = r.get("resource", "")
        if r.get("subresource"):
            res += "/" + r["subresource"]
        ns, name = r.get("namespace") or "", r.get("name") or ""
        if not name:
            return f"{res} in {ns}" if ns else res
        return f"{res} {ns}/{name}" if ns else f"{res} {name}"

    def who(self) -> str:
        if self.kind == "exec":
            scope = self.scope or {}
            pod = f"{scope['namespace']}/{scope['pod']}" if scope.get("pod") else "host"
            return f"uid {(self.process or {}).get('uid')} in {pod}"
        if self.impersonated:
            return f"{self.user} as {self.impersonated.get('username', '?')}"
        return self.user

    def result(self) -> str:
        c = self.outcome.get("code")
        word = "allowed" if self.outcome.get("allowed", True) else "denied"
        return f"{word} {c}" if c is not None else word

    def line(self) -> str:
        """One human line: when, severity, rule, who, from where, what, outcome, why. Text from the event is
        printed through textsafe.printable (no terminal control, no credentials in URLs)."""
        where = self.source_ips[-1] if self.source_ips else (self.node or "-")
        text = (f"{self.time} {self.severity.label:<8} {self.rule or '-':<28} {self.who()} from {where} {self.verb} "
                f"{self.target()} [{self.result()}]: {self.message}")
        return printable(text)


def _seconds(ts: str) -> float | None:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


def fold(alerts: Iterable[Alert], window: float = 60.0) -> Iterator[tuple[Alert, int]]:
    """Identical alerts (same rule, severity, caller, source, verb, target, outcome and message) within `window`
    seconds of the first of their run, as (first alert, count). Order is that of each run's first alert."""
    runs: dict[tuple[Any, ...], list[Any]] = {}  # key -> [first alert, count, start time]
    out: list[list[Any]] = []
    for a in alerts:
        key = (a.rule, a.severity, a.who(), tuple(a.source_ips[-1:]), a.verb, a.target(), a.result(), a.message)
        t = _seconds(a.time)
        run = runs.get(key)
        if run is not None and t is not None and run[2] is not None and 0 <= t - run[2] <= window:
            run[1] += 1
            continue
        run = [a, 1, t]
        runs[key] = run
        out.append(run)
    for a, n, _ in out:
        yield a, n
