"""Which pods run as which service account: a compromised pod inherits its service account's permissions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from ...records import record
from ...resource import Resource
from ...snapshot import Snapshot, judged_each, namespaces_of


@record(frozen=True)
class PodRef:
    kind: str
    namespace: str
    name: str
    token_mounted: bool  # automountServiceAccountToken (pod spec wins over the ServiceAccount)

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" + ("" if self.token_mounted else " (token not mounted)")

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, "tokenMounted": self.token_mounted}


def pods_by_service_account(snapshot: Snapshot) -> dict[tuple[str, str], list[PodRef]]:
    """(namespace, sa) → pods and pod templates running as it; built once per snapshot (read, never modify).

    core/v1 PodSpec: serviceAccountName, else the deprecated serviceAccount, else "default" (the
    ServiceAccount admission plugin fills it in). The token is mounted unless the pod, or failing that the
    ServiceAccount, sets automountServiceAccountToken: false (plugin/pkg/admission/serviceaccount).
    """
    return snapshot.derived("rbac.pods_by_sa", _pods_by_service_account, by_value=True)


def _pods_by_service_account(snapshot: Snapshot) -> dict[tuple[str, str], list[PodRef]]:
    out: dict[tuple[str, str], list[PodRef]] = defaultdict(list)
    # each workload's entry is a function of it and its namespace's ServiceAccounts: the monitor's lane makes
    # again only those of the workloads that changed and of namespaces whose ServiceAccounts changed
    for key, ref in judged_each(snapshot, "rbac.pods_by_sa.each", lambda s: s.workloads(), _runs_as,
                                lambda changes: namespaces_of(changes, "ServiceAccount")):
        out[key].append(ref)
    return dict(out)


def _runs_as(snapshot: Snapshot) -> Callable[[Resource], list[tuple[tuple[str, str], PodRef]]]:
    sa_automount: dict[tuple[str, str], bool] = {}
    for sa in snapshot.of_kind("ServiceAccount"):
        v = sa.obj.get("automountServiceAccountToken")
        sa_automount[(sa.namespace or "default", sa.name)] = v is not False

    def one(res: Resource) -> list[tuple[tuple[str, str], PodRef]]:
        pod = res.pod()
        if pod is None:
            return []
        ns = res.namespace or "default"
        name = pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default"
        key = (ns, str(name))
        own = pod.spec.get("automountServiceAccountToken")
        mounted = own is not False if isinstance(own, bool) else sa_automount.get(key, True)
        return [(key, PodRef(res.kind, ns, res.name, mounted))]
    return one
