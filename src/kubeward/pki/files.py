"""Reading and writing PEM certificates and keys, with clear errors and private files (0600).

Keys are created with mode 0600 from the first byte so they are never readable by others, even briefly; every
write is atomic and refuses symlinks (kubeward.safefile); existing files are never replaced unless the caller says
so (`--force`).
"""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .. import safefile
from .errors import PkiError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
MAX_PEM_BYTES = 1 << 20  # a PKI file larger than 1 MiB is not a certificate
MAX_BUNDLE_CERTS = 1000  # a CA bundle holds a few hundred at most (the Mozilla store is ~150)


def _read(path: Path) -> bytes:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise PkiError(f"{path}: not a regular file")
        if st.st_size > MAX_PEM_BYTES:
            raise PkiError(f"{path}: file too large for a PEM file ({st.st_size} bytes)")
        return path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PkiError(f"{path}: is a directory") from None
    except OSError as exc:
        raise PkiError(f"{path}: {exc.strerror or exc}") from None


def load_certs(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a leaf possibly followed by intermediates)."""
    data = _read(path)
    count = data.count(b"-----BEGIN CERTIFICATE-----")
    if not count:
        raise PkiError(f"{path}: no PEM certificate found")
    if count > MAX_BUNDLE_CERTS:
        raise PkiError(f"{path}: {count} certificates, more than the {MAX_BUNDLE_CERTS} a bundle may hold")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PkiError(f"{path}: not a valid PEM certificate ({exc})") from None


def load_cert(path: Path) -> x509.Certificate:
    return load_certs(path)[0]


def load_key(path: Path) -> PrivateKey:
    data = _read(path)
    if b"PRIVATE KEY-----" not in data:
        raise PkiError(f"{path}: no PEM private key found")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise PkiError(f"{path}: private key is encrypted (passphrase keys are not supported)") from None
    except (ValueError, Exception) as exc:  # cryptography raises several types for garbage
        raise PkiError(f"{path}: not a valid PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise PkiError(f"{path}: unsupported private key type {type(key).__name__}")
    return key


def public_bytes(key: object) -> bytes:
    """SubjectPublicKeyInfo DER of a public or private key, to compare a cert with its key."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    return pub.public_bytes(serialization.Encoding.DER,  # type: ignore[union-attr]
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    return public_bytes(cert.public_key()) == public_bytes(key)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    # kubeadm writes RSA keys as PKCS#1 ("RSA PRIVATE KEY") and ECDSA as SEC1 ("EC PRIVATE KEY").
    fmt = (serialization.PrivateFormat.PKCS8 if isinstance(key, ed25519.Ed25519PrivateKey)
           else serialization.PrivateFormat.TraditionalOpenSSL)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def write_file(path: Path, data: bytes, *, mode: int, force: bool, dir_mode: int = 0o755) -> None:
    """Write with `mode` from creation on, atomically and never through a symlink (kubeward.safefile); refuse to
    replace an existing file unless `force`. Directories are created 0755 as kubeadm's certutil.WriteCert does."""
    try:
        safefile.write_file(path, data, mode=mode, replace=force, dir_mode=dir_mode)
    except safefile.SafeFileError as exc:
        raise PkiError(str(exc)) from None


def write_files(files: list[tuple[Path, bytes, int]], *, force: bool) -> None:
    """Several files that belong together (certificates and their keys): all or none (safefile.write_files)."""
    try:
        safefile.write_files(files, replace=force)
    except safefile.SafeFileError as exc:
        raise PkiError(str(exc)) from None


def write_key(path: Path, key: PrivateKey, *, force: bool) -> None:
    write_file(path, key_pem(key), mode=0o600, force=force)


def write_cert(path: Path, cert: x509.Certificate, *, force: bool) -> None:
    write_file(path, cert_pem(cert), mode=0o644, force=force)
