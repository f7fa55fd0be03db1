"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does
(k8s.io/client-go/tools/leaderelection/leaderelection.go and resourcelock/leaselock.go), so of the replicas of a
Deployment (two, for a moment, during a rolling update) only one writes PolicyReports and sends alerts.

- The holder renews spec.renewTime every `retry` seconds; a write is an update with the Lease's
  resourceVersion, so two candidates can never both succeed (the apiserver answers 409 to the second).
- A candidate takes the Lease when it has no holder, or when the record it last saw has not changed for
  leaseDurationSeconds of *its own* clock (client-go's observedTime: the clocks of two nodes are never
  compared), incrementing leaseTransitions.
- A holder that could not renew for `renew_deadline` seconds stops leading (the caller exits; a new process
  starts as a candidate). On shutdown the holder releases the Lease (empty holderIdentity), so the next replica
  takes over at once instead of after leaseDuration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..sources.cluster import Client, ClusterError, quote_path


def _now_micro() -> str:
    """MicroTime as the API writes it (RFC 3339 with microseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, client: Client, namespace: str, name: str, identity: str, *, lease_duration: int = 15,
                 renew_deadline: float = 10.0, retry: float = 2.0,
                 on_problem: Callable[[str], None] = lambda _m: None) -> None:
        self.client, self.namespace, self.name, self.identity = client, namespace, name, identity
        self.lease_duration, self.renew_deadline, self.retry = lease_duration, renew_deadline, retry
        self.on_problem = on_problem
        self.leading = threading.Event()
        self.lost = threading.Event()  # set when a leader could not renew in time
        self._observed: tuple[str, float] | None = None  # (resourceVersion, local monotonic time first seen)
        self.transitions = 0

    @property
    def path(self) -> str:
        return quote_path("apis", "coordination.k8s.io", "v1", "namespaces", self.namespace, "leases", self.name)

    def _collection(self) -> str:
        return quote_path("apis", "coordination.k8s.io", "v1", "namespaces", self.namespace, "leases")

    def try_acquire_or_renew(self) -> bool:
        """One round: True when this identity holds the Lease afterwards."""
        status, lease = self.client.json("GET", self.path)
        now = _now_micro()
        if status == 404:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": self.lease_duration,
                             "acquireTime": now, "renewTime": now, "leaseTransitions": 0}}
            status, doc = self.client.json("POST", self._collection(), body=body)
            if status != 201:
                self._problem("create", status, doc)
            return status == 201
        if status != 200 or not isinstance(lease, dict):
            self._problem("get", status, lease)
            return False
        spec: dict[str, Any] = lease.get("spec") or {}
        rv = str((lease.get("metadata") or {}).get("resourceVersion") or "")
        holder = spec.get("holderIdentity") or ""
        mono = time.monotonic()
        if self._observed is None or self._observed[0] != rv:
            self._observed = (rv, mono)  # the record changed: the holder is alive as of now
        duration = int(spec.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and mono - self._observed[1] < duration:
            return False  # someone else holds an unexpired lease
        new_spec = dict(spec, holderIdentity=self.identity, leaseDurationSeconds=self.lease_duration,
                        renewTime=now)
        if holder != self.identity:
            new_spec["acquireTime"] = now
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        body = dict(lease, spec=new_spec)
        status, doc = self.client.json("PUT", self.path, body=body)  # carries metadata.resourceVersion: 409 if moved
        if status == 200:
            self._observed = (str((doc.get("metadata") or {}).get("resourceVersion") or ""), mono)
            return True
        if status != 409:
            self._problem("update", status, doc)
        return False

    def run(self, stop: threading.Event) -> None:
        """Acquire, then renew until stopped or lost; meant for its own thread."""
        last_renew = 0.0
        while not stop.is_set():
            try:
                ok = self.try_acquire_or_renew()
            except ClusterError as exc:
                self.on_problem(f"lease {self.namespace}/{self.name}: {exc}")
                ok = False
            if ok:
                last_renew = time.monotonic()
                if not self.leading.is_set():
                    self.transitions += 1
                    self.leading.set()
            elif self.leading.is_set() and time.monotonic() - last_renew > self.renew_deadline:
                self.on_problem(f"lease {self.namespace}/{self.name}: not renewed for {self.renew_deadline:.0f}s; "
                                "stopping as leader")
                self.leading.clear()
                self.lost.set()
                return
            stop.wait(self.retry)
        if self.leading.is_set():
            self.release()

    def release(self) -> None:
        """Give the Lease up (holderIdentity empty) so a successor need not wait for it to expire."""
        try:
            status, lease = self.client.json("GET", self.path)
            if status != 200 or not isinstance(lease, dict):
                return
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            body = dict(lease, spec=dict(spec, holderIdentity="", leaseDurationSeconds=1, renewTime=_now_micro()))
            self.client.json("PUT", self.path, body=body)
        except ClusterError:
            pass
        finally:
            self.leading.clear()

    def _problem(self, verb: str, status: int, doc: Any) -> None:
        msg = doc.get("message") if isinstance(doc, dict) else None
        self.on_problem(f"lease {self.namespace}/{self.name}: {verb}: HTTP {status}" + (f": {msg}" if msg else ""))
