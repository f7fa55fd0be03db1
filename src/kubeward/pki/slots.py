"""Does a certificate fit the slot it sits in? One predicate for `pki rotate` (which refuses to re-sign a misfit)
and `pki check` (which reports it).

Whoever can write a PKI folder can drop any certificate and key into a kubeadm slot; re-signing it from the CA
would hand them a CA-signed identity of their choosing (say O=system:masters). So a slot's certificate is renewed
only when it is what kubeadm puts there — cmd/kubeadm/app/phases/certs/certlist.go (CN, O, ExtKeyUsages; SANs from
pkiutil GetAPIServerAltNames / getAltNames) — and user certificates only when they are what `pki issue-user`
writes: CN=NAME of users/NAME.crt, clientAuth only, no SANs.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from .issue import CLIENT_AUTH
from .layout import MASTERS_GROUP, CertDef

# Names GetAPIServerAltNames puts on every apiserver certificate whatever the configuration.
APISERVER_FIXED_DNS = ("kubernetes", "kubernetes.default", "kubernetes.default.svc")


def cn_of(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def orgs_of(cert: x509.Certificate) -> tuple[str, ...]:
    """The groups the x509 authenticator derives (Subject.Organization, in order)."""
    return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))


def _ekus(cert: x509.Certificate) -> set[x509.ObjectIdentifier] | None:
    try:
        return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def _sans(cert: x509.Certificate) -> list[x509.GeneralName] | None:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _eku_names(oids: set[x509.ObjectIdentifier] | None) -> str:
    if oids is None:
        return "none (any purpose)"
    return ", ".join(sorted(getattr(o, "_name", o.dotted_string) for o in oids)) or "none"


def _fmt_orgs(orgs: tuple[str, ...]) -> str:
    return "[" + ", ".join(orgs) + "]"


def _common(cert: x509.Certificate, cn: str | None, orgs: tuple[tuple[str, ...], ...],
            usages: set[x509.ObjectIdentifier]) -> list[str]:
    problems: list[str] = []
    if _is_ca(cert):
        problems.append("is a CA certificate")
    got_cn = cn_of(cert)
    if cn is not None and got_cn != cn:
        problems.append(f"CN is {got_cn!r}, want {cn!r}")
    elif cn is None and not got_cn:
        problems.append("has no CN")
    got_orgs = orgs_of(cert)
    if got_orgs not in orgs:
        want = " or ".join(_fmt_orgs(o) for o in orgs)
        problems.append(f"groups (O) are {_fmt_orgs(got_orgs)}, want {want}")
    got_ekus = _ekus(cert)
    if got_ekus != usages:
        problems.append(f"extended key usages are {_eku_names(got_ekus)}, want {_eku_names(usages)}")
    return problems


def slot_problems(d: CertDef, cert: x509.Certificate) -> list[str]:
    """Why `cert` is not what kubeadm puts in slot `d` (empty: it fits). The CA signature is checked apart."""
    usages = {u for u in d.usages if isinstance(u, x509.ObjectIdentifier)}
    problems = _common(cert, d.cn or None, d.accepted_orgs, usages)
    sans = _sans(cert)
    if not d.sans:
        if sans is not None:
            problems.append("has subject alternative names; kubeadm's client certificates have none")
        return problems
    entries = sans or []
    odd = [n for n in entries if not isinstance(n, x509.DNSName | x509.IPAddress)]
    if odd:
        problems.append(f"has subject alternative names other than DNS and IP ({type(odd[0]).__name__})")
    dns = {str(n.value) for n in entries if isinstance(n, x509.DNSName)}
    if d.sans == "apiserver":
        missing = [n for n in APISERVER_FIXED_DNS if n not in dns]
        if missing:
            problems.append(f"lacks the SAN {missing[0]} that every kubeadm apiserver certificate has")
    elif d.sans == "etcd-server" and "localhost" not in dns:
        problems.append("lacks the SAN localhost that every kubeadm etcd server certificate has")
    return problems


def user_problems(name: str, cert: x509.Certificate, *, allow_masters: bool) -> list[str]:
    """Why `cert` is not what `pki issue-user NAME` writes (CN=NAME, clientAuth only, no SANs); a system:masters
    certificate also needs `allow_masters`."""
    orgs = orgs_of(cert)
    problems = _common(cert, name, (orgs,), {CLIENT_AUTH})
    if _sans(cert) is not None:
        problems.append("has subject alternative names; user certificates have none")
    if MASTERS_GROUP in orgs and not allow_masters:
        problems.append(f"is in {MASTERS_GROUP} (cluster-admin that RBAC cannot revoke): renewing it needs "
                        "--allow-masters")
    return problems
