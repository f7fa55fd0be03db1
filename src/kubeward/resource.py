"""One Kubernetes object as the API serves it, plus where it came from."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from .findings import Location, ObjectRef
from .records import record

# Kinds the API serves without a namespace (kubectl api-resources --namespaced=false, core and common groups).
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass", "CSIDriver",
    "CSINode", "VolumeAttachment", "CustomResourceDefinition", "APIService", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "PriorityClass", "RuntimeClass", "IngressClass",
    "CertificateSigningRequest", "PodSecurityPolicy", "ComponentStatus", "FlowSchema", "PriorityLevelConfiguration",
    "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "ClusterTrustBundle", "IPAddress", "ServiceCIDR",
    "DeviceClass", "GatewayClass", "SelfSubjectReview", "TokenReview", "SubjectAccessReview",
    "SelfSubjectAccessReview", "SelfSubjectRulesReview", "ClusterIssuer",
})

# Where each workload kind keeps its pod template (apps/v1, batch/v1, core/v1 types).
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "PodTemplate": ("template",),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
POD_KINDS = frozenset(POD_SPEC_PATHS)
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")
T = TypeVar("T")


class Resource:
    """An object dict with its origin. `key_lines` maps id(mapping) → {key: line} for file:line of any path."""

    __slots__ = ("_lines", "_locations", "_pod", "_ref", "cluster", "file", "key_lines", "line", "obj")

    def __init__(
        self,
        obj: dict[str, Any],
        *,
        file: str | None = None,
        line: int | None = None,
        cluster: str | None = None,
        key_lines: dict[int, dict[str, int]] | None = None,
    ) -> None:
        self.obj = obj
        self.file = file
        self.line = line
        self.cluster = cluster
        self.key_lines = key_lines
        self._pod: Any = False
        self._ref: ObjectRef | None = None
        self._lines: dict[str, int] | None = None
        self._locations: dict[int | str | None, Location] | None = None  # by line and by path

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.obj.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or self.metadata.get("generateName") or "")

    @property
    def namespace(self) -> str | None:
        """As written; `default` for a namespaced object without one; None for cluster-scoped kinds."""
        if self.kind in CLUSTER_SCOPED_KINDS:
            return None
        ns = self.metadata.get("namespace")
        return str(ns) if ns else "default"

    @property
    def labels(self) -> dict[str, str]:
        labels = self.metadata.get("labels")
        return labels if isinstance(labels, dict) else {}

    @property
    def annotations(self) -> dict[str, str]:
        ann = self.metadata.get("annotations")
        return ann if isinstance(ann, dict) else {}

    def ref(self) -> ObjectRef:
        """Computed once: every finding and every judged object of this resource shares it."""
        if self._ref is None:
            self._ref = ObjectRef(self.api_version, self.kind, self.namespace, self.name)
        return self._ref

    def location(self, path: str = "") -> Location:
        """Shared per line: an object's findings point at a handful of lines, so each Location is built once; the
        same path asked again (another control, another message) is one lookup."""
        cache = self._locations
        if cache is None:
            cache = self._locations = {}
        else:
            loc = cache.get(path)
            if loc is not None:
                return loc
        line = (self.line_of(path) if path else self.line) if self.file is not None else None
        loc = cache.get(line)  # lines (int | None) and paths (str) share the dict
        if loc is None:
            loc = cache[line] = Location(file=self.file, line=line) if self.file is not None else Location(cluster=self.cluster)
        cache[path] = loc
        return loc

    def pointer_lines(self) -> dict[str, int] | None:
        """{JSON pointer: line} of every key the file shows, flattened once; None for an object without key lines.

        Flat, so it survives a trip to another process (ids of the key-line map do not).
        """
        if not self.key_lines:
            return None
        if self._lines is None:
            self._lines = _flatten_lines(self.obj, self.key_lines)
        return self._lines

    @classmethod
    def with_pointer_lines(cls, obj: dict[str, Any], *, file: str | None, line: int | None,
                           lines: dict[str, int] | None) -> Resource:
        """An object whose key lines arrive flattened (`pointer_lines` of its original)."""
        r = cls(obj, file=file, line=line, key_lines=_FLATTENED if lines is not None else None)
        r._lines = lines
        return r

    def line_of(self, path: str) -> int | None:
        """Line of the deepest key on `path` (a JSON pointer) that the file shows; the object line otherwise.

        The first call flattens the object's key lines into {pointer: line} (one walk per object that has
        findings); every call after that is a dict lookup, trimming the pointer to its deepest present parent.
        """
        if not path or not self.key_lines:
            return self.line
        lines = self._lines
        if lines is None:
            lines = self._lines = _flatten_lines(self.obj, self.key_lines)
        while path:
            line = lines.get(path)
            if line is not None:
                return line
            path = path[: path.rfind("/")]
        return self.line

    def pod(self) -> PodView | None:
        """The pod (or pod template) inside this object, unwrapped once."""
        if self._pod is False:
            self._pod = PodView.of(self)
        return self._pod

    def __repr__(self) -> str:
        return f"<Resource {self.ref()} {self.location()}>"


def where(res: Resource) -> str:
    """`file:line Kind ns/name`, how a one-line message names an input object."""
    at = f"{res.file}:{res.line} " if res.file and res.line else (f"{res.file} " if res.file else "")
    ns = res.namespace  # a property reading kind and metadata: once (duplicate fixtures make thousands of these)
    return f"{at}{res.kind} {f'{ns}/{res.name}' if ns else res.name}"


@record(frozen=True)
class Duplicate:
    """An input copy of an object that the cluster does not hold: a later copy replaced it, or it is a later copy
    the apiserver refuses as an update (`refused` says why, e.g. a binding's changed roleRef) and `kept` stayed."""

    copy: Resource
    kept: Resource
    refused: str | None

    def message(self) -> str:
        kind = self.copy.kind
        if self.refused is None:
            return f"{kind} defined again at {where(self.kept)}: only the last definition is used"
        return (f"{kind} defined again with another roleRef, which the apiserver refuses as an update "
                f"({self.refused}): {where(self.kept)} is used")


def applied_copies(resources: Iterable[Resource], refused: Callable[[Resource, Resource], str | None] | None = None
                   ) -> tuple[list[Resource], list[Duplicate]]:
    """One object per (kind, namespace, name), as `kubectl apply` of the inputs in order leaves the cluster.

    The apiserver keys an object by namespace and name (apiserver registry/generic/registry/store.go
    NamespaceKeyFunc). `kubectl apply` creates the first copy and sends each later one as a patch against it
    (kubectl pkg/cmd/apply/patcher.go): fields only the earlier copy set are removed, so the later copy is what
    the cluster holds, unless the apiserver refuses the update (`refused(kept, later)` names the reason, e.g. a
    RoleBinding's immutable roleRef), and then the copy before stays. Objects named only by `generateName` are
    each their own object. Returns the objects kept, in the order their names first appear, and every copy that
    does not count."""
    by_key: dict[tuple[str, str | None, str], Resource] = {}
    unnamed: list[Resource] = []
    dropped: list[Duplicate] = []
    for res in resources:
        meta = res.metadata
        if not meta.get("name") and meta.get("generateName"):
            unnamed.append(res)
            continue
        key = (res.kind, res.namespace, res.name)
        prev = by_key.get(key)
        if prev is None:
            by_key[key] = res
            continue
        reason = refused(prev, res) if refused is not None else None
        if reason is None:
            by_key[key] = res
            dropped.append(Duplicate(prev, res, None))
        else:
            dropped.append(Duplicate(res, prev, reason))
    return [*by_key.values(), *unnamed], dropped


def cluster_scoped_kinds(resources: Iterable[Resource]) -> frozenset[str]:
    """The built-in cluster-scoped kinds plus the kinds CustomResourceDefinitions in the input declare
    `scope: Cluster` (apiextensions.k8s.io/v1 CustomResourceDefinitionSpec.scope)."""
    declared = set()
    for r in resources:
        if r.kind == "CustomResourceDefinition" and isinstance(spec := r.obj.get("spec"), dict) \
                and spec.get("scope") == "Cluster" and isinstance(names := spec.get("names"), dict) \
                and isinstance(kind := names.get("kind"), str):
            declared.add(kind)
    return CLUSTER_SCOPED_KINDS | declared


def namespace_mismatch(found: str, wanted: str) -> str:
    """kubectl's words, cli-runtime pkg/resource/visitor.go RequireNamespace."""
    return (f'the namespace from the provided object "{found}" does not match the namespace "{wanted}". '
            f"You must pass '--namespace={found}' to perform this operation.")


def set_input_namespace(resources: list[Resource], namespace: str, *, enforce: bool
                        ) -> tuple[list[Resource], list[tuple[Resource, str]]]:
    """`-n NS` for file inputs, as kubectl applies files (cli-runtime pkg/resource/visitor.go): a namespaced
    object without a namespace gets NS (SetNamespace); with `enforce` (kubectl enforces an explicit -n, builder.go
    RequireNamespace) an object written with another namespace is refused with kubectl's message and left out,
    the others go on. Cluster-scoped kinds are untouched. Returns the kept objects and (object, message) for each
    refused one.

    Only the object's own metadata changes: a RoleBinding's ServiceAccount subject without a namespace stays so,
    and the RBAC model reads it in the binding's namespace, as the authorizer does (rbac/validation/rule.go
    appliesToUser).
    """
    cluster_scoped = cluster_scoped_kinds(resources)
    kept: list[Resource] = []
    refused: list[tuple[Resource, str]] = []
    for r in resources:
        if r.kind in cluster_scoped:
            kept.append(r)
            continue
        meta = r.obj.get("metadata")
        if meta is None:
            meta = r.obj["metadata"] = {}
        ns = meta.get("namespace")
        if not ns:
            meta["namespace"] = namespace
            r._ref = None
        elif enforce and str(ns) != namespace:
            refused.append((r, f"{r.kind} {r.name or '(no name)'}: {namespace_mismatch(str(ns), namespace)}"))
            continue
        kept.append(r)
    return kept, refused


# Truthy stand-in for the id-keyed map of an object whose pointer→line map came flattened (with_pointer_lines).
_FLATTENED: dict[int, dict[str, int]] = {0: {}}


def _flatten_lines(obj: dict[str, Any], key_lines: dict[int, dict[str, int]]) -> dict[str, int]:
    """{JSON pointer: line} for every key the file shows; a list item maps to the line of its first key."""
    out: dict[str, int] = {}
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        prefix, node = stack.pop()
        if type(node) is dict:
            lines = key_lines.get(id(node))
            if lines is None:
                continue
            for key, value in node.items():
                pointer = f"{prefix}/{key}"
                line = lines.get(key)
                if line is not None:
                    out[pointer] = line
                if type(value) is dict or type(value) is list:
                    stack.append((pointer, value))
        else:
            for i, item in enumerate(node):
                if type(item) is dict or type(item) is list:
                    pointer = f"{prefix}/{i}"
                    if type(item) is dict and (lines := key_lines.get(id(item))):
                        out[pointer] = min(lines.values())
                    stack.append((pointer, item))
    return out


class PodView:
    """A pod spec with its metadata and the JSON-pointer prefix of the template inside its owner."""

    __slots__ = ("_containers", "_memo", "base", "meta", "resource", "spec")

    def __init__(self, resource: Resource, spec: dict[str, Any], meta: dict[str, Any], base: str) -> None:
        self.resource = resource
        self.spec = spec
        self.meta = meta
        self.base = base  # e.g. "/spec/template"; "" for a Pod
        self._containers: list[tuple[dict[str, Any], str, str]] | None = None
        self._memo: dict[str, Any] | None = None

    def derived(self, key: str, build: Callable[[PodView], T]) -> T:
        """Per-pod data an engine derives once and many controls read (e.g. the PSS engine's pod input)."""
        memo = self._memo
        if memo is None:
            memo = self._memo = {}
        if key not in memo:
            memo[key] = build(self)
        return memo[key]

    @classmethod
    def of(cls, res: Resource) -> PodView | None:
        steps = POD_SPEC_PATHS.get(res.kind)
        if steps is None:
            return None
        node: Any = res.obj
        for step in steps:
            node = node.get(step) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return None
        spec = node.get("spec")
        meta = node.get("metadata")
        return cls(
            res,
            spec if isinstance(spec, dict) else {},
            meta if isinstance(meta, dict) else {},
            "/" + "/".join(steps) if steps else "",
        )

    @property
    def annotations(self) -> dict[str, str]:
        ann = self.meta.get("annotations")
        return ann if isinstance(ann, dict) else {}

    @property
    def labels(self) -> dict[str, str]:
        labels = self.meta.get("labels")
        return labels if isinstance(labels, dict) else {}

    def containers(self) -> list[tuple[dict[str, Any], str, str]]:
        """(container, JSON pointer, field) for init, regular and ephemeral containers; built once per pod."""
        if self._containers is None:
            found: list[tuple[dict[str, Any], str, str]] = []
            for fld in CONTAINER_FIELDS:
                items = self.spec.get(fld)
                if isinstance(items, list):
                    found.extend(
                        (c, f"{self.base}/spec/{fld}/{i}", fld) for i, c in enumerate(items) if isinstance(c, dict)
                    )
            self._containers = found
        return self._containers

    def volumes(self) -> Iterator[tuple[dict[str, Any], str]]:
        items = self.spec.get("volumes")
        if isinstance(items, list):
            for i, v in enumerate(items):
                if isinstance(v, dict):
                    yield v, f"{self.base}/spec/volumes/{i}"

    @property
    def spec_path(self) -> str:
        return f"{self.base}/spec"
