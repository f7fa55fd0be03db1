"""PSS engine: PSA's exact wording, version resolution, overrides and hostile input."""

from __future__ import annotations

from typing import Any

import pytest

from kubeward.engines.pss import (
    LATEST,
    MAX_MINOR,
    Evaluator,
    Level,
    PolicyError,
    Version,
    checks_at,
    evaluate,
    parse_level,
    parse_version,
)
from kubeward.engines.pss.messages import go_quote, join_quote


def pod(spec: dict[str, Any] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec or {"containers": [{"name": "c"}]}}


RESTRICTED_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def restricted_pod(**extra: Any) -> dict[str, Any]:
    spec = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "x", "securityContext": dict(RESTRICTED_SC)}],
    }
    spec.update(extra)
    return pod(spec)


def messages(p: dict[str, Any], level: str = "baseline", version: str = "latest") -> dict[str, str]:
    return {v.check: v.message for v in evaluate(p, level, version).violations}


def test_privileged_message_aggregates_containers() -> None:
    p = pod({"initContainers": [{"name": "i", "securityContext": {"privileged": True}}],
             "containers": [{"name": "a", "securityContext": {"privileged": True}}, {"name": "b"}]})
    assert messages(p) == {"privileged": 'privileged (containers "i", "a" must not set securityContext.privileged=true)'}


def test_host_namespaces_and_ports_wording() -> None:
    p = pod({"hostNetwork": True, "hostIPC": True, "containers": [
        {"name": "a", "ports": [{"hostPort": 9}, {"hostPort": 10}]}, {"name": "b", "ports": [{"hostPort": 0}]}]})
    got = messages(p)
    assert got["hostNamespaces"] == "host namespaces (hostNetwork=true, hostIPC=true)"
    # upstream keeps ports in a string set: "10" sorts before "9"
    assert got["hostPorts"] == 'hostPort (container "a" uses hostPorts 10, 9)'


def test_capabilities_baseline_lists_sorted_unique_caps() -> None:
    p = pod({"containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "NET_RAW", "CHOWN"]}}},
                            {"name": "b", "securityContext": {"capabilities": {"add": ["NET_RAW"]}}}]})
    assert messages(p)["capabilities_baseline"] == (
        'non-default capabilities (containers "a", "b" must not include "NET_RAW", "SYS_ADMIN" '
        "in securityContext.capabilities.add)")


def test_apparmor_field_and_annotation() -> None:
    p = pod({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}, "containers": [{"name": "c"}]},
            annotations={"container.apparmor.security.beta.kubernetes.io/c": "unconfined"})
    assert messages(p)["appArmorProfile"] == (
        'forbidden AppArmor profiles (pod and annotation must not set AppArmor profile type to '
        '"Unconfined", "container.apparmor.security.beta.kubernetes.io/c="unconfined"")')


def test_selinux_versions() -> None:
    p = pod({"containers": [{"name": "c", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}]})
    assert "seLinuxOptions" in messages(p, version="v1.30")
    assert evaluate(p, "baseline", "v1.31").allowed
    p = pod({"securityContext": {"seLinuxOptions": {"user": "u", "role": "r"}}, "containers": [{"name": "c"}]})
    assert messages(p)["seLinuxOptions"] == (
        "seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: user may not be set; role may not be set)")


@pytest.mark.parametrize(("name", "first_minor"), [
    ("net.ipv4.ip_local_reserved_ports", 27), ("net.ipv4.tcp_keepalive_time", 29), ("net.ipv4.tcp_rmem", 32),
    ("net.ipv4.tcp_notsent_lowat", 37), ("kernel.shm_rmid_forced", 0),
])
def test_sysctl_safe_set_grows_by_version(name: str, first_minor: int) -> None:
    p = pod({"securityContext": {"sysctls": [{"name": name, "value": "1"}]}, "containers": [{"name": "c"}]})
    for minor in range(MAX_MINOR + 1):
        assert evaluate(p, "baseline", f"v1.{minor}").allowed == (minor >= first_minor), minor
    assert messages(pod({"securityContext": {"sysctls": [{"name": "kernel.msgmax"}]}}))["sysctls"] == (
        "forbidden sysctls (kernel.msgmax)")


def test_seccomp_annotations_before_1_19_fields_after() -> None:
    ann = pod(annotations={"seccomp.security.alpha.kubernetes.io/pod": "unconfined"})
    assert messages(ann, version="v1.18")["seccompProfile_baseline"] == (
        'seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")')
    assert evaluate(ann, "baseline", "v1.19").allowed
    field = pod({"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [{"name": "c"}]})
    assert evaluate(field, "baseline", "v1.18").allowed
    assert "seccompProfile_baseline" in messages(field, version="v1.19")


def test_restricted_overrides_replace_baseline_checks() -> None:
    p = restricted_pod(volumes=[{"name": "h", "hostPath": {"path": "/"}}])
    got = messages(p, "restricted")
    assert "hostPathVolumes" not in got
    assert got["restrictedVolumes"] == (
        'restricted volume types (volume "h" uses restricted volume type "hostPath")')
    assert "hostPathVolumes" not in checks_at(Level.RESTRICTED)
    assert "hostPathVolumes" in checks_at(Level.BASELINE)
    # before v1.19 there is no seccompProfile_restricted, so the baseline annotation check still runs there
    assert "seccompProfile_baseline" in checks_at(Level.RESTRICTED, Version(18))
    assert "seccompProfile_baseline" not in checks_at(Level.RESTRICTED, Version(19))
    assert "procMount" in checks_at(Level.RESTRICTED, Version(34))
    assert "procMount_restricted" in checks_at(Level.RESTRICTED, Version(35))


def test_user_namespace_relaxations_from_1_35() -> None:
    p = restricted_pod(hostUsers=False)
    p["spec"]["securityContext"] = {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}}
    p["spec"]["containers"][0]["securityContext"]["procMount"] = "Unmasked"
    assert set(messages(p, "restricted", "v1.34")) == {"runAsNonRoot", "runAsUser", "procMount"}
    assert set(messages(p, "restricted", "v1.35")) == {"procMount_restricted"}
    assert evaluate(p, "baseline", "v1.35").allowed
    assert not evaluate(p, "baseline", "v1.34").allowed


def test_windows_pods_exempt_from_linux_only_restricted_checks_from_1_25() -> None:
    p = pod({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}, "containers": [{"name": "c"}]})
    assert set(messages(p, "restricted", "v1.24")) == {
        "allowPrivilegeEscalation", "seccompProfile_restricted", "capabilities_restricted"}
    assert evaluate(p, "restricted", "v1.25").allowed


def test_run_as_non_root_wording() -> None:
    p = pod({"securityContext": {"runAsNonRoot": False},
             "containers": [{"name": "a", "securityContext": {"runAsNonRoot": False, **RESTRICTED_SC}}]})
    assert messages(p, "restricted")["runAsNonRoot"] == (
        'runAsNonRoot != true (pod and container "a" must not set securityContext.runAsNonRoot=false)')


def test_probe_host_from_1_34() -> None:
    p = pod({"containers": [{"name": "b", "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}},
                            {"name": "a", "lifecycle": {"preStop": {"tcpSocket": {"host": "h", "port": 1}}}}]})
    assert evaluate(p, "baseline", "v1.33").allowed
    assert messages(p, version="v1.34")["hostProbesAndHostLifecycle"] == (
        'probe or lifecycle host (containers "a", "b" use probe or lifecycle hosts "10.0.0.1", "h")')


def test_bare_volume_defaults_to_empty_dir() -> None:
    assert evaluate(restricted_pod(volumes=[{"name": "v"}]), "restricted").allowed
    got = messages(restricted_pod(volumes=[{"name": "v", "nfs": {"server": "s", "path": "/"}}]), "restricted")
    assert got["restrictedVolumes"] == 'restricted volume types (volume "v" uses restricted volume type "nfs")'


def test_privileged_level_allows_everything() -> None:
    assert evaluate(pod({"hostPID": True, "containers": [{"name": "c"}]}), "privileged").allowed


@pytest.mark.parametrize("bad", [
    {"spec": "nope"}, {"spec": {"containers": "x"}}, {"spec": {"containers": [1, None, {"securityContext": []}]}},
    {"metadata": {"annotations": ["x"]}, "spec": {"volumes": [None, "v"], "securityContext": {"sysctls": "x"}}},
    {"spec": {"containers": [{"ports": [None, {"hostPort": "80"}], "securityContext": {"capabilities": {"add": "X"}}}]}},
])
def test_hostile_shapes_never_raise(bad: dict[str, Any]) -> None:
    for level in ("baseline", "restricted"):
        evaluate(bad, level)


def test_version_parsing_matches_psa() -> None:
    assert parse_version("latest") == LATEST
    assert parse_version("v1.0") == Version(0)
    assert parse_version("v1.99").effective_minor == MAX_MINOR
    for bad in ("v1.01", "1.25", "v2.0", "", "v1.", "Latest", "v1.25 "):
        with pytest.raises(PolicyError):
            parse_version(bad)
    assert parse_level("restricted") is Level.RESTRICTED
    with pytest.raises(PolicyError):
        parse_level("Restricted")


def test_future_version_clamps_to_latest() -> None:
    p = pod({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat"}]}, "containers": [{"name": "c"}]})
    assert evaluate(p, "baseline", "v1.50").allowed == evaluate(p, "baseline", "latest").allowed is True


def test_go_quote_and_join_quote() -> None:
    assert go_quote('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert go_quote("\x01") == '"\\x01"'
    assert join_quote(["a", "b"]) == '"a", "b"'
    assert join_quote([]) == ""


def test_evaluator_accepts_pod_views() -> None:
    from kubeward.resource import Resource

    dep = Resource({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                    "spec": {"template": {"spec": {"containers": [{"name": "c", "securityContext": {"privileged": True}}]}}}})
    ev = Evaluator(Level.BASELINE)
    assert [v.check for v in ev.evaluate(dep).violations] == ["privileged"]
    assert [v.check for v in ev.evaluate(dep.pod()).violations] == ["privileged"]


def test_restricted_volumes_upstream_table() -> None:
    """check_restrictedVolumes_test.go: every allowed and every restricted source, plus an unknown one."""
    allowed = ["emptyDir", "secret", "persistentVolumeClaim", "downwardAPI", "configMap", "projected", "csi",
               "ephemeral", "image"]
    restricted = ["hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs",
                  "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte",
                  "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos"]
    vols = [{"name": f"a{i}", k: {}} for i, k in enumerate(allowed, 1)]
    vols += [{"name": f"b{i}", k: {}} for i, k in enumerate(restricted, 1)]
    # A source kubeward does not know is "unknown", as upstream's default branch (a volume with no source at all
    # is defaulted to emptyDir by the apiserver before admission, so it is allowed).
    vols.append({"name": "c1", "futureSource": {}})
    got = messages(restricted_pod(volumes=vols), "restricted")["restrictedVolumes"]
    names = ", ".join(f'"b{i}"' for i in range(1, 22))
    assert got == (
        f'restricted volume types (volumes {names}, "c1" use restricted volume types '
        '"awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume", "flocker", '
        '"gcePersistentDisk", "gitRepo", "glusterfs", "hostPath", "iscsi", "nfs", "photonPersistentDisk", '
        '"portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "unknown", "vsphereVolume")')


def test_host_path_volumes_upstream_table() -> None:
    p = pod({"volumes": [{"name": "a", "hostPath": {}}, {"name": "b", "hostPath": {}}, {"name": "c", "emptyDir": {}}],
             "containers": [{"name": "c"}]})
    assert messages(p)["hostPathVolumes"] == 'hostPath volumes (volumes "a", "b")'
    p = pod({"hostNetwork": True, "hostIPC": True, "hostPID": True, "containers": [{"name": "c"}]})
    assert messages(p)["hostNamespaces"] == "host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)"
