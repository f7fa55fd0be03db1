"""Who the detections leave alone: the control plane's own identities, one allow-list shared by every rule.

Service accounts are not exempt (a pod's stolen token reading a registry secret is the classic credential theft):
only the components that run the cluster are, by name. The controller manager's controllers act under their own
service accounts in kube-system when it runs with --use-service-account-credentials (kubeadm's default); their
names are the bootstrap policy's controller roles (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/
controller_policy.go: `system:controller:<name>` bound to ServiceAccount kube-system/<name>). The list is replaced
by the `controlPlane` section of the rules file (`--rules`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SA_PREFIX = "system:serviceaccount:"

# controller_policy.go (and the bootstrap signer/token cleaner roles of policy.go), each a kube-system SA.
CONTROLLER_SERVICE_ACCOUNTS = (
    "attachdetach-controller", "bootstrap-signer", "certificate-controller", "clusterrole-aggregation-controller",
    "cronjob-controller", "daemon-set-controller", "deployment-controller", "disruption-controller",
    "endpoint-controller", "endpointslice-controller", "endpointslicemirroring-controller",
    "ephemeral-volume-controller", "expand-controller", "generic-garbage-collector", "horizontal-pod-autoscaler",
    "job-controller", "legacy-service-account-token-cleaner", "namespace-controller", "node-controller",
    "persistent-volume-binder", "pod-garbage-collector", "pv-protection-controller", "pvc-protection-controller",
    "replicaset-controller", "replication-controller", "resource-claim-controller", "resourcequota-controller",
    "root-ca-cert-publisher", "route-controller", "service-account-controller", "service-cidrs-controller",
    "service-controller", "statefulset-controller", "storage-version-garbage-collector",
    "storage-version-migrator-controller", "token-cleaner", "ttl-after-finished-controller", "ttl-controller",
    "validatingadmissionpolicy-status-controller", "volumeattributesclass-protection-controller",
)

DEFAULT_USERS = (
    "system:kube-controller-manager", "system:kube-scheduler", "system:apiserver",
    # kubeadm's certificate for the apiserver's calls to kubelets (logs, exec, port-forward proxying).
    "kube-apiserver-kubelet-client",
    *(f"{SA_PREFIX}kube-system:{n}" for n in CONTROLLER_SERVICE_ACCOUNTS),
)
# Kubelets (system:node:<node>, NodeRestriction-bound) and the components named system:kube-* (proxy, scheduler,
# controller manager).
DEFAULT_PREFIXES = ("system:node:", "system:kube-")
# Bootstrap tokens (TLS bootstrapping): RBAC lets them create and read their CSRs only (system:node-bootstrapper).
DEFAULT_GROUPS = ("system:bootstrappers",)

# Controllers that create pods from a workload object (the pod's ownerReference names that object).
POD_CREATING_CONTROLLERS = frozenset(
    f"{SA_PREFIX}kube-system:{n}" for n in ("replicaset-controller", "replication-controller",
                                            "daemon-set-controller", "statefulset-controller", "job-controller",
                                            "deployment-controller", "cronjob-controller"))


@dataclass(frozen=True, slots=True)
class Identities:
    """The control plane's identities: exact user names, name prefixes, groups."""

    users: frozenset[str] = frozenset(DEFAULT_USERS)
    prefixes: tuple[str, ...] = DEFAULT_PREFIXES
    groups: frozenset[str] = frozenset(DEFAULT_GROUPS)

    def member(self, user: Any) -> bool:
        if user.__class__ is not dict:
            return False
        name = user.get("username")
        if name.__class__ is not str or not name:
            return False
        if name in self.users or name.startswith(self.prefixes):
            return True
        groups = user.get("groups")
        return bool(self.groups) and groups.__class__ is list and not self.groups.isdisjoint(groups)

    def exempt(self, ev: dict[str, Any]) -> bool:
        """The caller is the control plane and, when it impersonated, so is the identity it acted as (anyone who
        may impersonate could otherwise hide behind a controller's name)."""
        if not self.member(ev.get("user")):
            return False
        imp = ev.get("impersonatedUser")
        return not imp or self.member(imp)

    @classmethod
    def parse(cls, raw: Any, where: str) -> Identities:
        """The `controlPlane` section: {users: [...], userPrefixes: [...], groups: [...]}; an absent key keeps
        its default, so `{users: [...]}` replaces only the names."""
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: controlPlane must be a mapping of users, userPrefixes, groups")
        unknown = set(raw) - {"users", "userPrefixes", "groups"}
        if unknown:
            raise ValueError(f"{where}: controlPlane: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        d = cls()
        return cls(frozenset(_strings(raw, "users", where, d.users)),
                   tuple(_strings(raw, "userPrefixes", where, d.prefixes)),
                   frozenset(_strings(raw, "groups", where, d.groups)))


def _strings(raw: dict[str, Any], key: str, where: str, default: Any) -> list[str]:
    if key not in raw:
        return list(default)
    v = raw[key]
    if not isinstance(v, list) or not all(isinstance(s, str) and s for s in v):
        raise ValueError(f"{where}: controlPlane.{key} must be a list of non-empty strings")
    return list(v)


DEFAULT = Identities()
