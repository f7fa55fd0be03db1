"""Small helpers the live tests share: create objects, wait for conditions, ask SubjectAccessReviews."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubeward.sources.cluster import Client

PLURALS = {
    "Namespace": ("v1", "namespaces", False), "ServiceAccount": ("v1", "serviceaccounts", True),
    "Secret": ("v1", "secrets", True), "ConfigMap": ("v1", "configmaps", True), "Pod": ("v1", "pods", True),
    "Service": ("v1", "services", True), "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies", True),
    "Role": ("rbac.authorization.k8s.io/v1", "roles", True),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", "clusterroles", False),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
}


def collection(kind: str, namespace: str | None = None) -> str:
    gv, plural, namespaced = PLURALS[kind]
    base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
    return f"{base}/namespaces/{namespace}/{plural}" if namespaced and namespace else f"{base}/{plural}"


def create(client: Client, obj: dict[str, Any], *, dry_run: bool = False, ok: tuple[int, ...] = (201,)) -> Any:
    """POST the object; returns the parsed response (status must be in `ok`, 409 AlreadyExists is accepted)."""
    ns = (obj.get("metadata") or {}).get("namespace")
    status, doc = client.json("POST", collection(obj["kind"], ns), body=obj,
                              query={"dryRun": "All"} if dry_run else None)
    if status not in (*ok, 409):
        raise AssertionError(f"create {obj['kind']} {obj['metadata'].get('name')}: HTTP {status}: {doc}")
    return doc


def dry_run_pod(client: Client, namespace: str, pod: dict[str, Any]) -> tuple[int, str]:
    """Server-side dry-run create: (status, message)."""
    status, doc = client.json("POST", collection("Pod", namespace), body=pod, query={"dryRun": "All"})
    return status, (doc or {}).get("message", "") if isinstance(doc, dict) else ""


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def namespace(client: Client, name: str, labels: dict[str, str] | None = None) -> None:
    create(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}})


def wait_default_sa(client: Client, names: list[str], timeout: float = 90.0) -> None:
    """The serviceaccount controller creates `default` in each namespace; pod admission looks it up."""
    pending = set(names)

    def done() -> bool:
        status, doc = client.json("GET", "/api/v1/serviceaccounts", query={"fieldSelector": "metadata.name=default"})
        if status == 200:
            pending.difference_update(i["metadata"]["namespace"] for i in doc.get("items", ()))
        return not pending

    wait_for(f"default ServiceAccounts in {len(pending)} namespaces", done, timeout)


def subject_access_review(client: Client, user: str, groups: list[str], attrs: dict[str, Any],
                          resource: bool) -> bool:
    spec: dict[str, Any] = {"user": user, "groups": groups}
    spec["resourceAttributes" if resource else "nonResourceAttributes"] = attrs
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
    status, doc = client.json("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=body)
    assert status == 201, f"SubjectAccessReview: HTTP {status}: {doc}"
    return bool(doc["status"].get("allowed"))
