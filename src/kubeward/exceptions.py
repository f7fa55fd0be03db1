"""Exceptions: reasons to silence a finding, from a `.kubeward.yaml` file or an inline annotation.

Suppressed findings stay in the report (counted in the summary); expired entries stop applying and are reported.
The file has a strict schema, because a mistake in it hides findings: an unknown key (`control:` for `controls:`,
`namespace:` for `namespaces:`), an unknown control id, a wrong type or an empty list is an error (exit 2), and
an entry silences every control only when it says `controls: ["*"]`, which the report's summary then names.
The same ids apply to every kind of check (scan controls, node, PKI, encryption, etcd, audit policy), and one
schema serves every command: a vulnerability id (CVE-2024-5321, GHSA-xxxx-xxxx-xxxx, or a pattern such as
CVE-2024-*) is accepted everywhere and silences the `vulns` findings of that id (their control id), with expiry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from .findings import Finding, Report
from .lazyre import lazy
from .records import field, record
from .resource import Resource

IGNORE_ANNOTATION = "kubeward.io/ignore"
IGNORE_REASON_ANNOTATION = "kubeward.io/ignore-reason"
DEFAULT_FILE = ".kubeward.yaml"
EVERY_CONTROL = "*"
TOP_KEYS = ("exceptions",)
LIST_KEYS = ("controls", "kinds", "namespaces", "names")
ENTRY_KEYS = (*LIST_KEYS, "reason", "expires")


# CVE ids (cve.org: CVE-YYYY-NNNN, four or more digits) and GitHub advisory ids (GHSA-xxxx-xxxx-xxxx in the
# advisory database's base32 alphabet): the ids `vulns` findings carry, whichever command reads the file.
_VULN_ID = lazy(r"CVE-\d{4}-\d{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3}")
_VULN_PATTERN = lazy(r"(CVE|GHSA)-[0-9a-z*?\[\]-]*[*?\[][0-9a-z*?\[\]-]*")


def is_vulnerability_id(text: str) -> bool:
    """A CVE or GHSA id, or a glob over them (`CVE-2024-*`): valid in every exceptions file."""
    return bool(_VULN_ID.fullmatch(text) or _VULN_PATTERN.fullmatch(text))


class ExceptionsError(ValueError):
    """The exceptions file is unreadable or malformed (a user error: exit 2)."""


@record(frozen=True)
class ExceptionRule:
    controls: tuple[str, ...]  # never empty: ids, globs over ids, or "*"
    kinds: tuple[str, ...]  # empty: any
    namespaces: tuple[str, ...]
    names: tuple[str, ...]
    reason: str
    expires: dt.date | None
    where: str = ""  # the file and entry, for the note when it expires

    def expired_on(self, today: dt.date) -> bool:
        """An entry stops applying the day after its `expires` date."""
        return self.expires is not None and self.expires < today

    def expired_note(self) -> str:
        return f"{self.where} ({self.describe()}): {self.reason}"

    def matches(self, f: Finding) -> bool:
        o = f.object
        return (
            _any(self.controls, f.control.id)
            and _any(self.kinds, o.kind)
            and _any(self.namespaces, o.namespace or "")
            and _any(self.names, o.name)
        )

    @property
    def every_control(self) -> bool:
        return EVERY_CONTROL in self.controls

    def describe(self) -> str:
        parts = [f"controls={','.join(self.controls)}"]
        for label, vals in (("kinds", self.kinds), ("namespaces", self.namespaces), ("names", self.names)):
            if vals:
                parts.append(f"{label}={','.join(vals)}")
        return " ".join(parts) + (f" expired {self.expires.isoformat()}" if self.expires else "")


def _any(patterns: tuple[str, ...], value: str) -> bool:
    return not patterns or any(fnmatchcase(value, p) for p in patterns)


def _all_known_ids() -> frozenset[str]:
    from .controls.standalone import known_control_ids

    return known_control_ids()


@record
class Exceptions:
    rules: list[ExceptionRule] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    # Entries the reader must know about (`controls: ["*"]`): copied into every report's exception notes.
    notes: list[str] = field(default_factory=list)
    known_ids: Callable[[], frozenset[str]] = _all_known_ids

    def as_of(self, today: dt.date) -> Exceptions:
        """The entries still in force on `today`, the others among the expired: a process that runs for days
        (the monitor) must stop applying an accepted risk when it expires, not when it restarts."""
        gone = [r for r in self.rules if r.expired_on(today)]
        if not gone:
            return self
        return Exceptions([r for r in self.rules if r not in gone], [*self.expired, *(r.expired_note() for r in gone)],
                          list(self.notes), self.known_ids)

    def may_silence(self, res: Resource) -> bool:
        """False when nothing could silence a finding on this object (no rule, no ignore annotation): the
        runner then skips the per-finding lookup."""
        return bool(self.rules) or any(IGNORE_ANNOTATION in ann for ann in _annotation_sources(res))

    def reason_for(self, finding: Finding, res: Resource | None = None) -> str | None:
        inline = _inline_reason(finding.control.id, res) if res is not None else None
        if inline is not None:
            return inline
        for rule in self.rules:
            if rule.matches(finding):
                return rule.reason
        return None

    def inline_notes(self, resources: Iterable[Resource]) -> list[str]:
        """One note per object whose `kubeward.io/ignore` names ids no check has (a typo silences nothing, and
        the finding it meant to silence stays: say so rather than leave the reader guessing)."""
        notes: list[str] = []
        known: frozenset[str] | None = None
        for res in resources:
            for ann in _annotation_sources(res):
                if IGNORE_ANNOTATION not in ann:
                    continue
                ids = ann[IGNORE_ANNOTATION]
                if known is None:
                    known = self.known_ids()
                where = f"{res.ref()} ({res.location()})"
                if not isinstance(ids, str):
                    notes.append(f"{where}: {IGNORE_ANNOTATION} is not a string; it silences nothing")
                    continue
                unknown = [i for i in _inline_ids(ids)
                           if i != EVERY_CONTROL and i not in known and not is_vulnerability_id(i)]
                if unknown:
                    notes.append(f"{where}: {IGNORE_ANNOTATION} names unknown control id(s) "
                                 f"{', '.join(_with_hint(i, known) for i in unknown)}; they silence nothing")
        return notes

    def apply(self, report: Report) -> Report:
        """For checks that build their Report themselves (node, PKI, encryption, etcd, audit policy): move the
        findings a rule matches to `suppressed`, recount the failed objects, carry expired entries and notes."""
        report.expired_exceptions = list(self.expired)
        report.exception_notes = list(self.notes)
        if not self.rules:
            return report
        kept: list[Finding] = []
        touched: set[str] = set()
        for f in report.findings:
            reason = self.reason_for(f)
            if reason is None:
                kept.append(f)
            else:
                f.suppressed_by = reason
                report.suppressed.append(f)
                touched.add(f.control.id)
        report.findings = kept
        for cid in touched:
            result = report.controls.get(cid)
            if result is not None:
                objects = {f.object for f in kept if f.control.id == cid}
                result.failed = min(result.failed, len(objects))
        return report


def _annotation_sources(res: Resource) -> list[dict[str, Any]]:
    """Where an inline ignore may sit: the object's annotations and, for workloads, its pod template's."""
    sources = [res.annotations]
    pod = res.pod()
    if pod is not None and pod.base:
        sources.append(pod.annotations)
    return sources


def _aliases() -> dict[str, tuple[str, ...]]:
    """Retired control ids and the ids they stand for (controls/registry.py `alias`)."""
    from .controls.registry import aliases

    return aliases()


def _successors(patterns: Iterable[str]) -> tuple[str, ...]:
    """The ids that retired ids among (or matched by) the patterns stand for: an exception written for KW-PSS-privileged
    keeps silencing the privileged finding, now KW-W001's."""
    out: dict[str, None] = {}
    for old, ids in _aliases().items():
        if any(p != EVERY_CONTROL and fnmatchcase(old, p) for p in patterns):
            out.update(dict.fromkeys(ids))
    return tuple(out)


def _inline_ids(text: str) -> set[str]:
    ids = {i.strip() for i in text.split(",") if i.strip()}
    return ids | set(_successors(ids)) if ids & _aliases().keys() else ids


def _inline_reason(control_id: str, res: Resource) -> str | None:
    """`kubeward.io/ignore: "ID1,ID2"` (or `*`) on the object or on its pod template."""
    for ann in _annotation_sources(res):
        ids = ann.get(IGNORE_ANNOTATION)
        if not isinstance(ids, str):
            continue
        wanted = _inline_ids(ids)
        if control_id in wanted or EVERY_CONTROL in wanted:
            reason = ann.get(IGNORE_REASON_ANNOTATION)
            return f"annotation: {reason}" if isinstance(reason, str) and reason else "annotation (no reason given)"
    return None


def _with_hint(word: str, choices: Iterable[str]) -> str:
    import difflib  # only for a misspelt key: not on every scan's start-up

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"'{word}' (did you mean '{close[0]}'?)" if close else f"'{word}'"


def _check_keys(mapping: dict[Any, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ExceptionsError(f"{where}: unknown key {_with_hint(str(key), allowed)} "
                                  f"(allowed: {', '.join(allowed)})")


def _str_list(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    """A non-empty list of non-empty strings when present; () when the key is absent (matches any)."""
    if key not in entry:
        return ()
    val = entry[key]
    if not isinstance(val, list) or not all(isinstance(v, str) and v.strip() for v in val):
        raise ExceptionsError(f"{where}: {key} must be a list of non-empty strings, e.g. {key}: [...]")
    if not val:
        raise ExceptionsError(f"{where}: {key} is empty (omit the key to match any)")
    return tuple(v.strip() for v in val)


def _controls(entry: dict[str, Any], where: str, known: Callable[[], frozenset[str]]) -> tuple[str, ...]:
    if "controls" not in entry:
        raise ExceptionsError(f"{where}: controls is required (ids, or [\"*\"] to silence every control)")
    patterns = _str_list(entry, "controls", where)
    retired = _aliases()
    ids = known() | retired.keys()
    for p in patterns:
        if p == EVERY_CONTROL or p in ids or is_vulnerability_id(p):
            continue
        if any(ch in p for ch in "*?["):
            matched = [i for i in ids if fnmatchcase(i, p)]
            if not matched:
                raise ExceptionsError(f"{where}: control pattern '{p}' matches no control (see `kubeward controls`)")
            if len(matched) == len(ids):
                raise ExceptionsError(f"{where}: control pattern '{p}' matches every control: write [\"*\"] "
                                      "if that is meant")
            continue
        raise ExceptionsError(f"{where}: unknown control id {_with_hint(p, ids)} (see `kubeward controls`)")
    return patterns + tuple(i for i in _successors(patterns) if i not in patterns)


def _expires(entry: dict[str, Any], where: str) -> dt.date | None:
    if "expires" not in entry:
        return None
    value = entry["expires"]
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ExceptionsError(f"{where}: expires must be a date (YYYY-MM-DD)")


def load_exceptions(path: str | None, *, today: dt.date | None = None, cwd: Path | None = None,
                    known_ids: Callable[[], frozenset[str]] = _all_known_ids) -> Exceptions:
    """Read the given file, or `.kubeward.yaml` in the working directory when present.

    The file goes through the shared configuration loader (size limit, alias bombs, nesting); any problem is an
    ExceptionsError naming the file and the entry.
    """
    from .sources.files import load_config

    today = today or dt.date.today()
    if path is None:
        default = (cwd or Path.cwd()) / DEFAULT_FILE
        if not default.is_file():
            return Exceptions(known_ids=known_ids)
        path = str(default)
    docs, errors = load_config(path)
    if errors:
        raise ExceptionsError(f"{errors[0].file}: {errors[0].message}")
    docs = [d for d in docs if d is not None]
    if not docs:
        return Exceptions(known_ids=known_ids)
    if len(docs) > 1:
        raise ExceptionsError(f"{path}: {len(docs)} YAML documents; an exceptions file holds one")
    data = docs[0]
    if not isinstance(data, dict):
        raise ExceptionsError(f"{path}: expected a mapping with an `exceptions:` list")
    _check_keys(data, TOP_KEYS, path)
    entries = data.get("exceptions")
    if entries is None:
        return Exceptions(known_ids=known_ids)
    if not isinstance(entries, list):
        raise ExceptionsError(f"{path}: exceptions must be a list of entries")
    out = Exceptions(known_ids=known_ids)
    for i, entry in enumerate(entries):
        where = f"{path}: exceptions[{i}]"
        if not isinstance(entry, dict):
            raise ExceptionsError(f"{where}: must be a mapping")
        _check_keys(entry, ENTRY_KEYS, where)
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ExceptionsError(f"{where}: a reason is required (a non-empty string)")
        rule = ExceptionRule(
            controls=_controls(entry, where, known_ids),
            kinds=_str_list(entry, "kinds", where),
            namespaces=_str_list(entry, "namespaces", where),
            names=_str_list(entry, "names", where),
            reason=reason.strip(),
            expires=_expires(entry, where),
            where=where,
        )
        if rule.expired_on(today):
            out.expired.append(rule.expired_note())
            continue
        out.rules.append(rule)
        if rule.every_control:
            scope = rule.describe().removeprefix(f"controls={','.join(rule.controls)}").strip()
            out.notes.append(f"{where} silences every control{' for ' + scope if scope else ', on every object'}: "
                             f"{rule.reason}")
    return out
