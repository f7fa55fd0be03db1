"""Live source: read a cluster through the official `kubernetes` client into a Snapshot.

The client is used for what it does well (kubeconfig: contexts, client certificates, exec plugins, token refresh);
lists are fetched as raw JSON and parsed with orjson, never deserialised into generated model classes, so objects
are plain dicts exactly as the API serves them. A 403/404 on a resource type is recorded as *not assessed* with
the reason (unknown, never passed), and the snapshot carries coverage = (types read, types wanted).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from ..findings import NotAssessed
from ..resource import Resource
from ..snapshot import Layout, Snapshot
from ..textsafe import printable

PAGE_SIZE = 500
TIMEOUT = (10.0, 120.0)  # (connect, read) seconds: a dead endpoint fails fast, a big page still arrives
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # where the kubelet mounts the pod's token
SA_TOKEN, SA_CA, SA_NAMESPACE = f"{SA_DIR}/token", f"{SA_DIR}/ca.crt", f"{SA_DIR}/namespace"


class ClusterError(Exception):
    """The cluster cannot be reached or the kubeconfig cannot be used; one line for the user."""


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One list endpoint. `optional`: an API group that may simply not be installed (a CRD); a 404 there means no
    such object can exist, so the type is neither wanted nor unknown. A 403 is always *not assessed*."""

    group_version: str  # "v1" or "apps/v1"
    plural: str
    kind: str
    optional: bool = False
    namespaced: bool = True  # kubectl api-resources --namespaced

    @property
    def path(self) -> str:
        return self.path_in(None)

    def path_in(self, namespace: str | None) -> str:
        """The list endpoint, in one namespace for a namespaced type when `namespace` is given (the API's
        /namespaces/NS/<plural> form, which a RoleBinding in NS can authorise; apiserver request-info)."""
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{base}/{self.plural}"

    @property
    def name(self) -> str:
        group = self.group_version.rpartition("/")[0]
        return f"{self.plural}.{group}" if group else self.plural


def _t(gv: str, plural: str, kind: str, optional: bool = False, namespaced: bool = True) -> ResourceType:
    return ResourceType(gv, plural, kind, optional, namespaced)


WORKLOAD_TYPES = (
    _t("v1", "pods", "Pod"),
    _t("v1", "replicationcontrollers", "ReplicationController"),
    _t("apps/v1", "deployments", "Deployment"),
    _t("apps/v1", "replicasets", "ReplicaSet"),
    _t("apps/v1", "statefulsets", "StatefulSet"),
    _t("apps/v1", "daemonsets", "DaemonSet"),
    _t("batch/v1", "jobs", "Job"),
    _t("batch/v1", "cronjobs", "CronJob"),
)
RBAC_TYPES = (
    _t("rbac.authorization.k8s.io/v1", "roles", "Role"),
    _t("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", namespaced=False),
    _t("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    _t("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
)
NAMESPACE_TYPES = (_t("v1", "namespaces", "Namespace", namespaced=False),)
NETPOL_TYPES = (
    *NAMESPACE_TYPES,
    _t("v1", "pods", "Pod"),
    _t("v1", "services", "Service"),
    _t("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy"),
    _t("policy.networking.k8s.io/v1alpha1", "adminnetworkpolicies", "AdminNetworkPolicy", optional=True,
       namespaced=False),
    _t("policy.networking.k8s.io/v1alpha1", "baselineadminnetworkpolicies", "BaselineAdminNetworkPolicy",
       optional=True, namespaced=False),
)
# Everything the scan controls read (controls/*.py: kinds= and of_kind()).
SCAN_TYPES = (
    *NAMESPACE_TYPES,
    *WORKLOAD_TYPES,
    _t("v1", "services", "Service"),
    _t("v1", "serviceaccounts", "ServiceAccount"),
    _t("v1", "secrets", "Secret"),
    _t("v1", "configmaps", "ConfigMap"),
    _t("v1", "nodes", "Node", namespaced=False),
    _t("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy"),
    _t("networking.k8s.io/v1", "ingresses", "Ingress"),
    *RBAC_TYPES,
    *NETPOL_TYPES[-2:],
)


class ClusterSnapshot(Snapshot):
    """A Snapshot read from a cluster: also says which context and how much of what was wanted could be read."""

    __slots__ = ("context", "coverage", "namespace")

    def __init__(self, resources: Iterable[Resource], *, context: str, coverage: tuple[int, int],
                 not_assessed: Iterable[NotAssessed] = (), namespace: str | None = None,
                 layout: Layout | None = None) -> None:
        super().__init__(resources, not_assessed=not_assessed, source=f"cluster:{context}", layout=layout)
        self.context = context
        self.coverage = coverage
        self.namespace = namespace  # read with -n: one namespace and the cluster-scoped objects (see in_scope)

    def in_scope(self) -> Callable[[Resource], bool] | None:
        """What a scan of one namespace reports on (None: everything). Cluster-scoped objects are read because
        the cross-object controls need them (a RoleBinding in NS granting a ClusterRole, an AdminNetworkPolicy
        selecting its pods); findings are kept for the namespace's own objects, the Namespace itself, the
        ClusterRoles a RoleBinding in it grants and the ClusterRoleBindings naming one of its ServiceAccounts (or their group).
        Other cluster-scoped findings (nodes, unbound ClusterRoles) belong to a scan of the whole cluster."""
        ns = self.namespace
        if ns is None:
            return None
        granted = frozenset(
            (r.obj.get("roleRef") or {}).get("name") for r in self.of_kind("RoleBinding")
            if r.namespace == ns and (r.obj.get("roleRef") or {}).get("kind") == "ClusterRole")

        def concerns(r: Resource) -> bool:
            if r.namespace == ns:
                return True
            if r.kind == "Namespace":
                return r.name == ns
            if r.kind == "ClusterRole":
                return r.name in granted
            if r.kind == "ClusterRoleBinding":
                return any(_names_namespace_accounts(s, ns) for s in r.obj.get("subjects") or ())
            return False

        return concerns


def _names_namespace_accounts(subject: Any, ns: str) -> bool:
    """A binding subject that is a ServiceAccount of `ns`, or the group of all of them (apiserver
    pkg/authentication/serviceaccount: MakeNamespaceGroupName, `system:serviceaccounts:<ns>`)."""
    if not isinstance(subject, dict):
        return False
    if subject.get("kind") == "ServiceAccount":
        return subject.get("namespace") == ns
    return subject.get("kind") == "Group" and subject.get("name") == f"system:serviceaccounts:{ns}"


class Client:
    """A thin raw-JSON client over the official ApiClient (auth, TLS and exec plugins come from the kubeconfig)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None, *,
                 server_ca: str | None = None) -> None:
        """`server_ca`: a CA file to verify the server with instead of the kubeconfig's CA (`pki rotate-ca` trusts
        its old+new bundle while the serving certificate changes CA)."""
        try:
            from kubernetes import config as kconfig
        except ImportError:  # pragma: no cover - depends on the install
            raise ClusterError("live mode needs the 'kubernetes' package: pip install 'kubeward[cluster]'") from None
        import os

        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            contexts, active = kconfig.list_kube_config_contexts(config_file=kubeconfig)
            names = {c["name"] for c in contexts or ()}
            if context is not None and context not in names:
                raise ClusterError(f"{where}: no context named {context!r} (have: {', '.join(sorted(names))})")
            self.context: str = context or (active or {}).get("name", "")
            self.api = kconfig.new_client_from_config(config_file=kubeconfig, context=context)
            if server_ca is not None:
                from kubernetes.client import rest

                cfg = self.api.configuration
                cfg.ssl_ca_cert, cfg.verify_ssl = server_ca, True
                self.api.rest_client = rest.RESTClientObject(cfg)
        except ClusterError:
            raise
        except Exception as exc:  # ConfigException, OSError, YAML errors: all "this kubeconfig cannot be used"
            raise ClusterError(f"{where}: {_one_line(exc)}") from None
        self.host: str = self.api.configuration.host

    @classmethod
    def in_cluster(cls, token_file: str = SA_TOKEN, ca_file: str = SA_CA) -> Client:
        """The pod's own identity: the service-account token file (re-read as the kubelet rotates it) and CA, and
        the apiserver from KUBERNETES_SERVICE_HOST/PORT, as client-go's rest.InClusterConfig reads them
        (k8s.io/client-go/rest/config.go)."""
        try:
            from kubernetes import client as kclient
            from kubernetes.config import incluster_config
        except ImportError:  # pragma: no cover - depends on the install
            raise ClusterError("live mode needs the 'kubernetes' package: pip install 'kubeward[cluster]'") from None
        import os

        if not (os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("KUBERNETES_SERVICE_PORT")):
            raise ClusterError("in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set "
                               "(not running in a pod?)")
        configuration = kclient.Configuration()
        try:
            incluster_config.InClusterConfigLoader(token_filename=token_file, cert_filename=ca_file
                                                   ).load_and_set(configuration)
        except Exception as exc:  # ConfigException: missing or empty token/CA file
            raise ClusterError(f"in-cluster: {_one_line(exc)}") from None
        self = cls.__new__(cls)
        self.context = "in-cluster"
        self.api = kclient.ApiClient(configuration)
        self.host = configuration.host
        return self

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One HTTP call; returns (status, raw body). Transport failures raise ClusterError."""
        status, raw, _ = self.call(method, path, query=query, body=body, headers=headers)
        return status, raw

    def call(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        """Like request(), also returning the response headers (e.g. Audit-Id)."""
        hdrs = {"Accept": "application/json", **(headers or {})}
        if body is not None:  # the client serialises JSON bodies itself
            hdrs.setdefault("Content-Type", "application/json")
        try:
            if hasattr(self.api, "param_serialize"):  # kubernetes >= 33 (openapi-generator 7 layout)
                req = self.api.param_serialize(method, path, query_params=list((query or {}).items()),
                                               header_params=hdrs, auth_settings=["BearerToken"])
                method_, url, hdrs_, _, post = req
                resp = self.api.call_api(method_, url, hdrs_, body, post, _request_timeout=TIMEOUT)
                raw = resp.read() or b""
            else:
                resp = self.api.call_api(  # older layout: raw urllib3 response with _preload_content=False
                    path, method, query_params=list((query or {}).items()), header_params=hdrs, body=body,
                    auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
                    _request_timeout=TIMEOUT)
                raw = resp.data or b""
            return int(resp.status), raw, dict(resp.headers or {})
        except Exception as exc:
            status = getattr(exc, "status", 0) or 0
            if status:  # older layouts raise ApiException for non-2xx
                raw = getattr(exc, "body", None) or b""
                return (int(status), raw if isinstance(raw, bytes) else str(raw).encode(),
                        dict(getattr(exc, "headers", None) or {}))
            raise ClusterError(f"cluster {self.context or self.host}: {self.host}: {_transport(exc)}") from None

    def json(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        status, raw = self.request(method, path, **kw)
        try:
            return status, orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return status, None

    def list_raw(self, rtype: ResourceType, namespace: str | None = None) -> tuple[list[dict[str, Any]], int, str]:
        """All items of one type (in `namespace` when it is namespaced and one is given), paginated
        (limit/continue); returns (items, status, reason); status 200 on success."""
        items, status, reason, _ = self.list_versioned(rtype, namespace)
        return items, status, reason

    def list_versioned(self, rtype: ResourceType, namespace: str | None = None
                       ) -> tuple[list[dict[str, Any]], int, str, str]:
        """list_raw, also returning the list's resourceVersion (where a watch of the type starts: the last page's
        metadata.resourceVersion, the one consistent snapshot every page of a paginated list was served from)."""
        path = rtype.path_in(namespace)
        items: list[dict[str, Any]] = []
        cont = ""
        api_version = rtype.group_version
        while True:
            query: dict[str, Any] = {"limit": PAGE_SIZE}
            if cont:
                query["continue"] = cont
            status, raw, headers = self.call("GET", path, query=query)
            if status != 200:
                return [], status, _status_reason(status, _loads(raw)), ""
            doc, problem = api_list(rtype, raw, headers)
            if doc is None:
                return [], NOT_API, problem, ""
            for item in doc.get("items") or ():
                if isinstance(item, dict):  # list items come without apiVersion/kind: fill them in
                    item.setdefault("apiVersion", api_version)
                    item.setdefault("kind", rtype.kind)
                    items.append(item)
            meta = doc.get("metadata") or {}
            cont = meta.get("continue") or ""
            if not cont:
                return items, 200, "", str(meta.get("resourceVersion") or "")

    def stream(self, path: str, query: dict[str, Any], read_timeout: float) -> tuple[int, Any]:
        """A GET whose body is read as it arrives (a watch): (status, urllib3 response). The caller reads lines
        from a 200 and closes the response; any other status comes with its body already read."""
        hdrs = {"Accept": "application/json"}
        try:
            method_, url, hdrs_, _, post = self.api.param_serialize(
                "GET", path, query_params=list(query.items()), header_params=hdrs, auth_settings=["BearerToken"])
            resp = self.api.call_api(method_, url, hdrs_, None, post, _request_timeout=(TIMEOUT[0], read_timeout))
        except Exception as exc:
            status = getattr(exc, "status", 0) or 0
            if status:
                return int(status), None
            raise ClusterError(f"cluster {self.context or self.host}: {self.host}: {_transport(exc)}") from None
        return int(resp.status), resp.response


NOT_API = -1  # list_raw status: the endpoint answered 200 with something that is not the API's list


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")


def api_list(rtype: ResourceType, raw: bytes, headers: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
    """The decoded list if this 200 answer is what the apiserver serves for a list of `rtype`, else why not.

    A proxy's login page, a captive portal or a wrong URL also answer 200: counting that as "read, nothing found"
    would report full coverage of a cluster never seen. The apiserver answers a list GET with
    Content-Type application/json (we ask only for it) and a `<Kind>List` of the group/version asked for
    (apimachinery meta/v1 List types; `items` is always present, null for a nil slice)."""
    ctype = _header(headers, "content-type").split(";")[0].strip().lower()
    if ctype != "application/json":
        return None, f"not the API's JSON: content type {printable(ctype or 'missing')}"
    doc = _loads(raw)
    if not isinstance(doc, dict):
        return None, "not the API's JSON: the body is not a JSON object"
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    want = f"{rtype.kind}List"
    if kind != want or api_version != rtype.group_version:
        return None, (f"not a {want} of {rtype.group_version}: got kind {printable(repr(kind))} "
                      f"apiVersion {printable(repr(api_version))}")
    if not isinstance(doc.get("items"), list | None) or not isinstance(doc.get("metadata"), dict | None):
        return None, f"not a {want}: items or metadata of the wrong type"
    return doc, ""


def _status_reason(status: int, doc: Any) -> str:
    msg = doc.get("message") if isinstance(doc, dict) else None
    return f"HTTP {status}: {printable(str(msg))}" if msg else f"HTTP {status}"


def _transport(exc: BaseException) -> str:
    """urllib3 nests the cause (MaxRetryError → NewConnectionError/SSLError); say the cause in a few words."""
    reason = getattr(exc, "reason", None)
    text = str(reason if isinstance(reason, BaseException) else exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip()
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "TLS: server certificate not trusted by the kubeconfig's CA"
    return _one_line(reason if isinstance(reason, BaseException) else exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else type(exc).__name__


def load_cluster(
    kubeconfig: str | None = None,
    context: str | None = None,
    types: Sequence[ResourceType] = SCAN_TYPES,
    *,
    client: Client | None = None,
    on_type: Callable[[ResourceType], None] | None = None,
    namespace: str | None = None,
) -> ClusterSnapshot:
    """Read `types` from the cluster. 403/404 (and other refusals) → NotAssessed; coverage counts what was read.

    With `namespace` (kubectl's -n): namespaced types are listed in that namespace only, the Namespace is read
    by name (a user with rights in one namespace may get it, not list them all), cluster-scoped types whole.
    A namespace that does not exist is a ClusterError: a typo must not read as a clean namespace."""
    cl = client or Client(kubeconfig, context)
    seen: set[str] = set()
    resources: list[Resource] = []
    unknown: list[NotAssessed] = []
    wanted = read = 0
    for rtype in types:
        if rtype.path in seen:
            continue
        seen.add(rtype.path)
        if namespace and rtype.kind == "Namespace":
            items, status, reason = _get_namespace(cl, namespace)
        else:
            items, status, reason = cl.list_raw(rtype, namespace) if namespace else cl.list_raw(rtype)
        if on_type is not None:
            on_type(rtype)
        if status == 404 and rtype.optional:
            continue  # API not installed: no object of this type can exist
        wanted += 1
        if status != 200:
            what = rtype.name
            if namespace and rtype.kind == "Namespace":
                what = f"namespaces/{namespace}"
            elif namespace and rtype.namespaced:
                what = f"{rtype.name} in namespace {namespace}"
            unknown.append(NotAssessed(what, reason))
            continue
        read += 1
        resources.extend(Resource(obj, cluster=cl.context) for obj in items)
    return ClusterSnapshot(resources, context=cl.context, coverage=(read, wanted), not_assessed=unknown,
                           namespace=namespace)


def _get_namespace(cl: Client, name: str) -> tuple[list[dict[str, Any]], int, str]:
    """GET /api/v1/namespaces/NAME as one-item list_raw answer; 404 → ClusterError (no such namespace)."""
    status, raw, headers = cl.call("GET", quote_path("api", "v1", "namespaces", name))
    doc = _loads(raw)
    if status == 404:
        raise ClusterError(f"cluster {cl.context}: namespace {printable(name)} not found")
    if status != 200:
        return [], status, _status_reason(status, doc)
    ctype = _header(headers, "content-type").split(";")[0].strip().lower()
    if ctype != "application/json" or not isinstance(doc, dict) or doc.get("kind") != "Namespace":
        return [], NOT_API, "not the API's Namespace object"
    doc.setdefault("apiVersion", "v1")
    return [doc], 200, ""


def quote_path(*parts: str) -> str:
    """Join URL path segments, each percent-encoded (names may hold ':' or '@')."""
    return "/" + "/".join(quote(p, safe="") for p in parts)
