"""The ExecAllowlist model (apiVersion kubeward.io/v1): which executables may run in which scope.

A rule applies to a process when every key of its scope matches; an exec is allowed when some applicable rule lists
the executable (absolute path or glob, optionally pinned by sha256). When no rule applies, `spec.defaultAction`
decides (deny unless set to allow). Scope keys:
  host: true          processes outside any pod (no kubepods pod<UID> cgroup)
  cgroup: /a/b        the process's cgroup is /a/b or below it
  podUID, namespace, pod, container, image   pod attribution (globs allowed, except podUID)
Path globs: `*` and `?` stay within one path segment, `**` crosses segments, `[...]` is a character class.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import yaml

from .cgroups import Attribution
from .pods import PodIndex

API_VERSION = "kubeward.io/v1"
KIND = "ExecAllowlist"
SCOPE_KEYS = ("host", "cgroup", "podUID", "namespace", "pod", "container", "image")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_FILE_BYTES = 16 << 20


class AllowlistError(ValueError):
    """A malformed allowlist; the message is one line, `<file>: <reason>`."""


@dataclass(frozen=True, slots=True)
class ProcessScope:
    """Everything a scope can be matched against, for one process."""

    cgroup: str = "/"
    pod_uid: str | None = None
    container_id: str | None = None
    namespace: str | None = None
    pod: str | None = None
    container: str | None = None
    image: str | None = None

    @classmethod
    def resolve(cls, attr: Attribution | None, pods: PodIndex | None = None) -> ProcessScope:
        if attr is None:
            return cls()
        info = pods.pod(attr.pod_uid) if pods is not None else None
        if info is None:
            return cls(attr.cgroup, attr.pod_uid, attr.container_id)
        name, image = info.containers.get(attr.container_id or "", (None, None))
        return cls(attr.cgroup, attr.pod_uid, attr.container_id, info.namespace, info.name, name, image)

    @property
    def host(self) -> bool:
        return self.pod_uid is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cgroup": self.cgroup}
        for key, value in (("podUID", self.pod_uid), ("containerID", self.container_id),
                           ("namespace", self.namespace), ("pod", self.pod), ("container", self.container),
                           ("image", self.image)):
            if value is not None:
                out[key] = value
        return out


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Path glob → regex: `*`/`?` never match `/`, `**` matches across segments."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "^") else i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                neg = body[:1] in ("!", "^")
                body = body[1:] if neg else body
                out.append("[" + ("^/" if neg else "") + body.replace("\\", "\\\\") + "]")
                i = j + 1
                continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True, slots=True)
class Executable:
    path: str
    sha256: str | None = None
    _regex: re.Pattern[str] | None = None

    def path_matches(self, exe: str) -> bool:
        return exe == self.path if self._regex is None else self._regex.match(exe) is not None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    scope: dict[str, Any]
    executables: tuple[Executable, ...]

    def applies(self, proc: ProcessScope) -> bool:
        for key, want in self.scope.items():
            if key == "host":
                if proc.host != bool(want):
                    return False
            elif key == "cgroup":
                base = want.rstrip("/") or "/"
                if not (base == "/" or proc.cgroup == base or proc.cgroup.startswith(base + "/")):
                    return False
            elif key == "podUID":
                if proc.pod_uid != want.lower():
                    return False
            else:
                have = getattr(proc, key)
                if have is None or not fnmatchcase(have, want):
                    return False
        return True


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    rule: str | None  # the deciding rule (allowing rule, or the rule whose sha256 did not match)
    reason: str  # "allowlisted" | "not-allowlisted" | "no-rule-for-scope" | "sha256-mismatch"


@dataclass(slots=True)
class Allowlist:
    rules: list[Rule] = field(default_factory=list)
    default_allow: bool = False
    name: str = ""
    _cache: dict[tuple[str, ProcessScope], Verdict] = field(default_factory=dict, repr=False)

    def decide(self, exe: str, proc: ProcessScope, digest: Callable[[], str | None]) -> Verdict:
        """`digest` hashes the file lazily: only entries pinned by sha256 pay for it. Verdicts that did not
        depend on file content are memoised per (path, scope): the list is immutable once loaded."""
        key = (exe, proc)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        verdict, pinned = self._decide(exe, proc, digest)
        if not pinned:
            if len(self._cache) > 65536:
                self._cache.clear()
            self._cache[key] = verdict
        return verdict

    def _decide(self, exe: str, proc: ProcessScope, digest: Callable[[], str | None]) -> tuple[Verdict, bool]:
        applicable = False
        pinned = False
        mismatch: str | None = None
        for rule in self.rules:
            if not rule.applies(proc):
                continue
            applicable = True
            for ex in rule.executables:
                if not ex.path_matches(exe):
                    continue
                if ex.sha256 is None:
                    return Verdict(True, rule.name, "allowlisted"), pinned
                pinned = True
                if digest() == ex.sha256:
                    return Verdict(True, rule.name, "allowlisted"), pinned
                mismatch = mismatch or rule.name
        if mismatch is not None:
            return Verdict(False, mismatch, "sha256-mismatch"), pinned
        if not applicable:
            return Verdict(self.default_allow, None, "no-rule-for-scope"), pinned
        return Verdict(False, None, "not-allowlisted"), pinned


def load_allowlist(path: str) -> Allowlist:
    """Read through the shared manifest loader, which carries the hostile-input guards (size, depth, alias bombs)."""
    from ..sources.files import load_paths

    if os.path.isdir(path):
        raise AllowlistError(f"{path}: is a directory, expected an ExecAllowlist file")
    result = load_paths([path], max_file_bytes=MAX_FILE_BYTES)
    if result.errors:
        err = result.errors[0]
        raise AllowlistError(f"{err.file}: {err.message}")
    docs = [r for r in result.resources if r.kind == KIND]
    if len(docs) > 1:
        raise AllowlistError(f"{path}: {len(docs)} {KIND} documents, expected one")
    if not docs:
        if result.resources:
            return parse_allowlist(result.resources[0].obj, path)  # names the wrong apiVersion/kind
        raise AllowlistError(f"{path}: no {KIND} document")
    return parse_allowlist(docs[0].obj, path)


def parse_allowlist(doc: Any, where: str = "allowlist") -> Allowlist:
    def bad(msg: str) -> AllowlistError:
        return AllowlistError(f"{where}: {msg}")

    if not isinstance(doc, dict):
        raise bad("expected a mapping with apiVersion kubeward.io/v1, kind ExecAllowlist")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        raise bad(f"apiVersion must be {API_VERSION} and kind {KIND}, got "
                  f"{doc.get('apiVersion')!r}/{doc.get('kind')!r}")
    meta: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise bad("spec must be a mapping")
    action = spec.get("defaultAction", "deny")
    if action not in ("deny", "allow"):
        raise bad(f"spec.defaultAction must be deny or allow, got {action!r}")
    raw_rules = spec.get("rules", [])
    if not isinstance(raw_rules, list):
        raise bad("spec.rules must be a list")
    rules = [_parse_rule(r, i, bad) for i, r in enumerate(raw_rules)]
    return Allowlist(rules, action == "allow", str(meta.get("name") or ""))


def _parse_rule(raw: Any, i: int, bad: Callable[[str], AllowlistError]) -> Rule:
    at = f"spec.rules[{i}]"
    if not isinstance(raw, dict):
        raise bad(f"{at} must be a mapping")
    name = str(raw.get("name") or f"rules[{i}]")
    scope = raw.get("scope")
    if not isinstance(scope, dict) or not scope:
        raise bad(f"{at}.scope must be a non-empty mapping of {', '.join(SCOPE_KEYS)}")
    for key, value in scope.items():
        if key not in SCOPE_KEYS:
            raise bad(f"{at}.scope: unknown key {key!r} (expected {', '.join(SCOPE_KEYS)})")
        if key == "host":
            if not isinstance(value, bool):
                raise bad(f"{at}.scope.host must be true or false")
        elif not isinstance(value, str) or not value:
            raise bad(f"{at}.scope.{key} must be a non-empty string")
        elif key == "cgroup" and not value.startswith("/"):
            raise bad(f"{at}.scope.cgroup must be an absolute cgroup path")
    if "host" in scope and scope["host"] and set(scope) & {"podUID", "namespace", "pod", "container", "image"}:
        raise bad(f"{at}.scope: host: true cannot be combined with pod keys (it would never match)")
    raw_exes = raw.get("executables")
    if not isinstance(raw_exes, list) or not raw_exes:
        raise bad(f"{at}.executables must be a non-empty list")
    return Rule(name, dict(scope), tuple(_parse_exe(e, f"{at}.executables[{j}]", bad) for j, e in enumerate(raw_exes)))


def _parse_exe(raw: Any, at: str, bad: Callable[[str], AllowlistError]) -> Executable:
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, dict):
        raise bad(f"{at} must be a path or a mapping with path and optional sha256")
    path = raw.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise bad(f"{at}.path must be an absolute path or glob")
    sha = raw.get("sha256")
    if sha is not None:
        if not isinstance(sha, str) or not _SHA256.match(sha.lower()):
            raise bad(f"{at}.sha256 must be 64 hex digits")
        sha = sha.lower()
    unknown = set(raw) - {"path", "sha256"}
    if unknown:
        raise bad(f"{at}: unknown key {sorted(unknown)[0]!r}")
    is_glob = any(ch in path for ch in "*?[")
    return Executable(path, sha, compile_glob(path) if is_glob else None)


def dump_allowlist(groups: dict[tuple[tuple[str, Any], ...], set[str]], name: str = "learned") -> str:
    """YAML for learned executables grouped by scope (one rule per scope, paths sorted)."""
    rules = []
    for i, (scope, exes) in enumerate(sorted(groups.items(), key=lambda kv: _scope_label(kv[0]))):
        rules.append({"name": _scope_label(scope) or f"scope-{i}", "scope": dict(scope),
                      "executables": sorted(exes)})
    doc = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name},
           "spec": {"defaultAction": "deny", "rules": rules}}
    return str(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


def _scope_label(scope: tuple[tuple[str, Any], ...]) -> str:
    d = dict(scope)
    if d.get("host"):
        return "host"
    parts = [str(d[k]) for k in ("namespace", "pod", "container", "podUID", "cgroup", "image") if k in d]
    return "/".join(parts)


def learned_scope(proc: ProcessScope) -> tuple[tuple[str, Any], ...]:
    """The scope a learned exec is filed under: pod+container names when known, else the pod UID, else host."""
    if proc.host:
        return (("host", True),)
    if proc.namespace is not None and proc.pod is not None:
        scope: list[tuple[str, Any]] = [("namespace", proc.namespace), ("pod", proc.pod)]
        if proc.container:
            scope.append(("container", proc.container))
        return tuple(scope)
    return (("podUID", proc.pod_uid),)
