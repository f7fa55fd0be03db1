"""Reading a PKI directory: every certificate with its key, file modes and kubeadm role (if any)."""

from __future__ import annotations

import datetime as dt
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from ..findings import InputError
from .errors import PkiError
from .files import PrivateKey, key_matches, load_certs, load_key
from .layout import ALL, CertDef

MAX_FILES = 10_000
MAX_CERTS = 20_000  # certificates kept over the whole folder: a folder of huge bundles must not exhaust memory


@dataclass(slots=True)
class CertFile:
    path: Path
    rel: str                       # relative to the PKI dir, e.g. "etcd/server.crt"
    cert: x509.Certificate
    extra: list[x509.Certificate]  # intermediates bundled after the leaf
    role: CertDef | None
    key_path: Path | None = None
    key: PrivateKey | None = None
    key_mode: int | None = None
    key_owner: int | None = None
    key_error: str | None = None
    key_mismatch: bool = False

    @property
    def name(self) -> str:
        return self.role.name if self.role else self.rel.removesuffix(".crt")

    @property
    def is_ca(self) -> bool:
        try:
            return bool(self.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        except x509.ExtensionNotFound:
            return False


@dataclass(slots=True)
class Inventory:
    root: Path
    certs: list[CertFile] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    sa_key_mode: int | None = None
    _cas: list[CertFile] | None = None

    def cas(self) -> list[CertFile]:
        """The CA certificates, computed once (checks ask for them once per certificate)."""
        if self._cas is None:
            self._cas = [c for c in self.certs if c.is_ca]
        return self._cas

    def by_name(self, name: str) -> CertFile | None:
        return next((c for c in self.certs if c.name == name), None)


def key_description(pub: object) -> tuple[str, int]:
    if isinstance(pub, rsa.RSAPublicKey):
        return "RSA", pub.key_size
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return f"ECDSA-{pub.curve.name}", pub.curve.key_size
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(pub, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(pub, dsa.DSAPublicKey):
        return "DSA", pub.key_size
    return type(pub).__name__, 0


def short_duration(delta: dt.timedelta) -> str:
    """k8s.io/apimachinery/pkg/util/duration.ShortHumanDuration, as `kubeadm certs check-expiration` prints."""
    secs = int(delta.total_seconds())
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60:
        return f"{secs}s"
    if secs // 60 < 60:
        return f"{secs // 60}m"
    hours = secs // 3600
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def read_dir(root: Path) -> Inventory:
    if not root.is_dir():
        raise PkiError(f"{root}: not a directory")
    inv = Inventory(root)
    roles = {d.base + ".crt": d for d in ALL}
    paths = sorted(root.rglob("*.crt"))[:MAX_FILES]
    kept = 0
    for path in paths:
        rel = path.relative_to(root).as_posix()
        try:
            certs = load_certs(path)
        except PkiError as exc:
            inv.errors.append(InputError(str(path), str(exc).split(": ", 1)[-1]))
            continue
        kept += len(certs)
        if kept > MAX_CERTS:
            inv.errors.append(InputError(str(path), f"not read: the folder holds more than {MAX_CERTS} certificates"))
            break
        cf = CertFile(path, rel, certs[0], certs[1:], roles.get(rel))
        key_path = path.with_suffix(".key")
        if key_path.exists():
            cf.key_path = key_path
            st = key_path.stat()
            cf.key_mode, cf.key_owner = stat.S_IMODE(st.st_mode), st.st_uid
            try:
                cf.key = load_key(key_path)
                cf.key_mismatch = not key_matches(cf.cert, cf.key)
            except PkiError as exc:
                cf.key_error = str(exc).split(": ", 1)[-1]
        inv.certs.append(cf)
    sa = root / "sa.key"
    if sa.exists():
        inv.sa_key_mode = stat.S_IMODE(sa.stat().st_mode)
    if not inv.certs and not inv.errors:
        raise PkiError(f"{root}: no certificates (*.crt) found")
    return inv
