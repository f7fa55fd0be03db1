"""x509 authenticator semantics: user=CN, groups=O, chain to the client CA, clientAuth EKU, validity."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.cli.main import cli
from kubeward.engines.authn import AUTHENTICATED_GROUP, authenticate, eku_allows
from kubeward.pki.files import cert_pem
from kubeward.pki.issue import LeafSpec, new_ca, new_key, sign_leaf

CA_KEY = new_key("ecdsa")
CA = new_ca("kubernetes", CA_KEY)
OTHER_KEY = new_key("ecdsa")
OTHER = new_ca("kubernetes", OTHER_KEY)  # same subject, different key: must still be rejected
NOW = dt.datetime.now(dt.UTC)


def leaf(cn: str = "alice", orgs: tuple[str, ...] = ("dev",), usages=(EKU.CLIENT_AUTH,), ca=CA, ca_key=CA_KEY,
         now: dt.datetime | None = None, days: int = 365):
    return sign_leaf(LeafSpec(cn, orgs, usages), new_key("ecdsa"), ca, ca_key, now=now, days=days)


def test_user_and_groups() -> None:
    r = authenticate([leaf(orgs=("dev", "system:masters"))], [CA])
    assert r.authenticated and r.user == "alice" and r.groups == ("dev", "system:masters")
    assert r.effective_groups[-1] == AUTHENTICATED_GROUP


def test_wrong_ca_same_subject() -> None:
    r = authenticate([leaf(ca=OTHER, ca_key=OTHER_KEY)], [CA])
    assert not r.authenticated and "unknown authority" in r.reason


def test_server_only_eku_rejected() -> None:
    r = authenticate([leaf(usages=(EKU.SERVER_AUTH,))], [CA])
    assert not r.authenticated and "incompatible key usage" in r.reason


def test_no_eku_and_any_eku_accepted() -> None:
    assert authenticate([leaf(usages=())], [CA]).authenticated
    assert authenticate([leaf(usages=(EKU.ANY_EXTENDED_KEY_USAGE,))], [CA]).authenticated


def test_expired_and_not_yet_valid() -> None:
    r = authenticate([leaf(now=NOW - dt.timedelta(days=10), days=1)], [CA])
    assert not r.authenticated and "expired or is not yet valid" in r.reason and "is after" in r.reason
    r = authenticate([leaf(now=NOW + dt.timedelta(days=10))], [CA])
    assert not r.authenticated and "is before" in r.reason


def _raw_cert(subject_cn: str | None, issuer, issuer_key, key, *, ca: bool):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "team")]
    if subject_cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, subject_cn))
    b = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(issuer.subject)
         .public_key(key.public_key()).serial_number(7).not_valid_before(NOW - dt.timedelta(hours=1))
         .not_valid_after(NOW + dt.timedelta(days=5))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return b.sign(issuer_key, hashes.SHA256())


def test_v1_root_may_sign_but_v3_non_ca_may_not() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = new_key("ecdsa")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old-root")])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
         .serial_number(1).not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=9)))
    v3_no_bc = b.sign(key, hashes.SHA256())  # v3 without basicConstraints: not a CA for Go
    user = _raw_cert("bob", v3_no_bc, key, new_key("ecdsa"), ca=False)
    assert not authenticate([user], [v3_no_bc]).authenticated


def test_empty_cn_yields_no_user() -> None:
    r = authenticate([_raw_cert(None, CA, CA_KEY, new_key("ecdsa"), ca=False)], [CA])
    assert not r.authenticated and "no Common Name" in r.reason


def test_intermediate_from_presented_chain() -> None:
    inter_key = new_key("ecdsa")
    inter = _raw_cert("intermediate", CA, CA_KEY, inter_key, ca=True)
    user = leaf(ca=inter, ca_key=inter_key)
    assert not authenticate([user], [CA]).authenticated  # intermediate not offered
    r = authenticate([user, inter], [CA])
    assert r.authenticated and len(r.chain) == 3
    fake_key = new_key("ecdsa")
    not_ca = _raw_cert("intermediate", CA, CA_KEY, fake_key, ca=False)  # not a CA: cannot be a parent
    assert not authenticate([leaf(ca=not_ca, ca_key=fake_key), not_ca], [CA]).authenticated


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["none", "client", "server", "any"]), min_size=1, max_size=3))
def test_eku_chain_rule(members: list[str]) -> None:
    """checkChainForKeyUsage: the chain allows clientAuth iff no member restricts EKUs without clientAuth/any."""
    table = {"none": (), "client": (EKU.CLIENT_AUTH,), "server": (EKU.SERVER_AUTH,),
             "any": (EKU.ANY_EXTENDED_KEY_USAGE,)}
    chain = [leaf(usages=table[m]) for m in members]
    expected = all(m != "server" for m in members)
    assert eku_allows(chain, EKU.CLIENT_AUTH) is expected


def test_cli_whoami(tmp_path: Path) -> None:
    (tmp_path / "u.crt").write_bytes(cert_pem(leaf(orgs=("a", "b"))))
    (tmp_path / "ca.crt").write_bytes(cert_pem(CA))
    (tmp_path / "other.crt").write_bytes(cert_pem(OTHER))
    run = CliRunner().invoke
    res = run(cli, ["authn", "whoami", str(tmp_path / "u.crt"), "--ca", str(tmp_path / "ca.crt"), "-o", "json"])
    assert res.exit_code == 0
    assert orjson.loads(res.output)["groups"] == ["a", "b"]
    res = run(cli, ["authn", "whoami", str(tmp_path / "u.crt"), "--ca", str(tmp_path / "other.crt")])
    assert res.exit_code == 1 and "rejected:" in res.output
    (tmp_path / "junk.crt").write_text("nope")
    res = run(cli, ["authn", "whoami", str(tmp_path / "junk.crt"), "--ca", str(tmp_path / "ca.crt")])
    assert res.exit_code == 2 and "junk.crt: no PEM certificate found" in res.output


@pytest.mark.parametrize("missing", ["cert", "ca"])
def test_cli_missing_file(tmp_path: Path, missing: str) -> None:
    (tmp_path / "x.crt").write_bytes(cert_pem(CA))
    args = ["authn", "whoami", str(tmp_path / ("nope" if missing == "cert" else "x.crt")),
            "--ca", str(tmp_path / ("nope" if missing == "ca" else "x.crt"))]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "no such file" in res.output
