"""The attack graph of a snapshot, every edge decided by an engine (docs/paths.md lists them with their evidence):

- exposed (internet → pod): LoadBalancer/NodePort Services, externalIPs, Ingress backends, hostNetwork, hostPort,
  each gated by the pod's NetworkPolicies on the target port (netpol engine);
- network (pod → pod): the netpol class engine's matrix on the ports the destination listens on;
- runs-as (pod → service account): the automounted token (rbac.workloads), a projected token, a token Secret volume;
- escapes-to-node (pod → node): the Pod Security engine's facts (privileged, hostPID), sensitive hostPath
  (kubeward.hostpaths), capabilities that give the node;
- node-credentials (node → service accounts): what the Node authorizer lets the kubelet's identity read;
- rbac: the escalation-paths engine's edges (pod creation, tokens, impersonation, bind, escalate, CSR, token Secrets);
  pod creation in a namespace whose Pod Security enforce level admits privileged pods also escapes to the node;
- reads-secret (identity → every secret): get/list secrets cluster-wide.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .. import hostpaths
from ..engines.netpol.classes import ClassIndex, bits
from ..engines.netpol.cluster import Cluster
from ..engines.netpol.cluster import from_snapshot as netpol_cluster
from ..engines.netpol.decide import evaluate_direction
from ..engines.netpol.ipblock import parse_ip
from ..engines.netpol.model import Pod
from ..engines.netpol.policy import INGRESS, Policy
from ..engines.pss import facts
from ..engines.pss.baseline import capabilities, host_namespace
from ..engines.pss.baseline import host_path as pss_host_path
from ..engines.pss.namespaces import policy_from_labels
from ..engines.pss.pod import PodInput
from ..engines.pss.versions import Level
from ..engines.rbac.index import RBACIndex
from ..engines.rbac.paths import (
    POD_CREATE,
    SECRET_GET,
    SECRET_LIST,
    TARGET,
    Claim,
    EscalationGraph,
    escalation_graph,
    sa_node,
)
from ..records import field, record
from ..resource import Resource
from ..snapshot import Snapshot
from .graph import CLUSTER_ADMIN, INTERNET, NODES, SECRETS, Edge, EdgeKind, Graph, Obj, pod_node

assert TARGET == CLUSTER_ADMIN  # the RBAC engine's target node is the graph's
# Capabilities that take the node from a root container (Bishop Fox "Bad Pods"; capabilities(7)): mount and
# namespaces (SYS_ADMIN), kernel modules, raw devices, reading any file by handle (the "shocker" escape).
ESCAPE_CAPS = frozenset({"SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH", "ALL"})
PUBLIC_ADDRESS = parse_ip("203.0.113.10")  # TEST-NET-3: stands for any address outside the cluster
NODE_GROUP = "system:nodes"


def _ref(res: Resource | None, path: str = "") -> Obj | None:
    return Obj(res.kind, res.namespace, res.name, path) if res is not None else None


def _where(res: Resource | None, path: str) -> tuple[str | None, int | None]:
    if res is None:
        return None, None
    loc = res.location(path)
    return loc.file, loc.line


_PLACES: dict[tuple[int, str], tuple[Obj | None, str | None, int | None]] = {}  # one build's object places


def _edge(src: str, dst: str, kind: EdgeKind, engine: str, evidence: str, fix: str, cost: int,
          res: Resource | None = None, path: str = "", claims: tuple[Claim, ...] = ()) -> Edge:
    key = (id(res), path)
    place = _PLACES.get(key)
    if place is None:
        place = _PLACES[key] = (_ref(res, path), *_where(res, path))
    asks = tuple((p.verb, p.group, p.resource, p.sub, ns, name) for p, ns, name in claims) if claims else ()
    return Edge(src, dst, kind, engine, evidence, fix, cost, place[0], place[1], place[2], asks)


def build(snapshot: Snapshot, index: RBACIndex | None = None, *, escalations: EscalationGraph | None = None,
          cluster: Cluster | None = None, reuse: Graph | None = None) -> Graph:
    """The whole graph; `index`, `escalations` (its escalation graph) and `cluster` (the compiled NetworkPolicy
    model) are the engines' state when the caller has it (scan shares one of each per snapshot). `reuse`: the
    graph of the monitor's previous lane run, whose pods' edges are taken as they are where the same objects
    made them (`_pods`); the result is the graph a build without it makes."""
    g = Graph()
    g.node(INTERNET, "internet")
    g.node(CLUSTER_ADMIN, "cluster-admin")
    g.node(SECRETS, "secrets")
    g.node(NODES, "node")
    _PLACES.clear()  # keyed by object id: valid for this snapshot only
    idx = index if index is not None else RBACIndex.from_snapshot(snapshot)
    cluster = cluster if cluster is not None else netpol_cluster(snapshot)
    g.notes.extend(str(n) for n in cluster.notes if n.error)
    _rbac(g, escalations if escalations is not None else escalation_graph(idx, snapshot), snapshot)
    pods = [p for p in cluster.pods if p.resource is not None]
    before = reuse.parts if reuse is not None else None
    kept = g.parts = PodParts({}, {}, ())
    _pods(g, snapshot, cluster, pods, kept, before)
    _network(g, cluster, snapshot, kept, before)
    _PLACES.clear()
    return g


# ---- RBAC ------------------------------------------------------------------------------------------------------


def _rbac(g: Graph, eg: EscalationGraph, snapshot: Snapshot) -> None:
    for u, outs in eg.edges.items():
        for v, (label, b) in outs.items():
            if b is None:  # membership, "run as / act as" hubs, system:masters: facts of the authenticator
                g.add(Edge(u, v, EdgeKind.MEMBER, "rbac", label, "", 0))
                continue
            fix = "" if b.bootstrap else f"remove {u} from {b.describe()} or narrow its role"
            g.add(_edge(u, v, EdgeKind.RBAC, "rbac", label, fix, 1, b.resource, "/subjects", eg.claims.get((u, v), ())))
    g.add(Edge(CLUSTER_ADMIN, SECRETS, EdgeKind.MEMBER, "rbac", "full authority reads every secret", "", 0))
    g.add(Edge(CLUSTER_ADMIN, NODES, EdgeKind.MEMBER, "rbac",
               "full authority runs a privileged pod on any node", "", 0))
    for ns in sorted(eg.service_accounts):
        g.add(Edge(CLUSTER_ADMIN, f"any service account in {ns}", EdgeKind.MEMBER, "rbac",
                   "full authority acts as any service account", "", 0))
    namespaces = _namespaces(snapshot, eg.service_accounts)
    for node, scopes in eg.held.items():
        for scope, have in scopes.items():
            probe = next((p for p in POD_CREATE if p in have), None)
            if probe is not None:
                b, _ = have[probe]
                where = f"in {scope}" if scope else "in every namespace"
                target = f"create-pods {scope or '*'}"
                fix = "" if b.bootstrap else f"remove {node} from {b.describe()} or narrow its role"
                g.add(_edge(node, target, EdgeKind.RBAC, "rbac", f"{probe} {where} ({b.describe()})", fix, 1,
                            b.resource, "/subjects", ((probe, scope, ""),)))
                _privileged_pods(g, target, scope, namespaces)
            if not scope:
                lst, get = have.get(SECRET_LIST), have.get(SECRET_GET)
                hit, probe = (lst, SECRET_LIST) if lst is not None and not lst[1].names else \
                    (get, SECRET_GET) if get is not None and not get[1].names else (None, SECRET_GET)
                if hit is not None:
                    b = hit[0]
                    fix = "" if b.bootstrap else f"remove {node} from {b.describe()} or drop secrets from its role"
                    g.add(_edge(node, SECRETS, EdgeKind.READS_SECRET, "rbac",
                                f"reads secrets in every namespace ({b.describe()})", fix, 1, b.resource, "/subjects",
                                ((probe, "", ""),)))
    g.nodes.setdefault(f"Group {NODE_GROUP}", "Group")
    g.add(Edge(NODES, f"Group {NODE_GROUP}", EdgeKind.MEMBER, "node-authorizer",
               f"the kubelet's credentials (User system:node:NAME) are in {NODE_GROUP}", "", 0))


def _namespaces(snapshot: Snapshot, sas: dict[str, set[str]]) -> dict[str, tuple[Level, Resource | None]]:
    """Namespace → its Pod Security enforce level (api.PolicyToEvaluate over the labels; no Namespace object in
    the inputs reads as no labels, PSA's default: privileged)."""
    out: dict[str, tuple[Level, Resource | None]] = {}
    for res in snapshot.of_kind("Namespace"):
        policy, _ = policy_from_labels(dict(res.labels))
        out[res.name] = (policy.enforce.level, res)
    # every cluster has these (the apiserver's system namespaces controller creates them); unknown labels read as
    # PSA's default, privileged, so cluster-wide pod creation is never judged on the inputs' namespaces alone
    for ns in [*snapshot.namespaces(), *sas, "default", "kube-system", "kube-public", "kube-node-lease"]:
        out.setdefault(ns, (Level.PRIVILEGED, None))
    return out


def _privileged_pods(g: Graph, target: str, scope: str, namespaces: dict[str, tuple[Level, Resource | None]]) -> None:
    names = [scope] if scope else sorted(namespaces)
    for ns in names:
        level, res = namespaces.get(ns, (Level.PRIVILEGED, None))
        if level is not Level.PRIVILEGED:
            continue
        label = "pod-security.kubernetes.io/enforce"
        why = f"namespace {ns} enforces Pod Security level privileged (label {label} absent or privileged)"
        g.add(_edge(target, NODES, EdgeKind.ESCAPES, "pss", f"create a privileged pod: {why}",
                    f"label namespace {ns} {label}=baseline (or restricted)", 1, res, "/metadata/labels"))
        if scope == "":
            return  # one namespace that admits them is enough for "create pods anywhere"


# ---- pods ------------------------------------------------------------------------------------------------------


@record(eq=False)
class _Part:
    """What one pod gave the graph, in the order it was added, and what each piece was made from: the next build
    of the monitor takes a piece as it is when those inputs are the same (`_pods`)."""

    res: Resource
    model: Pod
    node: str
    key: tuple[str, str, str]  # its kind, namespace and name
    account: tuple[str, bool]  # its service account, and whether its token is automounted
    runs_as: list[Edge]  # a function of the workload, its account and its namespace's token Secrets
    escapes: list[Edge]  # of the workload alone
    exposed: list[Edge]  # of the model, its namespace's exposures and NetworkPolicies, the admin tiers
    credentials: Edge  # of the workload and its account


@record(eq=False)
class _Inputs:
    """A namespace's inputs to its pods' parts."""

    exposures: list[Exposure]
    policies: list[Policy]
    tokens: dict[str, str]  # token Secret name → its service account


@record(eq=False)
class PodParts:
    """The pod side of a build, kept on the graph (`Graph.parts`) for the monitor's next build."""

    pods: dict[int, _Part]  # id(workload) → its part (the part holds the workload: the id stays its own)
    namespaces: dict[str, _Inputs]
    admin: tuple[Any, ...]  # what the admin tiers were compiled from (empty: no admin tier)
    # the network side: each namespace's Services, and id(workload) → (it, its model, the ports it serves)
    services: dict[str, list[Resource]] = field(default_factory=dict)
    declared: dict[int, tuple[Resource, Pod, set[Port]]] = field(default_factory=dict)


def _same(a: list[Any], b: list[Any]) -> bool:
    """The same objects in the same order."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _same_exposures(a: list[Exposure], b: list[Exposure]) -> bool:
    return len(a) == len(b) and all(x[0] is y[0] and x[1] is y[1] and x[2:] == y[2:]
                                    for x, y in zip(a, b, strict=True))


_MODEL_FIELDS = tuple(f for f in Pod.__match_args__ if f != "resource")


def _same_model(a: Pod, b: Pod) -> bool:
    """Whether two models of one workload answer every question alike (a Pod object's model is rebuilt when its
    namespace's labels are, whether or not they are equal; a workload's representative at every build)."""
    return a is b or (a.resource is b.resource and all(getattr(a, f) == getattr(b, f) for f in _MODEL_FIELDS))


def _admin_inputs(cluster: Cluster, snapshot: Snapshot) -> tuple[Any, ...]:
    """The objects the admin tiers are compiled from (cluster.from_snapshot: the policies and the Nodes'
    addresses), none when there is no admin tier: the same objects, the same tiers."""
    if not cluster.admin:
        return ()
    return (*(a.resource for a in cluster.admin), *snapshot.of_kind("Node"))


def _pods(g: Graph, snapshot: Snapshot, cluster: Cluster, pods: list[Pod], kept: PodParts,
          before: PodParts | None) -> None:
    """Each pod's edges: the identity it runs as, its escapes, its exposure, the node credentials. With `before`
    (the monitor's previous build), a piece whose inputs are the same objects (or equal values) is taken as it
    was made; the edges are added in the same order either way, so the graph is the one a fresh build makes."""
    from ..engines.rbac.workloads import pods_by_service_account

    runs: dict[tuple[str, str, str], tuple[str, bool]] = {}
    for (_, sa), refs in pods_by_service_account(snapshot).items():
        for r in refs:
            runs[(r.kind, r.namespace, r.name)] = (sa, r.token_mounted)
    tokens: dict[str, dict[str, str]] = defaultdict(dict)
    for secret in snapshot.of_kind("Secret"):
        if secret.obj.get("type") == "kubernetes.io/service-account-token":
            owner = secret.annotations.get("kubernetes.io/service-account.name")
            tokens[secret.namespace or "default"][secret.name] = str(owner)
    exposed: dict[str, list[Exposure]] = defaultdict(list)
    for way in _exposure(snapshot):
        exposed[way[0].namespace or "default"].append(way)
    admin = kept.admin = _admin_inputs(cluster, snapshot)
    if before is not None and not _same(list(before.admin), list(admin)):
        before = None
    same_tokens: dict[str, bool] = {}
    same_exposure: dict[str, bool] = {}

    def inputs(ns: str) -> _Inputs:
        now = kept.namespaces.get(ns)
        if now is None:
            now = kept.namespaces[ns] = _Inputs(exposed.get(ns, []), cluster.policies_in(ns), tokens.get(ns, {}))
            was = before.namespaces.get(ns) if before is not None else None
            same_tokens[ns] = was is not None and was.tokens == now.tokens
            same_exposure[ns] = was is not None and _same(was.policies, now.policies) and \
                _same_exposures(was.exposures, now.exposures)
        return now

    add = g.add
    for pod in pods:
        res: Resource = pod.resource
        was = before.pods.get(id(res)) if before is not None else None
        if was is not None and was.res is not res:
            was = None
        view = None
        if was is not None and was.model is pod:
            me = was.node  # a part is only made for a pod view, and the node is the model's name
        else:
            view = res.pod()
            if view is None:
                continue
            me = pod_node(pod.namespace, pod.name)
            if was is not None and was.node != me:
                was = None
        g.node(me, "pod")
        ns = inputs(pod.namespace)
        key = was.key if was is not None else (res.kind, pod.namespace, res.name)
        account = runs.get(key, ("default", True))
        if was is not None and was.account == account and same_tokens[pod.namespace]:
            runs_as, credentials = was.runs_as, was.credentials
        else:
            view = view or res.pod()
            runs_as, credentials = _identity(me, pod, res, view, account, ns.tokens)
        escapes = was.escapes if was is not None else _escapes(me, res, view or res.pod())
        if was is not None and same_exposure[pod.namespace] and _same_model(was.model, pod):
            exposure = was.exposed
        else:
            exposure = _exposed(me, pod, res, view or res.pod(), cluster, ns.exposures)
        for e in runs_as:
            add(e)
        for e in escapes:
            add(e)
        for e in exposure:
            add(e)
        add(credentials)
        if was is None or was.model is not pod or was.runs_as is not runs_as or was.exposed is not exposure:
            was = _Part(res, pod, me, key, account, runs_as, escapes, exposure, credentials)
        kept.pods[id(res)] = was


def _identity(me: str, pod: Pod, res: Resource, view: Any, account: tuple[str, bool],
              tokens: dict[str, str]) -> tuple[list[Edge], Edge]:
    """The pod's RUNS_AS edges (automounted token, projected token, token Secret volume) and the node
    credentials edge to its service account."""
    sa, mounted = account
    sa_id = sa_node(pod.namespace, sa)
    base = view.spec_path
    out: list[Edge] = []
    if mounted:
        out.append(_edge(me, sa_id, EdgeKind.RUNS_AS, "rbac",
                         f"runs as {sa} with its token automounted", "set automountServiceAccountToken: false in "
                         "the pod spec (or on the ServiceAccount) when the pod does not call the API", 1, res,
                         f"{base}/serviceAccountName"))
    for v, vpath in view.volumes():
        for i, src in enumerate(_projected_sources(v)):
            if isinstance(src, dict) and isinstance(src.get("serviceAccountToken"), dict):
                out.append(_edge(me, sa_id, EdgeKind.RUNS_AS, "rbac",
                                 f'volume "{v.get("name")}" projects a token of {sa}',
                                 f'remove the serviceAccountToken source from volume "{v.get("name")}"', 1, res,
                                 f"{vpath}/projected/sources/{i}"))
        secret = v.get("secret")
        name = secret.get("secretName") if isinstance(secret, dict) else None
        owner = tokens.get(str(name)) if name else None
        if owner:
            out.append(_edge(me, sa_node(pod.namespace, owner), EdgeKind.RUNS_AS, "rbac",
                             f'volume "{v.get("name")}" mounts token Secret {name} of {owner}',
                             f'remove volume "{v.get("name")}" (token Secret {name})', 1, res, f"{vpath}/secret"))
    # Node authorizer (plugin/pkg/auth/authorizer/node): a kubelet may create tokens for the service accounts of
    # the pods bound to it. A DaemonSet's pods are on every node; any other pod may be scheduled there.
    daemon = res.kind == "DaemonSet"
    credentials = _edge(NODES, sa_id, EdgeKind.NODE_CREDENTIALS, "node-authorizer",
                        f"the kubelet may request tokens for {sa}, the service account of {res.kind} {pod.key}"
                        + (" (on every node)" if daemon else " (when scheduled on that node)"),
                        "", 1 if daemon else 3, res, f"{base}/serviceAccountName")
    return out, credentials


def _projected_sources(v: dict[str, Any]) -> list[Any]:
    proj = v.get("projected")
    srcs = proj.get("sources") if isinstance(proj, dict) else None
    return srcs if isinstance(srcs, list) else []


def _escapes(me: str, res: Resource, view: Any) -> list[Edge]:
    """The ways out of the pod onto its node (a function of the workload alone)."""
    out: list[Edge] = []
    spec, base = view.spec, view.spec_path
    pin = PodInput(view.meta, spec)
    for f in facts.faults("privileged", pin):
        name = f.container.get("name") if f.container else "?"
        out.append(_edge(me, NODES, EdgeKind.ESCAPES, "pss", f'container "{name}" is privileged ({f.message})',
                    f'set securityContext.privileged: false on container "{name}"', 1, res, base))
    if host_namespace(spec, "hostPID"):
        out.append(_edge(me, NODES, EdgeKind.ESCAPES, "pss", "shares the host PID namespace (hostPID: true)",
                    "remove hostPID: true", 2, res, f"{base}/hostPID"))
    for v, vpath in view.volumes():
        hp = pss_host_path(v)
        if hp is None:
            continue
        p = hostpaths.clean(str(hp.get("path", "")))
        socket = hostpaths.is_runtime_socket(p)
        if socket or hostpaths.is_sensitive(p):
            what = "the container runtime socket" if socket else "sensitive host path"
            out.append(_edge(me, NODES, EdgeKind.ESCAPES, "hostpaths", f'volume "{v.get("name")}" mounts {what} {p}',
                        f'remove hostPath volume "{v.get("name")}"', 1, res, f"{vpath}/hostPath/path"))
    for f in facts.faults("capabilities_baseline", pin):
        c = f.container or {}
        added = [cap for cap in capabilities(c, "add") if _norm(cap) in ESCAPE_CAPS]
        if added:
            out.append(_edge(me, NODES, EdgeKind.ESCAPES, "pss", f'container "{c.get("name")}" adds {", ".join(added)}',
                        f'drop {", ".join(added)} from capabilities.add of container "{c.get("name")}"', 2, res,
                        base))
    return out


def _norm(cap: str) -> str:
    # the runtimes upper-case names and add CAP_ (containerd, CRI-O), so "cap_sys_admin" is SYS_ADMIN on the node
    text = cap.upper()
    return text[4:] if text.startswith("CAP_") else text


# ---- exposure --------------------------------------------------------------------------------------------------

# (Service, object that exposes it, pointer, how, cost, targetPort, protocol)
Exposure = tuple[Resource, Resource, str, str, int, int | str, str]


def _spec(res: Resource) -> dict[str, Any]:
    spec = res.obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _exposure(snapshot: Snapshot) -> list[Exposure]:
    """The ways the internet reaches a Service's pods."""
    from ..controls.network import open_load_balancer

    out: list[Exposure] = []
    services = {(r.namespace or "default", r.name): r for r in snapshot.of_kind("Service")}

    def ports(svc: Resource, by: Resource, how: str, path: str, cost: int, want: object = None) -> None:
        for p in _spec(svc).get("ports") or []:
            if isinstance(p, dict) and (want is None or want in (p.get("port"), p.get("name"))):
                target = p.get("targetPort", p.get("port"))  # core/v1 ServicePort: targetPort defaults to port
                if isinstance(target, int | str):
                    out.append((svc, by, path, how, cost, target, str(p.get("protocol") or "TCP")))

    for svc in services.values():
        spec = _spec(svc)
        kind = spec.get("type")
        if kind == "LoadBalancer" and any(open_load_balancer(svc)):
            ports(svc, svc, f"Service {svc.namespace}/{svc.name} type LoadBalancer open to any address",
                  "/spec/type", 1)
        # core/v1 ServiceSpec: a LoadBalancer also gets node ports unless allocateLoadBalancerNodePorts is false,
        # and loadBalancerSourceRanges only filter the load balancer's own address.
        if kind == "NodePort" or (kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False):
            ports(svc, svc, f"Service {svc.namespace}/{svc.name} type {kind} (a port on every node)", "/spec/type", 2)
        if spec.get("externalIPs"):
            ports(svc, svc, f"Service {svc.namespace}/{svc.name} externalIPs", "/spec/externalIPs", 2)
    for ing in snapshot.of_kind("Ingress"):
        ns = ing.namespace or "default"
        for name, port, path in _ingress_backends(ing):
            backend = services.get((ns, name))
            if backend is not None:
                ports(backend, ing, f"Ingress {ns}/{ing.name} → Service {name}", path, 1, port)
    return out


def _ingress_backends(ing: Resource) -> list[tuple[str, int | str | None, str]]:
    """networking/v1 Ingress: defaultBackend and rules[].http.paths[].backend.service (name, port number/name)."""
    spec = _spec(ing)
    found: list[tuple[str, int | str | None, str]] = []

    def add(backend: Any, path: str) -> None:
        svc = backend.get("service") if isinstance(backend, dict) else None
        if isinstance(svc, dict) and svc.get("name"):
            port: dict[str, Any] = svc["port"] if isinstance(svc.get("port"), dict) else {}
            found.append((str(svc["name"]), port.get("number", port.get("name")), path))

    add(spec.get("defaultBackend"), "/spec/defaultBackend")
    for i, rule in enumerate(spec.get("rules") or []):
        http = rule.get("http") if isinstance(rule, dict) else None
        for j, p in enumerate((http.get("paths") or []) if isinstance(http, dict) else []):
            if isinstance(p, dict):
                add(p.get("backend"), f"/spec/rules/{i}/http/paths/{j}/backend")
    return found


def selected(svc: Resource, pod: Pod) -> bool:
    """core/v1 ServiceSpec.selector: equality on every key; empty or absent selects no pod (manual Endpoints)."""
    sel = _spec(svc).get("selector")
    if not isinstance(sel, dict) or not sel or (svc.namespace or "default") != pod.namespace:
        return False
    return all(pod.labels.get(str(k)) == str(v) for k, v in sel.items())


def _exposed(me: str, pod: Pod, res: Resource, view: Any, cluster: Cluster, exposures: list[Exposure]) -> list[Edge]:
    """The ways in from the internet (`exposures`: those of the pod's namespace)."""
    out: list[Edge] = []
    spec, base = view.spec, view.spec_path
    for svc, by, path, how, cost, target, proto in exposures:
        if not selected(svc, pod):
            continue
        port = target if isinstance(target, int) else pod.resolve(str(target), proto)
        if port is None:
            continue  # a targetPort name the pod does not define: no endpoint on this pod
        if by.kind == "Service":
            # The pod's ingress rules judge the client address (kept by externalTrafficPolicy: Local; with
            # Cluster it may be a node's address after SNAT, see docs/paths.md).
            if not evaluate_direction(cluster, pod, INGRESS, None, PUBLIC_ADDRESS, port, proto, False).allowed:
                continue
            fix = f"make Service {svc.name} type ClusterIP (or set loadBalancerSourceRanges), or drop externalIPs"
            gate = f"{proto}/{port} admitted from outside by the pod's NetworkPolicies"
        else:
            fix = f"remove the backend of Ingress {by.name} that names Service {svc.name}"
            gate = f"{proto}/{port} through the ingress controller"
        out.append(_edge(INTERNET, me, EdgeKind.EXPOSED, "netpol", f"{how}; {gate}", fix, cost, by, path))
    if pod.host_network:
        out.append(_edge(INTERNET, me, EdgeKind.EXPOSED, "pss", "hostNetwork: true (listens on the node's addresses; no "
                    "NetworkPolicy applies)", "remove hostNetwork: true", 3, res, f"{base}/hostNetwork"))
    for i, c in enumerate(spec.get("containers") or []):
        for j, p in enumerate((c.get("ports") or []) if isinstance(c, dict) else []):
            if isinstance(p, dict) and isinstance(p.get("hostPort"), int) and p["hostPort"] > 0:
                out.append(_edge(INTERNET, me, EdgeKind.EXPOSED, "pss", f'container "{c.get("name")}" binds host port '
                            f'{p["hostPort"]}', "remove ports[].hostPort", 3, res,
                            f"{base}/containers/{i}/ports/{j}/hostPort"))
    return out


# ---- network ---------------------------------------------------------------------------------------------------

Port = tuple[int, str]  # (number, protocol)
UNNAMED_PORT = 65000  # stands for "a port no policy names" when probing pods that declare no port


def _declared(pod: Pod, services: list[Resource]) -> set[Port]:  # services: those of the pod's namespace
    """The ports the pod serves: its containerPorts and the targetPorts of the Services selecting it (a named
    targetPort resolves on the pod, core/v1 ServicePort.targetPort)."""
    out: set[Port] = set()
    view = pod.resource.pod()
    for fld in ("initContainers", "containers"):
        for c in (view.spec.get(fld) or []) if view is not None else []:
            for p in (c.get("ports") or []) if isinstance(c, dict) else []:
                if isinstance(p, dict) and isinstance(p.get("containerPort"), int):
                    out.add((p["containerPort"], str(p.get("protocol") or "TCP")))
    for svc in services:
        if not selected(svc, pod):
            continue
        for p in _spec(svc).get("ports") or []:
            if not isinstance(p, dict):
                continue
            proto = str(p.get("protocol") or "TCP")
            target = p.get("targetPort", p.get("port"))
            num = target if isinstance(target, int) else pod.resolve(str(target), proto)
            if isinstance(num, int):
                out.add((num, proto))
    return out


def _probe_ports(cluster: Cluster) -> set[Port]:
    """Every port number a policy names (a range by its first port) plus one none names: between them they take
    every decision the policies can make about a port."""
    out: set[Port] = set()
    names: set[int] = set()
    for pol in cluster.policies:
        for rule in (*pol.ingress, *pol.egress):
            for pm in rule.ports or ():
                if isinstance(pm.port, int):
                    out.add((pm.port, pm.protocol))
                    names.add(pm.port)
    free = UNNAMED_PORT
    while free in names:
        free += 1
    out.add((free, "TCP"))
    return out


def _network(g: Graph, cluster: Cluster, snapshot: Snapshot, kept: PodParts, before: PodParts | None) -> None:
    """Pods → source group (classes with the same reach) → destination group (classes reached by the same source
    groups, alike in whether they declare their ports) → pods: edges grow with the groups, not with pods². With
    `before` (the monitor's previous build), the ports a pod serves are taken as they were when the workload,
    its model and its namespace's Services are the same."""
    pods = cluster.pods
    if not pods:
        return
    idx = ClassIndex(cluster)
    services: dict[str, list[Resource]] = kept.services
    for svc in snapshot.of_kind("Service"):
        services.setdefault(svc.namespace or "default", []).append(svc)
    known = before.declared if before is not None else {}
    same_services: dict[str, bool] = {}
    probe = _probe_ports(cluster)
    listen: dict[Port, int] = defaultdict(int)  # port → classes with a pod serving it
    undeclared = 0  # classes with a pod that declares no port (it may still listen on one)
    for i, p in enumerate(pods):
        res, ns = p.resource, p.namespace
        was = known.get(id(res))
        same = same_services.get(ns)
        if same is None and was is not None and before is not None:
            same = same_services[ns] = _same(before.services.get(ns, []), services.get(ns, []))
        if was is not None and same and was[0] is res and _same_model(was[1], p):
            declared = was[2]
        else:
            declared = _declared(p, services.get(ns, []))
        kept.declared[id(res)] = (res, p, declared)
        if not declared:
            undeclared |= 1 << idx.pod_class[i]
        for pp in declared or probe:
            listen[pp] |= 1 << idx.pod_class[i]
    ports = sorted(listen)
    rows: dict[Port, list[int]] = {pp: idx.matrix(*pp).rows for pp in ports}
    reach = [0] * idx.size
    for pp, mask in listen.items():
        row = rows[pp]
        for s in range(idx.size):
            reach[s] |= row[s] & mask
    sources: dict[int, list[int]] = defaultdict(list)  # reach → source classes
    for s, dests in enumerate(reach):
        if dests:
            sources[dests].append(s)
    src_groups = sorted(sources.items(), key=lambda kv: kv[1][0])
    cols = [0] * idx.size  # destination class → source groups reaching it
    for gi, (dests, _) in enumerate(src_groups):
        bit = 1 << gi
        for d in bits(dests):
            cols[d] |= bit
    dst_groups: dict[tuple[int, bool], list[int]] = defaultdict(list)
    for d, col in enumerate(cols):
        if col:
            dst_groups[(col, bool(undeclared >> d & 1))].append(d)
    isolated = 0
    for pol in cluster.policies:
        if INGRESS in pol.types:
            isolated |= idx.subject(pol)
    for gi, (_, members) in enumerate(src_groups):
        for s in members:
            for i in idx.classes[s].members:
                g.add(Edge(pod_node(pods[i].namespace, pods[i].name), f"netgrp:{gi}", EdgeKind.MEMBER, "netpol",
                           "network position", "", 0))
    for k, ((col, hidden_port), classes) in enumerate(sorted(dst_groups.items(), key=lambda kv: kv[1][0])):
        node = f"netdg:{k}"
        d0 = classes[0]
        dst = idx.classes[d0].rep
        more = f" (and {len(classes) - 1} more classes of pods)" if len(classes) > 1 else ""
        why = ("admitted by the NetworkPolicies isolating it" if isolated >> d0 & 1
               else "no NetworkPolicy isolates its ingress")
        for gi in bits(col):
            s0 = src_groups[gi][1][0]
            src = idx.classes[s0].rep
            pp = next(pp for pp in ports if listen[pp] >> d0 & 1 and rows[pp][s0] >> d0 & 1)
            port = f"{pp[1]}/{pp[0]}" + (" (no port declared)" if hidden_port else "")
            # Reaching a pod is taking it only through a flaw in what it serves: harder than using a grant.
            g.add(_edge(f"netgrp:{gi}", node, EdgeKind.NETWORK, "netpol",
                        f"{port} from {src.key} to {dst.key}{more}: {why}",
                        f"a NetworkPolicy in {dst.namespace} selecting {dst.key}'s pods whose ingress does not admit "
                        f"{src.key} on {pp[1]}/{pp[0]}", 3 if hidden_port else 2, dst.resource))
        for d in classes:
            for i in idx.classes[d].members:
                g.add(Edge(node, pod_node(pods[i].namespace, pods[i].name), EdgeKind.MEMBER, "netpol",
                           "network position", "", 0))
