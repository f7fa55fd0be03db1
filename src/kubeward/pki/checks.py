"""`pki check`: judge a PKI directory and produce Findings (the DESIGN.md JSON contract).

What kube-bench cannot see: chains are verified (crypto/x509 semantics, see engines/authn.py), the etcd CA is
really a different CA, and the cluster CA really cannot validate the etcd serving certificates.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..engines.authn import VerifyError, verify_chains
from ..findings import ControlMeta, ControlResult, Finding, Location, ObjectRef, Report, Severity
from .inventory import CertFile, Inventory, key_description
from .layout import MASTERS_GROUP
from .slots import orgs_of, slot_problems

EXPIRY_WARN = dt.timedelta(days=30)


def _meta(id: str, title: str, sev: Severity, remediation: str, frameworks: tuple[str, ...] = ()) -> ControlMeta:
    return ControlMeta(id, title, sev, "pki", frameworks, remediation)


EXPIRED = _meta("KW-PKI-001", "Certificate expired or not yet valid", Severity.CRITICAL,
                "Renew it (`kubeward pki rotate DIR` or `kubeadm certs renew`).")
EXPIRING = _meta("KW-PKI-002", "Certificate expires within 30 days", Severity.MEDIUM,
                 "Renew it before expiry (`kubeward pki rotate DIR`).", ("nsa",))
CHAIN = _meta("KW-PKI-003", "Certificate does not chain to its CA", Severity.HIGH,
              "Re-issue the certificate from the CA that components trust for it.")
EKU = _meta("KW-PKI-004", "Extended key usage does not fit the certificate's role", Severity.HIGH,
            "Re-issue with the kubeadm profile: serving certs serverAuth, client certs clientAuth only.")
CA_SHARED = _meta("KW-PKI-005", "etcd does not use a separate CA", Severity.CRITICAL,
                  "Create a dedicated etcd CA (etcd/ca.crt) and re-issue etcd and apiserver-etcd-client certs.",
                  ("nsa", "cis-2.7"))
WEAK_KEY = _meta("KW-PKI-006", "Weak key or signature algorithm", Severity.HIGH,
                 "Use RSA >= 2048 bits or ECDSA P-256+, signed with SHA-256 or stronger.", ("nsa",))
KEY_PERMS = _meta("KW-PKI-007", "Private key readable by others than its owner", Severity.HIGH,
                  "chmod 600 the key file.", ("cis-1.1.21",))
KEY_OWNER = _meta("KW-PKI-008", "Private key not owned by root", Severity.MEDIUM,
                  "chown root:root the key file.", ("cis-1.1.19",))
KEY_MISMATCH = _meta("KW-PKI-009", "Private key does not match its certificate", Severity.HIGH,
                     "Re-issue the certificate for this key, or restore the matching key.")
KEY_MISSING = _meta("KW-PKI-010", "Certificate without a private key", Severity.MEDIUM,
                    "Provide <name>.key next to <name>.crt (CA keys may be kept offline on purpose).")
SLOT = _meta("KW-PKI-011", "Certificate is not what its kubeadm slot holds", Severity.HIGH,
             "Find out who put it there; re-issue the slot's certificate from its CA with kubeadm's profile "
             "(`pki rotate` refuses to re-sign it).")
MASTERS = _meta("KW-PKI-012", "Client certificate in system:masters", Severity.CRITICAL,
                "Revoke by rotating the CA, or let it expire; issue certificates for groups bound by RBAC "
                "(e.g. kubeadm:cluster-admins) instead.", ("nsa",))
CONTROLS = (EXPIRED, EXPIRING, CHAIN, EKU, CA_SHARED, WEAK_KEY, KEY_PERMS, KEY_OWNER, KEY_MISMATCH, KEY_MISSING,
            SLOT, MASTERS)
MAX_ISSUER_CANDIDATES = 16  # CAs tried to name a certificate's signer (same subject as its issuer first)

SERVING = {"apiserver", "etcd-server", "etcd-peer"}
CLIENT_ONLY = {"apiserver-kubelet-client", "front-proxy-client", "etcd-healthcheck-client", "apiserver-etcd-client"}


def _ekus(cert: x509.Certificate) -> list[x509.ObjectIdentifier] | None:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def _try_chain(cf: CertFile, roots: list[x509.Certificate], now: dt.datetime) -> str | None:
    try:
        verify_chains(cf.cert, roots, cf.extra, usage=None, now=now)
    except VerifyError as exc:
        return str(exc)
    return None


def _issuer_of(cf: CertFile, inv: Inventory, now: dt.datetime) -> CertFile | None:
    """The folder's CA that validates `cf`: only CAs whose subject is its issuer, a bounded number of them, so a
    folder of thousands of look-alike CAs costs a bounded number of signature checks per certificate."""
    named = [ca for ca in inv.cas() if ca is not cf and ca.cert.subject == cf.cert.issuer]
    for ca in named[:MAX_ISSUER_CANDIDATES]:
        if _try_chain(cf, [ca.cert], now) is None:
            return ca
    return None


def _slot_hits(cf: CertFile) -> Iterator[tuple[ControlMeta, str, str]]:
    if cf.role is None or cf.role.ca is None:
        return
    for why in slot_problems(cf.role, cf.cert):
        yield SLOT, "/subject", f"{cf.rel} {why}"


def client_capable(cert: x509.Certificate) -> bool:
    ekus = _ekus(cert)
    return ekus is None or ExtendedKeyUsageOID.CLIENT_AUTH in ekus or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in ekus


def _masters_hits(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[tuple[ControlMeta, str, str]]:
    """A client certificate with O=system:masters is cluster-admin before RBAC is consulted (the privileged-group
    authorizer, apiserver/pkg/authorization/authorizerfactory/builtin.go): no binding can be removed to stop it, and
    kube-apiserver checks no revocation list. kubeadm >= 1.29 keeps exactly one such credential, super-admin.conf
    (outside the PKI folder); admin.conf and, in current certlist.go, apiserver-kubelet-client use
    kubeadm:cluster-admins. Certificates only etcd's CA validates are skipped: etcd ignores O."""
    # A CA certificate is no exception: Go's Verify accepts one as the client's leaf (even a root the client CA
    # bundle holds is its own chain), and O is read from whatever leaf was presented.
    if MASTERS_GROUP not in orgs_of(cf.cert) or not client_capable(cf.cert):
        return
    cluster, etcd = inv.by_name("ca"), inv.by_name("etcd-ca")
    by_cluster = cluster is not None and _try_chain(cf, [cluster.cert], now) is None
    if not by_cluster and etcd is not None and _try_chain(cf, [etcd.cert], now) is None:
        return
    where = "signed by the cluster CA" if by_cluster else "if the apiserver trusts its issuer"
    legacy = " (an older kubeadm profile: current kubeadm gives this slot O=kubeadm:cluster-admins)" \
        if cf.role is not None and cf.role.name == "apiserver-kubelet-client" and not slot_problems(cf.role, cf.cert) \
        else ""
    yield MASTERS, "/subject/O", f"O={MASTERS_GROUP}, {where}: cluster-admin that RBAC cannot revoke{legacy}"


def _time_hits(cf: CertFile, now: dt.datetime) -> Iterator[tuple[ControlMeta, str, str]]:
    return time_hits(cf.cert, now)


def time_hits(c: x509.Certificate, now: dt.datetime) -> Iterator[tuple[ControlMeta, str, str]]:
    """Expired, not yet valid, or within EXPIRY_WARN of its end: the one validity predicate, for the PKI folder
    and every other place a certificate sits (kubeconfigs, kubelet PKI, webhook CA bundles; `creds audit`)."""
    if now < c.not_valid_before_utc:
        yield EXPIRED, "/notBefore", f"not valid before {c.not_valid_before_utc:%Y-%m-%d %H:%M}Z"
    elif now > c.not_valid_after_utc:
        yield EXPIRED, "/notAfter", f"expired on {c.not_valid_after_utc:%Y-%m-%d %H:%M}Z"
    elif c.not_valid_after_utc - now < EXPIRY_WARN:
        left = (c.not_valid_after_utc - now).days
        yield EXPIRING, "/notAfter", f"expires on {c.not_valid_after_utc:%Y-%m-%d}Z ({left} days left)"


def _chain_hits(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[tuple[ControlMeta, str, str]]:
    if cf.role is None or cf.role.ca is None:
        return
    ca = inv.by_name(cf.role.ca)
    if ca is None:
        yield CHAIN, "/issuer", f"its CA {cf.role.ca} ({cf.role.ca.replace('etcd-ca', 'etcd/ca')}.crt) is missing"
        return
    err = _try_chain(cf, [ca.cert], now)
    if err is not None and "expired or is not yet valid" not in err:
        yield CHAIN, "/issuer", f"not verifiable with {ca.rel}: {err}"


def _eku_hits(cf: CertFile) -> Iterator[tuple[ControlMeta, str, str]]:
    ekus = _ekus(cf.cert)
    if cf.is_ca:
        return
    name = cf.role.name if cf.role else None
    has_server = ekus is None or ExtendedKeyUsageOID.SERVER_AUTH in ekus
    has_client = ekus is None or ExtendedKeyUsageOID.CLIENT_AUTH in ekus
    if ekus is None:
        yield EKU, "/extensions/extendedKeyUsage", "no extended key usage: valid for any purpose"
        return
    if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in ekus:
        yield EKU, "/extensions/extendedKeyUsage", "anyExtendedKeyUsage: valid for any purpose"
    if name in SERVING and not has_server:
        yield EKU, "/extensions/extendedKeyUsage", "serving certificate lacks serverAuth"
    if (name in CLIENT_ONLY or name in ("etcd-server", "etcd-peer")) and not has_client:
        yield EKU, "/extensions/extendedKeyUsage", "client certificate lacks clientAuth"
    if name in CLIENT_ONLY and ExtendedKeyUsageOID.SERVER_AUTH in ekus:
        yield EKU, "/extensions/extendedKeyUsage", "client certificate also allows serverAuth"


def _weak_hits(cf: CertFile) -> Iterator[tuple[ControlMeta, str, str]]:
    pub = cf.cert.public_key()
    kind, size = key_description(pub)
    if isinstance(pub, rsa.RSAPublicKey) and size < 2048:
        yield WEAK_KEY, "/subjectPublicKeyInfo", f"RSA key of {size} bits (< 2048)"
    elif isinstance(pub, ec.EllipticCurvePublicKey) and size < 256:
        yield WEAK_KEY, "/subjectPublicKeyInfo", f"{kind} key of {size} bits (< 256)"
    elif kind == "DSA":
        yield WEAK_KEY, "/subjectPublicKeyInfo", "DSA key"
    algo = cf.cert.signature_hash_algorithm
    if isinstance(algo, hashes.SHA1 | hashes.MD5):
        yield WEAK_KEY, "/signatureAlgorithm", f"signed with {algo.name}"


def _key_hits(cf: CertFile) -> Iterator[tuple[ControlMeta, str, str]]:
    if cf.key_path is None:
        if not cf.is_ca:
            yield KEY_MISSING, "/key", f"no private key {cf.path.with_suffix('.key').name} next to it"
        return
    if cf.key_error:
        yield KEY_MISMATCH, "/key", f"{cf.key_path.name}: {cf.key_error}"
    elif cf.key_mismatch:
        yield KEY_MISMATCH, "/key", f"{cf.key_path.name} does not match the certificate's public key"
    if cf.key_mode is not None and cf.key_mode & 0o077:
        yield KEY_PERMS, "/key/mode", f"{cf.key_path.name} has mode {cf.key_mode:04o} (want 0600)"
    if cf.key_owner is not None and cf.key_owner != 0 and os.geteuid() == 0:
        yield KEY_OWNER, "/key/owner", f"{cf.key_path.name} is owned by uid {cf.key_owner}"


def _ca_separation(inv: Inventory, now: dt.datetime) -> Iterator[tuple[CertFile, ControlMeta, str, str]]:
    cluster, etcd = inv.by_name("ca"), inv.by_name("etcd-ca")
    if cluster is None or etcd is None:
        return
    if cluster.cert.public_key() == etcd.cert.public_key() or cluster.cert == etcd.cert:
        yield etcd, CA_SHARED, "/subjectPublicKeyInfo", "etcd CA is the cluster CA (same key)"
    for name in ("etcd-server", "etcd-peer"):
        leaf = inv.by_name(name)
        if leaf is not None and _try_chain(leaf, [cluster.cert], now) is None:
            yield leaf, CA_SHARED, "/issuer", f"the cluster CA ({cluster.rel}) validates {leaf.rel}: any " \
                "cluster-CA client cert could reach etcd"


def _ref(cf: CertFile) -> ObjectRef:
    return ObjectRef("kubeward.io/v1", "Certificate", None, cf.name)


def _loc(path: Path) -> Location:
    try:
        return Location(file=os.path.relpath(path))
    except ValueError:
        return Location(file=str(path))


def check(inv: Inventory, *, now: dt.datetime | None = None) -> Report:
    now = now or dt.datetime.now(dt.UTC)
    findings: list[Finding] = []
    results = {m.id: ControlResult(m) for m in CONTROLS}

    def add(cf: CertFile, meta: ControlMeta, path: str, message: str) -> None:
        loc_path = cf.key_path if path.startswith("/key") and cf.key_path else cf.path
        findings.append(Finding(meta, _ref(cf), _loc(loc_path), path, message))

    for cf in inv.certs:
        hits = [*_time_hits(cf, now), *_chain_hits(cf, inv, now), *_eku_hits(cf), *_weak_hits(cf), *_key_hits(cf),
                *_slot_hits(cf), *_masters_hits(cf, inv, now)]
        for meta, path, message in hits:
            add(cf, meta, path, message)
        failed = {m.id for m, _, _ in hits}
        for m in CONTROLS:
            if m is not CA_SHARED:
                results[m.id].evaluated += 1
                results[m.id].failed += m.id in failed
    sep = list(_ca_separation(inv, now))
    for cf, meta, path, message in sep:
        add(cf, meta, path, message)
    results[CA_SHARED.id].evaluated = 1 if inv.by_name("ca") and inv.by_name("etcd-ca") else 0
    results[CA_SHARED.id].failed = 1 if sep else 0
    if inv.by_name("ca") and not inv.by_name("etcd-ca") and any(c.rel.startswith("etcd/") for c in inv.certs):
        cluster_ca = inv.by_name("ca")
        assert cluster_ca is not None
        add(cluster_ca, CA_SHARED, "/", "no etcd/ca.crt: etcd certificates have no separate CA")
    if inv.sa_key_mode is not None and inv.sa_key_mode & 0o077:
        sa = inv.root / "sa.key"
        findings.append(Finding(KEY_PERMS, ObjectRef("kubeward.io/v1", "Key", None, "sa"), _loc(sa), "/key/mode",
                                f"sa.key has mode {inv.sa_key_mode:04o} (want 0600)"))
    findings.sort(key=lambda f: (-f.severity, f.object.name, f.control.id))
    return Report(objects=len(inv.certs), findings=findings, errors=list(inv.errors), controls=results)


def describe(cf: CertFile, inv: Inventory, now: dt.datetime) -> dict[str, object]:
    """One inventory row (subject, issuer, SANs, key, expiry and residual time, signing CA)."""
    from .inventory import short_duration

    c = cf.cert
    try:
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v) for v in san.get_values_for_type(x509.DNSName)]
        sans += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        sans = []
    kind, size = key_description(c.public_key())
    issuer = _issuer_of(cf, inv, now) if not (cf.is_ca and c.issuer == c.subject) else None
    ekus = _ekus(c)
    return {
        "name": cf.name,
        "file": cf.rel,
        "subject": c.subject.rfc4514_string(),
        # What the x509 authenticator makes of it: CN is the user, each O a group (authn engine).
        "commonName": next((str(a.value) for a in c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)), ""),
        "groups": [str(a.value) for a in c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)],
        "issuer": c.issuer.rfc4514_string(),
        "ca": cf.is_ca,
        "signedBy": issuer.name if issuer else (cf.name if cf.is_ca else None),
        "sans": sans,
        "extKeyUsage": [o._name for o in ekus] if ekus is not None else None,
        "key": {"type": kind, "bits": size},
        "notBefore": c.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notAfter": c.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "residual": short_duration(c.not_valid_after_utc - now),
        "keyMode": f"{cf.key_mode:04o}" if cf.key_mode is not None else None,
    }
