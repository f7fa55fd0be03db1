"""Shared CLI plumbing: input loading, output options, one-line errors, exit codes (see DESIGN.md)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..findings import InputError, Report, Severity
from ..formats.paths import DEMO_DIR as _DEMO
from ..lazyre import lazy
from ..scan import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, NEVER_FAIL, InputsError, parse_fail_on
from ..scan import exit_code as _exit_code
from ..snapshot import Snapshot
from ..textsafe import printable

if TYPE_CHECKING:
    from ..sources.render import RenderOptions

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_USAGE", "NEVER_FAIL", "parse_fail_on"]
PROGRESS_MIN_FILES = 200



# True in the `kubeward` console process (set by cli.main.main), False when the commands run inside another
# program (tests, an embedding application): only then may a one-shot command change process-wide settings.
CONSOLE = False


def one_burst() -> None:
    """For a command that allocates in one burst, makes no garbage cycles worth collecting and ends with the
    process (scan, audit analyze): the collector's final pass at exit is skipped, and in the console process
    the collector stays off until then. Each collection would walk everything kept so far (about 0.2 s on
    4,500 manifests; ~30 ms over the alerts of a 300,000-event audit log)."""
    from ..gcpause import skip_final_collection

    skip_final_collection()
    if CONSOLE:
        import gc

        gc.disable()


NO_COLOR_META = "kubeward.no_color"  # ctx.meta key set by --no-color (shared by every context of one run)


def no_color_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--no-color`: the root group and every command carry it (cli.main adds it), so it works in any place."""
    return click.option("--no-color", is_flag=True, expose_value=False, is_eager=True, callback=_set_no_color,
                        help="No colour in the output (also when NO_COLOR is set).")(f)


def _set_no_color(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[NO_COLOR_META] = True


def color_wanted(output_file: str | None = None, *, stderr: bool = False) -> bool:
    """Whether a command colours what it prints: only on a terminal, never into a file, never with --no-color or
    a non-empty NO_COLOR (https://no-color.org). Every command asks here, so the groups agree."""
    if output_file and output_file != "-":
        return False
    if os.environ.get("NO_COLOR", ""):
        return False
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(NO_COLOR_META):
        return False
    stream = sys.stderr if stderr else sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def one_line(text: str) -> str:
    """File names and messages come from user input: control characters escaped, credentials redacted."""
    return printable(text)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One line, `kubeward: <file or object>: <reason>`, then exit (2 by default)."""
    click.echo(f"kubeward: {one_line(message)}", err=True)
    sys.exit(code)


def warn(message: str) -> None:
    click.echo(f"kubeward: {one_line(message)}", err=True)


def print_errors(errors: Iterable[InputError]) -> None:
    for e in errors:
        click.echo(one_line(str(e)), err=True)


def parse_size(text: str) -> int:
    """`16M`, `512K`, `1G` or bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in "KMG" else t
    try:
        return int(float(num) * mult)
    except ValueError:
        raise click.BadParameter(f"not a size: {text!r}") from None


def output_options(formats: Iterable[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    choices = list(formats)

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--output", "output_file", type=click.Path(dir_okay=False, writable=True),
                         help="Write the report to FILE instead of stdout.")(f)
        f = click.option("-o", "--format", "fmt", type=click.Choice(choices), default=choices[0],
                         show_default=True, help="Output format.")(f)
        return f

    return decorate


def format_option(supported: Iterable[str], what: str, *, default: str | None = None) -> Callable[..., Any]:
    """`-o/--format` on a command that answers a question rather than reports findings (rbac who-can, netpol
    reach, pss check, ...): every report format is a value it knows, so `-o junit` means the same everywhere;
    the ones its answer has no form in (`supported` says which it has) are refused with one line naming them
    (exit 2). `table` and `text` are one view: a command whose view is text takes `-o table` for it too."""
    have = tuple(supported)
    from ..formats import FORMATS, refuse

    choices = list(dict.fromkeys([*have, *FORMATS, *(("table",) if "text" in have else ())]))
    view = "text" if "text" in have else "table"

    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        if value in ("table", "text") and view in have:
            return view
        if value not in have:
            fail(str(refuse(value, have, what)))
        return value

    return click.option("-o", "--format", "fmt", type=click.Choice(choices), default=default or have[0],
                        show_default=True, callback=check,
                        help=f"Output format (this command answers in {', '.join(have)}).")


def answer_output_options(supported: Iterable[str], what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """format_option plus `--output FILE`, as output_options gives a judging command."""
    have = tuple(supported)

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--output", "output_file", type=click.Path(dir_okay=False, writable=True),
                         help="Write the report to FILE instead of stdout.")(f)
        return format_option(have, what)(f)

    return decorate


DEMO_DIR = Path(_DEMO)  # the bundled demo cluster (`kubeward demo --path`); reports show its files relative to it


def input_options(f: Callable[..., Any] | None = None, *, positional: bool = True) -> Any:
    """Inputs the same way in every group: positional paths (files, folders, '-'), kubectl's `-f/--filename` for
    the same (repeatable; path_arguments), `--demo` for the bundled demo cluster, and the size guard. The command
    receives them all as one `paths` tuple (positional first, then -f, then the demo folder). `positional=False`
    for commands whose positional arguments are something else (`rbac can-i VERB RESOURCE [NAME]`, as
    kubectl's): -f only."""

    def decorate(h: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(h)
        def with_demo(*args: Any, paths: tuple[str, ...] = (), demo: bool = False, recursive: bool = False,
                      **kwargs: Any) -> Any:
            return h(*args, paths=(*paths, *((str(DEMO_DIR),) if demo else ())), **kwargs)

        g: Callable[..., Any] = with_demo
        # kubectl reads a folder's subfolders only with -R; kubeward always walks them. The flag is taken, so a
        # kubectl habit (`-R -f dir/`) works instead of failing as an unknown option.
        g = click.option("-R", "--recursive", "recursive", is_flag=True,
                         help="Accepted as kubectl's -R; folders are always read with their subfolders.")(g)
        g = click.option("--demo", "demo", is_flag=True,
                         help="Read the bundled demo cluster (its folder: kubeward demo --path).")(g)
        g = click.option("--max-file-size", default="16M", show_default=True, metavar="SIZE",
                         help="Refuse input files larger than this (guards memory).")(g)
        return path_arguments(
            "paths", click.Path(allow_dash=True, path_type=str), what="PATH", positional=positional,
            help=("A file, folder or '-': the same as a positional PATH, as kubectl spells it (repeatable)."
                  if positional else "Manifests: a file, folder or '-' for stdin (repeatable)."))(g)

    return decorate(f) if f is not None else decorate


def path_arguments(name: str, type: click.Path, *, single: bool = False, what: str = "", positional: bool = True,
                   help: str = "") -> Callable[..., Any]:
    """Input paths as kubectl takes them, in every command: positional and `-f/--filename` (repeatable), merged
    into the one parameter `name` (positional first), checked alike by `type`. `single`: the command reads one
    input, so exactly one must be given; the command then receives it alone. `what` names the input in the help
    and the error (default: the parameter, upper-cased). `positional=False` for commands whose arguments are
    something else (`rbac can-i VERB RESOURCE [NAME]`, as kubectl's): -f only. `help` replaces -f's help."""
    label = what or name.upper()

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def merged(*args: Any, **kwargs: Any) -> Any:
            given = kwargs.pop(name, None) if positional else None
            if single:
                values = (*((given,) if given is not None else ()), *kwargs.pop("_filenames"))
                if len(values) != 1:
                    fail(f"give one {label} (as an argument or with -f), not {len(values)}")
                return f(*args, **{name: values[0]}, **kwargs)
            return f(*args, **{name: (*(given or ()), *kwargs.pop("_filenames"))}, **kwargs)

        g = click.option("-f", "--filename", "_filenames", multiple=True, metavar=label, type=type,
                         help=help or (f"The same as the {label} argument, as kubectl's -f"
                                       + (f" (one {label} in all)." if single else " (repeatable)."))
                         )(merged)
        if not positional:
            return g
        return click.argument(name, nargs=1 if single else -1, required=False, type=type,
                              metavar=f"[{label}]" if single else f"[{label}]...")(g)

    return decorate


def render_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """helm's own flags for the Helm charts among the inputs (sources/render.py); the value is one
    `render_opts` keyword (a RenderOptions)."""

    opts = [
        # -f is kubectl's --filename in every group (input_options); helm's values file keeps its long name.
        click.option("--values", "helm_values", multiple=True, metavar="FILE",
                     help="Helm charts: a values file, as `helm template --values` (repeatable; later files win)."),
        click.option("--set", "helm_set", multiple=True, metavar="K=V",
                     help="Helm charts: a value, as `helm template --set` (repeatable)."),
        click.option("--release-name", metavar="NAME", default=None,
                     help="Helm charts: the release name (default: helm's `release-name`)."),
        click.option("--render-timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
                     show_default=True, metavar="SECONDS",
                     help="Stop a helm or kustomize render that takes longer than this."),
    ]

    @functools.wraps(f)
    def wrapper(*args: Any, helm_values: tuple[str, ...], helm_set: tuple[str, ...], release_name: str | None,
                render_timeout: float, **kwargs: Any) -> Any:
        from ..sources.render import RenderOptions

        render = RenderOptions(values=helm_values, set_values=helm_set, release_name=release_name,
                               timeout=render_timeout)
        return f(*args, render_opts=render, **kwargs)

    g: Callable[..., Any] = wrapper
    for opt in reversed(opts):
        g = opt(g)
    return g


_DNS_LABEL = lazy(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def namespace_name(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A namespace name is an RFC 1123 label (apimachinery validation.ValidateNamespaceName)."""
    for v in value if isinstance(value, tuple) else (value,):
        if v and not _DNS_LABEL.fullmatch(v):
            raise click.BadParameter(f"{v!r} is not a namespace name (RFC 1123 label: a-z, 0-9, '-', at most 63)")
    return value


INPUT_NAMESPACE = "kubeward.input_namespace"  # ctx.meta key of a `-n` not passed as a parameter


def input_namespace_option(f: Callable[..., Any] | None = None, *, expose: bool = True, live: bool = False) -> Any:
    """`-n/--namespace NS` with kubectl's meaning for file inputs (see load_snapshot). With expose=False the
    value is kept in the click context (INPUT_NAMESPACE) for a shared loader to read. `live`: the command also
    reads a cluster, where -n is kubectl get's (that namespace only); the help says both."""

    def keep(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        value = namespace_name(ctx, param, value)
        if not expose and value:
            ctx.meta[INPUT_NAMESPACE] = value
        return value

    def decorate(g: Callable[..., Any]) -> Callable[..., Any]:
        return click.option("-n", "--namespace", "input_namespace", metavar="NS", default=None, callback=keep,
                            expose_value=expose,
                            help=("With --cluster: only namespace NS, as `kubectl get -n NS`. " if live else "")
                            + "As `kubectl apply -n NS`: objects without a namespace are in NS; an object in "
                              "another namespace is an error (default: objects without one are in `default`)."
                            )(g)

    return decorate(f) if f is not None else decorate


def all_namespaces_option(namespace_param: str, *, expose: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """kubectl's `-A/--all-namespaces` beside a command's `-n` (its parameter `namespace_param`): every namespace,
    which is already what the command does without -n; given with -n it is a usage error (kubectl would silently
    ignore the -n, and a scan that reads more or less than asked must not pass for the other). With expose=True
    the command also receives `all_namespaces`."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def checked(*args: Any, all_namespaces: bool = False, **kwargs: Any) -> Any:
            if all_namespaces and kwargs.get(namespace_param):
                fail("-n/--namespace and -A/--all-namespaces: give one of them")
            return f(*args, **({"all_namespaces": all_namespaces} if expose else {}), **kwargs)

        return click.option("-A", "--all-namespaces", "all_namespaces", is_flag=True,
                            help="Every namespace (the default without -n), as kubectl -A.")(checked)

    return decorate


def input_namespace(other: str | None = None) -> tuple[str | None, bool]:
    """(namespace, enforce) for load_snapshot from the running command's options.

    A kubectl `-n` (input_namespace_option) places and enforces. A command whose `-n` already meant something
    else keeps that meaning (`other`: a filter such as `pss check -n`, or the request namespace of `rbac can-i`);
    given once on the command line it also places namespace-less inputs there, as `kubectl apply -n NS` would
    have, but refuses nothing (the input may span namespaces).
    """
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None, True
    ns = ctx.meta.get(INPUT_NAMESPACE) or ctx.params.get("input_namespace")
    if ns:
        return str(ns), True
    if other is None or other not in ctx.params or ctx.get_parameter_source(other) not in (
            click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
        return None, True
    value = ctx.params[other]
    if isinstance(value, tuple):
        value = value[0] if len(value) == 1 else None
    return (str(value), False) if value else (None, True)


def load_snapshot(paths: Iterable[str], max_file_size: str = "16M", *, namespace: str | None = None,
                  enforce_namespace: bool = True, render_opts: RenderOptions | None = None) -> Snapshot:
    """Read files into a Snapshot; a progress bar on stderr only when it is a terminal and the scan is long.

    `namespace` is kubectl's `-n` for files (cli-runtime resource builder): namespaced objects without one get
    it; with `enforce_namespace` an object written in another namespace is one input error and left out, as
    `kubectl apply -n` refuses it. Without `namespace`, objects without one are in `default` (Resource.namespace).
    Commands whose `-n` filters or names a request namespace pass enforce_namespace=False.

    Helm charts and kustomizations among the folders are rendered (sources/render.py) with scan's helm flags
    (`render_opts`) and `namespace` as helm's --namespace; their objects then take the same -n rules as files.
    """
    from ..scan import load
    from ..sources.render import plan_inputs

    limit = parse_size(max_file_size)
    paths = list(paths)
    n_files = len(plan_inputs(paths)[0]) if sys.stderr.isatty() else 0
    try:
        if n_files < PROGRESS_MIN_FILES:
            return load(paths, max_file_bytes=limit, namespace=namespace, enforce_namespace=enforce_namespace,
                        render_opts=render_opts)
        from rich.progress import Progress

        with Progress(transient=True, console=stderr_console()) as bar:
            task = bar.add_task("reading manifests", total=n_files)
            return load(paths, max_file_bytes=limit, namespace=namespace, enforce_namespace=enforce_namespace,
                        render_opts=render_opts, on_file=lambda: bar.advance(task))
    except InputsError as exc:
        fail(str(exc))


def csv_values(values: Iterable[str]) -> tuple[str, ...]:
    """Repeated and comma-separated values of one option, in order."""
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def selection_flags(framework_help: str = "nsa, cis, mitre, pss-baseline, pss-restricted or all (repeat or "
                    "comma-separate).") -> list[Any]:
    """The control selection flags, the same in every judging command: scan's `--framework`,
    `--severity-threshold`, `--include-controls` and `--exclude-controls`."""
    return [
        click.option("--framework", "frameworks", multiple=True, default=("all",), show_default=True,
                     help=framework_help),
        click.option("--severity-threshold", type=severity_type(), default="info", show_default=True,
                     help="Run only controls of at least this severity."),
        click.option("--include-controls", multiple=True, help="Only these control ids (comma-separated)."),
        click.option("--exclude-controls", multiple=True, help="Skip these control ids (comma-separated)."),
    ]


def selection_options(*shapes: Any, frameworks: str = "nsa, cis") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """scan's selection flags on a command whose checks have these registry shapes (node, pki, ...): the command
    receives `controls`, the chosen checks in id order, and `narrowed` (whether a flag left some out). An
    unknown id or framework, or an id of another command's checks, is a one-line usage error (exit 2).
    `frameworks`: the framework families its checks map to, for the help text."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, frameworks: tuple[str, ...], severity_threshold: str,
                    include_controls: tuple[str, ...], exclude_controls: tuple[str, ...], **kwargs: Any) -> Any:
            from ..controls.registry import Selection, SelectionError, controls_of, every_control

            selection = Selection(frameworks=csv_values(frameworks) or ("all",),
                                  min_severity=Severity.parse(severity_threshold),
                                  include=csv_values(include_controls), exclude=csv_values(exclude_controls))
            pool = controls_of(*shapes)
            try:
                chosen = selection.choose(pool, every_control)
            except SelectionError as exc:
                fail(str(exc))
            return f(*args, controls=chosen, narrowed=len(chosen) != len(pool), **kwargs)

        g: Callable[..., Any] = wrapper
        for opt in reversed(selection_flags(f"{frameworks}, one framework id (cis-1.2.1) or all (repeat or "
                                            "comma-separate).")):
            g = opt(g)
        return g

    return decorate


def exceptions_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--exceptions FILE`: the same file and ids as `scan` (default ./.kubeward.yaml when present)."""
    return click.option("--exceptions", "exceptions_file", type=click.Path(dir_okay=False),
                        help="Exceptions file (default: ./.kubeward.yaml when present).")(f)


def apply_exceptions(report: Report, exceptions_file: str | None,
                     extra_ids: frozenset[str] = frozenset()) -> Report:
    """Suppress what the exceptions file says in a report a check built itself; a bad file is exit 2.
    `extra_ids`: control ids of this command's own beyond the registry's (the CVE ids of `vulns`)."""
    from ..exceptions import ExceptionsError, _all_known_ids, load_exceptions

    try:
        exceptions = load_exceptions(exceptions_file, known_ids=lambda: _all_known_ids() | extra_ids)
    except ExceptionsError as exc:
        fail(str(exc))
    exceptions.apply(report)
    note_report(report)
    for e in report.expired_exceptions:
        warn(f"expired exception no longer applies: {e}")
    for n in report.exception_notes:
        warn(f"exception note: {n}")
    return report


def stderr_console() -> Any:
    """The rich console of progress bars on stderr, coloured by the same rule as everything else."""
    from rich.console import Console

    return Console(stderr=True, no_color=not color_wanted(stderr=True))


REPORT_META = "kubeward.report"  # ctx.meta key: the Report this command built (noted by apply_exceptions)


def note_report(report: Report) -> Report:
    """Remember the command's report, so that `--output FILE` can say what it wrote."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[REPORT_META] = report
    return report


def findings_summary(total: int, by_severity: dict[str, int], suppressed: int = 0, errors: int = 0,
                     skipped: int = 0) -> str:
    """`449 findings: 12 critical, 80 high, …` plus suppressed findings, input errors and skipped documents (no
    Kubernetes object) when there are any."""
    parts = [f"{n} {label}" for label, n in by_severity.items() if n]
    info = total - sum(by_severity.values())
    if info > 0:
        parts.append(f"{info} info")
    text = f"{total} finding{'' if total == 1 else 's'}" + (": " + ", ".join(parts) if parts else "")
    if suppressed:
        text += f"; {suppressed} suppressed"
    if errors:
        text += f"; {errors} input error{'' if errors == 1 else 's'}"
    if skipped:
        text += f"; {skipped} skipped"
    return text


def report_summary(report: Report) -> str:
    return findings_summary(len(report.findings), report.by_severity(), len(report.suppressed), len(report.errors),
                            len(report.skipped))


DESCRIBE_MAX = 8 << 20  # a file written without a summary is read back to describe it up to this size


def wrote(output_file: str, summary: str | None = None) -> None:
    """The one line a command prints on stderr after writing its output to a file. Without a summary, what the
    file holds (describe_output), or its size when it is large."""
    if summary is None:
        try:
            size = os.path.getsize(output_file)
            summary = (describe_output(Path(output_file).read_text(encoding="utf-8", errors="replace"))
                       if size <= DESCRIBE_MAX else f"{size} bytes")
        except OSError:
            summary = "unreadable after writing"
    warn(f"wrote {output_file} ({summary})")


def describe_output(text: str) -> str:
    """What a document holds when the command did not say: the first list of a JSON object (`12 subjects`), the
    objects of a YAML stream, or its lines."""
    head = text.lstrip()[:1]
    if head == "{":
        import orjson

        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):  # the document's first list is what it holds (subjects, risks, namespaces)
            lists = [f"{len(v)} {k}" for k, v in doc.items() if isinstance(v, list)]
            if lists:
                return lists[0]
    docs = sum(1 for line in text.splitlines() if line.startswith("apiVersion:"))  # YAML objects at top level
    if docs:
        return f"{docs} object{'' if docs == 1 else 's'}"
    lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    return f"{lines} line{'' if lines == 1 else 's'}"


def emit(text: str, output_file: str | None, summary: str | Report | None = None) -> None:
    """Print the output, or write it to FILE (`-` is stdout) and say on stderr what was written where.

    `summary` says what the file holds; without it, the report the command noted (note_report) or what the
    text holds (describe_output)."""
    if output_file and output_file != "-":
        from ..safefile import SafeFileError, write_file

        try:  # atomic, checked, never through a symlink; an existing report keeps its mode
            write_file(output_file, text.encode("utf-8"), mode=None, replace=True, make_dirs=False)
        except SafeFileError as exc:
            fail(str(exc))
        if summary is None:
            ctx = click.get_current_context(silent=True)
            summary = ctx.meta.get(REPORT_META) if ctx is not None else None
        if isinstance(summary, Report):
            summary = report_summary(summary)
        wrote(output_file, summary if summary is not None else describe_output(text))
    else:
        click.echo(text, nl=not text.endswith("\n"))


def fail_on_type() -> click.Choice:
    """`--fail-on`: a severity, or `none` for report-only jobs (exit 0 whatever is found; usage and input errors
    still exit 2)."""
    return click.Choice([*severity_type().choices, "none"], case_sensitive=False)


def exit_code(report: Report, fail_on: int, *, scanned: bool) -> int:
    """kubeward.scan.exit_code, with what counts as "something was read" said by the command."""
    return _exit_code(report, fail_on, scanned=scanned, allow_input_errors=True)


def severity_type() -> click.Choice:
    return click.Choice([s.label for s in sorted(Severity, reverse=True)], case_sensitive=False)


def user_errors(*exc_types: type[BaseException]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn the listed exception types into one-line errors with exit 2 (never a traceback)."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return f(*args, **kwargs)
            except exc_types as exc:
                fail(str(exc))

        return wrapper

    return decorate


def serving_tls_options(what: str, *, client_ca_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--tls-cert, --tls-key and --client-ca of a webhook server the apiserver calls (`audit serve`,
    `admission serve`): all three files are reloaded when they change."""

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--client-ca", type=click.Path(exists=True, dir_okay=False), help=client_ca_help)(f)
        f = click.option("--tls-key", required=True, type=click.Path(exists=True, dir_okay=False),
                         help="Server key (PEM).")(f)
        return click.option("--tls-cert", required=True, type=click.Path(exists=True, dir_okay=False),
                            help=f"{what} certificate (PEM); reloaded when the file changes, as the key and "
                                 f"--client-ca are.")(f)
    return wrap


def serving_tls(tls_cert: str, tls_key: str, client_ca: str | None) -> Any:
    """The reloading TLS context provider (kubeward.httpserve.ReloadingTLS) for those options; a file that does not
    load is one clear line naming it (exit 2)."""
    import ssl

    from ..httpserve import ReloadingTLS

    if client_ca:
        try:
            ssl.create_default_context(cafile=client_ca)
        except (ssl.SSLError, OSError, ValueError) as exc:
            fail(f"{client_ca}: cannot load the client CA (--client-ca): {exc}")
    try:
        return ReloadingTLS(tls_cert, tls_key, client_ca)
    except (ssl.SSLError, OSError) as exc:
        fail(f"{tls_cert}: cannot load the TLS certificate/key: {exc}")
