"""Risk ranking of vulnerability findings: what a CVE means where it runs (docs/vulns.md#risk-ranking).

The score is the finding's severity (critical 3, high 2, medium 1, low and info 0) plus four factors, each read
from the engine that owns the fact, never re-derived here:

- exposed (+2): a way in from outside the cluster, through a Service of type LoadBalancer or NodePort or with
  externalIPs that selects the pod, an Ingress routing to a Service that selects it, hostNetwork, or a hostPort;
  for Service and hostPort entries the NetworkPolicy engine (engines/netpol) decides whether a connection from an
  internet address to the pod's port is allowed, and a way in that policy denies on every port is no way in;
- privileged (+2): the Pod Security engine's baseline facts (engines/pss/facts.py) for privileged containers,
  host namespaces, hostPath volumes, added capabilities and Windows HostProcess;
- service-account (+2): the RBAC engine's risk categories (engines/rbac/risks.py) of high or critical weight (read
  secrets, create pods or workloads, exec, bind, escalate, impersonate, mint tokens, …), in any scope, held by the
  pod's service account or a group it is in, when the pod mounts its token;
- fix (+1): a fixed version exists (the vulnerability can be removed now).

A factor the input cannot tell (a kind not read from the cluster, a Node or release rather than a workload) is
counted, marked unknown, and says why: the rank never goes down for lack of data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..findings import ObjectRef, Risk, RiskFactor, Severity
from ..resource import Resource
from ..selectors import SelectorError, compile_selector
from ..snapshot import Snapshot

SEVERITY_POINTS = {Severity.CRITICAL: 3, Severity.HIGH: 2, Severity.MEDIUM: 1, Severity.LOW: 0, Severity.INFO: 0}
EXPOSED, PRIVILEGED, ACCOUNT, FIX = 2, 2, 2, 1
MAX_SCORE = 3 + EXPOSED + PRIVILEGED + ACCOUNT + FIX
# An address outside any cluster (RFC 5737 TEST-NET-3): the source a connection from the internet has.
INTERNET = "203.0.113.10"
# The baseline checks that give a container privileged or host access (the PSS engine's check ids).
PRIVILEGE_CHECKS = ("privileged", "hostNamespaces", "hostPathVolumes", "capabilities_baseline", "windowsHostProcess")
# The kinds each factor reads, to say "unknown" when a live cluster did not let them be read.
EXPOSURE_KINDS = ("Service", "Ingress", "NetworkPolicy")
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")


@dataclass(slots=True)
class RiskContext:
    """What the ranking reads from one snapshot, built once (the engines' indexes are built lazily)."""

    snapshot: Snapshot
    unread: frozenset[str] = frozenset()  # kinds the source could not read (live cluster 403/404)
    _netpol: Any = field(default=None, init=False)
    _netpol_pods: dict[int, Any] = field(default_factory=dict, init=False)
    _sa_risks: dict[tuple[str, str, str], list[Any]] | None = field(default=None, init=False)
    _tokens: dict[tuple[str, str, str], bool] = field(default_factory=dict, init=False)
    _by_ns: dict[tuple[str, str], list[Resource]] | None = field(default=None, init=False)
    # id(resource) -> (resource, its exposure, privilege and service-account factors): the same for every
    # vulnerability of the workload (a report lists a hundred per image); the entry holds the resource, so its
    # id cannot be reused meanwhile
    _workload: dict[int, tuple[Resource, tuple[RiskFactor, ...]]] = field(default_factory=dict, init=False)
    _ranked: dict[tuple[Any, ...], tuple[Resource | None, Risk]] = field(default_factory=dict, init=False)
    _selectors: dict[int, tuple[Resource, Any]] = field(default_factory=dict, init=False)

    def _in_namespace(self, kind: str, ns: str) -> list[Resource]:
        """Services and Ingresses by namespace, indexed once (a Service selects pods of its own namespace)."""
        if self._by_ns is None:
            self._by_ns = {}
            for r in self.snapshot.of_kind("Service", "Ingress"):
                self._by_ns.setdefault((r.kind, r.namespace or "default"), []).append(r)
        return self._by_ns.get((kind, ns), [])

    def risk(self, severity: Severity, fix: bool | None, resource: Resource | None,
             not_a_workload: str = "", fix_from: str = "feed") -> Risk:
        """The rank of a finding of `severity` on `resource` (None: a cluster component with no workload);
        `fix_from`: who said whether a fix exists (the CVE feed, an image report). A Risk is immutable and a
        function of these arguments, so one is built per distinct set (a report lists a hundred per image)."""
        key = (id(resource), severity, fix, fix_from, not_a_workload)
        held = self._ranked.get(key)
        if held is not None and held[0] is resource:
            return held[1]
        sev = SEVERITY_POINTS[severity]
        fix_f = _fix_factor(fix, fix_from)
        if resource is None or resource.pod() is None:
            why = not_a_workload or "not a workload in the input"
            factors: tuple[RiskFactor, ...] = tuple(RiskFactor(n, None, p, "-", f"{why}: not judged, counted")
                                                    for n, p in (("exposed", EXPOSED), ("privileged", PRIVILEGED),
                                                                 ("service-account", ACCOUNT)))
        else:
            workload = self._workload.get(id(resource))
            if workload is None or workload[0] is not resource:
                workload = self._workload[id(resource)] = (resource, (
                    self._exposed(resource), self._privileged(resource), self._account(resource)))
            factors = workload[1]
        factors = (*factors, fix_f)
        out = Risk(sev + sum(f.points for f in factors), sev, factors)
        self._ranked[key] = (resource, out)
        return out

    def resource_of(self, ref: ObjectRef) -> Resource | None:
        return self.snapshot.get(ref.kind, ref.namespace, ref.name)

    # --- exposure: Services, Ingresses, host network and ports, NetworkPolicy ---------------------------------

    def _exposed(self, res: Resource) -> RiskFactor:
        pod = res.pod()
        assert pod is not None
        npod = self._netpol_pod(res)
        if npod is not None and npod.host_network:
            return RiskFactor("exposed", True, EXPOSED, "netpol", "hostNetwork: listens on the node's addresses, "
                              "NetworkPolicy does not apply")
        ways: list[tuple[str, list[tuple[int, str]]]] = []  # (entry, ports to judge; [] = not judged by policy)
        from ..controls.workload.common import pss_input
        from ..engines.pss.facts import faults

        for fault in faults("hostPorts", pss_input(pod)):
            ways.append((f"hostPort ({fault.detail})", _host_ports(pod.spec)))
        for svc, why in self._services(res):
            ways.append((f"Service/{svc.name} {why}", _service_ports(svc, npod)))
        for ing, svc_name in self._ingresses(res):
            ways.append((f"Ingress/{ing.name} → Service/{svc_name}", []))
        unread = [k for k in EXPOSURE_KINDS if k in self.unread]
        if not ways:
            if unread:
                return RiskFactor("exposed", None, EXPOSED, "services",
                                  f"{', '.join(unread)} not read from the cluster: counted")
            return RiskFactor("exposed", False, 0, "services", "no Service, Ingress, host network or host port "
                              "reaches it from outside")
        open_ways: list[str] = []
        closed: list[str] = []
        for what, ports in ways:
            if not ports or npod is None or "NetworkPolicy" in self.unread:
                open_ways.append(what)
                continue
            decided = [self._from_internet(npod, port, proto) for port, proto in ports]
            if any(ok and isolated for ok, isolated, _ in decided):
                open_ways.append(what + " (NetworkPolicy allows the internet)")
            elif any(ok for ok, _, _ in decided):
                open_ways.append(what + " (no NetworkPolicy isolates its ingress)")
            else:
                closed.append(f"{what} (denied by {', '.join(sorted({p for *_, ps in decided for p in ps}))})")
        if open_ways:
            return RiskFactor("exposed", True, EXPOSED, "netpol" if npod is not None else "services",
                              "; ".join(open_ways))
        return RiskFactor("exposed", False, 0, "netpol", "; ".join(closed))

    def _netpol_pod(self, res: Resource) -> Any:
        if self._netpol is None:
            from ..engines.netpol.cluster import from_snapshot

            self._netpol = from_snapshot(self.snapshot)
            self._netpol_pods = {id(p.resource): p for p in self._netpol.pods}
        return self._netpol_pods.get(id(res))

    def _from_internet(self, npod: Any, port: int, proto: str) -> tuple[bool, bool, list[str]]:
        """(allowed, ingress isolated, the denying policies) for a connection from an internet address."""
        from ..engines.netpol.decide import decide
        from ..engines.netpol.ipblock import parse_ip
        from ..engines.netpol.model import External

        ip = parse_ip(INTERNET)
        assert ip is not None
        d = decide(self._netpol, External(ip), npod, port, proto)
        return d.allowed, d.ingress is not None and d.ingress.isolated, d.denying_policies()

    def _services(self, res: Resource) -> Iterable[tuple[Resource, str]]:
        """Services of the pod's namespace selecting it that take traffic from outside (core/v1 ServiceSpec:
        a selector selects pods of the Service's namespace; no selector, no pods)."""
        pod = res.pod()
        assert pod is not None
        ns = res.namespace or "default"
        for svc in self._in_namespace("Service", ns):
            if not self._selects(svc, pod.labels):
                continue
            spec = _d(svc.obj.get("spec"))
            kind = spec.get("type")
            if kind in ("LoadBalancer", "NodePort"):
                yield svc, f"type {kind}"
            elif spec.get("externalIPs"):
                yield svc, "with externalIPs"

    def _selects(self, svc: Resource, labels: Mapping[str, str]) -> bool:
        """Whether the Service selects pods with these labels (its selector compiled once per context)."""
        held = self._selectors.get(id(svc))
        if held is None or held[0] is not svc:
            held = self._selectors[id(svc)] = (svc, _service_selector(svc))
        sel = held[1]
        return sel is not None and bool(sel.matches({str(k): str(v) for k, v in labels.items()}))

    def _ingresses(self, res: Resource) -> Iterable[tuple[Resource, str]]:
        """Ingresses of the pod's namespace with a backend Service selecting it (networking.k8s.io/v1
        IngressBackend.service.name, v1beta1 serviceName; an Ingress routes to Services of its own namespace)."""
        pod = res.pod()
        assert pod is not None
        ns = res.namespace or "default"
        selecting = {s.name for s in self._in_namespace("Service", ns) if self._selects(s, pod.labels)}
        if not selecting:
            return
        for ing in self._in_namespace("Ingress", ns):
            for name in _backends(_d(ing.obj.get("spec"))):
                if name in selecting:
                    yield ing, name
                    break

    # --- privilege: the PSS engine's baseline facts -----------------------------------------------------------

    def _privileged(self, res: Resource) -> RiskFactor:
        from ..controls.workload.common import pss_input
        from ..engines.pss.facts import faults

        pod = res.pod()
        assert pod is not None
        p = pss_input(pod)
        said = [f.message for check in PRIVILEGE_CHECKS for f in faults(check, p)]
        if said:
            return RiskFactor("privileged", True, PRIVILEGED, "pss", "; ".join(dict.fromkeys(said)))
        return RiskFactor("privileged", False, 0, "pss", "passes the baseline privilege and host checks")

    # --- service account: the RBAC engine's risk categories ---------------------------------------------------

    def _account(self, res: Resource) -> RiskFactor:
        risks = self._risks()
        pod = res.pod()
        assert pod is not None
        ns = res.namespace or "default"
        sa = str(pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default")
        key = (res.kind, ns, res.name)
        held = risks.get(key, [])
        unread = [k for k in RBAC_KINDS if k in self.unread]
        if not self._tokens.get(key, True):
            what = f"; it would hold: {_powers(held)}" if held else ""
            return RiskFactor("service-account", False, 0, "rbac",
                              f"ServiceAccount {ns}/{sa}: token not mounted (automountServiceAccountToken: false)"
                              f"{what}")
        if held:
            return RiskFactor("service-account", True, ACCOUNT, "rbac", f"ServiceAccount {ns}/{sa} {_powers(held)}")
        if unread:
            return RiskFactor("service-account", None, ACCOUNT, "rbac",
                              f"{', '.join(unread)} not read from the cluster: counted")
        return RiskFactor("service-account", False, 0, "rbac",
                          f"ServiceAccount {ns}/{sa} holds no high or critical RBAC permission (secrets, pods, bind, "
                          "escalate, impersonate, …)")

    def _risks(self) -> dict[tuple[str, str, str], list[Any]]:
        if self._sa_risks is None:
            from ..engines.rbac.index import RBACIndex
            from ..engines.rbac.risks import find_risks
            from ..engines.rbac.workloads import pods_by_service_account

            pods = pods_by_service_account(self.snapshot)
            for refs in pods.values():
                for ref in refs:
                    self._tokens[(ref.kind, ref.namespace, ref.name)] = ref.token_mounted
            index = RBACIndex.from_snapshot(self.snapshot)
            out: dict[tuple[str, str, str], list[Any]] = {}
            for r in find_risks(index, pods):
                if r.category.severity < Severity.HIGH:
                    continue  # the category's own weight: a namespaced grant of it still counts here
                for ref in r.pods:
                    out.setdefault((ref.kind, ref.namespace, ref.name), []).append(r)
            self._sa_risks = out
        return self._sa_risks


def _powers(risks: list[Any]) -> str:
    """`can read secrets (ClusterRoleBinding/x), can create pods (...)`, each category once, strongest first."""
    seen: dict[str, str] = {}
    for r in risks:
        via = r.paths[0].binding.describe() if r.paths else ""
        scope = f" in namespace {r.namespace}" if r.namespace else " cluster-wide"
        seen.setdefault(r.category.id, f"{r.category.title}{scope}" + (f" via {via}" if via else ""))
    return "; ".join(seen.values())


def _fix_factor(fix: bool | None, source: str) -> RiskFactor:
    if fix is None:
        return RiskFactor("fix", None, FIX, source, "whether a fix exists is unknown: counted")
    if fix:
        return RiskFactor("fix", True, FIX, source, "a fixed version exists")
    return RiskFactor("fix", False, 0, source, "no fixed version published")


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _service_selector(svc: Resource) -> Any:
    """The Service's selector compiled (None: it selects no pod)."""
    selector = _d(svc.obj.get("spec")).get("selector")
    if not isinstance(selector, dict) or not selector:
        return None  # no selector: the Service's endpoints are managed by hand, it selects no pod
    try:
        return compile_selector({"matchLabels": selector})
    except SelectorError:
        return None


def _backends(spec: dict[str, Any]) -> Iterable[str]:
    backends = [spec.get("defaultBackend"), spec.get("backend")]
    for rule in spec.get("rules") or []:
        http = _d(_d(rule).get("http"))
        for path in http.get("paths") or []:
            backends.append(_d(path).get("backend"))
    for b in backends:
        b = _d(b)
        name = _d(b.get("service")).get("name") or b.get("serviceName")
        if isinstance(name, str):
            yield name


def _host_ports(spec: Mapping[str, Any]) -> list[tuple[int, str]]:
    out = []
    for fld in ("initContainers", "containers"):
        for c in spec.get(fld) or []:
            for p in _d(c).get("ports") or []:
                p = _d(p)
                if isinstance(p.get("hostPort"), int) and p["hostPort"] and isinstance(p.get("containerPort"), int):
                    out.append((p["containerPort"], str(p.get("protocol") or "TCP")))
    return out


def _service_ports(svc: Resource, npod: Any) -> list[tuple[int, str]]:
    """The pod ports a Service sends to: targetPort (a number, or a container port name), else port."""
    out = []
    for p in _d(svc.obj.get("spec")).get("ports") or []:
        p = _d(p)
        proto = str(p.get("protocol") or "TCP")
        target = p.get("targetPort", p.get("port"))
        if isinstance(target, str) and npod is not None:
            target = next((n for name, pr, n in npod.named_ports if name == target and pr == proto), None)
        if isinstance(target, int):
            out.append((target, proto))
    return out
