"""`kubeward completion bash|zsh|fish`: click's shell completion script, printed for the user to source."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_KUBEWARD_COMPLETE"  # what click reads for prog_name "kubeward" (kubectl-ward runs as it too)


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (the same as `_KUBEWARD_COMPLETE=SHELL_source kubeward`)."""
    from click.shell_completion import get_completion_class

    from .main import cli

    cls = get_completion_class(shell)
    assert cls is not None  # the three shells click ships
    click.echo(cls(cli, {}, "kubeward", COMPLETE_VAR).source())
