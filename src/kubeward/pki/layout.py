"""The kubeadm certificate tree, with its separate etcd CA, and `pki init`.

Upstream: cmd/kubeadm/app/phases/certs/certlist.go (GetDefaultCertList: names, CAs, CN/O, ExtKeyUsages) and
cmd/kubeadm/app/util/pkiutil/pki_helpers.go (GetAPIServerAltNames, getAltNames for etcd server/peer);
file names from cmd/kubeadm/app/constants/constants.go.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import PkiError
from .files import PrivateKey, cert_pem, key_pem, write_files
from .issue import (
    CA_DAYS,
    CLIENT_AUTH,
    LEAF_DAYS,
    SERVER_AUTH,
    AltNames,
    LeafSpec,
    new_ca,
    new_key,
    sign_leaf,
)

MASTERS_GROUP = "system:masters"  # kubeadmconstants.MastersGroup
# kubeadmconstants.ClusterAdminsGroupAndClusterRoleBinding: bound to cluster-admin by an ordinary
# ClusterRoleBinding (kubeadm:cluster-admins), so, unlike system:masters, RBAC can take it away.
CLUSTER_ADMINS_GROUP = "kubeadm:cluster-admins"


@dataclass(frozen=True, slots=True)
class CertDef:
    name: str       # kubeadm's cert name (`kubeadm certs check-expiration` column)
    base: str       # path of <base>.crt / <base>.key relative to the PKI dir
    ca: str | None  # name of the signing CA; None for a CA
    cn: str = ""    # "" = node name (etcd server/peer: setCommonNameToNodeName)
    orgs: tuple[str, ...] = ()
    usages: tuple[object, ...] = ()
    sans: str = ""  # "" | "apiserver" | "etcd-server" | "etcd-peer"
    # Every O set kubeadm has ever written for this slot (`orgs`, what `pki init` writes, is the current one).
    accepted_orgs: tuple[tuple[str, ...], ...] = ((),)


# cmd/kubeadm/app/phases/certs/certlist.go (current): apiserver-kubelet-client has O=kubeadm:cluster-admins and the
# etcd client certificates no O; older kubeadm gave all three O=system:masters, so renewing such a slot keeps it.
CAS: tuple[CertDef, ...] = (
    CertDef("ca", "ca", None, "kubernetes"),
    CertDef("front-proxy-ca", "front-proxy-ca", None, "front-proxy-ca"),
    CertDef("etcd-ca", "etcd/ca", None, "etcd-ca"),
)
LEAVES: tuple[CertDef, ...] = (
    CertDef("apiserver", "apiserver", "ca", "kube-apiserver", usages=(SERVER_AUTH,), sans="apiserver"),
    CertDef("apiserver-kubelet-client", "apiserver-kubelet-client", "ca", "kube-apiserver-kubelet-client",
            (CLUSTER_ADMINS_GROUP,), (CLIENT_AUTH,), accepted_orgs=((CLUSTER_ADMINS_GROUP,), (MASTERS_GROUP,))),
    CertDef("front-proxy-client", "front-proxy-client", "front-proxy-ca", "front-proxy-client",
            usages=(CLIENT_AUTH,)),
    # etcd 3.2+ needs clientAuth on the server cert too (certlist.go TODO referencing etcd#9785).
    CertDef("etcd-server", "etcd/server", "etcd-ca", "", usages=(SERVER_AUTH, CLIENT_AUTH), sans="etcd-server"),
    CertDef("etcd-peer", "etcd/peer", "etcd-ca", "", usages=(SERVER_AUTH, CLIENT_AUTH), sans="etcd-peer"),
    CertDef("etcd-healthcheck-client", "etcd/healthcheck-client", "etcd-ca", "kube-etcd-healthcheck-client",
            (), (CLIENT_AUTH,), accepted_orgs=((), (MASTERS_GROUP,))),
    CertDef("apiserver-etcd-client", "apiserver-etcd-client", "etcd-ca", "kube-apiserver-etcd-client",
            (), (CLIENT_AUTH,), accepted_orgs=((), (MASTERS_GROUP,))),
)
ALL: tuple[CertDef, ...] = CAS + LEAVES
BY_NAME = {d.name: d for d in ALL}


@dataclass(frozen=True, slots=True)
class InitOptions:
    node_name: str = "control-plane"
    advertise_address: str = "127.0.0.1"
    service_cidr: str = "10.96.0.0/12"
    dns_domain: str = "cluster.local"
    apiserver_sans: Sequence[str] = ()
    etcd_sans: Sequence[str] = ()
    key_type: str = "rsa"
    rsa_bits: int = 2048
    days: int = LEAF_DAYS
    ca_days: int = CA_DAYS
    force: bool = False


def _warn_rejected(names: list[str], kind: str) -> None:
    """kubeadm skips such SANs with a warning; so do we (on stderr)."""
    for name in names:
        print(f"kubeward: warning: {name!r} was not added to the {kind} SANs: not a valid IP or RFC 1123 DNS name",
              file=sys.stderr)


def alt_names(kind: str, o: InitOptions) -> AltNames | None:
    """The SANs kubeadm puts on each serving cert."""
    try:
        advertise = ipaddress.ip_address(o.advertise_address)
        # GetAPIServerVirtualIP: the first address of the service subnet.
        service_ip: ipaddress.IPv4Address | ipaddress.IPv6Address = next(
            ipaddress.ip_network(o.service_cidr, strict=False).hosts())  # type: ignore[assignment]
    except ValueError as exc:
        raise PkiError(f"invalid address: {exc}") from None
    alt = AltNames()
    if kind == "apiserver":
        alt.dns += [o.node_name, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    f"kubernetes.default.svc.{o.dns_domain}"]
        alt.ips += [service_ip, advertise]
        _warn_rejected(alt.add(o.apiserver_sans), kind)
        return alt
    if kind in ("etcd-server", "etcd-peer"):
        alt.dns += [o.node_name, "localhost"]
        alt.ips += [advertise, ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
        _warn_rejected(alt.add(o.etcd_sans), kind)  # kubeadm: serverCertSANs / peerCertSANs; one flag feeds both
        return alt
    return None


def leaf_spec(d: CertDef, o: InitOptions) -> LeafSpec:
    return LeafSpec(d.cn or o.node_name, d.orgs, tuple(d.usages), alt_names(d.sans, o) if d.sans else None)  # type: ignore[arg-type]


def _preflight(root: Path, force: bool) -> None:
    if force:
        return
    existing = [p for d in ALL for p in (root / f"{d.base}.crt", root / f"{d.base}.key") if p.exists()]
    existing += [p for p in (root / "sa.key", root / "sa.pub") if p.exists()]
    if existing:
        raise PkiError(f"{existing[0]}: already exists (use --force to overwrite)")


def init(root: Path, o: InitOptions) -> list[Path]:
    """Create the whole tree; refuses to touch any existing file unless `force` (checked before writing)."""
    _preflight(root, o.force)
    specs = {d.name: leaf_spec(d, o) for d in LEAVES}  # bad addresses fail here, before any file is written
    files: list[tuple[Path, bytes, int]] = []
    cas: dict[str, tuple[object, PrivateKey]] = {}

    def add(base: str, cert: object, key: PrivateKey) -> None:
        files.append((root / f"{base}.crt", cert_pem(cert), 0o644))  # type: ignore[arg-type]
        files.append((root / f"{base}.key", key_pem(key), 0o600))

    for d in CAS:
        key = new_key(o.key_type, o.rsa_bits)
        cert = new_ca(d.cn, key, days=o.ca_days)
        add(d.base, cert, key)
        cas[d.name] = (cert, key)
    for d in LEAVES:
        assert d.ca is not None
        ca_cert, ca_key = cas[d.ca]
        key = new_key(o.key_type, o.rsa_bits)
        cert = sign_leaf(specs[d.name], key, ca_cert, ca_key, days=o.days)  # type: ignore[arg-type]
        add(d.base, cert, key)
    # The service-account signing pair is always RSA in kubeadm (CreateServiceAccountKeyAndPublicKeyFiles).
    sa = rsa.generate_private_key(public_exponent=65537, key_size=max(o.rsa_bits, 2048))
    pub = sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    files += [(root / "sa.key", key_pem(sa), 0o600), (root / "sa.pub", pub, 0o644)]
    write_files(files, force=o.force)  # the whole tree or nothing (a full disk leaves no half PKI)
    written = [p for p, _, _ in files]
    return written
