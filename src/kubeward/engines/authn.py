"""The apiserver's x509 client-certificate authenticator, reproduced exactly.

Upstream: staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go
- the request's first peer certificate is the leaf; the rest are offered as intermediates;
- it is verified against the --client-ca-file pool with DefaultVerifyOptions (KeyUsages: [ClientAuth]),
  i.e. Go's crypto/x509 Certificate.Verify: validity window of every cert in the chain, parents must be CAs
  whose signature checks out, and the ExtKeyUsage of every chain member must allow clientAuth
  (no EKU extension or anyExtendedKeyUsage means any; crypto/x509/verify.go checkChainForKeyUsage);
- CommonNameUserConversion: user = Subject.CommonName, groups = Subject.Organization; an empty CN yields no user
  (the request continues unauthenticated), not an error;
- the authenticated-group adder (pkg/authentication/group/authenticated_group_adder.go) then appends
  `system:authenticated`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AUTHENTICATED_GROUP = "system:authenticated"
MAX_CHAIN = 10  # longest path searched (leaf + 9 parents); Go's own bound is the signature-check budget below
MAX_SIGNATURE_CHECKS = 100  # crypto/x509/verify.go maxChainSignatureChecks
TIME_BUDGET = 2.0  # seconds one verification may take, whatever the pool


class VerifyError(Exception):
    """Why Go's verifier would refuse the chain, in its own words where it has them."""


@dataclass(frozen=True, slots=True)
class AuthnResult:
    authenticated: bool
    user: str | None = None
    groups: tuple[str, ...] = ()
    reason: str = ""
    chain: tuple[x509.Certificate, ...] = field(default=(), repr=False)

    @property
    def effective_groups(self) -> tuple[str, ...]:
        if not self.authenticated or AUTHENTICATED_GROUP in self.groups:
            return self.groups
        return (*self.groups, AUTHENTICATED_GROUP)

    def to_json(self) -> dict[str, object]:
        d: dict[str, object] = {"authenticated": self.authenticated}
        if self.authenticated:
            d.update(user=self.user, groups=list(self.groups), effectiveGroups=list(self.effective_groups))
        else:
            d["reason"] = self.reason
        return d


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def _fmt(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_time(cert: x509.Certificate, now: dt.datetime) -> None:
    # crypto/x509 isValid: "certificate has expired or is not yet valid: current time X is before/after Y"
    if now < cert.not_valid_before_utc:
        raise VerifyError(f"x509: certificate has expired or is not yet valid: current time {_fmt(now)} "
                          f"is before {_fmt(cert.not_valid_before_utc)}")
    if now > cert.not_valid_after_utc:
        raise VerifyError(f"x509: certificate has expired or is not yet valid: current time {_fmt(now)} "
                          f"is after {_fmt(cert.not_valid_after_utc)}")


def _is_ca(cert: x509.Certificate) -> bool:
    """CheckSignatureFrom: a v3 parent needs basicConstraints CA:TRUE; a v1 parent (no extensions) may sign."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.version == x509.Version.v1


def _ekus(cert: x509.Certificate) -> list[x509.ObjectIdentifier] | None:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def eku_allows(chain: Sequence[x509.Certificate], usage: x509.ObjectIdentifier) -> bool:
    """checkChainForKeyUsage: every member without EKU or with anyExtendedKeyUsage passes; others must list it."""
    for cert in chain:
        ekus = _ekus(cert)
        if ekus is None or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in ekus:
            continue
        if usage not in ekus:
            return False
    return True


def _signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _name_der(name: x509.Name) -> bytes:
    return name.public_bytes()


def _san_der(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.public_bytes()
    except x509.ExtensionNotFound:
        return None


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _already_in_chain(candidate: x509.Certificate, chain: Sequence[x509.Certificate]) -> bool:
    """alreadyInChain: the same subject, public key and SAN as a member counts as that member, so re-signed
    copies of one CA cannot lengthen a path."""
    key = (_name_der(candidate.subject), _spki(candidate), _san_der(candidate))
    return any((_name_der(c.subject), _spki(c), _san_der(c)) == key for c in chain)


def verify_chains(leaf: x509.Certificate, roots: Sequence[x509.Certificate],
                  intermediates: Sequence[x509.Certificate] = (), *,
                  usage: x509.ObjectIdentifier | None = ExtendedKeyUsageOID.CLIENT_AUTH,
                  now: dt.datetime | None = None, time_budget: float = TIME_BUDGET) -> list[tuple[x509.Certificate, ...]]:
    """All chains leaf→root that Go's Certificate.Verify would accept, or VerifyError with its reason.

    buildChains' bounds (crypto/x509/verify.go): parents are only the pool's certificates whose subject is the
    child's issuer (CertPool.findPotentialParents), a candidate already in the chain is skipped (alreadyInChain),
    and one verification makes at most maxChainSignatureChecks (100) signature checks. A bundle of look-alike
    cross-signed intermediates therefore ends in Go's "signature check attempts limit reached" instead of an
    exponential search; the depth (MAX_CHAIN) and wall-clock time are bounded too."""
    now = now or dt.datetime.now(dt.UTC)
    _check_time(leaf, now)
    root_ders = {r.public_bytes(Encoding.DER) for r in roots}
    by_subject: dict[bytes, list[tuple[bool, x509.Certificate]]] = {}
    for is_root, pool in ((True, roots), (False, intermediates)):
        for c in pool:
            by_subject.setdefault(_name_der(c.subject), []).append((is_root, c))
    found: list[tuple[x509.Certificate, ...]] = []
    time_error: list[VerifyError] = []
    sig_checks = 0
    deadline = time.monotonic() + time_budget
    limit: list[VerifyError] = []

    def extend(chain: tuple[x509.Certificate, ...]) -> None:
        nonlocal sig_checks
        child = chain[-1]
        if len(chain) > 1 and child.public_bytes(Encoding.DER) in root_ders:
            found.append(chain)
            return
        if len(chain) > MAX_CHAIN:
            return
        for is_root, parent in by_subject.get(_name_der(child.issuer), ()):
            if limit:
                return
            if _already_in_chain(parent, chain) or not _is_ca(parent):
                continue
            sig_checks += 1
            if sig_checks > MAX_SIGNATURE_CHECKS:
                limit.append(VerifyError("x509: signature check attempts limit reached while verifying "
                                         "certificate chain"))
                return
            if time.monotonic() > deadline:
                limit.append(VerifyError(f"x509: chain building stopped after {time_budget:g}s "
                                         f"({sig_checks} signature checks)"))
                return
            if not _signed_by(child, parent):
                continue
            try:
                _check_time(parent, now)
            except VerifyError as exc:
                time_error.append(exc)
                continue
            if is_root:
                found.append((*chain, parent))
            else:
                extend((*chain, parent))

    if leaf.public_bytes(Encoding.DER) in root_ders:
        found.append((leaf,))  # Verify: a leaf that is itself a root is its own chain
    else:
        extend((leaf,))
    if not found:
        if limit:
            raise limit[0]
        if time_error:
            raise time_error[0]
        raise VerifyError("x509: certificate signed by unknown authority")
    if usage is not None:
        ok = [c for c in found if eku_allows(c, usage)]
        if not ok:
            raise VerifyError("x509: certificate specifies an incompatible key usage")
        found = ok
    return found


def authenticate(presented: Sequence[x509.Certificate], client_ca: Sequence[x509.Certificate], *,
                 now: dt.datetime | None = None) -> AuthnResult:
    """What the x509 authenticator derives from the presented certificates (leaf first)."""
    if not presented:
        return AuthnResult(False, reason="no client certificate presented")
    if not client_ca:
        return AuthnResult(False, reason="empty client CA bundle: x509 authentication is disabled")
    try:
        chains = verify_chains(presented[0], client_ca, presented[1:], now=now)
    except VerifyError as exc:
        return AuthnResult(False, reason=f"verifying certificate failed: {exc}")
    for chain in chains:
        cn = _attr(chain[0].subject, NameOID.COMMON_NAME)
        if cn and cn[0]:
            groups = tuple(_attr(chain[0].subject, NameOID.ORGANIZATION_NAME))
            return AuthnResult(True, cn[0], groups, chain=chain)
    return AuthnResult(False, reason="certificate has no Common Name: no user is derived (request stays anonymous)")

