"""kubeward's merge of the input with the bootstrap policy (engines/rbac/bootstrap.py) is the apiserver's own
start-up reconciliation: bootstrap objects are changed in a live cluster, the apiserver is restarted (it reconciles
its policy at start), and what it then holds is compared with kubeward's merge of the changed objects (as input
files) with the shipped policy. Then SubjectAccessReviews and the engine must agree. The changes are undone at the
end."""

from __future__ import annotations

import copy
from typing import Any

from livekube import subject_access_review

from kubeward.engines.rbac import RBACIndex, Request, UserInfo
from kubeward.engines.rbac.bootstrap import AUTOUPDATE, merged, policy_objects
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot
from kubeward.sources.cluster import Client

RBAC = "/apis/rbac.authorization.k8s.io/v1"
TARGETS = {  # (kind, path) of bootstrap objects and how the test changes them
    ("ClusterRoleBinding", f"{RBAC}/clusterrolebindings/system:discovery"): "add subject",
    ("ClusterRole", f"{RBAC}/clusterroles/system:basic-user"): "replace rules",
    ("ClusterRole", f"{RBAC}/clusterroles/system:public-info-viewer"): "protect and narrow",
    ("Role", f"{RBAC}/namespaces/kube-system/roles/extension-apiserver-authentication-reader"): "extra rule",
    ("RoleBinding", f"{RBAC}/namespaces/kube-public/rolebindings/system:controller:bootstrap-signer"): "add subject",
}
EVE = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eve"}
PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}


def _change(obj: dict[str, Any], how: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    if how == "add subject":
        out["subjects"] = [*(out.get("subjects") or []), EVE]
    elif how == "replace rules":
        out["rules"] = [PODS]
    elif how == "protect and narrow":
        out["metadata"].setdefault("annotations", {})[AUTOUPDATE] = "false"
        out["rules"] = [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]
    elif how == "extra rule":
        out["rules"] = [*out["rules"], {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]
    return out


def _put(admin: Client, path: str, obj: dict[str, Any]) -> dict[str, Any]:
    status, doc = admin.json("PUT", path, body=obj)
    assert status == 200, f"PUT {path}: HTTP {status}: {doc}"
    return doc  # type: ignore[no-any-return]


def _get(admin: Client, path: str) -> dict[str, Any]:
    status, doc = admin.json("GET", path)
    assert status == 200, f"GET {path}: HTTP {status}"
    return doc  # type: ignore[no-any-return]


def _content(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"kind": kind, "labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {},
            **{k: obj.get(k) for k in ("rules", "roleRef", "subjects", "aggregationRule") if obj.get(k) is not None}}


def test_merge_is_the_apiservers_reconciliation(live: Any, admin: Client) -> None:
    originals = {key: _get(admin, key[1]) for key in TARGETS}
    try:
        changed = {key: _put(admin, key[1], _change(originals[key], how)) for key, how in TARGETS.items()}
        inputs: dict[str, list[Resource]] = {}
        for (kind, _), obj in changed.items():
            inputs.setdefault(kind, []).append(Resource({**obj, "kind": kind,
                                                         "apiVersion": "rbac.authorization.k8s.io/v1"}))
        ours = {(e.resource.kind, e.resource.name): e.obj for kind, es in merged(inputs, policy_objects()).items()
                for e in es if e.resource is not None}
        live.restart_apiserver()  # ready only after the rbac/bootstrap-roles post-start hook has reconciled
        after = {key: _get(admin, key[1]) for key in TARGETS}
        agreed = 0
        for key, obj in after.items():
            theirs = _content(key[0], obj)
            mine = _content(key[0], ours[(key[0], obj["metadata"]["name"])])
            assert mine == theirs, f"{key[1]} ({TARGETS[key]}):\n kube-apiserver: {theirs}\n kubeward: {mine}"
            agreed += 1
        # and the decisions: the engine over the changed objects plus the shipped policy, against SAR
        index = RBACIndex.from_snapshot(Snapshot(r for rs in inputs.values() for r in rs))
        questions = [
            ("eve", [], Request.non_resource("get", "/api")),  # eve added to system:discovery: kept
            ("eve", ["system:authenticated"], Request("create", "selfsubjectaccessreviews", "",
                                                      "authorization.k8s.io")),  # basic-user rules re-added
            ("bob", ["system:authenticated"], Request("get", "pods", namespace="dev")),  # the replaced rule stays
            ("system:anonymous", ["system:unauthenticated"], Request.non_resource("get", "/version")),  # protected
            ("system:anonymous", ["system:unauthenticated"], Request.non_resource("get", "/healthz")),
            ("bob", ["system:authenticated"], Request.non_resource("get", "/livez")),  # narrowed, not restored
            ("eve", [], Request("get", "secrets", namespace="kube-public")),
            ("system:serviceaccount:kube-system:bootstrap-signer", [], Request("list", "secrets",
                                                                               namespace="kube-system")),
        ]
        for user, groups, req in questions:
            real = subject_access_review(admin, user, groups, _attrs(req), req.resource_request)
            mine_ok = index.authorize(UserInfo(user, tuple(groups)), req).allowed
            assert mine_ok == real, f"{user} {groups} {req}: apiserver {real}, kubeward {mine_ok}"
        print(f"\nreconciliation: {agreed}/{len(TARGETS)} changed bootstrap objects merged as the apiserver "
              f"reconciled them; {len(questions)}/{len(questions)} decisions agree")
    finally:
        for key, orig in originals.items():
            cur = _get(admin, key[1])
            fresh = copy.deepcopy(orig)
            fresh["metadata"] = {**orig["metadata"], "resourceVersion": cur["metadata"]["resourceVersion"]}
            _put(admin, key[1], fresh)


def _attrs(req: Request) -> dict[str, Any]:
    if not req.resource_request:
        return {"path": req.path, "verb": req.verb}
    return {"namespace": req.namespace, "verb": req.verb, "group": req.api_group, "resource": req.resource,
            "subresource": req.subresource, "name": req.name}
