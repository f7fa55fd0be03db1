"""Key generation and certificate signing with kubeadm's profile.

Upstream: cmd/kubeadm/app/util/pkiutil/pki_helpers.go (NewSignedCert, NewSelfSignedCACert, GeneratePrivateKey):
- RSA keys are 2048 bits (rsaKeySize) or ECDSA P-256 (EncryptionAlgorithm ECDSA-P256);
- CAs: KeyUsage digitalSignature|keyEncipherment|keyCertSign, basicConstraints CA:TRUE, 10 years (CAValidity);
- leaves: KeyUsage digitalSignature|keyEncipherment, the listed ExtKeyUsages, notBefore = the CA's notBefore,
  1 year (CertificateValidity), random serial in [1, MaxInt64), duplicate SANs removed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .files import PrivateKey

CA_DAYS = 3650
LEAF_DAYS = 365
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
KEY_TYPES = ("rsa", "ecdsa")


def new_key(key_type: str = "rsa", rsa_bits: int = 2048) -> PrivateKey:
    """kubeadm: ECDSA P-256, else RSA of rsaKeySize (2048)."""
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        if rsa_bits < 2048:
            raise ValueError("RSA keys must be at least 2048 bits")
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    raise ValueError(f"unknown key type {key_type!r} (one of: {', '.join(KEY_TYPES)})")


_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def is_dns1123_subdomain(name: str) -> bool:
    """apimachinery validation.IsDNS1123Subdomain: lowercase labels joined by dots, at most 253 characters."""
    return 0 < len(name) <= 253 and all(_DNS1123_LABEL.fullmatch(label) for label in name.split("."))


@dataclass(slots=True)
class AltNames:
    dns: list[str] = field(default_factory=list)
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = field(default_factory=list)

    def add(self, names: Iterable[str]) -> list[str]:
        """kubeadm appendSANsToAltNames: IPs to IPs, RFC 1123 (wildcard) subdomains to DNS; returns the rest."""
        rejected: list[str] = []
        for name in names:
            try:
                self.ips.append(ipaddress.ip_address(name))
            except ValueError:
                if is_dns1123_subdomain(name) or (name.startswith("*.") and is_dns1123_subdomain(name[2:])):
                    self.dns.append(name)
                else:
                    rejected.append(name)
        return rejected

    def dedup(self) -> AltNames:
        # RemoveDuplicateAltNames: DNS names sorted and unique (sets.List), IPs unique in first-seen order.
        ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        for ip in self.ips:
            if ip not in ips:
                ips.append(ip)
        return AltNames(sorted(set(self.dns)), ips)

    def extension(self) -> x509.SubjectAlternativeName | None:
        d = self.dedup()
        entries: list[x509.GeneralName] = [x509.DNSName(n) for n in d.dns]
        entries += [x509.IPAddress(ip) for ip in d.ips]
        return x509.SubjectAlternativeName(entries) if entries else None


def _name(cn: str, orgs: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _serial() -> int:
    return secrets.randbelow((1 << 63) - 2) + 1


def _sig_hash(key: PrivateKey) -> hashes.SHA256:
    return hashes.SHA256()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def new_ca(cn: str, key: PrivateKey, *, days: int = CA_DAYS, now: dt.datetime | None = None) -> x509.Certificate:
    """A self-signed CA as kubeadm's NewSelfSignedCACert."""
    start = now or _now()
    pub = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(pub)
        .serial_number(_serial())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
    )
    return builder.sign(key, _sig_hash(key))


@dataclass(frozen=True, slots=True)
class LeafSpec:
    cn: str
    orgs: tuple[str, ...] = ()
    usages: tuple[x509.ObjectIdentifier, ...] = ()
    alt: AltNames | None = None


def sign_leaf(spec: LeafSpec, pub_key: PrivateKey, ca_cert: x509.Certificate, ca_key: PrivateKey, *,
              days: int = LEAF_DAYS, now: dt.datetime | None = None, not_after: dt.datetime | None = None
              ) -> x509.Certificate:
    """kubeadm NewSignedCert: notBefore is the CA's notBefore, notAfter now + validity.

    `now` (for tests and back-dating) sets notBefore explicitly instead; `not_after` replaces now + validity (a
    certificate re-issued under a new CA keeps the expiry it had).
    """
    if not spec.cn:
        raise ValueError("must specify a CommonName")
    start = now or _now()
    not_before = now if now is not None else ca_cert.not_valid_before_utc
    pub = pub_key.public_key()
    not_after = not_after or start + dt.timedelta(days=days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(spec.cn, spec.orgs))
        .issuer_name(ca_cert.subject)
        .public_key(pub)
        .serial_number(_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                       critical=False)
    )
    if spec.usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(spec.usages)), critical=False)
    san = spec.alt.extension() if spec.alt else None
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, _sig_hash(ca_key))
