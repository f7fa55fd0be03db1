"""Observed flows: parse JSON lines, resolve their ends against the cluster, and check them against the policies.

A flow record is `{"src": "ns/pod" | IP, "dst": "ns/pod" | IP, "port": N, "protocol": "TCP"|"UDP"|"SCTP"}`.
`FlowChecker.check` is the hot path shared with the node agent: names and IPs are resolved once and cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from .classes import ClassIndex, ClassMatrix
from .cluster import Cluster
from .decide import decide
from .ipblock import parse_ip
from .model import PROTOCOLS, Endpoint, External, Pod

ALERT = "unauthorized communication attempt"


class FlowError(ValueError):
    """A flow line that cannot be used (bad JSON, unknown pod, bad port)."""


@dataclass(frozen=True, slots=True)
class Flow:
    src: str
    dst: str
    port: int
    protocol: str
    line: int = 0


def parse_flow(raw: Any, line: int = 0) -> Flow:
    if not isinstance(raw, dict):
        raise FlowError("a flow must be a JSON object")
    src, dst, port = raw.get("src"), raw.get("dst"), raw.get("port")
    proto = str(raw.get("protocol") or "TCP").upper()
    if not isinstance(src, str) or not src or not isinstance(dst, str) or not dst:
        raise FlowError('a flow needs "src" and "dst" ("ns/pod" or an IP)')
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise FlowError(f"port must be a number from 1 to 65535, not {port!r}")
    if proto not in PROTOCOLS:
        raise FlowError(f"protocol must be TCP, UDP or SCTP, not {proto!r}")
    return Flow(src, dst, port, proto, line)


def read_flows(lines: Iterable[bytes | str]) -> Iterator[Flow | FlowError]:
    """Flows from JSON lines; a bad line yields a FlowError naming its line number and the reading goes on."""
    for n, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            yield parse_flow(orjson.loads(text), n)
        except orjson.JSONDecodeError as exc:
            yield FlowError(f"line {n}: not JSON ({exc.msg})")
        except FlowError as exc:
            yield FlowError(f"line {n}: {exc}")


class FlowChecker:
    """Resolves flow ends to pods (by "ns/pod" or by pod IP) or external addresses, then decides.

    Pod-to-pod answers switch to the class matrix of their port once that port has been asked `matrix_after`
    times (a matrix costs about one pairwise decision per class, then every lookup is two bit operations);
    the property tests guarantee both paths agree. Other flows are decided pairwise."""

    def __init__(self, cluster: Cluster, *, matrix_after: int = 2000) -> None:
        self.cluster = cluster
        self._ends: dict[str, Endpoint] = {}
        self._matrix_after = matrix_after
        self._asked: dict[tuple[int, str], int] = {}
        self._matrices: dict[tuple[int, str], ClassMatrix] = {}
        self._index: ClassIndex | None = None
        self._pos = {id(p): i for i, p in enumerate(cluster.pods)}

    def _pod_pair(self, src: Pod, dst: Pod, port: int, protocol: str) -> bool | None:
        key = (port, protocol)
        m = self._matrices.get(key)
        if m is None:
            n = self._asked[key] = self._asked.get(key, 0) + 1
            if n < self._matrix_after:
                return None
            if self._index is None:
                self._index = ClassIndex(self.cluster)
            m = self._matrices[key] = self._index.matrix(port, protocol)
        i, j = self._pos.get(id(src)), self._pos.get(id(dst))
        return None if i is None or j is None else m.allowed(i, j)

    def endpoint(self, text: str) -> Endpoint:
        found = self._ends.get(text)
        if found is not None:
            return found
        ip = parse_ip(text)
        if ip is not None:
            found = self.cluster.pod_by_ip(ip) or External(ip)
        else:
            found = self.cluster.pod(text)
            if found is None:
                for w in self.cluster.idle:
                    if w.key == text:
                        raise FlowError(f"{text!r} is {w.workload}, which runs no pod (replicas 0)")
                raise FlowError(f"unknown pod {text!r} (expected ns/pod from the inputs, or an IP)")
        self._ends[text] = found
        return found

    def allowed(self, src: str, dst: str, port: int, protocol: str = "TCP") -> bool:
        a, b = self.endpoint(src), self.endpoint(dst)
        if isinstance(a, Pod) and isinstance(b, Pod):
            fast = self._pod_pair(a, b, port, protocol)
            if fast is not None:
                return fast
        return decide(self.cluster, a, b, port, protocol, explain=False).allowed

    def check(self, flow: Flow) -> dict[str, Any] | None:
        """None when the policies allow the flow; otherwise the alert record."""
        if self.allowed(flow.src, flow.dst, flow.port, flow.protocol):
            return None
        src, dst = self.endpoint(flow.src), self.endpoint(flow.dst)
        d = decide(self.cluster, src, dst, flow.port, flow.protocol, explain=True)
        denied = [r.direction.lower() for r in (d.egress, d.ingress) if r is not None and not r.allowed]
        return {
            "alert": ALERT, "src": flow.src, "dst": flow.dst, "port": flow.port, "protocol": flow.protocol,
            "denied": denied, "policies": d.denying_policies(),
        }
