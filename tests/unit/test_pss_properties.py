"""Property tests for the PSS engine, limited to what upstream semantics guarantee.

Not every intuitive property holds upstream: later versions are not uniformly stricter (seccomp moves from
annotations to fields at v1.19, sysctls loosen, probe hosts tighten at v1.34), and at v1.25+ Windows pods skip the
restricted seccomp and capabilities checks that override their baseline counterparts, so "restricted implies
baseline" holds for non-Windows pods only (API validation forbids those fields on Windows pods). The tests below
state exactly the guaranteed ones.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.engines.pss import MAX_MINOR, evaluate

versions = st.one_of(st.just("latest"), st.integers(0, MAX_MINOR + 3).map(lambda m: f"v1.{m}"))
maybe = st.none()
bools = st.sampled_from([None, True, False])


def _opt(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


container_sc = st.builds(lambda priv, ape, add, drop, nonroot, uid, seccomp, proc, sel, aa, hp: _opt({
    "privileged": priv, "allowPrivilegeEscalation": ape,
    "capabilities": _opt({"add": add, "drop": drop}) if add is not None or drop is not None else None,
    "runAsNonRoot": nonroot, "runAsUser": uid,
    "seccompProfile": {"type": seccomp} if seccomp else None, "procMount": proc,
    "seLinuxOptions": {"type": sel} if sel is not None else None,
    "appArmorProfile": {"type": aa} if aa else None,
    "windowsOptions": {"hostProcess": hp} if hp is not None else None,
}), bools, bools,
    st.one_of(maybe, st.lists(st.sampled_from(["NET_BIND_SERVICE", "CHOWN", "NET_RAW", "SYS_ADMIN"]), max_size=2)),
    st.one_of(maybe, st.lists(st.sampled_from(["ALL", "NET_RAW"]), max_size=2)),
    bools, st.sampled_from([None, 0, 1000]),
    st.sampled_from([None, "RuntimeDefault", "Localhost", "Unconfined"]),
    st.sampled_from([None, "Default", "Unmasked"]),
    st.sampled_from([None, "", "container_t", "spc_t", "container_engine_t"]),
    st.sampled_from([None, "RuntimeDefault", "Unconfined"]), bools)

container = st.builds(lambda sc, port, probe_host: _opt({
    "name": "c", "image": "x", "securityContext": sc or None,
    "ports": [{"containerPort": 80, "hostPort": port}] if port else None,
    "readinessProbe": {"httpGet": {"port": 80, "host": probe_host}} if probe_host else None,
}), st.one_of(st.none(), container_sc), st.sampled_from([None, 0, 8080]), st.sampled_from([None, "", "1.2.3.4"]))

pod_strategy = st.builds(lambda cs, inits, hn, users, nonroot, uid, seccomp, sysctl, vol, os_name, ann: {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": _opt({"name": "p", "annotations": ann or None}),
    "spec": _opt({
        "containers": cs, "initContainers": inits or None, "hostNetwork": hn, "hostUsers": users,
        "os": {"name": os_name} if os_name else None,
        "securityContext": _opt({"runAsNonRoot": nonroot, "runAsUser": uid,
                                 "seccompProfile": {"type": seccomp} if seccomp else None,
                                 "sysctls": [{"name": sysctl, "value": "1"}] if sysctl else None}) or None,
        "volumes": [vol] if vol else None,
    }),
}, st.lists(container, min_size=1, max_size=3), st.lists(container, max_size=1), bools, bools, bools,
    st.sampled_from([None, 0, 1000]), st.sampled_from([None, "RuntimeDefault", "Unconfined"]),
    st.sampled_from([None, "kernel.shm_rmid_forced", "net.ipv4.tcp_rmem", "kernel.msgmax"]),
    st.sampled_from([None, {"name": "v", "emptyDir": {}}, {"name": "v", "hostPath": {"path": "/"}},
                     {"name": "v", "nfs": {"server": "s", "path": "/"}}]),
    st.sampled_from([None, "linux", "windows"]),
    st.sampled_from([None, {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"},
                     {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}]))


@settings(max_examples=400, deadline=None)
@given(pod_strategy, versions)
def test_restricted_allowed_implies_baseline_allowed_for_non_windows(pod: dict[str, Any], version: str) -> None:
    if pod["spec"].get("os", {}).get("name") == "windows":
        pod["spec"]["os"]["name"] = "linux"
    if evaluate(pod, "restricted", version).allowed:
        assert evaluate(pod, "baseline", version).allowed


def test_windows_counterexample_is_upstream_behaviour() -> None:
    """The documented exception: a Windows pod skips seccompProfile_restricted, which overrides the baseline one."""
    pod = {"spec": {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True,
                                                                    "seccompProfile": {"type": "Unconfined"}},
                    "containers": [{"name": "c"}]}}
    assert evaluate(pod, "restricted", "v1.25").allowed
    assert not evaluate(pod, "baseline", "v1.25").allowed


@settings(max_examples=300, deadline=None)
@given(pod_strategy, versions)
def test_verdict_does_not_depend_on_container_order(pod: dict[str, Any], version: str) -> None:
    flipped = copy.deepcopy(pod)
    flipped["spec"]["containers"].reverse()
    for level in ("baseline", "restricted"):
        a, b = evaluate(pod, level, version), evaluate(flipped, level, version)
        assert a.allowed == b.allowed
        assert [v.check for v in a.violations] == [v.check for v in b.violations]


def _minimal_restricted() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "x", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}


unread_fields = st.fixed_dictionaries({}, optional={
    "labels": st.dictionaries(st.sampled_from(["app", "tier", "env"]), st.text(max_size=8), max_size=3),
    "image": st.text(min_size=1, max_size=20),
    "command": st.lists(st.text(max_size=10), max_size=3),
    "env": st.lists(st.builds(lambda n, v: {"name": n, "value": v}, st.text(min_size=1, max_size=5),
                              st.text(max_size=5)), max_size=3),
    "resources": st.just({"limits": {"cpu": "1", "memory": "1Gi"}}),
    "nodeSelector": st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=2),
    "serviceAccountName": st.text(min_size=1, max_size=10),
    "containerPort": st.integers(1, 65535),
    "readOnlyRootFilesystem": st.booleans(),
    "runAsGroup": st.integers(0, 70000),
    "fsGroup": st.integers(0, 70000),
    "priorityClassName": st.text(max_size=10),
})


@settings(max_examples=300, deadline=None)
@given(unread_fields, versions)
def test_minimal_restricted_pod_stays_allowed_with_fields_no_check_reads(extra: dict[str, Any], version: str) -> None:
    pod = _minimal_restricted()
    spec, c = pod["spec"], pod["spec"]["containers"][0]
    if "labels" in extra:
        pod["metadata"]["labels"] = extra["labels"]
    for key in ("image", "command", "env", "resources"):
        if key in extra:
            c[key] = extra[key]
    if "containerPort" in extra:
        c["ports"] = [{"containerPort": extra["containerPort"]}]
    if "readOnlyRootFilesystem" in extra:
        c["securityContext"]["readOnlyRootFilesystem"] = extra["readOnlyRootFilesystem"]
    for key in ("nodeSelector", "serviceAccountName", "priorityClassName"):
        if key in extra:
            spec[key] = extra[key]
    for key in ("runAsGroup", "fsGroup"):
        if key in extra:
            spec["securityContext"][key] = extra[key]
    for level in ("baseline", "restricted"):
        assert evaluate(pod, level, version).allowed, (level, version, pod)


@settings(max_examples=200, deadline=None)
@given(pod_strategy)
def test_latest_equals_newest_version_and_beyond(pod: dict[str, Any]) -> None:
    for level in ("baseline", "restricted"):
        latest = evaluate(pod, level, "latest").violations
        assert evaluate(pod, level, f"v1.{MAX_MINOR}").violations == latest
        assert evaluate(pod, level, f"v1.{MAX_MINOR + 5}").violations == latest


def _without_version_tighteners(pod: dict[str, Any]) -> dict[str, Any]:
    """Drop what a later baseline version forbids and an earlier one allowed: probe/lifecycle hosts (v1.34) and
    seccompProfile fields set to Unconfined (judged from v1.19)."""
    spec = pod["spec"]
    for c in spec["containers"] + spec.get("initContainers", []):
        c.pop("readinessProbe", None)
        sc = c.get("securityContext") or {}
        if "seccompProfile" in sc:
            sc["seccompProfile"] = {"type": "RuntimeDefault"}
    sc = spec.get("securityContext") or {}
    if "seccompProfile" in sc:
        sc["seccompProfile"] = {"type": "RuntimeDefault"}
    return pod


@settings(max_examples=300, deadline=None)
@given(pod_strategy, st.integers(0, MAX_MINOR))
def test_baseline_only_loosens_with_version_once_tighteners_are_removed(pod: dict[str, Any], minor: int) -> None:
    """Baseline's other version changes only widen what is allowed (sysctls, SELinux types, seccomp annotations
    dropped at v1.19, procMount for user-namespaced pods at v1.35)."""
    pod = _without_version_tighteners(pod)
    if evaluate(pod, "baseline", f"v1.{minor}").allowed:
        for later in range(minor + 1, MAX_MINOR + 1):
            assert evaluate(pod, "baseline", f"v1.{later}").allowed, (minor, later)
