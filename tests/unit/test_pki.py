"""pki init / issue-user / check / rotate: kubeadm layout, profiles, file modes, findings, bad input."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import stat
import subprocess
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
from cryptography.x509.oid import NameOID

from kubeward.cli.main import cli
from kubeward.pki.checks import check
from kubeward.pki.files import load_cert, load_key, write_cert, write_key
from kubeward.pki.inventory import read_dir, short_duration
from kubeward.pki.issue import LeafSpec, new_ca, new_key, sign_leaf
from kubeward.pki.layout import ALL, InitOptions, init

run = CliRunner().invoke


@pytest.fixture(scope="module")
def pki_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki") / "pki"
    init(root, InitOptions(node_name="cp1", key_type="ecdsa", etcd_sans=("etcd.example", "10.0.0.5"),
                           apiserver_sans=("api.example",)))
    return root


@pytest.fixture()
def pki(pki_src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "pki"
    shutil.copytree(pki_src, dst)
    return dst


def sans(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*ext.get_values_for_type(x509.DNSName), *(str(i) for i in ext.get_values_for_type(x509.IPAddress))}


def ekus(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_layout_files_and_modes(pki: Path) -> None:
    for d in ALL:
        assert (pki / f"{d.base}.crt").is_file(), d.base
        assert stat.S_IMODE((pki / f"{d.base}.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((pki / "sa.key").stat().st_mode) == 0o600
    assert (pki / "sa.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_kubeadm_profiles(pki: Path) -> None:
    ca, etcd_ca = load_cert(pki / "ca.crt"), load_cert(pki / "etcd/ca.crt")
    assert cn(ca) == "kubernetes" and cn(etcd_ca) == "etcd-ca"
    assert ca.public_key() != etcd_ca.public_key()
    api = load_cert(pki / "apiserver.crt")
    assert cn(api) == "kube-apiserver" and ekus(api) == {EKU.SERVER_AUTH}
    assert {"cp1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local", "10.96.0.1", "127.0.0.1", "api.example"} == sans(api)
    server = load_cert(pki / "etcd/server.crt")
    assert cn(server) == "cp1" and ekus(server) == {EKU.SERVER_AUTH, EKU.CLIENT_AUTH}
    assert {"cp1", "localhost", "127.0.0.1", "::1", "etcd.example", "10.0.0.5"} == sans(server)
    client = load_cert(pki / "apiserver-etcd-client.crt")
    assert client.issuer == etcd_ca.subject and ekus(client) == {EKU.CLIENT_AUTH}
    # current certlist.go: no O on the etcd clients, kubeadm:cluster-admins on the kubelet client
    assert client.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) == []
    kubelet = load_cert(pki / "apiserver-kubelet-client.crt")
    assert [a.value for a in kubelet.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "kubeadm:cluster-admins"]
    ku = server.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert isinstance(server.public_key(), ec.EllipticCurvePublicKey)
    assert server.not_valid_before_utc == etcd_ca.not_valid_before_utc  # kubeadm NewSignedCert
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days == 3650


@pytest.mark.parametrize(("ca", "leaf", "ok"), [
    ("etcd/ca.crt", "etcd/server.crt", True),
    ("etcd/ca.crt", "apiserver-etcd-client.crt", True),
    ("ca.crt", "etcd/server.crt", False),
    ("ca.crt", "apiserver.crt", True),
    ("front-proxy-ca.crt", "apiserver.crt", False),
])
def test_openssl_agrees_with_check(pki: Path, ca: str, leaf: str, ok: bool) -> None:
    from kubeward.engines.authn import VerifyError, verify_chains

    proc = subprocess.run(["openssl", "verify", "-CAfile", pki / ca, pki / leaf], capture_output=True, timeout=30)
    try:
        verify_chains(load_cert(pki / leaf), [load_cert(pki / ca)], usage=None)
        ours = True
    except VerifyError:
        ours = False
    assert (proc.returncode == 0) is ok
    assert ours is ok


def test_openssl_matrix_all_leaves_all_cas(pki: Path) -> None:
    """Every kubeadm leaf against every CA: our verdict equals `openssl verify` (only its own CA verifies it)."""
    from kubeward.engines.authn import VerifyError, verify_chains
    from kubeward.pki.layout import CAS, LEAVES

    for leaf in LEAVES:
        for ca in CAS:
            proc = subprocess.run(["openssl", "verify", "-CAfile", pki / f"{ca.base}.crt", pki / f"{leaf.base}.crt"],
                                  capture_output=True, timeout=30)
            try:
                verify_chains(load_cert(pki / f"{leaf.base}.crt"), [load_cert(pki / f"{ca.base}.crt")], usage=None)
                ours = True
            except VerifyError:
                ours = False
            assert ours == (proc.returncode == 0) == (leaf.ca == ca.name), (leaf.name, ca.name)


@pytest.mark.parametrize("fmt", ["sarif", "junit", "html"])
def test_check_renders_every_format(pki: Path, fmt: str) -> None:
    os.chmod(pki / "apiserver.key", 0o644)
    res = run(cli, ["pki", "check", str(pki), "-o", fmt])
    assert res.exit_code == 1 and "KW-PKI-007" in res.output


def test_clean_check_and_inventory_json(pki: Path) -> None:
    res = run(cli, ["pki", "check", str(pki), "-o", "json"])
    assert res.exit_code == 0, res.output
    doc = orjson.loads(res.output)
    assert doc["schemaVersion"] == "1" and doc["findings"] == []
    rows = {r["name"]: r for r in doc["certificates"]}
    assert rows["etcd-server"]["signedBy"] == "etcd-ca"
    assert rows["apiserver"]["signedBy"] == "ca"
    assert rows["apiserver"]["residual"] in ("364d", "365d")
    assert rows["ca"]["key"] == {"type": "ECDSA-secp256r1", "bits": 256}


def ids(root: Path) -> set[str]:
    return {f.control.id for f in check(read_dir(root)).findings}


def test_world_readable_key_and_mismatch(pki: Path) -> None:
    os.chmod(pki / "apiserver.key", 0o644)
    os.chmod(pki / "sa.key", 0o640)
    shutil.copy(pki / "front-proxy-client.key", pki / "apiserver-kubelet-client.key")
    report = check(read_dir(pki))
    got = {(f.control.id, f.object.name) for f in report.findings}
    assert ("KW-PKI-007", "apiserver") in got
    assert ("KW-PKI-009", "apiserver-kubelet-client") in got
    assert ("KW-PKI-007", "sa") in got
    res = run(cli, ["pki", "check", str(pki)])
    assert res.exit_code == 1


def test_shared_etcd_ca_is_critical(pki: Path) -> None:
    # etcd re-issued from the cluster CA: the "unique CA" problem kube-bench never compares
    ca, ca_key = load_cert(pki / "ca.crt"), load_key(pki / "ca.key")
    shutil.copy(pki / "ca.crt", pki / "etcd/ca.crt")
    shutil.copy(pki / "ca.key", pki / "etcd/ca.key")
    key = load_key(pki / "etcd/server.key")
    cert = sign_leaf(LeafSpec("cp1", (), (EKU.SERVER_AUTH, EKU.CLIENT_AUTH)), key, ca, ca_key)
    write_cert(pki / "etcd/server.crt", cert, force=True)
    findings = [f for f in check(read_dir(pki)).findings if f.control.id == "KW-PKI-005"]
    assert {f.object.name for f in findings} >= {"etcd-ca", "etcd-server"}
    assert all(f.severity.label == "critical" for f in findings)


def test_expired_and_eku_misuse(pki: Path) -> None:
    ca, ca_key = load_cert(pki / "ca.crt"), load_key(pki / "ca.key")
    key = load_key(pki / "apiserver.key")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    expired = sign_leaf(LeafSpec("kube-apiserver", (), (EKU.CLIENT_AUTH,)), key, ca, ca_key, now=past)
    write_cert(pki / "apiserver.crt", expired, force=True)
    got = {(f.control.id, f.object.name) for f in check(read_dir(pki)).findings}
    assert ("KW-PKI-001", "apiserver") in got
    assert ("KW-PKI-004", "apiserver") in got


def test_weak_rsa_key(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    from cryptography import x509 as _x
    from cryptography.hazmat.primitives import hashes
    name = _x.Name([_x.NameAttribute(NameOID.COMMON_NAME, "weak")])
    now = dt.datetime.now(dt.UTC)
    cert = (_x.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=9))
            .sign(key, hashes.SHA256()))
    write_cert(tmp_path / "weak.crt", cert, force=False)
    write_key(tmp_path / "weak.key", key, force=False)
    got = {f.control.id for f in check(read_dir(tmp_path)).findings}
    assert {"KW-PKI-006", "KW-PKI-002"} <= got


def test_init_refuses_overwrite_then_force(pki: Path) -> None:
    before = (pki / "ca.crt").read_bytes()
    res = run(cli, ["pki", "init", str(pki), "--key-type", "ecdsa"])
    assert res.exit_code == 2 and "already exists (use --force to overwrite)" in res.output
    assert (pki / "ca.crt").read_bytes() == before
    res = run(cli, ["pki", "init", str(pki), "--key-type", "ecdsa", "--force"])
    assert res.exit_code == 0 and (pki / "ca.crt").read_bytes() != before


def test_rsa_init_and_small_rsa_refused(tmp_path: Path) -> None:
    res = run(cli, ["pki", "init", str(tmp_path / "p"), "--rsa-bits", "1024"])
    assert res.exit_code == 2
    with pytest.raises(ValueError):
        new_key("rsa", 1024)


def test_issue_user_and_kubeconfig(pki: Path, tmp_path: Path) -> None:
    import base64

    import yaml

    kc = tmp_path / "alice.kubeconfig"
    res = run(cli, ["pki", "issue-user", str(pki), "alice", "--group", "dev", "--group", "ops",
                    "--kubeconfig-out", str(kc), "--server", "https://10.0.0.1:6443"])
    assert res.exit_code == 0, res.output
    cert = load_cert(pki / "users/alice.crt")
    assert cn(cert) == "alice" and ekus(cert) == {EKU.CLIENT_AUTH}
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)  # follows the (ECDSA) CA key type
    assert stat.S_IMODE((pki / "users/alice.key").stat().st_mode) == 0o600
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["dev", "ops"]
    assert stat.S_IMODE(kc.stat().st_mode) == 0o600
    doc = yaml.safe_load(kc.read_text())
    assert doc["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    embedded = x509.load_pem_x509_certificate(base64.b64decode(doc["users"][0]["user"]["client-certificate-data"]))
    assert embedded == cert
    assert "PRIVATE KEY" not in res.output
    res = run(cli, ["pki", "issue-user", str(pki), "alice"])
    assert res.exit_code == 2 and "already exists" in res.output
    res = run(cli, ["pki", "issue-user", str(pki), "../evil"])
    assert res.exit_code == 2


def test_rotate_same_and_new_keys(pki: Path) -> None:
    old = load_cert(pki / "etcd/server.crt")
    old_key = (pki / "etcd/server.key").read_bytes()
    res = run(cli, ["pki", "rotate", str(pki), "--days", "30", "-o", "json"])
    assert res.exit_code == 0, res.output
    renewed = {r["name"] for r in orjson.loads(res.output)["renewed"]}
    assert "etcd-server" in renewed and "ca" not in renewed
    new = load_cert(pki / "etcd/server.crt")
    assert new.serial_number != old.serial_number and sans(new) == sans(old) and ekus(new) == ekus(old)
    assert new.public_key() == old.public_key() and (pki / "etcd/server.key").read_bytes() == old_key
    assert 29 <= (new.not_valid_after_utc - dt.datetime.now(dt.UTC)).days <= 30
    res = run(cli, ["pki", "rotate", str(pki), "--new-keys", "--cert", "apiserver"])
    assert res.exit_code == 0
    assert load_cert(pki / "apiserver.crt").public_key() != old.public_key()
    assert stat.S_IMODE((pki / "apiserver.key").stat().st_mode) == 0o600
    assert ids(pki) == {"KW-PKI-002"}  # the 30-day certs now warn; chains all still valid


def test_rotate_without_ca_key_fails_cleanly(pki: Path) -> None:
    (pki / "etcd/ca.key").unlink()
    res = run(cli, ["pki", "rotate", str(pki)])
    assert res.exit_code == 2 and "etcd/ca.key: no such file" in res.output


@pytest.mark.parametrize(("content", "message"), [
    (b"garbage", "no PEM certificate found"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a valid PEM certificate"),
])
def test_garbage_pem_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "bad.crt").write_bytes(content)
    res = run(cli, ["pki", "check", str(tmp_path)])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_cert_without_key_and_garbage_key(pki: Path) -> None:
    (pki / "front-proxy-client.key").unlink()
    (pki / "apiserver.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nzz\n-----END PRIVATE KEY-----\n")
    got = {(f.control.id, f.object.name) for f in check(read_dir(pki)).findings}
    assert ("KW-PKI-010", "front-proxy-client") in got
    assert ("KW-PKI-009", "apiserver") in got


def test_missing_dir(tmp_path: Path) -> None:
    res = run(cli, ["pki", "check", str(tmp_path / "nope")])
    assert res.exit_code == 2 and res.output.startswith("kubeward: ") and "not a directory" in res.output


def test_short_duration() -> None:
    d = dt.timedelta
    assert [short_duration(x) for x in (d(seconds=-5), d(seconds=30), d(minutes=5), d(hours=30), d(days=364),
                                        d(days=3650))] == ["<invalid>", "30s", "5m", "30h", "364d", "10y"]


def test_apiserver_san_ip_and_ipv6(tmp_path: Path) -> None:
    root = tmp_path / "p"
    init(root, InitOptions(node_name="n", key_type="ecdsa", apiserver_sans=("2001:db8::1", "10.1.1.1"),
                           service_cidr="fd00::/108"))
    got = sans(load_cert(root / "apiserver.crt"))
    assert {"2001:db8::1", "10.1.1.1", str(ipaddress.ip_address("fd00::1"))} <= got


def test_invalid_san_skipped_with_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "p"
    init(root, InitOptions(node_name="n", key_type="ecdsa", apiserver_sans=("Bad_Name!", "*.apps.example", "ok.example")))
    got = sans(load_cert(root / "apiserver.crt"))
    assert "*.apps.example" in got and "ok.example" in got and "Bad_Name!" not in got
    assert "'Bad_Name!' was not added to the apiserver SANs" in capsys.readouterr().err


def test_new_ca_self_signed() -> None:
    key = new_key("ecdsa")
    ca = new_ca("x", key)
    ca.verify_directly_issued_by(ca)


def test_fifo_and_symlink_loop_do_not_hang(pki: Path) -> None:
    os.mkfifo(pki / "pipe.crt")
    os.symlink("..", pki / "loop")
    res = run(cli, ["pki", "check", str(pki), "-o", "json"])
    assert res.exit_code == 2 and "pipe.crt: not a regular file" in res.output


def test_rotate_users_renews_client_certs_and_kubeconfig_rewrites(pki: Path, tmp_path: Path) -> None:
    res = run(cli, ["pki", "rotate", str(pki), "--users"])  # none issued yet: said, not passed over in silence
    assert res.exit_code == 0 and "--users: no user certificates under" in res.stderr
    assert run(cli, ["pki", "issue-user", str(pki), "alice", "--group", "dev"]).exit_code == 0
    assert run(cli, ["pki", "issue-user", str(pki), "bob"]).exit_code == 0
    old = load_cert(pki / "users/alice.crt")
    old_key = (pki / "users/alice.key").read_bytes()
    # without --users, user certificates are left alone
    res = run(cli, ["pki", "rotate", str(pki), "--days", "30", "-o", "json"])
    assert res.exit_code == 0 and not any(r["name"].startswith("users/") for r in orjson.loads(res.stdout)["renewed"])
    assert load_cert(pki / "users/alice.crt").serial_number == old.serial_number
    res = run(cli, ["pki", "rotate", str(pki), "--users", "--days", "30", "-o", "json"])
    assert res.exit_code == 0, res.output
    renewed = {r["name"]: r for r in orjson.loads(res.stdout)["renewed"]}
    assert {"users/alice", "users/bob", "apiserver"} <= set(renewed)
    assert renewed["users/alice"]["file"] == "users/alice.crt"
    assert "kubeconfigs that embed the old certificate of alice, bob" in res.stderr
    new = load_cert(pki / "users/alice.crt")
    assert new.serial_number != old.serial_number and new.subject == old.subject and ekus(new) == {EKU.CLIENT_AUTH}
    assert (pki / "users/alice.key").read_bytes() == old_key
    new.verify_directly_issued_by(load_cert(pki / "ca.crt"))
    # one user, with a new key; then a kubeconfig from the renewed files
    apiserver = load_cert(pki / "apiserver.crt").serial_number
    old_bob = load_cert(pki / "users/bob.crt")
    res = run(cli, ["pki", "rotate", str(pki), "--cert", "users/bob", "--new-keys"])
    assert res.exit_code == 0 and "users/bob" in res.stdout
    assert load_cert(pki / "apiserver.crt").serial_number == apiserver  # only the named certificate
    assert load_cert(pki / "users/bob.crt").public_key() != old_bob.public_key()
    assert stat.S_IMODE((pki / "users/bob.key").stat().st_mode) == 0o600
    out = tmp_path / "bob.kubeconfig"
    res = run(cli, ["pki", "kubeconfig", str(pki), "bob", "--server", "https://10.0.0.1:6443", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and "PRIVATE KEY" not in res.output
    res = run(cli, ["pki", "kubeconfig", str(pki), "bob", "--server", "https://x", "--out", str(out)])
    assert res.exit_code == 2 and "already exists" in res.output


def test_rotate_users_refuses_foreign_and_odd_names(pki: Path) -> None:
    other_key = new_key("ecdsa")
    other = new_ca("other-ca", other_key)
    key = new_key("ecdsa")
    (pki / "users").mkdir(exist_ok=True)
    foreign = sign_leaf(LeafSpec("mallory", (), (EKU.CLIENT_AUTH,)), key, other, other_key, days=30)
    write_cert(pki / "users/mallory.crt", foreign, force=True)
    write_key(pki / "users/mallory.key", key, force=True)
    before = (pki / "apiserver.crt").read_bytes()
    res = run(cli, ["pki", "rotate", str(pki), "--users"])
    assert res.exit_code == 2 and "users/mallory.crt: not signed by" in res.output
    assert (pki / "apiserver.crt").read_bytes() == before  # checked before anything was written
    for bad in ("users/../ca", "users/", "users/a/b"):
        res = run(cli, ["pki", "rotate", str(pki), "--cert", bad])
        assert res.exit_code == 2 and "not a user certificate name" in res.output, bad
    res = run(cli, ["pki", "rotate", str(pki), "--cert", "users/nobody"])
    assert res.exit_code == 2 and "users/nobody.crt: no such file" in res.output


def test_check_table_iso_dates_identities_and_80_columns(pki: Path) -> None:
    """The inventory shows expiry in ISO 8601 and, per certificate, the user (CN) and groups (O) it authenticates
    as, within 80 columns."""
    import re

    res = run(cli, ["pki", "issue-user", str(pki), "alice", "--group", "dev", "--group", "ops"])
    assert res.exit_code == 0, res.output
    res = run(cli, ["pki", "check", str(pki)])
    lines = res.stdout.splitlines()
    assert lines[0].startswith("CERTIFICATE") and "EXPIRES (UTC)" in lines[0]
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    row = next(i for i, line in enumerate(lines) if line.startswith("users/alice") or line.startswith("alice"))
    assert re.search(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z\b", lines[row])
    assert lines[row + 1].strip() == "subject CN=alice  groups dev,ops"
    assert "Dec" not in res.stdout and "UTC " not in res.stdout


def test_kubeconfig_takes_output_and_the_old_out_spelling(pki: Path, tmp_path: Path) -> None:
    assert run(cli, ["pki", "issue-user", str(pki), "dana"]).exit_code == 0
    new, old = tmp_path / "new.conf", tmp_path / "old.conf"
    assert run(cli, ["pki", "kubeconfig", str(pki), "dana", "--server", "https://x", "--output", str(new)]).exit_code == 0
    assert run(cli, ["pki", "kubeconfig", str(pki), "dana", "--server", "https://x", "--out", str(old)]).exit_code == 0
    assert new.read_text() and old.read_text()
    res = run(cli, ["pki", "kubeconfig", str(pki), "dana", "--server", "https://x"])
    assert res.exit_code == 2 and "--output" in res.output
    assert "--out " not in run(cli, ["pki", "kubeconfig", "--help"]).output
