"""Certificate PKI: a kubeadm-layout CA tree with a separate etcd CA, user certs, checks and rotation."""

from .errors import PkiError

__all__ = ["PkiError"]
