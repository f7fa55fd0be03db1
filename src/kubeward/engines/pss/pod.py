"""The pod as the checks see it: metadata, spec and containers, with wrong-typed fields read as absent.

Typed Go structs make a missing or null field a nil pointer; reading manifests we also meet wrong types, which the
apiserver would reject at decoding, so every accessor treats them as absent rather than raising.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
_EMPTY: Obj = {}


def obj(value: Any) -> Obj | None:
    """A mapping, or None for null/absent/wrong type (Go: a nil pointer)."""
    return value if isinstance(value, dict) else None


def sub(parent: Obj | None, key: str) -> Obj | None:
    return obj(parent.get(key)) if parent is not None else None


def items(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def text(value: Any) -> str:
    """A Go string field: absent/null reads as ""."""
    return value if isinstance(value, str) else ("" if value is None else str(value))


class PodInput:
    """One pod (or pod template) unwrapped once; every check reads these attributes."""

    __slots__ = ("annotations", "containers", "meta", "pod_sc", "spec")

    def __init__(self, meta: Any, spec: Any) -> None:
        self.meta: Obj = obj(meta) or _EMPTY
        self.spec: Obj = obj(spec) or _EMPTY
        ann = obj(self.meta.get("annotations"))
        self.annotations: Obj = ann if ann is not None else _EMPTY
        self.pod_sc: Obj | None = obj(self.spec.get("securityContext"))
        # policy/visitor.go visitContainers: init containers, then containers, then ephemeral containers.
        spec = self.spec
        self.containers: list[Obj] = [
            *items(spec.get("initContainers")), *items(spec.get("containers")), *items(spec.get("ephemeralContainers"))
        ]

    @classmethod
    def of(cls, pod: Any) -> PodInput:
        """From a Pod-shaped dict ({"metadata", "spec"}), a PodView, a Resource or a PodInput."""
        if isinstance(pod, PodInput):
            return pod
        if isinstance(pod, dict):
            return cls(pod.get("metadata"), pod.get("spec"))
        view = pod.pod() if hasattr(pod, "pod") and callable(pod.pod) else pod
        if view is None or not hasattr(view, "spec"):
            raise TypeError(f"not a pod or pod template: {pod!r}")
        return cls(view.meta, view.spec)

    @property
    def windows(self) -> bool:
        """spec.os.name == "windows" (the 1.25 Windows exemptions)."""
        os_ = obj(self.spec.get("os"))
        return os_ is not None and os_.get("name") == "windows"

    @property
    def user_namespace(self) -> bool:
        """spec.hostUsers explicitly false (policy/helpers.go relaxPolicyForUserNamespacePod)."""
        return self.spec.get("hostUsers") is False


def name(container: Obj) -> str:
    return text(container.get("name"))


def sc(container: Obj) -> Obj | None:
    return obj(container.get("securityContext"))
