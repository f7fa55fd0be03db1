"""How a report shows a file name: as ruff does (`fs::relativize_path`), relative to the working directory when
the file is under it, otherwise as given (kubectl prints file names as given too). A caller may name one more
folder whose files are shown relative to it. The bundled demo's files are always shown relative to the demo's
folder (a pip install puts it far from any working directory), so every command prints them as `scan --demo` does.
No rich here: the plain-text tables of other commands use it too."""

from __future__ import annotations

import os
from pathlib import Path

from ..findings import Location
from ..textsafe import escape_control

DEMO_DIR = str(Path(__file__).resolve().parent.parent / "demo")  # the bundled demo cluster (cli.common.DEMO_DIR)


def display_path(path: str) -> str:
    """Paths relative to the working directory when below it (as the JSON contract wants), else absolute."""
    if not os.path.isabs(path):
        return os.path.normpath(path)
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    # a parent step, not any name starting with two dots (`..cache/x` below the working directory is below it)
    return path if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


class Paths:
    """How a file name is shown: relative to `base` (a folder the caller names) or the bundled demo's folder when
    under it, else relative to the working directory when under that, otherwise as given (ruff's rule)."""

    def __init__(self, base: str | None = None) -> None:
        self.cwd = os.path.abspath(os.getcwd())
        self.base = os.path.abspath(base) if base else None
        self._seen: dict[str, str] = {}

    @staticmethod
    def _under(full: str, folder: str) -> bool:
        return full == folder or full.startswith(folder.rstrip(os.sep) + os.sep)

    def show(self, file: str) -> str:
        shown = self._seen.get(file)
        if shown is None:
            shown = file
            if file != "-" and not file.startswith("<"):
                full = os.path.abspath(file)
                for folder in (self.base, DEMO_DIR, self.cwd):
                    if folder is not None and self._under(full, folder):
                        shown = os.path.relpath(full, folder)
                        break
            self._seen[file] = shown = escape_control(shown)
        return shown

    def where(self, loc: Location) -> str:
        if loc.file:
            return f"{self.show(loc.file)}:{loc.line}" if loc.line else self.show(loc.file)
        return escape_control(str(loc))
