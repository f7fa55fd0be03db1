"""`pki issue-user`: a client certificate the x509 authenticator maps to user=CN, groups=O, and a kubeconfig."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from .. import safefile
from .errors import PkiError
from .files import (
    PrivateKey,
    cert_pem,
    key_matches,
    key_pem,
    load_cert,
    load_key,
    write_file,
    write_files,
)
from .issue import CLIENT_AUTH, LeafSpec, new_key, sign_leaf


def _safe(name: str) -> str:
    bad = set('/\\\0') | {"..", "."}
    if not name or name in bad or any(ch in name for ch in '/\\\0'):
        raise PkiError(f"{name!r}: not usable as a user name for file names")
    return name


USERS = "users"  # DIR/users: the client certificates `pki issue-user` writes, signed by the cluster CA
USERS_DIR_MODE = 0o700


def user_files(root: Path, user: str) -> tuple[Path, Path]:
    """DIR/users/NAME.crt and .key: where `pki issue-user` writes a user's certificate and key."""
    crt = root / USERS / f"{_safe(user)}.crt"
    return crt, crt.with_suffix(".key")


def load_user(root: Path, user: str) -> tuple[Path, x509.Certificate, PrivateKey, x509.Certificate]:
    """An issued user's certificate file, certificate, key and the cluster CA certificate; a key that does not
    match its certificate is an error."""
    crt, key_path = user_files(root, user)
    cert, key = load_cert(crt), load_key(key_path)
    if not key_matches(cert, key):
        raise PkiError(f"{key_path}: does not match {crt}")
    return crt, cert, key, load_cert(root / "ca.crt")


def issue_user(root: Path, user: str, groups: Sequence[str], *, days: int = 365, key_type: str | None = None,
               force: bool = False, allow_masters: bool = False
               ) -> tuple[Path, Path, x509.Certificate, PrivateKey, x509.Certificate]:
    """Sign DIR/users/NAME.{crt,key} with the cluster CA (ca.crt/ca.key). A system:masters certificate is
    cluster-admin that no RBAC change can take away (the privileged-group authorizer allows it before RBAC is asked:
    apiserver/pkg/authorization/authorizerfactory/builtin.go, wired first in pkg/kubeapiserver/authorizer/config.go),
    so it is only issued with `allow_masters`."""
    from .layout import MASTERS_GROUP

    if MASTERS_GROUP in groups and not allow_masters:
        raise PkiError(f"{user}: refusing to issue a {MASTERS_GROUP} certificate without allow_masters")
    crt_path, key_path = user_files(root, user)  # an unusable name fails before anything is signed
    ca_cert, ca_key = load_cert(root / "ca.crt"), load_key(root / "ca.key")
    if not key_matches(ca_cert, ca_key):
        raise PkiError(f"{root / 'ca.key'}: does not match {root / 'ca.crt'}")
    if key_type is None:
        key_type = "ecdsa" if isinstance(ca_key, ec.EllipticCurvePrivateKey) else "rsa"
    key = new_key(key_type)
    cert = sign_leaf(LeafSpec(user, tuple(groups), (CLIENT_AUTH,)), key, ca_cert, ca_key, days=days)
    for p in (crt_path, key_path):
        if os.path.lexists(p) and not force:
            raise PkiError(f"{p}: already exists (use --force to overwrite)")
    try:  # users' private keys: the folder is the owner's alone, whatever the umask
        safefile.ensure_dir(crt_path.parent, USERS_DIR_MODE)
    except safefile.SafeFileError as exc:
        raise PkiError(str(exc)) from None
    write_files([(key_path, key_pem(key), 0o600), (crt_path, cert_pem(cert), 0o644)], force=force)
    return crt_path, key_path, cert, key, ca_cert


def kubeconfig(user: str, server: str, cluster: str, ca_cert: x509.Certificate, cert: x509.Certificate,
               key: PrivateKey) -> str:
    """A kubeconfig embedding the CA, the client cert and key (as `kubeadm kubeconfig user` writes)."""
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    context = f"{user}@{cluster}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server,
                                                    "certificate-authority-data": b64(cert_pem(ca_cert))}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem(cert)),
                                          "client-key-data": b64(key_pem(key))}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write_kubeconfig(path: Path, text: str, *, force: bool) -> None:
    write_file(path, text.encode(), mode=0o600, force=force)  # it embeds a private key
