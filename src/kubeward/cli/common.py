"""Shared CLI plumbing: input loading, output options, one-line errors, exit codes (see DESIGN.md)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

import click

from ..findings import InputError, Report, Severity
from ..snapshot import Snapshot
from ..textsafe import printable

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
PROGRESS_MIN_FILES = 200



# True in the `kubeward` console process (set by cli.main.main), False when the commands run inside another
# program (tests, an embedding application): only then may a one-shot command change process-wide settings.
CONSOLE = False


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


def input_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Positional paths (files, folders, '-') plus the size guard."""
    f = click.option("--max-file-size", default="16M", show_default=True, metavar="SIZE",
                     help="Refuse input files larger than this (guards memory).")(f)
    f = click.argument("paths", nargs=-1, type=click.Path(allow_dash=True, path_type=str))(f)
    return f


def load_snapshot(paths: Iterable[str], max_file_size: str = "16M") -> Snapshot:
    """Read files into a Snapshot; a progress bar on stderr only when it is a terminal and the scan is long."""
    from ..sources.files import iter_files, load_paths

    limit = parse_size(max_file_size)
    files = list(iter_files(paths))
    if not sys.stderr.isatty() or len(files) < PROGRESS_MIN_FILES:
        result = load_paths((), max_file_bytes=limit, files=files, objects_only=True)
    else:
        from rich.progress import Progress

        with Progress(transient=True, console=_stderr_console()) as bar:
            task = bar.add_task("reading manifests", total=len(files))
            result = load_paths((), max_file_bytes=limit, files=files, on_file=lambda: bar.advance(task),
                                objects_only=True)
    return Snapshot(result.resources, errors=result.errors, skipped=result.skipped)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def emit(text: str, output_file: str | None) -> None:
    if output_file:
        try:
            Path(output_file).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"{output_file}: {exc.strerror or exc}")
    else:
        click.echo(text, nl=not text.endswith("\n"))


def exit_code(report: Report, fail_on: Severity, *, scanned: bool) -> int:
    if not scanned:
        return EXIT_USAGE
    return EXIT_FINDINGS if any(f.severity >= fail_on for f in report.findings) else EXIT_OK


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
