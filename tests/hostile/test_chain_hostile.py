"""A few KB of look-alike cross-signed intermediates must not make chain building explode (issue 16): `authn whoami`
and `pki check` end quickly with Go's reason ("signature check attempts limit reached")."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
from cryptography.x509.oid import NameOID

from kubeward.cli.main import cli
from kubeward.engines.authn import MAX_SIGNATURE_CHECKS, VerifyError, verify_chains
from kubeward.pki.files import MAX_BUNDLE_CERTS, load_cert, load_certs
from kubeward.pki.layout import InitOptions, init

run = CliRunner().invoke
NOW = dt.datetime.now(dt.UTC)
X = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "look-alike")])


def _cert(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey,
          *, ca: bool, serial: int) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(serial).not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=9))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([EKU.CLIENT_AUTH]), critical=False)
    return b.sign(signer, hashes.SHA256())


def explosive_bundle(keys: int = 6) -> tuple[list[x509.Certificate], x509.Certificate]:
    """A leaf and keys*(keys-1) intermediates, all named X, each key cross-signed by every other: every path
    through the keys is a candidate chain (factorially many), none reaches the root. Returns (bundle, root)."""
    ks = [ec.generate_private_key(ec.SECP256R1()) for _ in range(keys)]
    serial = itertools.count(2)
    inter = [_cert(X, X, a, b, ca=True, serial=next(serial)) for a, b in itertools.permutations(ks, 2)]
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mallory")]), X, leaf_key, ks[0], ca=False,
                 serial=1)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert(X, X, root_key, root_key, ca=True, serial=next(serial))  # same name, signs nothing
    return [leaf, *inter], root


def _pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@pytest.fixture(scope="module")
def bundle() -> tuple[list[x509.Certificate], x509.Certificate]:
    return explosive_bundle()


def test_bundle_is_a_few_kb(bundle: tuple[list[x509.Certificate], x509.Certificate]) -> None:
    assert len(_pem(bundle[0])) < 24_000


def test_verify_stops_at_the_signature_budget(bundle: tuple[list[x509.Certificate], x509.Certificate]) -> None:
    certs, root = bundle
    start = time.monotonic()
    with pytest.raises(VerifyError, match="signature check attempts limit reached"):
        verify_chains(certs[0], [root], certs[1:], now=NOW)
    assert time.monotonic() - start < 3.0


def test_time_budget_is_a_backstop(bundle: tuple[list[x509.Certificate], x509.Certificate]) -> None:
    certs, root = bundle
    with pytest.raises(VerifyError, match="chain building stopped after 0s"):
        verify_chains(certs[0], [root], certs[1:], now=NOW, time_budget=0.0)


def test_authn_whoami_returns_quickly_with_the_reason(tmp_path: Path,
                                                       bundle: tuple[list[x509.Certificate], x509.Certificate]) -> None:
    certs, root = bundle
    (tmp_path / "client.pem").write_bytes(_pem(certs))
    (tmp_path / "ca.pem").write_bytes(_pem([root]))
    start = time.monotonic()
    res = run(cli, ["authn", "whoami", str(tmp_path / "client.pem"), "--ca", str(tmp_path / "ca.pem")])
    assert time.monotonic() - start < 5.0
    assert res.exit_code == 1 and "signature check attempts limit reached" in res.output


def test_pki_check_returns_quickly_with_the_reason(tmp_path: Path,
                                                   bundle: tuple[list[x509.Certificate], x509.Certificate]) -> None:
    """The bundle in a kubeadm slot, its look-alike root as the slot's CA next to other CAs of the same name."""
    certs, root = bundle
    pki = tmp_path / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    (pki / "front-proxy-ca.crt").write_bytes(_pem([root]))
    (pki / "front-proxy-client.crt").write_bytes(_pem(certs))
    (pki / "front-proxy-client.key").unlink()
    for i, c in enumerate(certs[1:12]):
        (pki / f"lookalike-{i}.crt").write_bytes(_pem([c, *certs[1:]]))
    start = time.monotonic()
    res = run(cli, ["pki", "check", str(pki), "-o", "json"])
    assert time.monotonic() - start < 20.0
    assert res.exit_code == 1 and "signature check attempts limit reached" in res.output


def test_already_in_chain_uses_subject_and_key_not_der() -> None:
    """Go's alreadyInChain: a re-signed copy of a CA already in the chain (same subject and key) is skipped, so a
    chain through one key twice is never built."""
    certs, root = explosive_bundle(keys=3)
    with pytest.raises(VerifyError) as err:
        verify_chains(certs[0], [root], certs[1:], now=NOW)
    assert "unknown authority" in str(err.value)  # 3 keys: few paths, all exhausted within the budget
    assert MAX_SIGNATURE_CHECKS == 100


def test_oversized_bundle_is_refused(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    one = (pki / "ca.crt").read_bytes()
    big = tmp_path / "big.pem"
    big.write_bytes(one * (MAX_BUNDLE_CERTS + 1))
    res = run(cli, ["authn", "whoami", str(big), "--ca", str(pki / "ca.crt")])
    assert res.exit_code == 2 and f"more than the {MAX_BUNDLE_CERTS}" in res.output
    assert len(load_certs(pki / "ca.crt")) == 1 and load_cert(pki / "ca.crt")
    shutil.rmtree(pki)


def test_a_folder_of_bundles_stops_at_the_certificate_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubeward.pki import inventory

    pki = tmp_path / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    monkeypatch.setattr(inventory, "MAX_CERTS", 5)
    inv = inventory.read_dir(pki)
    assert len(inv.certs) == 5
    assert [e.message for e in inv.errors] == ["not read: the folder holds more than 5 certificates"]
