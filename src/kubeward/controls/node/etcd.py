"""CIS 2: etcd flags (defaults: go.etcd.io/etcd server/embed/config.go, all TLS off) and whether etcd's CA is
really another CA than the one the apiserver accepts clients from."""

from __future__ import annotations

import os
from collections.abc import Iterator

from ...sources.node import Component, NodeConfig
from .base import A, E, Hit, NotRead, flag_hit, node_control, require_set, want_bool


@node_control("2.1", "Ensure that the --cert-file and --key-file arguments are set as appropriate", "critical", E,
              "--cert-file and --key-file (kubeadm: etcd/server.crt, etcd/server.key)")
def etcd_tls(cfg: NodeConfig) -> Iterator[Hit]:
    """--cert-file and --key-file are set, so etcd serves clients over TLS: without them every secret of the
    cluster travels in plaintext."""
    yield from require_set(cfg.components[E], "cert-file", "key-file")


@node_control("2.2", "Ensure that the --client-cert-auth argument is set to true", "critical", E,
              "--client-cert-auth=true")
def etcd_client_auth(cfg: NodeConfig) -> Iterator[Hit]:
    """--client-cert-auth is true (default false): etcd then serves only clients with a certificate from its
    trusted CA; otherwise anyone who reaches the port reads and writes the whole cluster state."""
    yield from want_bool(cfg.components[E], "client-cert-auth", True, False)


@node_control("2.3", "Ensure that the --auto-tls argument is not set to true", "high", E,
              "remove --auto-tls or set it false")
def etcd_auto_tls(cfg: NodeConfig) -> Iterator[Hit]:
    """--auto-tls is false (its default): auto TLS makes etcd serve a self-signed certificate clients cannot
    verify."""
    yield from want_bool(cfg.components[E], "auto-tls", False, False)


@node_control("2.4", "Ensure that the --peer-cert-file and --peer-key-file arguments are set as appropriate", "high",
              E, "--peer-cert-file and --peer-key-file")
def etcd_peer_tls(cfg: NodeConfig) -> Iterator[Hit]:
    """--peer-cert-file and --peer-key-file are set, so members replicate over TLS (a single-member etcd has no
    peers, but the flags keep a later member from joining in plaintext)."""
    yield from require_set(cfg.components[E], "peer-cert-file", "peer-key-file")


@node_control("2.5", "Ensure that the --peer-client-cert-auth argument is set to true", "high", E,
              "--peer-client-cert-auth=true")
def etcd_peer_auth(cfg: NodeConfig) -> Iterator[Hit]:
    """--peer-client-cert-auth is true (default false): only members with a certificate from the peer CA may
    join and replicate the data."""
    yield from want_bool(cfg.components[E], "peer-client-cert-auth", True, False)


@node_control("2.6", "Ensure that the --peer-auto-tls argument is not set to true", "high", E,
              "remove --peer-auto-tls or set it false")
def etcd_peer_auto_tls(cfg: NodeConfig) -> Iterator[Hit]:
    """--peer-auto-tls is false (its default): self-signed peer certificates let any host claim to be a member."""
    yield from want_bool(cfg.components[E], "peer-auto-tls", False, False)


def _read_ca(cfg: NodeConfig, c: Component | None, path: str) -> list[bytes] | None:
    from ...pki.errors import PkiError
    from ...pki.files import load_certs, public_bytes

    try:
        return [public_bytes(cert.public_key()) for cert in load_certs(cfg.path_of(c, path))]
    except PkiError:
        return None


@node_control("2.7", "Ensure that a unique Certificate Authority is used for etcd", "critical", E,
              "Point etcd --trusted-ca-file at a dedicated etcd CA (kubeadm: /etc/kubernetes/pki/etcd/ca.crt).",
              frameworks=("nsa",))
def etcd_unique_ca(cfg: NodeConfig) -> Iterator[Hit]:
    """etcd's --trusted-ca-file holds no CA key that the apiserver's --client-ca-file holds. Compared by the keys
    inside the files, not by their paths: if one CA signs both, every client certificate of the cluster (any
    user's) is accepted by etcd, which has no authorization of its own."""
    e = cfg.components[E]
    trusted = e.flags.get("trusted-ca-file")
    if not trusted:
        yield flag_hit(e, "trusted-ca-file", "--trusted-ca-file not set")
        return
    api = cfg.components.get(A)
    client_ca = api.flags.get("client-ca-file") if api else None
    if not client_ca:
        raise NotRead("no kube-apiserver --client-ca-file on this node to compare the etcd CA with")
    if os.path.normpath(trusted) == os.path.normpath(client_ca):
        yield flag_hit(e, "trusted-ca-file", f"--trusted-ca-file is the apiserver --client-ca-file ({client_ca})")
        return
    etcd_keys, cluster_keys = _read_ca(cfg, e, trusted), _read_ca(cfg, api, client_ca)
    if etcd_keys is None or cluster_keys is None:  # the paths differ, but the CAs inside could be the same one
        unread = trusted if etcd_keys is None else client_ca
        raise NotRead(f"{unread}: not readable as PEM certificates, so the two CAs could not be compared")
    shared = set(etcd_keys) & set(cluster_keys)
    if shared:
        yield flag_hit(e, "trusted-ca-file", f"{trusted} and the apiserver --client-ca-file {client_ca} contain the "
                                             "same CA key: every cluster client certificate can reach etcd")
