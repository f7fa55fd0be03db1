"""The things traffic flows between: pods (or one representative per workload) and plain IPs.

A representative stands for every pod of its workload (`count` of them). Only a pod talking to itself is exempt
from policy ("a pod cannot block access to itself"); two replicas of one workload are two pods, so the cell of a
representative with itself is replica-to-replica traffic, decided by the policies like any other pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...records import field, record
from .ipblock import IP

PROTOCOLS = ("TCP", "UDP", "SCTP")
NamedPort = tuple[str, str, int]  # (containerPort name, protocol, number)


@record(frozen=True, eq=False)
class Pod:
    """A pod as policies see it: namespace (with its labels), labels, IPs and named container ports."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    ns_labels: Mapping[str, str]
    ips: tuple[IP, ...] = ()
    named_ports: frozenset[NamedPort] = frozenset()
    host_ip: IP | None = None
    host_network: bool = False
    workload: str | None = None  # "Kind/name" when this stands for a workload's pods
    resource: Any = field(default=None, repr=False)
    count: int | None = 1  # pods this stands for: 1 for a Pod object, replicas for a workload; None = several

    @property
    def single(self) -> bool:
        """Exactly one pod, so its traffic to itself is loopback (always allowed), not replica-to-replica."""
        return self.count == 1

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return self.key

    def resolve(self, name: str, protocol: str) -> int | None:
        """The number a named port stands for on this pod (destination-side resolution)."""
        for n, proto, num in self.named_ports:
            if n == name and proto == protocol:
                return num
        return None


@record(frozen=True)
class External:
    """An address outside the pod set (or a pod address when pods are matched by IP only)."""

    ip: IP

    @property
    def key(self) -> str:
        return str(self.ip)

    def __str__(self) -> str:
        return self.key


Endpoint = Pod | External


def named_ports_of(spec: Mapping[str, Any]) -> frozenset[NamedPort]:
    """containerPorts with a name, across init (sidecar) and regular containers; protocol defaults to TCP."""
    out: set[NamedPort] = set()
    for fld in ("initContainers", "containers"):
        items = spec.get(fld)
        if not isinstance(items, list):
            continue
        for c in items:
            ports = c.get("ports") if isinstance(c, dict) else None
            if not isinstance(ports, list):
                continue
            for p in ports:
                if not isinstance(p, dict) or not p.get("name"):
                    continue
                num = p.get("containerPort")
                if isinstance(num, int) and not isinstance(num, bool):
                    out.add((str(p["name"]), str(p.get("protocol") or "TCP"), num))
    return frozenset(out)
