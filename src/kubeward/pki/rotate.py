"""`pki rotate`: renew the kubeadm leaf certificates from their CAs, keeping the CAs.

Like `kubeadm certs renew` (cmd/kubeadm/app/phases/certs/renewal): the new certificate keeps the old
subject, SANs and ExtKeyUsages; the key is reused unless new keys are asked for. Unlike a blind re-signature, only
a certificate the slot's CA issued and that is what the slot holds (slots.py) is renewed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from .errors import PkiError
from .files import PrivateKey, cert_pem, key_matches, key_pem, load_cert, load_key, write_files
from .inventory import key_description
from .issue import AltNames, LeafSpec, new_key, sign_leaf
from .layout import BY_NAME, LEAVES
from .slots import slot_problems, user_problems
from .users import USERS, user_files


@dataclass(frozen=True, slots=True)
class Renewal:
    name: str
    file: str
    old_not_after: dt.datetime
    new_not_after: dt.datetime
    new_key: bool

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "file": self.file, "newKey": self.new_key,
                "oldNotAfter": self.old_not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "newNotAfter": self.new_not_after.strftime("%Y-%m-%dT%H:%M:%SZ")}


def spec_from(cert: x509.Certificate) -> LeafSpec:
    from cryptography.x509.oid import NameOID

    cn = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    try:
        usages = tuple(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = ()
    alt = AltNames()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        alt.dns = list(san.get_values_for_type(x509.DNSName))
        alt.ips = list(san.get_values_for_type(x509.IPAddress))  # type: ignore[arg-type]
    except x509.ExtensionNotFound:
        pass
    return LeafSpec(cn[0] if cn else "", orgs, usages, alt)


def _key_type(key: PrivateKey) -> tuple[str, int]:
    kind, size = key_description(key.public_key())
    return ("ecdsa", size) if kind.startswith("ECDSA") else ("rsa", size)



def rotate(root: Path, *, days: int = 365, new_keys: bool = False, names: list[str] | None = None,
           users: bool = False, allow_masters: bool = False) -> list[Renewal]:
    """Renew every kubeadm leaf present (or the named ones) and, with `users`, every client certificate under
    users/ (`users/NAME` names one). Everything is checked before anything is written: a missing or mismatched CA
    key, a certificate its slot's CA did not sign, or one that is not what its slot holds (slots.py) is an error
    naming every refused certificate, never a silent skip and never a re-signature."""
    wanted = names or [d.name for d in LEAVES]
    user_names = [n for n in wanted if n.startswith(f"{USERS}/")]
    wanted = [n for n in wanted if n not in user_names]
    user_crts = []
    for n in user_names:
        try:
            user_crts.append(user_files(root, n[len(USERS) + 1:])[0])
        except PkiError:
            raise PkiError(f"{n}: not a user certificate name (users/NAME, as `pki issue-user` writes it)") from None
    unknown = [n for n in wanted if n not in BY_NAME or BY_NAME[n].ca is None]
    if unknown:
        raise PkiError(f"{unknown[0]}: not a kubeadm leaf certificate (one of: {', '.join(d.name for d in LEAVES)}, "
                       f"or {USERS}/NAME)")
    plan: list[_Plan] = []
    refused: list[str] = []
    for name in wanted:
        d = BY_NAME[name]
        crt = root / f"{d.base}.crt"
        if not crt.exists():
            if names:
                raise PkiError(f"{crt}: no such file")
            continue
        p = _planned(name, root, crt, BY_NAME[d.ca or ""].base)
        refused += p.problems(slot_problems(d, p.cert))
        plan.append(p)
    if users:
        user_crts += sorted(p for p in (root / USERS).glob("*.crt") if p not in user_crts)
    for crt in user_crts:
        if not crt.exists():
            raise PkiError(f"{crt}: no such file")
        p = _planned(crt.relative_to(root).with_suffix("").as_posix(), root, crt, BY_NAME["ca"].base)
        refused += p.problems(user_problems(crt.stem, p.cert, allow_masters=allow_masters))
        plan.append(p)
    if refused:
        raise RotationRefused(refused, len({line.partition(": ")[0] for line in refused}))
    if not plan:
        raise PkiError(f"{root}: no certificates to renew")
    out: list[Renewal] = []
    files: list[tuple[Path, bytes, int]] = []
    for p in plan:
        key = p.key
        if new_keys:
            kind, size = _key_type(key)
            key = new_key(kind, max(size, 2048) if kind == "rsa" else 2048)
            files.append((p.key_path, key_pem(key), 0o600))
        new = sign_leaf(spec_from(p.cert), key, p.ca_cert, p.ca_key, days=days)
        files.append((p.crt, cert_pem(new), 0o644))
        out.append(Renewal(p.name, p.crt.relative_to(root).as_posix(), p.cert.not_valid_after_utc,
                           new.not_valid_after_utc, new_keys))
    write_files(files, force=True)  # all renewed or none: never a new key beside its old certificate
    return out


class RotationRefused(PkiError):
    """Certificates that are not what their slot holds: one line each, nothing was written."""

    def __init__(self, lines: list[str], certificates: int) -> None:
        super().__init__(f"{certificates} certificate{'s' if certificates > 1 else ''} refused (not what "
                         f"{'their slots hold' if certificates > 1 else 'its slot holds'}); nothing renewed")
        self.lines, self.certificates = lines, certificates


@dataclass(frozen=True, slots=True)
class _Plan:
    name: str
    crt: Path
    key_path: Path
    cert: x509.Certificate
    key: PrivateKey
    ca_cert: x509.Certificate
    ca_key: PrivateKey
    foreign: str | None  # why the CA did not issue it, if it did not

    def problems(self, fit: list[str]) -> list[str]:
        return [f"{self.crt}: {why}" for why in ([self.foreign] if self.foreign else []) + fit]


def _planned(name: str, root: Path, crt: Path, ca_base: str) -> _Plan:
    """One renewal, checked: the CA key matches its certificate, the leaf key matches the leaf, and the leaf was
    signed by that CA (the slot's own: etcd certificates by etcd/ca, front-proxy-client by front-proxy-ca), so a
    certificate from another CA, or self-signed, is never re-issued by this one."""
    ca_crt, ca_key_path = root / f"{ca_base}.crt", root / f"{ca_base}.key"
    key_path = crt.with_suffix(".key")
    ca_cert, ca_key = load_cert(ca_crt), load_key(ca_key_path)
    if not key_matches(ca_cert, ca_key):
        raise PkiError(f"{ca_key_path}: does not match {ca_crt}")
    cert, key = load_cert(crt), load_key(key_path)
    if not key_matches(cert, key):
        raise PkiError(f"{key_path}: does not match {crt}")
    try:
        cert.verify_directly_issued_by(ca_cert)
        foreign = None
    except (ValueError, TypeError, InvalidSignature):
        foreign = f"not signed by {ca_crt}; only certificates its CA issued are renewed"
    return _Plan(name, crt, key_path, cert, key, ca_cert, ca_key, foreign)
