"""`kubeward audit …` (policy generate|check, analyze, watch, serve) and `kubeward audit2rbac`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from ..controls.registry import Control, Shape
from ..findings import Severity
from ..formats import DOCUMENTS, FORMATS, document, render_report
from ..identity import SubjectError, parse_subject
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    apply_exceptions,
    color_wanted,
    emit,
    exceptions_option,
    fail,
    fail_on_type,
    format_option,
    output_options,
    parse_fail_on,
    path_arguments,
    selection_options,
    serving_tls,
    serving_tls_options,
    severity_type,
    warn,
)


def _csv(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


@click.group("audit")
def group() -> None:
    """Audit logging: generate and lint audit policies, analyze logs, alert live (watch a file or serve a webhook)."""


# --- policy ------------------------------------------------------------------------------------------------------

@group.group("policy")
def policy_group() -> None:
    """Audit policies (audit.k8s.io/v1): generate one that logs what security needs, or lint yours."""


@policy_group.command("generate")
@click.option("--profile", type=click.Choice(["minimal", "recommended", "forensic"]), default="recommended",
              show_default=True, help="How much to log (`kubeward docs audit` explains each rule).")
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
def policy_generate(profile: str, output_file: str | None) -> None:
    """Print an audit Policy for kube-apiserver --audit-policy-file, commented rule by rule."""
    from ..audit.policygen import generate

    emit(generate(profile), output_file)


@policy_group.command("check")
@path_arguments("path", click.Path(allow_dash=True), single=True, what="POLICY")
@output_options(FORMATS)
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True,
              help="Exit 1 when a finding at or above this severity remains (none: never).")
@click.option("--for-detections", is_flag=True,
              help="Also report each `audit analyze` detection the policy blinds (the request it loses and why).")
@exceptions_option
@selection_options(Shape.AUDIT_POLICY, frameworks="cis")
def policy_check(path: str, fmt: str, output_file: str | None, fail_on: str, for_detections: bool,
                 exceptions_file: str | None, controls: list[Control], narrowed: bool) -> None:
    """Lint an audit Policy: invalid fields, unreachable rules, secret bodies logged, exec not logged.

    \b
    Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it; 2 unreadable or invalid policy.
    """
    from ..audit.policycheck import check_file

    report = check_file(path, for_detections, controls)
    for e in report.errors:
        click.echo(str(e), err=True)
    if report.objects == 0:
        sys.exit(EXIT_USAGE)
    apply_exceptions(report, exceptions_file)
    emit(render_report(report, fmt, color=color_wanted(output_file)), output_file)
    threshold = parse_fail_on(fail_on)
    sys.exit(EXIT_FINDINGS if any(f.severity >= threshold for f in report.findings) else EXIT_OK)


# --- analyze -----------------------------------------------------------------------------------------------------

def detection_options(f: Any) -> Any:
    opts = [
        click.option("--rules", "rules_file", type=click.Path(dir_okay=False),
                     help="Custom detections (YAML field matchers, see `kubeward docs audit`)."),
        click.option("--disable", multiple=True, help="Detection ids to skip (repeat or comma-separate)."),
        click.option("--burst-threshold", type=click.IntRange(min=0), default=10, show_default=True,
                     help="Forbidden/unauthenticated requests per user or source IP that make a burst (0: off)."),
        click.option("--burst-window", type=click.FloatRange(min=0.001), default=60.0, show_default=True,
                     help="Sliding window for bursts, in seconds."),
        click.option("--allowed-cidr", multiple=True,
                     help="Expected source networks; requests from elsewhere alert (repeatable)."),
        click.option("--allowed-user-agent", multiple=True,
                     help="Expected user agents (regex); others alert (repeatable)."),
        click.option("--trusted-image", multiple=True, metavar="REPOSITORY",
                     help="Image repository (no tag) whose pods the pod detections ignore, e.g. quay.io/calico/node "
                          "(repeat or comma-separate)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


DETECTION_KEYS = ("rules_file", "disable", "burst_threshold", "burst_window", "allowed_cidr", "allowed_user_agent",
                  "trusted_image")


def _analyzer(rules_file: str | None, disable: tuple[str, ...], burst_threshold: int, burst_window: float,
              allowed_cidr: tuple[str, ...], allowed_user_agent: tuple[str, ...],
              trusted_image: tuple[str, ...]) -> Any:
    import re

    from ..audit.analyzer import Analyzer, AnalyzerConfig
    from ..audit.detections import Settings, builtin

    custom: list[Any] = []
    settings = Settings()
    if rules_file:  # the rules module (and the audit-policy engine it loads) only for a rules file
        from ..audit.rules import RulesError, load_rules_file

        try:
            custom, settings = load_rules_file(rules_file)
        except RulesError as exc:
            fail(str(exc))
    cidrs = _csv(allowed_cidr)
    for c in cidrs:
        import ipaddress

        try:
            ipaddress.ip_network(c, strict=False)
        except ValueError:
            fail(f"--allowed-cidr: {c!r} is not a network")
    for a in allowed_user_agent:
        try:
            re.compile(a)
        except re.error as exc:
            fail(f"--allowed-user-agent: bad regex {a!r}: {exc}")
    config = AnalyzerConfig(burst_threshold, burst_window, cidrs, tuple(allowed_user_agent), _csv(disable),
                            _csv(trusted_image), identities=settings.identities)
    return Analyzer(builtin(settings) + custom, config), config


@group.command("analyze")
@path_arguments("paths", click.Path(allow_dash=True), what="LOG")
@format_option(("table", *DOCUMENTS), "audit analyze")
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write the report to FILE.")
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True,
              help="Exit 1 when an alert at or above this severity was raised.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes for plain (uncompressed) log files.")
@click.option("--max-document-size", default="256M", show_default=True, metavar="SIZE",
              help="Largest whole-file JSON EventList accepted (JSON lines stream without limit).")
@detection_options
def analyze(paths: tuple[str, ...], fmt: str, output_file: str | None, fail_on: str, workers: int,
            max_document_size: str, **det: Any) -> None:
    """Analyze audit logs (JSON lines, .gz, '-' for stdin; v1 or v1beta1 Events, EventLists) and report alerts.

    \b
    Exit codes: 0 no alert at or above --fail-on; 1 alerts at or above it; 2 usage errors or no event read.
    """
    from ..audit.reader import ReadStats, iter_events
    from . import common
    from .common import parse_size

    if not paths:
        fail("nothing to analyze: give audit log files or '-' for stdin")
    max_document = parse_size(max_document_size)  # before any reading: a bad SIZE is refused whatever the files
    analyzer, config = _analyzer(**det)
    rs = ReadStats()
    alerts: list[Any] = []  # Alerts; with --workers and a document format, parallel.Records for the children's
    stats = analyzer.stats
    from ..audit.prefilter import idle_filter
    from ..gcpause import gc_paused

    common.one_burst()

    # The parsed events are freed by reference counting and make no cycles; the collector would only rescan
    # the alerts kept so far, again and again (~6 % of the CPU over a large log). Forked workers inherit it.
    with gc_paused():
        if workers > 1:
            from ..audit.parallel import analyze_file_parallel
            from ..audit.reader import expand

            for p in expand(paths):
                if _parallel_ok(p):
                    alerts.extend(analyze_file_parallel(p, p, workers, analyzer, rs, records=fmt in DOCUMENTS))
                else:
                    for ev in iter_events([p], rs, max_document=max_document, skip=idle_filter(analyzer)):
                        alerts.extend(analyzer.feed(ev))
        else:
            feed = analyzer.feed
            for ev in iter_events(paths, rs, max_document=max_document, skip=idle_filter(analyzer)):
                r = feed(ev)
                if r:
                    alerts.extend(r)
    for e in rs.errors:
        click.echo(str(e), err=True)
    if rs.bad_lines > len(rs.errors):
        warn(f"{rs.bad_lines - len(rs.errors)} more unusable lines not shown")
    if rs.events == 0:
        fail("no audit events read", EXIT_USAGE)
    if stats.malformed:
        warn(f"{stats.malformed} events had fields of unexpected types; the detections concerned skipped them")
    if fmt in DOCUMENTS:
        with gc_paused():  # one record per alert, all kept until the document is written
            rest = {"stats": stats.to_json(), "errors": [e.to_json() for e in rs.errors]}
            if rs.bad_lines:
                rest["stats"]["badLines"] = rs.bad_lines
            if fmt == "json" and workers > 1:
                from ..audit.parallel import report_json

                text = report_json(alerts, rest).decode() + "\n"  # the workers' records spliced in unread
            else:
                text = document({"alerts": [a.to_json() for a in alerts], **rest}, fmt)
    else:
        from ..alerts import fold

        # Identical alerts within the burst window are one line with a count; JSON keeps one per event.
        lines = [a.line() + (f" ×{n}" if n > 1 else "") for a, n in fold(alerts, config.burst_window)]
        by = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_rule.items())) or "none"
        lines.append(f"{stats.events} events, {stats.alerts} alerts ({by})")
        text = "\n".join(lines) + "\n"
    if stats.state_dropped:
        warn(f"{stats.state_dropped} identities or source IPs forgotten by the bounded burst/source memory "
             "(oldest first); bursts spread over more keys may be missed")
    emit(text, output_file)
    threshold = parse_fail_on(fail_on)
    sys.exit(EXIT_FINDINGS if any(a.severity >= threshold for a in alerts) else EXIT_OK)


def _parallel_ok(path: str) -> bool:
    """Only regular, uncompressed JSON-lines files can be split by byte ranges."""
    if path == "-" or not Path(path).is_file():
        return False
    try:
        with open(path, "rb") as f:
            head = f.readline(1 << 20)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b":
        return False
    try:
        orjson.loads(head)
    except orjson.JSONDecodeError:
        return False
    return True


# --- live: watch and serve ---------------------------------------------------------------------------------------

def sink_options(f: Any) -> Any:
    opts = [
        click.option("--alert-format", type=click.Choice(["table", "json", "none"]), default="table",
                     show_default=True, help="Alerts on stdout as table lines, JSON lines, or not at all."),
        click.option("--alert-file", type=click.Path(dir_okay=False), help="Append alerts as JSON lines to FILE."),
        click.option("--alert-webhook", metavar="URL", help="POST each alert as JSON to URL."),
        click.option("--slack", is_flag=True, help="Send a Slack-compatible payload to --alert-webhook."),
        click.option("--alert-webhook-ca", type=click.Path(exists=True, dir_okay=False),
                     help="CA bundle that signed the --alert-webhook server (default: system trust store)."),
        click.option("--queue-size", type=click.IntRange(min=1), default=10000, show_default=True,
                     help="Alerts waiting for each sink (stdout, file, webhook) before new ones are dropped and "
                          "counted: a stuck output never stops the analysis."),
        click.option("--webhook-retries", type=click.IntRange(min=0), default=3, show_default=True,
                     help="Retries per alert, with exponential backoff from 0.5 s."),
        click.option("--min-severity", type=severity_type(), default="info", show_default=True,
                     help="Emit only alerts at or above this severity."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _alerting(alert_format: str, alert_file: str | None, alert_webhook: str | None, slack: bool,
              alert_webhook_ca: str | None, queue_size: int, webhook_retries: int, min_severity: str,
              on_problem: Any = None) -> Any:
    import ssl

    from ..alertsinks import Alerting, FileSink, StreamSink, WebhookSink

    if slack and not alert_webhook:
        fail("--slack needs --alert-webhook URL")
    sinks: list[Any] = []
    if alert_format != "none":
        sinks.append(StreamSink(alert_format, queue_size=queue_size, on_problem=on_problem))
    if alert_file:
        try:
            sinks.append(FileSink(alert_file, queue_size=queue_size, on_problem=on_problem))
        except OSError as exc:
            fail(f"{alert_file}: {exc.strerror or exc}")
    if alert_webhook:
        if not alert_webhook.startswith(("http://", "https://")):
            fail(f"--alert-webhook: {alert_webhook!r} is not an http(s) URL")
        try:
            sinks.append(WebhookSink(alert_webhook, slack=slack, queue_size=queue_size, retries=webhook_retries,
                                     on_first_drop=on_problem or warn, ca_file=alert_webhook_ca))
        except (ssl.SSLError, OSError) as exc:
            fail(f"{alert_webhook_ca}: cannot load CA bundle: {exc}")
    return Alerting(sinks, Severity.parse(min_severity))


def _finish(alerting: Any, rs: Any, stats: Any) -> None:
    for e in rs.errors:
        click.echo(str(e), err=True)
    for line in alerting.close():
        warn(line)
    warn(f"{stats.events} events, {stats.alerts} alerts" + (f", {rs.bad_lines} unusable lines" if rs.bad_lines else ""))


@group.command("watch")
@path_arguments("path", click.Path(dir_okay=False), single=True, what="LOG")
@click.option("--from-start", is_flag=True, help="Analyze what the file already holds, then follow.")
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=0.25, show_default=True,
              help="Seconds between checks for new data, rotation and truncation.")
@detection_options
@sink_options
def watch(path: str, from_start: bool, poll_interval: float, **opts: Any) -> None:
    """Follow a live audit log like `tail -F` (survives rotation and truncation) and emit alerts as they happen.

    Stops on Ctrl-C or SIGTERM and then reports counts, including alerts any sink had to drop.
    """
    import signal
    import threading

    from ..audit.reader import ReadStats
    from ..audit.watch import Follower, follow_events

    det = {k: opts.pop(k) for k in DETECTION_KEYS}
    analyzer, _ = _analyzer(**det)
    alerting = _alerting(**opts, on_problem=warn)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    follower = Follower(path, from_start=from_start, poll=poll_interval, stop=stop)
    if not Path(path).exists():
        warn(f"{path}: does not exist yet; waiting for it to appear")
    rs = ReadStats()

    def on_event(ev: dict[str, Any]) -> None:
        for a in analyzer.feed(ev):
            alerting.emit(a)

    with contextlib.suppress(KeyboardInterrupt):
        follow_events(follower, rs, on_event)
    _finish(alerting, rs, analyzer.stats)


@group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback unless you say otherwise, e.g. 0.0.0.0 behind --client-ca).")
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True)
@serving_tls_options("Server", client_ca_help="Require client certificates signed by this CA (the apiserver's "
                     "webhook kubeconfig client cert). Required unless --insecure-no-client-auth.")
@click.option("--insecure-no-client-auth", is_flag=True,
              help="Accept clients without a certificate: anyone who reaches the port can feed events.")
@click.option("--max-body", default="4M", show_default=True, metavar="SIZE",
              help="Largest EventList accepted (413 beyond). The apiserver sends at most "
                   "--audit-webhook-batch-max-size events a batch; raise this for RequestResponse-level policies.")
@click.option("--max-connections", type=click.IntRange(min=1), default=512, show_default=True,
              help="Concurrent connections; more are closed at accept (and counted).")
@click.option("--max-buffered", default="64M", show_default=True, metavar="SIZE",
              help="Request bodies held in memory at once, all connections together; beyond it a batch waits, "
                   "then gets 429 with Retry-After (the apiserver retries).")
@click.option("--header-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              metavar="SECONDS", help="A request line and its headers (and the TLS handshake) must arrive in time.")
@click.option("--request-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              metavar="SECONDS", help="Deadline for a body to arrive and for the analysis to take it (else 429).")
@click.option("--idle-timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              metavar="SECONDS", help="A kept-alive connection is closed after this long without a request.")
@click.option("--stall-after", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="/healthz answers 503 once a sink or the analysis has been stuck this long.")
@click.option("--shutdown-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              metavar="SECONDS", help="On SIGTERM, queued alerts are written for at most this long.")
@detection_options
@sink_options
def serve(host: str, port: int, tls_cert: str, tls_key: str, client_ca: str | None, insecure_no_client_auth: bool,
          max_body: str, max_connections: int, max_buffered: str, header_timeout: float, request_timeout: float, idle_timeout: float,
          stall_after: float, shutdown_timeout: float, **opts: Any) -> None:
    """Audit webhook backend: receive the EventList batches kube-apiserver POSTs (--audit-webhook-config-file)
    over HTTPS (client certificates required) and emit alerts. GET /healthz answers 200, or 503 while stuck.

    Stops on SIGTERM within --shutdown-timeout and reports counts, including alerts any sink had to drop.
    """
    from ..audit.serve import make_server
    from ..httpserve import serve_until_terminated
    from ..outqueue import stderr_log
    from .common import parse_size

    if not client_ca and not insecure_no_client_auth:
        fail("audit serve: --client-ca is required (the CA of the apiserver's webhook client certificate); "
             "--insecure-no-client-auth accepts anyone who reaches the port")
    try:
        body_limit = parse_size(max_body)
        buffered_limit = parse_size(max_buffered)
    except (ValueError, click.BadParameter) as exc:
        fail(f"--max-body/--max-buffered: {exc}")
    det = {k: opts.pop(k) for k in DETECTION_KEYS}
    analyzer, _ = _analyzer(**det)
    tls = serving_tls(tls_cert, tls_key, client_ca)  # renewed certificates are picked up without a restart
    # While serving, log lines go through a bounded queue: a stderr nobody reads cannot stall the server.
    log = stderr_log()
    tls.on_problem = log.put
    alerting = _alerting(**opts, on_problem=log.put)
    try:
        srv = make_server(host, port, None, analyzer, alerting.emit, max_body=body_limit,
                          max_connections=max_connections, max_buffered=buffered_limit,
                          header_timeout=header_timeout,
                          request_timeout=request_timeout, idle_timeout=idle_timeout, stall_after=stall_after,
                          stalled=alerting.stalled, on_problem=log.put, tls=tls)
    except OSError as exc:
        fail(f"{host}:{port}: {exc.strerror or exc}")
    warn(f"serving audit webhook on https://{host}:{srv.server_address[1]}")
    if not client_ca:
        warn("audit serve: --insecure-no-client-auth: any client that reaches the port can feed events")

    # Last resort: whatever else hangs, the process is gone shortly after the drain deadline.
    serve_until_terminated(srv, hard_exit_after=shutdown_timeout + 5.0)
    rs = srv.read_stats
    for e in rs.errors:
        log.put(str(e).removeprefix("kubeward: "))
    for line in alerting.close(shutdown_timeout):
        log.put(line)
    extra = "".join(f", {n} {what}" for n, what in (
        (rs.bad_lines, "unusable events"), (srv.rejected_connections, "connections over --max-connections"),
        (srv.busy_rejections, "batches answered 429 (busy)")) if n)
    log.put(f"{analyzer.stats.events} events, {analyzer.stats.alerts} alerts" + extra)
    log.close(2.0)


# --- audit2rbac --------------------------------------------------------------------------------------------------

@click.command("audit2rbac")
@path_arguments("paths", click.Path(allow_dash=True), what="LOG")
@click.option("--user", help="The user whose requests to allow.")
@click.option("--serviceaccount", metavar="NS:NAME", help="The service account whose requests to allow.")
@click.option("--include-denied", is_flag=True,
              help="Also grant requests that were denied (403), e.g. to learn what an app needs.")
@click.option("--include-discovery", is_flag=True,
              help="Also grant discovery GETs (/api, /apis/…, /version), which every authenticated user has.")
@click.option("--name", "role_name", help="Name of the generated roles and bindings (default audit2rbac:<user>).")
@format_option(("yaml", "json"), "audit2rbac")
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
def audit2rbac(paths: tuple[str, ...], user: str | None, serviceaccount: str | None, include_denied: bool,
               include_discovery: bool, role_name: str | None, fmt: str, output_file: str | None) -> None:
    """Minimal Roles/ClusterRoles and bindings that allow exactly the requests a user was observed making.

    Namespaced requests become a Role and RoleBinding per namespace, cluster-scope and non-resource requests a
    ClusterRole and ClusterRoleBinding; resourceNames are kept when every request named its object.
    """
    import yaml

    from ..audit import audit2rbac as a2r
    from ..audit.reader import ReadStats, iter_events

    if bool(user) == bool(serviceaccount):
        fail("give exactly one of --user U or --serviceaccount NS:NAME")
    try:  # the one subject parser (identity.parse_subject); NS:NAME stays the --serviceaccount form
        ref = parse_subject(serviceaccount or user or "")
        if serviceaccount and not ref.kind and serviceaccount.count(":") == 1:
            ref = parse_subject("ServiceAccount:" + serviceaccount)
    except SubjectError as exc:
        fail(f"--{'serviceaccount' if serviceaccount else 'user'}: {exc}")
    if serviceaccount and ref.kind != "ServiceAccount":
        fail(f"--serviceaccount: expected NS:NAME, got {serviceaccount!r}")
    if ref.kind == "Group":
        fail(f"--user {user}: a group makes no requests; name a user")
    user = ref.username or ref.name
    if not paths:
        fail("nothing to read: give audit log files or '-' for stdin")
    rs = ReadStats()
    observed = a2r.collect(iter_events(paths, rs), user, include_denied, include_discovery)
    for e in rs.errors:
        click.echo(str(e), err=True)
    if rs.events == 0:
        fail("no audit events read")
    if not observed:
        fail(f"{user}: no {'' if include_denied else 'allowed '}requests by this user in {rs.events} events")
    docs = a2r.generate(observed, user, role_name)
    missing = [o for o in observed if not a2r.covered(docs, o)]
    if missing:  # a bug, never a user error: say so loudly rather than emit a policy that does not work
        fail(f"internal check failed: {len(missing)} observed requests not covered", EXIT_FINDINGS)
    if fmt == "json":
        text = document({"apiVersion": "v1", "kind": "List", "items": docs}, "json")
    else:
        text = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)
    warn(f"{user}: {len(observed)} distinct requests -> {len(docs)} objects")
    emit(text, output_file)
