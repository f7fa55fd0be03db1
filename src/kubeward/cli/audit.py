"""`kubeward audit …` (policy generate|check, analyze, watch, serve) and `kubeward audit2rbac`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from ..findings import Severity
from .common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, emit, fail, severity_type, warn


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
              show_default=True, help="How much to log (see docs/audit.md for each rule and why).")
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
def policy_generate(profile: str, output_file: str | None) -> None:
    """Print an audit Policy for kube-apiserver --audit-policy-file, commented rule by rule."""
    from ..audit.policygen import generate

    emit(generate(profile), output_file)


@policy_group.command("check")
@click.argument("path", type=click.Path(allow_dash=True))
@click.option("-o", "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write the report to FILE.")
@click.option("--fail-on", type=severity_type(), default="high", show_default=True,
              help="Exit 1 when a finding at or above this severity remains.")
def policy_check(path: str, fmt: str, output_file: str | None, fail_on: str) -> None:
    """Lint an audit Policy: invalid fields, unreachable rules, secret bodies logged, exec not logged.

    \b
    Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it; 2 unreadable or invalid policy.
    """
    from ..audit.policycheck import check_file
    from ..formats import render

    report = check_file(path)
    for e in report.errors:
        click.echo(str(e), err=True)
    if report.objects == 0:
        sys.exit(EXIT_USAGE)
    emit(render(report, fmt), output_file)
    threshold = Severity.parse(fail_on)
    sys.exit(EXIT_FINDINGS if any(f.severity >= threshold for f in report.findings) else EXIT_OK)


# --- analyze -----------------------------------------------------------------------------------------------------

def detection_options(f: Any) -> Any:
    opts = [
        click.option("--rules", "rules_file", type=click.Path(dir_okay=False),
                     help="Custom detections (YAML field matchers, see docs/audit.md)."),
        click.option("--disable", multiple=True, help="Detection ids to skip (repeat or comma-separate)."),
        click.option("--burst-threshold", type=click.IntRange(min=0), default=10, show_default=True,
                     help="Forbidden/unauthenticated requests per user or source IP that make a burst (0: off)."),
        click.option("--burst-window", type=click.FloatRange(min=0.001), default=60.0, show_default=True,
                     help="Sliding window for bursts, in seconds."),
        click.option("--allowed-cidr", multiple=True,
                     help="Expected source networks; requests from elsewhere alert (repeatable)."),
        click.option("--allowed-user-agent", multiple=True,
                     help="Expected user agents (regex); others alert (repeatable)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _analyzer(rules_file: str | None, disable: tuple[str, ...], burst_threshold: int, burst_window: float,
              allowed_cidr: tuple[str, ...], allowed_user_agent: tuple[str, ...]) -> Any:
    import re

    from ..audit.analyzer import Analyzer, AnalyzerConfig
    from ..audit.detections import builtin
    from ..audit.rules import RulesError, load_rules

    try:
        custom = load_rules(rules_file) if rules_file else []
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
    config = AnalyzerConfig(burst_threshold, burst_window, cidrs, tuple(allowed_user_agent), _csv(disable))
    return Analyzer(builtin() + custom, config), config


@group.command("analyze")
@click.argument("paths", nargs=-1, type=click.Path(allow_dash=True))
@click.option("-o", "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write the report to FILE.")
@click.option("--fail-on", type=severity_type(), default="high", show_default=True,
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
    from ..audit.alerts import Alert
    from ..audit.reader import ReadStats, iter_events
    from .common import parse_size

    if not paths:
        fail("nothing to analyze: give audit log files or '-' for stdin")
    analyzer, config = _analyzer(**det)
    rs = ReadStats()
    alerts: list[Alert] = []
    stats = analyzer.stats
    if workers > 1:
        from ..audit.parallel import analyze_file_parallel

        for p in paths:
            if _parallel_ok(p):
                a, s = analyze_file_parallel(p, p, workers, config, det["rules_file"], rs)
                alerts.extend(a)
                stats.merge(s)
            else:
                for ev in iter_events([p], rs, max_document=parse_size(max_document_size)):
                    alerts.extend(analyzer.feed(ev))
    else:
        feed = analyzer.feed
        for ev in iter_events(paths, rs, max_document=parse_size(max_document_size)):
            r = feed(ev)
            if r:
                alerts.extend(r)
    for e in rs.errors:
        click.echo(str(e), err=True)
    if rs.bad_lines > len(rs.errors):
        warn(f"{rs.bad_lines - len(rs.errors)} more unusable lines not shown")
    if rs.events == 0:
        fail("no audit events read", EXIT_USAGE)
    if fmt == "json":
        doc = {"alerts": [a.to_json() for a in alerts], "stats": stats.to_json(),
               "errors": [e.to_json() for e in rs.errors]}
        if rs.bad_lines:
            doc["stats"]["badLines"] = rs.bad_lines
        text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        lines = [a.line() for a in alerts]
        by = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_rule.items())) or "none"
        lines.append(f"{stats.events} events, {stats.alerts} alerts ({by})")
        text = "\n".join(lines) + "\n"
    emit(text, output_file)
    threshold = Severity.parse(fail_on)
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
