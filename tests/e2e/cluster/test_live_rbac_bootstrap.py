"""Offline answers with the shipped bootstrap policy are the cluster's answers: seeded random RBAC worlds applied to
a real kube-apiserver, then questions (resource and non-resource, users that no binding names, anonymous and
service-account users) asked both to the live SubjectAccessReview and to kubeward's engine built from the
cluster's own objects *without* their bootstrap policy: kubeward supplies that from kubeward/data. 100% agreement
is required."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from livekube import subject_access_review, wait_for
from test_live_rbac import RESOURCES, VERBS, _apply_world, _attrs, _expected_aggregation, make_world

from kubeward.cli.rbac import build_request
from kubeward.discovery import RESTMapper
from kubeward.engines.rbac import RBACIndex, Request, UserInfo
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot
from kubeward.sources.cluster import RBAC_TYPES, Client, load_cluster

SEEDS = (11, 23, 2025)
QUESTIONS_PER_WORLD = 400
CLI_QUESTIONS_PER_WORLD = 12
NON_RESOURCE_PATHS = ["/version", "/version/", "/healthz", "/healthz/etcd", "/api", "/api/v1", "/apis",
                      "/apis/apps/v1", "/metrics", "/logs", "/logs/kube.log", "/livez", "/livez/ping", "/readyz",
                      "/openapi/v2", "/openapi/v3/apis/apps/v1", "/custom/thing", "/"]
SELF = [("authorization.k8s.io", "selfsubjectaccessreviews", ""), ("authorization.k8s.io", "selfsubjectrulesreviews", ""),
        ("authentication.k8s.io", "selfsubjectreviews", ""), ("", "configmaps", ""), ("", "secrets", ""),
        ("rbac.authorization.k8s.io", "clusterroles", ""), ("", "nodes", ""), ("", "pods", "")]
BOOTSTRAP = ("kubernetes.io/bootstrapping", "rbac-defaults")


def _question(rng: random.Random, vocab: dict[str, Any]) -> tuple[str, list[str], Request]:
    roll = rng.random()
    if roll < 0.15:
        user, groups = "system:anonymous", ["system:unauthenticated"]
    elif roll < 0.45:
        user, groups = rng.choice(["stranger", "nobody-bound", "kube-prober"]), ["system:authenticated"]
    elif roll < 0.7:
        user = rng.choice(vocab["users"])
        groups = [*rng.sample(vocab["groups"], rng.randint(0, 2)), "system:authenticated"]
    else:
        ns, n = rng.choice(vocab["sas"])
        user = f"system:serviceaccount:{ns}:{n}"
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    if rng.random() < 0.05:
        groups = [g for g in groups if g != "system:authenticated"]  # unusual but legal in a SAR
    if rng.random() < 0.45:
        return user, groups, Request.non_resource(rng.choice(["get", "get", "head", "post", "put"]),
                                                  rng.choice(NON_RESOURCE_PATHS))
    group, resource, sub = rng.choice(SELF if rng.random() < 0.4 else RESOURCES)
    ns = rng.choice([*vocab["nss"], "", "kube-system", "kube-public", "default"])
    verb = "create" if resource.startswith("self") else rng.choice(VERBS)
    name = rng.choice(["", "", "extension-apiserver-authentication", "cluster-info", "n1"])
    return user, groups, Request(verb, resource, sub, group, ns, name)


def _without_bootstrap(snapshot: Any) -> Snapshot:
    keep = [r for r in snapshot.resources if r.labels.get(BOOTSTRAP[0]) != BOOTSTRAP[1]]
    return Snapshot(Resource(r.obj) for r in keep)


def _spelling(rng: random.Random, mapper: RESTMapper, req: Request) -> tuple[str, list[str]]:
    """A way a kubectl user would type the request's resource, and the flags it needs."""
    if not req.resource_request:
        return req.path, []
    entry = mapper.lookup(req.api_group, req.resource)
    sub = f"/{req.subresource}" if req.subresource else ""
    if entry is None:  # not a discovered type (users, groups, example.com): the literal form
        return req.resource + sub, ["--api-group", req.api_group]
    forms = [entry.name, entry.singular, entry.kind, *entry.short_names]
    if entry.group:
        forms += [f"{entry.name}.{entry.group}", f"{entry.name}.{entry.version}.{entry.group}"]
    return rng.choice([f for f in forms if f]) + sub, []


def _cli(world_file: Path, user: str, groups: list[str], target: str, flags: list[str], req: Request) -> str:
    args = ["rbac", "can-i", req.verb, target, *([req.name] if req.name else []), "--as", user, *flags,
            *(a for g in groups for a in ("--as-group", g)), "-f", str(world_file)]
    args += ["-n", req.namespace] if req.namespace else (["-A"] if req.resource_request else [])
    out = subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", *args],
                         capture_output=True, text=True, check=False)
    assert out.returncode in (0, 1), out.stderr
    return out.stdout.strip()


def test_bootstrap_policy_answers_as_the_cluster(live: Any, admin: Client, tmp_path: Path) -> None:
    total = agreed = allowed = non_resource = cli_total = 0
    mapper = RESTMapper.builtin()
    by_bootstrap = 0
    for seed in SEEDS:
        world, vocab = make_world(seed)
        _apply_world(admin, world)
        wait_for("clusterrole aggregation", lambda s=seed: _expected_aggregation(admin, f"w{s}"), 60)
        live_snap = load_cluster(types=RBAC_TYPES, client=admin)
        assert not live_snap.not_assessed
        offline = _without_bootstrap(live_snap)
        assert len(offline) < len(live_snap), "the cluster's bootstrap objects must have been removed"
        index = RBACIndex.from_snapshot(offline)  # bootstrap policy from the shipped data
        rng = random.Random(seed * 7 + 3)
        mismatches = []
        for _ in range(QUESTIONS_PER_WORLD):
            user, groups, req = _question(rng, vocab)
            real = subject_access_review(admin, user, groups, _attrs(req), req.resource_request)
            ours = index.authorize(UserInfo(user, tuple(groups)), req)
            total += 1
            allowed += real
            non_resource += not req.resource_request
            by_bootstrap += bool(ours.allowed and ours.binding is not None and ours.binding.resource is None)
            if real == ours.allowed:
                agreed += 1
            else:
                mismatches.append(f"user={user!r} groups={groups} {req}: apiserver allowed={real}, "
                                  f"kubeward allowed={ours.allowed} ({ours.reason})")
        assert not mismatches, "\n".join(mismatches[:10]) + f"\n({len(mismatches)} mismatches in world {seed})"
        # The CLI over the same objects as files, resource names typed as kubectl users type them.
        world_file = tmp_path / f"world-{seed}.yaml"
        world_file.write_text(yaml.safe_dump_all([r.obj for r in offline.resources]))
        for _ in range(CLI_QUESTIONS_PER_WORLD):
            user, groups, req = _question(rng, vocab)
            if "system:authenticated" not in groups and "system:unauthenticated" not in groups:
                groups.append("system:authenticated")  # --as adds it, as impersonation does
            target, flags = _spelling(rng, mapper, req)
            asked = build_request(mapper, req.verb, target, req.name or None, req.namespace or "default",
                                  not req.namespace, flags[1] if flags else None)
            real = subject_access_review(admin, user, groups, _attrs(asked), asked.resource_request)
            got = _cli(world_file, user, groups, target, flags, req)
            assert got == ("yes" if real else "no"), f"rbac can-i {asked.verb} {target} as {user} {groups}: {got}"
            cli_total += 1
    print(f"\nbootstrap differential: {agreed}/{total} answers agree with SubjectAccessReview over {len(SEEDS)} "
          f"seeds ({non_resource} non-resource, {allowed} allowed, {by_bootstrap} allowed by a bootstrap binding "
          f"the input lacked); {cli_total}/{cli_total} CLI answers with kubectl spellings agree")
    assert agreed == total and total == len(SEEDS) * QUESTIONS_PER_WORLD
    assert by_bootstrap >= total // 20, "the questions must exercise the bootstrap policy"
    assert allowed >= total // 10 and total - allowed >= total // 10
