"""CIS 1.3: kube-controller-manager flags (defaults: cmd/kube-controller-manager/app/options)."""

from __future__ import annotations

from collections.abc import Iterator

from ...sources.node import NodeConfig, parse_bool
from .base import CM, Hit, bind_local, flag_hit, node_control, require_set, want_bool


@node_control("1.3.2", "Ensure that the --profiling argument is set to false", "medium", CM, "--profiling=false")
def cm_profiling(cfg: NodeConfig) -> Iterator[Hit]:
    """--profiling is false. It defaults to true: /debug/pprof then exposes the controller manager's internals."""
    yield from want_bool(cfg.components[CM], "profiling", False, True)


@node_control("1.3.3", "Ensure that the --use-service-account-credentials argument is set to true", "medium", CM,
              "--use-service-account-credentials=true")
def cm_sa_creds(cfg: NodeConfig) -> Iterator[Hit]:
    """--use-service-account-credentials is true (default false): each controller then acts with its own service
    account and bootstrap role, instead of all of them with the controller manager's broad credential."""
    yield from want_bool(cfg.components[CM], "use-service-account-credentials", True, False)


@node_control("1.3.4", "Ensure that the --service-account-private-key-file argument is set as appropriate", "high", CM,
              "--service-account-private-key-file=/etc/kubernetes/pki/sa.key")
def cm_sa_key(cfg: NodeConfig) -> Iterator[Hit]:
    """--service-account-private-key-file is set: the key legacy service-account tokens are signed with, whose
    public half the apiserver verifies (--service-account-key-file), so keys can be rotated."""
    yield from require_set(cfg.components[CM], "service-account-private-key-file")


@node_control("1.3.5", "Ensure that the --root-ca-file argument is set as appropriate", "medium", CM,
              "--root-ca-file=/etc/kubernetes/pki/ca.crt")
def cm_root_ca(cfg: NodeConfig) -> Iterator[Hit]:
    """--root-ca-file is set: it is the ca.crt put into every service-account token secret and kube-root-ca.crt,
    which pods use to verify the apiserver instead of trusting it blindly."""
    yield from require_set(cfg.components[CM], "root-ca-file")


@node_control("1.3.6", "Ensure that the RotateKubeletServerCertificate argument is set to true", "medium", CM,
              "Remove RotateKubeletServerCertificate=false from --feature-gates")
def cm_rotate(cfg: NodeConfig) -> Iterator[Hit]:
    """The RotateKubeletServerCertificate feature gate is not turned off in --feature-gates (a mapStringBool:
    repeated flags merge, later keys win; the gate is on by default): kubelet serving certificates are then
    approved and renewed through the certificates API."""
    c = cfg.components[CM]
    gates: dict[str, bool | None] = {}
    for gate in c.flags.list("feature-gates"):
        name, _, value = gate.partition("=")
        gates[name.strip()] = parse_bool(value.strip())
    if gates.get("RotateKubeletServerCertificate", True) is False:
        yield flag_hit(c, "feature-gates", "RotateKubeletServerCertificate=false")


@node_control("1.3.7", "Ensure that the --bind-address argument is set to 127.0.0.1", "low", CM,
              "--bind-address=127.0.0.1")
def cm_bind_address(cfg: NodeConfig) -> Iterator[Hit]:
    """--bind-address is loopback. It defaults to 0.0.0.0, serving the controller manager's health and metrics
    endpoints on every interface of the node."""
    yield from bind_local(cfg, CM)
