"""Health probes, ephemeral containers and namespace hygiene."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...resource import POD_KINDS, PodView, Resource
from ...snapshot import Snapshot
from ..registry import Hit, control
from .common import (
    _containers,
    _name,
    family,
)

# -------------------------------------------------------------------------------------------- health

_LONG_RUNNING = POD_KINDS - {"Job", "CronJob", "PodTemplate"}
PROBES = "kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/"


def _bare_service_pod(pod: PodView) -> bool:
    """A Pod judged like a workload: no controller owns it (its owner is judged instead, as the ReplicaSet or
    Deployment) and it restarts forever (restartPolicy defaults to Always; Never/OnFailure pods run to
    completion like a Job's). core/v1 types.go PodSpec.restartPolicy, meta/v1 OwnerReference.controller."""
    res = pod.resource
    if res.kind != "Pod":
        return True
    owners = res.metadata.get("ownerReferences")
    if isinstance(owners, list) and any(isinstance(o, dict) and o.get("controller") is True for o in owners):
        return False
    return pod.spec.get("restartPolicy") in (None, "", "Always")


def _probe_check(probe: str) -> Any:
    def check(pod: PodView) -> Iterator[Hit]:
        if not _bare_service_pod(pod):
            return
        for c, path, fld in _containers(pod):
            if fld == "containers" and not isinstance(c.get(probe), dict):
                yield path, f'container "{_name(c)}" has no {probe}'
    return check


family(_probe_check, (
    ("KW-W048", "No liveness probe", "low", ("nsa",), "Add a livenessProbe so a hung process is restarted.",
     "Fails for each regular container (not init or ephemeral) without a livenessProbe, in long-running "
     "workloads: not Jobs, CronJobs or PodTemplates, nor Pods a controller owns or with restartPolicy Never or "
     "OnFailure. Without one a hung process keeps its pod Running and is never restarted. Upstream: "
     f"{PROBES}; NSA-CISA Kubernetes Hardening Guide.", "livenessProbe"),
    ("KW-W049", "No readiness probe", "low", ("nsa",), "Add a readinessProbe so traffic only reaches ready pods.",
     "Fails for each regular container (not init or ephemeral) without a readinessProbe, in the same long-running "
     "workloads as KW-W048. Without one the pod receives Service traffic as soon as its containers start, before "
     f"it can serve. Upstream: {PROBES}; NSA-CISA Kubernetes Hardening Guide.", "readinessProbe"),
), kinds=_LONG_RUNNING)


@control(
    "KW-W050", "Ephemeral debug container present", "low", "workload",
    frameworks=("mitre-T1609",),
    remediation="Remove ephemeral containers once debugging is done; restrict pods/ephemeralcontainers in RBAC.",
)
def ephemeral_present(pod: PodView) -> Iterator[Hit]:
    """Fails for each entry of spec.ephemeralContainers. An ephemeral container is attached by someone with
    pods/ephemeralcontainers access, into a running pod, with that pod's service account and volumes: it is how
    kubectl debug works and also how an intruder execs in without pods/exec. Upstream:
    kubernetes.io/docs/concepts/workloads/pods/ephemeral-containers/; MITRE ATT&CK T1609."""
    for c, path, fld in _containers(pod):
        if fld == "ephemeralContainers":
            yield path, f'ephemeral container "{_name(c)}" was attached to the pod'


# ------------------------------------------------------------------------------------------ namespaces

NAMESPACED_KINDS = frozenset({
    *POD_KINDS, "Service", "ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding", "Ingress",
    "NetworkPolicy", "PersistentVolumeClaim", "Endpoints", "HorizontalPodAutoscaler", "PodDisruptionBudget",
})


@control(
    "KW-W051", "Object in the default namespace", "low", "workload",
    frameworks=("cis-5.6.4",),
    remediation="Create a namespace per application and set metadata.namespace; keep `default` empty.",
    shape="object", kinds=NAMESPACED_KINDS,
)
def default_namespace(res: Resource) -> Iterator[Hit]:
    """Fails for each Pod, workload, Service, ConfigMap, Secret, ServiceAccount, Role, RoleBinding, Ingress,
    NetworkPolicy, PersistentVolumeClaim, Endpoints, HorizontalPodAutoscaler or PodDisruptionBudget in the
    default namespace, named or by omission (kubectl then applies the current context's, usually default),
    except the apiserver's own kubernetes Service. Everything in default shares one RBAC and policy scope.
    Upstream: CIS 5.6.4 (the default namespace should not be used);
    kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/."""
    if res.namespace != "default" or (res.kind == "Service" and res.name == "kubernetes"):
        return  # the apiserver's own kubernetes Service always lives there
    if res.metadata.get("namespace"):
        yield "/metadata/namespace", f"{res.kind} is in the default namespace"
    else:
        yield "/metadata", f"{res.kind} has no namespace and lands in default (or the current context's)"


PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


@control(
    "KW-W052", "Namespace without Pod Security enforcement", "medium", "workload",
    frameworks=("nsa", "cis-5.2.1"),
    remediation="Label the namespace pod-security.kubernetes.io/enforce=restricted (or baseline).",
    shape="object", kinds=("Namespace",),
)
def namespace_no_psa(res: Resource) -> Iterator[Hit]:
    """Fails for each Namespace other than kube-system, kube-public and kube-node-lease with no
    pod-security.kubernetes.io/enforce label, or with enforce=privileged. Pod Security Admission then applies
    the cluster default, privileged unless the admission configuration sets another (which is not read here).
    Upstream: kubernetes.io/docs/concepts/security/pod-security-admission/; CIS 5.2.1."""
    # Pod Security Admission reads the enforce label; absent means the cluster default (privileged unless the
    # admission configuration says otherwise).
    if res.name in SYSTEM_NAMESPACES:
        return
    level = res.labels.get(PSA_ENFORCE)
    if level is None:
        yield ("/metadata/labels" if res.labels else "/metadata"), f"namespace {res.name} has no {PSA_ENFORCE} label"
    elif level == "privileged":
        yield f"/metadata/labels/{PSA_ENFORCE.replace('/', '~1')}", f"namespace {res.name} enforces the privileged level"


_QUOTA = ("Fails for each Namespace other than kube-system, kube-public and kube-node-lease that holds at least one "
          "Pod or workload of the input and no {kind} of the input. {why} Upstream: {doc}; NSA-CISA Kubernetes "
          "Hardening Guide (resource policies).")


def _namespaces_missing(kind: str) -> Any:
    def check(snap: Snapshot) -> Iterator[tuple[Resource, str, str]]:
        # the namespaces holding one, from the kind's own (short) list rather than every namespace's objects
        held = {r.namespace for r in snap.of_kind(kind)}
        for ns in snap.of_kind("Namespace"):
            if ns.name in SYSTEM_NAMESPACES or ns.name in held:
                continue
            if any(r.pod() is not None for r in snap.in_namespace(ns.name)):
                yield ns, "/metadata", f"namespace {ns.name} runs workloads but has no {kind}"
    return check


control(
    "KW-W053", "Namespace without ResourceQuota", "low", "workload",
    frameworks=("nsa", "mitre-T1496"),
    remediation="Add a ResourceQuota to each application namespace to cap CPU, memory and object counts.",
    shape="snapshot", kinds=("Namespace",), reads=("ResourceQuota",),
    description=_QUOTA.format(kind="ResourceQuota", doc="kubernetes.io/docs/concepts/policy/resource-quotas/",
                              why="Without a quota one tenant can exhaust the cluster's CPU, memory or object "
                                  "counts (cryptomining, denial of service)."),
)(_namespaces_missing("ResourceQuota"))
control(
    "KW-W054", "Namespace without LimitRange", "low", "workload",
    frameworks=("nsa", "mitre-T1499"),
    remediation="Add a LimitRange with default container limits to each application namespace.",
    shape="snapshot", kinds=("Namespace",), reads=("LimitRange",),
    description=_QUOTA.format(kind="LimitRange", doc="kubernetes.io/docs/concepts/policy/limit-range/",
                              why="Without one containers that set no limits run unbounded."),
)(_namespaces_missing("LimitRange"))
