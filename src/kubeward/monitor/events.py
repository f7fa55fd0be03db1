"""Findings that appear or go away, as alerts on the audit alert sinks (stdout table/JSON, file, webhook).

Only the sinks' public interface is used: an alert is built from its JSON record (`Alert.from_json`), so the
monitor's records read like every other kubeward alert: `rule` is the control id, `verb` says `new` or
`resolved`, `objectRef` names the object, `field` the JSON pointer in it, `message` the finding's message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..findings import Severity
from .state import FindingKeyT

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
