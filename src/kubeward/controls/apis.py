"""API versions the target Kubernetes version no longer serves, or serves with a deprecation warning.

The table (src/kubeward/data/deprecated_apis.json) follows the upstream Deprecated API Migration Guide
(https://kubernetes.io/docs/reference/using-api/deprecation-guide/): group/version, kind, the release that
deprecated it, the release that stopped serving it and the replacement. `kubectl apply` of a removed version
fails with "no matches for kind", so whatever the manifest configures never reaches the cluster.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import orjson

from ..records import record
from ..resource import Resource
from ..shipped import data_file
from .registry import Hit, control
from .settings import current


@record(frozen=True)
class DeprecatedApi:
    api_version: str
    kind: str
    deprecated_in: tuple[int, int]
    removed_in: tuple[int, int] | None  # None: deprecated, with no removal planned
    replacement: str


def _version(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    major, minor = text.split(".")
    return int(major), int(minor)


@functools.cache
def table() -> dict[tuple[str, str], DeprecatedApi]:
    """(apiVersion, kind) -> entry, read once from the packaged data file."""
    raw = orjson.loads(data_file("deprecated_apis.json").read_bytes())
    out: dict[tuple[str, str], DeprecatedApi] = {}
    for row in raw["apis"]:
        dep = _version(row["deprecatedIn"])
        assert dep is not None
        out[row["apiVersion"], row["kind"]] = DeprecatedApi(
            row["apiVersion"], row["kind"], dep, _version(row["removedIn"]), row["replacement"])
    return out


KINDS = frozenset(kind for _, kind in table())


def _entry(res: Resource) -> DeprecatedApi | None:
    return table().get((res.api_version, res.kind))


def _v(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


@control(
    "KW-A001", "API version removed in the target Kubernetes version", "high", "api",
    frameworks=("nsa",),  # NSA/CISA hardening guide, "Upgrading and application security practices"
    remediation="Move the manifest to the replacement apiVersion (kubectl convert --output-version) before "
    "upgrading; the apiserver rejects a version it no longer serves.",
    shape="object", kinds=KINDS, assesses=False,
)
def removed_api(res: Resource) -> Iterator[Hit]:
    """The object's apiVersion is still served by the target Kubernetes version (--k8s-version): the apiserver
    rejects a version it no longer serves, so the manifest fails to apply after the upgrade. Read from the
    shipped table data/deprecated_apis.json. Upstream: the Deprecated API Migration Guide
    (kubernetes.io/docs/reference/using-api/deprecation-guide/); the Kubernetes Deprecation Policy."""
    entry = _entry(res)
    target = current().k8s_version
    if entry is not None and entry.removed_in is not None and target >= entry.removed_in:
        yield "/apiVersion", (f"{entry.api_version} {entry.kind} is no longer served since Kubernetes "
                              f"{_v(entry.removed_in)} (target {_v(target)}); use {entry.replacement}")


@control(
    "KW-A002", "Deprecated API version", "low", "api",
    frameworks=("nsa",),
    remediation="Move the manifest to the replacement apiVersion before the release that removes it.",
    shape="object", kinds=KINDS, assesses=False,
)
def deprecated_api(res: Resource) -> Iterator[Hit]:
    """The object's apiVersion is not deprecated in the target Kubernetes version: a deprecated version is still
    served but has a planned removal, so the manifest should move to the replacement before then. Upstream: the
    Deprecated API Migration Guide; the Kubernetes Deprecation Policy
    (kubernetes.io/docs/reference/using-api/deprecation-policy/)."""
    entry = _entry(res)
    target = current().k8s_version
    if entry is None or target < entry.deprecated_in or (entry.removed_in is not None and target >= entry.removed_in):
        return  # not yet deprecated, or removed (KW-A001)
    when = f"removed in {_v(entry.removed_in)}" if entry.removed_in is not None else "no removal planned"
    yield "/apiVersion", (f"{entry.api_version} {entry.kind} is deprecated since Kubernetes {_v(entry.deprecated_in)} "
                          f"({when}); use {entry.replacement}")
