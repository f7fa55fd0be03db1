"""Scan-wide inputs some controls need beyond the objects: the target Kubernetes version, allowed registries.

The CLI sets them once per scan (`using`); a forked worker of the two-process scan inherits them. Controls read
`current()`; tests and library callers get the defaults (newest supported version, no registry list).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .. import k8sversion
from ..k8sversion import NEWEST_MINOR
from ..records import record
from .imageref import valid_host, valid_path


class SettingsError(ValueError):
    """A scan setting the user gave that cannot be used (exit 2)."""


def parse_k8s_version(text: str) -> tuple[int, int]:
    """`1.30`, `v1.30` or `1.30.2` -> (1, 30), by the one --k8s-version parser (kubeward.k8sversion)."""
    try:
        v = k8sversion.parse(text)
    except k8sversion.VersionError as exc:
        raise SettingsError(str(exc)) from None
    return (v.major, v.minor)


@record(frozen=True)
class ScanSettings:
    k8s_version: tuple[int, int] = (1, NEWEST_MINOR)
    allowed_registries: tuple[str, ...] = ()  # empty: every registry is allowed (the check is off)

    @property
    def rbac_data_version(self) -> str:
        """The API discovery and bootstrap policy the RBAC controls judge with (KW-R1xx: bootstrap ClusterRoles
        count as present, and the bootstrap merge of the RBAC index): the scan's version when kubeward ships
        data for it, else the newest shipped, which `notes` then says."""
        v = k8sversion.Minor(*self.k8s_version)
        return str(v if k8sversion.covers("api-data", v) else k8sversion.newest("api-data"))

    def notes(self) -> list[str]:
        """What the user should know about the settings before the findings (one line each, on stderr)."""
        v = k8sversion.Minor(*self.k8s_version)
        if k8sversion.covers("api-data", v):
            return []
        have = ", ".join(str(x) for x in k8sversion.supported("api-data"))
        return [f"--k8s-version {v}: the RBAC controls use the bootstrap policy of Kubernetes "
                f"{self.rbac_data_version} (kubeward ships API discovery and bootstrap policy data for {have})"]


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
