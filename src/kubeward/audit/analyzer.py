"""Run detections over a stream of audit events: per-event dispatch, stateful detections, statistics.

Dispatch is by (stage, resource) built once, so an event costs a couple of dict lookups unless a detection could
apply. Stateful detections (forbidden-request bursts, unexpected sources, once-per-request dedup) keep bounded state.
"""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..findings import Severity
from .alerts import Alert, event_time
from .detections import Detection, builtin, code, username

DEDUP_CAPACITY = 65536
SOURCE_SEEN_CAPACITY = 65536


@dataclass(slots=True)
class AnalyzerConfig:
    """Tunables for the stateful detections (all off unless configured, except bursts)."""

    burst_threshold: int = 10  # forbidden/unauthorized requests ...
    burst_window: float = 60.0  # ... within this many seconds, per user and per source IP
    allowed_cidrs: tuple[str, ...] = ()  # when set: alert on a request from any other source IP
    allowed_user_agents: tuple[str, ...] = ()  # regexes; when set: alert on any other user agent
    disabled: tuple[str, ...] = ()  # detection ids to skip


@dataclass(slots=True)
class Stats:
    events: int = 0
    alerts: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)

    def add(self, alert: Alert) -> None:
        self.alerts += 1
        self.by_rule[alert.rule] = self.by_rule.get(alert.rule, 0) + 1

    def merge(self, other: Stats) -> None:
        self.events += other.events
        self.alerts += other.alerts
        for k, v in other.by_rule.items():
            self.by_rule[k] = self.by_rule.get(k, 0) + v

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "alerts": self.alerts, "byRule": dict(sorted(self.by_rule.items()))}


def parse_time(ts: str) -> float | None:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


class BurstDetector:
    """Sliding-window count of forbidden (403 / decision forbid) and unauthenticated (401) requests per user and
    per source IP; alerts once when a key reaches the threshold, again only after its window has drained."""

    RULE = "forbidden-burst"

    def __init__(self, threshold: int, window: float) -> None:
        self.threshold, self.window = threshold, window
        self._times: dict[tuple[str, str], deque[float]] = {}
        self._firing: set[tuple[str, str]] = set()

    @staticmethod
    def relevant(ev: dict[str, Any]) -> bool:
        c = code(ev)
        return c in (401, 403) or (ev.get("annotations") or {}).get("authorization.k8s.io/decision") == "forbid"

    def feed(self, ev: dict[str, Any]) -> Iterator[Alert]:
        if self.threshold <= 0:
            return
        t = parse_time(event_time(ev))
        if t is None:
            return
        # The identity that was refused: the impersonated one when the caller impersonated.
        user = (ev.get("impersonatedUser") or ev.get("user") or {}).get("username", "")
        keys = [("user", user)] if user else []
        keys += [("ip", ip) for ip in (ev.get("sourceIPs") or ())[:1]]
        for key in keys:
            q = self._times.setdefault(key, deque())
            q.append(t)
            while q and q[0] <= t - self.window:
                q.popleft()
            if len(q) < self.threshold:
                self._firing.discard(key)
            elif key not in self._firing:
                self._firing.add(key)
                what = f"user {key[1]}" if key[0] == "user" else f"source IP {key[1]}"
                yield Alert.of(self.RULE, Severity.HIGH, ev,
                               f"{len(q)} forbidden or unauthenticated requests from {what} within "
                               f"{self.window:g}s (brute force or permission probing)")


class SourceDetector:
    """Requests from source IPs outside the allowed CIDRs or with unexpected user agents, once per
    (user, source IP, user agent)."""

    RULE = "unexpected-source"

    def __init__(self, cidrs: Iterable[str], agents: Iterable[str]) -> None:
        self.nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        self.agents = [re.compile(a) for a in agents]
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    @property
    def active(self) -> bool:
        return bool(self.nets or self.agents)

    def check(self, ev: dict[str, Any]) -> Alert | None:
        reasons = []
        ips = ev.get("sourceIPs") or ()
        ip = ips[0] if ips else ""
        if self.nets and ip:
            try:
                addr = ipaddress.ip_address(ip)
                if not any(addr.version == n.version and addr in n for n in self.nets):
                    reasons.append(f"source IP {ip} outside the allowed networks")
            except ValueError:
                reasons.append(f"unparsable source IP {ip!r}")
        ua = ev.get("userAgent") or ""
        if self.agents and not any(a.search(ua) for a in self.agents):
            reasons.append(f"unexpected user agent {ua!r}")
        if not reasons:
            return None
        key = (username(ev), ip, ua)
        if key in self._seen:
            return None
        self._seen[key] = None
        if len(self._seen) > SOURCE_SEEN_CAPACITY:
            self._seen.popitem(last=False)
        return Alert.of(self.RULE, Severity.MEDIUM, ev, "; ".join(reasons))


class Analyzer:
    """Feed events one by one; returns the alerts each raised. Compile once, feed millions."""

    def __init__(self, detections: list[Detection] | None = None, config: AnalyzerConfig | None = None,
                 *, stateful: bool = True) -> None:
        self.config = config or AnalyzerConfig()
        dets = [d for d in (builtin() if detections is None else detections) if d.id not in self.config.disabled]
        self.detections = dets
        # stage -> resource -> detections; resource None holds those that apply to any event of the stage.
        self._index: dict[str, dict[str | None, list[Detection]]] = {}
        for d in dets:
            for stage in d.stages:
                per = self._index.setdefault(stage, {})
                for r in (d.resources if d.resources is not None else [None]):
                    per.setdefault(r, []).append(d)
        self._any: dict[str, list[Detection]] = {s: per.get(None, []) for s, per in self._index.items()}
        self._dedup: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.stats = Stats()
        on = self.config.disabled
        self.burst = BurstDetector(self.config.burst_threshold, self.config.burst_window) \
            if stateful and BurstDetector.RULE not in on else None
        src = SourceDetector(self.config.allowed_cidrs, self.config.allowed_user_agents)
        self.source = src if src.active and SourceDetector.RULE not in on else None
        self.burst_inputs: list[dict[str, Any]] | None = None  # set by workers: defer bursts to the parent

    def feed(self, ev: dict[str, Any]) -> list[Alert]:
        self.stats.events += 1
        out: list[Alert] = []
        stage = ev.get("stage")
        per = self._index.get(stage)  # type: ignore[arg-type]
        if per is not None:
            ref = ev.get("objectRef")
            cands = per.get(ref.get("resource")) if ref else None
            anys = self._any[stage]  # type: ignore[index]
            if cands or anys:
                verb = ev.get("verb")
                for d in (cands + anys if cands and anys else cands or anys):
                    if d.verbs is not None and verb not in d.verbs:
                        continue
                    msg = d.check(ev)
                    if msg is None:
                        continue
                    if d.once_per_request and not self._first(d.id, ev.get("auditID", "")):
                        continue
                    out.append(Alert.of(d.id, d.severity, ev, msg))
        if stage == "ResponseComplete":
            if self.source is not None and (a := self.source.check(ev)) is not None:
                out.append(a)
            if (self.burst is not None or self.burst_inputs is not None) and BurstDetector.relevant(ev):
                if self.burst_inputs is not None:
                    self.burst_inputs.append(_burst_view(ev))
                else:
                    out.extend(self.burst.feed(ev))  # type: ignore[union-attr]
        for a in out:
            self.stats.add(a)
        return out

    def feed_burst_only(self, ev: dict[str, Any]) -> list[Alert]:
        """For the parent of workers: the deferred burst inputs, in log order."""
        out = list(self.burst.feed(ev)) if self.burst is not None else []
        for a in out:
            self.stats.add(a)
        return out

    def _first(self, rule: str, audit_id: str) -> bool:
        key = (rule, audit_id)
        if key in self._dedup:
            return False
        self._dedup[key] = None
        if len(self._dedup) > DEDUP_CAPACITY:
            self._dedup.popitem(last=False)
        return True


def _burst_view(ev: dict[str, Any]) -> dict[str, Any]:
    """The fields a burst alert needs, small enough to ship from a worker."""
    keep = ("auditID", "stageTimestamp", "requestReceivedTimestamp", "timestamp", "user", "sourceIPs", "verb",
            "objectRef", "responseStatus", "annotations")
    return {k: ev[k] for k in keep if k in ev}
