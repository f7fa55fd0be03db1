"""`kubeward scan`, `kubeward demo` and `kubeward controls`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from ..controls.registry import SelectionError
from ..controls.settings import NEWEST_MINOR, ScanSettings, SettingsError, parse_k8s_version
from ..exceptions import ExceptionsError
from ..findings import Severity
from ..formats import FIRST, FORMATS
from ..gcpause import gc_paused
from ..scan import InputsError, ScanOptions, ScanResult, exit_code, parse_fail_on, render, scan_for_output
from . import common
from .common import (
    DEMO_DIR,
    all_namespaces_option,
    color_wanted,
    emit,
    fail,
    fail_on_type,
    findings_summary,
    input_namespace_option,
    input_options,
    load_snapshot,
    one_line,
    output_options,
    parse_size,
    print_errors,
    render_options,
    selection_flags,
    user_errors,
    warn,
    wrote,
)
from .live import cluster_options, load_cluster_cli

if TYPE_CHECKING:
    from ..snapshot import Snapshot
    from ..sources.render import RenderOptions

# What `kubeward demo` suggests next; a test runs each one on the demo.
DEMO_NEXT = (
    ("kubeward demo --details", "every finding, with its fix"),
    ("kubeward scan --demo -o html --output report.html", "a self-contained HTML report"),
    ("kubeward rbac risks --demo", "who holds dangerous permissions, and how"),
    ("kubeward netpol reach --demo", "which pods can reach which"),
    ("kubeward pss check --level restricted --demo", "what Pod Security admission would reject"),
)


def _csv(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def scan_options(f: Any) -> Any:
    opts = [
        *selection_flags(),  # the same flags on every judging command (node, pki, encryption, etcd, audit policy)
        click.option("--exclude-namespaces", multiple=True, help="Ignore objects in these namespaces."),
        click.option("--exceptions", "exceptions_file", type=click.Path(dir_okay=False),
                     help="Exceptions file (default: ./.kubeward.yaml when present)."),
        click.option("--fail-on", type=fail_on_type(), default="high", show_default=True,
                     help="Exit 1 when a finding at or above this severity remains (none: report only, exit 0)."),
        click.option("--k8s-version", default=f"1.{NEWEST_MINOR}", show_default=True,
                     help="Target Kubernetes version: removed/deprecated APIs (KW-A001, KW-A002) and the bootstrap "
                     "RBAC policy of the RBAC controls (as rbac --k8s-version)."),
        click.option("--allowed-registries", multiple=True,
                     help="Registries images may come from (comma-separate or repeat; e.g. registry.example.com, "
                     "docker.io/library); turns on KW-W061."),
        click.option("--allow-input-errors", is_flag=True,
                     help="Report unreadable manifests but let the exit code reflect only the findings."),
        click.option("-v", "--verbose", is_flag=True,
                     help="Name the skipped files (YAML that is no Kubernetes object: Helm values, CI files...)."),
        click.option("--details", is_flag=True,
                     help="Table: every finding of every control, fixes and the suppressed list (default: the first "
                     f"{FIRST} findings of each control)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return output_options(FORMATS)(f)


@click.command()
@input_options
@input_namespace_option(live=True)
@all_namespaces_option("input_namespace", expose=True)
@render_options
@cluster_options
@scan_options
@user_errors(SelectionError, ExceptionsError, SettingsError, InputsError)
def scan(paths: tuple[str, ...], max_file_size: str, live: bool, context: str | None,
         kubeconfig: str | None, input_namespace: str | None, all_namespaces: bool, render_opts: RenderOptions,
         **opts: Any) -> None:
    """Scan manifests (files, folders, '-' for stdin) and report findings.

    A folder with a Chart.yaml is rendered with `helm template`, one with a kustomization with `kustomize build`.

    \b
    Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it; 2 usage or input errors
    (bad flags, a manifest that cannot be read unless --allow-input-errors, or nothing at all scanned).
    YAML that is no Kubernetes object (Helm values, CI workflows, kustomize configs) is counted as skipped.

    \b
    --cluster reads every namespace (-A, the default). --cluster -n NS reads,
    as kubectl get -n NS, the namespaced objects of NS only, plus the Namespace
    and the cluster-scoped objects the cross-object controls need (ClusterRoles,
    ClusterRoleBindings, Nodes, admin network policies). It reports on NS's own
    objects, the Namespace, the ClusterRoles a RoleBinding in NS grants and the
    ClusterRoleBindings naming a ServiceAccount of NS (or their group); other
    cluster-scoped findings belong to the -A scan. What may not be read (403)
    is not assessed, never passed; a namespace that does not exist is an error.
    """
    if all_namespaces and not live:
        fail("-A/--all-namespaces reads every namespace of a live cluster: give it with --cluster")
    if live:
        if paths:
            fail("--cluster reads a live cluster: give no paths and no --demo with it")
        if render_opts.values or render_opts.set_values or render_opts.release_name:
            fail("--values, --set and --release-name render Helm charts: not with --cluster")
        _scan((), max_file_size, live=(kubeconfig, context, input_namespace), **opts)
        return
    if not paths:
        fail("nothing to scan: give files, folders or '-' (or --demo)")
    _scan(paths, max_file_size, namespace=input_namespace, render_opts=render_opts,
          demo_files=str(DEMO_DIR) in paths, **opts)


@click.command()
@click.option("--path", "show_path", is_flag=True, help="Print the folder the demo manifests are in, and exit.")
@scan_options
@user_errors(SelectionError, ExceptionsError, SettingsError)
def demo(show_path: bool, **opts: Any) -> None:
    """Scan the bundled, deliberately insecure demo cluster (as `scan --demo`, in a shorter view: the critical
    controls with a finding each, the high ones by name, the rest counted; `--details` for everything).

    \b
    kubeward demo
    kubeward demo --details
    kubeward demo -o json
    """
    if show_path:
        click.echo(str(DEMO_DIR))
        return
    _scan((str(DEMO_DIR),), "16M", demo_files=True, tour=True, **opts)


def _scan(
    paths: tuple[str, ...],
    max_file_size: str,
    *,
    frameworks: tuple[str, ...],
    severity_threshold: str,
    include_controls: tuple[str, ...],
    exclude_controls: tuple[str, ...],
    exclude_namespaces: tuple[str, ...],
    exceptions_file: str | None,
    fail_on: str,
    fmt: str,
    output_file: str | None,
    allow_input_errors: bool = False,
    verbose: bool = False,
    k8s_version: str = f"1.{NEWEST_MINOR}",
    allowed_registries: tuple[str, ...] = (),
    live: tuple[str | None, str | None, str | None] | None = None,
    namespace: str | None = None,
    render_opts: RenderOptions | None = None,
    details: bool = False,
    demo_files: bool = False,
    tour: bool = False,
) -> None:
    """The flags as ScanOptions, the pipeline (kubeward/scan.py), then printing and the exit code."""
    common.one_burst()
    options = ScanOptions(
        frameworks=_csv(frameworks) or ("all",),
        min_severity=Severity.parse(severity_threshold),
        include_controls=_csv(include_controls),
        exclude_controls=_csv(exclude_controls),
        exclude_namespaces=_csv(exclude_namespaces),
        exceptions_file=exceptions_file,
        k8s_version=k8s_version,
        allowed_registries=_csv(allowed_registries),
        max_file_bytes=parse_size(max_file_size),
        namespace=namespace,
        render=render_opts,
    )
    # The RBAC controls judge with the bootstrap policy of --k8s-version when kubeward ships it; else it says so.
    for note in ScanSettings(parse_k8s_version(k8s_version)).notes():
        warn(note)

    def load_files(paths: Sequence[str], options: ScanOptions) -> Snapshot:
        with gc_paused():  # loading makes ~10 objects per manifest line and no garbage cycles worth a collection
            if live is not None:
                return load_cluster_cli(live[0], live[1], namespace=live[2])
            return load_snapshot(paths, max_file_size, namespace=options.namespace, render_opts=options.render)

    def loaded(snapshot: Snapshot) -> None:
        print_errors(snapshot.errors)
        if verbose:
            _print_skipped(snapshot.skipped)

    result = scan_for_output(paths, options, fmt, load_files=load_files, loaded=loaded)
    if not result.input_errors_shown:  # the two-process runner: its errors come with its result
        print_errors(result.errors)
        if verbose:
            _print_skipped(result.skipped)
    _exception_lines(result.expired, result.notes)
    if fmt == "json":
        with gc_paused():
            _emit_bytes(result.json_pieces(), output_file, lambda: _summary(result))
    else:
        assert result.report is not None
        if fmt == "table":
            view = _table_view(details, demo_files, tour)
            emit(render(result.report, fmt, color=color_wanted(output_file), **view), output_file, result.report)
            if tour and not (output_file and output_file != "-"):
                click.echo(_next_commands())
        else:
            emit(render(result.report, fmt), output_file, result.report)
    sys.exit(exit_code(result, parse_fail_on(fail_on), allow_input_errors=allow_input_errors))


def _print_skipped(skipped: Iterable[Any]) -> None:
    for e in skipped:
        click.echo(f"kubeward: {one_line(e.file)}: skipped, {one_line(e.message)}", err=True)


def _table_view(details: bool, demo_files: bool, tour: bool) -> dict[str, Any]:
    """The table's options: everything with --details; the demo's files are shown relative to its folder (a pip
    install puts it far from any working directory); the demo itself shows the most severe controls first."""
    view: dict[str, Any] = {"base": str(DEMO_DIR)} if demo_files else {}
    if details:
        return view
    view.update(first=FIRST, hint="--details")
    if tour:
        view.update(first=1, findings_from=Severity.CRITICAL, list_from=Severity.HIGH, hint="kubeward demo --details")
    return view


def _next_commands() -> str:
    width = max(len(cmd) for cmd, _ in DEMO_NEXT)
    lines = ["Next, try:"] + [f"  {cmd.ljust(width)}  # {what}" for cmd, what in DEMO_NEXT]
    return "\n".join(lines) + "\n"


def _exception_lines(expired: list[str], notes: list[str]) -> None:
    for e in expired:
        warn(f"expired exception no longer applies: {e}")
    for n in notes:
        warn(f"exception note: {n}")


def _summary(result: ScanResult) -> str:
    """What the `wrote` line says of a scan, the same whichever runner produced it."""
    return findings_summary(*result.finding_counts(), len(result.errors), len(result.skipped))


def _emit_bytes(pieces: Iterable[bytes | memoryview], output_file: str | None, summary: Callable[[], str]) -> None:
    """Write an encoded report piece by piece as it comes: a 100 MB JSON document is never held as text and
    re-encoded, nor joined into one copy. `summary` (for the `wrote` line) is asked only when a file was written."""
    if output_file and output_file != "-":
        from ..safefile import AtomicWriter, SafeFileError

        try:  # atomic, checked, never through a symlink (as emit)
            with AtomicWriter(output_file, mode=None, replace=True, make_dirs=False) as fh:
                for piece in pieces:
                    fh.write(piece)
        except SafeFileError as exc:
            fail(str(exc))
        wrote(output_file, summary())
    else:
        stream = sys.stdout.buffer
        for piece in pieces:
            stream.write(piece)
        stream.flush()


@click.command("controls")
@click.argument("control_id", metavar="[ID]", required=False)
@click.option("--explain", "explain", metavar="ID", help="Print one control's full page (as the ID argument).")
@click.option("--framework", "frameworks", multiple=True, default=("all",), help="Filter by framework.")
@click.option("-o", "--format", "fmt", type=click.Choice(["table", "json", "yaml", "markdown"]), default="table")
@user_errors(SelectionError)
def controls_cmd(control_id: str | None, explain: str | None, frameworks: tuple[str, ...], fmt: str) -> None:
    """List the controls kubeward runs, with severity and framework mappings; with an ID, explain one.

    \b
    Scan controls first, then the checks of node check, pki check, encryption check, etcd probe and audit
    policy check: every id an exceptions file or kubeward.io/ignore may name; last, the retired ids
    (aliases) with the controls now reporting their problem.
    `kubeward controls KW-W001` (or --explain KW-W001) prints that control's page: id, title, severity,
    frameworks, aliases, what it checks and why with its upstream reference, and the remediation; a
    retired id prints the pages of the controls now reporting its problem.
    """
    from ..controls.catalog import render_catalog, render_page
    from ..controls.registry import aliases

    if control_id and explain and control_id != explain:
        raise SelectionError(f"give one control id to explain, not {control_id} and {explain}")
    wanted = control_id or explain
    if wanted:
        if frameworks != ("all",):
            raise SelectionError("--framework filters the list; it does not apply to one control's page")
        from .rbac import terminal_width

        click.echo(render_page(wanted, fmt, aliases(), width=min(100, terminal_width())), nl=False)
        return
    click.echo(render_catalog(catalog_metas(_csv(frameworks) or ("all",)), fmt, aliases()), nl=False)


def catalog_metas(frameworks: tuple[str, ...] = ("all",)) -> list[Any]:
    """What `kubeward controls` lists (controls/catalog.py)."""
    from ..controls.catalog import catalog_metas as metas

    return metas(frameworks)
