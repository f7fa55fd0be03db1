"""The scan pipeline as a library: select → load → snapshot → run → report → render → exit code.

`kubeward scan` is a thin shell over this module (it parses flags into `ScanOptions` and prints); a test or an
embedding program calls the same functions without click:

    from kubeward.scan import ScanOptions, scan, exit_code, render
    report = scan(["deploy/"], ScanOptions(frameworks=("nsa",)))
    print(render(report, "sarif")); code = exit_code(report, "high")

`scan` always runs in this process and returns a `Report`. `scan_for_output` is what the CLI calls: the same
pipeline, with the choice of a runner. For `-o json` over many files the two-process runner (scan_parallel)
loads and judges half of the files in a forked child and hands back rendered JSON, byte for byte what the serial
runner writes; everything else runs serially. Both runners end in one `ScanResult`, so the exit code and the
lines printed beside the report come from one place whichever ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .controls.settings import NEWEST_MINOR
from .findings import InputError, Report, Severity
from .records import field, record, replace
from .snapshot import Snapshot

if TYPE_CHECKING:
    from .controls.registry import Control
    from .exceptions import Exceptions
    from .sources.render import RenderOptions

DEFAULT_MAX_FILE_BYTES = 16 << 20  # `--max-file-size 16M`
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
NEVER_FAIL = Severity.CRITICAL + 1  # `--fail-on none`: above every severity, so nothing fails the run


class InputsError(ValueError):
    """The inputs cannot be read as asked (Helm flags with no chart among them): a usage error, exit 2."""


@record(frozen=True)
class ScanOptions:
    """Everything `kubeward scan` takes besides the inputs and the output format (its flags, parsed)."""

    frameworks: tuple[str, ...] = ("all",)
    min_severity: Severity = Severity.INFO
    include_controls: tuple[str, ...] = ()
    exclude_controls: tuple[str, ...] = ()
    exclude_namespaces: tuple[str, ...] = ()
    # None: ./.kubeward.yaml when present (as the CLI); `exceptions` (already loaded) wins over both.
    exceptions_file: str | None = None
    exceptions: Exceptions | None = None
    k8s_version: str = f"1.{NEWEST_MINOR}"
    allowed_registries: tuple[str, ...] = ()
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    namespace: str | None = None  # kubectl's `-n` for file inputs (see load)
    render: RenderOptions | None = None  # helm flags for the charts among the inputs
    workers: int | None = None  # scan_for_output: 1 forces one process; None decides (KUBEWARD_WORKERS, CPUs)


@record
class Plan:
    """What a scan runs, resolved once from the options: the chosen controls and the exceptions."""

    controls: list[Control]
    exceptions: Exceptions


def plan(options: ScanOptions) -> Plan:
    """Choose the controls and read the exceptions (SelectionError, ExceptionsError: bad options)."""
    from .controls.registry import Selection, all_controls, every_control
    from .exceptions import load_exceptions

    selection = Selection(frameworks=options.frameworks or ("all",), min_severity=options.min_severity,
                          include=options.include_controls, exclude=options.exclude_controls)
    chosen = selection.choose(all_controls(), every_control)  # a node check's id is named as one
    exceptions = options.exceptions if options.exceptions is not None else load_exceptions(options.exceptions_file)
    return Plan(chosen, exceptions)


def load(paths: Iterable[str], *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, namespace: str | None = None,
         enforce_namespace: bool = True, render_opts: RenderOptions | None = None,
         on_file: Callable[[], None] | None = None) -> Snapshot:
    """Read files, folders and '-' into a Snapshot; unreadable inputs become its input errors.

    `namespace` is kubectl's `-n` for files (cli-runtime resource builder): namespaced objects without one get
    it; with `enforce_namespace` an object written in another namespace is one input error and left out, as
    `kubectl apply -n` refuses it. Without `namespace`, objects without one are in `default` (Resource.namespace).
    Helm charts and kustomizations among the folders are rendered (sources/render.py) with `render_opts` and
    `namespace` as helm's --namespace; their objects then take the same -n rules as files.
    """
    from .resource import set_input_namespace
    from .sources.files import load_paths
    from .sources.render import RenderOptions, plan_inputs, render_inputs

    files, renders = plan_inputs(paths)
    if render_opts is not None and (render_opts.values or render_opts.set_values or render_opts.release_name) and \
            not any(r.kind == "helm" for r in renders):
        raise InputsError("--values, --set and --release-name are for Helm charts, and no folder with a Chart.yaml "
                          "(or packaged chart .tgz) is among the inputs")
    result = load_paths((), max_file_bytes=max_file_bytes, files=files, on_file=on_file, objects_only=True)
    if renders:
        options = render_opts or RenderOptions()
        if namespace and not options.namespace:
            options = replace(options, namespace=namespace)
        render_inputs(renders, result, max_bytes=max_file_bytes, options=options)
    resources, errors = result.resources, list(result.errors)
    if namespace:
        resources, refused = set_input_namespace(resources, namespace, enforce=enforce_namespace)
        errors += [InputError(r.file or "<input>", f"line {r.line}: {msg}" if r.line else msg) for r, msg in refused]
    return Snapshot(resources, errors=errors, skipped=result.skipped)


def scan(source: Sequence[str] | Snapshot, options: ScanOptions | None = None) -> Report:
    """The whole pipeline in this process: paths (or a snapshot already built) → Report.

    Raises SelectionError, ExceptionsError, SettingsError or InputsError for bad options; unreadable inputs are
    the report's `errors`, never an exception.
    """
    options = options or ScanOptions()
    with _settings(options):
        chosen = plan(options)
        snapshot = source if isinstance(source, Snapshot) else _load_quietly(source, options)
        return judge(snapshot, chosen, options)


def judge(snapshot: Snapshot, chosen: Plan, options: ScanOptions) -> Report:
    """Run the chosen controls over a snapshot (with the scan settings already in force)."""
    from .controls.registry import run

    in_scope = getattr(snapshot, "in_scope", None)  # a cluster read in one namespace (sources/cluster.py)
    report = run(snapshot, chosen.controls, chosen.exceptions, exclude_namespaces=options.exclude_namespaces,
                 scope=in_scope() if in_scope is not None else None)
    report.coverage = getattr(snapshot, "coverage", None)
    report.skipped = list(snapshot.skipped)
    if any(f.control.id == "KW-P101" for f in report.findings):
        from .controls.paths import reported_paths

        report.attack_paths = reported_paths(snapshot, report)
    return report


def render(report: Report, fmt: str = "json", **view: Any) -> str:
    """The report in one of the formats (`kubeward.formats.FORMATS`); `view` holds a format's own options (the
    table's `color`, `first`, `base`, ...)."""
    from .formats import render as render_format

    return render_format(report, fmt, **view)


def parse_fail_on(text: str) -> int:
    """`--fail-on`: a severity label, or `none` (nothing fails the run)."""
    return NEVER_FAIL if text.strip().lower() == "none" else Severity.parse(text)


def exit_code(report: Report | ScanResult, fail_on: int | str = Severity.HIGH, *, scanned: bool | None = None,
              allow_input_errors: bool = False) -> int:
    """2 when nothing at all was read (`scanned`; default: no object) or, unless `allow_input_errors`, when an
    input could not be read; 1 when a finding at or above `fail_on` remains; else 0. The one exit-code rule of
    every judging command (cli/common.py delegates here, with input errors allowed: the scan's gate).

    The gate: whoever can add one unreadable file next to a bad one must not turn the exit code green.
    """
    threshold = parse_fail_on(fail_on) if isinstance(fail_on, str) else fail_on
    result = report if isinstance(report, ScanResult) else ScanResult.of(report)
    if not (result.objects > 0 if scanned is None else scanned):
        return EXIT_USAGE
    if result.errors and not allow_input_errors:
        return EXIT_USAGE
    return EXIT_FINDINGS if any(s >= threshold for s in result.failing) else EXIT_OK


@record
class ScanResult:
    """A finished scan as either runner leaves it: the report (serial runner) or its JSON already rendered
    (two-process runner), with what the exit code and the lines beside the report need."""

    objects: int
    errors: list[InputError]
    expired: list[str]
    notes: list[str]
    failing: frozenset[Severity]  # severities of the controls with findings left after the exceptions
    skipped: list[InputError] = field(default_factory=list)  # input documents that are no Kubernetes object
    report: Report | None = None
    rendered_json: list[bytes | memoryview] | None = None
    # (findings, per severity without info, suppressed) of a report already rendered; see finding_counts
    counts: tuple[int, dict[str, int], int] | None = None
    input_errors_shown: bool = field(default=False, repr=False)  # the CLI printed them before the run

    @classmethod
    def of(cls, report: Report) -> ScanResult:
        return cls(report.objects, report.errors, report.expired_exceptions, report.exception_notes,
                   frozenset(f.control.severity for f in report.findings), report.skipped, report=report)

    def finding_counts(self) -> tuple[int, dict[str, int], int]:
        """The findings, per severity (info left out) and suppressed: the report's, or the rendered report's."""
        if self.report is not None:
            return len(self.report.findings), self.report.by_severity(), len(self.report.suppressed)
        return self.counts or (0, {}, 0)

    def json_pieces(self) -> Iterator[bytes | memoryview]:
        """The `-o json` document in pieces to write one after the other (never joined into one copy)."""
        if self.rendered_json is not None:
            yield from self.rendered_json
            return
        from .formats.json import pieces

        assert self.report is not None
        yield from pieces(self.report)


def scan_for_output(paths: Sequence[str], options: ScanOptions, fmt: str, *,
                    load_files: Callable[[Sequence[str], ScanOptions], Snapshot] | None = None,
                    loaded: Callable[[Snapshot], None] | None = None) -> ScanResult:
    """The pipeline for a report to write in `fmt`, with the runner chosen here: the two-process runner for
    `-o json` over many plain files (no `-n`, no chart or kustomization), else the serial one.

    `load_files` replaces `load` for the serial runner (the CLI's progress bar); `loaded` sees the snapshot
    before the controls run (the CLI prints input errors then).
    """
    with _settings(options):
        chosen = plan(options)
        if fmt == "json" and not options.namespace:
            done = _two_processes(paths, options, chosen)
            if done is not None:
                return done
        snapshot = (load_files or _load_quietly)(paths, options)
        if loaded is not None:
            loaded(snapshot)
        result = ScanResult.of(judge(snapshot, chosen, options))
        result.input_errors_shown = loaded is not None
        return result


def _two_processes(paths: Sequence[str], options: ScanOptions, chosen: Plan) -> ScanResult | None:
    """The two-process runner when it applies (see scan_parallel), else None."""
    from .sources.render import plan_inputs

    if not paths:
        return None
    files, renders = plan_inputs(paths)
    helm_flags = options.render is not None and bool(
        options.render.values or options.render.set_values or options.render.release_name)
    if renders or helm_flags or len(files) < 2:  # charts and kustomizations render on the serial path (which
        return None  # refuses stray flags); one file is never split (and the runner is not even imported)
    from . import scan_parallel

    if scan_parallel.workers_wanted(len(files), options.workers) < 2:
        return None
    return scan_parallel.scan_json(files, options.max_file_bytes, chosen.controls, chosen.exceptions,
                                   options.exclude_namespaces)


def _load_quietly(paths: Sequence[str], options: ScanOptions) -> Snapshot:
    from .gcpause import gc_paused

    with gc_paused():  # loading makes ~10 objects per manifest line and no garbage cycles worth a collection
        return load(paths, max_file_bytes=options.max_file_bytes, namespace=options.namespace,
                    render_opts=options.render)


def settings(options: ScanOptions) -> Any:
    """The scan-wide settings of `options` in force for a `with` block (a long-running monitor keeps them)."""
    return _settings(options)


def _settings(options: ScanOptions) -> Any:
    from .controls.settings import ScanSettings, parse_allowed_registries, parse_k8s_version, using

    return using(ScanSettings(parse_k8s_version(options.k8s_version),
                              parse_allowed_registries(options.allowed_registries)))
