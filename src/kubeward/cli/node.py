"""`kubeward node check`: CIS control-plane, etcd and worker checks from node files, with typed flags."""

from __future__ import annotations

from pathlib import Path

import click

from ..formats import FORMATS, render
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    apply_exceptions,
    emit,
    exceptions_option,
    exit_code,
    fail_on_type,
    output_options,
    parse_fail_on,
    print_errors,
)


@click.group(name="node")
def group() -> None:
    """Control-plane and worker node checks (CIS)."""


@group.command("check")
@click.option("--root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("/"),
              show_default=True, help="Node filesystem root (host paths in manifests resolve below it).")
@click.option("--manifests", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Static-pod manifests (default: ROOT/etc/kubernetes/manifests).")
@click.option("--kubelet-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="KubeletConfiguration (default: ROOT/var/lib/kubelet/config.yaml).")
@output_options(FORMATS)
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True)
@exceptions_option
def check_cmd(root: Path, manifests: Path | None, kubelet_config: Path | None, fmt: str, output_file: str | None,
              fail_on: str, exceptions_file: str | None) -> None:
    """CIS Kubernetes Benchmark control-plane, etcd and node checks, plus what flags alone cannot show."""
    from ..controls.node import run
    from ..sources.node import load_node

    cfg = load_node(root, manifests, kubelet_config)
    if not cfg.components and cfg.kubelet is None:
        print_errors(cfg.errors)
        where = manifests or root / "etc/kubernetes/manifests"
        click.echo(f"kubeward: {where}: no control-plane manifests or kubelet configuration found", err=True)
        raise SystemExit(EXIT_USAGE)
    report = apply_exceptions(run(cfg), exceptions_file)
    emit(render(report, fmt), output_file)
    print_errors(report.errors)
    code = exit_code(report, parse_fail_on(fail_on), scanned=True)
    raise SystemExit(EXIT_USAGE if report.errors and code == EXIT_OK else code)
