"""The versions of Kubernetes components found in the input: a version the user gives, the images of control-plane
and add-on pods (static pods in manifests, workloads in dumps), the kubelet version each Node reports, and the
apiserver's /version.

Each component maps to the OSV package names the Kubernetes CVE feed uses (k8s.io/apiserver, k8s.io/kubelet, …).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..controls.imageref import parse_image
from ..findings import Location, NotAssessed, ObjectRef
from ..resource import Resource
from .semver import SemverError, Version, parse

CORE = "k8s.io/kubernetes"
# component -> the feed's package names for it. The feed files a CVE of a kube-* binary under the binary's
# staging module (k8s.io/apiserver, k8s.io/kubelet, …) or under k8s.io/kubernetes for the whole release.
PACKAGES: dict[str, tuple[str, ...]] = {
    "kube-apiserver": ("k8s.io/apiserver", CORE),
    "kube-controller-manager": ("k8s.io/controller-manager", CORE),
    "kube-scheduler": (CORE,),
    "kubelet": ("k8s.io/kubelet", CORE),
    "kube-proxy": ("k8s.io/kube-proxy", CORE),
    "ingress-nginx": ("k8s.io/ingress-nginx",),
    "secrets-store-csi-driver": ("sigs.k8s.io/secrets-store-csi-driver",),
    "azurefile-csi-driver": ("sigs.k8s.io/azurefile-csi-driver",),
}
RELEASE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
# Image repositories (the path after the registry, or its end) of the components' official images.
_IMAGE_ENDS = {
    "kube-apiserver": "kube-apiserver", "kube-controller-manager": "kube-controller-manager",
    "kube-scheduler": "kube-scheduler", "kube-proxy": "kube-proxy",
    "ingress-nginx/controller": "ingress-nginx", "ingress-nginx/controller-chroot": "ingress-nginx",
    "csi-secrets-store/driver": "secrets-store-csi-driver", "azurefile-csi": "azurefile-csi-driver",
}
_ARCH_SUFFIXES = ("-amd64", "-arm64", "-arm", "-ppc64le", "-s390x")  # kube-apiserver-amd64 and friends
# Kubernetes' own pre-releases (k8s.io/apimachinery/pkg/util/version: alpha, beta, rc); any other pre-release
# part of a component's version is a distribution's build (v1.28.3-eks-…, v1.27.3-gke.100).
_UPSTREAM_PRE = ("alpha", "beta", "rc")


@dataclass(frozen=True, slots=True)
class Found:
    component: str
    text: str  # as written in the input
    version: Version  # what is evaluated
    object: ObjectRef
    location: Location
    path: str
    how: str  # where the version came from
    note: str = ""

    @property
    def packages(self) -> tuple[str, ...]:
        return PACKAGES[self.component]


def read_version(text: str) -> tuple[Version, str]:
    """A component's version (`v1.28.3`, `1.28.3`, `v1.28.3+k3s1`, `v1.28.3-eks-1-28-3`) -> (SemVer, note).

    A distribution's build suffix is compared as the upstream release it is built from, and the note says so."""
    raw = text.strip()
    v = parse(raw[1:] if raw.startswith("v") else raw)
    if v.prerelease and not v.prerelease[0].startswith(_UPSTREAM_PRE):
        return v.release, f"distribution build {text}: compared as {v.release}"
    return v, ""


# every repository end with its -ARCH spellings -> component; an end is one or two path segments
_ENDS = {end + suffix: component for end, component in _IMAGE_ENDS.items() for suffix in ("", *_ARCH_SUFFIXES)}


@lru_cache(maxsize=8192)
def image_component(image: str) -> tuple[str, str | None] | None:
    """(component, tag) when the image is one of the known components' images: the repository is one of their
    ends, or ends with `/END` (cached: a cluster runs a few hundred distinct images in thousands of pods)."""
    repo, tag, _digest = parse_image(image)
    parts = repo.rsplit("/", 2)
    component = _ENDS.get("/".join(parts[-2:])) or _ENDS.get(parts[-1])
    return (component, tag) if component else None


def from_resources(resources: Iterable[Resource]) -> Iterator[Found | NotAssessed]:
    for res in resources:
        if res.kind == "Node":
            yield from _node(res)
            continue
        pod = res.pod()
        if pod is None:
            continue
        for c, ptr, _fld in pod.containers():
            image = c.get("image")
            if not isinstance(image, str):
                continue
            hit = image_component(image)
            if hit is None:
                continue
            component, tag = hit
            where = f"{res.ref()} container {c.get('name', '?')}"
            if not tag:
                yield NotAssessed(where, f"image {image} has no tag: its {component} version is unknown")
                continue
            try:
                v, note = read_version(tag)
            except SemverError:
                yield NotAssessed(where, f"image tag {tag!r} is not a version: its {component} version is unknown")
                continue
            yield Found(component, tag, v, res.ref(), res.location(f"{ptr}/image"), f"{ptr}/image", "image tag",
                        note)


def _node(res: Resource) -> Iterator[Found | NotAssessed]:
    status = res.obj.get("status")
    info = status.get("nodeInfo") if isinstance(status, dict) else None
    if not isinstance(info, dict):
        return
    # status.nodeInfo.kubeProxyVersion is not read: the kubelet fills it with its own version (it is deprecated,
    # k8s.io/api/core/v1/types.go NodeSystemInfo), so it says nothing about kube-proxy.
    text = info.get("kubeletVersion")
    if not isinstance(text, str) or not text:
        return
    path = "/status/nodeInfo/kubeletVersion"
    try:
        v, note = read_version(text)
    except SemverError:
        yield NotAssessed(f"{res.ref()}", f"kubeletVersion {text!r} is not a version")
        return
    yield Found("kubelet", text, v, res.ref(), res.location(path), path, "status.nodeInfo.kubeletVersion", note)


def release_version(text: str) -> tuple[Version, str]:
    """A release the user names: `1.30.2`, `v1.30` (the one --k8s-version spelling, kubeward.k8sversion; a minor
    alone is its first release, and the note says so) or a full version with a build (`v1.28.3-eks-…`)."""
    from ..k8sversion import VersionError, parse_release

    try:
        major, minor, patch = parse_release(text)
    except VersionError:
        try:
            return read_version(text)
        except SemverError:
            raise VersionError(f"--version {text!r}: expected MAJOR.MINOR[.PATCH] such as 1.37.2") from None
    if patch is None:
        return Version(major, minor, 0), (f"{text.strip()} read as {major}.{minor}.0, the first release of "
                                          f"{major}.{minor} (give the patch for an exact answer)")
    return Version(major, minor, patch), ""


def from_release(text: str, v: Version, how: str, note: str = "", components: Iterable[str] = RELEASE,
                 name: str | None = None, location: Location | None = None) -> list[Found]:
    """One Kubernetes release for the given components (all of a release by default)."""
    ref = ObjectRef("kubeward.io/v1", "KubernetesRelease", None, name or text.strip())
    return [Found(c, text.strip(), v, ref, location or Location(), "/version", how, note) for c in components]


def from_version_info(status: int, info: Any, name: str) -> tuple[list[Found], str]:
    """The kube-apiserver's version from `GET /version` (k8s.io/apimachinery/pkg/version Info, its gitVersion),
    as one Found on the KubernetesRelease named after the cluster; else no Found and why it is not assessed."""
    text = info.get("gitVersion") if status == 200 and isinstance(info, dict) else None
    if not isinstance(text, str):
        return [], f"/version: HTTP {status}, no gitVersion: the apiserver's version is not assessed"
    try:
        v, note = read_version(text)
    except SemverError:
        return [], f"/version gitVersion {text!r} is not a version: not assessed"
    return from_release(text, v, "/version gitVersion", note, components=("kube-apiserver",), name=name,
                        location=Location(cluster=name)), ""
