"""Everything the engine needs from a snapshot, gathered by one function (`from_snapshot`) and compiled once."""

from __future__ import annotations

from collections.abc import Iterable

from ...records import field, record
from ...resource import Resource, applied_copies, where
from ...snapshot import METADATA_NAME_LABEL, Changes, Snapshot
from ..pss.baseline import host_namespace
from .admin import AdminPolicy, compile_admin, node_addresses
from .ipblock import IP, parse_ip
from .model import Pod, named_ports_of
from .policy import EGRESS, INGRESS, Policy, compile_policy

# Owners whose pods are represented by the owner itself (a Deployment stands for its ReplicaSets' pods).
_OWNED_BY = {"ReplicaSet": "Deployment", "Job": "CronJob"}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob")


DUPLICATE = "duplicate"


@record(frozen=True)
class Note:
    """What the model had to decide about the inputs. `error`: an object could not be used as the API would use
    it, so answers may miss it (commands exit 2); otherwise an assumption worth saying (one stderr line each)."""

    where: str
    message: str
    error: bool
    resource: Resource | None = None
    code: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@record
class Cluster:
    pods: list[Pod]
    policies: list[Policy]
    admin: list[AdminPolicy] = field(default_factory=list)  # ANPs by priority, then the BANP (last tier)
    ipblock_matches_pods: bool = True
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    idle: list[Pod] = field(default_factory=list)  # workloads that run no pod (replicas 0): not in `pods`
    _by_key: dict[str, Pod] = field(init=False, repr=False)
    _by_ip: dict[IP, Pod] = field(init=False, repr=False)
    _by_ns: dict[str, list[Policy]] = field(init=False, repr=False)
    _selecting: dict[tuple[int, str], list[Policy]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.admin.sort(key=lambda a: (a.priority, a.name))
        self._by_key = {p.key: p for p in self.pods}
        self._by_ip = {}
        for p in self.pods:
            for ip in p.ips:
                self._by_ip.setdefault(ip, p)
        self._by_ns = {}
        for pol in self.policies:
            self._by_ns.setdefault(pol.namespace, []).append(pol)
        self._selecting = {}

    def pod(self, key: str) -> Pod | None:
        return self._by_key.get(key)

    def pod_by_ip(self, ip: IP) -> Pod | None:
        return self._by_ip.get(ip)

    def policies_in(self, namespace: str) -> list[Policy]:
        return self._by_ns.get(namespace, [])

    def selecting(self, pod: Pod, direction: str) -> list[Policy]:
        """Policies that isolate `pod` for `direction` (docs: "any NetworkPolicy that both selects the pod and has
        <direction> in its policyTypes")."""
        if self._by_key.get(pod.key) is not pod:  # a pod from elsewhere: no memo
            return [p for p in self.policies_in(pod.namespace) if direction in p.types and p.selects(pod)]
        key = (id(pod), direction)
        found = self._selecting.get(key)
        if found is None:
            found = [p for p in self.policies_in(pod.namespace) if direction in p.types and p.selects(pod)]
            self._selecting[key] = found
        return found

    def isolated(self, pod: Pod) -> dict[str, bool]:
        return {d: bool(self.selecting(pod, d)) for d in (INGRESS, EGRESS)}


def _str_map(labels: object) -> dict[str, str]:
    """Labels as strings (hostile input may carry numbers or lists; the API only stores strings)."""
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _bad_labels(labels: object) -> bool:
    """Labels the apiserver would refuse to decode (not a map of strings)."""
    if labels is None:
        return False
    return not isinstance(labels, dict) or any(not isinstance(v, str) for v in labels.values())


def _ips(status: object) -> tuple[IP, ...]:
    if not isinstance(status, dict):
        return ()
    texts: list[str] = []
    pod_ips = status.get("podIPs")
    for item in pod_ips if isinstance(pod_ips, list) else ():
        if isinstance(item, dict) and item.get("ip"):
            texts.append(str(item["ip"]))
    if status.get("podIP"):
        texts.append(str(status["podIP"]))
    seen: list[IP] = []
    for t in texts:
        ip = parse_ip(t)
        if ip is not None and ip not in seen:
            seen.append(ip)
    return tuple(seen)


def controller_refs(res: Resource) -> list[tuple[str, str]]:
    """(kind, name) of the object's controller: the ownerReference marked `controller: true`; references that
    do not say (hand-written manifests) count too. apimachinery ObjectMeta.OwnerReferences: "There cannot be
    more than one managing controller"."""
    refs = res.metadata.get("ownerReferences")
    if not isinstance(refs, list):
        return []
    items = [r for r in refs if isinstance(r, dict)]
    chosen = [r for r in items if r.get("controller") is True] or [r for r in items if "controller" not in r]
    return [(str(r.get("kind", "")), str(r.get("name", ""))) for r in chosen]


def _owned_workloads(snapshot: Snapshot, pods: list[Resource]) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every workload a Pod object belongs to, by ownerReferences up the chain:
    Pod → ReplicaSet → Deployment, Pod → Job → CronJob, Pod → StatefulSet / DaemonSet / ReplicationController.
    Labels never decide it: an unrelated pod carrying a template's labels stands for nothing but itself."""
    out: set[tuple[str, str, str]] = set()

    def up(kind: str, ns: str, name: str, depth: int) -> None:
        key = (kind, ns, name)
        if key in out or depth > 8:
            return
        out.add(key)
        owner = snapshot.get(kind, ns, name)
        if owner is not None:
            for k, n in controller_refs(owner):
                up(k, ns, n, depth + 1)

    for res in pods:
        ns = res.namespace or "default"
        for kind, name in controller_refs(res):
            up(kind, ns, name, 0)
            h = res.labels.get("pod-template-hash")
            if kind == "ReplicaSet" and snapshot.get(kind, ns, name) is None and isinstance(h, str) \
                    and name.endswith(f"-{h}") and len(name) > len(h) + 1:
                # The ReplicaSet is not in the inputs (`kubectl get deploy,po`): the deployment controller names
                # it `<deployment>-<pod-template-hash>` (pkg/controller/deployment/sync.go getNewReplicaSet).
                up("Deployment", ns, name[: -len(h) - 1], 1)
    return out


def _count(value: object, default: int) -> int | None:
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None  # the API would reject it; unknown, so never taken as a single pod


def pod_count(res: Resource, snapshot: Snapshot) -> int | None:
    """How many pods a workload runs at once; None when it may be several and the number is not known.

    - Deployment, StatefulSet, ReplicaSet, ReplicationController: `spec.replicas`, 1 when unset (apps/v1 and
      core/v1 defaults.go SetDefaults_Deployment/…: "if obj.Spec.Replicas == nil … = 1"); a
      HorizontalPodAutoscaler targeting it with maxReplicas > 1 makes it unknown (HPA leaves a workload at 0
      alone: "scaling is disabled" when replicas is 0);
    - DaemonSet: one pod per eligible node, unknown;
    - Job: `parallelism` (1 when unset, batch/v1 defaults.go SetDefaults_Job), at most `completions`; 0 when
      `suspend` is true;
    - CronJob: its job template, except that concurrencyPolicy Allow (the default) lets runs overlap: unknown.
    """
    spec = res.obj.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    kind = res.kind
    if kind == "DaemonSet":
        return None
    if kind in ("Job", "CronJob"):
        job = spec
        if kind == "CronJob":
            if spec.get("suspend") is True:
                return 0
            tmpl = spec.get("jobTemplate")
            inner = tmpl.get("spec") if isinstance(tmpl, dict) else None
            job = inner if isinstance(inner, dict) else {}
        if job.get("suspend") is True:
            return 0
        n = _count(job.get("parallelism"), 1)
        if job.get("completions") is not None:  # no more pods than completions are wanted
            done = _count(job.get("completions"), 1)
            n = None if n is None or done is None else min(n, done)
        if kind == "CronJob" and spec.get("concurrencyPolicy", "Allow") not in ("Forbid", "Replace") and n != 0:
            return None
        return n
    n = _count(spec.get("replicas"), 1)
    if n and _autoscaled(res, snapshot):
        return None
    return n


def _autoscaled(res: Resource, snapshot: Snapshot) -> bool:
    return (res.namespace, res.kind, res.name) in snapshot.derived("netpol.autoscaled", _autoscaled_targets)


def _autoscaled_targets(snapshot: Snapshot) -> set[tuple[str | None, str, str]]:
    """(namespace, kind, name) of the workloads a HorizontalPodAutoscaler may scale above one pod."""
    out: set[tuple[str | None, str, str]] = set()
    for hpa in snapshot.of_kind("HorizontalPodAutoscaler"):
        spec = hpa.obj.get("spec")
        ref = spec.get("scaleTargetRef") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and isinstance(ref, dict):
            top = spec.get("maxReplicas")
            if not (isinstance(top, int) and not isinstance(top, bool) and top <= 1):
                out.add((hpa.namespace, str(ref.get("kind", "")), str(ref.get("name", ""))))
    return out


def _last_of(resources: list[Resource], notes: list[Note], kind_label: str) -> list[Resource]:
    """One object per (kind, namespace, name), the one `kubectl apply` of the inputs leaves; every other copy
    is an error (the inputs do not say which one is meant)."""
    kept, dropped = applied_copies(resources)
    for d in dropped:
        notes.append(Note(where(d.copy), f"{kind_label} defined again at {where(d.kept)}: only the last one is used",
                          True, d.copy, DUPLICATE))
    return kept


def namespace_labels(snapshot: Snapshot, notes: list[Note]) -> dict[str, dict[str, str]]:
    """Labels per namespace. `kubernetes.io/metadata.name` is always the name (core/v1 defaults.go
    SetDefaults_Namespace sets it on every namespace, overriding what was written); a namespace used by an
    object but not defined in the inputs is taken as the API would create it: that label only."""
    out: dict[str, dict[str, str]] = {}
    for res in _last_of(snapshot.of_kind("Namespace"), notes, "Namespace"):
        labels = res.metadata.get("labels")
        if _bad_labels(labels):
            notes.append(Note(where(res), "labels must be a map of strings (the apiserver rejects this)", True, res))
        out[res.name] = {**_str_map(labels), METADATA_NAME_LABEL: res.name}
    missing = [ns for ns in snapshot.namespaces() if ns not in out]
    for ns in missing:
        out[ns] = {METADATA_NAME_LABEL: ns}
    if missing:
        notes.append(Note("namespace " + ", ".join(missing),
                          f"no Namespace object in the inputs: taken to carry only its {METADATA_NAME_LABEL} label",
                          False))
    return out


def pods_of(snapshot: Snapshot, ns_labels: dict[str, dict[str, str]],
            notes: list[Note] | None = None, known: dict[int, Pod] | None = None) -> tuple[list[Pod], list[Pod]]:
    """(pods, idle): Pod objects as written, plus one representative per workload with no Pod object of its own
    in the inputs (manifests), standing for `pod_count` pods; `idle` holds the workloads that run no pod.
    `known`: id(Pod object) -> its model in an earlier build whose objects are still alive (the monitor's
    previous lane run): a model is a function of the object and its namespace's labels, so it is reused."""
    notes = notes if notes is not None else []
    known = known or {}
    out: list[Pod] = []
    idle: list[Pod] = []
    seen: set[str] = set()

    def labels_for(ns: str) -> dict[str, str]:
        if ns not in ns_labels:
            ns_labels[ns] = {METADATA_NAME_LABEL: ns}
        return ns_labels[ns]

    pod_objs = _last_of(snapshot.of_kind("Pod"), notes, "Pod")
    for res in pod_objs:
        view = res.pod()
        if view is None:  # pragma: no cover - a Pod is its own pod spec
            continue
        if _bad_labels(res.metadata.get("labels")):
            notes.append(Note(where(res), "labels must be a map of strings (the apiserver rejects this)", True, res))
        ns = res.namespace or "default"
        status = res.obj.get("status")
        host = status.get("hostIP") if isinstance(status, dict) else None
        name, n = res.name, 2
        while f"{ns}/{name}" in seen:  # generateName only: the apiserver would append a random suffix
            name, n = f"{res.name}({n})", n + 1
        was = known.get(id(res))
        if was is not None and was.name == name and was.ns_labels is labels_for(ns):
            pod = was  # frozen, and its namespace's labels the very same (from_snapshot keeps equal ones)
        else:
            pod = Pod(
                namespace=ns, name=name, labels=_str_map(res.labels), ns_labels=labels_for(ns), ips=_ips(status),
                named_ports=named_ports_of(view.spec), host_ip=parse_ip(str(host)) if host else None,
                host_network=host_namespace(view.spec, "hostNetwork"), resource=res,
            )
        seen.add(pod.key)
        out.append(pod)
    owned = _owned_workloads(snapshot, pod_objs)
    workloads = _last_of(snapshot.of_kind(*WORKLOAD_KINDS), notes, "workload")
    present = {(r.kind, r.namespace, r.name) for r in workloads}
    for res in workloads:
        ns = res.namespace or "default"
        if (res.kind, ns, res.name) in owned:
            continue  # its Pod objects are in the inputs
        if any(k == _OWNED_BY.get(res.kind) and (k, ns, n) in present for k, n in controller_refs(res)):
            continue  # a Deployment stands for its ReplicaSets, a CronJob for its Jobs
        view = res.pod()
        if view is None:
            notes.append(Note(where(res), "no pod template: its pods are left out", True, res))
            continue
        if _bad_labels(view.meta.get("labels")):
            notes.append(Note(where(res), "template labels must be a map of strings (the apiserver rejects this)",
                              True, res))
        name = res.name
        key = f"{ns}/{name}"
        if key in seen:
            name = f"{res.kind.lower()}-{name}"
            key = f"{ns}/{name}"
        count = pod_count(res, snapshot)
        rep = Pod(namespace=ns, name=name, labels=_str_map(view.labels), ns_labels=labels_for(ns),
                  named_ports=named_ports_of(view.spec), host_network=host_namespace(view.spec, "hostNetwork"),
                  workload=f"{res.kind}/{res.name}", resource=res, count=count)
        if count == 0:
            idle.append(rep)
            notes.append(Note(where(res), "runs no pod (replicas 0, or suspended): not in the pod set", False, res))
            continue
        seen.add(key)
        out.append(rep)
    out.sort(key=lambda p: (p.namespace, p.name))
    return out, idle


def from_snapshot(snapshot: Snapshot, *, ipblock_matches_pods: bool = True, reuse: Cluster | None = None) -> Cluster:
    """The single place where pods and policies come from; live-cluster sources produce a Snapshot too.

    `reuse`: an earlier build whose objects are all still alive (the monitor's previous lane run, `updated`):
    the models of the Pod objects and the compiled NetworkPolicies of the same object versions are taken
    from it (each a function of its object alone, and of its namespace's labels for a pod), everything else
    is built as without it."""
    notes: list[Note] = []
    ns_labels = namespace_labels(snapshot, notes)
    known = None
    if reuse is not None:
        known = {id(p.resource): p for p in reuse.pods if p.workload is None}
        for ns, labels in ns_labels.items():  # equal labels kept as the very dict the earlier pod models hold
            if reuse.namespaces.get(ns) == labels:
                ns_labels[ns] = reuse.namespaces[ns]
    same = {id(p.resource): p for p in reuse.policies} if reuse is not None else {}
    pods, idle = pods_of(snapshot, ns_labels, notes, known)
    policies = [same.get(id(r)) or compile_policy(r)
                for r in _last_of(snapshot.of_kind("NetworkPolicy"), notes, "NetworkPolicy")]
    nodes = node_addresses(snapshot.of_kind("Node"))
    admin_objs = _last_of(snapshot.of_kind("AdminNetworkPolicy", "BaselineAdminNetworkPolicy"), notes, "policy")
    admin = [compile_admin(r, nodes) for r in admin_objs]
    banps = [a for a in admin if a.kind == "BaselineAdminNetworkPolicy"]
    for extra in banps[1:] if len(banps) > 1 else ():
        # baselineadminnetworkpolicy_types.go: a singleton, named "default"; only one can exist.
        extra.problems.append(("/metadata/name", "only one BaselineAdminNetworkPolicy can exist (named \"default\")"))
    compiled_all: list[Policy | AdminPolicy] = [*policies, *admin]
    for compiled in compiled_all:
        if compiled.problems and compiled.resource is not None:
            path, msg = compiled.problems[0]
            more = f" and {len(compiled.problems) - 1} more" if len(compiled.problems) > 1 else ""
            notes.append(Note(where(compiled.resource), f"the apiserver would reject it ({path}: {msg}{more}); "
                              "invalid parts match nothing (see netpol lint)", False, compiled.resource))
    return Cluster(pods, policies, admin, ipblock_matches_pods, ns_labels, notes=notes, idle=idle)


def updated(before: Cluster, snapshot: Snapshot, changes: Changes) -> Cluster:
    """The model of `snapshot` from the one of the monitor's previous lane run (Snapshot.derived update=):
    only the Pods and NetworkPolicies that changed are modelled and compiled again."""
    return from_snapshot(snapshot, ipblock_matches_pods=before.ipblock_matches_pods, reuse=before)


def build(pods: Iterable[Pod], policies: Iterable[Policy], admin: Iterable[AdminPolicy] = (), *,
          ipblock_matches_pods: bool = True) -> Cluster:
    """A cluster from already-built parts (tests, benchmarks, the node agent)."""
    pods = list(pods)
    ns = {p.namespace: dict(p.ns_labels) for p in pods}
    return Cluster(pods, list(policies), list(admin), ipblock_matches_pods, ns)
