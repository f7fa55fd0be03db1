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
from .audit2rbac import effective_user
from .detections import Detection, builtin, pod_images, username

DEDUP_CAPACITY = 65536
SOURCE_SEEN_CAPACITY = 65536
MEMO_CAPACITY = 100_000  # distinct (stage, resource, subresource, verb) keys remembered; beyond that per event


@dataclass(slots=True)
class AnalyzerConfig:
    """Tunables for the stateful detections (all off unless configured, except bursts)."""

    burst_threshold: int = 10  # forbidden/unauthorized requests ...
    burst_window: float = 60.0  # ... within this many seconds, per user and per source IP
    allowed_cidrs: tuple[str, ...] = ()  # when set: alert on a request from any other source IP
    allowed_user_agents: tuple[str, ...] = ()  # regexes; when set: alert on any other user agent
    disabled: tuple[str, ...] = ()  # detection ids to skip
    trusted_images: tuple[str, ...] = ()  # image repositories whose pods the pod detections leave alone


@dataclass(slots=True)
class Stats:
    events: int = 0
    alerts: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    malformed: int = 0  # events (or detections on them) skipped because a field had an unexpected type

    def add(self, alert: Alert) -> None:
        self.alerts += 1
        self.by_rule[alert.rule] = self.by_rule.get(alert.rule, 0) + 1

    def merge(self, other: Stats) -> None:
        self.events += other.events
        self.alerts += other.alerts
        self.malformed += other.malformed
        for k, v in other.by_rule.items():
            self.by_rule[k] = self.by_rule.get(k, 0) + v

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"events": self.events, "alerts": self.alerts,
                             "byRule": dict(sorted(self.by_rule.items()))}
        if self.malformed:
            d["malformed"] = self.malformed
        return d


def parse_time(ts: str) -> float | None:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


class BurstDetector:
    """Sliding-window count of forbidden (403) and unauthenticated (401) requests per user and
    per source IP; alerts once when a key reaches the threshold, again only after its window has drained."""

    RULE = "forbidden-burst"

    def __init__(self, threshold: int, window: float) -> None:
        self.threshold, self.window = threshold, window
        self._times: dict[tuple[str, str], deque[float]] = {}
        self._firing: set[tuple[str, str]] = set()

    def feed(self, ev: dict[str, Any]) -> Iterator[Alert]:
        if self.threshold <= 0:
            return
        t = parse_time(event_time(ev))
        if t is None:
            return
        # The identity that was refused: the impersonated one when the caller impersonated.
        user = effective_user(ev)
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
        # Detections gated by a top-level field or a user name are looked up by it; the rest by (stage, resource,
        # verb), memoised, so an event costs a few dict lookups unless some detection could apply.
        self._plain = [d for d in dets if d.needs_key is None and d.users is None]
        self._keyed: dict[str, list[Detection]] = {}
        self._by_user: dict[str, list[Detection]] = {}
        for d in dets:
            if d.needs_key is not None:
                self._keyed.setdefault(d.needs_key, []).append(d)
            elif d.users is not None:
                for u in d.users:
                    self._by_user.setdefault(u, []).append(d)
        self._keyed_items = list(self._keyed.items())
        self._gate_key = self._keyed_items[0][0] if len(self._keyed_items) == 1 else None
        self._more_keys = len(self._keyed_items) > 1
        self._memo: dict[tuple[Any, Any, Any, Any], tuple[Detection, ...]] = {}
        self._trusted = frozenset(self.config.trusted_images)
        self._dedup: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.stats = Stats()
        on = self.config.disabled
        self.burst = BurstDetector(self.config.burst_threshold, self.config.burst_window) \
            if stateful and BurstDetector.RULE not in on else None
        src = SourceDetector(self.config.allowed_cidrs, self.config.allowed_user_agents)
        self.source = src if src.active and SourceDetector.RULE not in on else None
        self.burst_inputs = None  # workers set a list: bursts are deferred to the parent

    def _candidates(self, stage: Any, resource: Any, sub: Any, verb: Any) -> tuple[Detection, ...]:
        key = (stage, resource, sub, verb)
        found = self._memo.get(key)
        if found is None:
            found = tuple(d for d in self._plain if stage in d.stages
                          and (d.resources is None or resource in d.resources)
                          and (d.subresources is None or (sub or "") in d.subresources)
                          and (d.verbs is None or verb in d.verbs))
            if len(self._memo) < MEMO_CAPACITY:
                self._memo[key] = found
        return found

    def feed(self, ev: dict[str, Any]) -> list[Alert]:
        self.stats.events += 1
        out: list[Alert] = []
        try:  # free unless raised; one function for the hot path (no per-event method calls when nothing applies)
            stage = ev.get("stage")
            ref = ev.get("objectRef")
            if ref:
                key = (stage, ref.get("resource"), ref.get("subresource"), ev.get("verb"))
            else:
                key = (stage, None, None, ev.get("verb"))
            dets = self._memo.get(key)
            if dets is None:
                dets = self._candidates(*key)
            if dets:
                for d in dets:
                    self._apply(d, ev, out)
            if self._gate_key is not None and self._gate_key in ev:
                self._gated(self._keyed[self._gate_key], ev, stage, out)
            elif self._more_keys:
                for k, kd in self._keyed_items:
                    if k in ev:
                        self._gated(kd, ev, stage, out)
            if self._by_user:
                u = ev.get("user")
                ud = self._by_user.get(u.get("username")) if u else None
                if ud:
                    self._gated(ud, ev, stage, out)
            if stage == "ResponseComplete" and self._complete_hooks:
                self._on_complete(ev, out)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError):
            # A field of an unexpected type (a hand-edited or corrupt log): counted, never a traceback.
            self.stats.malformed += 1
        if out:
            for a in out:
                self.stats.add(a)
        return out

    @property
    def burst_inputs(self) -> list[dict[str, Any]] | None:
        return self._burst_inputs

    @burst_inputs.setter
    def burst_inputs(self, value: list[dict[str, Any]] | None) -> None:
        self._burst_inputs = value
        self._complete_hooks = self.source is not None or self.burst is not None or value is not None

    def _on_complete(self, ev: dict[str, Any], out: list[Alert]) -> None:
        if self.source is not None and (a := self.source.check(ev)) is not None:
            out.append(a)
        rs = ev.get("responseStatus")
        c = rs.get("code") if rs else None
        if c == 403 or c == 401:
            if self._burst_inputs is not None:
                self._burst_inputs.append(_burst_view(ev))
            elif self.burst is not None:
                out.extend(self.burst.feed(ev))

    def _apply(self, d: Detection, ev: dict[str, Any], out: list[Alert]) -> None:
        """One detection; a malformed body fails only this detection, the others still judge the event."""
        try:
            msg = d.check(ev)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError):
            self.stats.malformed += 1
            return
        if msg is not None and (not d.once_per_request or self._first(d.id, ev.get("auditID", ""))):
            if d.image_exempt and self._trusted and self._all_trusted(ev):
                return
            out.append(Alert.of(d.id, d.severity, ev, msg))

    def _all_trusted(self, ev: dict[str, Any]) -> bool:
        """Falco `not ka.req.pod.containers.image.repository in (list)`: exempt only when every image is listed."""
        images = pod_images(ev)
        return bool(images) and all(i in self._trusted for i in images)

    def _gated(self, dets: list[Detection], ev: dict[str, Any], stage: Any, out: list[Alert]) -> None:
        ref = ev.get("objectRef") or {}
        verb = ev.get("verb")
        for d in dets:
            if stage not in d.stages or (d.resources is not None and ref.get("resource") not in d.resources) or (
                    d.verbs is not None and verb not in d.verbs) or (
                    d.subresources is not None and (ref.get("subresource") or "") not in d.subresources):
                continue
            self._apply(d, ev, out)

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
    keep = ("auditID", "stageTimestamp", "requestReceivedTimestamp", "timestamp", "user", "impersonatedUser",
            "sourceIPs", "verb", "objectRef", "responseStatus", "annotations")
    return {k: ev[k] for k in keep if k in ev}
