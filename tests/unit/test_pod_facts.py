"""One pod fact, one predicate: the scan's workload controls report a Pod Security fact exactly when the PSS
engine's check fails, once per problem, under one id that carries every framework (old KW-PSS ids are aliases)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kubeward.cli.main import cli
from kubeward.controls.pss import MERGED, REPORTED_BY
from kubeward.controls.registry import Selection, aliases, all_controls, resolve, run
from kubeward.engines.pss import Evaluator, Level, PodInput
from kubeward.engines.pss.facts import fails, faults
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

PRIVILEGED = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {
        "containers": [{"name": "app", "image": "nginx:1.25", "securityContext": {"privileged": True}}]}}},
}


def _scan(tmp_path: Path, docs: list[dict[str, Any]], *args: str) -> dict[str, Any]:
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    result = CliRunner().invoke(cli, ["scan", str(f), "-o", "json", *args])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_privileged_pod_is_one_finding_with_every_framework(tmp_path: Path) -> None:
    doc = _scan(tmp_path, [PRIVILEGED])
    hits = [f for f in doc["findings"] if "privileged" in f["path"] or "privileged" in f["message"].lower()]
    assert [f["control"]["id"] for f in hits] == ["KW-W001"]
    frameworks = hits[0]["control"]["frameworks"]
    assert "nsa" in frameworks and "pss-baseline" in frameworks and "pss-restricted" in frameworks
    assert hits[0]["control"]["severity"] == "critical"
    assert not any(f["control"]["id"].startswith("KW-PSS-privileged") for f in doc["findings"])


def test_no_merged_pss_check_is_a_second_control() -> None:
    ids = all_controls()
    for check_id, successors in MERGED.items():
        assert f"KW-PSS-{check_id}" not in ids
        assert aliases()[f"KW-PSS-{check_id}"] == successors
        assert all(s in ids for s in successors)
        assert all(any(fw.startswith("pss-") for fw in ids[s].meta.frameworks) for s in successors)


def test_old_ids_select_and_silence_their_successors(tmp_path: Path) -> None:
    chosen = Selection(include=("KW-PSS-hostNamespaces",)).choose(all_controls())
    assert [c.meta.id for c in chosen] == ["KW-W002", "KW-W003", "KW-W004"]
    assert "KW-W001" not in {c.meta.id for c in Selection(exclude=("KW-PSS-privileged",)).choose(all_controls())}
    assert resolve(["KW-PSS-privileged", "KW-W001"]) == ("KW-W001",)
    exc = tmp_path / "exc.yaml"
    exc.write_text("exceptions:\n- controls: [KW-PSS-privileged]\n  reason: accepted\n")
    doc = _scan(tmp_path, [PRIVILEGED], "--exceptions", str(exc), "--include-controls", "KW-PSS-privileged")
    assert doc["findings"] == [] and doc["summary"]["suppressed"] == 1
    glob = tmp_path / "glob.yaml"
    glob.write_text("exceptions:\n- controls: ['KW-PSS-priv*']\n  reason: accepted\n")
    doc = _scan(tmp_path, [PRIVILEGED], "--exceptions", str(glob), "--include-controls", "KW-W001")
    assert doc["findings"] == [] and doc["summary"]["suppressed"] == 1
    annotated = json.loads(json.dumps(PRIVILEGED))
    annotated["metadata"]["annotations"] = {"kubeward.io/ignore": "KW-PSS-privileged",
                                            "kubeward.io/ignore-reason": "node agent"}
    doc = _scan(tmp_path, [annotated], "--include-controls", "KW-W001")
    assert doc["findings"] == [] and doc["summary"]["suppressed"] == 1


def _pod(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> Resource:
    meta: dict[str, Any] = {"name": "p", "namespace": "app"}
    if annotations:
        meta["annotations"] = annotations
    return Resource({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})


def _fired(res: Resource, ids: tuple[str, ...]) -> bool:
    controls = all_controls()
    return bool(run(Snapshot([res]), [controls[i] for i in ids]).findings)


def test_sysctl_slash_form_and_string_host_port_follow_the_engine() -> None:
    slash = _pod({"securityContext": {"sysctls": [{"name": "net/ipv4/tcp_syncookies", "value": "1"}]},
                  "containers": [{"name": "c", "image": "i"}]})
    assert fails("sysctls", PodInput.of(slash.obj)) and _fired(slash, ("KW-W031",))
    dotted = _pod({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]},
                   "containers": [{"name": "c", "image": "i"}]})
    assert not fails("sysctls", PodInput.of(dotted.obj)) and not _fired(dotted, ("KW-W031",))
    text_port = _pod({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": "80"}]}]})
    assert not fails("hostPorts", PodInput.of(text_port.obj)) and not _fired(text_port, ("KW-W005",))
    int_port = _pod({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": 80}]}]})
    assert fails("hostPorts", PodInput.of(int_port.obj)) and _fired(int_port, ("KW-W005",))


def test_pod_level_setting_is_one_finding_not_one_per_container() -> None:
    res = _pod({"securityContext": {"seccompProfile": {"type": "Unconfined"}},
                "containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]})
    found = run(Snapshot([res]), [all_controls()["KW-W027"]]).findings
    assert [f.path for f in found] == ["/spec/securityContext/seccompProfile/type"]
    assert len(faults("seccompProfile_baseline", PodInput.of(res.obj))) == 1


def _template(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}}}


def _sc_pod(sc: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return _template({"containers": [{"name": "app", "image": "nginx:1.25", "securityContext": sc}], **spec})


# One problem each, the place its findings point at, the one control that reports it and every framework it maps to.
DOUBLES = {
    "seccomp Unconfined": (
        _sc_pod({"seccompProfile": {"type": "Unconfined"}}), "/securityContext/seccompProfile",
        "KW-W027", ("nsa", "cis-5.6.2", "mitre-T1611", "pss-baseline", "pss-restricted")),
    "procMount Unmasked": (
        _sc_pod({"procMount": "Unmasked"}), "/securityContext/procMount",
        "KW-W030", ("nsa", "mitre-T1611", "pss-baseline", "pss-restricted")),
    "procMount Unmasked, user namespace": (
        _sc_pod({"procMount": "Unmasked"}, hostUsers=False), "/securityContext/procMount",
        "KW-PSS-procMount_restricted", ("pss-restricted",)),
    "hostPath volume": (
        _sc_pod({}, volumes=[{"name": "data", "hostPath": {"path": "/srv/data"}}]), "/spec/volumes/0",
        "KW-W006", ("nsa", "cis-5.2.11", "mitre-T1611", "pss-baseline", "pss-restricted")),
    "nfs volume": (
        _sc_pod({}, volumes=[{"name": "share", "nfs": {"server": "nfs.example", "path": "/exports"}}]),
        "/spec/volumes/0", "KW-W055", ("nsa", "pss-restricted")),
    "gitRepo volume": (
        _sc_pod({}, volumes=[{"name": "src", "gitRepo": {"repository": "https://example.com/r.git"}}]),
        "/spec/volumes/0", "KW-W035", ("nsa", "mitre-T1611", "pss-restricted")),
    "SYS_ADMIN added": (
        _sc_pod({"capabilities": {"add": ["SYS_ADMIN"]}}), "/securityContext/capabilities/add/0",
        "KW-W011", ("nsa", "cis-5.2.9", "mitre-T1611", "pss-baseline", "pss-restricted")),
    "unknown capability added": (
        _sc_pod({"capabilities": {"add": ["CAP_CHOWN"]}}), "/securityContext/capabilities/add/0",
        "KW-W010", ("nsa", "cis-5.2.9", "pss-baseline", "pss-restricted")),
    "default capability added": (
        _sc_pod({"capabilities": {"add": ["CHOWN"]}}), "/securityContext/capabilities/add/0",
        "KW-W056", ("nsa", "cis-5.2.9", "pss-restricted")),
}


@pytest.mark.parametrize("problem", list(DOUBLES))
def test_one_problem_is_one_finding_with_every_framework(tmp_path: Path, problem: str) -> None:
    doc, where, cid, frameworks = DOUBLES[problem]
    found = _scan(tmp_path, [doc])["findings"]
    hits = [f for f in found if where in f["path"]]
    assert [f["control"]["id"] for f in hits] == [cid], hits
    assert tuple(hits[0]["control"]["frameworks"]) == frameworks
    # and the level verdicts are PSA's: a pss-<level> finding exactly when that level refuses the pod
    pod = Resource(doc).pod()
    assert pod is not None
    for level in (Level.BASELINE, Level.RESTRICTED):
        refused = not Evaluator(level).evaluate({"metadata": pod.meta, "spec": pod.spec}).allowed
        assert any(f"pss-{level.value}" in f["control"]["frameworks"] for f in found) == refused, level


def test_retired_volume_and_capability_ids_silence_their_one_finding(tmp_path: Path) -> None:
    exc = tmp_path / "exc.yaml"
    exc.write_text("exceptions:\n- controls: [KW-PSS-restrictedVolumes, KW-PSS-capabilities_baseline]\n"
                   "  reason: accepted\n")
    for problem in ("nfs volume", "SYS_ADMIN added"):
        doc, where, cid, _ = DOUBLES[problem]
        out = _scan(tmp_path, [doc], "--exceptions", str(exc))
        assert not [f for f in out["findings"] if where in f["path"]]
        assert [f["control"]["id"] for f in out["suppressed"] if where in f["path"]] == [cid]


# ------------------------------------------------------------------------------------------- property

MAYBE_BOOL = st.sampled_from([None, True, False])
CAPS = st.lists(st.sampled_from(["ALL", "all", "NET_BIND_SERVICE", "CHOWN", "SYS_ADMIN", "NET_RAW", "CAP_KILL"]),
                max_size=3)
PROFILE = st.one_of(st.none(), st.fixed_dictionaries({"type": st.sampled_from(
    ["RuntimeDefault", "Localhost", "Unconfined", "", "bogus"])}))
SELINUX = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["", "container_t", "container_engine_t", "spc_t"]),
    "user": st.sampled_from(["", "system_u"]), "role": st.sampled_from(["", "sysadm_r"])}))
SC = st.fixed_dictionaries({}, optional={
    "privileged": MAYBE_BOOL, "allowPrivilegeEscalation": MAYBE_BOOL, "runAsNonRoot": MAYBE_BOOL,
    "runAsUser": st.sampled_from([None, 0, 1000]),
    "capabilities": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"add": CAPS, "drop": CAPS})),
    "seccompProfile": PROFILE, "appArmorProfile": PROFILE, "seLinuxOptions": SELINUX,
    "procMount": st.sampled_from([None, "Default", "Unmasked", ""]),
    "windowsOptions": st.one_of(st.none(), st.fixed_dictionaries({"hostProcess": MAYBE_BOOL})),
})
PORT = st.fixed_dictionaries({"containerPort": st.just(80)}, optional={
    "hostPort": st.sampled_from([None, 0, 8080, "8080", "0", True])})
HANDLER = st.one_of(st.none(), st.fixed_dictionaries({"httpGet": st.fixed_dictionaries(
    {"port": st.just(80)}, optional={"host": st.sampled_from(["", "10.0.0.1"])})}))


VOLUME = st.sampled_from([
    {"name": "n", "nfs": {"server": "s", "path": "/"}}, {"name": "g", "gitRepo": {"repository": "r"}},
    {"name": "c", "configMap": {"name": "m"}}, {"name": "e"}, {"name": "u", "bogusSource": {}},
    {"name": "z", "gitRepo": None},
])


@st.composite
def containers(draw: Any, prefix: str) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(min_value=0, max_value=2))):
        c: dict[str, Any] = {"name": f"{prefix}{i}", "image": "i", "securityContext": draw(SC)}
        if ports := draw(st.lists(PORT, max_size=2)):
            c["ports"] = ports
        if (probe := draw(HANDLER)) is not None:
            c["livenessProbe"] = probe
        out.append(c)
    return out


@st.composite
def pods(draw: Any) -> Resource:
    spec: dict[str, Any] = {"containers": draw(containers("c")), "initContainers": draw(containers("i"))}
    for f in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        if (v := draw(MAYBE_BOOL)) is not None:
            spec[f] = v
    if draw(st.booleans()):
        spec["os"] = {"name": draw(st.sampled_from(["linux", "windows"]))}
    psc = draw(SC)
    psc.pop("privileged", None), psc.pop("allowPrivilegeEscalation", None), psc.pop("capabilities", None)
    psc.pop("procMount", None)
    if sysctls := draw(st.lists(st.sampled_from(["net.ipv4.tcp_syncookies", "net/ipv4/tcp_syncookies",
                                                 "kernel.msgmax", "net.ipv4.tcp_rmem"]), max_size=2)):
        psc["sysctls"] = [{"name": n, "value": "1"} for n in sysctls]
    spec["securityContext"] = psc
    if draw(st.booleans()):
        spec["volumes"] = [{"name": "h", "hostPath": {"path": draw(st.sampled_from(["/", "/data", "/var/run/docker.sock"]))}}]
    spec.setdefault("volumes", []).extend(draw(st.lists(VOLUME, max_size=2)))
    annotations = draw(st.dictionaries(st.sampled_from([
        "container.apparmor.security.beta.kubernetes.io/c0", "container.apparmor.security.beta.kubernetes.io/x",
        "seccomp.security.alpha.kubernetes.io/pod", "container.seccomp.security.alpha.kubernetes.io/c0"]),
        st.sampled_from(["unconfined", "runtime/default", "localhost/p", ""]), max_size=2))
    return _pod(spec, annotations)


def _one(sc: dict[str, Any], **spec: Any) -> Resource:
    return _pod({"containers": [{"name": "c0", "image": "i", "securityContext": sc}], "initContainers": [], **spec})


@settings(max_examples=250, deadline=None)
@given(res=pods())
# the places where the two codings used to differ, always tried
@example(res=_one({"capabilities": {"drop": ["all"]}}))
@example(res=_one({"capabilities": {"drop": ["ALL"], "add": ["CAP_CHOWN"]}}))
@example(res=_one({}, securityContext={"runAsUser": 1000}))
@example(res=_one({"runAsUser": 1000}, securityContext={"runAsUser": 0}))
@example(res=_one({"seccompProfile": {"type": "RuntimeDefault"}}, securityContext={"seccompProfile": {"type": "Unconfined"}}))
@example(res=_one({}, securityContext={"sysctls": [{"name": "net/ipv4/tcp_syncookies", "value": "1"}]}))
@example(res=_pod({"containers": [{"name": "c0", "image": "i", "ports": [{"containerPort": 1, "hostPort": "8080"}]}],
                   "initContainers": []}))
def test_fact_controls_fire_exactly_when_the_pss_check_fails(res: Resource) -> None:
    # the whole pod, and the pod cut down to each one of its containers (so no container hides behind another)
    spec = res.obj["spec"]
    every = [("initContainers", c) for c in spec["initContainers"]] + [("containers", c) for c in spec["containers"]]
    cuts = [res] + [_pod({**spec, "initContainers": [], "containers": [], field: [c]},
                         res.obj["metadata"].get("annotations")) for field, c in every]
    controls = all_controls()
    by_level = {lv: [c for c in controls.values() if f"pss-{lv.value}" in c.meta.frameworks]
                for lv in (Level.BASELINE, Level.RESTRICTED)}
    for pod in cuts:
        p = PodInput.of(pod.obj)
        refused = _refused_by_validation(p)
        for check_id, ids in REPORTED_BY.items():
            fired, failed = _fired(pod, ids), fails(check_id, p)
            if refused and check_id in ("seccompProfile_restricted", "capabilities_restricted"):
                assert fired or not failed, (check_id, pod.obj)  # never a wrong pass
            else:
                assert fired == failed, (check_id, pod.obj)
        # the level verdicts: the controls carrying pss-<level> fail the pod exactly when PSA at that level does
        for level, chosen in by_level.items():
            fired = bool(run(Snapshot([pod]), chosen).findings)
            failed = not Evaluator(level).evaluate(p).allowed
            if refused and level is Level.RESTRICTED:
                assert fired or not failed, (level, pod.obj)
            else:
                assert fired == failed, (level, pod.obj)


def _refused_by_validation(p: PodInput) -> bool:
    """A Windows pod setting seccompProfile or capabilities, which the apiserver refuses before admission
    (pkg/apis/core/validation validateWindows), and which PSA's restricted checks exempt: the scan's restricted
    verdict may then be stricter, never laxer."""
    if not p.windows:
        return False
    scs = [p.pod_sc or {}, *((c.get("securityContext") or {}) for c in p.containers)]
    return any(s.get("seccompProfile") is not None or (s.get("capabilities") or {}).get("add") for s in scs)
