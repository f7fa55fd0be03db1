"""Image references and registries, and where workloads run (kube-system)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ...resource import PodView
from ...textsafe import printable
from ..imageref import parse_image, split_registry
from ..registry import Hit, control
from ..settings import current as current_settings
from .common import (
    _containers,
    _name,
    family,
)

# -------------------------------------------------------------------------------------------------- images


Image = tuple[dict[str, Any], str, str, str | None, str | None]  # (container, pointer, image, tag, digest)


def _images(pod: PodView) -> list[Image]:
    """Every container's image reference, parsed once per pod for the image controls."""
    return pod.derived("images", _parse_images)


def _parse_images(pod: PodView) -> list[Image]:
    found: list[Image] = []
    for c, path, _ in _containers(pod):
        image = c.get("image")
        if isinstance(image, str) and image:
            _, tag, digest = parse_image(image)
            found.append((c, path, image, tag, digest))
    return found


def _image_check(wanted: Callable[[str | None, str | None], bool], what: str) -> Callable[[PodView], Iterator[Hit]]:
    """A control over every container's image reference: `wanted(tag, digest)` says when `what` (a template with
    `{image}`) is reported."""
    def check(pod: PodView) -> Iterator[Hit]:
        for c, path, image, tag, digest in _images(pod):
            if wanted(tag, digest):
                yield f"{path}/image", f'container "{_name(c)}" ' + what.format(image=image)
    return check


_MUTABLE = ("nsa", "mitre-T1525", "mitre-T1195.002")
_PIN = "Pin a specific version tag and, better, the image digest (image@sha256:...)."
_IMAGES = "kubernetes.io/docs/concepts/containers/images/"
family(_image_check, (
    ("KW-W040", "Image tag latest", "medium", _MUTABLE, _PIN,
     "Fails for each init, regular or ephemeral container whose image reference has the tag latest and no "
     "digest. latest moves with every push: what runs cannot be told from the manifest, a rollback does not "
     f"restore it, and a poisoned push is pulled at the next restart. Upstream: {_IMAGES} (avoid :latest in "
     "production); NSA-CISA Kubernetes Hardening Guide; MITRE ATT&CK T1525.",
     lambda tag, digest: tag == "latest" and digest is None, "uses the mutable tag latest ({image})"),
    ("KW-W041", "Image without tag", "medium", _MUTABLE, _PIN,
     "Fails for each init, regular or ephemeral container whose image reference has neither tag nor digest, "
     "which the runtime resolves as latest, with the same risks as KW-W040. Upstream: "
     f"{_IMAGES} (\"If you don't specify a tag, Kubernetes assumes you mean the tag latest\"); NSA-CISA "
     "Kubernetes Hardening Guide; MITRE ATT&CK T1525.",
     lambda tag, digest: tag is None and digest is None, "image {image} has no tag (means latest)"),
    ("KW-W042", "Image not pinned by digest", "low", ("nsa", "mitre-T1195.002"),
     "Reference images by digest (image@sha256:...) so the running code cannot change under the same name.",
     "Fails for each init, regular or ephemeral container whose image reference carries no @sha256: digest "
     "(whatever its tag, so an image KW-W040 or KW-W041 reports is reported here too). Any tag can be moved to "
     f"other content; only a digest fixes what runs. Upstream: {_IMAGES} (image names, digests); NSA-CISA "
     "Kubernetes Hardening Guide; MITRE ATT&CK T1195.002.",
     lambda tag, digest: digest is None, "image {image} is not pinned by digest"),
))


@control(
    "KW-W043", "Mutable image without imagePullPolicy Always", "low", "workload",
    frameworks=("nsa", "mitre-T1525"),
    remediation="Set imagePullPolicy: Always for images referenced by tag, or pin the digest.",
)
def pull_policy(pod: PodView) -> Iterator[Hit]:
    """Fails for each init, regular or ephemeral container whose image has no digest and whose imagePullPolicy,
    as written or as defaulted (Always for the tag latest or no tag, IfNotPresent otherwise), is not Always. A
    cached mutable tag can run stale code, and IfNotPresent lets any pod on the node run a private image the
    node already pulled without pull credentials. Upstream: kubernetes.io/docs/concepts/containers/images/
    (imagePullPolicy defaulting); k8s.io/kubernetes pkg/apis/core/v1/defaults.go SetDefaults_Container; NSA-CISA
    Kubernetes Hardening Guide."""
    # core/v1 defaults.go SetDefaults_Container: Always for :latest or no tag, IfNotPresent otherwise. A cached
    # mutable tag can run stale code, and IfNotPresent lets any pod reuse a private image the node already pulled.
    for c, path, image, tag, digest in _images(pod):
        if digest is not None:
            continue
        policy = c.get("imagePullPolicy")
        if policy is None:
            policy = "Always" if tag in (None, "latest") else "IfNotPresent"
            where = path
        else:
            where = f"{path}/imagePullPolicy"
        if policy != "Always":
            yield where, f'container "{_name(c)}" image {image} is mutable and pulled with {policy}'


def registry_allowed(domain: str, path: str, allowed: tuple[str, ...]) -> bool:
    """Whether (registry, path) falls under one allowed entry: a registry host, or a host and path prefix
    (`docker.io/library`), both normalized like image references; hosts compare case-insensitively (DNS)."""
    for entry in allowed:
        host, _, prefix = entry.partition("/")
        if host.lower() == domain.lower() and (not prefix or path == prefix or path.startswith(prefix + "/")):
            return True
    return False


@control(
    "KW-W061", "Image from a registry outside the allowed list", "high", "workload",
    frameworks=("nsa", "mitre-T1525", "mitre-T1195.002"),
    remediation="Pull the image from an allowed registry (mirror it there); the list is --allowed-registries.",
)
def image_registry_not_allowed(pod: PodView) -> Iterator[Hit]:
    """Only with --allowed-registries: fails for each init, regular or ephemeral container whose image, with its
    registry made explicit as the runtime does (docker.io and library/ for a bare name), matches no allowed
    entry (a registry host, compared case-insensitively, optionally with a path prefix), or is no valid image
    reference. An image from anywhere else bypasses the registry's scanning and signing. Upstream:
    kubernetes.io/docs/concepts/containers/images/ (image names); NSA-CISA Kubernetes Hardening Guide (trusted
    repositories); MITRE ATT&CK T1525."""
    allowed = current_settings().allowed_registries
    if not allowed:
        return  # off unless a list is given
    for c, path, image, _tag, _digest in _images(pod):
        repo = parse_image(image)[0]
        where = split_registry(repo)
        if where is None:
            yield f"{path}/image", f'container "{_name(c)}" image {printable(image)} is not a valid image reference'
        elif not registry_allowed(*where, allowed):
            yield (f"{path}/image",
                   f'container "{_name(c)}" image {printable(image)} comes from {where[0]}/{where[1]}, not an allowed registry')


# How cluster components mark themselves, in the pod template or on the object: the control-plane static pods
# (kubeadm manifests: tier: control-plane, component: kube-apiserver...), the add-ons of kubernetes/cluster/addons
# and kubeadm (k8s-app: kube-dns, kube-proxy...; addonmanager.kubernetes.io/mode), and pods the scheduler must
# never evict (priorityClassName system-cluster-critical / system-node-critical). Anything else in kube-system
# is a user workload.
_SYSTEM_LABELS = ("k8s-app", "addonmanager.kubernetes.io/mode")
SYSTEM_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})


def cluster_component(pod: PodView) -> bool:
    """Whether a pod in kube-system belongs to the control plane or an add-on (documented in controls-guide)."""
    labels = {**pod.resource.labels, **pod.labels}
    return (
        labels.get("tier") == "control-plane"
        or any(key in labels for key in _SYSTEM_LABELS)
        or pod.spec.get("priorityClassName") in SYSTEM_PRIORITY_CLASSES
    )


@control(
    "KW-W062", "User workload in kube-system", "medium", "workload",
    frameworks=("nsa", "cis-5.6.1", "mitre-T1078.001"),
    remediation="Run the workload in its own namespace; kube-system holds the control plane's service accounts "
    "and Secrets, which anyone who may create pods there can use.",
)
def kube_system_workload(pod: PodView) -> Iterator[Hit]:
    """Fails for each Pod or workload in kube-system that is not marked as a cluster component: a tier:
    control-plane, k8s-app or addonmanager.kubernetes.io/mode label on the object or its pod template, or
    priorityClassName system-cluster-critical or system-node-critical. kube-system holds the control plane's
    service accounts and Secrets, which any pod there can mount. Upstream:
    kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/ (kube-system is for objects the
    Kubernetes system creates); CIS 5.6.1; MITRE ATT&CK T1078.001."""
    if pod.resource.namespace == "kube-system" and not cluster_component(pod):
        where = "/metadata/namespace" if "namespace" in pod.resource.metadata else "/metadata"
        yield where, f"{pod.resource.kind} {printable(pod.resource.name)} runs in kube-system, not as a cluster component"
