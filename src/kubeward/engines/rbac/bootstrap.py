"""The user-facing ClusterRoles every kube-apiserver creates at start-up (bootstrap policy), used when the input
binds to one of them without defining it, as manifests usually do: `roleRef: {kind: ClusterRole, name: edit}`.

Transcribed from plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go `ClusterRoles()` (cluster-admin,
system:discovery, system:basic-user, system:public-info-viewer, and admin ← edit ← view aggregated from
system:aggregate-to-{admin,edit,view}). Minor read-only rules differ between Kubernetes versions; the
security-relevant ones (secrets, pods and exec, impersonate serviceaccounts, roles and rolebindings) are stable.
A ClusterRole of the same name in the input always wins.
"""

from __future__ import annotations

from typing import Any

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
READ_WRITE = READ + WRITE
AGG = "rbac.authorization.k8s.io/aggregate-to-"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}


def _r(verbs: list[str], groups: str, resources: str) -> dict[str, Any]:
    return {"verbs": verbs, "apiGroups": groups.split(","), "resources": resources.split(",")}


def _urls(*urls: str) -> dict[str, Any]:
    return {"verbs": ["get"], "nonResourceURLs": list(urls)}


def _role(name: str, rules: list[dict[str, Any]], labels: dict[str, str] | None = None,
          aggregates: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                           "metadata": {"name": name, "labels": {**BOOTSTRAP_LABELS, **(labels or {})}},
                           "rules": rules}
    if aggregates:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {AGG + aggregates: "true"}}]}
    return obj


BUILTIN_CLUSTER_ROLES: tuple[dict[str, Any], ...] = (
    _role("cluster-admin", [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                            {"verbs": ["*"], "nonResourceURLs": ["*"]}]),
    _role("system:discovery", [_urls("/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi",
                                     "/openapi/*", "/api", "/api/*", "/apis", "/apis/*")]),
    _role("system:basic-user", [_r(["create"], "authorization.k8s.io",
                                   "selfsubjectaccessreviews,selfsubjectrulesreviews")]),
    _role("system:public-info-viewer", [_urls("/livez", "/readyz", "/healthz", "/version", "/version/")]),
    _role("admin", [], aggregates="admin"),
    _role("edit", [], labels={AGG + "admin": "true"}, aggregates="edit"),
    _role("view", [], labels={AGG + "edit": "true"}, aggregates="view"),
    _role("system:aggregate-to-admin", [
        _r(["create"], "authorization.k8s.io", "localsubjectaccessreviews"),
        _r(READ_WRITE, "rbac.authorization.k8s.io", "roles,rolebindings"),
    ], labels={AGG + "admin": "true"}),
    _role("system:aggregate-to-edit", [
        _r(READ, "", "pods/attach,pods/proxy,pods/exec,pods/portforward,secrets,services/proxy"),
        _r(["impersonate"], "", "serviceaccounts"),
        _r(WRITE, "", "pods,pods/attach,pods/proxy,pods/exec,pods/portforward"),
        _r(WRITE, "", "replicationcontrollers,replicationcontrollers/scale,serviceaccounts,services,services/proxy,"
                      "persistentvolumeclaims,configmaps,secrets"),
        _r(WRITE, "apps", "statefulsets,statefulsets/scale,daemonsets,deployments,deployments/scale,"
                          "deployments/rollback,replicasets,replicasets/scale"),
        _r(WRITE, "autoscaling", "horizontalpodautoscalers"),
        _r(WRITE, "batch", "jobs,cronjobs"),
        _r(WRITE, "policy", "poddisruptionbudgets"),
        _r(WRITE, "networking.k8s.io", "networkpolicies,ingresses"),
    ], labels={AGG + "edit": "true"}),
    _role("system:aggregate-to-view", [
        _r(READ, "", "pods,replicationcontrollers,replicationcontrollers/scale,serviceaccounts,services,"
                     "services/status,endpoints,persistentvolumeclaims,persistentvolumeclaims/status,configmaps"),
        _r(READ, "", "limitranges,resourcequotas,bindings,events,pods/status,resourcequotas/status,"
                     "namespaces/status,replicationcontrollers/status,pods/log"),
        _r(READ, "", "namespaces"),
        _r(READ, "apps", "controllerrevisions,statefulsets,statefulsets/status,statefulsets/scale,daemonsets,"
                         "daemonsets/status,deployments,deployments/status,deployments/scale,replicasets,"
                         "replicasets/status,replicasets/scale"),
        _r(READ, "autoscaling", "horizontalpodautoscalers,horizontalpodautoscalers/status"),
        _r(READ, "batch", "jobs,cronjobs,cronjobs/status,jobs/status"),
        _r(READ, "policy", "poddisruptionbudgets,poddisruptionbudgets/status"),
        _r(READ, "networking.k8s.io", "networkpolicies,ingresses,ingresses/status"),
        _r(READ, "discovery.k8s.io", "endpointslices"),
    ], labels={AGG + "view": "true"}),
)
