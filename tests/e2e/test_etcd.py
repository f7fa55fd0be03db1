"""Real etcd: mTLS with a separate CA passes the probe, a weak etcd is flagged, secrets at rest classified."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from etcd_fixture import Etcd, free_port, running_etcd

from kubeward.cli.main import cli

pytestmark = pytest.mark.e2e
run = CliRunner().invoke


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("etcd-pki") / "pki"
    res = run(cli, ["pki", "init", str(root), "--key-type", "ecdsa", "--node-name", "e2e"])
    assert res.exit_code == 0, res.output
    return root


@pytest.fixture(scope="module")
def strict(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    strong = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    with running_etcd(pki, tmp_path_factory.mktemp("strict"), client_cert_auth=True, cipher_suites=strong) as etcd:
        yield etcd


@pytest.fixture(scope="module")
def weak(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    with running_etcd(pki, tmp_path_factory.mktemp("weak"), client_cert_auth=False) as etcd:
        yield etcd


@pytest.fixture(scope="module")
def plain(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    with running_etcd(pki, tmp_path_factory.mktemp("plain"), client_cert_auth=False, tls=False) as etcd:
        yield etcd


def tls_args(e: Etcd) -> list[str]:
    p = e.pki
    return ["--endpoint", e.endpoint, "--cacert", str(p / "etcd/ca.crt"), "--cert", str(p / "apiserver-etcd-client.crt"),
            "--key", str(p / "apiserver-etcd-client.key")]


def cluster_args(p: Path) -> list[str]:
    return ["--cluster-ca", str(p / "ca.crt"), "--cluster-cert", str(p / "apiserver-kubelet-client.crt"),
            "--cluster-key", str(p / "apiserver-kubelet-client.key")]


def test_probe_strict_passes(strict: Etcd) -> None:
    res = run(cli, ["etcd", "probe", *tls_args(strict), *cluster_args(strict.pki), "-o", "json"])
    assert res.exit_code == 0, res.output
    doc = orjson.loads(res.output)
    assert doc["findings"] == []
    probe = doc["probe"]
    assert probe["tls"] and probe["clientCertRequired"] is True and probe["clusterCertRefused"] is True
    assert probe["clusterCaTrustsServer"] is False and probe["tlsVersion"] in ("TLSv1.2", "TLSv1.3")
    assert probe["legacyTlsRefused"] in (True, None) and probe["weakCiphersAccepted"] in ([], None)


def test_probe_weak_flagged(weak: Etcd) -> None:
    res = run(cli, ["etcd", "probe", *tls_args(weak), *cluster_args(weak.pki), "-o", "json"])
    assert res.exit_code == 1, res.output
    ids = {f["control"]["id"] for f in orjson.loads(res.output)["findings"]}
    assert {"KW-ETCD-002", "KW-ETCD-003"} <= ids
    assert "KW-ETCD-006" in ids  # Go's default suites include ECDHE CBC ones


def test_probe_plain_http_flagged(plain: Etcd) -> None:
    res = run(cli, ["etcd", "probe", "--endpoint", plain.endpoint, "--cacert", str(plain.pki / "etcd/ca.crt"),
                    "-o", "json"])
    assert res.exit_code == 1, res.output
    doc = orjson.loads(res.output)
    assert {f["control"]["id"] for f in doc["findings"]} == {"KW-ETCD-001", "KW-ETCD-002"}
    assert doc["probe"]["tls"] is False


def test_secrets_at_rest(strict: Etcd) -> None:
    c = strict.client()
    c.put(b"/registry/secrets/default/plain-proto", b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret" + b"\x00" * 8)
    c.put(b"/registry/secrets/kube-system/plain-json", b'{"kind":"Secret","data":{"a":"c2VjcmV0"}}')
    c.put(b"/registry/secrets/team-a/enc-cbc", b"k8s:enc:aescbc:v1:key1:" + bytes(range(48)))
    c.put(b"/registry/secrets/team-a/enc-gcm", b"k8s:enc:aesgcm:v1:key2:" + bytes(range(40)))
    c.put(b"/registry/configmaps/default/not-a-secret", b"k8s\x00x")
    res = run(cli, ["etcd", "secrets-at-rest", *tls_args(strict), "-o", "json"])
    assert res.exit_code == 1, res.output
    rows = {r["name"]: r for r in orjson.loads(res.output)["secrets"]}
    assert set(rows) == {"plain-proto", "plain-json", "enc-cbc", "enc-gcm"}
    assert rows["plain-proto"] == {"key": "/registry/secrets/default/plain-proto", "namespace": "default",
                                   "name": "plain-proto", "encrypted": False, "provider": None}
    assert rows["plain-json"]["encrypted"] is False
    assert rows["enc-cbc"]["encrypted"] is True and rows["enc-cbc"]["provider"] == "aescbc"
    assert rows["enc-gcm"]["provider"] == "aesgcm" and rows["enc-gcm"]["namespace"] == "team-a"
    assert "c2VjcmV0" not in res.output  # values are never printed


def test_secrets_all_encrypted_exit_0(weak: Etcd) -> None:
    c = weak.client()
    for i in range(205):  # more than one page
        c.put(f"/registry/secrets/ns/s{i:03d}".encode(), b"k8s:enc:secretbox:v1:k:" + b"\x01" * 24)
    res = run(cli, ["etcd", "secrets-at-rest", *tls_args(weak), "-o", "json"])
    assert res.exit_code == 0, res.output
    rows = orjson.loads(res.output)["secrets"]
    assert len(rows) == 205 and all(r["provider"] == "secretbox" for r in rows)


def test_cluster_ca_client_cert_refused_on_data_path(strict: Etcd) -> None:
    p = strict.pki
    res = run(cli, ["etcd", "secrets-at-rest", "--endpoint", strict.endpoint, "--cacert", str(p / "etcd/ca.crt"),
                    "--cert", str(p / "apiserver-kubelet-client.crt"), "--key", str(p / "apiserver-kubelet-client.key")])
    assert res.exit_code == 2 and "TLS handshake failed" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("case", ["unreachable", "wrong-ca", "plain-http", "mismatched-key"])
def test_bad_connections_one_line(strict: Etcd, case: str) -> None:
    p = strict.pki
    args = tls_args(strict)
    if case == "unreachable":
        args[1] = f"https://127.0.0.1:{free_port()}"
    elif case == "wrong-ca":
        args[3] = str(p / "ca.crt")
    elif case == "plain-http":
        args[1] = strict.endpoint.replace("https", "http")
    else:
        args[7] = str(p / "etcd/peer.key")
    res = run(cli, ["etcd", "probe", *args, "--timeout", "3"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("kubeward: ")
