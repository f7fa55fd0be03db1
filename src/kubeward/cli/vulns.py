"""`kubeward vulns [PATHS | --cluster] [--version V]`: known Kubernetes CVEs affecting the versions found."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson

from ..findings import InputError, NotAssessed, Report
from ..formats import FORMATS, render
from ..k8sversion import VersionError
from ..snapshot import Snapshot
from ..vulns.components import Found
from ..vulns.images import ImageReport
from ..vulns.osv import OSVError
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    apply_exceptions,
    emit,
    exceptions_option,
    exit_code,
    fail,
    fail_on_type,
    load_snapshot,
    one_line,
    output_options,
    parse_fail_on,
    path_arguments,
    print_errors,
    user_errors,
    warn,
)
from .live import cluster_options, load_cluster_cli

MAX_REPORT_BYTES = 256 << 20


def _version_inputs(release_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The inputs, output and gating options vulns and versions share (one list, so the two cannot drift)."""
    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed((
            path_arguments("paths", click.Path(), what="PATH",
                           help="Manifests or dumps (files, folders, '-'); the same as PATH (repeatable)."),
            click.option("--version", "--k8s-version", "release", metavar="VERSION", help=release_help),
            cluster_options,
            click.option("--max-file-size", default="16M", show_default=True, metavar="SIZE",
                         help="Refuse input files larger than this."),
            output_options(FORMATS),
            click.option("--fail-on", type=fail_on_type(), default="high", show_default=True,
                         help="Exit 1 when a finding at or above this severity remains (none: report only)."),
            exceptions_option,
        )):
            f = opt(f)
        return f
    return wrap


class _WithUpdate(click.Command):
    """`vulns` judges PATHS; `vulns update …` is its own command (a file named update is `./update`)."""

    @property
    def subcommands(self) -> dict[str, click.Command]:
        return {"update": update_cmd}

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        if args and args[0] == "update":
            if update_cmd.epilog is None:  # the Examples: block and help formatter every command gets
                from .main import _finish

                _finish(update_cmd, "vulns update")
            return update_cmd.make_context("update", args[1:], parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text("Refresh the data: kubeward vulns update [--from URL|DIR|FILE] (see its --help).")
        super().format_epilog(ctx, formatter)


@click.command("vulns", cls=_WithUpdate)
@_version_inputs("A Kubernetes release to judge (1.30.2; 1.30 is read as 1.30.0), for all of its components.")
@click.option("--images", multiple=True, metavar="REPORT",
              help="Image vulnerability reports (Trivy or Grype JSON, CycloneDX JSON with VEX) to map to the workloads "
                   "in PATHS or --cluster (by digest, else by normalised reference; init and ephemeral containers "
                   "too); a VEX not_affected/resolved/false_positive suppresses, with its justification.")
@click.option("--scan-images", is_flag=True,
              help="Scan each distinct image the workloads run with trivy (else grype) from PATH, cached for a "
                   "day in the user cache folder; without either, one line says which to install.")
@click.option("--data", "data_path", metavar="PATH",
              help="Vulnerability data instead of the shipped snapshot: a folder of OSV records (a checkout of "
                   "kubernetes-sigs/cve-feed-osv) or a feed document like the shipped one (.json or .json.gz).")
@click.option("--min-risk", type=click.IntRange(0, 10), default=0, show_default=True, metavar="0-10",
              help="Leave out CVE findings whose risk where they run (severity, exposure, privilege, service account "
                   "power, fix; see `kubeward docs vulns`) is below this score; the count left out is said.")
@click.option("--today", metavar="YYYY-MM-DD", hidden=True, help="The date the data's age is measured at.")
@user_errors(VersionError, OSVError)
def vulns(paths: tuple[str, ...], release: str | None, live: bool,
          context: str | None, kubeconfig: str | None, max_file_size: str, fmt: str, output_file: str | None,
          fail_on: str, exceptions_file: str | None, images: tuple[str, ...], scan_images: bool,
          data_path: str | None, min_risk: int, today: str | None) -> None:
    """Known Kubernetes CVEs (the Kubernetes CVE feed in OSV format, shipped dated) affecting the versions of the
    control plane, kubelets and add-ons: from --version, from static-pod and add-on images in manifests, from
    Nodes' status.nodeInfo in dumps, or from a cluster's /version, Nodes and pods with --cluster.

    Every CVE finding is ranked by what it means where it runs: reachable from outside (Services, Ingresses,
    host network and ports, NetworkPolicy), privileged or host access (Pod Security facts), the power of its
    service account (RBAC) and whether a fix exists; --min-risk leaves out the lower ones.

    Every report names the data and its date (KW-V000); data older than 90 days is a finding (KW-V001)."""
    from ..vulns.report import add_images, build, rank_order
    from ..vulns.risk import RiskContext
    from ..vulns.update import UpdateError, current_data

    try:
        feed, official = current_data(data_path)
    except UpdateError as exc:
        fail(str(exc))
    found, not_assessed, errors, snap = gather(paths, release, live, context, kubeconfig,
                                               max_file_size, ranked=True)
    resources = list(snap.resources) if snap is not None else []
    rank = RiskContext(snap if snap is not None else Snapshot([]), _unread_kinds(not_assessed))
    reports = image_reports(images, errors)
    if scan_images:
        not_assessed += _scan_images(resources, reports, errors)
    when = _today(today)
    warn(f"vulnerability data: {feed.describe()}")
    # The feed's CVE ids are control ids too: an accepted risk is `controls: [CVE-2024-5321]`.
    if official is not None:
        warn(f"official CVE list: {official.describe()}")
    report = build(feed, found, not_assessed, errors, when, rank, official)
    if reports:
        for name in add_images(report, resources, reports, rank):
            warn(f"--images: no workload in the input runs {name}")
    left_out = rank_order(report, min_risk)
    if left_out:
        warn(f"--min-risk {min_risk}: {left_out} finding(s) with a lower risk left out")
    ids = frozenset(r.id for r in feed.records) | {v.id for r in reports for v in r.vulns}
    report = apply_exceptions(report, exceptions_file, ids)
    _finish(report, bool(found) or bool(reports), bool(errors), fmt, output_file, fail_on)


@click.command("update")
@click.option("--from", "source", metavar="URL|DIR|FILE",
              help="Where to read the data: the official Kubernetes CVE feed (the default, "
                   "https://kubernetes.io/docs/reference/issues-security/official-cve-feed/index.json), a URL or "
                   "file of OSV records (a zip of kubernetes-sigs/cve-feed-osv, a feed document), or a folder of "
                   "OSV records.")
@click.option("--cache-dir", metavar="DIR", hidden=True, help="Store here instead of the user cache folder.")
def update_cmd(source: str | None, cache_dir: str | None) -> None:
    """Refresh the vulnerability data kubeward judges with, into the user cache folder
    (~/.cache/kubeward/vulndata): the official CVE feed's list of CVEs, or OSV records with version ranges.

    The download is verified (every record parsed, ids unique, required fields present, not empty) and written
    atomically; on any failure the old data is kept and the exit code is 2. `vulns` then names the data it used
    and its date in every report; the shipped snapshot stays the fallback."""
    from ..safefile import SafeFileError
    from ..vulns.update import Official, UpdateError, load_source, store

    folder = Path(cache_dir) if cache_dir else None
    try:
        data = load_source(source)
        path = store(data, folder)
    except (UpdateError, SafeFileError, OSError) as exc:
        fail(f"vulns update: {exc}; the old data is kept")
    what = data.describe() if isinstance(data, Official) else (
        f"{len(data.records)} OSV records from {data.source}, dated {data.date.isoformat()}")
    warn(f"wrote {path} ({what})")


def _today(today: str | None) -> dt.date:
    try:
        return dt.date.fromisoformat(today) if today else dt.date.today()
    except ValueError:
        fail(f"--today {today!r}: expected YYYY-MM-DD")


def _scan_images(resources: list[Any], reports: list[Any], errors: list[InputError]) -> list[NotAssessed]:
    """Run the scanner on PATH per distinct image (reports and errors appended); what could not be assessed."""
    from ..vulns.images import container_images
    from ..vulns.scanner import INSTALL, scan, scanner
    from ..vulns.update import cache_dir

    running = container_images(resources)
    if not running:
        return []
    tool = scanner()
    if tool is None:
        warn(INSTALL)
        return [NotAssessed("image vulnerabilities (--scan-images)", "neither trivy nor grype is on PATH")]
    folder = cache_dir().parent / "images"
    warn(f"--scan-images: {tool[0]} on {len(running)} image(s) (reports cached in {folder})")
    got, errs = scan(running, folder, tool)
    print_errors(errs)
    reports += got
    errors += errs
    return []


def _unread_kinds(not_assessed: list[NotAssessed]) -> frozenset[str]:
    """The kinds a live cluster did not let be read (their factors are then unknown, and counted)."""
    names = {t.name: t.kind for t in _live_types(ranked=True)}
    return frozenset(names[n.what] for n in not_assessed if n.what in names)


def image_reports(paths: tuple[str, ...], errors: list[InputError], say: bool = True) -> list[ImageReport]:
    """Each --images file parsed (Trivy or Grype JSON); a bad one is an input error (said on stderr unless
    `say` is false) and the rest goes on."""
    from ..vulns.images import ReportError, parse_report

    out = []
    for path in paths:
        try:
            p = Path(path)
            if p.stat().st_size > MAX_REPORT_BYTES:
                raise ReportError(f"larger than {MAX_REPORT_BYTES >> 20} MiB")
            out.append(parse_report(orjson.loads(p.read_bytes()), path))
        except (OSError, ValueError) as exc:  # ReportError and JSON errors are ValueErrors
            err = InputError(path, one_line(str(exc)))
            if say:
                print_errors([err])
            errors.append(err)
    return out


def _finish(report: Report, found: bool, errors: bool, fmt: str, output_file: str | None, fail_on: str) -> None:
    emit(render(report, fmt, color=sys.stdout.isatty() and not output_file), output_file)
    if not found:
        warn("no Kubernetes component versions found in the input")
        raise SystemExit(EXIT_USAGE)
    code = exit_code(report, parse_fail_on(fail_on), scanned=True)
    raise SystemExit(EXIT_USAGE if errors and code == EXIT_OK else code)


def gather(files: tuple[str, ...], release: str | None, live: bool, context: str | None, kubeconfig: str | None,
           max_file_size: str, ranked: bool = False
           ) -> tuple[list[Found], list[NotAssessed], list[InputError], Snapshot | None]:
    """The component versions of --version, PATHS or --cluster (said on stderr when one cannot be read), and the
    snapshot they came from (None for --version alone). `ranked`: a live cluster is also read for what the risk
    ranking needs (Services, Ingresses, NetworkPolicies, Namespaces, RBAC)."""
    from ..vulns.components import from_release, from_resources, release_version

    if live and files:
        fail("give PATHS or --cluster, not both")
    if not (live or files or release):
        fail("nothing to judge: give PATHS, --cluster or --version VERSION")
    found: list[Found] = []
    not_assessed: list[NotAssessed] = []
    errors: list[InputError] = []
    snap: Snapshot | None = None
    if release:
        v, note = release_version(release)
        found += from_release(release, v, "--version", note)
    if files or live:
        if live:
            cluster = load_cluster_cli(kubeconfig, context, types=_live_types(ranked))
            found += _apiserver_version(kubeconfig, context, cluster.context)
            not_assessed += cluster.not_assessed
            snap = cluster
        else:
            snap = load_snapshot(files, max_file_size)
            print_errors(snap.errors)
            errors = list(snap.errors)
        for item in from_resources(snap.resources):
            (found if isinstance(item, Found) else not_assessed).append(item)  # type: ignore[arg-type]
    for n in not_assessed:
        warn(f"{n.what}: not assessed ({n.reason})")
    return found, not_assessed, errors, snap


def _live_types(ranked: bool = False) -> tuple[Any, ...]:
    from ..sources.cluster import NETPOL_TYPES, RBAC_TYPES, ResourceType

    # Pods, not their controllers' templates: a pod is what runs (an old ReplicaSet's pods keep the old image
    # during a rollout), and static pods show as mirror pods.
    base = (ResourceType("v1", "nodes", "Node"), ResourceType("v1", "pods", "Pod"))
    if not ranked:
        return base
    return (*base, *(t for t in NETPOL_TYPES if t.kind != "Pod"),
            ResourceType("networking.k8s.io/v1", "ingresses", "Ingress"),
            ResourceType("v1", "serviceaccounts", "ServiceAccount"), *RBAC_TYPES)


def _apiserver_version(kubeconfig: str | None, context: str | None, name: str) -> list[Any]:
    """GET /version: the apiserver's gitVersion (k8s.io/apimachinery/pkg/version Info)."""
    from ..sources.cluster import Client, ClusterError
    from ..vulns.components import from_version_info

    try:
        status, info = Client(kubeconfig, context).json("GET", "/version")
    except ClusterError as exc:
        fail(str(exc))
    found, problem = from_version_info(status, info, name or "cluster")
    if problem:
        warn(f"cluster {name}: {problem}")
    return found


@click.command("versions")
@_version_inputs("A Kubernetes release for all of its components (1.30.2; 1.30 is read as 1.30.0).")
@click.option("--today", metavar="YYYY-MM-DD", hidden=True, help="The date support windows are judged at.")
@user_errors(VersionError)
def versions(paths: tuple[str, ...], release: str | None, live: bool,
             context: str | None, kubeconfig: str | None, max_file_size: str, fmt: str, output_file: str | None,
             fail_on: str, exceptions_file: str | None, today: str | None) -> None:
    """The versions of kube-apiserver (/version, static pods), the kubelets (Nodes' status.nodeInfo), kube-proxy,
    the controllers and add-ons found, one info finding each (KW-V100), the version skew policy's rules
    between them as findings (KW-V010..V012), and whether each Kubernetes minor is supported, in maintenance mode
    or end of life, with its dates (KW-V020..V023, from a dated release table: KW-V024, KW-V025 when old)."""
    from ..vulns.support import shipped
    from ..vulns.versions import build_versions

    when = _today(today)
    found, not_assessed, errors, _snap = gather(paths, release, live, context, kubeconfig, max_file_size)
    warn(f"release table: {shipped().describe()}")
    report = apply_exceptions(build_versions(found, not_assessed, errors, when), exceptions_file)
    _finish(report, bool(found), bool(errors), fmt, output_file, fail_on)
