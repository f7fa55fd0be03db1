"""Namespace labels for the webhook: an AdmissionReview carries the object, not its namespace.

pod-security-admission reads them from a namespace informer (k8s.io/pod-security-admission/admission/
admission.go NamespaceGetter); `admission serve --kubeconfig F` (or in-cluster, its service account) does the same
with a list then a watch of namespaces through the official client, relisting after any error (a 410 Gone
included). Until the first list has succeeded `/readyz` answers 503; a namespace the cache does not hold gets the
configured defaults (the stricter answer when the defaults enforce). Offline, labels come from the configuration's
`namespaces:` map (and, for `admission test`, from Namespace objects in the input).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..textsafe import printable

RELIST_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)
WATCH_SECONDS = 240  # the apiserver ends a watch at --min-request-timeout's randomised bound anyway


class NamespaceCache:
    """Labels by namespace name, replaced by lists and updated by watch events (thread-safe)."""

    def __init__(self, static: dict[str, dict[str, str]] | None = None) -> None:
        self._static = dict(static or {})
        self._labels: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.synced = False
        self.last_error = ""
        self.events = 0

    def labels(self, namespace: str) -> dict[str, str] | None:
        with self._lock:
            found = self._labels.get(namespace)
        return found if found is not None else self._static.get(namespace)

    def replace(self, items: dict[str, dict[str, str]]) -> None:
        with self._lock:
            self._labels = dict(items)
        self.synced = True

    def apply(self, kind: str, name: str, labels: dict[str, str]) -> None:
        """One watch event: ADDED/MODIFIED set the labels, DELETED drops them."""
        with self._lock:
            if kind == "DELETED":
                self._labels.pop(name, None)
            elif kind in ("ADDED", "MODIFIED"):
                self._labels[name] = dict(labels)
        self.events += 1


def _labels_of(ns: Any) -> tuple[str, dict[str, str]]:
    meta = ns.metadata
    return str(meta.name), {str(k): str(v) for k, v in (meta.labels or {}).items()}


def api_client(kubeconfig: str | None) -> Any:
    """The official client from a kubeconfig, or in-cluster from the pod's service account."""
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        cfg = kclient.Configuration()
        kconfig.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        return kclient.ApiClient(cfg)
    return kconfig.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]


class NamespaceWatcher:
    """Keeps a NamespaceCache filled from the cluster: list, then watch from the list's resourceVersion."""

    def __init__(self, cache: NamespaceCache, api: Any, on_problem: Callable[[str], object] | None = None) -> None:
        self.cache, self.api = cache, api
        self._on_problem = on_problem
        self._stop = threading.Event()
        self._watch: Any = None
        self.thread = threading.Thread(target=self._run, name="namespace-watch", daemon=True)

    def start(self) -> NamespaceWatcher:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()

    def _run(self) -> None:
        from kubernetes import client as kclient
        from kubernetes import watch as kwatch

        v1 = kclient.CoreV1Api(self.api)
        failures = 0
        while not self._stop.is_set():
            try:
                listed = v1.list_namespace(_request_timeout=30)
                self.cache.replace(dict(_labels_of(ns) for ns in listed.items))
                failures = 0
                self._watch = kwatch.Watch()
                for ev in self._watch.stream(v1.list_namespace, resource_version=listed.metadata.resource_version if listed.metadata else None,
                                             timeout_seconds=WATCH_SECONDS, _request_timeout=WATCH_SECONDS + 30):
                    if self._stop.is_set():
                        return
                    if ev.get("type") == "ERROR":
                        break  # relist
                    obj = ev.get("object")
                    if obj is not None and getattr(obj, "metadata", None) is not None:
                        self.cache.apply(str(ev.get("type")), *_labels_of(obj))
            except Exception as exc:  # transport errors, 410 Gone, 403: relist after a pause
                if self._stop.is_set():
                    return
                self.cache.last_error = printable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]
                if failures == 0 and self._on_problem is not None:
                    self._on_problem(f"namespace watch: {self.cache.last_error} (retrying)")
                self._stop.wait(RELIST_BACKOFF[min(failures, len(RELIST_BACKOFF) - 1)])
                failures += 1
            else:
                time.sleep(0)  # the watch ended normally: relist at once
