"""Risk ranking of vulnerability findings (vulns/risk.py): the same CVE ranks by where it runs, each factor read
from its engine, and each factor flips when its one fact changes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.cli.main import cli
from kubeward.findings import Risk, Severity
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot
from kubeward.vulns.risk import MAX_SCORE, RiskContext

Obj = dict[str, Any]


def deployment(name: str, ns: str, *, sa: str = "default", privileged: bool = False, host_network: bool = False,
               host_port: int | None = None, automount: bool | None = None) -> Obj:
    port: Obj = {"containerPort": 8080, "name": "http"}
    if host_port:
        port["hostPort"] = host_port
    spec: Obj = {"serviceAccountName": sa,
                 "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [{"name": "app", "image": "nginx:1.25.3", "ports": [port],
                                 "securityContext": {"allowPrivilegeEscalation": False,
                                                     "capabilities": {"drop": ["ALL"]},
                                                     **({"privileged": True} if privileged else {})}}]}
    if host_network:
        spec["hostNetwork"] = True
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def service(name: str, ns: str, kind: str = "ClusterIP", **extra: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": kind, "selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}],
                     **extra}}


def secret_reader(sa: str, ns: str) -> list[Obj]:
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "secret-reader"},
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"{sa}-reads-secrets"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-reader"},
         "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]},
    ]


def deny_all(ns: str) -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


def allow_from(ns: str, cidr: str) -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "from", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"ipBlock": {"cidr": cidr}}], "ports": [{"port": "http"}]}]}}


def exposed_world() -> list[Obj]:
    """An exposed, privileged pod whose service account reads every secret."""
    return [deployment("web", "shop", sa="powerful", privileged=True), service("web", "shop", "LoadBalancer"),
            *secret_reader("powerful", "shop")]


def isolated_world() -> list[Obj]:
    """The same image in a restricted pod, no way in, no token."""
    return [deployment("web", "quiet", automount=False), service("web", "quiet"), deny_all("quiet")]


def rank(objs: list[Obj], *, sev: Severity = Severity.HIGH, fix: bool | None = True,
         unread: frozenset[str] = frozenset(), target: tuple[str, str] | None = None) -> Risk:
    snap = Snapshot([Resource(copy.deepcopy(o)) for o in objs])
    kind, name = target or ("Deployment", "web")
    res = next(r for r in snap.resources if r.kind == kind and r.name == name)
    return RiskContext(snap, unread).risk(sev, fix, res)


def factor(risk: Risk, name: str) -> Any:
    return next(f for f in risk.factors if f.name == name)


def test_exposed_privileged_powerful_ranks_above_isolated_restricted() -> None:
    hot, cold = rank(exposed_world()), rank(isolated_world())
    assert hot.score == MAX_SCORE - 1 == 9  # high (2) + exposed + privileged + service account + fix
    assert cold.score == 3  # high (2) + fix
    assert hot.score > cold.score
    engines = {f.name: f.engine for f in hot.factors}
    assert engines == {"exposed": "netpol", "privileged": "pss", "service-account": "rbac", "fix": "feed"}
    assert "secrets" in factor(hot, "service-account").detail and "powerful-reads-secrets" in factor(
        hot, "service-account").detail
    assert "privileged" in factor(hot, "privileged").detail
    assert "Service/web type LoadBalancer" in factor(hot, "exposed").detail


# Each factor flips when its one fact changes: (world change, factor, present before, present after).
def _lb(objs: list[Obj]) -> None:
    objs[1]["spec"]["type"] = "ClusterIP"


def _unprivileged(objs: list[Obj]) -> None:
    del objs[0]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"]


def _no_token(objs: list[Obj]) -> None:
    objs[0]["spec"]["template"]["spec"]["automountServiceAccountToken"] = False


def _policy(objs: list[Obj]) -> None:
    objs.append(deny_all("shop"))


def _unbound(objs: list[Obj]) -> None:
    objs[-1]["subjects"][0]["name"] = "someone-else"


@pytest.mark.parametrize(("change", "name"), [
    (_lb, "exposed"), (_policy, "exposed"), (_unprivileged, "privileged"), (_no_token, "service-account"),
    (_unbound, "service-account"),
])
def test_each_factor_flips(change: Callable[[list[Obj]], None], name: str) -> None:
    world = exposed_world()
    before = rank(world)
    change(world)
    after = rank(world)
    assert factor(before, name).present is True and factor(after, name).present is False
    assert after.score == before.score - 2
    others = [f.name for f in before.factors if f.name != name]
    assert [factor(after, n).present for n in others] == [factor(before, n).present for n in others]


def test_fix_flips_and_severity_counts() -> None:
    world = exposed_world()
    assert rank(world, fix=True).score - rank(world, fix=False).score == 1
    assert factor(rank(world, fix=False), "fix").present is False
    assert rank(world, sev=Severity.CRITICAL).score - rank(world, sev=Severity.LOW).score == 3


@pytest.mark.parametrize(("objs", "present", "said"), [
    ([deployment("web", "shop", host_network=True)], True, "hostNetwork"),
    ([deployment("web", "shop", host_port=30080)], True, "hostPort"),
    ([deployment("web", "shop", host_port=30080), deny_all("shop")], False, "denied by shop/deny"),
    ([deployment("web", "shop"), service("web", "shop", "NodePort")], True, "NodePort"),
    ([deployment("web", "shop"), service("web", "shop", externalIPs=["198.51.100.7"])], True, "externalIPs"),
    ([deployment("web", "shop"), service("web", "shop", "LoadBalancer"), allow_from("shop", "10.0.0.0/8")], False,
     "denied by shop/from"),
    ([deployment("web", "shop"), service("web", "shop", "LoadBalancer"), allow_from("shop", "0.0.0.0/0")], True,
     "NetworkPolicy allows the internet"),
    ([deployment("web", "shop"), service("web", "shop"),
      {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "front", "namespace": "shop"},
       "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
                                               "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}],
     True, "Ingress/front"),
    # A LoadBalancer in another namespace, or selecting other pods, is no way in.
    ([deployment("web", "shop"), {**service("web", "other", "LoadBalancer")}], False, "no Service"),
    ([deployment("web", "shop"), {**service("api", "shop", "LoadBalancer")}], False, "no Service"),
])
def test_ways_in(objs: list[Obj], present: bool, said: str) -> None:
    f = factor(rank(objs), "exposed")
    assert f.present is present and said in f.detail


def test_namespaced_power_and_groups() -> None:
    # A RoleBinding granting pods/create in the pod's namespace, to every service account of it (a group).
    objs = [deployment("web", "shop"),
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "mk", "namespace": "shop"},
             "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "all-sa", "namespace": "shop"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mk"},
             "subjects": [{"kind": "Group", "name": "system:serviceaccounts:shop"}]}]
    f = factor(rank(objs), "service-account")
    assert f.present is True and "create pods" in f.detail


def test_unknown_is_counted_never_a_no() -> None:
    objs = [deployment("web", "shop")]
    known = rank(objs)
    assert factor(known, "exposed").present is False and factor(known, "service-account").present is False
    unread = rank(objs, unread=frozenset({"Service", "RoleBinding"}))
    assert factor(unread, "exposed").present is None and factor(unread, "service-account").present is None
    assert unread.score == known.score + 4
    snap = Snapshot([])
    component = RiskContext(snap).risk(Severity.HIGH, None, None, "the kubelet of a Node")
    assert all(f.present is None for f in component.factors) and component.score == MAX_SCORE - 1


TRIVY = {"SchemaVersion": 2, "ArtifactName": "nginx:1.25.3", "Metadata": {"RepoTags": ["nginx:1.25.3"]},
         "Results": [{"Target": "debian", "Vulnerabilities": [
             {"VulnerabilityID": "CVE-2023-44487", "PkgName": "libnghttp2-14", "InstalledVersion": "1.52.0-1",
              "FixedVersion": "1.52.0-1+deb12u1", "Severity": "HIGH", "Title": "HTTP/2 Rapid Reset"}]}]}


def _cli(tmp_path: Path, *args: str) -> Any:
    docs = [*exposed_world(), deployment("web", "quiet", automount=False), deny_all("quiet")]
    (tmp_path / "world.yaml").write_text(yaml.safe_dump_all(docs))
    (tmp_path / "trivy.json").write_text(json.dumps(TRIVY))
    return CliRunner().invoke(cli, ["vulns", str(tmp_path / "world.yaml"), "--images", str(tmp_path / "trivy.json"),
                                    "--today", "2024-12-01", "--fail-on", "none", *args])


def test_cli_json_ranks_and_names_engines(tmp_path: Path) -> None:
    r = _cli(tmp_path, "-o", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    cves = [f for f in doc["findings"] if f["control"]["id"] == "CVE-2023-44487"]
    assert [(f["object"]["namespace"], f["risk"]["score"]) for f in cves] == [("shop", 9), ("quiet", 3)]
    assert {x["factor"]: x["engine"] for x in cves[0]["risk"]["factors"]} == {
        "exposed": "netpol", "privileged": "pss", "service-account": "rbac", "fix": "image report"}
    assert "risk" not in doc["findings"][0]  # KW-V000, the data's date, is not ranked


def test_cli_min_risk_and_table(tmp_path: Path) -> None:
    r = _cli(tmp_path, "--min-risk", "5", "-o", "json")
    doc = json.loads(r.stdout)
    cves = [f for f in doc["findings"] if f["control"]["id"] == "CVE-2023-44487"]
    assert [f["object"]["namespace"] for f in cves] == ["shop"]
    assert "--min-risk 5: 1 finding(s) with a lower risk left out" in r.stderr
    assert any(f["control"]["id"] == "KW-V000" for f in doc["findings"])  # never filtered
    table = _cli(tmp_path, "--min-risk", "10").stdout
    assert "CVE-2023-44487" not in table and "KW-V000" in table
    table = _cli(tmp_path).stdout
    assert "risk 9/10: exposed +2" in table and "risk 3/10: fix +1" in table
    sarif = json.loads(_cli(tmp_path, "-o", "sarif").stdout)
    scores = [r["properties"]["risk"]["score"] for r in sarif["runs"][0]["results"] if "risk" in r["properties"]]
    assert sorted(scores) == [3, 9]


def test_json_pieces_equal_the_plain_dump() -> None:
    """The spliced JSON renderer writes the risk exactly as Finding.to_json holds it (suppressed ones too)."""
    import orjson

    from kubeward.findings import ControlMeta, Finding, Location, ObjectRef, Report
    from kubeward.formats.json import document, render

    meta = ControlMeta("CVE-2023-44487", "HTTP/2 Rapid Reset", Severity.HIGH, "image-vulns")
    ref = ObjectRef("apps/v1", "Deployment", "shop", "web")
    ranked = Finding(meta, ref, Location("w.yaml", 3), "/spec", "m", risk=rank(exposed_world()))
    hidden = Finding(meta, ref, Location("w.yaml", 3), "/spec", "m", "accepted", rank(isolated_world()))
    report = Report(objects=1, findings=[ranked, Finding(meta, ref, Location(), "/x", "plain")], suppressed=[hidden])
    assert render(report) == orjson.dumps(document(report), option=orjson.OPT_INDENT_2).decode() + "\n"
    assert json.loads(render(report))["suppressed"][0]["risk"]["score"] == 3


def test_html_lists_vulnerabilities_by_risk_with_engines(tmp_path: Path) -> None:
    html = _cli(tmp_path, "-o", "html").stdout
    assert 'id="vulnerabilities"' in html and "Vulnerabilities by risk" in html
    section = html[html.index('id="vulnerabilities"'):html.index("<h2>Findings")]
    assert section.index(">9/10<") < section.index(">3/10<")  # the exposed, privileged, powerful pod first
    assert "(netpol)" in section and "(pss)" in section and "(rbac)" in section and "(image report)" in section
    assert "powerful-reads-secrets" in section and "<script" not in section
    plain = CliRunner().invoke(cli, ["vulns", "--version", "1.37.2", "-o", "html", "--fail-on", "none",
                                     "--today", "2026-12-07"]).stdout
    assert 'id="vulnerabilities"' not in plain  # nothing ranked: no section


@settings(max_examples=40, deadline=None)
@given(lb=st.booleans(), privileged=st.booleans(), bound=st.booleans(), mounted=st.booleans(), fix=st.booleans(),
       sev=st.sampled_from(list(Severity)))
def test_score_is_the_sum_of_its_facts(lb: bool, privileged: bool, bound: bool, mounted: bool, fix: bool,
                                       sev: Severity) -> None:
    """Every combination of the four facts: each adds its points exactly when it holds, whatever the others."""
    objs = [deployment("web", "shop", sa="powerful", privileged=privileged, automount=None if mounted else False),
            service("web", "shop", "LoadBalancer" if lb else "ClusterIP"), *secret_reader("powerful", "shop")]
    if not bound:
        objs[-1]["subjects"][0]["name"] = "nobody"
    r = rank(objs, sev=sev, fix=fix)
    want = {Severity.CRITICAL: 3, Severity.HIGH: 2, Severity.MEDIUM: 1}.get(sev, 0)
    want += 2 * lb + 2 * privileged + 2 * (bound and mounted) + fix
    assert r.score == want
    assert [f.present for f in r.factors] == [lb, privileged, bound and mounted, fix]
