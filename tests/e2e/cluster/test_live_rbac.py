"""RBAC differential proof: seeded random RBAC worlds applied to a real kube-apiserver; random questions asked both
to a real SubjectAccessReview and to kubeward's RBAC engine (in-process, plus a sample through `rbac can-i
--cluster`). 100% agreement is required; a mismatch prints the world and the question.

The engine reads the cluster's RBAC through the live source (kubeward.sources.cluster), so bootstrap roles and the
ClusterRoles the clusterrole-aggregation controller filled in are exactly what the apiserver authorizes with.
"""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

import yaml
from livekube import create, namespace, subject_access_review, wait_for

from kubeward.engines.rbac import RBACIndex, Request, UserInfo
from kubeward.sources.cluster import RBAC_TYPES, Client, load_cluster

SEEDS = (7, 1234)
QUESTIONS_PER_WORLD = 600  # in-process; 2 worlds → 1,200 questions
CLI_QUESTIONS_PER_WORLD = 15
RBAC_GV = "rbac.authorization.k8s.io/v1"

VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "impersonate",
         "bind", "escalate", "use"]
RESOURCES = [  # (group, resource, subresource)
    ("", "pods", ""), ("", "pods", "log"), ("", "pods", "exec"), ("", "secrets", ""), ("", "configmaps", ""),
    ("", "services", ""), ("", "nodes", ""), ("", "namespaces", ""), ("", "serviceaccounts", "token"),
    ("apps", "deployments", ""), ("apps", "deployments", "scale"), ("apps", "statefulsets", ""),
    ("rbac.authorization.k8s.io", "roles", ""), ("rbac.authorization.k8s.io", "clusterroles", ""),
    ("batch", "jobs", ""), ("example.com", "widgets", ""), ("", "users", ""), ("", "groups", ""),
]
NAMES = ["", "", "n1", "n2", "other"]
PATHS = ["/healthz", "/healthz/ready", "/metrics", "/logs/kube.log", "/logs", "/api", "/api/v1", "/version",
         "/apis/apps", "/openapi/v2", "/custom/thing"]


def _rule(rng: random.Random, cluster: bool) -> dict[str, Any]:
    if cluster and rng.random() < 0.2:
        return {"verbs": rng.sample(["get", "post", "put", "*"], rng.randint(1, 2)),
                "nonResourceURLs": rng.sample(["/healthz", "/healthz/*", "/metrics", "/logs/*", "/api/*", "*",
                                               "/version"], rng.randint(1, 2))}
    verbs = ["*"] if rng.random() < 0.08 else rng.sample(VERBS, rng.randint(1, 3))
    picks = rng.sample(RESOURCES, rng.randint(1, 3))
    groups = sorted({g for g, _, _ in picks}) if rng.random() > 0.1 else ["*"]
    resources = []
    for _, r, sub in picks:
        roll = rng.random()
        resources.append("*" if roll < 0.05 else f"*/{sub}" if sub and roll < 0.15 else f"{r}/{sub}" if sub else r)
    rule: dict[str, Any] = {"apiGroups": groups, "resources": sorted(set(resources)), "verbs": verbs}
    if rng.random() < 0.25:
        rule["resourceNames"] = rng.sample(["n1", "n2"], rng.randint(1, 2))
    return rule


def make_world(seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Namespaces, roles, cluster roles (incl. aggregation), bindings to users, groups and service accounts."""
    rng = random.Random(seed)
    p = f"w{seed}"
    nss = [f"{p}-ns{i}" for i in range(3)]
    users = [f"{p}-u{i}" for i in range(6)]
    groups = [f"{p}-g{i}" for i in range(4)]
    sas = [(ns, f"sa{i}") for ns in nss for i in range(2)]
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in nss]
    objs += [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": n, "namespace": ns}} for ns, n in sas]
    croles = []
    for i in range(8):
        name = f"{p}-cr{i}"
        meta: dict[str, Any] = {"name": name}
        if i % 3 == 0:
            meta["labels"] = {f"{p}/agg": "yes"}
        croles.append(name)
        objs.append({"apiVersion": RBAC_GV, "kind": "ClusterRole", "metadata": meta,
                     "rules": [_rule(rng, True) for _ in range(rng.randint(1, 3))]})
    agg = f"{p}-aggregated"
    croles.append(agg)
    objs.append({"apiVersion": RBAC_GV, "kind": "ClusterRole", "metadata": {"name": agg},
                 "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {f"{p}/agg": "yes"}}]}, "rules": []})
    roles: dict[str, list[str]] = {ns: [] for ns in nss}
    for ns in nss:
        for i in range(3):
            name = f"r{i}"
            roles[ns].append(name)
            objs.append({"apiVersion": RBAC_GV, "kind": "Role", "metadata": {"name": name, "namespace": ns},
                         "rules": [_rule(rng, False) for _ in range(rng.randint(1, 3))]})

    def subjects() -> list[dict[str, Any]]:
        out = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(["User", "User", "Group", "ServiceAccount"])
            if kind == "User":
                out.append({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": rng.choice(users)})
            elif kind == "Group":
                out.append({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                            "name": rng.choice([*groups, "system:serviceaccounts", f"system:serviceaccounts:{nss[0]}"])})
            else:
                ns, n = rng.choice(sas)
                out.append({"kind": "ServiceAccount", "name": n, "namespace": ns})
        return out

    builtin = ["view", "edit", "admin"]
    for ns in nss:
        for i in range(4):
            if rng.random() < 0.5:
                ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": rng.choice(roles[ns])}
            else:
                ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                       "name": rng.choice(croles + builtin[:1] if rng.random() < 0.9 else builtin)}
            objs.append({"apiVersion": RBAC_GV, "kind": "RoleBinding",
                         "metadata": {"name": f"rb{i}", "namespace": ns}, "roleRef": ref, "subjects": subjects()})
    for i in range(3):
        objs.append({"apiVersion": RBAC_GV, "kind": "ClusterRoleBinding", "metadata": {"name": f"{p}-crb{i}"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                 "name": rng.choice(croles)}, "subjects": subjects()})
    vocab = {"nss": nss, "users": users, "groups": groups, "sas": sas}
    return objs, vocab


def make_question(rng: random.Random, vocab: dict[str, Any]) -> tuple[str, list[str], Request]:
    roll = rng.random()
    if roll < 0.6:
        user = rng.choice([*vocab["users"], "stranger"])
    else:
        ns, n = rng.choice(vocab["sas"])
        user = f"system:serviceaccount:{ns}:{n}"
    groups = rng.sample(vocab["groups"], rng.randint(0, 2))
    if user.startswith("system:serviceaccount:"):
        groups += ["system:serviceaccounts", f"system:serviceaccounts:{user.split(':')[2]}"]
    if rng.random() < 0.85:
        groups.append("system:authenticated")
    if rng.random() < 0.01:
        groups.append("system:masters")
    if rng.random() < 0.2:
        return user, groups, Request.non_resource(rng.choice(["get", "post", "put", "delete"]), rng.choice(PATHS))
    group, resource, sub = rng.choice(RESOURCES)
    if rng.random() < 0.3:
        sub = ""
    ns = rng.choice([*vocab["nss"], ""])
    return user, groups, Request(verb=rng.choice(VERBS), resource=resource, subresource=sub,
                                 api_group=group, namespace=ns, name=rng.choice(NAMES))


def _attrs(req: Request) -> dict[str, Any]:
    if not req.resource_request:
        return {"path": req.path, "verb": req.verb}
    return {"namespace": req.namespace, "verb": req.verb, "group": req.api_group, "resource": req.resource,
            "subresource": req.subresource, "name": req.name}


def _expected_aggregation(client: Client, prefix: str) -> bool:
    """The aggregation controller has filled the world's aggregated ClusterRole with every labelled role's rules."""
    status, doc = client.json("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles")
    if status != 200:
        return False
    by_name = {i["metadata"]["name"]: i for i in doc["items"]}
    want: list[Any] = []
    for item in doc["items"]:
        if (item["metadata"].get("labels") or {}).get(f"{prefix}/agg") == "yes":
            want += [r for r in item.get("rules") or () if r not in want]
    got = by_name.get(f"{prefix}-aggregated", {}).get("rules") or []
    return all(r in got for r in want) and len(got) == len(want)


def _apply_world(admin: Client, objs: list[dict[str, Any]]) -> None:
    for obj in objs:
        if obj["kind"] == "Namespace":
            namespace(admin, obj["metadata"]["name"])
        else:
            create(admin, obj)


def _mismatch(world: list[dict[str, Any]], user: str, groups: list[str], req: Request, real: bool, ours: Any) -> str:
    return (f"MISMATCH for user={user!r} groups={groups} request: {req}\n"
            f"  kube-apiserver SubjectAccessReview: allowed={real}\n  kubeward: allowed={ours.allowed} ({ours.reason})\n"
            f"world:\n{yaml.safe_dump_all(world, sort_keys=False)}")


def test_rbac_agrees_with_subject_access_review(live: Any, admin: Client) -> None:
    total = agreed = cli_total = allowed = 0
    for seed in SEEDS:
        world, vocab = make_world(seed)
        _apply_world(admin, world)
        wait_for("clusterrole aggregation", lambda s=seed: _expected_aggregation(admin, f"w{s}"), 60)
        snap = load_cluster(types=RBAC_TYPES, client=admin)
        assert not snap.not_assessed and snap.coverage == (4, 4)
        index = RBACIndex.from_snapshot(snap, builtin_roles=False)
        rng = random.Random(seed * 31 + 1)
        mismatches = []
        for _ in range(QUESTIONS_PER_WORLD):
            user, groups, req = make_question(rng, vocab)
            real = subject_access_review(admin, user, groups, _attrs(req), req.resource_request)
            ours = index.authorize(UserInfo(user, tuple(groups)), req)
            total += 1
            allowed += real
            if real == ours.allowed:
                agreed += 1
            else:
                mismatches.append(_mismatch(world, user, groups, req, real, ours))
        assert not mismatches, mismatches[0] + f"\n({len(mismatches)} mismatches in world {seed})"
        # A sample through the CLI reading the same live cluster.
        for _ in range(CLI_QUESTIONS_PER_WORLD):
            user, groups, req = make_question(rng, vocab)
            if "system:authenticated" not in groups:  # --as adds it, as impersonation does
                groups.append("system:authenticated")
            if not req.resource_request:
                target = req.path
            else:
                target = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
            args = ["rbac", "can-i", req.verb, target, *([req.name] if req.name else []), "--as", user,
                    "--cluster", "--kubeconfig", str(live.kubeconfig)]
            for g in groups:
                args += ["--as-group", g]
            if req.resource_request:
                args += ["--api-group", req.api_group] + (["-n", req.namespace] if req.namespace else ["-A"])
            out = subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", *args],
                                 capture_output=True, text=True, check=False)
            real = subject_access_review(admin, user, groups, _attrs(req), req.resource_request)
            assert out.returncode in (0, 1), out.stderr
            assert (out.stdout.strip() == "yes") == real, _mismatch(world, user, groups, req, real,
                                                                    index.authorize(UserInfo(user, tuple(groups)), req))
            cli_total += 1
    print(f"\nRBAC differential: {agreed}/{total} in-process and {cli_total}/{cli_total} CLI answers agree "
          f"with SubjectAccessReview ({allowed} allowed, {total - allowed} denied)")
    assert total >= 1000 and agreed == total
    assert allowed >= total // 10 and total - allowed >= total // 10, "the worlds must exercise both answers"
