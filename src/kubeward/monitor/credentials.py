"""The credentials expiry watch: seconds until each credential the cluster holds expires, as one gauge series per
credential (`kubeward_credential_expiry_seconds{credential,owner}`).

What the credentials are comes from `kubeward creds audit`'s cluster half (kubeward.creds.audit), computed again at
each full resync rather than per change: certificates expire on the clock, not on a watch event, so the value is
taken at scrape time from the not_after found at the last resync. Credentials that never expire (legacy
service-account tokens, static tokens) have no series. The webhook and APIService CA bundles are not among the
types the monitor watches; they are listed once per resync for this (kubeward.creds.audit.cluster_types).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..resource import Resource
from ..snapshot import Snapshot
from ..sources.cluster import Client, ClusterSnapshot, ResourceType

Row = tuple[str, str, dt.datetime | None]  # credential id, owner, not_after (None: never expires)


class CredentialExpiries(Collector):
    """A prometheus_client collector: the rows of the last resync, their seconds left computed when scraped."""

    def __init__(self, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._rows: list[tuple[str, str, dt.datetime]] = []
        self._now = now
        self._lock = threading.Lock()

    def update(self, rows: Iterable[Row]) -> None:
        kept = [(c, o, t) for c, o, t in rows if t is not None]
        with self._lock:
            self._rows = kept

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("kubeward_credential_expiry_seconds", "Seconds until the credential expires "
                              "(negative: expired), as found at the last full resync; credentials that never "
                              "expire have no series.", labels=["credential", "owner"])
        now = self._now()
        with self._lock:
            rows = list(self._rows)
        for cred, owner, not_after in rows:
            g.add_metric([cred, owner], (not_after - now).total_seconds())
        yield g


def expiries(snapshot: Snapshot) -> list[Row]:
    """The (credential, owner, not_after) rows of the snapshot alone (no kubeconfig or node file is read)."""
    from ..creds.audit import AuditOptions, credential_expiries

    return credential_expiries(AuditOptions(kubeconfigs=(), default_kubeconfigs=False), snapshot)


def bundle_types(watched: Iterable[str]) -> list[ResourceType]:
    """The CA-bundle holders `creds audit --cluster` reads that the monitor does not watch (by type path)."""
    from ..creds.audit import cluster_types
    from ..creds.certs import WEBHOOK_KINDS

    seen = set(watched)
    return [t for t in cluster_types() if t.kind in (*WEBHOOK_KINDS, "APIService") and t.path not in seen]


def resync_snapshot(client: Client, held: Iterable[Resource], types: Iterable[ResourceType],
                    on_problem: Callable[[str], None]) -> ClusterSnapshot:
    """The held objects plus the CA-bundle holders listed now; a type that cannot be listed is named once and
    left out (its bundles have no series until a resync can read it)."""
    extra: list[Resource] = []
    for t in types:
        items, status, reason = client.list_raw(t)
        if status != 200:
            on_problem(f"{t.name}: credential expiries not read: {reason}")
            continue
        for obj in items:
            obj.setdefault("apiVersion", t.group_version)
            obj.setdefault("kind", t.kind)
            extra.append(Resource(obj, cluster=client.context))
    resources = [*held, *extra]
    return ClusterSnapshot(resources, context=client.context, coverage=(0, 0))
