"""`kubeward pki`: init a kubeadm-layout PKI (separate etcd CA), issue user certs, check and rotate."""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

import click

from ..controls.registry import Control, Shape
from ..formats import DOCUMENTS, FORMATS, document, render_report
from ..pki.errors import PkiError
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    apply_exceptions,
    color_wanted,
    emit,
    exceptions_option,
    exit_code,
    fail,
    fail_on_type,
    format_option,
    one_line,
    output_options,
    parse_fail_on,
    path_arguments,
    print_errors,
    selection_options,
    user_errors,
    warn,
    wrote,
)


@click.group(name="pki")
def group() -> None:
    """Certificates: init a kubeadm-style PKI, issue, check, rotate."""


def _days(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value is not None and value < 1:
        raise click.BadParameter("must be at least 1")
    return value


@group.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cluster-name", default="kubernetes", show_default=True, help="Cluster name (shown in the summary).")
@click.option("--node-name", default=None, help="Node name: CN of etcd server/peer and a SAN (default: hostname).")
@click.option("--advertise-address", default="127.0.0.1", show_default=True, help="IP SAN of apiserver and etcd.")
@click.option("--service-cidr", default="10.96.0.0/12", show_default=True, help="First IP becomes an apiserver SAN.")
@click.option("--dns-domain", default="cluster.local", show_default=True)
@click.option("--apiserver-san", "apiserver_sans", multiple=True, metavar="NAME_OR_IP", help="Extra apiserver SAN.")
@click.option("--etcd-san", "etcd_sans", multiple=True, metavar="NAME_OR_IP", help="Extra etcd server/peer SAN.")
@click.option("--key-type", type=click.Choice(["rsa", "ecdsa"]), default="rsa", show_default=True,
              help="RSA (2048+ bits) or ECDSA P-256 keys.")
@click.option("--rsa-bits", type=click.IntRange(min=2048, max=8192), default=2048, show_default=True)
@click.option("--days", type=int, default=365, show_default=True, callback=_days, help="Leaf validity.")
@click.option("--ca-days", type=int, default=3650, show_default=True, callback=_days, help="CA validity.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@user_errors(PkiError, ValueError)
def init_cmd(directory: Path, cluster_name: str, node_name: str | None, advertise_address: str, service_cidr: str,
             dns_domain: str, apiserver_sans: tuple[str, ...], etcd_sans: tuple[str, ...], key_type: str,
             rsa_bits: int, days: int, ca_days: int, force: bool) -> None:
    """Create the kubeadm PKI layout in DIRECTORY, with a separate etcd CA."""
    from ..pki.layout import InitOptions, init

    opts = InitOptions(node_name=node_name or socket.gethostname().split(".")[0].lower(),
                       advertise_address=advertise_address, service_cidr=service_cidr, dns_domain=dns_domain,
                       apiserver_sans=apiserver_sans, etcd_sans=etcd_sans, key_type=key_type, rsa_bits=rsa_bits,
                       days=days, ca_days=ca_days, force=force)
    written = init(directory, opts)
    click.echo(f"cluster {cluster_name}: wrote {len(written)} files to {directory} "
               f"({key_type.upper()}{'-' + str(rsa_bits) if key_type == 'rsa' else '-P256'}; keys mode 0600)")
    for p in written:
        click.echo(f"  {p.relative_to(directory).as_posix()}")


MASTERS_REFUSED = ("--group system:masters: such a certificate is cluster-admin that RBAC cannot revoke (it "
                   "authenticates until it expires); bind a group to a ClusterRole instead, or pass --allow-masters")


def _is_stdout(path: Path | None) -> bool:
    return path is not None and str(path) == "-"


@group.command("issue-user")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("name")
@click.option("--group", "groups", multiple=True, metavar="G", help="Group (certificate O); repeatable.")
@click.option("--allow-masters", is_flag=True,
              help="Allow --group system:masters (cluster-admin that RBAC cannot revoke).")
@click.option("--days", type=int, default=365, show_default=True, callback=_days)
@click.option("--key-type", type=click.Choice(["rsa", "ecdsa"]), default=None, help="Default: as the CA key.")
@click.option("--kubeconfig-out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="Also write a kubeconfig (mode 0600) to FILE, or to stdout with '-'.")
@click.option("--server", default=None, help="API server URL for the kubeconfig.")
@click.option("--cluster-name", default="kubernetes", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@user_errors(PkiError, ValueError)
def issue_user_cmd(directory: Path, name: str, groups: tuple[str, ...], allow_masters: bool, days: int,
                   key_type: str | None, kubeconfig_out: Path | None, server: str | None, cluster_name: str,
                   force: bool) -> None:
    """Issue a client certificate for user NAME (CN=NAME, O=groups, clientAuth) signed by the cluster CA."""
    from ..pki.layout import MASTERS_GROUP
    from ..pki.users import issue_user, kubeconfig, write_kubeconfig

    if MASTERS_GROUP in groups and not allow_masters:
        raise click.UsageError(MASTERS_REFUSED)
    if kubeconfig_out is not None and not server:
        raise click.UsageError("--kubeconfig-out needs --server URL")
    to_stdout = _is_stdout(kubeconfig_out)
    if kubeconfig_out is not None and not to_stdout and os.path.lexists(kubeconfig_out) and not force:
        raise PkiError(f"{kubeconfig_out}: already exists (use --force to overwrite)")
    crt, key_path, cert, key, ca = issue_user(directory, name, groups, days=days, key_type=key_type, force=force,
                                              allow_masters=allow_masters)
    click.echo(f"user {one_line(name)} groups [{one_line(', '.join(groups))}]: {one_line(str(crt))} and "
               f"{one_line(str(key_path))} (expires {cert.not_valid_after_utc:%Y-%m-%d})", err=to_stdout)
    if kubeconfig_out is not None:
        assert server is not None
        text = kubeconfig(name, server, cluster_name, ca, cert, key)
        if to_stdout:
            click.echo(text, nl=False)
        else:
            write_kubeconfig(kubeconfig_out, text, force=force)
            click.echo(f"kubeconfig: {one_line(str(kubeconfig_out))} (mode 0600)")


@group.command("kubeconfig")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("name")
@click.option("--server", required=True, help="API server URL.")
@click.option("--output", "out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="Kubeconfig file to write (mode 0600: it embeds the private key), or '-' for stdout.")
@click.option("--out", "out_alias", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              hidden=True)  # the earlier spelling; every command writes with --output
@click.option("--cluster-name", default="kubernetes", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@user_errors(PkiError, ValueError)
def kubeconfig_cmd(directory: Path, name: str, server: str, out: Path | None, out_alias: Path | None,
                   cluster_name: str, force: bool) -> None:
    """Write a kubeconfig for the existing certificate DIR/users/NAME.{crt,key} (e.g. after `pki rotate --users`)."""
    if out is None and out_alias is None:
        raise click.UsageError("Missing option '--output' (a file, or '-' for stdout).")
    if out is not None and out_alias is not None and out != out_alias:
        raise click.UsageError("--output and --out name different files; give one.")
    out = out if out is not None else out_alias
    assert out is not None
    from ..pki.users import kubeconfig, load_user, write_kubeconfig

    crt, cert, key, ca = load_user(directory, name)
    text = kubeconfig(name, server, cluster_name, ca, cert, key)
    if _is_stdout(out):
        click.echo(text, nl=False)
        click.echo(f"kubeconfig for {one_line(str(crt))} (expires {cert.not_valid_after_utc:%Y-%m-%d}) written "
                   "to stdout", err=True)
        return
    write_kubeconfig(out, text, force=force)
    wrote(str(out), f"kubeconfig for {one_line(str(crt))}, expires {cert.not_valid_after_utc:%Y-%m-%d}, mode 0600")


_CURVES = {"secp256r1": "P256", "secp384r1": "P384", "secp521r1": "P521"}


def _key_label(key: dict[str, object]) -> str:
    """RSA-2048, ECDSA-P256 (the NIST name of the curve, as kubeadm prints it), Ed25519."""
    kind = str(key.get("type"))
    if kind.startswith("ECDSA-"):
        return "ECDSA-" + _CURVES.get(kind.removeprefix("ECDSA-"), kind.removeprefix("ECDSA-"))
    return f"{kind}-{key.get('bits')}" if key.get("bits") else kind


def _inventory_table(rows: list[dict[str, object]]) -> str:
    """kubeadm's `certs check-expiration` columns within 80 columns, expiry in ISO 8601 (UTC), and under each
    certificate the identity it authenticates as (CN = user, O = groups), since that is what a leaked one gives."""
    head = f"{'CERTIFICATE':<26} {'EXPIRES (UTC)':<17} {'RESIDUAL':<8} {'SIGNED BY':<15} KEY"
    lines = [head]
    for r in rows:
        key = r["key"]
        assert isinstance(key, dict)
        exp = str(r["notAfter"])[:16] + "Z"  # 2027-12-07T02:46Z
        lines.append(f"{one_line(str(r['name'])):<26} {exp:<17} {r['residual']!s:<8} "
                     f"{one_line(str(r['signedBy'] or '?')):<15} {_key_label(key)}")
        groups = r.get("groups")
        who = f"  subject CN={one_line(str(r.get('commonName') or ''))}"
        if isinstance(groups, list) and groups:
            who += "  groups " + ",".join(one_line(str(g)) for g in groups)
        lines.append(who)
    return "\n".join(lines) + "\n"


@group.command("check")
@path_arguments("directory", click.Path(file_okay=False, path_type=Path), single=True, what="DIR")
@output_options(FORMATS)
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True)
@exceptions_option
@selection_options(Shape.CERTIFICATE, Shape.PKI)
@user_errors(PkiError)
def check_cmd(directory: Path, fmt: str, output_file: str | None, fail_on: str, exceptions_file: str | None,
              controls: list[Control], narrowed: bool) -> None:
    """Check every certificate: expiry, chains, EKUs, CA separation, weak keys, key files."""
    from ..pki.checks import check, describe
    from ..pki.inventory import read_dir

    inv = read_dir(directory)
    now = dt.datetime.now(dt.UTC)
    report = apply_exceptions(check(inv, now=now, controls=controls), exceptions_file)
    rows = [describe(c, inv, now) for c in inv.certs]
    text = render_report(report, fmt, facts={"certificates": rows}, preface=_inventory_table(rows),
                         color=color_wanted(output_file))
    emit(text, output_file)
    print_errors(report.errors)
    code = exit_code(report, parse_fail_on(fail_on), scanned=bool(inv.certs))
    raise SystemExit(EXIT_USAGE if report.errors and code == EXIT_OK else code)


@group.command("rotate")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--days", type=int, default=365, show_default=True, callback=_days)
@click.option("--new-keys", is_flag=True, help="Generate new keys instead of reusing the current ones.")
@click.option("--cert", "names", multiple=True, metavar="NAME",
              help="Renew only this certificate (kubeadm name, or users/NAME for a user certificate).")
@click.option("--users", is_flag=True, help="Also renew every user certificate under DIR/users (pki issue-user).")
@click.option("--allow-masters", is_flag=True, help="Also renew user certificates in system:masters.")
@format_option(("table", *DOCUMENTS), "pki rotate")
@user_errors(PkiError, ValueError)
def rotate_cmd(directory: Path, days: int, new_keys: bool, names: tuple[str, ...], users: bool, allow_masters: bool,
               fmt: str) -> None:
    """Renew leaf certificates from their CAs (CAs are kept).

    Only a certificate its slot's CA issued, with the subject, groups, SANs and extended key usages kubeadm puts
    in that slot (or `pki issue-user` in DIR/users), is renewed; anything else is refused, one line each, and
    nothing is written (exit 2)."""
    from ..pki.rotate import RotationRefused, rotate
    from ..pki.users import USERS

    try:
        done = rotate(directory, days=days, new_keys=new_keys, names=list(names) or None, users=users,
                      allow_masters=allow_masters)
    except RotationRefused as exc:
        for line in exc.lines:
            warn(line)
        fail(f"{directory}: {exc}")
    renewed_users = [r.name[len(USERS) + 1:] for r in done if r.name.startswith(f"{USERS}/")]
    if users and not renewed_users:
        warn(f"--users: no user certificates under {directory / USERS}")
    if renewed_users:
        warn(f"kubeconfigs that embed the old certificate of {', '.join(renewed_users)} keep it: write them again "
             f"with `kubeward pki kubeconfig {directory} NAME --server URL --output FILE`")
    if fmt in DOCUMENTS:
        click.echo(document({"renewed": [r.to_json() for r in done]}, fmt), nl=False)
    else:
        for r in done:
            click.echo(f"renewed {one_line(r.name):<26} {r.old_not_after:%Y-%m-%d} -> {r.new_not_after:%Y-%m-%d}  "
                       f"{'new key' if r.new_key else 'same key'}")
    raise SystemExit(EXIT_OK if done else EXIT_FINDINGS)


@group.command("rotate-ca", epilog="""\b
Steps (each checked through the API before it is recorded; the state file
records the last done: a stopped run resumes where it was):
  generate  new CA beside the old one (key 0600), the old+new bundle
  trust     the bundle in every CA flag, the kubelet's clientCAFile and the
            kubeconfigs' CA data; restart; old and new client certs work
  publish   kube-root-ca.crt in every namespace holds the bundle
  reissue   serving, kubelet-client and node kubeconfig certificates under
            the new CA; restart; a client trusting only the new CA connects
  users     client certificates of each --kubeconfig under the new CA
  retire    old CA removed everywhere; restart; its certificates get 401
--step S runs the steps not yet done up to S (default: users). retire is
the operator's confirmation that every client trusts the new CA and holds
a certificate it signed (pods restarted, other kubeconfigs re-issued): pass
--step retire (or --step all). Not rotated: the front-proxy and etcd CAs,
webhook and APIService caBundles (see `kubeward docs credentials`).""")
@click.option("--cluster", "live", is_flag=True, required=True, help="Rotate on the live cluster (required).")
@click.option("--kubeconfig", "kubeconfigs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="A user kubeconfig to move to the new CA (repeatable; mode 0600 kept); the first "
                                   "is also the connection (default: $KUBECONFIG or ~/.kube/config, not edited).")
@click.option("--context", metavar="NAME", default=None, help="Kubeconfig context (default: current).")
@click.option("--node-root", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="The control-plane node's root: etc/kubernetes (manifests, pki, *.conf) and "
                   "var/lib/kubelet/config.yaml are edited.")
@click.option("--restart-command", required=True, metavar="CMD",
              help="Restarts the control-plane components whose files changed (kube-apiserver always) and exits 0 "
                   "(run without a shell); readiness is then waited for.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Rotation state (default: NODE_ROOT/etc/kubernetes/ca-rotation.json; mode 0600).")
@click.option("--step", "step", type=click.Choice(["generate", "trust", "publish", "reissue", "users", "retire",
                                                   "all"]),
              default="users", show_default=True, help="Run the remaining steps up to this one (all = through retire).")
@click.option("--ca-days", type=int, default=3650, show_default=True, callback=_days, help="New CA validity.")
def rotate_ca_cmd(live: bool, kubeconfigs: tuple[Path, ...], context: str | None, node_root: Path,
                  restart_command: str, state_file: Path | None, step: str, ca_days: int) -> None:
    """Rotate the cluster CA the documented way (trust bundle first), without breaking a client, resumably."""
    from ..creds.audit import default_kubeconfigs
    from ..creds.rotation import RotationError, command_restart
    from ..pki.carotate import STEP_OF_OPTION, CARotation, State
    from ..safefile import SafeFileError
    from ..sources.cluster import Client, ClusterError

    def say(message: str) -> None:
        click.echo(f"kubeward: pki rotate-ca: {message}", err=True)

    for k in kubeconfigs:
        if not k.is_file():
            fail(f"pki rotate-ca: {k}: no such kubeconfig file")
    connection = str(kubeconfigs[0]) if kubeconfigs else None
    default = next(iter(default_kubeconfigs()), None)  # kubectl's files (creds/audit); the first is checked
    state_path = state_file or node_root / "etc" / "kubernetes" / "ca-rotation.json"
    try:
        done = State.load(state_path)
        if done is not None and done.step == "retired":
            say(f"already complete: {done.ca} is the new CA (remove {state_path} to rotate again)")
            raise SystemExit(EXIT_OK)
        rotation = CARotation(node_root, lambda ca: Client(connection, context, server_ca=ca), state_path,
                              command_restart(restart_command), say, kubeconfigs=kubeconfigs,
                              connection=Path(connection) if connection else default, ca_days=ca_days)
        final = rotation.run(STEP_OF_OPTION[step])
    except (RotationError, ClusterError, SafeFileError, PkiError) as exc:
        fail(f"pki rotate-ca: {exc}")
    if final.step == "retired":
        say(f"complete: {final.ca} is the new CA and the only one trusted; the old CA is kept in {final.old_crt} "
            f"and {final.old_key} (mode 0600): remove them once nothing needs them")
    elif final.step in ("reissued", "users"):
        say(f"at step {final.step}: old and new CA trusted ({final.bundle}), certificates issued by the new one; "
            "once every client trusts the new CA and holds a certificate it signed (restart pods that read "
            "ca.crt once), run again with --step retire")
    else:
        say(f"at step {final.step}: the old CA still signs; the new one is {final.new_crt}")
