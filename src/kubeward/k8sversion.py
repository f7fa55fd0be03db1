"""`--k8s-version`: one parser and, per shipped data set, one list of the Kubernetes minors it covers.

Every command that takes a target Kubernetes version (scan, rbac, vulns) reads it here, so `v1.30`, `1.30` and
`1.30.2` mean the same everywhere, and a version a data set was not generated for is refused (or, in a scan that
only needs another data set for it, said on stderr), never silently replaced.

Data sets:
- "api-removals": the removed/deprecated API table (controls/apis.py, data/deprecated_apis.json), complete for
  every minor up to NEWEST_MINOR;
- "api-data": the API discovery and bootstrap RBAC policy generated from a real kube-apiserver (kubeward.apidata),
  for the minors that have both files.
"""

from __future__ import annotations

import re
from typing import Literal

from .records import record

NEWEST_MINOR = 37  # the newest Kubernetes minor kubeward's data covers
DataSet = Literal["api-removals", "api-data"]
# Kubernetes release versions (semver without leading zeros, k8s.io/apimachinery/pkg/util/version ParseGeneric
# refuses them too); a patch is accepted and ignored: every data set is per minor.
_VERSION = re.compile(r"v?1\.(0|[1-9][0-9]{0,3})(\.(0|[1-9][0-9]{0,3}))?")


class VersionError(ValueError):
    """A --k8s-version the user gave that cannot be used (exit 2)."""


@record(frozen=True, order=True)
class Minor:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


NEWEST = Minor(1, NEWEST_MINOR)


def parse(text: str) -> Minor:
    """`1.30`, `v1.30` or `1.30.2` -> Minor(1, 30); anything newer than the data knows is refused, not guessed."""
    m = _VERSION.fullmatch(text.strip())
    if m is None:
        raise VersionError(f"--k8s-version {text!r}: expected MAJOR.MINOR such as {NEWEST}")
    v = Minor(1, int(m.group(1)))
    if v > NEWEST:
        raise VersionError(f"--k8s-version {text.strip()}: kubeward knows Kubernetes up to {NEWEST}")
    return v


def parse_release(text: str) -> tuple[int, int, int | None]:
    """The same spellings as `parse`, keeping the patch (None when not given) and with no newest-version bound:
    a question about a release (`vulns --version`) needs its patch, not data about its API."""
    m = _VERSION.fullmatch(text.strip())
    if m is None:
        raise VersionError(f"--version {text!r}: expected MAJOR.MINOR[.PATCH] such as {NEWEST}.0")
    return (1, int(m.group(1)), int(m.group(3)) if m.group(3) is not None else None)


def supported(data: DataSet) -> tuple[Minor, ...]:
    """The minors a data set covers, oldest first."""
    if data == "api-removals":
        return tuple(Minor(1, m) for m in range(NEWEST_MINOR + 1))
    from .apidata import supported_versions

    return tuple(sorted(Minor(*map(int, v.split("."))) for v in supported_versions()))


def covers(data: DataSet, version: Minor) -> bool:
    return version in supported(data)


def require(data: DataSet, version: Minor, text: str | None = None) -> Minor:
    """`version` when the data set covers it; VersionError naming what it does cover otherwise."""
    if covers(data, version):
        return version
    have = ", ".join(str(v) for v in supported(data)) or "none"
    what = {"api-removals": "removed-API data", "api-data": "API discovery and bootstrap policy data"}[data]
    raise VersionError(f"--k8s-version {text or version}: no {what} for Kubernetes {version} (have: {have}); "
                       "it is generated from a real kube-apiserver of that version")


def newest(data: DataSet) -> Minor:
    have = supported(data)
    return have[-1] if have else NEWEST
