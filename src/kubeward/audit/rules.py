"""Custom detections in a small YAML format: field matchers over the audit event, compiled once.

```yaml
rules:
- id: prod-secret-delete
  severity: high
  message: "{user.username} deleted {objectRef.namespace}/{objectRef.name}"
  match:
    verb: [delete, deletecollection]          # list: any of
    objectRef.resource: secrets               # scalar: equals
    objectRef.namespace: {prefix: prod-}
    user.username: {notPrefix: "system:"}
    annotations[authorization.k8s.io/decision]: allow
    sourceIPs: {notCidr: [10.0.0.0/8]}
```
Besides `rules`, the file sets what the built-in rules share: `controlPlane` (the identities every rule leaves
alone: `users`, `userPrefixes`, `groups`; see identities.py for the defaults), `disallowedUsers` and
`disallowedNamespaces` (the lists of the built-in `disallowed-user` and `disallowed-namespace` rules).

A field path is dotted; `[key]` quotes a key holding dots; a list field matches when any element does (the `not…`
operators when none does). `verb` and `objectRef.resource` given as plain values also index the rule, so events of
other verbs/resources never reach it. `stages` defaults to [ResponseComplete].
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from ..engines.auditpolicy import STAGES
from ..findings import Severity
from .detections import COMPLETE, Detection, Settings, refusal, refused
from .identities import Identities

_TOKEN = re.compile(r"\[([^\]]+)\]|([^.\[\]]+)")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
Matcher = Callable[[list[Any]], bool]


class RulesError(ValueError):
    """The rules file is unusable; the message names the file and the rule."""


def split_path(path: str) -> tuple[str, ...]:
    parts = tuple(m.group(1) or m.group(2) for m in _TOKEN.finditer(path))
    if not parts:
        raise ValueError(f"empty field path {path!r}")
    return parts


def values(obj: Any, parts: tuple[str, ...]) -> list[Any]:
    """Every value at the path; lists fan out unless indexed by a number."""
    cur: list[Any] = [obj]
    for p in parts:
        nxt: list[Any] = []
        for c in cur:
            if isinstance(c, dict):
                if p in c:
                    nxt.append(c[p])
            elif isinstance(c, list):
                if p.isdigit():
                    if int(p) < len(c):
                        nxt.append(c[int(p)])
                else:
                    nxt.extend(e[p] for e in c if isinstance(e, dict) and p in e)
        cur = nxt
        if not cur:
            return []
    out: list[Any] = []
    for c in cur:
        out.extend(c) if isinstance(c, list) else out.append(c)
    return out


def _in_cidrs(nets: list[Any], v: Any) -> bool:
    try:
        ip = ipaddress.ip_address(str(v))
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in nets)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _positive(op: str, arg: Any, where: str) -> Callable[[Any], bool]:
    if op in ("equals", "notEquals"):
        return lambda v: v == arg
    if op in ("in", "notIn"):
        if not isinstance(arg, list):
            raise RulesError(f"{where}: {op} needs a list")
        s = list(arg)
        return lambda v: v in s
    if op in ("prefix", "notPrefix", "suffix", "contains"):
        if not isinstance(arg, str | list):
            raise RulesError(f"{where}: {op} needs a string or a list of strings")
        args = tuple(arg) if isinstance(arg, list) else (arg,)
        if op == "suffix":
            return lambda v: isinstance(v, str) and v.endswith(args)
        if op == "contains":
            return lambda v: isinstance(v, str) and any(a in v for a in args)
        return lambda v: isinstance(v, str) and v.startswith(args)
    if op == "regex":
        try:
            rx = re.compile(str(arg))
        except re.error as exc:
            raise RulesError(f"{where}: bad regex {arg!r}: {exc}") from None
        return lambda v: isinstance(v, str) and rx.search(v) is not None
    if op in ("cidr", "notCidr"):
        try:
            nets = [ipaddress.ip_network(str(a), strict=False) for a in (arg if isinstance(arg, list) else [arg])]
        except ValueError as exc:
            raise RulesError(f"{where}: {exc}") from None
        return partial(_in_cidrs, nets)
    if op in ("gt", "gte", "lt", "lte"):
        if _num(arg) is None:
            raise RulesError(f"{where}: {op} needs a number")
        a = float(arg)
        cmp = {"gt": a.__lt__, "gte": a.__le__, "lt": a.__gt__, "lte": a.__ge__}[op]
        return lambda v: (n := _num(v)) is not None and cmp(n)
    raise RulesError(f"{where}: unknown operator {op!r} (equals, notEquals, in, notIn, prefix, notPrefix, suffix, "
                     "contains, regex, cidr, notCidr, gt, gte, lt, lte, exists)")


def compile_matcher(spec: Any, where: str) -> Matcher:
    if isinstance(spec, list):
        s = list(spec)
        return lambda vals: any(v in s for v in vals)
    if not isinstance(spec, dict):
        return lambda vals: spec in vals
    checks: list[Matcher] = []
    for op, arg in spec.items():
        if op == "exists":
            checks.append(partial(_exists, bool(arg)))
            continue
        pos = _positive(op, arg, where)
        checks.append(partial(_none_of if op.startswith("not") else _any_of, pos))
    return lambda vals: all(c(vals) for c in checks)


def _exists(want: bool, vals: list[Any]) -> bool:
    return bool(vals) == want


def _any_of(pred: Callable[[Any], bool], vals: list[Any]) -> bool:
    return any(pred(v) for v in vals)


def _none_of(pred: Callable[[Any], bool], vals: list[Any]) -> bool:
    return not any(pred(v) for v in vals)


def _render(template: str, ev: dict[str, Any]) -> str:
    def sub(m: re.Match[str]) -> str:
        try:
            vals = values(ev, split_path(m.group(1)))
        except ValueError:
            return m.group(0)
        return ",".join(str(v) for v in vals)

    return _PLACEHOLDER.sub(sub, template)


def compile_rule(raw: Any, where: str) -> Detection:
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: a rule must be a mapping")
    rid = raw.get("id") or raw.get("name")
    if not isinstance(rid, str) or not rid:
        raise RulesError(f"{where}: id is required")
    where = f"{where} ({rid})"
    try:
        sev = Severity.parse(str(raw.get("severity", "medium")))
    except ValueError as exc:
        raise RulesError(f"{where}: {exc}") from None
    match = raw.get("match") or {}
    if not isinstance(match, dict):
        raise RulesError(f"{where}: match must be a mapping of field path to matcher")
    stages = raw.get("stages") or sorted(COMPLETE)
    if not isinstance(stages, list) or any(s not in STAGES for s in stages):
        raise RulesError(f"{where}: stages must be a list of {', '.join(STAGES)}")
    verbs = resources = subresources = None
    matchers: list[tuple[tuple[str, ...], Matcher]] = []
    for path, spec in match.items():
        if path == "verb" and _plain(spec):
            verbs = frozenset(spec if isinstance(spec, list) else [spec])
            continue
        if path == "objectRef.resource" and _plain(spec):
            resources = frozenset(spec if isinstance(spec, list) else [spec])
            continue
        if path == "objectRef.subresource" and _plain(spec):
            subresources = frozenset(spec if isinstance(spec, list) else [spec])
            continue
        try:
            parts = split_path(str(path))
        except ValueError as exc:
            raise RulesError(f"{where}: {exc}") from None
        matchers.append((parts, compile_matcher(spec, f"{where}: {path}")))
    template = str(raw.get("message") or raw.get("title") or rid)

    def check(ev: dict[str, Any]) -> str | None:
        for parts, m in matchers:
            if not m(values(ev, parts)):
                return None
        text = _render(template, ev)
        return f"refused attempt ({refusal(ev)}): {text}" if refused(ev) else text

    return Detection(rid, str(raw.get("title") or rid), sev, check, resources, verbs, frozenset(stages),
                     once_per_request=len(stages) > 1, subresources=subresources, exempt_control_plane=False,
                     attempts="keep")


def _plain(spec: Any) -> bool:
    return isinstance(spec, str) or (isinstance(spec, list) and all(isinstance(s, str) for s in spec))


def load_rules(path: str) -> list[Detection]:
    """Compile a rules file's own rules; any problem is one RulesError naming the file and the rule."""
    return load_rules_file(path)[0]


KNOWN_KEYS = frozenset({"rules", "controlPlane", "disallowedUsers", "disallowedNamespaces"})


def load_rules_file(path: str) -> tuple[list[Detection], Settings]:
    """The custom rules and the settings of the built-in ones (control-plane allow-list, disallowed lists)."""
    from ..sources.files import ConfigFileError, load_config_document

    try:  # the manifest loader's guards (size, FIFO, alias bombs, recursion), YAML as Kubernetes reads it
        doc = load_config_document(path)
    except ConfigFileError as exc:
        raise RulesError(str(exc)) from None
    if isinstance(doc, dict):
        unknown = set(doc) - KNOWN_KEYS
        if unknown:
            raise RulesError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                             f"(expected {', '.join(sorted(KNOWN_KEYS))})")
    rules = (doc.get("rules") or []) if isinstance(doc, dict) else doc
    if not isinstance(rules, list):
        raise RulesError(f"{path}: expected a mapping with a `rules` list")
    out = [compile_rule(r, f"{path}: rules[{i}]") for i, r in enumerate(rules)]
    ids = [d.id for d in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise RulesError(f"{path}: duplicate rule id(s) {', '.join(dup)}")
    settings = Settings()
    if isinstance(doc, dict):
        try:
            identities = Identities.parse(doc["controlPlane"], path) if "controlPlane" in doc else Identities()
        except ValueError as exc:
            raise RulesError(str(exc)) from None
        settings = Settings(identities, _names(doc, "disallowedUsers", path), _names(doc, "disallowedNamespaces", path))
    return out, settings


def _names(doc: dict[str, Any], key: str, path: str) -> frozenset[str]:
    v = doc.get(key) or []
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise RulesError(f"{path}: {key} must be a list of names")
    return frozenset(v)
