"""`creds audit` as a library: read every place credentials sit, return one Report and every credential's expiry.

The CLI (cli/creds.py) only parses flags and prints; the monitor calls `credential_expiries` for its
days-to-expiry metrics, so alerts come before the outage.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..findings import Report
from ..snapshot import Snapshot
from .base import Collector, Expiry

if TYPE_CHECKING:
    from ..sources.cluster import ResourceType

# The scan's secret controls, one engine: credentials in ConfigMaps, env and annotations, legacy token Secrets.
SECRET_CONTROLS = ("KW-S001", "KW-S002", "KW-S003", "KW-S004", "KW-S005", "KW-S006", "KW-W046", "KW-W047")


@dataclass(slots=True)
class AuditOptions:
    kubeconfigs: Sequence[Path] = ()  # kubeconfig files to judge (kubectl's default ones when empty)
    node_root: Path | None = None  # a node's filesystem root: /etc/kubernetes (manifests, pki, *.conf), kubelet
    default_kubeconfigs: bool = True  # judge $KUBECONFIG / ~/.kube/config when no file is named


@dataclass(slots=True)
class Audit:
    report: Report
    expiries: list[Expiry] = field(default_factory=list)


def cluster_types() -> tuple[ResourceType, ...]:
    """What `creds audit --cluster` lists: the secret controls' kinds and the CA bundles' holders."""
    from ..sources.cluster import NAMESPACE_TYPES, WORKLOAD_TYPES, ResourceType

    def t(gv: str, plural: str, kind: str, namespaced: bool = True) -> ResourceType:
        return ResourceType(gv, plural, kind, optional=False, namespaced=namespaced)

    return (*NAMESPACE_TYPES, *WORKLOAD_TYPES, t("v1", "secrets", "Secret"), t("v1", "configmaps", "ConfigMap"),
            t("v1", "serviceaccounts", "ServiceAccount"),
            t("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
              False),
            t("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration",
              False),
            t("apiregistration.k8s.io/v1", "apiservices", "APIService", False))


def default_kubeconfigs() -> list[Path]:
    """kubectl's files: every existing entry of $KUBECONFIG, else ~/.kube/config when it exists."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p and Path(p).is_file()]
    home = Path.home() / ".kube" / "config"
    return [home] if home.is_file() else []


def _files(col: Collector, opts: AuditOptions) -> None:
    from .certs import audit_kubelet_pki, audit_pki_dir, node_kubeconfigs
    from .kubeconfig import audit_kubeconfig

    files = list(opts.kubeconfigs)
    if not files and opts.default_kubeconfigs:
        files = default_kubeconfigs()
    for path in files:
        audit_kubeconfig(col, path)
    root = opts.node_root
    if root is None:
        return
    from ..sources.node import load_node
    from .tokens import audit_apiserver

    cfg = load_node(root)
    col.errors += cfg.errors
    audit_apiserver(col, cfg)
    pki = root / "etc" / "kubernetes" / "pki"
    if pki.is_dir():
        audit_pki_dir(col, pki)
    else:
        from ..findings import NotAssessed

        col.not_assessed.append(NotAssessed("control-plane certificates", f"no folder {pki}"))
    audit_kubelet_pki(col, root / "var" / "lib" / "kubelet" / "pki")
    for conf in node_kubeconfigs(root):
        audit_kubeconfig(col, conf, root=root)


def unread_workloads(snap: Snapshot) -> list[str]:
    """The pod-carrying types the cluster refused to list: without them "no pod uses this token" is unknown."""
    from ..sources.cluster import WORKLOAD_TYPES

    names = {t.name for t in WORKLOAD_TYPES}
    return [n.what for n in snap.not_assessed if n.what.split(" ", 1)[0] in names]


def _cluster(col: Collector, snap: Snapshot) -> None:
    from ..controls.registry import Selection, all_controls, run
    from ..controls.secrets import legacy_token_usage, secret_users
    from .certs import audit_cluster_bundles

    chosen = Selection(include=SECRET_CONTROLS).choose(all_controls())
    report = run(snap, chosen)
    col.objects += report.objects
    col.not_assessed += snap.not_assessed
    col.errors += snap.errors
    users = secret_users(snap)
    unread = unread_workloads(snap)
    for f in report.findings:
        message = f.message
        if f.control.id == "KW-S003":  # who still uses the legacy token: what decides whether it can go
            secret = snap.get("Secret", f.object.namespace, f.object.name)
            if secret is not None and unread:
                message += f"; who uses it is unknown: {', '.join(unread)} could not be read"
            elif secret is not None:
                message += "; " + legacy_token_usage(secret, users.get((secret.namespace, secret.name), []))
        col.add(f.control, f.object, f.location, f.path, message)
    for res in report.controls.values():
        col.judged(res.meta, res.evaluated)
    for secret in snap.of_kind("Secret"):
        if secret.obj.get("type") == "kubernetes.io/service-account-token":
            sa = secret.annotations.get("kubernetes.io/service-account.name", "?")
            col.expiry(f"legacy-token:{secret.namespace}/{secret.name}",
                       f"system:serviceaccount:{secret.namespace}:{sa}", None)
    audit_cluster_bundles(col, snap)


def audit(opts: AuditOptions, cluster: Snapshot | None = None, *, now: dt.datetime | None = None) -> Audit:
    """Every finding and expiry of the files `opts` names and, when given, of a snapshot read from a cluster."""
    col = Collector(now=now) if now is not None else Collector()
    _files(col, opts)
    if cluster is not None:
        _cluster(col, cluster)
    expiries = sorted(col.expiries, key=lambda e: (e.not_after is None, e.not_after or col.now, e.id))
    return Audit(col.report(), expiries)


def credential_expiries(opts: AuditOptions, cluster: Snapshot | None = None
                        ) -> list[tuple[str, str, dt.datetime | None]]:
    """(credential id, owner, not_after) of every credential found, soonest first, never-expiring (None) last:
    what the monitor exports as days to expiry per credential."""
    return [(e.id, e.owner, e.not_after) for e in audit(opts, cluster).expiries]
