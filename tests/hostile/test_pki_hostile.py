"""Whoever can write a PKI folder must not get kubeward to sign for them, nor fool `pki check` (issue 16), and
system:masters certificates are never made or renewed by default (issue 15)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kubeward.cli.main import cli
from kubeward.pki.checks import check
from kubeward.pki.files import load_cert, load_key, write_cert, write_key
from kubeward.pki.inventory import read_dir
from kubeward.pki.issue import AltNames, LeafSpec, new_key, sign_leaf
from kubeward.pki.layout import BY_NAME, LEAVES, InitOptions, init, leaf_spec
from kubeward.pki.rotate import RotationRefused, rotate
from kubeward.pki.slots import slot_problems

run = CliRunner().invoke
MASTERS = "system:masters"


@pytest.fixture(scope="module")
def pki_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki") / "pki"
    init(root, InitOptions(node_name="cp1", key_type="ecdsa"))
    return root


@pytest.fixture()
def pki(pki_src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "pki"
    shutil.copytree(pki_src, dst)
    return dst


def _self_signed(cn: str, orgs: tuple[str, ...], key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
            .add_extension(x509.ExtendedKeyUsage([EKU.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))


def _plant(pki: Path, base: str, cert: x509.Certificate, key: object) -> None:
    write_cert(pki / f"{base}.crt", cert, force=True)
    write_key(pki / f"{base}.key", key, force=True)  # type: ignore[arg-type]


def _orgs(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def test_planted_self_signed_masters_cert_is_not_re_signed(pki: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _plant(pki, "apiserver-kubelet-client", _self_signed("mallory", (MASTERS,), key), key)
    before = (pki / "apiserver-kubelet-client.crt").read_bytes()
    api_before = (pki / "apiserver.crt").read_bytes()
    res = run(cli, ["pki", "rotate", str(pki)])
    assert res.exit_code == 2, res.output
    assert "apiserver-kubelet-client.crt: not signed by" in res.output
    assert "CN is 'mallory', want 'kube-apiserver-kubelet-client'" in res.output
    assert "pki: 1 certificate refused (not what its slot holds); nothing renewed" in res.output
    masters = [f for f in check(read_dir(pki)).findings if f.control.id == "KW-PKI-012"]
    assert [f.object.name for f in masters] == ["apiserver-kubelet-client"]  # a planted one is never hidden
    assert "older kubeadm profile" not in masters[0].message
    assert (pki / "apiserver-kubelet-client.crt").read_bytes() == before  # nothing signed, nothing written
    assert (pki / "apiserver.crt").read_bytes() == api_before  # all or nothing: the good slots wait too


def test_ca_signed_cert_in_the_wrong_slot_is_refused(pki: Path) -> None:
    """Signed by the right CA but not what the slot holds: a masters identity in the etcd healthcheck slot, and a
    cluster-CA certificate in front-proxy-client (whose CA is front-proxy-ca)."""
    etcd_ca, etcd_key = load_cert(pki / "etcd/ca.crt"), load_key(pki / "etcd/ca.key")
    key = new_key("ecdsa")
    evil = sign_leaf(LeafSpec("admin", (MASTERS,), (EKU.CLIENT_AUTH,)), key, etcd_ca, etcd_key)
    _plant(pki, "etcd/healthcheck-client", evil, key)
    ca, ca_key = load_cert(pki / "ca.crt"), load_key(pki / "ca.key")
    key2 = new_key("ecdsa")
    _plant(pki, "front-proxy-client", sign_leaf(LeafSpec("front-proxy-client", (), (EKU.CLIENT_AUTH,)), key2, ca,
                                                ca_key), key2)
    with pytest.raises(RotationRefused) as err:
        rotate(pki)
    lines = "\n".join(err.value.lines)
    assert "etcd/healthcheck-client.crt: CN is 'admin'" in lines
    assert "groups (O) are [system:masters], want [] or [system:masters]" not in lines  # legacy O is fine
    assert "front-proxy-client.crt: not signed by" in lines and "front-proxy-ca.crt" in lines
    # pki check says the same about the slots (KW-PKI-011) and the masters certificate is not hidden
    report = check(read_dir(pki))
    got = {(f.control.id, f.object.name) for f in report.findings}
    assert ("KW-PKI-011", "etcd-healthcheck-client") in got
    assert ("KW-PKI-003", "front-proxy-client") in got


def test_check_reports_a_planted_slot_even_when_ca_signed(pki: Path) -> None:
    ca, ca_key = load_cert(pki / "ca.crt"), load_key(pki / "ca.key")
    key = new_key("ecdsa")
    cert = sign_leaf(LeafSpec("kube-apiserver-kubelet-client", ("kubeadm:cluster-admins", MASTERS),
                              (EKU.CLIENT_AUTH, EKU.SERVER_AUTH)), key, ca, ca_key)
    _plant(pki, "apiserver-kubelet-client", cert, key)
    report = check(read_dir(pki))
    msgs = [f.message for f in report.findings if f.control.id == "KW-PKI-011"]
    assert any("groups (O) are [kubeadm:cluster-admins, system:masters]" in m for m in msgs)
    assert any("extended key usages are clientAuth, serverAuth, want clientAuth" in m for m in msgs)
    masters = [f for f in report.findings if f.control.id == "KW-PKI-012"]
    assert masters and masters[0].severity.label == "critical"
    with pytest.raises(RotationRefused):
        rotate(pki, names=["apiserver-kubelet-client"])


def test_legacy_masters_profile_is_renewed_but_reported(pki: Path) -> None:
    """Older kubeadm gave apiserver-kubelet-client O=system:masters: still its slot's profile (renewed as is, like
    `kubeadm certs renew`), and pki check says it is cluster-admin RBAC cannot revoke."""
    ca, ca_key = load_cert(pki / "ca.crt"), load_key(pki / "ca.key")
    key = load_key(pki / "apiserver-kubelet-client.key")
    legacy = sign_leaf(LeafSpec("kube-apiserver-kubelet-client", (MASTERS,), (EKU.CLIENT_AUTH,)), key, ca, ca_key)
    write_cert(pki / "apiserver-kubelet-client.crt", legacy, force=True)
    done = rotate(pki, names=["apiserver-kubelet-client"])
    assert [r.name for r in done] == ["apiserver-kubelet-client"]
    assert _orgs(load_cert(pki / "apiserver-kubelet-client.crt")) == [MASTERS]
    found = [f for f in check(read_dir(pki)).findings if f.control.id == "KW-PKI-012"]
    assert len(found) == 1 and "older kubeadm profile" in found[0].message


def test_fresh_init_fits_every_slot_and_has_no_masters(pki: Path) -> None:
    for d in LEAVES:
        assert slot_problems(d, load_cert(pki / f"{d.base}.crt")) == [], d.name
    ids = {f.control.id for f in check(read_dir(pki)).findings}
    assert not ids & {"KW-PKI-011", "KW-PKI-012"}


_MUTATIONS = ("cn", "masters", "server_auth", "no_eku", "san_on_client", "ca", "drop_fixed_san")


def _applies(d: object, mutation: str) -> bool:
    sans = getattr(d, "sans", "")
    if mutation == "san_on_client":
        return not sans
    if mutation == "drop_fixed_san":
        return sans in ("apiserver", "etcd-server")  # the SANs every kubeadm version puts there
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slot=st.sampled_from([d.name for d in LEAVES]), mutation=st.sampled_from(_MUTATIONS))
def test_any_mutation_of_a_slot_profile_is_a_misfit(pki_src: Path, slot: str, mutation: str) -> None:
    """Property: kubeadm's own certificate fits its slot, and each single change of identity or usage does not."""
    d = BY_NAME[slot]
    assume(_applies(d, mutation))
    spec = leaf_spec(d, InitOptions(node_name="cp1"))
    cn, orgs, usages, alt = spec.cn, spec.orgs, spec.usages, spec.alt
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs),
                         x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    is_ca = False
    if mutation == "cn":
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mallory")]) if d.cn else x509.Name([])
    elif mutation == "masters":
        subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in (*orgs, MASTERS)),
                             x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    elif mutation == "server_auth":
        usages = (EKU.CLIENT_AUTH, EKU.SERVER_AUTH) if usages == (EKU.SERVER_AUTH,) else (EKU.SERVER_AUTH,)
    elif mutation == "no_eku":
        usages = ()
    elif mutation == "san_on_client":
        alt = AltNames(["evil.example"])
    elif mutation == "drop_fixed_san":
        alt = AltNames(["cp1"])
    elif mutation == "ca":
        is_ca = True
    ca_base = BY_NAME[d.ca or ""].base
    ca, ca_key = load_cert(pki_src / f"{ca_base}.crt"), load_key(pki_src / f"{ca_base}.key")
    original = load_cert(pki_src / f"{d.base}.crt")
    assert slot_problems(d, original) == []
    cert = _cert_with(ca, ca_key, new_key("ecdsa"), subject, usages, alt, is_ca=is_ca)
    if mutation == "masters" and d.name in ("etcd-healthcheck-client", "apiserver-etcd-client"):
        assert slot_problems(d, cert) == []  # the older kubeadm profile of these slots
        return
    assert slot_problems(d, cert), (slot, mutation)


def _cert_with(ca: x509.Certificate, ca_key: object, key: object, subject: x509.Name,
               usages: tuple[x509.ObjectIdentifier, ...], alt: AltNames | None, *, is_ca: bool = False
               ) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
         .public_key(key.public_key())  # type: ignore[attr-defined]
         .serial_number(9).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if usages:
        b = b.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    ext = alt.extension() if alt else None
    if ext is not None:
        b = b.add_extension(ext, critical=False)
    return b.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]


def test_issue_user_masters_needs_allow_masters(pki: Path) -> None:
    res = run(cli, ["pki", "issue-user", str(pki), "root", "--group", MASTERS])
    assert res.exit_code == 2 and "--allow-masters" in res.output and "RBAC cannot revoke" in res.output
    assert not (pki / "users" / "root.crt").exists()
    res = run(cli, ["pki", "issue-user", str(pki), "root", "--group", MASTERS, "--allow-masters"])
    assert res.exit_code == 0, res.output
    assert _orgs(load_cert(pki / "users/root.crt")) == [MASTERS]
    found = [f for f in check(read_dir(pki)).findings if f.control.id == "KW-PKI-012"]
    assert [f.object.name for f in found] == ["users/root"] and "signed by the cluster CA" in found[0].message
    res = run(cli, ["pki", "check", str(pki), "-o", "json"])
    assert res.exit_code == 1
    doc = orjson.loads(res.output)
    assert any(f["control"]["id"] == "KW-PKI-012" and f["control"]["severity"] == "critical"
               for f in doc["findings"]) or "KW-PKI-012" in res.output


def test_rotate_users_refuses_masters_without_allow_and_foreign_users(pki: Path) -> None:
    assert run(cli, ["pki", "issue-user", str(pki), "root", "--group", MASTERS, "--allow-masters"]).exit_code == 0
    assert run(cli, ["pki", "issue-user", str(pki), "alice", "--group", "dev"]).exit_code == 0
    before = (pki / "users/root.crt").read_bytes()
    res = run(cli, ["pki", "rotate", str(pki), "--users"])
    assert res.exit_code == 2 and "users/root.crt: is in system:masters" in res.output
    assert (pki / "users/root.crt").read_bytes() == before
    res = run(cli, ["pki", "rotate", str(pki), "--users", "--allow-masters", "-o", "json"])
    assert res.exit_code == 0, res.output
    assert {"users/root", "users/alice"} <= {r["name"] for r in orjson.loads(res.stdout)["renewed"]}
    # a CA-signed certificate copied under another user's name is not that user's certificate
    shutil.copyfile(pki / "users/alice.crt", pki / "users/bob.crt")
    shutil.copyfile(pki / "users/alice.key", pki / "users/bob.key")
    res = run(cli, ["pki", "rotate", str(pki), "--cert", "users/bob"])
    assert res.exit_code == 2 and "users/bob.crt: CN is 'alice', want 'bob'" in res.output


def test_kubeconfig_out_dash_writes_stdout(pki: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(cli, ["pki", "issue-user", str(pki), "alice"]).exit_code == 0
    res = CliRunner().invoke(cli, ["pki", "kubeconfig", str(pki), "alice", "--server", "https://10.0.0.1:6443",
                                   "--out", "-"])
    assert res.exit_code == 0, res.output
    doc = yaml.safe_load(res.stdout)
    assert doc["kind"] == "Config" and doc["users"][0]["name"] == "alice"
    assert not (tmp_path / "-").exists()
    res = CliRunner().invoke(cli, ["pki", "issue-user", str(pki), "carol", "--kubeconfig-out", "-",
                                   "--server", "https://10.0.0.1:6443"])
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout)["users"][0]["name"] == "carol"
    assert not (tmp_path / "-").exists()
