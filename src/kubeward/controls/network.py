"""Network exposure controls: Services reachable from outside, Ingress TLS, NetworkPolicy coverage.

Coverage uses the NetworkPolicy rules from k8s.io/api networking/v1 types.go and the network-policies docs:
a policy selects pods in its own namespace only; an empty (or omitted) podSelector selects all of them; policyTypes
defaults to [Ingress] plus Egress when egress rules exist (pkg/apis/networking/v1/defaults.go). The full
reachability engine lives in kubeward.engines.netpol; these are the simple, cheap forms.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from functools import partial
from typing import Any

from ..engines.pss.baseline import host_namespace
from ..records import record
from ..resource import POD_KINDS, Resource
from ..selectors import Selector, SelectorError, compile_selector
from ..snapshot import Snapshot, judged_each, namespaces_of
from ..textsafe import printable
from .registry import Hit, control

Found = Iterator[tuple[Resource, str, str]]
Located = tuple[Resource, str, str]


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# ---------------------------------------------------------------------------------------------- Services


@control(
    "KW-N001", "NodePort Service", "medium", "network",
    frameworks=("nsa", "mitre-T1133"),
    remediation="Use a ClusterIP Service behind an Ingress or an internal load balancer instead of NodePort.",
    shape="object", kinds=("Service",),
)
def node_port(res: Resource) -> Iterator[Hit]:
    """A Service is not of type NodePort: a NodePort opens its port on every node's addresses, past any load
    balancer or ingress in front, so the workload is reachable wherever a node is. Upstream: the Service docs
    (kubernetes.io/docs/concepts/services-networking/service/#type-nodeport); NSA/CISA Kubernetes Hardening
    Guide, network separation."""
    spec = _d(res.obj.get("spec"))
    if spec.get("type") == "NodePort":
        yield "/spec/type", "Service opens a port on every node (type NodePort)"


# pkg/api/v1/service/util.go GetLoadBalancerSourceRanges: the field wins, the annotation is the fallback,
# and no ranges at all means 0.0.0.0/0.
LB_SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
_OPEN = frozenset({ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")})


def _open_range(text: str) -> bool:
    try:
        return ipaddress.ip_network(text.strip(), strict=False) in _OPEN
    except ValueError:
        return False


@control(
    "KW-N002", "LoadBalancer Service open to the internet", "medium", "network",
    frameworks=("nsa", "mitre-T1133", "mitre-T1190"),
    remediation="Set spec.loadBalancerSourceRanges to the client CIDRs (or use an internal load balancer).",
    shape="object", kinds=("Service",),
)
def open_load_balancer(res: Resource) -> Iterator[Hit]:
    """A LoadBalancer Service limits its clients: spec.loadBalancerSourceRanges (or, when the field is empty,
    the service.beta.kubernetes.io/load-balancer-source-ranges annotation) is set and not 0.0.0.0/0 or ::/0; no
    ranges at all means any address. Upstream: pkg/api/v1/service/util.go (GetLoadBalancerSourceRanges)."""
    spec = _d(res.obj.get("spec"))
    if spec.get("type") != "LoadBalancer":
        return
    ranges = [str(r) for r in _l(spec.get("loadBalancerSourceRanges"))]
    where = "/spec/loadBalancerSourceRanges"
    if not ranges:
        ann = res.annotations.get(LB_SOURCE_RANGES_ANNOTATION)
        ranges = [r for r in str(ann).split(",") if r.strip()] if ann else []
        where = "/metadata/annotations" if ann else "/spec/type"
    if not ranges or any(_open_range(r) for r in ranges):
        yield where, "LoadBalancer Service accepts traffic from any address"


@control(
    "KW-N003", "Service with externalIPs", "high", "network",
    frameworks=("nsa", "mitre-T1557"),
    remediation="Remove spec.externalIPs (CVE-2020-8554: any user who can create Services can intercept traffic "
    "to those IPs); block it with the DenyServiceExternalIPs admission plugin.",
    shape="object", kinds=("Service",),
)
def external_ips(res: Resource) -> Iterator[Hit]:
    """A Service sets no spec.externalIPs: the apiserver does not check who owns those addresses, so anyone who
    may create a Service can intercept the traffic for them (CVE-2020-8554). Upstream:
    kubernetes/kubernetes#97076; the DenyServiceExternalIPs admission plugin."""
    ips = _l(_d(res.obj.get("spec")).get("externalIPs"))
    if ips:
        yield "/spec/externalIPs", f"Service claims external IPs {', '.join(map(str, ips))}"


# Ports an attacker looks for first: remote shells, container/cluster APIs and datastores without auth by default.
SENSITIVE_PORTS: dict[int, str] = {
    22: "SSH", 23: "telnet", 2375: "Docker API", 2376: "Docker API (TLS)", 2379: "etcd", 2380: "etcd peer",
    3306: "MySQL", 5432: "PostgreSQL", 6379: "Redis", 6443: "Kubernetes API", 9200: "Elasticsearch",
    10250: "kubelet API", 10255: "kubelet read-only API", 11211: "memcached", 27017: "MongoDB", 5984: "CouchDB",
    8500: "Consul", 3389: "RDP", 5900: "VNC", 9090: "Prometheus", 15672: "RabbitMQ management",
}


@control(
    "KW-N004", "Administrative or database port exposed outside the cluster", "high", "network",
    frameworks=("nsa", "mitre-T1133", "mitre-T1190"),
    remediation="Keep management and datastore ports on ClusterIP Services; reach them through a bastion or "
    "port-forward.",
    shape="object", kinds=("Service",),
)
def sensitive_port_exposed(res: Resource) -> Iterator[Hit]:
    """A Service reachable from outside the cluster (NodePort, LoadBalancer or externalIPs) exposes no remote
    shell, container or cluster API or datastore port (SSH, Docker API, etcd, kubelet, the Kubernetes API,
    databases, caches, message-queue management): those are the first ports an attacker probes, and several have
    no authentication by default. Upstream: NSA/CISA Kubernetes Hardening Guide; MITRE ATT&CK T1133, T1190."""
    spec = _d(res.obj.get("spec"))
    if spec.get("type") not in ("NodePort", "LoadBalancer") and not spec.get("externalIPs"):
        return
    for i, p in enumerate(_l(spec.get("ports"))):
        port = _d(p).get("port")
        target = _d(p).get("targetPort")
        for value in (port, target):
            if isinstance(value, int) and value in SENSITIVE_PORTS:
                yield f"/spec/ports/{i}", f"{SENSITIVE_PORTS[value]} port {value} is reachable from outside the cluster"
                break


# ----------------------------------------------------------------------------------------------- Ingress


@control(
    "KW-N005", "Ingress without TLS", "medium", "network",
    frameworks=("nsa", "mitre-T1040", "mitre-T1557"),
    remediation="Add spec.tls with a certificate Secret for every host the Ingress serves.",
    shape="object", kinds=("Ingress",),
)
def ingress_no_tls(res: Resource) -> Iterator[Hit]:
    """An Ingress has spec.tls: without it the controller serves its hosts over plain HTTP, so credentials and
    session cookies cross the network in the clear. Upstream: the Ingress docs, TLS
    (kubernetes.io/docs/concepts/services-networking/ingress/#tls)."""
    spec = _d(res.obj.get("spec"))
    if not _l(spec.get("tls")):
        yield ("/spec/tls" if "tls" in spec else "/spec"), "Ingress serves plain HTTP (no spec.tls)"


def _host_covered(host: str, tls_hosts: set[str]) -> bool:
    # A TLS host "*.example.com" covers exactly one label (RFC 6125 6.4.3 as ingress controllers apply it).
    if host in tls_hosts:
        return True
    _, _, rest = host.partition(".")
    return bool(rest) and f"*.{rest}" in tls_hosts


@control(
    "KW-N006", "Ingress host not covered by TLS", "low", "network",
    frameworks=("nsa", "mitre-T1040"),
    remediation="List every rules[].host in a spec.tls[].hosts entry.",
    shape="object", kinds=("Ingress",),
)
def ingress_host_uncovered(res: Resource) -> Iterator[Hit]:
    """Every rules[].host of an Ingress that has TLS is listed in a spec.tls[].hosts entry (a wildcard covers
    one label, RFC 6125 6.4.3): a host left out is served without the certificate, usually over plain HTTP.
    Upstream: the Ingress docs, TLS."""
    spec = _d(res.obj.get("spec"))
    tls = _l(spec.get("tls"))
    if not tls:
        return  # KW-N005 reports it
    tls_hosts = {str(h) for t in tls for h in _l(_d(t).get("hosts"))}
    for i, rule in enumerate(_l(spec.get("rules"))):
        host = _d(rule).get("host")
        if host and not _host_covered(str(host), tls_hosts):
            yield f"/spec/rules/{i}/host", f"host {host} is served without TLS"


# ---------------------------------------------------------------------------------------- NetworkPolicy


@record
class _Policy:
    namespace: str
    selector: Selector | None
    ingress: bool
    egress: bool


def _policy(res: Resource) -> _Policy:
    spec = _d(res.obj.get("spec"))
    try:
        # podSelector is a required struct: omitted decodes to {} and selects every pod in the namespace.
        sel = compile_selector(spec.get("podSelector") or {})
    except (SelectorError, TypeError, AttributeError):
        sel = None  # malformed: the apiserver would have rejected it, so it selects nothing
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        ing, eg = "Ingress" in types, "Egress" in types
    else:
        ing, eg = True, bool(_l(spec.get("egress")))
    return _Policy(str(res.namespace), sel, ing, eg)


def _policies(snap: Snapshot) -> dict[str, list[_Policy]]:
    """The simple form of each NetworkPolicy, per namespace: once per snapshot for KW-N007..N009. A policy's
    form is a function of the object alone, so the monitor's lane makes it again only for a new version."""
    def per_namespace(s: Snapshot) -> dict[str, list[_Policy]]:
        by_ns: dict[str, list[_Policy]] = {}
        for p in judged_each(s, "network.policy", lambda s: s.of_kind("NetworkPolicy"), lambda s: _one_policy,
                             lambda changes: set()):
            by_ns.setdefault(p.namespace, []).append(p)
        return by_ns

    return snap.derived("network.policies", per_namespace)


def _one_policy(res: Resource) -> list[_Policy]:
    return [_policy(res)]


@control(
    "KW-N007", "Namespace without NetworkPolicy", "medium", "network",
    frameworks=("nsa", "cis-5.3.2", "mitre-T1046"),
    remediation="Add a default-deny NetworkPolicy (podSelector: {}, policyTypes: [Ingress, Egress]) to the "
    "namespace, then allow the flows it needs.",
    shape="snapshot", kinds=("Namespace",),
)
def namespace_without_policy(snap: Snapshot) -> Found:
    """Every namespace of the input (but kube-public and kube-node-lease) has a NetworkPolicy: without one no pod of
    it is isolated, so any pod of the cluster reaches all of them and they reach anything. Upstream: the Network
    Policies docs (kubernetes.io/docs/concepts/services-networking/network-policies/); CIS 5.3.2."""
    covered = {ns for ns, pols in _policies(snap).items() if pols}
    for ns in snap.namespaces():
        if ns in covered or ns in ("kube-public", "kube-node-lease"):
            continue
        obj = snap.get("Namespace", None, ns)
        if obj is not None:
            yield obj, "/metadata", f"namespace {ns} has no NetworkPolicy: all pod traffic is allowed"
            continue
        pods = [r for r in snap.in_namespace(ns) if r.kind in POD_KINDS]
        if pods:
            yield pods[0], "/metadata", f"namespace {ns} has no NetworkPolicy: all pod traffic is allowed"


def _unselected_in(direction: str, by_ns: dict[str, list[_Policy]], res: Resource) -> list[Located]:
    """KW-N008/N009 on one workload, given its namespace's policies."""
    pod = res.pod()
    if pod is None or host_namespace(pod.spec, "hostNetwork"):
        return []  # NetworkPolicy does not apply to host-network pods
    labels = pod.labels
    pols = by_ns.get(str(res.namespace), ())
    if any(getattr(p, direction) and p.selector is not None and p.selector.matches(labels) for p in pols):
        return []
    where = f"{pod.base}/metadata/labels" if pod.labels else (f"{pod.base}/metadata" if pod.base else "/metadata")
    what = "ingress" if direction == "ingress" else "egress"
    return [(res, where, f"no NetworkPolicy selects these pods for {what}: all {what} traffic is allowed")]


def _unselected(direction: str) -> Any:
    def check(snap: Snapshot) -> Found:
        # a workload's verdict reads its own pod and its namespace's policies: the monitor re-judges only the
        # workloads that changed and those of namespaces whose policies changed
        yield from judged_each(snap, f"network.unselected.{direction}", lambda s: s.workloads(),
                               lambda s: partial(_unselected_in, direction, _policies(s)),
                               lambda changes: namespaces_of(changes, "NetworkPolicy"))
    return check


control(
    "KW-N008", "Workload not isolated for ingress by any NetworkPolicy", "medium", "network",
    frameworks=("nsa", "cis-5.3.2", "mitre-T1046"),
    remediation="Select the workload's pods with a NetworkPolicy that has Ingress in policyTypes.",
    shape="snapshot", kinds=POD_KINDS,
    description="A workload's pods (host-network pods aside, which NetworkPolicy does not govern) are selected by "
    "a NetworkPolicy of their namespace that applies to ingress (policyTypes, defaulted to Ingress): a pod no "
    "policy selects accepts traffic from everywhere. Upstream: the Network Policies docs (isolation); "
    "pkg/apis/networking/v1/defaults.go; CIS 5.3.2.",
)(_unselected("ingress"))
control(
    "KW-N009", "Workload not isolated for egress by any NetworkPolicy", "low", "network",
    frameworks=("nsa", "mitre-T1041"),
    remediation="Select the workload's pods with a NetworkPolicy that has Egress in policyTypes (allow DNS explicitly).",
    shape="snapshot", kinds=POD_KINDS,
    description="A workload's pods (host-network pods aside) are selected by a NetworkPolicy that applies to egress "
    "(Egress in policyTypes, or egress rules when policyTypes is unset): a pod no policy isolates for egress "
    "may send anywhere, which is how data leaves a compromised pod. Upstream: the Network Policies docs; "
    "pkg/apis/networking/v1/defaults.go.",
)(_unselected("egress"))


@control(
    "KW-N010", "NetworkPolicy allows all ingress", "medium", "network",
    frameworks=("nsa", "mitre-T1046"),
    remediation="Replace the empty ingress rule with from/ports that name the expected clients.",
    shape="object", kinds=("NetworkPolicy",),
)
def policy_allows_all(res: Resource) -> Iterator[Hit]:
    """No ingress rule of a NetworkPolicy that applies to ingress is empty (neither from nor ports): an empty
    rule matches every source on every port, undoing the isolation the policy selects its pods into. Upstream:
    k8s.io/api networking/v1 types.go (NetworkPolicyIngressRule: an empty from matches all sources, empty ports
    all ports)."""
    # An ingress rule with neither `from` nor `ports` (or both empty) matches every source on every port.
    spec = _d(res.obj.get("spec"))
    types = spec.get("policyTypes")
    if isinstance(types, list) and types and "Ingress" not in types:
        return  # ingress rules of an egress-only policy are ignored
    for i, rule in enumerate(_l(spec.get("ingress"))):
        rule = _d(rule)
        if not _l(rule.get("from")) and not _l(rule.get("ports")):
            yield f"/spec/ingress/{i}", "ingress rule allows every source on every port"


# ------------------------------------------------------------------------------------ ingress-nginx annotations

# ingress-nginx reads annotations under this prefix (docs/user-guide/nginx-configuration/annotations.md; the
# controller's --annotations-prefix can change it, and kubeward judges the default).
NGINX_PREFIX = "nginx.ingress.kubernetes.io/"


def _nginx_annotations(res: Resource) -> Iterator[tuple[str, str, str]]:
    """(name without the prefix, value, JSON pointer) for every ingress-nginx annotation of the object."""
    for key, value in res.annotations.items():
        key = str(key)
        if key.startswith(NGINX_PREFIX):
            yield key[len(NGINX_PREFIX):], str(value), f"/metadata/annotations/{key.replace('~', '~0').replace('/', '~1')}"


@control(
    "KW-N011", "ingress-nginx snippet annotation", "high", "network",
    frameworks=("nsa", "mitre-T1190", "mitre-T1528"),
    remediation="Remove the *-snippet annotation and use the dedicated annotation or ConfigMap setting; keep "
    "allow-snippet-annotations false in the controller ConfigMap (CVE-2021-25742, CVE-2023-5043).",
    shape="object", kinds=("Ingress",),
)
def nginx_snippet(res: Resource) -> Iterator[Hit]:
    """An Ingress carries no ingress-nginx *-snippet annotation (configuration-, server-, auth-, stream-,
    modsecurity-snippet): they insert raw nginx configuration, so whoever can write the Ingress runs code in the
    controller and reads its token, which by default sees every Secret. Upstream: ingress-nginx annotations docs
    (Configuration snippet), CVE-2021-25742, CVE-2023-5043."""
    # configuration-, server-, auth-, stream- and modsecurity-snippet insert raw nginx configuration: whoever can
    # write the Ingress runs code in the controller and reads its token, which sees every Secret by default
    # (annotations.md "Configuration snippet", kubernetes/ingress-nginx#7837).
    for name, _, where in _nginx_annotations(res):
        if name.endswith("-snippet"):
            yield where, f"annotation {NGINX_PREFIX}{printable(name)} injects raw nginx configuration"


# Annotations whose value the controller wrote into nginx.conf unsanitized (IngressNightmare, March 2025:
# CVE-2025-24514 auth-url, CVE-2025-1097 auth-tls-match-cn, CVE-2025-1098 mirror-target and mirror-host,
# kubernetes/kubernetes#131006-#131008; CVE-2023-5044 permanent-redirect, ingress-nginx#10572).
NGINX_INJECTABLE = frozenset({"auth-url", "auth-signin", "auth-tls-match-cn", "mirror-target", "mirror-host",
                              "permanent-redirect", "temporal-redirect"})
# What ends an nginx directive or string, opens or closes a block, or starts a comment: none has a place in a URL,
# a host or a CN pattern, and each is what the published exploits use to escape the value.
_NGINX_BREAKOUT = frozenset(";{}\"'`\n\r#")


@control(
    "KW-N012", "ingress-nginx annotation value can inject configuration", "high", "network",
    frameworks=("nsa", "mitre-T1190"),
    remediation="Remove the quote, semicolon, brace, '#' or line break from the annotation value and upgrade "
    "ingress-nginx to v1.11.5 / v1.12.1 or later (IngressNightmare, CVE-2025-24514, CVE-2025-1097, CVE-2025-1098).",
    shape="object", kinds=("Ingress",),
)
def nginx_injection(res: Resource) -> Iterator[Hit]:
    """The ingress-nginx annotations whose value the controller wrote into nginx.conf unsanitised (auth-url,
    auth-signin, auth-tls-match-cn, mirror-target, mirror-host, permanent-redirect, temporal-redirect) hold no
    quote, semicolon, brace, '#' or line break, the characters the published exploits use to escape the
    directive. Upstream: IngressNightmare, CVE-2025-24514, CVE-2025-1097, CVE-2025-1098
    (kubernetes/kubernetes#131006 to #131008), CVE-2023-5044."""
    for name, value, where in _nginx_annotations(res):
        if name in NGINX_INJECTABLE and not _NGINX_BREAKOUT.isdisjoint(value):
            yield where, f"annotation {NGINX_PREFIX}{name} holds characters that break out of the nginx directive"


def _flag(value: str) -> bool | None:
    # parser.GetBoolAnnotation: strconv.ParseBool (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


@control(
    "KW-N013", "ingress-nginx annotation turns off HTTPS redirect or authentication", "medium", "network",
    frameworks=("nsa", "mitre-T1040", "mitre-T1557"),
    remediation="Drop ssl-redirect: \"false\" and enable-global-auth: \"false\", set auth-type with auth-secret, "
    "and use auth-tls-verify-client: on with auth-tls-secret.",
    shape="object", kinds=("Ingress",),
)
def nginx_weakened(res: Resource) -> Iterator[Hit]:
    """No ingress-nginx annotation switches protection off: ssl-redirect "false" on an Ingress with TLS (its
    hosts also served over HTTP), enable-global-auth "false" (the global external authentication skipped),
    auth-secret without auth-type (basic authentication silently not applied), auth-tls-verify-client off,
    optional or optional_no_ca with a client CA (certificates not enforced). Booleans are read as
    strconv.ParseBool reads them. Upstream: ingress-nginx annotations docs;
    internal/ingress/annotations/auth/main.go."""
    ann = {name: (value, where) for name, value, where in _nginx_annotations(res)}
    # ssl-redirect defaults to true for an Ingress with TLS: "false" serves the same hosts over plain HTTP
    # (annotations.md "Server-side HTTPS enforcement through redirect").
    if "ssl-redirect" in ann and _flag(ann["ssl-redirect"][0]) is False and _l(_d(res.obj.get("spec")).get("tls")):
        yield ann["ssl-redirect"][1], "ssl-redirect \"false\": the TLS hosts are also served over plain HTTP"
    # enable-global-auth "false" exempts the Ingress from the controller's global-auth-url external auth.
    if "enable-global-auth" in ann and _flag(ann["enable-global-auth"][0]) is False:
        yield ann["enable-global-auth"][1], "enable-global-auth \"false\": the global external authentication is skipped"
    # annotations/auth/main.go Parse: without auth-type the auth annotations are ignored (no basic auth at all),
    # while an auth-type without a readable secret denies the location (fails closed, not reported).
    if "auth-secret" in ann and "auth-type" not in ann:
        yield ann["auth-secret"][1], "auth-secret without auth-type: basic/digest authentication is not applied"
    # auth-tls-verify-client: off requests no client certificate; optional lets requests without one through;
    # optional_no_ca also accepts certificates from any CA (annotations.md "Client Certificate Authentication").
    verify = ann.get("auth-tls-verify-client")
    if verify is not None and "auth-tls-secret" in ann and verify[0] in ("off", "optional", "optional_no_ca"):
        yield verify[1], f"auth-tls-verify-client {verify[0]}: client certificates are not enforced"
