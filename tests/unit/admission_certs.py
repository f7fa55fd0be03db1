"""A CA and a 127.0.0.1 serving certificate from kubeward's own PKI (for the webhook tests)."""

from __future__ import annotations

from pathlib import Path

from kubeward.pki.files import cert_pem, key_pem
from kubeward.pki.issue import SERVER_AUTH, AltNames, LeafSpec, new_ca, new_key, sign_leaf


def webhook_pki(tmp: Path, cn: str = "kubeward-admission") -> tuple[Path, Path, Path]:
    """(ca.crt, tls.crt, tls.key)."""
    ca_key = new_key("ecdsa")
    ca = new_ca("kubeward-admission-ca", ca_key)
    key = new_key("ecdsa")
    alt = AltNames()
    alt.add(["127.0.0.1", "localhost"])
    leaf = sign_leaf(LeafSpec(cn, usages=(SERVER_AUTH,), alt=alt), key, ca, ca_key)
    paths = tmp / "ca.crt", tmp / f"{cn}.crt", tmp / f"{cn}.key"
    paths[0].write_bytes(cert_pem(ca))
    paths[1].write_bytes(cert_pem(leaf))
    paths[2].write_bytes(key_pem(key))
    return paths


def client_pki(tmp: Path, cn: str = "kube-apiserver-admission") -> tuple[Path, Path, Path]:
    """(client-ca.crt, client.crt, client.key): a client certificate (clientAuth) from a CA of its own, as the
    apiserver presents from its admission kubeconfig."""
    from kubeward.pki.issue import CLIENT_AUTH

    ca_key = new_key("ecdsa")
    ca = new_ca(f"{cn}-ca", ca_key)
    key = new_key("ecdsa")
    leaf = sign_leaf(LeafSpec(cn, usages=(CLIENT_AUTH,)), key, ca, ca_key)
    paths = tmp / f"{cn}-ca.crt", tmp / f"{cn}.crt", tmp / f"{cn}.key"
    paths[0].write_bytes(cert_pem(ca))
    paths[1].write_bytes(cert_pem(leaf))
    paths[2].write_bytes(key_pem(key))
    return paths
