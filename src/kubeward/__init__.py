"""kubeward: Kubernetes security you can see, prove and enforce."""

__version__ = "0.1.0"
