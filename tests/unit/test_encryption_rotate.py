"""encryption rotate without a cluster: what it refuses (one line, exit 2), its state file, a finished rotation.
The rotation itself is proved on the real apiserver (tests/e2e/cluster/test_live_encryption_rotate.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.creds.keyrotation import RotationError, State, _secrets_provider, node_from_root

FLAGS = ["--encryption-provider-config=/etc/kubernetes/enc/enc.yaml", "--etcd-servers=https://127.0.0.1:2379",
         "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt", "--etcd-certfile=/etc/kubernetes/pki/c.crt",
         "--etcd-keyfile=/etc/kubernetes/pki/c.key"]


def node(tmp: Path, flags: list[str]) -> Path:
    m = tmp / "etc/kubernetes/manifests"
    m.mkdir(parents=True)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver", "namespace": "kube-system"},
           "spec": {"containers": [{"name": "kube-apiserver", "command": ["kube-apiserver", *flags]}]}}
    (m / "kube-apiserver.yaml").write_text(yaml.safe_dump(pod))
    return tmp


def test_node_paths_resolve_below_the_root(tmp_path: Path) -> None:
    n = node_from_root(node(tmp_path, FLAGS))
    assert n.config == tmp_path / "etc/kubernetes/enc/enc.yaml"
    assert n.etcd_endpoint == "https://127.0.0.1:2379" and n.etcd_prefix == "/registry"


def test_missing_flag_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RotationError, match="no --encryption-provider-config"):
        node_from_root(node(tmp_path, FLAGS[1:]))


@pytest.mark.parametrize(("providers", "why"), [
    ([{"identity": {}}], "written by identity"),
    ([{"kms": {"name": "k", "endpoint": "unix:///k.sock", "apiVersion": "v2"}}], "KMS keys rotate in the KMS"),
])
def test_only_local_keys_are_rotated(providers: list[dict[str, object]], why: str) -> None:
    doc = {"resources": [{"resources": ["secrets"], "providers": providers}]}
    with pytest.raises(RotationError, match=why):
        _secrets_provider(doc)


def test_an_entry_shared_with_other_resources_is_refused() -> None:
    doc = {"resources": [{"resources": ["secrets", "configmaps"], "providers": [
        {"aescbc": {"keys": [{"name": "k", "secret": "x"}]}}]}]}
    with pytest.raises(RotationError, match="also covers configmaps"):
        _secrets_provider(doc)


def test_exact_entry_wins_over_wildcard() -> None:
    keys = [{"name": "k2", "secret": "y"}]
    doc = {"resources": [{"resources": ["*.*"], "providers": [{"identity": {}}]},
                         {"resources": ["secrets"], "providers": [{"secretbox": {"keys": keys}}]}]}
    assert _secrets_provider(doc) == ("secretbox", keys)


def test_writing_provider_of_secrets() -> None:
    keys = [{"name": "k1", "secret": "x"}]
    doc = {"resources": [{"resources": ["configmaps"], "providers": [{"identity": {}}]},
                         {"resources": ["secrets"], "providers": [{"aesgcm": {"keys": keys}}, {"identity": {}}]}]}
    assert _secrets_provider(doc) == ("aesgcm", keys)


def test_finished_rotation_is_not_redone(tmp_path: Path) -> None:
    root = node(tmp_path, FLAGS)
    state = root / "etc/kubernetes/enc/enc.yaml.rotation.json"
    state.parent.mkdir(parents=True)
    state.write_bytes(State("removed", "aescbc", "key1", "kubeward-1", None).to_json())
    res = CliRunner().invoke(cli, ["encryption", "rotate", "--cluster", "--node-root", str(root),
                                   "--restart-command", "false"])
    assert res.exit_code == 0 and "already complete" in res.stderr and "kubeward-1" in res.stderr


def test_no_manifest_is_one_line_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["encryption", "rotate", "--cluster", "--node-root", str(tmp_path),
                                   "--restart-command", "true"])
    assert res.exit_code == 2 and "no kube-apiserver manifest" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_state_roundtrip(tmp_path: Path) -> None:
    from kubeward.safefile import write_file

    st = State("planned", "aescbc", "key1", "kubeward-2", "c2VjcmV0")
    path = tmp_path / "s.json"
    write_file(path, st.to_json(), mode=0o600, replace=True)
    assert State.load(path) == st and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert State.load(tmp_path / "absent") is None
