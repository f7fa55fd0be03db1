"""Which built-in detections an audit Policy lets see: each detection's triggering requests and the policy level
and stages it needs, evaluated with the exact policy engine (engines.auditpolicy, checker.go semantics).

A detection is blind under a policy when, for one of its triggering requests, the matching rule logs below the
level it needs (bodies need Request: requestObject is only recorded from Request up, audit.k8s.io/v1 Level docs)
or omits every stage it fires on. `audit policy check --for-detections` reports them; the docs table and the e2e
test against kube-apiserver use the same table.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engines.auditpolicy import Attributes, Policy, UserInfo, level_at_least

PERSON = UserInfo("jane@example.com", ("system:authenticated",))
POD_SA = UserInfo("system:serviceaccount:web:app",
                  ("system:serviceaccounts", "system:serviceaccounts:web", "system:authenticated"))
KUBELET = UserInfo("system:node:worker-1", ("system:nodes", "system:authenticated"))
ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))
COMPLETE = frozenset({"ResponseComplete"})
STREAM = frozenset({"ResponseStarted", "ResponseComplete"})


@dataclass(frozen=True, slots=True)
class Need:
    """One request a detection fires on, and what of it must reach the log."""

    attrs: Attributes
    level: str  # Metadata (who, what, outcome) or Request (the body)
    stages: frozenset[str] = COMPLETE  # fires on any of these


def _r(user: UserInfo, verb: str, resource: str, ns: str = "web", group: str = "", sub: str = "",
       name: str = "") -> Attributes:
    return Attributes(user, verb, True, ns, group, resource, sub, name)


RBAC = "rbac.authorization.k8s.io"
ADM = "admissionregistration.k8s.io"


def _pod_create(ns: str = "web") -> tuple[Need, ...]:
    return (Need(_r(PERSON, "create", "pods", ns), "Request"),)


NEEDS: dict[str, tuple[Need, ...]] = {
    "privileged-pod": _pod_create(), "sensitive-mount-pod": _pod_create(), "hostnetwork-pod": _pod_create(),
    "hostpid-pod": _pod_create(), "hostipc-pod": _pod_create(), "dangerous-capabilities": _pod_create(),
    "pod-in-kube-namespace": _pod_create("kube-system"),
    "workload-in-kube-namespace": (Need(_r(PERSON, "create", "deployments", "kube-system", "apps"), "Metadata"),),
    "exec-attach": (Need(_r(PERSON, "create", "pods", sub="exec", name="p"), "Metadata", STREAM),
                    Need(_r(PERSON, "create", "pods", sub="attach", name="p"), "Metadata", STREAM)),
    "port-forward": (Need(_r(PERSON, "create", "pods", sub="portforward", name="p"), "Metadata", STREAM),),
    "ephemeral-container": (Need(_r(PERSON, "patch", "pods", sub="ephemeralcontainers", name="p"), "Metadata"),),
    "nodeport-service": (Need(_r(PERSON, "create", "services"), "Request"),),
    "configmap-credentials": (Need(_r(PERSON, "create", "configmaps"), "Request"),
                              Need(_r(PERSON, "update", "configmaps", name="c"), "Request")),
    "ingress-without-tls": (Need(_r(PERSON, "create", "ingresses", group="networking.k8s.io"), "Request"),),
    "secret-read": (Need(_r(POD_SA, "get", "secrets", name="db"), "Metadata"),
                    Need(_r(POD_SA, "list", "secrets"), "Metadata")),
    "secret-access-denied": (Need(_r(POD_SA, "list", "secrets", "kube-system"), "Metadata"),),
    "anonymous-allowed": (Need(Attributes(ANONYMOUS, "get", False, path="/api/v1/namespaces"), "Metadata"),
                          Need(_r(ANONYMOUS, "get", "pods"), "Metadata")),
    "cluster-admin-binding": (Need(_r(PERSON, "create", "clusterrolebindings", "", RBAC), "Request"),),
    "wildcard-role": (Need(_r(PERSON, "create", "clusterroles", "", RBAC), "Request"),),
    "exec-role": (Need(_r(PERSON, "create", "roles", group=RBAC), "Request"),),
    "write-role": (Need(_r(PERSON, "create", "clusterroles", "", RBAC), "Request"),),
    "system-role-modified": (Need(_r(PERSON, "patch", "clusterroles", "", RBAC, name="system:node"), "Metadata"),),
    "rbac-escalation": (Need(_r(PERSON, "update", "clusterroles", "", RBAC, name="r"), "Request"),),
    "escalation-binding": (Need(_r(PERSON, "create", "rolebindings", group=RBAC), "Request"),),
    "sa-in-kube-namespace": (Need(_r(PERSON, "create", "serviceaccounts", "kube-system"), "Metadata"),),
    "serviceaccount-token": (Need(_r(PERSON, "create", "serviceaccounts", sub="token", name="app"), "Metadata"),),
    "serviceaccount-token-other": (Need(_r(POD_SA, "create", "serviceaccounts", "kube-system", sub="token",
                                           name="x"), "Metadata"),),
    "csr-created": (Need(_r(PERSON, "create", "certificatesigningrequests", "", "certificates.k8s.io"), "Metadata"),),
    "csr-approved": (Need(_r(PERSON, "update", "certificatesigningrequests", "", "certificates.k8s.io", "approval",
                             "c"), "Metadata"),),
    "impersonation": (Need(_r(UserInfo("bob", ("system:authenticated",)), "get", "pods"), "Metadata"),),
    "admission-config-changed": tuple(Need(_r(PERSON, v, r, "", ADM, name="w"), "Metadata")
                                      for r in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations",
                                                "validatingadmissionpolicies", "validatingadmissionpolicybindings")
                                      for v in ("create", "update", "delete")),
    "events-deleted": (Need(_r(PERSON, "delete", "events", name="e"), "Metadata"),
                       Need(_r(PERSON, "deletecollection", "events"), "Metadata"),
                       Need(_r(PERSON, "delete", "events", group="events.k8s.io", name="e"), "Metadata")),
    "persistence-workload": (Need(_r(PERSON, "create", "daemonsets", group="apps"), "Metadata"),
                             Need(_r(PERSON, "create", "cronjobs", group="batch"), "Metadata")),
    "node-proxy": (Need(_r(PERSON, "get", "nodes", "", sub="proxy", name="worker-1"), "Metadata"),
                   Need(_r(PERSON, "create", "nodes", "", sub="proxy", name="worker-1"), "Metadata")),
    "kubelet-api-access": (Need(_r(KUBELET, "create", "subjectaccessreviews", "", "authorization.k8s.io"),
                                "Request"),),
    "disallowed-user": (Need(_r(PERSON, "get", "pods"), "Metadata"),),
    "disallowed-namespace": (Need(_r(PERSON, "create", "configmaps", "prod"), "Metadata"),),
    # The stateful detections: every 401/403 response (Metadata records the code), any request for sources.
    "forbidden-burst": (Need(_r(PERSON, "list", "pods"), "Metadata"), Need(_r(PERSON, "get", "secrets", name="s"),
                                                                          "Metadata")),
    "unexpected-source": (Need(_r(PERSON, "get", "pods"), "Metadata"),),
}


@dataclass(frozen=True, slots=True)
class Blind:
    detection: str
    request: str
    why: str
    rule: int | None


def describe(a: Attributes) -> str:
    if not a.resource_request:
        return f"{a.verb} {a.path}"
    res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    group = f"{a.api_group}/" if a.api_group else ""
    where = f" in {a.namespace}" if a.namespace else ""
    return f"{a.verb} {group}{res}{where} by {a.user.name if a.user else '?'}"


def blinded(policy: Policy) -> list[Blind]:
    """Each detection the policy blinds, with the first request it loses and why."""
    out: list[Blind] = []
    for det, needs in NEEDS.items():
        for n in needs:
            d = policy.evaluate(n.attrs)
            rule = f"rule {d.rule}" if d.rule is not None else "no rule (default None)"
            if not level_at_least(d.level, n.level):
                out.append(Blind(det, describe(n.attrs), f"{rule} logs it at {d.level}, needs {n.level}", d.rule))
                break
            if not (n.stages - d.omit_stages):
                out.append(Blind(det, describe(n.attrs), f"{rule} omits {', '.join(sorted(n.stages))}", d.rule))
                break
    return out
