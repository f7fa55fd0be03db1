"""What every kube-apiserver of a version serves before anyone adds to it: the built-in API's discovery and the
bootstrap RBAC policy, shipped as data files generated from a real kube-apiserver (scripts/gen-api-data).

Offline answers must be the cluster's answers: resource arguments resolve through discovery as kubectl resolves
them (kubeward.discovery), and every cluster has the bootstrap ClusterRoles and bindings
(plugin/pkg/auth/authorizer/rbac/bootstrappolicy). The fetch functions here are used both to generate the files
and by the e2e test that compares them with a live server, so both see one normalisation.
"""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from .k8sversion import VersionError, newest, parse, require
from .shipped import DATA, data_file

BOOTSTRAP_SELECTOR = "kubernetes.io/bootstrapping=rbac-defaults"  # bootstrappolicy labels every object it owns
RBAC_PATH = "/apis/rbac.authorization.k8s.io/v1"
RBAC_LISTS = (("ClusterRole", "clusterroles"), ("ClusterRoleBinding", "clusterrolebindings"),
              ("Role", "roles"), ("RoleBinding", "rolebindings"))
# APIResource fields that say what a resource is (k8s.io/apimachinery/pkg/apis/meta/v1/types.go APIResource);
# storageVersionHash changes with the storage encoding and says nothing about names or authorization.
RESOURCE_FIELDS = ("name", "singularName", "namespaced", "group", "version", "kind", "verbs", "shortNames")
DEFAULT_VERSION = "1.37"


class _Client(Protocol):
    def json(self, method: str, path: str, *, query: dict[str, Any] | None = None,
             body: Any = None) -> tuple[int, Any]: ...


def _get(client: _Client, path: str, query: dict[str, Any] | None = None) -> Any:
    status, doc = client.json("GET", path, query=query)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}")
    return doc


def server_minor(client: _Client) -> str:
    info = _get(client, "/version")
    return f"{info['major']}.{str(info['minor']).rstrip('+')}"


def _resource(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: r[k] for k in RESOURCE_FIELDS if k in r and r[k] not in (None, "", [])}
    out["namespaced"] = bool(r.get("namespaced"))
    return out


def fetch_discovery(client: _Client) -> dict[str, Any]:
    """The legacy (unaggregated) discovery documents, groups in server order (the order kubectl's RESTMapper
    uses for priority, client-go restmapper/discovery.go NewDiscoveryRESTMapper)."""
    core = _get(client, "/api")
    groups: list[dict[str, Any]] = [{
        "name": "", "preferredVersion": core["versions"][0],
        "versions": [{"version": v, "resources": [_resource(r) for r in _get(client, f"/api/{v}")["resources"]]}
                     for v in core["versions"]],
    }]
    for g in _get(client, "/apis")["groups"]:
        groups.append({
            "name": g["name"], "preferredVersion": g["preferredVersion"]["version"],
            "versions": [{"version": v["version"],
                          "resources": [_resource(r) for r in _get(client, f"/apis/{v['groupVersion']}")["resources"]]}
                         for v in g["versions"]],
        })
    return {"serverVersion": _get(client, "/version")["gitVersion"], "groups": groups}


def _object(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    meta = item.get("metadata") or {}
    m: dict[str, Any] = {"name": meta["name"]}
    if meta.get("namespace"):
        m["namespace"] = meta["namespace"]
    for k in ("labels", "annotations"):
        if meta.get(k):
            m[k] = dict(sorted(meta[k].items()))
    obj: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": m}
    for k in ("aggregationRule", "rules", "roleRef", "subjects"):
        if k in item and item[k] is not None:
            obj[k] = item[k]
    if kind in ("ClusterRole", "Role"):
        obj.setdefault("rules", [])
    return obj


def _policy_once(client: _Client) -> list[dict[str, Any]]:
    out = []
    for kind, plural in RBAC_LISTS:
        doc = _get(client, f"{RBAC_PATH}/{plural}", {"labelSelector": BOOTSTRAP_SELECTOR})
        out += [_object(kind, i) for i in doc.get("items") or ()]
    out.sort(key=lambda o: ([k for k, _ in RBAC_LISTS].index(o["kind"]), o["metadata"].get("namespace", ""),
                            o["metadata"]["name"]))
    return out


def fetch_bootstrap_policy(client: _Client, timeout: float = 60.0) -> dict[str, Any]:
    """Every bootstrap RBAC object, once the aggregated ClusterRoles have been filled and two reads agree."""
    deadline = time.monotonic() + timeout
    last: list[dict[str, Any]] | None = None
    while True:
        now = _policy_once(client)
        filled = all(o.get("rules") for o in now if o.get("aggregationRule"))
        if filled and now == last:
            return {"serverVersion": _get(client, "/version")["gitVersion"], "objects": now}
        if time.monotonic() > deadline:
            raise RuntimeError("bootstrap policy did not settle (aggregated ClusterRoles still changing)")
        last = now
        time.sleep(1.0)


def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


# ---- shipped data ------------------------------------------------------------------------------------------------

def _data_names() -> list[str]:
    return sorted(p.name for p in DATA.iterdir())


@cache
def supported_versions() -> tuple[str, ...]:
    """Kubernetes minor versions with both data files (`1.37`, …), oldest first."""
    names = set(_data_names())
    found = []
    for n in names:
        if n.startswith("discovery-v") and n.endswith(".json"):
            v = n[len("discovery-v"):-len(".json")]
            if f"bootstrap-policy-v{v}.json" in names:
                found.append(v)
    return tuple(sorted(found, key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit())))


# A version without data for it (kubeward.k8sversion: one parser and data-set list for every --k8s-version).
UnsupportedVersion = VersionError


def normalise_version(version: str | None) -> str:
    """`v1.37`, `1.37`, `1.37.2` → `1.37`; None → the newest shipped version; unknown → UnsupportedVersion."""
    if not version:
        return str(newest("api-data")) if supported_versions() else DEFAULT_VERSION
    return str(require("api-data", parse(version), version))


@cache
def _load(name: str) -> Any:
    return json.loads(data_file(name).read_text())


def discovery(version: str | None = None) -> dict[str, Any]:
    return _load(f"discovery-v{normalise_version(version)}.json")


def bootstrap_policy(version: str | None = None) -> list[dict[str, Any]]:
    return _load(f"bootstrap-policy-v{normalise_version(version)}.json")["objects"]
