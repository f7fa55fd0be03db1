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

from ..alerts import Alert, connection_ip, event_time, source_ips
from ..findings import Severity
from .audit2rbac import effective_user
from .detections import BATCH_GATES, Detection, Settings, builtin, pod_images, refused, username
from .identities import DEFAULT as DEFAULT_IDENTITIES
from .identities import Identities
from .requestinfo import object_ref

DEDUP_CAPACITY = 65536
SOURCE_SEEN_CAPACITY = 65536
BURST_KEYS_CAPACITY = 65536  # users and source IPs tracked by the burst detector; the least recent are dropped
VERDICT_MEMO_CAPACITY = 65_536  # source addresses and user agents whose verdict is remembered
_IP_ALLOWED, _IP_OUTSIDE, _IP_UNPARSABLE = "allowed", "outside", "unparsable"
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
    identities: Identities = DEFAULT_IDENTITIES  # the control plane's identities, exempt from the rules
    burst_capacity: int = BURST_KEYS_CAPACITY


@dataclass(slots=True)
class Stats:
    events: int = 0
    alerts: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    malformed: int = 0  # events (or detections on them) skipped because a field had an unexpected type
    state_dropped: int = 0  # identities or sources forgotten by a bounded stateful detector (counted, not silent)

    def add(self, alert: Alert) -> None:
        self.alerts += 1
        self.by_rule[alert.rule] = self.by_rule.get(alert.rule, 0) + 1

    def merge(self, other: Stats) -> None:
        self.events += other.events
        self.alerts += other.alerts
        self.malformed += other.malformed
        self.state_dropped += other.state_dropped
        for k, v in other.by_rule.items():
            self.by_rule[k] = self.by_rule.get(k, 0) + v

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"events": self.events, "alerts": self.alerts,
                             "byRule": dict(sorted(self.by_rule.items()))}
        if self.malformed:
            d["malformed"] = self.malformed
        if self.state_dropped:
            d["stateDropped"] = self.state_dropped
        return d


def parse_time(ts: str) -> float | None:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


class BurstDetector:
    """Sliding-window count of refused requests (401, 403, and refused attempts some rule alerted on) per user and
    per connection address; alerts once when a key reaches the threshold, again only after its window has
    drained. The address is the LAST sourceIPs entry (alerts.connection_ip): the X-Forwarded-For entries before
    it are chosen by the client, so counting them would let one client spread its attempts over invented
    addresses. State is bounded: at most `capacity` keys (least recently seen dropped, and counted) and
    `threshold` timestamps per key."""

    RULE = "forbidden-burst"

    def __init__(self, threshold: int, window: float, capacity: int = BURST_KEYS_CAPACITY) -> None:
        self.threshold, self.window, self.capacity = threshold, window, max(1, capacity)
        self._times: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._firing: set[tuple[str, str]] = set()
        self.dropped = 0

    def feed(self, ev: dict[str, Any]) -> Iterator[Alert]:
        if self.threshold <= 0:
            return
        t = parse_time(event_time(ev))
        if t is None:
            return
        # The identity that was refused: the impersonated one when the caller impersonated.
        user = effective_user(ev)
        keys = [("user", user)] if user else []
        ip = connection_ip(ev)
        if ip:
            keys.append(("ip", ip))
        for key in keys:
            q = self._times.get(key)
            if q is None:
                q = self._times[key] = deque(maxlen=self.threshold)
                if len(self._times) > self.capacity:
                    old, _ = self._times.popitem(last=False)
                    self._firing.discard(old)
                    self.dropped += 1
            else:
                self._times.move_to_end(key)
            q.append(t)
            while q and q[0] <= t - self.window:
                q.popleft()
            if len(q) < self.threshold:
                self._firing.discard(key)
            elif key not in self._firing:
                self._firing.add(key)
                what = f"user {key[1]}" if key[0] == "user" else f"source IP {key[1]}"
                yield Alert.of(self.RULE, Severity.HIGH, ev,
                               f"{len(q)} refused requests (forbidden, unauthenticated or refused attempts) from "
                               f"{what} within {self.window:g}s (brute force or permission probing)")


class SourceDetector:
    """Requests from connection addresses outside the allowed CIDRs or with unexpected user agents, once per
    (user, address, user agent). The address judged is the connection's (the last sourceIPs entry); claimed
    X-Forwarded-For entries are named in the message but never make a request look allowed."""

    RULE = "unexpected-source"

    def __init__(self, cidrs: Iterable[str], agents: Iterable[str]) -> None:
        self.nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        self.agents = [re.compile(a) for a in agents]
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._ips: dict[str, str] = {}
        self._uas: dict[str, bool] = {}
        # Addresses and agents found allowed, apart: a request is quiet when both are. Two small sets cost less
        # per event than one set of pairs (no pair built, and the agents' set is a handful of strings).
        self._quiet_ips: set[str] = set()
        self._quiet_agents: set[str] = set()
        self.dropped = 0

    @property
    def active(self) -> bool:
        return bool(self.nets or self.agents)

    def _ip_verdict(self, ip: str) -> str:
        """Allowed, outside or unparsable, memoised per address string (a log repeats a few addresses millions of
        times; the memo is bounded, so a log of ever-new addresses only loses the memo's speed)."""
        found = self._ips.get(ip)
        if found is None:
            try:
                addr = ipaddress.ip_address(ip)
                found = _IP_ALLOWED if any(addr.version == n.version and addr in n for n in self.nets) \
                    else _IP_OUTSIDE
            except ValueError:
                found = _IP_UNPARSABLE
            if len(self._ips) < VERDICT_MEMO_CAPACITY:
                self._ips[ip] = found
        return found

    def _agent_unexpected(self, ua: str) -> bool:
        """No allowed pattern matches the user agent; memoised per string like _ip_verdict."""
        found = self._uas.get(ua)
        if found is None:
            found = not any(a.search(ua) for a in self.agents)
            if len(self._uas) < VERDICT_MEMO_CAPACITY:
                self._uas[ua] = found
        return found

    def known_quiet(self, ev: dict[str, Any]) -> bool:
        """check() would return None at its first test: a connection address and user agent found allowed."""
        ips = ev.get("sourceIPs")
        if ips.__class__ is not list or not ips:
            return False
        ip, ua = ips[-1], ev.get("userAgent") or ""
        return ip.__class__ is str and ua.__class__ is str and ip in self._quiet_ips and ua in self._quiet_agents

    def check(self, ev: dict[str, Any]) -> Alert | None:
        raw = ev.get("sourceIPs")
        if raw.__class__ is list and raw and raw[-1].__class__ is str:
            ips, ip = raw, raw[-1]  # the common shape: no copy (source_ips keeps the same last entry)
        else:
            ips = source_ips(ev)
            ip = ips[-1] if ips else ""
        ua = ev.get("userAgent") or ""
        is_str = ua.__class__ is str
        if is_str and ip in self._quiet_ips and ua in self._quiet_agents:  # the common case: two set lookups
            return None
        ip_verdict = self._ip_verdict(ip) if self.nets and ip else _IP_ALLOWED
        ua_bad = bool(self.agents) and self._agent_unexpected(ua)
        if ip_verdict is _IP_ALLOWED and len(self._quiet_ips) < VERDICT_MEMO_CAPACITY:
            self._quiet_ips.add(ip)
        if is_str and not ua_bad and len(self._quiet_agents) < VERDICT_MEMO_CAPACITY:
            self._quiet_agents.add(ua)
        if ip_verdict is _IP_ALLOWED and not ua_bad:
            return None
        reasons = []
        if ip_verdict is _IP_OUTSIDE:
            ips = source_ips(ev)
            claimed = f" (forwarded for {', '.join(ips[:-1])})" if len(ips) > 1 else ""
            reasons.append(f"source IP {ip} outside the allowed networks{claimed}")
        elif ip_verdict is _IP_UNPARSABLE:
            reasons.append(f"unparsable source IP {ip!r}")
        if ua_bad:
            reasons.append(f"unexpected user agent {ua!r}")
        if not self.first_time((username(ev), ip, ua)):
            return None
        return Alert.of(self.RULE, Severity.MEDIUM, ev, "; ".join(reasons))

    def first_time(self, key: tuple[Any, Any, Any]) -> bool:
        """Remember a (user, address, agent) identity; False when it already alerted (bounded, oldest dropped)."""
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > SOURCE_SEEN_CAPACITY:
            self._seen.popitem(last=False)
            self.dropped += 1
        return True

    def last_key(self) -> tuple[Any, Any, Any]:
        return next(reversed(self._seen))


class Analyzer:
    """Feed events one by one; returns the alerts each raised. Compile once, feed millions."""

    def __init__(self, detections: list[Detection] | None = None, config: AnalyzerConfig | None = None,
                 *, stateful: bool = True) -> None:
        self.config = config or AnalyzerConfig()
        dets = [d for d in (builtin(Settings(self.config.identities)) if detections is None else detections)
                if d.id not in self.config.disabled]
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
        self._identities = self.config.identities
        self.burst = BurstDetector(self.config.burst_threshold, self.config.burst_window,
                                   self.config.burst_capacity) \
            if stateful and BurstDetector.RULE not in on else None
        src = SourceDetector(self.config.allowed_cidrs, self.config.allowed_user_agents)
        self.source = src if src.active and SourceDetector.RULE not in on else None
        self.burst_inputs = None  # workers set a list: bursts are deferred to the parent

    def _candidates(self, stage: Any, resource: Any, sub: Any, verb: Any) -> tuple[Any, ...]:
        key = (stage, resource, sub, verb)
        found = self._memo.get(key)
        if found is None:
            matching = [d for d in self._plain if stage in d.stages
                        and (d.resources is None or resource in d.resources)
                        and (d.subresources is None or (sub or "") in d.subresources)
                        and (d.verbs is None or verb in d.verbs)]
            # The rules of a batch become one entry: their shared precondition is tested once per event.
            entries: list[Any] = []
            batches: dict[str, list[Detection]] = {}
            for d in matching:
                if d.batch is None or d.batch not in BATCH_GATES:
                    entries.append(d)
                else:
                    if d.batch not in batches:
                        batches[d.batch] = []
                        entries.append(_Batch(BATCH_GATES[d.batch], batches[d.batch]))
                    batches[d.batch].append(d)
            found = tuple(entries)
            if len(self._memo) < MEMO_CAPACITY:
                self._memo[key] = found
        return found

    def prefilter_ok(self) -> bool:
        """Only the impersonation rule is gated on a top-level key, which prefilter.idle_filter looks for; a rule
        gated on another key would need a lookup of its own."""
        return set(self._keyed) <= {"impersonatedUser"}

    @property
    def complete_hooks(self) -> bool:
        return self._complete_hooks

    memo_capacity = MEMO_CAPACITY

    def feed(self, ev: dict[str, Any]) -> list[Alert]:
        self.stats.events += 1
        out: list[Alert] = []
        try:  # free unless raised; one function for the hot path (no per-event method calls when nothing applies)
            stage = ev.get("stage")
            ref = ev.get("objectRef")
            if stage is None or not ref:
                stage, ref = _normalise(ev)
            if ref:
                key = (stage, ref.get("resource"), ref.get("subresource"), ev.get("verb"))
            else:
                key = (stage, None, None, ev.get("verb"))
            dets = self._memo.get(key)
            if dets is None:
                dets = self._candidates(*key)
            if dets:
                flags = (self._identities.exempt(ev), refused(ev))  # once per event, for every rule
                for d in dets:
                    if d.__class__ is _Batch:
                        if d.gate(ev):
                            for m in d.members:
                                self._apply(m, ev, out, flags)
                    else:
                        self._apply(d, ev, out, flags)
            gate_key = self._gate_key
            if gate_key is not None:
                if gate_key in ev:
                    self._gated(self._keyed[gate_key], ev, stage, out)
            elif self._more_keys:
                for k, kd in self._keyed_items:
                    if k in ev:
                        self._gated(kd, ev, stage, out)
            by_user = self._by_user
            if by_user:
                u = ev.get("user")
                ud = by_user.get(u.get("username")) if u else None
                if ud:
                    self._gated(ud, ev, stage, out)
            if stage == "ResponseComplete" and self._complete_hooks:
                src = self.source
                if out or (src is not None and not src.known_quiet(ev)):
                    self._on_complete(ev, out)
                else:  # no alert, no source verdict left to take: only 401/403 feed the bursts
                    rs = ev.get("responseStatus")
                    c = rs.get("code") if rs else None
                    if c == 403 or c == 401:
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
        attempted = bool(out) and refused(ev)  # a refused attempt some rule alerted on counts toward bursts
        if self.source is not None and (a := self.source.check(ev)) is not None:
            out.append(a)
            self.stats.state_dropped = self._dropped()
        rs = ev.get("responseStatus")
        c = rs.get("code") if rs else None
        if c == 403 or c == 401 or attempted:
            if self._burst_inputs is not None:
                self._burst_inputs.append(_burst_view(ev))
            elif self.burst is not None:
                out.extend(self.burst.feed(ev))
                self.stats.state_dropped = self._dropped()

    def _dropped(self) -> int:
        return (self.burst.dropped if self.burst is not None else 0) + (
            self.source.dropped if self.source is not None else 0)

    def _apply(self, d: Detection, ev: dict[str, Any], out: list[Alert],
               flags: tuple[bool, bool] | None = None) -> None:
        """One detection; a malformed body fails only this detection, the others still judge the event. The
        control plane's identities are exempt (one allow-list); a refused request is an attempt: its own wording
        (detections.said), one severity lower, or not this rule's business (Detection.attempts)."""
        exempt, was_refused = flags if flags is not None else (self._identities.exempt(ev), refused(ev))
        if exempt and d.exempt_control_plane:
            return
        if (d.attempts == "never" and was_refused) or (d.attempts == "only" and not was_refused):
            return
        try:
            msg = d.check(ev)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError):
            self.stats.malformed += 1
            return
        if msg is None:
            return
        trigger = ""
        if msg.__class__ is tuple:
            msg, trigger = msg
        if not d.once_per_request or self._first(d.id, ev.get("auditID", "")):
            if d.image_exempt and self._trusted and self._all_trusted(ev):
                return
            sev = d.severity
            if was_refused and d.attempts == "lower" and sev > Severity.LOW:
                sev = Severity(sev - 1)
            out.append(Alert.of(d.id, sev, ev, str(msg), trigger))

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
        self.stats.state_dropped = self._dropped()
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


class _Batch:
    """Rules sharing a precondition, dispatched as one entry (Detection.batch)."""

    __slots__ = ("gate", "members")

    def __init__(self, gate: Any, members: list[Detection]) -> None:
        self.gate, self.members = gate, members


def _normalise(ev: dict[str, Any]) -> tuple[Any, Any]:
    """Read an event as the apiserver meant it: without `stage` (exported and forwarded logs keep only the final
    record) it is a complete event; a flattened sourceIPs string becomes the list (exporters that flatten it also
    drop stage or objectRef; elsewhere alerts.source_ips splits it where it is read); a dropped objectRef is
    rebuilt from requestURI (requestinfo.py). The event is updated in place so every rule sees the same."""
    stage = ev.get("stage")
    if stage is None:
        stage = ev["stage"] = "ResponseComplete"
    if ev.get("sourceIPs").__class__ is str:
        ev["sourceIPs"] = source_ips(ev)
    ref = ev.get("objectRef")
    if not ref:
        derived = object_ref(ev.get("requestURI"))
        if derived is not None:
            ev["objectRef"] = ref = derived
    return stage, ref


def _burst_view(ev: dict[str, Any]) -> dict[str, Any]:
    """The fields a burst alert needs, small enough to ship from a worker."""
    keep = ("auditID", "stageTimestamp", "requestReceivedTimestamp", "timestamp", "user", "impersonatedUser",
            "sourceIPs", "verb", "objectRef", "responseStatus", "annotations", "userAgent", "requestURI")
    return {k: ev[k] for k in keep if k in ev}
