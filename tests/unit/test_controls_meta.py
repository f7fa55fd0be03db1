"""Control set as a whole: metadata, a hardened workload that passes everything, precedence properties, demo."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.controls.registry import all_controls, run
from kubeward.controls.workload import parse_image
from kubeward.findings import Severity
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot
from kubeward.sources.files import load_paths
from vendored import pss_fixtures

OURS = re.compile(r"^KW-[WNRS]\d{3}$")
FRAMEWORK = re.compile(r"^(nsa|cis-5(\.\d+){1,2}|mitre-T\d{4}(\.\d{3})?|pss-(baseline|restricted))$")
DEMO = Path("src/kubeward/demo")


MODULES = {f"kubeward.controls.{m}" for m in ("workload", "network", "rbac", "secrets")}


def ours() -> dict[str, Any]:
    """The hardening set (other modules register engine-backed controls in the same id space)."""
    return {cid: c for cid, c in all_controls().items()
            if c.func.__module__ in MODULES or c.func.__module__.startswith("kubeward.controls.workload.")}


def test_at_least_sixty_controls_in_every_area() -> None:
    ids = ours()
    assert len(ids) >= 60
    assert all(OURS.match(cid) for cid in ids)
    assert {cid[3] for cid in ids} == set("WNRS")


@pytest.mark.parametrize("cid", sorted(ours()))
def test_metadata_complete(cid: str) -> None:
    c = all_controls()[cid]
    m = c.meta
    assert m.id == cid
    assert m.title and m.title == m.title.strip() and not m.title.endswith(".")
    assert isinstance(m.severity, Severity) and m.severity >= Severity.LOW
    assert m.category == {"W": "workload", "N": "network", "R": "rbac", "S": "secrets"}[cid[3]]
    assert m.frameworks and all(FRAMEWORK.match(f) for f in m.frameworks), m.frameworks
    assert len(set(m.frameworks)) == len(m.frameworks)
    assert len(m.remediation) > 20 and m.remediation.endswith(".")
    assert c.kinds, "a control with no kinds is never evaluated"


def test_titles_unique() -> None:
    titles = [c.meta.title for c in ours().values()]
    assert len(titles) == len(set(titles))


def _scan(paths: list[str], ids: list[str] | None = None) -> Any:
    loaded = load_paths(paths)
    assert not loaded.errors, loaded.errors
    chosen = [c for cid, c in (ours() if ids is None else all_controls()).items() if ids is None or cid in ids]
    return run(Snapshot(loaded.resources), chosen)


def test_hardened_workload_passes_every_control() -> None:
    report = _scan(["tests/data/controls/hardened.yaml"])
    assert report.objects >= 10
    assert [(f.control.id, f.path) for f in report.findings] == []
    pod_controls = [cid for cid, c in ours().items() if c.shape == "pod"]
    assert len(pod_controls) >= 40
    assert all(report.controls[cid].evaluated >= 1 for cid in pod_controls)


@pytest.mark.parametrize("kind,wrap", [
    ("Pod", lambda t: {"metadata": {**t["metadata"], "name": "p", "namespace": "app"}, "spec": t["spec"]}),
    ("StatefulSet", lambda t: {"spec": {"serviceName": "s", "selector": {"matchLabels": {"app": "web"}}, "template": t}}),
    ("DaemonSet", lambda t: {"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": t}}),
    ("Job", lambda t: {"spec": {"template": t}}),
    ("CronJob", lambda t: {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": t}}}}),
])
def test_hardened_template_passes_in_every_workload_kind(kind: str, wrap: Any, tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all(Path("tests/data/controls/hardened.yaml").read_text()))
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    obj = {"apiVersion": "apps/v1" if kind in ("StatefulSet", "DaemonSet") else "batch/v1" if "Job" in kind else "v1",
           "kind": kind, "metadata": {"name": "w", "namespace": "app"}, **wrap(copy.deepcopy(deploy["spec"]["template"]))}
    if kind == "Pod":
        obj["metadata"] = {"name": "p", "namespace": "app", "labels": {"app": "web"}}
    f = tmp_path / "w.yaml"
    f.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] != "Deployment"] + [obj]))
    report = _scan([str(f)])
    assert [(x.control.id, x.path) for x in report.findings] == []
    # and the same template made privileged is caught, with the path inside that kind's template
    obj_bad = copy.deepcopy(obj)
    node = obj_bad
    for step in {"Pod": [], "CronJob": ["spec", "jobTemplate", "spec", "template"]}.get(kind, ["spec", "template"]):
        node = node[step]
    node["spec"]["containers"][0]["securityContext"]["privileged"] = True
    f.write_text(yaml.safe_dump(obj_bad))
    bad = _scan([str(f)], ["KW-W001"])
    prefix = {"Pod": "", "CronJob": "/spec/jobTemplate/spec/template"}.get(kind, "/spec/template")
    assert [x.path for x in bad.findings] == [f"{prefix}/spec/containers/0/securityContext/privileged"]


# ----------------------------------------------------------------------------------- precedence properties

UID = st.one_of(st.none(), st.just(0), st.integers(min_value=1, max_value=2**31 - 1))
FLAG = st.one_of(st.none(), st.booleans())


def _pod(psc: dict[str, Any], sc: dict[str, Any]) -> Resource:
    clean = {k: v for k, v in psc.items() if v is not None}
    cclean = {k: v for k, v in sc.items() if v is not None}
    return Resource({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "app"},
                     "spec": {"securityContext": clean, "containers": [{"name": "c", "image": "x", "securityContext": cclean}]}})


def _fires(cid: str, res: Resource) -> bool:
    return bool(run(Snapshot([res]), [all_controls()[cid]]).findings)


@settings(max_examples=150, deadline=None)
@given(pod_uid=UID, c_uid=UID, pod_nonroot=FLAG, c_nonroot=FLAG)
def test_run_as_user_and_non_root_follow_pss(pod_uid: Any, c_uid: Any, pod_nonroot: Any, c_nonroot: Any) -> None:
    """check_runAsUser.go / check_runAsNonRoot.go: a pod-level 0 or false fails even where every container
    overrides it; runAsNonRoot must be true (a non-zero runAsUser is not enough)."""
    res = _pod({"runAsUser": pod_uid, "runAsNonRoot": pod_nonroot}, {"runAsUser": c_uid, "runAsNonRoot": c_nonroot})
    assert _fires("KW-W021", res) == (pod_uid == 0 or c_uid == 0)
    assert _fires("KW-W020", res) == (pod_nonroot is False or c_nonroot is False
                                      or (c_nonroot is None and pod_nonroot is not True))


SECCOMP = st.one_of(st.none(), st.sampled_from(["RuntimeDefault", "Localhost", "Unconfined"]))


@settings(max_examples=60, deadline=None)
@given(pod_type=SECCOMP, c_type=SECCOMP)
def test_seccomp_follows_pss(pod_type: Any, c_type: Any) -> None:
    """check_seccompProfile_restricted.go: the container's type, else the pod's, must be RuntimeDefault or
    Localhost, and a pod-level Unconfined fails even when overridden; baseline: no Unconfined set anywhere."""
    res = _pod({"seccompProfile": {"type": pod_type} if pod_type else None},
               {"seccompProfile": {"type": c_type} if c_type else None})
    effective = c_type or pod_type
    # one finding per problem: a set Unconfined is KW-W027's (both levels), an unset profile KW-W026's
    assert _fires("KW-W027", res) == ("Unconfined" in (pod_type, c_type))
    assert _fires("KW-W026", res) == (effective is None)
    assert (_fires("KW-W026", res) or _fires("KW-W027", res)) == (
        effective in (None, "Unconfined") or pod_type == "Unconfined")


NAME = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(registry=st.one_of(st.none(), st.sampled_from(["registry.example.com", "localhost:5000", "10.0.0.1:443"])),
       path=st.lists(NAME, min_size=1, max_size=3), tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)),
       digest=st.one_of(st.none(), st.just("sha256:" + "0" * 64)))
def test_parse_image_reference(registry: Any, path: list[str], tag: Any, digest: Any) -> None:
    repo = "/".join(([registry] if registry else []) + path)
    image = repo + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    assert parse_image(image) == (repo, tag, digest)


# ---------------------------------------------------------------------------------------------------- demo


def test_demo_cluster_covers_every_severity_and_category() -> None:
    loaded = load_paths([str(DEMO)])
    assert not loaded.errors, loaded.errors
    files = {Path(r.file or "").name for r in loaded.resources}
    assert len(files) >= 4
    kinds = {r.kind for r in loaded.resources}
    assert {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Service", "Ingress", "NetworkPolicy",
            "Secret", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Namespace"} <= kinds
    namespaces = {r.namespace for r in loaded.resources if r.namespace}
    assert len(namespaces - {"default"}) >= 3
    report = run(Snapshot(loaded.resources), list(all_controls().values()))
    severities = {f.severity.label for f in report.findings}
    assert {"critical", "high", "medium", "low"} <= severities
    assert {"workload", "network", "rbac", "secrets"} <= {f.control.category for f in report.findings}
    off_by_default = {"KW-W061"}  # needs --allowed-registries
    assert set(ours()) - off_by_default - {f.control.id for f in report.findings} == set(), "every control is shown by the demo"
    # the well-hardened workloads stay clean of pod-level findings
    hardened = {str(f.object) for f in report.findings if f.object.name in ("checkout", "ledger")}
    assert not any(f.control.id.startswith("KW-W0") and f.object.name in ("checkout", "ledger")
                   and all_controls()[f.control.id].shape == "pod" for f in report.findings), hardened


def test_demo_never_prints_secret_values() -> None:
    loaded = load_paths([str(DEMO)])
    report = run(Snapshot(loaded.resources), list(all_controls().values()))
    secrets: set[str] = set()
    for r in loaded.resources:
        for section in ("data", "stringData"):
            if r.kind in ("Secret", "ConfigMap") and isinstance(r.obj.get(section), dict):
                secrets |= {str(v) for v in r.obj[section].values() if len(str(v)) >= 6}
        for c in (r.pod().containers() if r.pod() else ()):
            secrets |= {str(e.get("value")) for e in c[0].get("env") or [] if len(str(e.get("value"))) >= 6}
    text = "\n".join(f.message for f in report.findings)
    assert secrets and not [s for s in secrets if s in text]


# ------------------------------------------------------------------------------------------- robustness

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 70000), st.sampled_from(["", "*", "ALL", "0", "x", "/etc"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(
        st.sampled_from(["name", "image", "securityContext", "capabilities", "add", "drop", "privileged", "runAsUser",
                         "hostPath", "path", "ports", "hostPort", "env", "value", "valueFrom", "secretKeyRef",
                         "resources", "limits", "seccompProfile", "type", "matchLabels", "podSelector", "rules",
                         "verbs", "resources", "apiGroups", "subjects", "kind", "data", "volumeMounts", "readOnly"]),
        inner, max_size=4)),
    max_leaves=12,
)
SPEC_KEYS = st.sampled_from(["containers", "initContainers", "ephemeralContainers", "volumes", "securityContext",
                             "hostPID", "automountServiceAccountToken", "serviceAccountName", "os", "hostUsers"])


@settings(max_examples=150, deadline=None)
@given(spec=st.dictionaries(SPEC_KEYS, JSONISH, max_size=5), other=JSONISH,
       containers=st.lists(st.dictionaries(st.sampled_from(["name", "image", "securityContext", "ports", "env",
                                                            "envFrom", "resources", "volumeMounts", "livenessProbe"]),
                                           JSONISH, max_size=4), max_size=2))
def test_controls_never_crash_on_malformed_objects(spec: dict[str, Any], other: Any, containers: list[Any]) -> None:
    if containers:
        spec["containers"] = containers
    objs = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "x"},
         "spec": {"template": {"metadata": {"labels": other, "annotations": other}, "spec": spec}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "x"}, "spec": spec},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "x", "annotations": other},
         "spec": other},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n", "namespace": "x"},
         "spec": other},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i", "namespace": "x"}, "spec": other},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}, "rules": other},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
         "roleRef": other, "subjects": other},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}, "data": other},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "x"}, "data": other},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": other}},
    ]
    report = run(Snapshot([Resource(o, file="f.yaml", line=1) for o in objs]), list(ours().values()))
    assert all(f.path.startswith("/") and f.message for f in report.findings)


def test_demo_command_reports_and_fails_on_high(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from kubeward.cli.main import cli

    result = CliRunner().invoke(cli, ["demo", "-o", "json", "--output", str(tmp_path / "r.json")])
    assert result.exit_code == 1, result.output
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["summary"]["bySeverity"]["critical"] >= 5
    assert doc["summary"]["suppressed"] >= 1  # node-exporter's annotated, accepted risks
    assert all(f["location"]["file"].startswith("src/kubeward/demo/") for f in doc["findings"])


PSS_FIXTURES = pss_fixtures()
# Workload controls that cover a PSS check (the exact PSS controls, KW-PSS-*, carry the pss-* framework ids).
PSS_RELATED = {
    "baseline": ('KW-W001', 'KW-W002', 'KW-W003', 'KW-W004', 'KW-W005', 'KW-W006', 'KW-W010', 'KW-W011', 'KW-W012', 'KW-W013', 'KW-W014', 'KW-W015', 'KW-W016', 'KW-W017', 'KW-W027', 'KW-W028', 'KW-W029', 'KW-W030', 'KW-W031', 'KW-W032', 'KW-W033', 'KW-W052'),
    "restricted": ('KW-W018', 'KW-W020', 'KW-W021', 'KW-W024', 'KW-W026', 'KW-W035', 'KW-W055', 'KW-W056',
                   'KW-PSS-procMount_restricted'),
}


def _level_controls(level: str, related: set[str]) -> list[str]:
    """The related hardening controls and every control claiming the level (KW-PSS-procMount_restricted too)."""
    return [cid for cid, c in all_controls().items() if cid in related or f"pss-{level}" in c.meta.frameworks]


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_pss_pass_fixtures_pass_the_controls_mapped_to_that_level(level: str) -> None:
    """Upstream's latest pass fixtures for a level are clean for every control that claims that level."""
    latest = max((p for p in (PSS_FIXTURES / level).iterdir() if p.name.startswith("v1.")),
                 key=lambda p: int(p.name.split(".")[1]))
    related = set(PSS_RELATED["baseline"]) | (set(PSS_RELATED["restricted"]) if level == "restricted" else set())
    chosen = _level_controls(level, related)
    assert len(chosen) >= 20
    report = _scan([str(latest / "pass")], chosen)
    assert report.objects >= 15
    assert [(f.control.id, f.object.name) for f in report.findings] == []


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_pss_fail_fixtures_are_caught_by_the_mapped_controls(level: str) -> None:
    """Each fail fixture at the latest version trips at least one control mapped to that level."""
    latest = max((p for p in (PSS_FIXTURES / level).iterdir() if p.name.startswith("v1.")),
                 key=lambda p: int(p.name.split(".")[1]))
    related = set(PSS_RELATED["baseline"]) | (set(PSS_RELATED["restricted"]) if level == "restricted" else set())
    chosen = _level_controls(level, related)
    report = _scan([str(latest / "fail")], chosen)
    caught = {f.object.name for f in report.findings}
    missed = sorted({p.stem for p in (latest / "fail").glob("*.yaml")} - caught)
    # procMount: Unmasked in a user namespace is allowed by baseline (1.35): KW-PSS-procMount_restricted's
    assert missed == []


LABELS = st.dictionaries(st.sampled_from(["app", "tier", "team"]), st.sampled_from(["a", "b"]), max_size=3)
POLICY = st.fixed_dictionaries({
    "namespace": st.sampled_from(["x", "y"]),
    "selector": st.one_of(st.none(), LABELS),  # None: podSelector omitted (selects all)
    "types": st.one_of(st.none(), st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]])),
    "egress": st.booleans(),
})


@settings(max_examples=200, deadline=None)
@given(pod_labels=LABELS, policies=st.lists(POLICY, max_size=3))
def test_network_isolation_follows_policy_type_defaulting(pod_labels: dict[str, str], policies: list[dict[str, Any]]) -> None:
    objs = [Resource({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "x", "labels": pod_labels},
                      "spec": {"containers": [{"name": "c", "image": "i"}]}})]
    ingress_isolated = egress_isolated = False
    for i, p in enumerate(policies):
        spec: dict[str, Any] = {}
        if p["selector"] is not None:
            spec["podSelector"] = {"matchLabels": p["selector"]}
        if p["types"] is not None:
            spec["policyTypes"] = p["types"]
        if p["egress"]:
            spec["egress"] = [{"to": [{"podSelector": {}}]}]
        objs.append(Resource({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                              "metadata": {"name": f"n{i}", "namespace": p["namespace"]}, "spec": spec}))
        selects = p["namespace"] == "x" and all(pod_labels.get(k) == v for k, v in (p["selector"] or {}).items())
        # defaults.go: [Ingress] plus Egress when egress rules exist, unless policyTypes is given
        types = p["types"] if p["types"] is not None else ["Ingress"] + (["Egress"] if p["egress"] else [])
        ingress_isolated |= selects and "Ingress" in types
        egress_isolated |= selects and "Egress" in types
    snap = Snapshot(objs)
    assert bool(run(snap, [all_controls()["KW-N008"]]).findings) == (not ingress_isolated)
    assert bool(run(snap, [all_controls()["KW-N009"]]).findings) == (not egress_isolated)


RULE = st.fixed_dictionaries({
    "apiGroups": st.lists(st.sampled_from(["", "*", "apps"]), min_size=1, max_size=2),
    "resources": st.lists(st.sampled_from(["secrets", "pods", "pods/exec", "pods/log", "*", "configmaps"]),
                          min_size=1, max_size=3),
    "verbs": st.lists(st.sampled_from(["get", "list", "watch", "create", "*", "delete"]), min_size=1, max_size=3),
})


@settings(max_examples=200, deadline=None)
@given(rules=st.lists(RULE, min_size=1, max_size=3))
def test_rbac_rule_matching_is_exact(rules: list[dict[str, Any]]) -> None:
    """evaluation_helpers.go: '*' matches anything (subresources too); 'pods' never covers 'pods/exec'."""
    role = Resource({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                     "metadata": {"name": "r", "namespace": "x"}, "rules": rules})

    def allows(verbs: set[str], resource: str) -> bool:
        return any((set(r["verbs"]) & (verbs | {"*"})) and (set(r["apiGroups"]) & {"", "*"})
                   and (set(r["resources"]) & {resource, "*"}) for r in rules)

    snap = Snapshot([role])
    assert bool(run(snap, [all_controls()["KW-R005"]]).findings) == allows({"get", "list", "watch"}, "secrets")
    assert bool(run(snap, [all_controls()["KW-R006"]]).findings) == (
        allows({"create", "get"}, "pods/exec"))
    assert bool(run(snap, [all_controls()["KW-R007"]]).findings) == allows({"create"}, "pods")
