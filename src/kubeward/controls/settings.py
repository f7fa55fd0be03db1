"""Scan-wide inputs some controls need beyond the objects: the target Kubernetes version, allowed registries.

The CLI sets them once per scan (`using`); a forked worker of the two-process scan inherits them. Controls read
`current()`; tests and library callers get the defaults (newest supported version, no registry list).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .imageref import valid_host, valid_path

NEWEST_MINOR = 37  # the newest Kubernetes minor kubeward's data (API removals, PSS checks) covers
_VERSION = re.compile(r"v?1\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?")


class SettingsError(ValueError):
    """A scan setting the user gave that cannot be used (exit 2)."""


def parse_k8s_version(text: str) -> tuple[int, int]:
    """`1.30`, `v1.30` or `1.30.2` -> (1, 30); anything newer than the data knows is refused, not guessed."""
    m = _VERSION.fullmatch(text.strip())
    if m is None:
        raise SettingsError(f"--k8s-version {text!r}: expected MAJOR.MINOR such as 1.{NEWEST_MINOR}")
    minor = int(m.group(1))
    if minor > NEWEST_MINOR:
        raise SettingsError(f"--k8s-version {text}: kubeward knows Kubernetes up to 1.{NEWEST_MINOR}")
    return (1, minor)


@dataclass(frozen=True, slots=True)
class ScanSettings:
    k8s_version: tuple[int, int] = (1, NEWEST_MINOR)
    allowed_registries: tuple[str, ...] = ()  # empty: every registry is allowed (the check is off)


_current = ScanSettings()


def current() -> ScanSettings:
    return _current


@contextmanager
def using(settings: ScanSettings) -> Iterator[ScanSettings]:
    """Make `settings` the current ones for the duration of a scan."""
    global _current
    previous, _current = _current, settings
    try:
        yield settings
    finally:
        _current = previous


def parse_allowed_registries(entries: tuple[str, ...]) -> tuple[str, ...]:
    """Each entry is a registry host (`registry.example.com`, `localhost:5000`, `docker.io`) optionally followed
    by a path prefix (`docker.io/library`, `ghcr.io/acme`). The first element is always the host here, unlike in
    an image reference; `index.docker.io` is Docker Hub's legacy name for docker.io, as the runtimes treat it."""
    out = []
    for raw in entries:
        entry = raw.strip().rstrip("/")
        if not entry or "://" in entry or "@" in entry:
            raise SettingsError(f"--allowed-registries {raw!r}: expected a registry host with an optional path, "
                                "e.g. registry.example.com or docker.io/library")
        host, sep, prefix = entry.partition("/")
        if not valid_host(host) or (prefix and not valid_path(prefix)):
            raise SettingsError(f"--allowed-registries {raw!r}: not a registry host[:port] with an optional "
                                "lower-case repository path")
        if host == "index.docker.io":
            host = "docker.io"
        out.append(host + sep + prefix)
    return tuple(out)
