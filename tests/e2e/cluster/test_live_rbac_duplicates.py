"""RBAC objects defined more than once in the inputs are read as `kubectl apply` leaves them in the cluster.

Seeded files of Roles, ClusterRoles, RoleBindings and ClusterRoleBindings drawn from a few names, so most names
come two to four times with other rules, subjects or roleRefs, are applied in order with the real kubectl (built
from the official v1.37 modules) against the harness. Each object the cluster then holds must be the one the RBAC
engine judges (the rules of each role, the roleRef and subjects of each binding), and each copy the apiserver
refused (a changed roleRef) must be the one the engine names as refused.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import yaml

from kubeward.engines.rbac.bootstrap import RBAC_KINDS, merged
from kubeward.resource import Duplicate
from kubeward.sources.files import load_paths

SEEDS = range(8)
OBJECTS_PER_SEED = 14
RBAC_GV = "rbac.authorization.k8s.io/v1"
RULES = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
         {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
         {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
         {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["update"]}]


def _world(seed: int) -> tuple[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    ns = f"dup{seed}"
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
    for _ in range(OBJECTS_PER_SEED):
        kind = rng.choice(RBAC_KINDS)
        cluster = kind.startswith("Cluster")
        meta: dict[str, Any] = {"name": f"{ns}-{kind.lower()}-{rng.randint(0, 1)}"}
        if not cluster:
            meta["namespace"] = ns
        obj: dict[str, Any] = {"apiVersion": RBAC_GV, "kind": kind, "metadata": meta}
        if kind.endswith("Binding"):
            role_kind = "ClusterRole" if cluster or rng.random() < 0.5 else "Role"
            obj["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                              "name": rng.choice(["view", "edit", f"{ns}-clusterrole-0", f"{ns}-role-1"])}
            obj["subjects"] = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"u{i}"}
                               for i in rng.sample(range(5), rng.randint(1, 3))]
        else:
            obj["rules"] = rng.sample(RULES, rng.randint(1, 3))
        objs.append(obj)
    return ns, objs


def _held(kubectl: Path, kubeconfig: Path, kind: str, name: str, ns: str | None) -> dict[str, Any]:
    cmd = [str(kubectl), "--kubeconfig", str(kubeconfig), "get", kind.lower(), name, "-o", "json"]
    r = subprocess.run(cmd + (["-n", ns] if ns else []), capture_output=True, text=True, timeout=60, check=True)
    obj: dict[str, Any] = json.loads(r.stdout)
    return obj


def _content(obj: dict[str, Any]) -> Any:
    if obj["kind"].endswith("Binding"):
        return obj["roleRef"], obj.get("subjects")
    return obj.get("rules")


def test_duplicate_rbac_objects_are_read_as_kubectl_apply_leaves_them(live: Any, kubectl: Path,
                                                                    tmp_path: Path) -> None:
    compared = refused_seen = 0
    for seed in SEEDS:
        _, objs = _world(seed)
        path = tmp_path / f"rbac-{seed}.yaml"
        path.write_text(yaml.safe_dump_all(objs, sort_keys=False))
        applied = subprocess.run([str(kubectl), "--kubeconfig", str(live.kubeconfig), "apply", "-f", str(path)],
                                 capture_output=True, text=True, timeout=120, check=False)
        theirs_refused = applied.stderr.count("field is immutable")
        problems: list[Duplicate] = []
        loaded = load_paths([str(path)])
        entries = merged({k: [r for r in loaded.resources if r.kind == k] for k in RBAC_KINDS}, None, problems)
        ours_refused = sum(d.refused == "roleRef: field is immutable" for d in problems)
        assert ours_refused == theirs_refused, (seed, [d.message() for d in problems], applied.stderr)
        assert (applied.returncode != 0) == (theirs_refused > 0), applied.stderr
        refused_seen += theirs_refused
        for kind, kept in entries.items():
            for e in kept:
                meta = e.obj["metadata"]
                held = _held(kubectl, live.kubeconfig, kind, meta["name"], meta.get("namespace"))
                assert _content(held) == _content(e.obj), (seed, kind, meta)
                compared += 1
        subprocess.run([str(kubectl), "--kubeconfig", str(live.kubeconfig), "delete", "--wait=false", "-f",
                        str(path), "--ignore-not-found"], capture_output=True, timeout=120, check=False)
    assert compared >= 8 * len(SEEDS) // 2 and refused_seen > 0, (compared, refused_seen)
