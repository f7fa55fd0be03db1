"""`pki rotate`: renew the kubeadm leaf certificates from their CAs, keeping the CAs.

Like `kubeadm certs renew` (cmd/kubeadm/app/phases/certs/renewal): the new certificate keeps the old
subject, SANs and ExtKeyUsages; the key is reused unless new keys are asked for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from .errors import PkiError
from .files import PrivateKey, key_matches, load_cert, load_key, write_cert, write_key
from .inventory import key_description
from .issue import AltNames, LeafSpec, new_key, sign_leaf
from .layout import BY_NAME, LEAVES
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
           users: bool = False) -> list[Renewal]:
    """Renew every kubeadm leaf present (or the named ones) and, with `users`, every client certificate under
    users/ (`users/NAME` names one). Everything is checked before anything is written: a missing or mismatched CA
    key, or a user certificate the cluster CA did not sign, is an error, never a silent skip."""
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
    plan: list[tuple[str, Path, Path, x509.Certificate, PrivateKey, x509.Certificate, PrivateKey]] = []
    for name in wanted:
        d = BY_NAME[name]
        crt = root / f"{d.base}.crt"
        if not crt.exists():
            if names:
                raise PkiError(f"{crt}: no such file")
            continue
        plan.append(_planned(name, root, crt, BY_NAME[d.ca or ""].base))
    if users:
        user_crts += sorted(p for p in (root / USERS).glob("*.crt") if p not in user_crts)
    for crt in user_crts:
        if not crt.exists():
            raise PkiError(f"{crt}: no such file")
        plan.append(_planned(crt.relative_to(root).with_suffix("").as_posix(), root, crt, BY_NAME["ca"].base, issued=True))
    if not plan:
        raise PkiError(f"{root}: no certificates to renew")
    out: list[Renewal] = []
    for name, crt, key_path, cert, key, ca_cert, ca_key in plan:
        if new_keys:
            kind, size = _key_type(key)
            key = new_key(kind, max(size, 2048) if kind == "rsa" else 2048)
        new = sign_leaf(spec_from(cert), key, ca_cert, ca_key, days=days)
        if new_keys:
            write_key(key_path, key, force=True)
        write_cert(crt, new, force=True)
        out.append(Renewal(name, crt.relative_to(root).as_posix(), cert.not_valid_after_utc,
                           new.not_valid_after_utc, new_keys))
    return out


def _planned(name: str, root: Path, crt: Path, ca_base: str, *, issued: bool = False
             ) -> tuple[str, Path, Path, x509.Certificate, PrivateKey, x509.Certificate, PrivateKey]:
    """One renewal, checked: the CA key matches its certificate, the leaf key matches the leaf, and (`issued`)
    the leaf was signed by that CA, so a certificate from another CA is never silently re-issued by this one."""
    ca_crt, ca_key_path = root / f"{ca_base}.crt", root / f"{ca_base}.key"
    key_path = crt.with_suffix(".key")
    ca_cert, ca_key = load_cert(ca_crt), load_key(ca_key_path)
    if not key_matches(ca_cert, ca_key):
        raise PkiError(f"{ca_key_path}: does not match {ca_crt}")
    cert, key = load_cert(crt), load_key(key_path)
    if not key_matches(cert, key):
        raise PkiError(f"{key_path}: does not match {crt}")
    if issued:
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            raise PkiError(f"{crt}: not signed by {ca_crt}; only certificates of the cluster CA are renewed") from None
    return (name, crt, key_path, cert, key, ca_cert, ca_key)
