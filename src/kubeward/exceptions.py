"""Exceptions: reasons to silence a finding, from a `.kubeward.yaml` file or an inline annotation.

Suppressed findings stay in the report (counted in the summary); expired entries stop applying and are reported.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from .findings import Finding
from .resource import Resource

IGNORE_ANNOTATION = "kubeward.io/ignore"
IGNORE_REASON_ANNOTATION = "kubeward.io/ignore-reason"
DEFAULT_FILE = ".kubeward.yaml"


class ExceptionsError(ValueError):
    """The exceptions file is unreadable or malformed (a user error: exit 2)."""


@dataclass(frozen=True, slots=True)
class ExceptionRule:
    controls: tuple[str, ...]
    kinds: tuple[str, ...]
    namespaces: tuple[str, ...]
    names: tuple[str, ...]
    reason: str
    expires: dt.date | None

    def matches(self, f: Finding) -> bool:
        o = f.object
        return (
            _any(self.controls, f.control.id)
            and _any(self.kinds, o.kind)
            and _any(self.namespaces, o.namespace or "")
            and _any(self.names, o.name)
        )

    def describe(self) -> str:
        parts = [f"controls={','.join(self.controls) or '*'}"]
        for label, vals in (("kinds", self.kinds), ("namespaces", self.namespaces), ("names", self.names)):
            if vals:
                parts.append(f"{label}={','.join(vals)}")
        return " ".join(parts) + (f" expired {self.expires.isoformat()}" if self.expires else "")


def _any(patterns: tuple[str, ...], value: str) -> bool:
    return not patterns or any(fnmatchcase(value, p) for p in patterns)


@dataclass(slots=True)
class Exceptions:
    rules: list[ExceptionRule] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)

    def may_silence(self, res: Resource) -> bool:
        """False when nothing could silence a finding on this object (no rule, no ignore annotation): the
        runner then skips the per-finding lookup."""
        return bool(self.rules) or any(IGNORE_ANNOTATION in ann for ann in _annotation_sources(res))

    def reason_for(self, finding: Finding, res: Resource) -> str | None:
        inline = _inline_reason(finding.control.id, res)
        if inline is not None:
            return inline
        for rule in self.rules:
            if rule.matches(finding):
                return rule.reason
        return None


def _annotation_sources(res: Resource) -> list[dict[str, Any]]:
    """Where an inline ignore may sit: the object's annotations and, for workloads, its pod template's."""
    sources = [res.annotations]
    pod = res.pod()
    if pod is not None and pod.base:
        sources.append(pod.annotations)
    return sources


def _inline_reason(control_id: str, res: Resource) -> str | None:
    """`kubeward.io/ignore: "ID1,ID2"` (or `*`) on the object or on its pod template."""
    for ann in _annotation_sources(res):
        ids = ann.get(IGNORE_ANNOTATION)
        if not isinstance(ids, str):
            continue
        wanted = {i.strip() for i in ids.split(",") if i.strip()}
        if control_id in wanted or "*" in wanted:
            reason = ann.get(IGNORE_REASON_ANNOTATION)
            return f"annotation: {reason}" if isinstance(reason, str) and reason else "annotation (no reason given)"
    return None


def _str_list(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    val = entry.get(key, [])
    if isinstance(val, str):
        val = [val]
    if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
        raise ExceptionsError(f"{where}: {key} must be a list of strings")
    return tuple(val)


def load_exceptions(path: str | None, *, today: dt.date | None = None, cwd: Path | None = None) -> Exceptions:
    """Read the given file, or `.kubeward.yaml` in the working directory when present."""
    today = today or dt.date.today()
    if path is None:
        default = (cwd or Path.cwd()) / DEFAULT_FILE
        if not default.is_file():
            return Exceptions()
        path = str(default)
    from .sources.files import YAMLFileError, load_yaml_document

    try:  # the manifest loader's guards: refused over 1 MiB, never cut
        data = load_yaml_document(path, max_file_bytes=1 << 20)
    except YAMLFileError as exc:
        raise ExceptionsError(str(exc)) from None
    if data is None:
        return Exceptions()
    entries = data.get("exceptions") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ExceptionsError(f"{path}: expected a mapping with an `exceptions:` list")
    out = Exceptions()
    for i, entry in enumerate(entries):
        where = f"{path}: exceptions[{i}]"
        if not isinstance(entry, dict):
            raise ExceptionsError(f"{where}: must be a mapping")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ExceptionsError(f"{where}: a reason is required")
        expires = entry.get("expires")
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                raise ExceptionsError(f"{where}: expires must be a date (YYYY-MM-DD)") from None
        elif isinstance(expires, dt.datetime):
            expires = expires.date()
        elif expires is not None and not isinstance(expires, dt.date):
            raise ExceptionsError(f"{where}: expires must be a date (YYYY-MM-DD)")
        rule = ExceptionRule(
            controls=_str_list(entry, "controls", where),
            kinds=_str_list(entry, "kinds", where),
            namespaces=_str_list(entry, "namespaces", where),
            names=_str_list(entry, "names", where),
            reason=reason.strip(),
            expires=expires,
        )
        if rule.expires is not None and rule.expires < today:
            out.expired.append(f"{path}: exceptions[{i}] ({rule.describe()}): {rule.reason}")
        else:
            out.rules.append(rule)
    return out
