"""`kubeward encryption`: generate and check EncryptionConfiguration files (secrets at rest)."""

from __future__ import annotations

from pathlib import Path

import click

from ..controls.registry import Control, Shape
from ..formats import FORMATS, render_report
from .common import (
    EXIT_USAGE,
    apply_exceptions,
    color_wanted,
    emit,
    exceptions_option,
    exit_code,
    fail,
    fail_on_type,
    output_options,
    parse_fail_on,
    path_arguments,
    print_errors,
    selection_options,
)


@click.group(name="encryption")
def group() -> None:
    """Secrets encryption at rest: generate and check configs."""


@group.command("generate")
@click.option("--provider", type=click.Choice(["aesgcm", "aescbc", "secretbox"]), default="aesgcm",
              show_default=True)
@click.option("--resources", default="secrets", show_default=True, help="Comma-separated, any spelling kubectl resolves (secrets,cm,deploy) or PLURAL.GROUP / *.GROUP.")
@click.option("--key-name", default="key1", show_default=True)
@click.option("--output", "output_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE (mode 0600, never overwritten) instead of stdout.")
def generate_cmd(provider: str, resources: str, key_name: str, output_file: Path | None) -> None:
    """Print a new EncryptionConfiguration with a fresh 32-byte key (identity last, to read old data)."""
    import os

    from ..engines.encryption import generate, parse, resolve_resource

    names: tuple[str, ...] = ()
    for r in (r.strip() for r in resources.split(",") if r.strip()):
        try:
            names += (resolve_resource(r),)
        except ValueError as exc:
            fail(f"--resources: {exc}")
    if not names:
        fail("--resources: at least one resource is required")
    if not key_name or ":" in key_name:
        fail("--key-name: must be non-empty and must not contain ':'")
    text = generate(provider, names, key_name)
    import yaml

    problems = parse(yaml.safe_load(text)).errors
    if problems:
        fail(f"--resources: {problems[0].message}")
    if output_file is None:
        click.echo(text, nl=False)
        return
    try:
        fd = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{output_file}: already exists")
    except OSError as exc:
        fail(f"{output_file}: {exc.strerror or exc}")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    from .common import wrote

    wrote(str(output_file), f"EncryptionConfiguration with a new {provider} key, mode 0600")


@group.command("check")
@path_arguments("file", click.Path(dir_okay=False, allow_dash=True), single=True)
@click.option("--resource", "resources", multiple=True, default=("secrets",), show_default=True,
              help="Resource that must be encrypted (repeatable), e.g. configmaps.")
@output_options(FORMATS)
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True)
@exceptions_option
@selection_options(Shape.ENCRYPTION)
def check_cmd(file: str, resources: tuple[str, ...], fmt: str, output_file: str | None, fail_on: str,
              exceptions_file: str | None, controls: list[Control], narrowed: bool) -> None:
    """Validate FILE as the apiserver would and judge whether it really encrypts secrets."""
    from ..controls.encryption import check_loaded
    from ..engines.encryption import KIND
    from ..sources.files import load_paths

    loaded = load_paths([file])
    if loaded.resources and not any(r.kind == KIND for r in loaded.resources):
        # Another kind of object is a wrong argument, not a broken EncryptionConfiguration (issue 15).
        first = loaded.resources[0]
        fail(f"{file}: not an {KIND} (kind {first.kind!r}, apiVersion {first.api_version!r})")
    report = check_loaded(file, loaded, resources, controls)
    if report.errors and not report.objects:
        print_errors(report.errors)
        raise SystemExit(EXIT_USAGE)
    apply_exceptions(report, exceptions_file)
    emit(render_report(report, fmt, color=color_wanted(output_file)), output_file)
    print_errors(report.errors)
    raise SystemExit(exit_code(report, parse_fail_on(fail_on), scanned=report.objects > 0))


@group.command("rotate", epilog="""\b
Steps (each checked before the next; the state file records the last done,
so a run stopped anywhere is resumed by running the command again):
  added      new key second in the writing provider, apiserver restarted
  promoted   new key first, restarted, a canary Secret stored with it
  rewritten  every Secret rewritten through the API (re-encrypted)
  verified   every Secret in etcd carries the new key's prefix
  removed    old key removed, restarted, every Secret still readable""")
@click.option("--cluster", "live", is_flag=True, required=True, help="Rotate on the live cluster (required).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None, help="Kubeconfig for the cluster.")
@click.option("--context", metavar="NAME", default=None, help="Kubeconfig context (default: current).")
@click.option("--node-root", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="The control-plane node's root: its kube-apiserver manifest names the config and etcd.")
@click.option("--restart-command", required=True, metavar="CMD",
              help="Restarts kube-apiserver and exits 0 (run without a shell; on a kubeadm node stopping "
                   "the container makes the kubelet start it again); readiness is then waited for.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Rotation state (default: the config's path + .rotation.json; mode 0600).")
def rotate_cmd(live: bool, kubeconfig: str | None, context: str | None, node_root: Path, restart_command: str,
               state_file: Path | None) -> None:
    """Rotate the key that encrypts Secrets at rest, the documented way, resumably."""
    from ..creds.keyrotation import Rotation, RotationError, State, command_restart, node_from_root
    from ..safefile import SafeFileError
    from ..sources.cluster import Client, ClusterError
    from ..sources.etcd import EtcdError

    def say(message: str) -> None:
        click.echo(f"kubeward: encryption rotate: {message}", err=True)

    try:
        node = node_from_root(node_root)
        state_path = state_file or node.config.with_name(node.config.name + ".rotation.json")
        done = State.load(state_path)
        if done is not None and done.step == "removed":
            say(f"already complete: Secrets are encrypted with {done.new_key} (remove {state_path} to rotate again)")
            raise SystemExit(0)
        rotation = Rotation(node, Client(kubeconfig, context), state_path, command_restart(restart_command), say)
        final = rotation.run()
    except (RotationError, ClusterError, EtcdError, SafeFileError) as exc:
        fail(f"encryption rotate: {exc}")
    say(f"complete: Secrets are encrypted with {final.new_key}; the old key {final.old_key} is removed")
