"""`kubeward docs [TOPIC]`: the guides, shipped inside the package, so help texts can point to them.

The package's `guides` directory is the repository's `docs/` (a symlink in the source tree, real files in a
wheel: package-data `guides/*.md`), so a pip user reads the same pages as the repository shows.
"""

from __future__ import annotations

import difflib
import re
from importlib.resources import files
from importlib.resources.abc import Traversable

import click

from .common import EXIT_USAGE, fail


def guides() -> dict[str, Traversable]:
    """topic -> its markdown page (`audit` -> guides/audit.md)."""
    root = files("kubeward") / "guides"
    if not root.is_dir():
        return {}
    return {p.name.removesuffix(".md"): p for p in sorted(root.iterdir(), key=lambda t: t.name)
            if p.name.endswith(".md") and p.is_file()}


def title(page: Traversable) -> str:
    """The page's first heading, without its `#`."""
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def referenced_topics(text: str) -> set[str]:
    """The topics a help text sends the reader to (`kubeward docs audit`)."""
    return set(re.findall(r"kubeward docs ([a-z][a-z0-9-]*)", text))


@click.command("docs")
@click.argument("topic", required=False)
def docs(topic: str | None) -> None:
    """Print a guide (markdown); without TOPIC, list the guides."""
    pages = guides()
    if not pages:
        fail("the guides are not installed with this copy of kubeward")
    if topic is None:
        width = max(len(t) for t in pages)
        for name, page in pages.items():
            click.echo(f"{name:<{width}}  {title(page)}")
        return
    chosen = pages.get(topic.lower().removesuffix(".md"))
    if chosen is None:
        near = difflib.get_close_matches(topic, list(pages), n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        fail(f"no guide named {topic!r}{hint}; `kubeward docs` lists them", EXIT_USAGE)
    click.echo(chosen.read_text(encoding="utf-8"), nl=False)
