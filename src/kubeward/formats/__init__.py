"""Formats render a Report: each module exposes `render(report, **opts) -> str`."""

from __future__ import annotations

import importlib
from typing import Any

from ..findings import Report

FORMATS = ("table", "json", "sarif", "junit", "html")


def render(report: Report, fmt: str, **opts: Any) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r} (one of: {', '.join(FORMATS)})")
    module = importlib.import_module(f"{__name__}.{fmt}")
    return module.render(report, **opts)
