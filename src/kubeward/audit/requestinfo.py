"""The objectRef an event should carry, recovered from its requestURI when an exporter dropped it.

The apiserver fills objectRef from RequestInfo (staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go
NewRequestInfo): `/api/v1/...` is the core group, `/apis/<group>/<version>/...` the others; an optional `watch`
segment; `namespaces/<ns>/` then `<resource>/<name>/<subresource>` (a namespace's own `status` and `finalize`
stay subresources of the namespace).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def object_ref(uri: Any) -> dict[str, str] | None:
    """objectRef for a resource request URI, None for a non-resource one (or garbage)."""
    if not isinstance(uri, str) or not uri.startswith(("/api/", "/apis/")):
        return None
    parts = [unquote(p) for p in urlsplit(uri).path.strip("/").split("/")]
    if parts[0] == "api":
        if len(parts) < 3:
            return None  # /api/v1: discovery
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return None
        group, version, rest = parts[1], parts[2], parts[3:]
    if rest and rest[0] == "watch":
        rest = rest[1:]
    ns = ""
    if len(rest) > 1 and rest[0] == "namespaces":
        ns = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    if not rest or not rest[0]:
        return None
    out = {"resource": rest[0], "apiVersion": version}
    if group:
        out["apiGroup"] = group
    if ns:  # also on the namespace object itself, as the apiserver sets it
        out["namespace"] = ns
    if len(rest) > 1:
        out["name"] = rest[1]
    if len(rest) > 2:
        out["subresource"] = rest[2]
    return out
