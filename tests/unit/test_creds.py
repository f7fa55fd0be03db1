"""creds audit: one failing and one passing case per finding, expiries for the monitor, and no credential value in
any output format, on stderr or in a log, plain or base64."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU

from kubeward.cli.main import cli
from kubeward.creds.audit import AuditOptions, audit, credential_expiries
from kubeward.creds.tokens import read_csv_credentials
from kubeward.formats import FORMATS
from kubeward.pki.issue import LeafSpec, new_ca, new_key, sign_leaf
from kubeward.pki.layout import InitOptions, init
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

# Known values planted in every place creds audit reads; none may appear in any output.
PLANTED = {
    "kubeconfig_token": "kwplant-kubeconfig-token-5f1e9a",
    "kubeconfig_password": "kwplant-kubeconfig-password-77c3",
    "oidc_id_token": "kwplant-oidc-id-token-a1b2",
    "static_token": "kwplant-static-token-0d9c8b",
    "basic_password": "kwplant-basic-password-4e4e",
    "configmap_password": "kwplant-configmap-password-1212",
    "configmap_value": "kwplant-configmap-dsn-pw-3434",
    "env_password": "kwplant-env-password-5656",
    "annotation_value": "kwplant-annotation-secret-7878",
    "sa_token": "kwplant-legacy-sa-token-9090",
    "secret_value": "kwplant-opaque-secret-value-abab",
}


def _pem_key(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def kubeconfig(path: Path, users: list[dict[str, Any]], clusters: list[dict[str, Any]] | None = None,
               mode: int = 0o600) -> Path:
    clusters = clusters or [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}]
    doc = {"apiVersion": "v1", "kind": "Config", "clusters": clusters, "users": users,
           "contexts": [{"name": f"ctx-{u['name']}", "context": {"cluster": clusters[0]["name"], "user": u["name"]}}
                        for u in users]}
    path.write_text(yaml.safe_dump(doc))
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def pki_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki") / "pki"
    init(root, InitOptions(node_name="cp1", key_type="ecdsa"))
    return root


def client_cert(pki: Path, cn: str, orgs: tuple[str, ...] = (), days: int = 365,
                now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    from kubeward.pki.files import load_cert, load_key

    ca, ca_key = load_cert(pki / "ca.crt"), load_key(pki / "ca.key")
    key = new_key("ecdsa")
    cert = sign_leaf(LeafSpec(cn, orgs, (EKU.CLIENT_AUTH,)), key, ca, ca_key, days=days, now=now)
    return _pem_cert(cert), _pem_key(key)


APISERVER = """apiVersion: v1
kind: Pod
metadata: {{name: kube-apiserver, namespace: kube-system}}
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.37.2
    command:
    - kube-apiserver
{flags}
"""


def node_root(tmp: Path, pki_src: Path, *, flags: list[str] | None = None, files: dict[str, str] | None = None
              ) -> Path:
    root = tmp / "node"
    kube = root / "etc" / "kubernetes"
    (kube / "manifests").mkdir(parents=True)
    shutil.copytree(pki_src, kube / "pki")
    if flags is None:
        flags = ["--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                 "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
                 "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
                 "--service-account-max-token-expiration=48h"]
    (kube / "manifests" / "kube-apiserver.yaml").write_text(
        APISERVER.format(flags="\n".join(f"    - {f}" for f in flags)))
    for rel, text in (files or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(0o600)
    return root


def ids(result: Any) -> set[str]:
    return {f.control.id for f in result.report.findings}


def run_files(*kubeconfigs: Path, root: Path | None = None) -> Any:
    return audit(AuditOptions(kubeconfigs=kubeconfigs, node_root=root, default_kubeconfigs=False))


# ---- kubeconfigs ---------------------------------------------------------------------------------------------

def test_kubeconfig_mode(tmp_path: Path) -> None:
    bad = kubeconfig(tmp_path / "bad", [{"name": "u", "user": {"exec": {"command": "x"}}}], mode=0o644)
    good = kubeconfig(tmp_path / "good", [{"name": "u", "user": {"exec": {"command": "x"}}}])
    assert "KW-C001" in ids(run_files(bad))
    assert ids(run_files(good)) == set()


def test_embedded_token_vs_exec_plugin(tmp_path: Path) -> None:
    tok = kubeconfig(tmp_path / "tok", [{"name": "u", "user": {"token": PLANTED["kubeconfig_token"]}}])
    exe = kubeconfig(tmp_path / "exec", [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication."
                                                                         "k8s.io/v1", "command": "aws"}}}])
    r = run_files(tok)
    assert "KW-C002" in ids(r)
    assert [e.not_after for e in r.expiries] == [None]
    assert "KW-C002" not in ids(run_files(exe))


def test_jwt_token_expiry_is_read(tmp_path: Path) -> None:
    exp = int(dt.datetime(2030, 1, 2, tzinfo=dt.UTC).timestamp())
    body = base64.urlsafe_b64encode(orjson.dumps({"sub": "system:serviceaccount:a:b", "exp": exp})).rstrip(b"=")
    jwt = f"eyJhbGciOiJSUzI1NiJ9.{body.decode()}.c2ln"
    r = run_files(kubeconfig(tmp_path / "k", [{"name": "u", "user": {"token": jwt}}]))
    assert r.expiries[0].owner == "system:serviceaccount:a:b"
    assert r.expiries[0].not_after == dt.datetime(2030, 1, 2, tzinfo=dt.UTC)
    assert all(jwt not in f.message for f in r.report.findings)


def test_oidc_tokens_in_auth_provider(tmp_path: Path) -> None:
    bad = kubeconfig(tmp_path / "b", [{"name": "u", "user": {"auth-provider": {
        "name": "oidc", "config": {"id-token": PLANTED["oidc_id_token"], "idp-issuer-url": "https://idp"}}}}])
    good = kubeconfig(tmp_path / "g", [{"name": "u", "user": {"auth-provider": {
        "name": "oidc", "config": {"idp-issuer-url": "https://idp"}}}}])
    assert [f.path for f in run_files(bad).report.findings] == ["/users/0/user/auth-provider/config"]
    assert ids(run_files(good)) == set()


def test_client_key_embedded_and_masters_and_expiry(tmp_path: Path, pki_src: Path) -> None:
    crt, key = client_cert(pki_src, "root-admin", ("system:masters",), days=10)
    bad = kubeconfig(tmp_path / "b", [{"name": "admin", "user": {"client-certificate-data": _b64(crt),
                                                                  "client-key-data": _b64(key)}}])
    r = run_files(bad)
    assert {"KW-C003", "KW-PKI-012", "KW-PKI-002"} <= ids(r)
    exp = [e for e in r.expiries if e.id.endswith("/client-certificate")]
    assert exp and exp[0].owner == "root-admin" and exp[0].not_after is not None
    # a client certificate of an RBAC group, long-lived, key in a 0600 file: only the static-key finding
    crt2, key2 = client_cert(pki_src, "dev", ("developers",))
    (tmp_path / "dev.crt").write_bytes(crt2)
    (tmp_path / "dev.key").write_bytes(key2)
    (tmp_path / "dev.key").chmod(0o600)
    good = kubeconfig(tmp_path / "g", [{"name": "dev", "user": {"client-certificate": "dev.crt",
                                                                 "client-key": "dev.key"}}])
    assert ids(run_files(good)) == {"KW-C003"}
    (tmp_path / "dev.key").chmod(0o640)
    assert ids(run_files(good)) == {"KW-C003", "KW-C001"}


def test_expired_client_certificate(tmp_path: Path, pki_src: Path) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    crt, _ = client_cert(pki_src, "old", now=past)
    r = run_files(kubeconfig(tmp_path / "k", [{"name": "old", "user": {"client-certificate-data": _b64(crt)}}]))
    assert "KW-PKI-001" in ids(r)


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    user = [{"name": "u", "user": {"exec": {"command": "x"}}}]
    bad = kubeconfig(tmp_path / "b", user, [{"name": "c", "cluster": {"server": "https://h",
                                                                       "insecure-skip-tls-verify": True}}])
    good = kubeconfig(tmp_path / "g", user, [{"name": "c", "cluster": {"server": "https://h",
                                                                        "insecure-skip-tls-verify": False}}])
    assert ids(run_files(bad)) == {"KW-C004"}
    assert ids(run_files(good)) == set()


def test_basic_auth(tmp_path: Path) -> None:
    bad = kubeconfig(tmp_path / "b", [{"name": "u", "user": {"username": "bob",
                                                              "password": PLANTED["kubeconfig_password"]}}])
    assert ids(run_files(bad)) == {"KW-C005"}
    assert ids(run_files(kubeconfig(tmp_path / "g", [{"name": "u", "user": {}}]))) == set()


def test_plain_http_context(tmp_path: Path) -> None:
    user = [{"name": "u", "user": {"exec": {"command": "x"}}}]
    bad = kubeconfig(tmp_path / "b", user, [{"name": "c", "cluster": {"server": "http://10.0.0.1:8080"}}])
    r = run_files(bad)
    assert [(f.control.id, f.path) for f in r.report.findings] == [("KW-C006", "/contexts/0/context/cluster")]
    assert ids(run_files(kubeconfig(tmp_path / "g", user))) == set()


def test_bad_kubeconfig_is_one_error_without_content(tmp_path: Path) -> None:
    p = tmp_path / "broken"
    p.write_text(f"users: [{{token: {PLANTED['kubeconfig_token']}\n")
    r = run_files(p)
    assert len(r.report.errors) == 1 and "not valid YAML" in r.report.errors[0].message
    assert PLANTED["kubeconfig_token"] not in str(r.report.errors[0])


# ---- apiserver files and flags -------------------------------------------------------------------------------

def test_static_token_file(tmp_path: Path, pki_src: Path) -> None:
    flags = ["--token-auth-file=/etc/kubernetes/tokens.csv", "--service-account-issuer=https://k",
             "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
             "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
             "--service-account-max-token-expiration=24h"]
    root = node_root(tmp_path, pki_src, flags=flags, files={
        "etc/kubernetes/tokens.csv": f'{PLANTED["static_token"]},alice,u1,"system:masters,dev"\n'})
    r = run_files(root=root)
    hits = [f for f in r.report.findings if f.control.id == "KW-C010"]
    assert len(hits) == 1 and 'user "alice", in system:masters' in hits[0].message
    assert any(e.id.startswith("static-token:") and e.not_after is None and e.owner == "alice" for e in r.expiries)
    clean = node_root(tmp_path / "clean", pki_src)
    assert "KW-C010" not in ids(run_files(root=clean))


def test_csv_reader_never_returns_the_secret() -> None:
    rows = read_csv_credentials('t1,alice,1,"a,b"\n\nshort,x\nt2, bob ,2\n')
    assert rows == [(1, "alice", ["a", "b"]), (4, "bob ", [])]


def test_basic_auth_file(tmp_path: Path, pki_src: Path) -> None:
    flags = ["--basic-auth-file=/etc/kubernetes/basic.csv", "--service-account-issuer=https://k",
             "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
             "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
             "--service-account-max-token-expiration=24h"]
    root = node_root(tmp_path, pki_src, flags=flags, files={
        "etc/kubernetes/basic.csv": f"{PLANTED['basic_password']},bob,u2\n"})
    assert "KW-C011" in ids(run_files(root=root))
    assert "KW-C011" not in ids(run_files(root=node_root(tmp_path / "c", pki_src)))


def test_token_lifetime_and_settings(tmp_path: Path, pki_src: Path) -> None:
    root = node_root(tmp_path, pki_src, flags=["--service-account-key-file=/etc/kubernetes/pki/sa.pub"])
    r = run_files(root=root)
    msgs = [f.message for f in r.report.findings if f.control.id in ("KW-C012", "KW-C013")]
    assert any("--service-account-max-token-expiration is not set" in m for m in msgs)
    assert any("--service-account-issuer is not set" in m for m in msgs)
    assert any("--service-account-signing-key-file is not set" in m for m in msgs)
    assert not {"KW-C012", "KW-C013"} & ids(run_files(root=node_root(tmp_path / "c", pki_src)))


def test_signing_key_mode(tmp_path: Path, pki_src: Path) -> None:
    root = node_root(tmp_path, pki_src)
    (root / "etc/kubernetes/pki/sa.key").chmod(0o644)
    r = run_files(root=root)
    assert any(f.control.id == "KW-C001" and "signing key" in f.message for f in r.report.findings)


def test_no_apiserver_manifest_is_not_assessed(tmp_path: Path) -> None:
    (tmp_path / "etc/kubernetes/manifests").mkdir(parents=True)
    r = run_files(root=tmp_path)
    what = {n.what for n in r.report.not_assessed}
    assert "kube-apiserver credentials" in what and "control-plane certificates" in what


# ---- certificates --------------------------------------------------------------------------------------------

def test_control_plane_certificates_expiry(tmp_path: Path, pki_src: Path) -> None:
    from kubeward.pki.files import load_cert, load_key, write_cert

    root = node_root(tmp_path, pki_src)
    r = run_files(root=root)
    assert not {"KW-PKI-001", "KW-PKI-002"} & ids(r)
    names = {e.id.rsplit("/", 1)[-1] for e in r.expiries}
    assert {"apiserver.crt", "ca.crt", "server.crt", "apiserver-etcd-client.crt"} <= names
    pki = root / "etc/kubernetes/pki"
    ca, ca_key = load_cert(pki / "ca.crt"), load_key(pki / "ca.key")
    soon = sign_leaf(LeafSpec("kube-apiserver", (), (EKU.SERVER_AUTH,)), load_key(pki / "apiserver.key"), ca, ca_key,
                     days=5)
    write_cert(pki / "apiserver.crt", soon, force=True)
    r2 = run_files(root=root)
    assert any(f.control.id == "KW-PKI-002" and f.object.name == "apiserver" for f in r2.report.findings)
    assert r2.expiries[0].id.endswith("apiserver.crt")  # soonest first


def test_kubelet_certificates(tmp_path: Path, pki_src: Path) -> None:
    root = node_root(tmp_path, pki_src)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    crt, key = client_cert(pki_src, "system:node:n1", ("system:nodes",), now=past)
    kp = root / "var/lib/kubelet/pki"
    kp.mkdir(parents=True)
    (kp / "kubelet-client-current.pem").write_bytes(crt + key)
    (kp / "kubelet-client-current.pem").chmod(0o644)
    r = run_files(root=root)
    hits = {f.control.id for f in r.report.findings if "kubelet" in f.location.file}  # type: ignore[operator]
    assert hits == {"KW-PKI-001", "KW-C001"}
    crt2, key2 = client_cert(pki_src, "system:node:n1", ("system:nodes",))
    (kp / "kubelet-client-current.pem").write_bytes(crt2 + key2)
    (kp / "kubelet-client-current.pem").chmod(0o600)
    r2 = run_files(root=root)
    assert not [f for f in r2.report.findings if "kubelet" in (f.location.file or "")]
    assert any(e.owner == "system:node:n1" for e in r2.expiries)


def test_node_kubeconfigs_resolve_below_root(tmp_path: Path, pki_src: Path) -> None:
    root = node_root(tmp_path, pki_src)
    crt, key = client_cert(pki_src, "system:node:n1", ("system:nodes",))
    kp = root / "var/lib/kubelet/pki"
    kp.mkdir(parents=True)
    (kp / "kubelet-client-current.pem").write_bytes(crt + key)
    (kp / "kubelet-client-current.pem").chmod(0o600)
    path = "/var/lib/kubelet/pki/kubelet-client-current.pem"
    # "default-auth", as kubeadm names it ("n" would be a YAML 1.1 boolean to kubectl's decoder, as to ours)
    kubeconfig(root / "etc/kubernetes/kubelet.conf", [{"name": "default-auth", "user": {"client-certificate": path,
                                                                                         "client-key": path}}])
    r = run_files(root=root)
    assert any(e.id.endswith("kubelet.conf#user=default-auth/client-certificate") and e.owner == "system:node:n1"
               for e in r.expiries)


def _bundle_objects(cert_pem: bytes, skip: bool = False) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": "guard"}, "webhooks": [{"name": "guard.example.com", "clientConfig": {
             "caBundle": _b64(cert_pem), "service": {"namespace": "g", "name": "g"}}}]},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io"},
         "spec": {"service": {"namespace": "kube-system", "name": "metrics"}, "group": "metrics.k8s.io",
                  "version": "v1beta1", **({"insecureSkipTLSVerify": True} if skip else {"caBundle": _b64(cert_pem)})}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.apps"},
         "spec": {"group": "apps", "version": "v1"}},
    ]


def _snap(objs: list[dict[str, Any]]) -> Snapshot:
    return Snapshot([Resource(o, cluster="test") for o in objs])


def test_webhook_and_apiservice_bundles(pki_src: Path) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=3650)
    key = new_key("ecdsa")
    old_ca = _pem_cert(new_ca("webhook-ca", key, days=365, now=past))
    r = audit(AuditOptions(default_kubeconfigs=False), _snap(_bundle_objects(old_ca, skip=True)))
    got = {(f.control.id, f.object.kind) for f in r.report.findings}
    assert got == {("KW-PKI-001", "ValidatingWebhookConfiguration"), ("KW-C020", "APIService")}
    fresh = _pem_cert(new_ca("webhook-ca", key))
    r2 = audit(AuditOptions(default_kubeconfigs=False), _snap(_bundle_objects(fresh)))
    assert r2.report.findings == []
    assert {e.id for e in r2.expiries} == {"webhook:ValidatingWebhookConfiguration/guard#guard.example.com",
                                           "apiservice:v1beta1.metrics.k8s.io"}


# ---- legacy tokens and the scan's secret controls ---------------------------------------------------------------

def _sa_secret(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": name, "namespace": "app", "creationTimestamp": "2025-01-01T00:00:00Z",
                         "annotations": {"kubernetes.io/service-account.name": "builder"}, "labels": labels or {}},
            "data": {"token": _b64(PLANTED["sa_token"])}}


def _pod(name: str, secret: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "app"},
            "spec": {"containers": [{"name": "c", "image": "x"}],
                     "volumes": [{"name": "t", "secret": {"secretName": secret}}]}}


def test_legacy_tokens_used_and_unused() -> None:
    objs = [_sa_secret("used"), _sa_secret("unused"), _pod("ci", "used"),
            _sa_secret("seen", {"kubernetes.io/legacy-token-last-used": "2026-11-30"})]
    r = audit(AuditOptions(default_kubeconfigs=False), _snap(objs))
    msgs = {f.object.name: f.message for f in r.report.findings if f.control.id == "KW-S003"}
    assert "used by Pod/ci" in msgs["used"] and "created 2025-01-01" in msgs["used"]
    assert "unused, delete it" in msgs["unused"]
    assert "last used 2026-11-30" in msgs["seen"]
    owners = {e.id: e.owner for e in r.expiries}
    assert owners["legacy-token:app/unused"] == "system:serviceaccount:app:builder"
    r2 = audit(AuditOptions(default_kubeconfigs=False), _snap([_pod("ci", "other")]))
    assert "KW-S003" not in ids(r2)


def _leaky_workloads() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "app"},
         "data": {"DB_PASSWORD": PLANTED["configmap_password"],
                  "dsn": f"postgres://web:{PLANTED['configmap_value']}@db/shop"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "app"},
         "spec": {"containers": [{"name": "c", "image": "x", "env": [
             {"name": "API_PASSWORD", "value": PLANTED["env_password"]}]}]}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {
            "name": "db", "namespace": "app", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": orjson.dumps({
                    "apiVersion": "v1", "kind": "Secret",
                    "data": {"password": _b64(PLANTED["annotation_value"])}}).decode()}},
         "data": {"password": _b64(PLANTED["secret_value"])}},
    ]


def test_secret_controls_run_on_the_cluster() -> None:
    r = audit(AuditOptions(default_kubeconfigs=False), _snap(_leaky_workloads()))
    assert {"KW-S001", "KW-S002", "KW-S005", "KW-W047"} <= ids(r)
    clean = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "app"},
              "data": {"LOG_LEVEL": "debug"}}]
    assert ids(audit(AuditOptions(default_kubeconfigs=False), _snap(clean))) == set()


# ---- the monitor's function and the CLI ------------------------------------------------------------------------

def test_credential_expiries_tuples(tmp_path: Path, pki_src: Path) -> None:
    out = credential_expiries(AuditOptions(node_root=node_root(tmp_path, pki_src), default_kubeconfigs=False),
                              _snap([_sa_secret("t")]))
    assert out[-1] == ("legacy-token:app/t", "system:serviceaccount:app:builder", None)
    dated = [t for t in out if t[2] is not None]
    assert dated == sorted(dated, key=lambda t: t[2]) and len(dated) >= 10


def test_nothing_to_audit_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    res = CliRunner().invoke(cli, ["creds", "audit"])
    assert res.exit_code == 2 and "nothing to audit" in res.output


def _world(tmp: Path, pki_src: Path) -> tuple[list[str], Snapshot, list[str]]:
    """Every place planted: kubeconfigs (token, password, OIDC, client key), the apiserver's token and
    basic-auth files, the cluster's legacy token, ConfigMap, env, annotation and Secret values."""
    crt, key = client_cert(pki_src, "admin", ("system:masters",))
    k1 = kubeconfig(tmp / "one", [
        {"name": "tok", "user": {"token": PLANTED["kubeconfig_token"]}},
        {"name": "pw", "user": {"username": "u", "password": PLANTED["kubeconfig_password"]}},
        {"name": "oidc", "user": {"auth-provider": {"name": "oidc", "config": {"id-token": PLANTED["oidc_id_token"]}}}},
        {"name": "admin", "user": {"client-certificate-data": _b64(crt), "client-key-data": _b64(key)}},
    ], [{"name": "c", "cluster": {"server": "http://h:8080", "insecure-skip-tls-verify": True}}], mode=0o644)
    flags = ["--token-auth-file=/etc/kubernetes/tokens.csv", "--basic-auth-file=/etc/kubernetes/basic.csv"]
    root = node_root(tmp, pki_src, flags=flags, files={
        "etc/kubernetes/tokens.csv": f"{PLANTED['static_token']},alice,u1\n",
        "etc/kubernetes/basic.csv": f"{PLANTED['basic_password']},bob,u2\n"})
    secrets = [*_leaky_workloads(), _sa_secret("used"), _pod("ci", "used")]
    values = [*PLANTED.values(), key.decode().splitlines()[1]]
    return ["--kubeconfig", str(k1), "--node-root", str(root)], _snap(secrets), values


def leak_forms(value: str) -> list[str]:
    """The value and its base64 forms at each of the three alignments (a value inside a larger encoded blob)."""
    out = [value]
    for prefix in ("", "x", "xy"):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            text = enc((prefix + value).encode()).decode().rstrip("=")
            skip = {"": 0, "x": 2, "xy": 3}[prefix]
            out.append(text[skip:-2])
    return [f for f in out if len(f) >= 12]


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_credential_in_any_format_or_stderr(tmp_path: Path, pki_src: Path, fmt: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    args, snap, values = _world(tmp_path, pki_src)
    import kubeward.cli.live as live

    monkeypatch.setattr(live, "load_cluster_cli", lambda *a, **k: snap)
    log = tmp_path / "kubeward.log"
    import logging

    handler = logging.FileHandler(log)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        res = CliRunner().invoke(cli, ["creds", "audit", "--cluster", *args, "-o", fmt, "--fail-on", "none"])
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert res.exit_code == 0, res.output
    out = res.stdout + res.stderr + log.read_text()
    assert "KW-C010" in out and "KW-S003" in out  # the planted places were all judged
    for value in values:
        for form in leak_forms(value):
            assert form not in out, f"{fmt}: a form of a planted credential is printed"


def test_cli_json_has_credentials_and_findings(tmp_path: Path, pki_src: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    args, snap, _ = _world(tmp_path, pki_src)
    import kubeward.cli.live as live

    monkeypatch.setattr(live, "load_cluster_cli", lambda *a, **k: snap)
    res = CliRunner().invoke(cli, ["creds", "audit", "--cluster", *args, "-o", "json"])
    assert res.exit_code == 1
    doc = orjson.loads(res.stdout)
    found = {f["control"]["id"] for f in doc["findings"]}
    assert {"KW-C001", "KW-C002", "KW-C003", "KW-C004", "KW-C005", "KW-C006", "KW-C010", "KW-C011",
            "KW-PKI-012", "KW-S003"} <= found
    creds = {c["id"]: c for c in doc["credentials"]}
    assert any(k.startswith("static-token:") for k in creds)
    assert all(set(c) == {"id", "owner", "notAfter", "daysLeft"} for c in creds.values())


def test_legacy_token_usage_unknown_when_pods_unread() -> None:
    from kubeward.findings import NotAssessed

    snap = Snapshot([Resource(_sa_secret("t"), cluster="test")],
                    not_assessed=[NotAssessed("pods", "403 Forbidden")])
    r = audit(AuditOptions(default_kubeconfigs=False), snap)
    msg = next(f.message for f in r.report.findings if f.control.id == "KW-S003")
    assert "who uses it is unknown: pods could not be read" in msg and "delete it" not in msg
    assert {n.what for n in r.report.not_assessed} == {"pods"}


def test_unreadable_client_certificate_is_an_error(tmp_path: Path) -> None:
    bad = kubeconfig(tmp_path / "k", [{"name": "u", "user": {"client-certificate-data": _b64("not a cert"),
                                                              "client-key-data": _b64("nope")}},
                                      {"name": "v", "user": {"client-certificate": "missing.crt"}}])
    r = run_files(bad)
    msgs = sorted(e.message for e in r.report.errors)
    assert len(msgs) == 2 and "not a base64 PEM certificate" in msgs[0] and "No such file" in msgs[1]
    assert "nope" not in " ".join(msgs)


def test_a_manifest_given_as_kubeconfig_is_named_as_not_one(tmp_path: Path) -> None:
    """A multi-document manifest passed by mistake is "not a kubeconfig", not "not valid YAML", and the summary
    line does not claim that no kubeconfig was given."""
    f = tmp_path / "app.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\n")
    res = CliRunner().invoke(cli, ["creds", "audit", "--kubeconfig", str(f)])
    assert res.exit_code == 2
    assert "not a kubeconfig (several YAML documents" in res.stderr
    assert "nothing could be read" in res.stderr and "no kubeconfig" not in res.stderr



@pytest.mark.parametrize("text, reason", [
    # an alias bomb: nine levels of nine references would be 387 million strings once walked
    ("a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
                                             for p, c in zip("abcdefgh", "bcdefghi", strict=True)) + "users: [*i]\n", "alias"),
    ("users: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
    ("\x00\x01binary", "binary"),
])
def test_hostile_kubeconfig_is_one_line_error(tmp_path: Path, text: str, reason: str) -> None:
    """A kubeconfig gets the guards every other input has: refused in one line, without walking or quoting it."""
    p = tmp_path / "config"
    p.write_text(text)
    r = run_files(p)
    assert len(r.report.errors) == 1, r.report.errors
    message = r.report.errors[0].message
    assert reason in message and "\n" not in message and len(message) < 200
