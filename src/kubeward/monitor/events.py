"""Findings that appear or go away, as alerts on the audit alert sinks (stdout table/JSON, file, webhook).

Only the sinks' public interface is used: an alert is built from its JSON record (`Alert.from_json`), so the
monitor's records read like every other kubeward alert: `rule` is the control id, `verb` says `new` or
`resolved`, `objectRef` names the object, `field` the JSON pointer in it, `message` the finding's message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..findings import Finding, Severity
from .state import FindingKeyT, finding_key

NEW, RESOLVED = "new", "resolved"


@dataclass(frozen=True, slots=True)
class FindingEvent:
    change: str  # NEW | RESOLVED
    key: FindingKeyT
    severity: Severity
    title: str

    def to_json(self, when: str) -> dict[str, Any]:
        cid, api_version, kind, namespace, name, path, message = self.key
        ref: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": name}
        if namespace is not None:
            ref["namespace"] = namespace
        return {"rule": cid, "severity": self.severity.label, "time": when, "verb": self.change,
                "objectRef": ref, "field": path,
                "message": f"{self.change}: {self.title}: {message}" if self.title else f"{self.change}: {message}"}


def diff(before: dict[FindingKeyT, tuple[Severity, str]], after: dict[FindingKeyT, tuple[Severity, str]]
         ) -> list[FindingEvent]:
    """Findings in `after` only (new) and in `before` only (resolved), in a stable order."""
    out = [FindingEvent(NEW, k, *after[k]) for k in sorted(after.keys() - before.keys(), key=_order)]
    out += [FindingEvent(RESOLVED, k, *before[k]) for k in sorted(before.keys() - after.keys(), key=_order)]
    return out


def follow(current: Counter[FindingKeyT], added: Iterable[Finding], removed: Iterable[Finding]
           ) -> list[FindingEvent]:
    """diff() from one evaluation's delta (the findings that came and went) instead of every finding:
    `current` counts the findings reported per key and is brought up to date; a key is new when its count
    rises from 0 and resolved when it falls to 0, as comparing the two evaluations' keys would say."""
    was: dict[FindingKeyT, tuple[int, Finding]] = {}
    for f in removed:
        k = finding_key(f)
        was.setdefault(k, (current[k], f))
        current[k] -= 1
    for f in added:
        k = finding_key(f)
        was.setdefault(k, (current[k], f))
        current[k] += 1
    new, resolved = [], []
    for k, (n, f) in was.items():
        if current[k] <= 0:
            del current[k]
            if n > 0:
                resolved.append((k, f))
        elif n <= 0:
            new.append((k, f))
    return [*(FindingEvent(NEW, k, f.control.severity, f.control.title)
              for k, f in sorted(new, key=lambda e: _order(e[0]))),
            *(FindingEvent(RESOLVED, k, f.control.severity, f.control.title)
              for k, f in sorted(resolved, key=lambda e: _order(e[0])))]


def _order(k: FindingKeyT) -> tuple[str, ...]:
    return tuple("" if v is None else v for v in k)


def emit(alerting: Any, events: Iterable[FindingEvent]) -> int:
    """Hand each event to the sinks (they queue; nothing here blocks); returns how many."""
    from ..alerts import Alert

    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    n = 0
    for ev in events:
        alerting.emit(Alert.from_json(ev.to_json(when)))
        n += 1
    return n
