"""`kubeward authn`: what the apiserver's x509 authenticator derives from a client certificate."""

from __future__ import annotations

from pathlib import Path

import click

from ..formats import DOCUMENTS, document
from ..pki.errors import PkiError
from .common import EXIT_FINDINGS, EXIT_OK, format_option, one_line, path_arguments, user_errors


@click.group(name="authn")
def group() -> None:
    """Authentication: what the x509 authenticator derives."""


@group.command("whoami")
@path_arguments("cert", click.Path(dir_okay=False, path_type=Path), single=True)
@click.option("--ca", "ca", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The apiserver's --client-ca-file.")
@format_option(("table", *DOCUMENTS), "authn whoami")
@user_errors(PkiError)
def whoami_cmd(cert: Path, ca: Path, fmt: str) -> None:
    """User and groups for CERT (leaf first, intermediates may follow), or why it is rejected (exit 1)."""
    from ..engines.authn import authenticate
    from ..pki.files import load_certs

    result = authenticate(load_certs(cert), load_certs(ca))
    if fmt in DOCUMENTS:
        click.echo(document(result.to_json(), fmt), nl=False)
    elif result.authenticated:
        click.echo(f"user:   {one_line(result.user or '')}")
        click.echo(f"groups: {one_line(', '.join(result.effective_groups))}")
    else:
        click.echo(f"rejected: {one_line(result.reason)}")
    raise SystemExit(EXIT_OK if result.authenticated else EXIT_FINDINGS)
