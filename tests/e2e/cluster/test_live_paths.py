"""Attack paths on a real kube-apiserver: the scenario worlds (tests/data/paths) applied, read back through the live
source, the graph built; every RBAC step of the graph (the escalation-paths engine's edges, pod creation, reading
every secret) is confirmed by a SubjectAccessReview for each request it claims, and the same request from an
identity the graph gives no such step is denied. The expected paths are found on the live objects too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from livekube import create, subject_access_review

from kubeward.engines.rbac import RBACIndex
from kubeward.paths import analyze, build
from kubeward.paths.graph import EdgeKind
from kubeward.sources.cluster import Client, load_cluster

WORLDS = Path(__file__).resolve().parents[2] / "data" / "paths"
APPLIED = ("dashboard", "daemonset", "ci-runner", "token-secret", "lateral", "docker-socket", "impersonate")
PLURAL = {"Ingress": "ingresses", "NetworkPolicy": "networkpolicies"}
SA_PREFIX = "system:serviceaccount:"


def _post(client: Client, obj: dict[str, Any]) -> None:
    kind = obj["kind"]
    if kind in ("Namespace", "ServiceAccount", "Secret", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        create(client, obj)
        return
    gv = obj["apiVersion"]
    base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
    ns = obj["metadata"].get("namespace", "default")
    status, doc = client.json("POST", f"{base}/namespaces/{ns}/{PLURAL.get(kind, kind.lower() + 's')}", body=obj)
    assert status in (201, 409), f"create {kind} {obj['metadata']['name']}: HTTP {status}: {doc}"


def _who(node: str) -> tuple[str, list[str]]:
    """The SubjectAccessReview identity of a graph node, without implicit groups: the step must hold on the
    node's own grants (membership is a separate edge)."""
    kind, _, rest = node.partition(" ")
    if kind == "ServiceAccount":
        ns, _, name = rest.partition("/")
        return f"{SA_PREFIX}{ns}:{name}", []
    if kind == "Group":
        return "kubeward:path-probe", [rest]
    return rest, []


def _attrs(claim: tuple[str, ...]) -> dict[str, Any]:
    verb, group, resource, sub, ns, name = claim
    out = {"verb": verb, "group": group, "resource": resource}
    for key, value in (("subresource", sub), ("namespace", ns), ("name", name)):
        if value:
            out[key] = value
    return out


def test_rbac_steps_agree_with_subject_access_review(live: Any, admin: Client) -> None:
    docs = [d for w in APPLIED for d in yaml.safe_load_all((WORLDS / f"{w}.yaml").read_text()) if d]
    for ns in sorted({d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]}):
        create(admin, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for doc in sorted(docs, key=lambda d: d["kind"] != "ServiceAccount"):  # token Secrets need their account
        _post(admin, doc)
    snap = load_cluster(client=admin)
    assert not snap.not_assessed
    g = build(snap, RBACIndex.from_snapshot(snap, builtin_roles=False))
    steps = [e for e in g.edges() if e.kind in (EdgeKind.RBAC, EdgeKind.READS_SECRET)
             and e.src.split(" ", 1)[0] in ("User", "Group", "ServiceAccount")]
    ours = [e for e in steps if any(e.src.endswith(f" {ns}/{n}") or e.src.startswith(f"ServiceAccount {ns}/")
                                    for ns, n in (("ci", "runner"), ("shop", "web"), ("support", "helpdesk"),
                                                  ("kube-system", "cni"), ("app", "backup")))]
    assert len(ours) >= 5 and all(e.claims for e in steps)
    checked = 0
    wrong = []
    for e in steps:
        user, groups = _who(e.src)
        for claim in e.claims:
            checked += 1
            if not subject_access_review(admin, user, groups, _attrs(claim), True):
                wrong.append(f"{e.src} -[{e.evidence}]-> {e.dst}: SubjectAccessReview denies {claim}")
    assert not wrong, "\n".join(wrong[:10])
    # the same requests from an identity the graph gives no step: denied
    nobody = "ServiceAccount app/frontend"
    assert not any(e.src == nobody for e in steps)
    user, _ = _who(nobody)
    for e in ours:
        for claim in e.claims:
            assert not subject_access_review(admin, user, [], _attrs(claim), True), (e.src, claim)
    print(f"\nattack-path RBAC steps: {checked} requests over {len(steps)} edges confirmed by SubjectAccessReview")
    # the paths the worlds expect, on the objects the apiserver returns
    keys = {p.key for p in analyze(snap, "internet", "cluster-admin", graph=g).paths}
    # in the worlds together other equally cheap routes may win a tie: compare the entry and the decisive steps
    assert any(k[1:4] == ("pod ci/runner", "ServiceAccount ci/runner", "any service account in kube-system")
               and k[-1] == "cluster-admin" for k in keys), sorted(keys)
    assert ("internet", "pod shop/web", "ServiceAccount shop/web", "ServiceAccount shop/deployer",
            "cluster-admin") in keys
    assert ("internet", "pod support/helpdesk", "ServiceAccount support/helpdesk", "cluster-admin") in keys
    # the CLI reading the same cluster lists the same paths
    out = subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", "paths", "--cluster",
                          "--kubeconfig", str(live.kubeconfig), "--no-bootstrap-policy", "-o", "json",
                          "--limit", "1000"], capture_output=True, text=True, check=False)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    cli_keys = {(p["from"], *(s["to"] for s in p["steps"])) for p in doc["paths"]}
    assert cli_keys == keys
