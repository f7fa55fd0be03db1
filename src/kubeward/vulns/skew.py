"""The Kubernetes version skew policy (https://kubernetes.io/releases/version-skew-policy/) over the component
versions found, as findings. Skew is counted in minor versions; patches never matter.

- kube-apiserver: in an HA cluster the newest and oldest instances are within one minor.
- kubelet: not newer than kube-apiserver; up to three minors older (a kubelet older than 1.25: two).
- kube-proxy: the same bounds against kube-apiserver as the kubelet.
- kube-controller-manager, kube-scheduler: not newer than the kube-apiserver instances they talk to; up to one
  minor older.
With several kube-apiserver versions the bounds hold against each instance, so "not newer" is judged against the
oldest and "older by at most N" against the newest (the policy's HA note).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..findings import ControlMeta, Finding, Severity
from .components import Found

_FIX = "Upgrade the components in the order the version skew policy gives (kube-apiserver first, then the " \
       "controllers, then the kubelets and kube-proxy)."
APISERVERS = ControlMeta("KW-V010", "kube-apiserver instances are more than one minor version apart",
                         Severity.MEDIUM, "versions", remediation=_FIX,
                         description="version-skew-policy: newest and oldest kube-apiserver within one minor.")
NEWER = ControlMeta("KW-V011", "Component is newer than kube-apiserver", Severity.MEDIUM, "versions",
                    remediation=_FIX, description="version-skew-policy: kubelet, kube-proxy, kube-controller-manager "
                    "and kube-scheduler must not be newer than kube-apiserver.")
OLDER = ControlMeta("KW-V012", "Component is older than kube-apiserver supports", Severity.MEDIUM, "versions",
                    remediation=_FIX, description="version-skew-policy: kubelet and kube-proxy up to three minors "
                    "older (two below 1.25); kube-controller-manager and kube-scheduler up to one.")
SKEW_CONTROLS = (APISERVERS, NEWER, OLDER)


def max_lag(component: str, minor: int) -> int:
    if component in ("kubelet", "kube-proxy"):
        return 3 if minor >= 25 else 2
    return 1


def skew_findings(found: Iterable[Found]) -> Iterator[Finding]:
    found = [f for f in found if f.version.major == 1]
    apis = [f for f in found if f.component == "kube-apiserver"]
    if not apis:
        return
    oldest = min(apis, key=lambda f: f.version.minor)
    newest = max(apis, key=lambda f: f.version.minor)
    if newest.version.minor - oldest.version.minor > 1:
        yield Finding(APISERVERS, oldest.object, oldest.location, oldest.path,
                      f"kube-apiserver {oldest.text} and {newest.text} ({newest.object}) are "
                      f"{newest.version.minor - oldest.version.minor} minor versions apart (at most 1)")
    for f in found:
        if f.component not in ("kubelet", "kube-proxy", "kube-controller-manager", "kube-scheduler"):
            continue
        m = f.version.minor
        if m > oldest.version.minor:
            yield Finding(NEWER, f.object, f.location, f.path,
                          f"{f.component} {f.text} is newer than kube-apiserver {oldest.text}")
            continue
        lag, allowed = newest.version.minor - m, max_lag(f.component, m)
        if lag > allowed:
            yield Finding(OLDER, f.object, f.location, f.path,
                          f"{f.component} {f.text} is {lag} minor versions older than kube-apiserver {newest.text} "
                          f"(at most {allowed})")
