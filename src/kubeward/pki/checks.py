"""`pki check`: judge a PKI directory and produce Findings (the DESIGN.md JSON contract).

What kube-bench cannot see: chains are verified (crypto/x509 semantics, see engines/authn.py), the etcd CA is
really a different CA, and the cluster CA really cannot validate the etcd serving certificates.
The checks are registered in the one control registry: shape `certificate` (receives one certificate of the
folder, the inventory and the time; yields (JSON pointer, message)) and shape `pki` (receives the inventory and
the time; yields (certificate, JSON pointer, message)).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..controls.registry import Control, Shape, control, meta_of, registered
from ..engines.authn import VerifyError, verify_chains
from ..findings import ControlMeta, ControlResult, Finding, Location, ObjectRef, Report
from .inventory import CertFile, Inventory, key_description
from .layout import MASTERS_GROUP
from .slots import orgs_of, slot_problems

EXPIRY_WARN = dt.timedelta(days=30)


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


Hit = tuple[str, str]


def _cert_check(id: str, title: str, severity: str, remediation: str, frameworks: tuple[str, ...] = ()) -> Any:
    return control(id, title, severity, "pki", frameworks=frameworks, remediation=remediation,
                   shape=Shape.CERTIFICATE)


@_cert_check("KW-PKI-001", "Certificate expired or not yet valid", "critical",
             "Renew it (`kubeward pki rotate DIR` or `kubeadm certs renew`).")
def expired(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """The certificate is valid now (notBefore <= now <= notAfter): Go's x509 verification refuses it otherwise,
    so the component using it cannot authenticate or serve. Upstream: crypto/x509 verify.go (isValid);
    kubeadm certificate management (kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-certs/)."""
    for meta, pointer, message in time_hits(cf.cert, now):
        if meta.id == "KW-PKI-001":
            yield pointer, message


@_cert_check("KW-PKI-002", "Certificate expires within 30 days", "medium",
             "Renew it before expiry (`kubeward pki rotate DIR`).", ("nsa",))
def expiring(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """A valid certificate expires within 30 days: kubeadm renews certificates only on upgrade or by hand, and an
    expired control-plane certificate takes the cluster down. Upstream: kubeadm certs check-expiration
    (kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-certs/)."""
    for meta, pointer, message in time_hits(cf.cert, now):
        if meta.id == "KW-PKI-002":
            yield pointer, message


@_cert_check("KW-PKI-003", "Certificate does not chain to its CA", "high",
             "Re-issue the certificate from the CA that components trust for it.")
def chain(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """A certificate in a kubeadm slot verifies against the CA of that slot (ca, etcd/ca or front-proxy-ca), with
    Go's chain rules: otherwise its peers refuse it. Upstream: crypto/x509 verify.go; kubeadm's certificate list
    (cmd/kubeadm/app/phases/certs/certlist.go)."""
    if cf.role is None or cf.role.ca is None:
        return
    ca = inv.by_name(cf.role.ca)
    if ca is None:
        yield "/issuer", f"its CA {cf.role.ca} ({cf.role.ca.replace('etcd-ca', 'etcd/ca')}.crt) is missing"
        return
    err = _try_chain(cf, [ca.cert], now)
    if err is not None and "expired or is not yet valid" not in err:
        yield "/issuer", f"not verifiable with {ca.rel}: {err}"


@_cert_check("KW-PKI-004", "Extended key usage does not fit the certificate's role", "high",
             "Re-issue with the kubeadm profile: serving certs serverAuth, client certs clientAuth only.")
def eku(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """A leaf's extended key usages fit its slot: serving certificates have serverAuth, client certificates
    clientAuth and not serverAuth, and none is valid for any purpose (no EKU, or anyExtendedKeyUsage), so a
    stolen client certificate cannot serve as the apiserver. Upstream: kubeadm certlist.go; crypto/x509
    verify.go (ExtKeyUsage checks)."""
    ekus = _ekus(cf.cert)
    if cf.is_ca:
        return
    name = cf.role.name if cf.role else None
    has_server = ekus is None or ExtendedKeyUsageOID.SERVER_AUTH in ekus
    has_client = ekus is None or ExtendedKeyUsageOID.CLIENT_AUTH in ekus
    if ekus is None:
        yield "/extensions/extendedKeyUsage", "no extended key usage: valid for any purpose"
        return
    if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in ekus:
        yield "/extensions/extendedKeyUsage", "anyExtendedKeyUsage: valid for any purpose"
    if name in SERVING and not has_server:
        yield "/extensions/extendedKeyUsage", "serving certificate lacks serverAuth"
    if (name in CLIENT_ONLY or name in ("etcd-server", "etcd-peer")) and not has_client:
        yield "/extensions/extendedKeyUsage", "client certificate lacks clientAuth"
    if name in CLIENT_ONLY and ExtendedKeyUsageOID.SERVER_AUTH in ekus:
        yield "/extensions/extendedKeyUsage", "client certificate also allows serverAuth"


@_cert_check("KW-PKI-006", "Weak key or signature algorithm", "high",
             "Use RSA >= 2048 bits or ECDSA P-256+, signed with SHA-256 or stronger.", ("nsa",))
def weak_key(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """The key is RSA of at least 2048 bits or ECDSA of at least 256, not DSA, and the signature is not SHA-1 or
    MD5 (Go's x509 no longer accepts SHA-1 signatures; NIST SP 800-131A). Upstream: crypto/x509 x509.go
    (InsecureAlgorithmError); NSA/CISA Kubernetes Hardening Guide."""
    pub = cf.cert.public_key()
    kind, size = key_description(pub)
    if isinstance(pub, rsa.RSAPublicKey) and size < 2048:
        yield "/subjectPublicKeyInfo", f"RSA key of {size} bits (< 2048)"
    elif isinstance(pub, ec.EllipticCurvePublicKey) and size < 256:
        yield "/subjectPublicKeyInfo", f"{kind} key of {size} bits (< 256)"
    elif kind == "DSA":
        yield "/subjectPublicKeyInfo", "DSA key"
    algo = cf.cert.signature_hash_algorithm
    if isinstance(algo, hashes.SHA1 | hashes.MD5):
        yield "/signatureAlgorithm", f"signed with {algo.name}"


@_cert_check("KW-PKI-007", "Private key readable by others than its owner", "high", "chmod 600 the key file.",
             ("cis-1.1.21",))
def key_perms(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """The certificate's private key file (and sa.key) grants nothing to group or others (mode 0600 or
    stricter): a readable CA key lets any local user issue cluster identities. Upstream: CIS 1.1.21 (kube-bench
    cfg/cis-1.12/master.yaml)."""
    if cf.key_path is not None and cf.key_mode is not None and cf.key_mode & 0o077:
        yield "/key/mode", f"{cf.key_path.name} has mode {cf.key_mode:04o} (want 0600)"


@_cert_check("KW-PKI-008", "Private key not owned by root", "medium", "chown root:root the key file.",
             ("cis-1.1.19",))
def key_owner(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """The private key file is owned by root (judged only when kubeward runs as root, since only then are the
    folder's owners the node's). Upstream: CIS 1.1.19 (kube-bench cfg/cis-1.12/master.yaml)."""
    if cf.key_path is not None and cf.key_owner is not None and cf.key_owner != 0 and os.geteuid() == 0:
        yield "/key/owner", f"{cf.key_path.name} is owned by uid {cf.key_owner}"


@_cert_check("KW-PKI-009", "Private key does not match its certificate", "high",
             "Re-issue the certificate for this key, or restore the matching key.")
def key_mismatch(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """<name>.key is a readable private key whose public key is the certificate's: otherwise the component
    fails its TLS setup at start. Upstream: crypto/tls tls.go (X509KeyPair refuses a pair whose keys differ)."""
    if cf.key_path is None:
        return
    if cf.key_error:
        yield "/key", f"{cf.key_path.name}: {cf.key_error}"
    elif cf.key_mismatch:
        yield "/key", f"{cf.key_path.name} does not match the certificate's public key"


@_cert_check("KW-PKI-010", "Certificate without a private key", "medium",
             "Provide <name>.key next to <name>.crt (CA keys may be kept offline on purpose).")
def key_missing(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """A leaf certificate has its <name>.key next to it, as kubeadm lays the folder out; CAs are exempt (an
    offline CA key is kubeadm's external-CA mode). Upstream: kubeadm certlist.go, external CA mode
    (kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-certs/)."""
    if cf.key_path is None and not cf.is_ca:
        yield "/key", f"no private key {cf.path.with_suffix('.key').name} next to it"


@_cert_check("KW-PKI-011", "Certificate is not what its kubeadm slot holds", "high",
             "Find out who put it there; re-issue the slot's certificate from its CA with kubeadm's profile "
             "(`pki rotate` refuses to re-sign it).")
def slot(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """A certificate in a kubeadm slot has the subject, groups, SANs and key usages kubeadm puts there (pki/slots.py):
    a different certificate in a well-known file is a credential someone planted or a misissue. Upstream:
    cmd/kubeadm/app/phases/certs/certlist.go."""
    if cf.role is None or cf.role.ca is None:
        return
    for why in slot_problems(cf.role, cf.cert):
        yield "/subject", f"{cf.rel} {why}"


@_cert_check("KW-PKI-012", "Client certificate in system:masters", "critical",
             "Revoke by rotating the CA, or let it expire; issue certificates for groups bound by RBAC "
             "(e.g. kubeadm:cluster-admins) instead.", ("nsa",))
def masters(cf: CertFile, inv: Inventory, now: dt.datetime) -> Iterator[Hit]:
    """No client certificate the apiserver accepts has O=system:masters: that group is cluster-admin before RBAC
    is consulted (the privileged-group authorizer), no binding can be removed to stop it, and the apiserver
    checks no revocation list. kubeadm >= 1.29 keeps exactly one such credential, super-admin.conf, outside the
    folder. Certificates only etcd's CA validates are skipped: etcd ignores O. Upstream:
    staging/src/k8s.io/apiserver/pkg/authorization/authorizerfactory/builtin.go; kubeadm certlist.go."""
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
    yield "/subject/O", f"O={MASTERS_GROUP}, {where}: cluster-admin that RBAC cannot revoke{legacy}"


def client_capable(cert: x509.Certificate) -> bool:
    """The certificate may authenticate a client (no EKU, clientAuth or anyExtendedKeyUsage): crypto/x509
    verify.go's key-usage check as the apiserver's x509 authenticator runs it."""
    ekus = _ekus(cert)
    return ekus is None or ExtendedKeyUsageOID.CLIENT_AUTH in ekus or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in ekus


def time_hits(c: x509.Certificate, now: dt.datetime) -> Iterator[tuple[ControlMeta, str, str]]:
    """Expired or not yet valid (KW-PKI-001), or within EXPIRY_WARN of its end (KW-PKI-002): the one validity
    predicate, for the PKI folder and every other place a certificate sits (kubeconfigs, kubelet PKI, webhook CA
    bundles; `creds audit`)."""
    if now < c.not_valid_before_utc:
        yield meta_of("KW-PKI-001"), "/notBefore", f"not valid before {c.not_valid_before_utc:%Y-%m-%d %H:%M}Z"
    elif now > c.not_valid_after_utc:
        yield meta_of("KW-PKI-001"), "/notAfter", f"expired on {c.not_valid_after_utc:%Y-%m-%d %H:%M}Z"
    elif c.not_valid_after_utc - now < EXPIRY_WARN:
        left = (c.not_valid_after_utc - now).days
        yield meta_of("KW-PKI-002"), "/notAfter", f"expires on {c.not_valid_after_utc:%Y-%m-%d}Z ({left} days left)"


@control("KW-PKI-005", "etcd does not use a separate CA", "critical", "pki", frameworks=("nsa", "cis-2.7"),
         shape=Shape.PKI,
         remediation="Create a dedicated etcd CA (etcd/ca.crt) and re-issue etcd and apiserver-etcd-client certs.")
def ca_shared(inv: Inventory, now: dt.datetime) -> Iterator[tuple[CertFile, str, str]]:
    """etcd/ca.crt exists and is another CA than ca.crt (another key), and the cluster CA validates neither
    etcd's serving nor its peer certificate: if one CA signs both, any client certificate of the cluster reaches
    etcd, which has no authorization of its own. Upstream: kubeadm's separate etcd CA
    (kubernetes.io/docs/setup/best-practices/certificates/); CIS 2.7 (kube-bench cfg/cis-1.12/etcd.yaml)."""
    cluster, etcd = inv.by_name("ca"), inv.by_name("etcd-ca")
    if cluster is None:
        return
    if etcd is None:
        if any(c.rel.startswith("etcd/") for c in inv.certs):
            yield cluster, "/", "no etcd/ca.crt: etcd certificates have no separate CA"
        return
    if cluster.cert.public_key() == etcd.cert.public_key() or cluster.cert == etcd.cert:
        yield etcd, "/subjectPublicKeyInfo", "etcd CA is the cluster CA (same key)"
    for name in ("etcd-server", "etcd-peer"):
        leaf = inv.by_name(name)
        if leaf is not None and _try_chain(leaf, [cluster.cert], now) is None:
            yield leaf, "/issuer", f"the cluster CA ({cluster.rel}) validates {leaf.rel}: any " \
                "cluster-CA client cert could reach etcd"


EXPIRED, EXPIRING, CHAIN, EKU = (meta_of(f"KW-PKI-00{i}") for i in (1, 2, 3, 4))
CA_SHARED, WEAK_KEY, KEY_PERMS, KEY_OWNER, KEY_MISMATCH = (meta_of(f"KW-PKI-00{i}") for i in (5, 6, 7, 8, 9))
KEY_MISSING, SLOT, MASTERS = (meta_of(f"KW-PKI-0{i}") for i in (10, 11, 12))


# The metadata other readers of certificates report under (creds audit: kubeconfigs, kubelet PKI, CA bundles).
EXPIRED, EXPIRING, KEY_PERMS, KEY_OWNER, MASTERS = (
    meta_of(f"KW-PKI-{n:03d}") for n in (1, 2, 7, 8, 12))


def pki_checks() -> dict[str, Control]:
    """The checks of `pki check`, by id."""
    return registered(Shape.CERTIFICATE, Shape.PKI)


def _ref(cf: CertFile) -> ObjectRef:
    return ObjectRef("kubeward.io/v1", "Certificate", None, cf.name)


def _loc(path: Path) -> Location:
    try:
        return Location(file=os.path.relpath(path))
    except ValueError:
        return Location(file=str(path))


def check(inv: Inventory, *, now: dt.datetime | None = None, controls: list[Control] | None = None) -> Report:
    """Judge the folder with `controls` (default: every check of `pki check`)."""
    now = now or dt.datetime.now(dt.UTC)
    chosen = list(pki_checks().values()) if controls is None else controls
    findings: list[Finding] = []
    results = {c.meta.id: ControlResult(c.meta) for c in chosen}

    def add(cf: CertFile, c: Control, path: str, message: str) -> None:
        loc_path = cf.key_path if path.startswith("/key") and cf.key_path else cf.path
        findings.append(Finding(c.meta, _ref(cf), _loc(loc_path), path, message))

    per_cert = [c for c in chosen if c.shape == Shape.CERTIFICATE]
    for cf in inv.certs:
        for c in per_cert:
            hits = list(c.func(cf, inv, now))
            for path, message in hits:
                add(cf, c, path, message)
            results[c.meta.id].evaluated += 1
            results[c.meta.id].failed += bool(hits)
    for c in chosen:
        if c.shape == Shape.PKI:
            sep = list(c.func(inv, now))
            for cf, path, message in sep:
                add(cf, c, path, message)
            judged = bool(inv.by_name("ca") and inv.by_name("etcd-ca")) or bool(sep)  # no etcd: not assessed
            results[c.meta.id].evaluated = int(judged)
            results[c.meta.id].failed = 1 if sep else 0
    if KEY_PERMS.id in results and inv.sa_key_mode is not None and inv.sa_key_mode & 0o077:
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
