"""`kubeward etcd`: probe etcd's TLS/mTLS for real and classify secrets stored in it."""

from __future__ import annotations

import click

from ..controls.registry import Control, Shape
from ..formats import DOCUMENTS, FORMATS, document, render_report
from ..sources.etcd import EtcdError
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    apply_exceptions,
    color_wanted,
    emit,
    exceptions_option,
    exit_code,
    fail_on_type,
    format_option,
    output_options,
    parse_fail_on,
    selection_options,
    user_errors,
)


@click.group(name="etcd")
def group() -> None:
    """etcd: probe mTLS, classify secrets at rest."""


@group.command("probe")
@click.option("--endpoint", required=True, help="Client URL, e.g. https://127.0.0.1:2379.")
@click.option("--cacert", required=True, type=click.Path(dir_okay=False), help="CA that signs etcd's server cert.")
@click.option("--cert", type=click.Path(dir_okay=False), help="A client cert etcd should accept.")
@click.option("--key", type=click.Path(dir_okay=False))
@click.option("--cluster-ca", type=click.Path(dir_okay=False), help="The Kubernetes cluster CA (ca.crt).")
@click.option("--cluster-cert", type=click.Path(dir_okay=False), help="A client cert signed by the cluster CA.")
@click.option("--cluster-key", type=click.Path(dir_okay=False))
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=5.0, show_default=True, help="Seconds per step.")
@output_options(FORMATS)
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True)
@exceptions_option
@selection_options(Shape.ETCD)
@user_errors(EtcdError)
def probe_cmd(endpoint: str, cacert: str, cert: str | None, key: str | None, cluster_ca: str | None,
              cluster_cert: str | None, cluster_key: str | None, timeout: float, fmt: str, output_file: str | None,
              fail_on: str, exceptions_file: str | None, controls: list[Control], narrowed: bool) -> None:
    """Connect for real: TLS on, client certs required, cluster-CA certs refused, TLS version."""
    from ..controls.etcd_probe import probe_report
    from ..sources.etcd import probe

    if bool(cluster_cert) != bool(cluster_key):
        raise click.UsageError("--cluster-cert and --cluster-key go together")
    result = probe(endpoint, cacert=cacert, cert=cert, key=key, cluster_ca=cluster_ca, cluster_cert=cluster_cert,
                   cluster_key=cluster_key, timeout=timeout)
    report = apply_exceptions(probe_report(result, controls), exceptions_file)
    facts = result.to_json()
    text = render_report(report, fmt, facts={"probe": facts}, color=color_wanted(output_file),
                         preface="\n".join(f"{k:<22} {v}" for k, v in facts.items()) + "\n")
    emit(text, output_file)
    raise SystemExit(exit_code(report, parse_fail_on(fail_on), scanned=True))


def split_key(key: bytes, prefix: bytes) -> tuple[str, str | None, str]:
    """`<prefix>/secrets/NS/NAME` → (key, NS, NAME); shown keys are decoded, never the values."""
    text = key.decode("utf-8", errors="backslashreplace")
    rest = key[len(prefix):].decode("utf-8", errors="backslashreplace")
    parts = rest.split("/", 1)
    if len(parts) == 2:
        return text, parts[0], parts[1]
    return text, None, rest


@group.command("secrets-at-rest")
@click.option("--endpoint", required=True)
@click.option("--cacert", required=True, type=click.Path(dir_okay=False))
@click.option("--cert", required=True, type=click.Path(dir_okay=False))
@click.option("--key", required=True, type=click.Path(dir_okay=False))
@click.option("--prefix", default="/registry", show_default=True, help="The apiserver's --etcd-prefix.")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=10.0, show_default=True)
@format_option(("table", *DOCUMENTS), "etcd secrets-at-rest")
@user_errors(EtcdError)
def secrets_at_rest_cmd(endpoint: str, cacert: str, cert: str, key: str, prefix: str, timeout: float,
                        fmt: str) -> None:
    """Classify every secret in etcd as encrypted (k8s:enc:<provider>:…) or plaintext; exit 1 on plaintext."""
    from ..engines.encryption import classify_value
    from ..sources.etcd import EtcdClient

    base = (prefix.rstrip("/") + "/secrets/").encode()
    client = EtcdClient(endpoint, cacert=cacert, cert=cert, key=key, timeout=timeout)
    rows: list[dict[str, object]] = []
    for k, value in client.range_prefix(base):
        c = classify_value(value[:64])  # only the prefix is looked at; the value is dropped here
        shown, ns, name = split_key(k, base)
        rows.append({"key": shown, "namespace": ns, "name": name, "encrypted": c.encrypted, "provider": c.provider})
    plaintext = sum(1 for r in rows if not r["encrypted"])
    if fmt in DOCUMENTS:
        click.echo(document({"secrets": rows}, fmt), nl=False)
    else:
        for r in rows:
            state = f"encrypted ({r['provider']})" if r["encrypted"] else "PLAINTEXT"
            click.echo(f"{state:<22} {r['key']}")
        click.echo(f"{len(rows)} secrets, {plaintext} plaintext, {len(rows) - plaintext} encrypted")
    raise SystemExit(EXIT_FINDINGS if plaintext else EXIT_OK)
