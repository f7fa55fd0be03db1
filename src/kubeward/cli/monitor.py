"""`kubeward monitor`: keep the scan's findings current on a live cluster (watch, alert, PolicyReports, metrics)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from typing import Any

import click

from ..controls.registry import SelectionError
from ..controls.settings import NEWEST_MINOR, SettingsError
from ..exceptions import ExceptionsError
from ..vulns.osv import OSVError
from .audit import _alerting, sink_options
from .common import fail, severity_type, user_errors, warn


def _csv(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _in_cluster_available(token_file: str) -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.isfile(token_file)


@click.command()
@click.option("--cluster", "live", is_flag=True, help="Use the kubeconfig (--kubeconfig, --context).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), metavar="FILE",
              help="Kubeconfig for --cluster (default: $KUBECONFIG or ~/.kube/config).")
@click.option("--context", metavar="NAME", help="Kubeconfig context for --cluster (default: current).")
@click.option("--in-cluster", is_flag=True,
              help="Use the pod's service account (token file, KUBERNETES_SERVICE_HOST/PORT); the default when "
                   "those are present and --cluster is not given.")
@click.option("--token-file", default=None, metavar="FILE", hidden=True, help="Service-account token (in-cluster).")
@click.option("--ca-file", default=None, metavar="FILE", hidden=True, help="Cluster CA bundle (in-cluster).")
@click.option("--host", default=None, metavar="ADDR",
              help="Address of /metrics, /healthz, /readyz [default: 0.0.0.0 in-cluster, else 127.0.0.1].")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=9090, show_default=True,
              help="Port of /metrics, /healthz and /readyz (0: any free port, printed at start).")
@click.option("--reports/--no-reports", default=True, show_default=True,
              help="Write findings as wgpolicyk8s.io/v1alpha2 PolicyReports (one per namespace) and a "
                   "ClusterPolicyReport, all named kubeward.")
@click.option("--leader-elect/--no-leader-elect", default=None,
              help="Run only while holding a coordination.k8s.io Lease [default: on in-cluster, off otherwise].")
@click.option("--lease-namespace", default=None, metavar="NS",
              help="Namespace of the Lease [default: the pod's namespace in-cluster, else default].")
@click.option("--lease-name", default="kubeward-monitor", show_default=True, metavar="NAME")
@click.option("--lease-duration", type=click.IntRange(2), default=15, show_default=True,
              help="Seconds a Lease not renewed stays held (candidates wait this long for a holder that died).")
@click.option("--renew-deadline", type=click.FloatRange(1), default=10.0, show_default=True,
              help="Seconds the leader keeps trying to renew before it stops (exit 1; the pod restarts).")
@click.option("--identity", default=None, metavar="ID", help="Lease holder identity [default: $POD_NAME or host name].")
@click.option("--framework", "frameworks", multiple=True, default=("all",), show_default=True,
              help="Controls of these frameworks (as scan --framework).")
@click.option("--severity-threshold", type=severity_type(), default="info", show_default=True,
              help="Run only controls of at least this severity.")
@click.option("--include-controls", multiple=True, help="Only these control ids (comma-separated).")
@click.option("--exclude-controls", multiple=True, help="Skip these control ids (comma-separated).")
@click.option("--exclude-namespaces", multiple=True, help="Ignore objects in these namespaces.")
@click.option("--exceptions", "exceptions_file", type=click.Path(dir_okay=False),
              help="Exceptions file (default: ./.kubeward.yaml when present).")
@click.option("--k8s-version", default=f"1.{NEWEST_MINOR}", show_default=True, help="As scan --k8s-version.")
@click.option("--allowed-registries", multiple=True, help="As scan --allowed-registries.")
@click.option("--batch-window", type=click.FloatRange(0, 60), default=0.2, show_default=True,
              help="Seconds to gather changes into one evaluation after the first arrives.")
@click.option("--resync-period", type=click.FloatRange(0), default=600.0, show_default=True,
              help="Seconds between full relists of every type (0: only on 410 Gone).")
@click.option("--watch-timeout", type=click.IntRange(1), default=300, show_default=True,
              help="Server-side watch timeout, seconds (each watch lasts this to twice this).")
@click.option("--vulns/--no-vulns", "vulns", default=True, show_default=True,
              help="Also keep `kubeward vulns --cluster`'s findings current: known Kubernetes CVEs of the "
                   "apiserver (/version, polled once per --resync-period), the kubelets and the control-plane and "
                   "add-on pods, and with --images the image vulnerabilities of every pod, ranked.")
@click.option("--images", multiple=True, metavar="REPORT", type=click.Path(dir_okay=False),
              help="As vulns --images: Trivy or Grype JSON, CycloneDX JSON with VEX, mapped to the pods that run "
                   "each image (read once at start).")
@click.option("--vuln-data", metavar="PATH",
              help="As vulns --data: OSV records or a feed document instead of the stored or shipped data.")
@click.option("--min-risk", type=click.IntRange(0, 10), default=0, show_default=True, metavar="0-10",
              help="As vulns --min-risk: leave out CVE findings whose risk where they run is below this.")
@sink_options
@user_errors(SelectionError, ExceptionsError, SettingsError, OSVError)
def monitor(live: bool, kubeconfig: str | None, context: str | None, in_cluster: bool, token_file: str | None,
            ca_file: str | None, host: str | None, metrics_port: int, reports: bool, leader_elect: bool | None,
            lease_namespace: str | None, lease_name: str, lease_duration: int, renew_deadline: float,
            identity: str | None, frameworks: tuple[str, ...],
            severity_threshold: str, include_controls: tuple[str, ...], exclude_controls: tuple[str, ...],
            exclude_namespaces: tuple[str, ...], exceptions_file: str | None, k8s_version: str,
            allowed_registries: tuple[str, ...], batch_window: float, resync_period: float, watch_timeout: int,
            vulns: bool, images: tuple[str, ...], vuln_data: str | None, min_risk: int, **sinks: Any) -> None:
    """Watch a live cluster and keep the findings current: new and resolved findings as alerts (stdout, file,
    webhook), PolicyReports per namespace, Prometheus metrics.

    Every type the controls read is listed, then watched; each change re-judges the object and only the
    cross-object controls whose inputs it touched. A type this identity may not read is reported as not
    assessed (metrics, the ClusterPolicyReport, stderr), never as passed. The versions and CVE findings of
    `kubeward vulns --cluster` are kept current too (--no-vulns: not), with kubeward_vulnerabilities and
    kubeward_vuln_feed_age_days in /metrics.

    \b
    Exit codes: 0 stopped by SIGTERM/Ctrl-C; 1 the leader Lease was lost or
    the monitor failed; 2 usage errors (bad flags, no cluster to reach).
    """
    from ..findings import Severity
    from ..scan import ScanOptions, plan
    from ..sources.cluster import SA_CA, SA_NAMESPACE, SA_TOKEN, Client, ClusterError

    token_file, ca_file = token_file or SA_TOKEN, ca_file or SA_CA
    if renew_deadline >= lease_duration:
        fail(f"--renew-deadline ({renew_deadline:g}s) must be shorter than --lease-duration ({lease_duration}s)")
    if live and in_cluster:
        fail("--cluster (a kubeconfig) and --in-cluster (the pod's service account): give one")
    if not live and (kubeconfig or context):
        live = True
    use_pod = in_cluster or (not live and _in_cluster_available(token_file))
    if not live and not use_pod:
        fail("no cluster: give --cluster (kubeconfig) or --in-cluster (inside a pod)")
    options = ScanOptions(frameworks=_csv(frameworks) or ("all",), min_severity=Severity.parse(severity_threshold),
                          include_controls=_csv(include_controls), exclude_controls=_csv(exclude_controls),
                          exclude_namespaces=_csv(exclude_namespaces), exceptions_file=exceptions_file,
                          k8s_version=k8s_version, allowed_registries=_csv(allowed_registries))
    from ..scan import settings

    with settings(options):  # bad --k8s-version / --allowed-registries: one line, exit 2
        chosen = plan(options)
    if not vulns and (images or vuln_data or min_risk):
        fail("--images, --vuln-data and --min-risk need --vulns")
    vuln_options = _vuln_options(options, images, vuln_data, min_risk) if vulns else None
    try:
        client = Client.in_cluster(token_file, ca_file) if use_pod else Client(kubeconfig, context)
    except ClusterError as exc:
        fail(str(exc))
    if leader_elect is None:
        leader_elect = use_pod
    if lease_namespace is None:
        lease_namespace = _pod_namespace(SA_NAMESPACE if token_file == SA_TOKEN else
                                         os.path.join(os.path.dirname(token_file), "namespace"))
    identity = identity or os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    _run(client, options, chosen, host or ("0.0.0.0" if use_pod else "127.0.0.1"), metrics_port, reports,
         leader_elect, (lease_namespace, lease_name, lease_duration, renew_deadline), identity, batch_window,
         resync_period, watch_timeout, sinks, vuln_options)


def _vuln_options(options: Any, images: tuple[str, ...], data: str | None, min_risk: int) -> Any:
    """The data and the image reports, read once at start (a report that cannot be read is exit 2: a monitor
    must not run for weeks without the reports it was given)."""
    from ..findings import InputError
    from ..monitor.vulns import VulnOptions
    from ..vulns.update import UpdateError, current_data
    from .vulns import image_reports

    try:
        feed, official = current_data(data)
    except UpdateError as exc:
        fail(str(exc))
    errors: list[InputError] = []
    reports = image_reports(images, errors, say=False)
    if errors:
        fail(f"--images {errors[0].file}: {errors[0].message}"
             + (f" (and {len(errors) - 1} more report(s))" if errors[1:] else ""))
    return VulnOptions(feed, official, tuple(reports), min_risk, options.min_severity,
                       frozenset(options.exclude_namespaces))


def _pod_namespace(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or "default"
    except OSError:
        return os.environ.get("POD_NAMESPACE") or "default"


def _run(client: Any, options: Any, chosen: Any, host: str, port: int, reports: bool, leader_elect: bool,
         lease: tuple[str, str, int, float], identity: str, batch_window: float, resync: float,
         watch_timeout: int, sinks: dict[str, Any], vuln_options: Any = None) -> None:
    from ..monitor.leader import LeaderElector
    from ..monitor.loop import Monitor
    from ..monitor.metrics import MonitorMetrics
    from ..monitor.server import MonitorServer

    alerting = _alerting(**sinks, on_problem=warn)
    metrics = MonitorMetrics()
    stop = threading.Event()
    watch = None
    if vuln_options is not None:
        from ..monitor.vulns import VulnWatch

        watch = VulnWatch(vuln_options, chosen.exceptions, lambda: client.json("GET", "/version"), poll_every=resync,
                          context=client.context or "cluster", on_problem=warn)
        metrics.registry.register(watch.metrics)
    mon = Monitor(client, options, chosen, alerting=alerting, reports=reports, metrics=metrics,
                  batch_window=batch_window, watch_timeout=watch_timeout, resync=resync, on_problem=warn,
                  vulns=watch)
    lease_namespace, lease_name, lease_duration, renew_deadline = lease
    elector = LeaderElector(client, lease_namespace, lease_name, identity, lease_duration=lease_duration,
                            renew_deadline=renew_deadline, on_problem=warn) if leader_elect else None
    worker = threading.Thread(target=mon.run, args=(stop,), name="monitor", daemon=True)

    def healthy() -> str | None:
        if worker.ident is not None and not worker.is_alive() and not stop.is_set():
            return "monitor loop stopped"
        stuck = alerting.stalled(60.0)
        return "; ".join(stuck) if stuck else None

    def ready() -> str | None:
        if elector is not None and not elector.leading.is_set():
            return None  # a standby is ready: see monitor/server.py
        return None if mon.synced.is_set() else "initial list and evaluation not done yet"

    try:
        srv = MonitorServer((host, port), metrics=metrics.render, healthy=healthy, ready=ready)
    except OSError as exc:
        fail(f"--host {host} --metrics-port {port}: {exc.strerror or exc}")
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if watch is not None:
        warn(f"monitor: vulnerability data: {watch.options.describe()}")
    warn(f"monitor: cluster {client.context or client.host}; /metrics /healthz /readyz on "
         f"{host}:{srv.server_address[1]}" + (f"; leader election on lease {lease_namespace}/{lease_name} as "
                                               f"{identity}" if elector else ""))
    code = 0
    try:
        if elector is not None:
            threading.Thread(target=elector.run, args=(stop,), name="lease", daemon=True).start()
            while not stop.is_set() and not elector.leading.wait(0.5):
                pass
            if stop.is_set():
                return
            metrics.leader.set(1)
            warn(f"monitor: leading (lease {lease_namespace}/{lease_name})")
        worker.start()
        while not stop.wait(0.5):
            if elector is not None and elector.lost.is_set():
                code = 1
                break
            if not worker.is_alive():
                warn("monitor: the monitor loop stopped")
                code = 1
                break
    finally:
        stop.set()
        worker.join(5.0) if worker.ident is not None else None
        if elector is not None and elector.leading.is_set():
            elector.release()
        srv.shutdown()
        srv.server_close()
        for line in alerting.close():
            warn(line)
    sys.exit(code)
