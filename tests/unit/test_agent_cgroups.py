"""cgroup → pod/container attribution for both kubelet drivers, three runtimes, cgroup v1 and v2."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeward.agent.cgroups import parse_cgroup_path, select_path

UID = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
SYSTEMD_UID = UID.replace("-", "_")
CID = "f" * 8 + "0123456789abcdef" * 3 + "12345678"
assert len(CID) == 64


@pytest.mark.parametrize("path", [
    # cgroupfs driver (containerd, CRI-O, docker): kubepods[/qos]/pod<uid>/<id>
    f"/kubepods/burstable/pod{UID}/{CID}",
    f"/kubepods/besteffort/pod{UID}/{CID}",
    f"/kubepods/pod{UID}/{CID}",
    # systemd driver: slices with "-" escaped as "_" inside the uid
    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SYSTEMD_UID}.slice/cri-containerd-{CID}.scope",
    f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{SYSTEMD_UID}.slice/crio-{CID}.scope",
    f"/kubepods.slice/kubepods-pod{SYSTEMD_UID}.slice/docker-{CID}.scope",
    # nested kubelet (kind): the hierarchy sits below another prefix
    f"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
    f"kubelet-kubepods-besteffort-pod{SYSTEMD_UID}.slice/cri-containerd-{CID}.scope",
    f"/docker/{'a' * 64}/kubepods/burstable/pod{UID}/{CID}",
])
def test_pod_and_container(path: str) -> None:
    a = parse_cgroup_path(path)
    assert a.pod_uid == UID
    assert a.container_id == CID
    assert not a.conmon
    assert a.cgroup == path


def test_pod_cgroup_itself_has_no_container() -> None:
    a = parse_cgroup_path(f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SYSTEMD_UID}.slice")
    assert (a.pod_uid, a.container_id) == (UID, None)


def test_crio_conmon_is_flagged() -> None:
    a = parse_cgroup_path(f"/kubepods.slice/kubepods-pod{SYSTEMD_UID}.slice/crio-conmon-{CID}.scope")
    assert a.pod_uid == UID and a.container_id == CID and a.conmon


@pytest.mark.parametrize("path", [
    "/", "/system.slice/containerd.service", "/user.slice/user-0.slice/session-1.scope",
    f"/pod{UID}/{CID}",  # a pod-looking segment outside the kubelet hierarchy
    "/kubepods.slice/kubepods-burstable.slice",  # QoS level, no pod
    f"/system.slice/docker-{CID}.scope",  # a container, but not a pod's
])
def test_not_a_pod(path: str) -> None:
    a = parse_cgroup_path(path)
    assert a.pod_uid is None and a.container_id is None and not a.in_pod


def test_container_segment_must_be_64_hex() -> None:
    a = parse_cgroup_path(f"/kubepods/burstable/pod{UID}/{CID[:-1]}")
    assert a.pod_uid == UID and a.container_id is None


def test_select_v2_line() -> None:
    text = f"0::/kubepods.slice/kubepods-pod{SYSTEMD_UID}.slice/cri-containerd-{CID}.scope\n"
    assert parse_cgroup_path(select_path(text)).container_id == CID


def test_select_v1_hybrid_prefers_kubepods_controller() -> None:
    # hybrid host: the unified line stays at "/" while the v1 controllers hold the pod
    text = ("12:pids:/kubepods/burstable/pod" + UID + "/" + CID + "\n"
            "11:cpu,cpuacct:/kubepods/burstable/pod" + UID + "/" + CID + "\n"
            "1:name=systemd:/kubepods/burstable/pod" + UID + "/" + CID + "\n"
            "0::/\n")
    a = parse_cgroup_path(select_path(text))
    assert a.pod_uid == UID and a.container_id == CID


def test_select_host_process() -> None:
    assert select_path("0::/system.slice/sshd.service\n") == "/system.slice/sshd.service"
    assert select_path("4:memory:/x\n3:cpu:/y\n") == "/x"
    assert select_path("") == "/"


@given(st.uuids(), st.sampled_from(["", "burstable", "besteffort"]), st.binary(min_size=32, max_size=32),
       st.sampled_from(["systemd-containerd", "systemd-crio", "cgroupfs"]))
def test_roundtrip_property(uid: object, qos: str, raw: bytes, form: str) -> None:
    """Every path kubelet + runtime would build attributes back to the same pod UID and container id."""
    u, cid = str(uid), raw.hex()
    if form == "cgroupfs":
        path = "/kubepods" + (f"/{qos}" if qos else "") + f"/pod{u}/{cid}"
    else:
        esc = u.replace("-", "_")
        slices = "/kubepods.slice" + (f"/kubepods-{qos}.slice" if qos else "")
        pod = f"kubepods-{qos}-pod{esc}.slice" if qos else f"kubepods-pod{esc}.slice"
        runtime = "cri-containerd" if form == "systemd-containerd" else "crio"
        path = f"{slices}/{pod}/{runtime}-{cid}.scope"
    a = parse_cgroup_path(path)
    assert (a.pod_uid, a.container_id) == (u, cid)
