"""How workloads become pods in the NetworkPolicy model: replicas (a workload of several pods is not one pod, so
replica-to-replica traffic is subject to policy), ownerReferences (only they tie a Pod to a workload), and inputs
the model cannot take in whole (said, and the commands exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.engines.netpol import ClassIndex, decide, from_snapshot
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

DUMP = "tests/data/netpol/kubectl-get-deploy-rs-po.yaml"
DENY_ALL = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "a"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}


def workload(kind: str, name: str, spec: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
             ns: str = "a") -> dict[str, Any]:
    template = {"metadata": {"labels": labels or {"app": name}}, "spec": {"containers": [{"name": "c"}]}}
    body: dict[str, Any] = dict(spec or {})
    if kind == "CronJob":
        body.setdefault("jobTemplate", {"spec": {}})["spec"]["template"] = template
    else:
        body["template"] = template
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": body}


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def build(*objs: dict[str, Any]) -> Any:
    return from_snapshot(Snapshot(Resource(o, file="t.yaml", line=1) for o in objs))


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["netpol", *args], input=stdin)
    return r.exit_code, r.stdout, r.stderr


def write(tmp_path: Path, *objs: dict[str, Any]) -> str:
    f = tmp_path / "in.yaml"
    f.write_text(yaml.safe_dump_all(list(objs)))
    return str(f)


# ---- replicas ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("obj", "count"), [
    (workload("Deployment", "w"), 1),  # apps/v1 defaulting: replicas 1 when unset
    (workload("Deployment", "w", {"replicas": 3}), 3),
    (workload("StatefulSet", "w", {"replicas": 2}), 2),
    (workload("ReplicaSet", "w", {"replicas": 1}), 1),
    (workload("ReplicationController", "w", {"replicas": 4}), 4),
    (workload("DaemonSet", "w"), None),  # one pod per node: unknown, more than one
    (workload("Job", "w"), 1),
    (workload("Job", "w", {"parallelism": 5, "completions": 2}), 2),
    (workload("Job", "w", {"parallelism": 3}), 3),
    (workload("CronJob", "w"), None),  # concurrencyPolicy Allow: runs may overlap
    (workload("CronJob", "w", {"concurrencyPolicy": "Forbid"}), 1),
    (workload("Deployment", "w", {"replicas": "3"}), None),  # rejected by the API: unknown, never "one pod"
])
def test_pod_count_of_workloads(obj: dict[str, Any], count: int | None) -> None:
    c = build(namespace("a"), obj)
    assert [p.count for p in c.pods] == [count]
    assert c.pods[0].single is (count == 1)


def test_autoscaled_workload_counts_as_several() -> None:
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "w", "namespace": "a"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"},
                    "minReplicas": 1, "maxReplicas": 5}}
    assert build(namespace("a"), workload("Deployment", "w"), hpa).pods[0].count is None


def test_replicas_of_one_workload_are_subject_to_policy() -> None:
    c = build(namespace("a"), workload("Deployment", "web", {"replicas": 3}), workload("Deployment", "one"),
              DENY_ALL)
    web, one = (c.pod(k) for k in ("a/web", "a/one"))
    assert not decide(c, web, web, 80).allowed  # two replicas under default-deny
    assert decide(c, one, one, 80).allowed  # a single pod and itself: loopback
    m = ClassIndex(c).matrix(80)
    at = {p.key: i for i, p in enumerate(c.pods)}
    assert not m.allowed(at["a/web"], at["a/web"])
    assert m.allowed(at["a/one"], at["a/one"])
    assert m.allowed_pairs() == 1  # only the single pod's loopback


def test_replicas_allowed_by_a_same_app_rule() -> None:
    allow = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "peers", "namespace": "a"},
             "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"],
                      "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
                      "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}}
    c = build(namespace("a"), workload("DaemonSet", "web"), allow)
    web = c.pods[0]
    assert decide(c, web, web, 80).allowed
    assert ClassIndex(c).matrix(80).allowed(0, 0)


def test_reach_and_explain_show_replica_traffic(tmp_path: Path) -> None:
    f = write(tmp_path, namespace("a"), workload("Deployment", "web", {"replicas": 3}), DENY_ALL)
    code, out, _ = run("reach", f, "--port", "80", "-o", "json")
    assert code == 0
    assert orjson.loads(out)["pairs"] == [{"from": "a/web", "to": "a/web", "allowed": False}]
    code, out, _ = run("reach", f, "--port", "80")
    assert code == 0
    assert out.splitlines()[1].split() == ["a/web", "X"]
    assert "a/web (3 pods)" in out
    code, out, _ = run("reach", f, "-o", "json")
    assert orjson.loads(out)["pairs"] == [{"from": "a/web", "to": "a/web", "allowed": False, "ports": "None"}]
    code, out, _ = run("explain", "a/web", "a/web", f, "--port", "80")
    assert code == 1
    assert "DENIED" in out and "Deployment/web runs 3 pods" in out and "isolated by a/deny" in out


def test_scaled_to_zero_runs_no_pod_and_is_said(tmp_path: Path) -> None:
    c = build(namespace("a"), workload("Deployment", "off", {"replicas": 0}), workload("Deployment", "on"))
    assert [p.key for p in c.pods] == ["a/on"]
    assert [p.key for p in c.idle] == ["a/off"]
    assert any("runs no pod" in n.message and not n.error for n in c.notes)
    f = write(tmp_path, namespace("a"), workload("Deployment", "off", {"replicas": 0}), workload("Deployment", "on"))
    code, out, err = run("reach", f, "--port", "80", "-o", "json")
    assert code == 0 and orjson.loads(out)["pods"] == ["a/on"]
    assert "Deployment a/off: runs no pod" in err
    code, _, err = run("explain", "a/on", "a/off", f, "--port", "80")
    assert code == 2 and "'a/off' is Deployment/off, which runs no pod" in err


# ---- ownerReferences ---------------------------------------------------------------------------------------

def _dump_items() -> list[dict[str, Any]]:
    return yaml.safe_load(Path(DUMP).read_text())["items"]


def test_kubectl_dump_pods_stand_for_their_workloads() -> None:
    c = build(*_dump_items())
    assert [p.key for p in c.pods] == ["shop/api-6b9f7d5c4-x8z2r", "shop/cache-0", "shop/web-7d4b9c8f5-2xq9k",
                                       "shop/web-7d4b9c8f5-m4p7d", "shop/web-debug"]
    assert all(p.workload is None and p.single for p in c.pods)
    assert not [n for n in c.notes if n.error]


def test_an_unrelated_pod_with_template_labels_does_not_hide_a_workload() -> None:
    # deploy,rs from the dump and the bare `kubectl run` pod: web's pods are not in the inputs, so web stays.
    items = [o for o in _dump_items() if o["kind"] != "Pod" or o["metadata"]["name"] == "web-debug"]
    keys = [p.key for p in build(*items).pods]
    assert keys == ["shop/api", "shop/cache", "shop/web", "shop/web-debug"]
    assert build(*items).pod("shop/web").count == 2


def test_pod_template_hash_ties_a_pod_to_its_deployment_without_the_replicaset() -> None:
    items = [o for o in _dump_items() if o["kind"] != "ReplicaSet"]  # `kubectl get deploy,sts,po`
    assert [p.key for p in build(*items).pods if p.workload] == []


def test_replicaset_whose_deployment_is_not_in_the_inputs_is_kept() -> None:
    rs = [o for o in _dump_items() if o["kind"] == "ReplicaSet" and o["metadata"]["name"] == "web-7d4b9c8f5"]
    c = build(*rs)
    assert [(p.key, p.workload, p.count) for p in c.pods] == [("shop/web-7d4b9c8f5", "ReplicaSet/web-7d4b9c8f5", 2)]


def test_cronjob_stands_for_its_jobs_and_a_job_pod_for_both() -> None:
    cj = workload("CronJob", "backup")
    job = workload("Job", "backup-29001", labels={"app": "backup"})
    job["metadata"]["ownerReferences"] = [{"kind": "CronJob", "name": "backup", "controller": True}]
    assert [p.workload for p in build(namespace("a"), cj, job).pods] == ["CronJob/backup"]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "backup-29001-x", "namespace": "a", "labels": {"app": "backup"},
                        "ownerReferences": [{"kind": "Job", "name": "backup-29001", "controller": True}]},
           "spec": {"containers": [{"name": "c"}]}}
    assert [p.key for p in build(namespace("a"), cj, job, pod).pods] == ["a/backup-29001-x"]


# ---- inputs the model cannot take in whole -----------------------------------------------------------------

def test_missing_namespace_object_is_the_api_default_and_said(tmp_path: Path) -> None:
    c = build(workload("Deployment", "w", ns="b"))
    assert c.namespaces["b"] == {"kubernetes.io/metadata.name": "b"}
    assert any(n.where == "namespace b" and "no Namespace object" in n.message for n in c.notes)
    # the automatic label is the name even when the manifest writes another value
    ns_obj = {"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": "b", "labels": {"kubernetes.io/metadata.name": "x", "team": "t"}}}
    assert build(ns_obj, workload("Deployment", "w", ns="b")).namespaces["b"] == {
        "kubernetes.io/metadata.name": "b", "team": "t"}


def test_duplicates_keep_the_last_and_are_errors() -> None:
    p1 = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a", "labels": {"v": "1"}},
          "spec": {"containers": [{"name": "c"}]}}
    p2 = {**p1, "metadata": {**p1["metadata"], "labels": {"v": "2"}}}
    c = build(namespace("a"), p1, p2)
    assert [dict(p.labels) for p in c.pods] == [{"v": "2"}]
    assert [n.code for n in c.notes if n.error] == ["duplicate"]


def test_reach_exits_2_when_an_input_could_not_be_read(tmp_path: Path) -> None:
    good = write(tmp_path, namespace("a"), workload("Deployment", "w"))
    bad = tmp_path / "ns.yaml"
    bad.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: [\n")
    code, out, err = run("reach", good, str(bad), "--port", "80")
    assert code == 2
    assert out.startswith("TCP/80")  # the matrix is still shown, and said to be partial
    assert "reach: 1 input error(s) above" in err
    # an object left out by the model counts as well
    notemplate = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "a"},
                  "spec": {}}
    f = write(tmp_path, namespace("a"), workload("Deployment", "w"), notemplate)
    code, _, err = run("reach", f, "--port", "80")
    assert code == 2 and "Deployment a/x: no pod template" in err


def test_policy_for_a_workload_scaled_to_zero_is_not_called_useless() -> None:
    from kubeward.engines.netpol import lint

    pol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "a"},
           "spec": {"podSelector": {"matchLabels": {"app": "off"}}}}
    c = build(namespace("a"), workload("Deployment", "off", {"replicas": 0}), workload("Deployment", "on"), pol)
    assert lint.SELECTS_NONE not in lint.by_code(c)


def test_generate_name_pods_are_distinct_pods() -> None:
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "job-", "namespace": "a"},
             "spec": {"containers": [{"name": "c"}]}} for _ in range(2)]
    c = build(namespace("a"), *pods)
    assert [p.key for p in c.pods] == ["a/job-", "a/job-(2)"]
    assert not [n for n in c.notes if n.error]


def test_reach_reads_the_kubectl_dump_as_its_pods() -> None:
    code, out, err = run("reach", DUMP, "--port", "8080", "-o", "json")
    assert code == 0, err
    assert orjson.loads(out)["pods"] == ["shop/api-6b9f7d5c4-x8z2r", "shop/cache-0", "shop/web-7d4b9c8f5-2xq9k",
                                         "shop/web-7d4b9c8f5-m4p7d", "shop/web-debug"]
    assert "namespace shop: no Namespace object" in err  # said, not silently assumed


def test_scan_with_a_wrongly_typed_admin_policy_field_reports_it_and_goes_on(tmp_path: Path) -> None:
    anp = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
           "metadata": {"name": "x"},
           "spec": {"priority": 1, "subject": {"namespaces": {}},
                    "egress": [{"name": "e", "action": "Deny", "to": 5}]}}
    f = write(tmp_path, namespace("a"), workload("Deployment", "w"), anp, DENY_ALL)
    r = CliRunner().invoke(cli, ["scan", f, "-o", "json"])
    assert "Traceback" not in r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit)
    found = {(x["control"]["id"], x["object"]["name"]) for x in orjson.loads(r.stdout)["findings"]}
    assert ("KW-N105", "x") in found
    assert any(cid.startswith("KW-W") for cid, _ in found)  # the rest of the scan went on
