"""The alert record shared by `audit analyze`, `watch` and `serve` (the JSON contract of issue 8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..findings import Severity


def event_time(ev: dict[str, Any]) -> str:
    """stageTimestamp (v1), else requestReceivedTimestamp, else the v1beta1 `timestamp`."""
    return ev.get("stageTimestamp") or ev.get("requestReceivedTimestamp") or ev.get("timestamp") or ""


@dataclass(slots=True)
class Alert:
    rule: str
    severity: Severity
    audit_id: str
    time: str
    user: str
    source_ips: list[str]
    verb: str
    object_ref: dict[str, Any]
    message: str

    @classmethod
    def of(cls, rule: str, severity: Severity, ev: dict[str, Any], message: str) -> Alert:
        return cls(rule, severity, ev.get("auditID", ""), event_time(ev), (ev.get("user") or {}).get("username", ""),
                   list(ev.get("sourceIPs") or ()), ev.get("verb", ""), dict(ev.get("objectRef") or {}), message)

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity.label, "auditID": self.audit_id, "time": self.time,
                "user": self.user, "sourceIPs": self.source_ips, "verb": self.verb, "objectRef": self.object_ref,
                "message": self.message}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Alert:
        return cls(d["rule"], Severity.parse(d["severity"]), d.get("auditID", ""), d.get("time", ""),
                   d.get("user", ""), list(d.get("sourceIPs") or ()), d.get("verb", ""),
                   dict(d.get("objectRef") or {}), d.get("message", ""))

    def target(self) -> str:
        r = self.object_ref
        if not r:
            return ""
        res = r.get("resource", "")
        if r.get("subresource"):
            res += "/" + r["subresource"]
        ns, name = r.get("namespace") or "", r.get("name") or ""
        if not name:
            return f"{res} in {ns}" if ns else res
        return f"{res} {ns}/{name}" if ns else f"{res} {name}"

    def line(self) -> str:
        """One human line: time, severity, rule, who, what, why."""
        return f"{self.time} {self.severity.label:<8} {self.rule:<28} {self.user} {self.verb} {self.target()}: {self.message}"
