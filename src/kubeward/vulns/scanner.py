"""`vulns --scan-images`: run the image scanner the user has (Trivy, else Grype) once per distinct image, with a
cache, and read its JSON report as `--images` would.

An image name is user input: it is passed as one argument after the options (never through a shell), the scanner
runs time-bounded and output-capped in its own process group (sources/bounded_run.py), and a failure is one input
error naming the image. A report is cached under the user cache folder (`…/kubeward/images`) for CACHE_HOURS,
keyed by scanner and image; an image by digest does not change, one by tag may, hence the bound.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from ..findings import InputError
from .images import ImageReport, ReportError, parse_report

CACHE_HOURS = 24
TIMEOUT = 900.0  # a first scan downloads the image and the scanner's database
MAX_BYTES = 256 << 20
INSTALL = ("--scan-images: neither trivy nor grype is on PATH: install one (https://trivy.dev or "
           "https://github.com/anchore/grype), or give reports with --images")


def scanner() -> tuple[str, str] | None:
    """(name, path) of the scanner to run: trivy, else grype; None when neither is on PATH."""
    for name in ("trivy", "grype"):
        path = shutil.which(name)
        if path:
            return name, path
    return None


def _argv(name: str, path: str, image: str) -> list[str]:
    if name == "trivy":  # trivy image: --quiet keeps progress off stdout; -- ends the options
        return [path, "image", "--quiet", "--format", "json", "--", image]
    return [path, "-q", "-o", "json", "--", image]


def _cache_file(folder: Path, name: str, image: str) -> Path:
    key = hashlib.sha256(f"{name}\0{image}".encode()).hexdigest()
    return folder / f"{name}-{key[:32]}.json"


def scan(images: Iterable[str], folder: Path, tool: tuple[str, str]) -> tuple[list[ImageReport], list[InputError]]:
    """One report per distinct image (sorted, so runs are repeatable), from the cache when fresh."""
    from ..safefile import SafeFileError, write_file
    from ..sources.bounded_run import run_bounded

    name, path = tool
    reports: list[ImageReport] = []
    errors: list[InputError] = []
    for image in sorted(set(images)):
        where = f"{name} {image}"
        cached = _cache_file(folder, name, image)
        raw: bytes | None = None
        fresh = False
        if cached.is_file() and time.time() - cached.stat().st_mtime < CACHE_HOURS * 3600:
            raw = cached.read_bytes()
        if raw is None:
            try:
                ran = run_bounded(_argv(name, path, image), timeout=TIMEOUT, max_bytes=MAX_BYTES)
            except OSError as exc:
                errors.append(InputError(where, f"could not run: {exc}"))
                continue
            if ran.returncode != 0:
                why = ("timed out" if ran.timed_out else "printed more than 256 MiB" if ran.too_big
                       else f"exit {ran.returncode}: {ran.stderr.decode(errors='replace').strip()[-300:]}")
                errors.append(InputError(where, why))
                continue
            raw, fresh = ran.stdout, True
        try:
            report = parse_report(json.loads(raw), where)
        except (ValueError, ReportError) as exc:
            errors.append(InputError(where, f"its report is not usable: {exc}"))
            continue
        reports.append(_as_scanned(report, image))
        if fresh:  # a cache that cannot be written costs a rescan next time, nothing else
            with contextlib.suppress(SafeFileError, OSError):
                write_file(cached, raw, mode=0o600, replace=True, dir_mode=0o700)
    return reports, errors


def _as_scanned(report: ImageReport, image: str) -> ImageReport:
    """The report also answers for the reference it was asked about (`nginx` scanned is `nginx` run)."""
    from .images import normalise

    ref, digest = normalise(image)
    refs = report.refs | ({ref} if ref else set())
    digests = report.digests | ({digest} if digest else set())
    return ImageReport(report.source, report.name, frozenset(refs), frozenset(digests), report.vulns, report.vex)
