"""`kubeward admission …`: test (offline decisions for CI) and serve (the validating webhook)."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..formats import document
from ..textsafe import printable
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    emit,
    exceptions_option,
    fail,
    input_options,
    load_snapshot,
    namespace_name,
    print_errors,
    serving_tls,
    serving_tls_options,
    warn,
)

TEST_FORMATS = ("table", "json", "yaml", "sarif", "junit", "html")


@click.group("admission")
def group() -> None:
    """Admission control: the scan's controls and exceptions, enforced when objects are created or updated.

    \b
    Namespace modes as pod-security-admission's: labels kubeward.io/enforce, kubeward.io/warn and
    kubeward.io/audit take a severity (critical, high, medium, low, info) or none. Without a config:
    deny critical and high (what `scan --fail-on high` fails), warn below. See `kubeward docs admission`.
    """


def _config_option(f: Any) -> Any:
    return click.option("--config", "config_file", type=click.Path(dir_okay=False),
                        help="Admission configuration (defaults, exemptions, namespaces); see `kubeward docs admission`.")(f)


def _decider(config_file: str | None, exceptions_file: str | None, namespaces: Any = None) -> Any:
    from ..admission.config import ConfigError, load_admission_config
    from ..admission.decide import Decider
    from ..controls.registry import SelectionError
    from ..exceptions import ExceptionsError, load_exceptions

    try:
        cfg = load_admission_config(config_file)
        exceptions = load_exceptions(exceptions_file or cfg.exceptions)
        for e in exceptions.expired:
            warn(f"expired exception no longer applies: {e}")
        return Decider(cfg, exceptions, namespaces(cfg) if namespaces else None)
    except (ConfigError, ExceptionsError, SelectionError) as exc:
        fail(str(exc))


@group.command("test")
@input_options
@_config_option
@exceptions_option
@click.option("--as", "as_user", default="kubeward-test", show_default=True,
              help="userInfo.username of the simulated requests (for the user exemptions).")
@click.option("--as-group", "as_groups", multiple=True, help="userInfo.groups (repeat; for the group exemptions).")
@click.option("-o", "--format", "fmt", type=click.Choice(TEST_FORMATS), default="table", show_default=True,
              help="table/json/yaml: one decision per object; sarif/junit/html: the denied and warned findings.")
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write the report here.")
@click.option("-w", "--show-warnings", is_flag=True, help="Table: list each warning, not only their count.")
def test_cmd(paths: tuple[str, ...], max_file_size: str, config_file: str | None, exceptions_file: str | None,
             as_user: str, as_groups: tuple[str, ...], fmt: str, output_file: str | None,
             show_warnings: bool) -> None:
    """What the webhook would answer for each object (a CREATE by --as), offline, like gator or kyverno apply.

    \b
    Namespace labels come from the config's `namespaces:` and from Namespace objects in the input.
    AdmissionReview v1 documents in the input are decided as they are.
    Exit codes: 0 every object admitted; 1 any denied; 2 usage or input errors (nothing read, a bad config).
    """
    from ..admission.decide import StaticNamespaces

    if not paths:
        fail("nothing to test: give files, folders or '-'")
    snapshot = load_snapshot(paths, max_file_size)
    print_errors(snapshot.errors)
    in_input = {r.name: {str(k): str(v) for k, v in r.labels.items()} for r in snapshot.of_kind("Namespace")}
    decider = _decider(config_file, exceptions_file,
                       lambda cfg: StaticNamespaces({**cfg.namespaces, **in_input}))
    user = {"username": as_user, "groups": list(as_groups)}
    rows: list[tuple[Any, Any, Any]] = []  # (resource, request, decision)
    for res in snapshot.resources:
        if res.kind == "AdmissionReview":
            from ..admission.decide import ReviewError, parse_review

            try:
                request = parse_review(res.obj)
            except ReviewError as exc:
                warn(f"{res.location()}: {exc}")
                rows.append((res, None, None))
                continue
            rows.append((res, request, decider.decide(request)))
            continue
        request = {"uid": f"test-{len(rows)}", "operation": "CREATE", "namespace": res.namespace or "",
                   "name": res.name, "object": res.obj, "userInfo": user}
        rows.append((res, request, decider.decide(request, origin=res)))
    decided = [r for r in rows if r[2] is not None]
    bad = len(rows) - len(decided)
    if fmt in ("sarif", "junit", "html"):
        emit(_render_findings(snapshot, decided, fmt), output_file)
    elif fmt in ("json", "yaml"):
        emit(document(_json(decided, snapshot.errors), fmt), output_file)
    else:
        emit(_table(decided, show_warnings), output_file)
    if not decided:
        sys.exit(EXIT_USAGE)
    if any(not d.allowed for _, _, d in decided):
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_USAGE if bad or snapshot.errors else EXIT_OK)


def _verdict(d: Any) -> str:
    if not d.allowed:
        return "DENIED"
    if d.reason.startswith("exempt"):
        return "EXEMPT"
    return "WARNED" if d.warned else "ALLOWED"


def _table(rows: list[tuple[Any, Any, Any]], show_warnings: bool) -> str:
    from ..admission.decide import finding_line
    from ..formats.paths import Paths

    paths = Paths()  # file names as every table shows them (the demo's relative to its folder)
    out: list[str] = []
    counts: dict[str, int] = {}
    for res, _, d in rows:
        verdict = _verdict(d)
        counts[verdict] = counts.get(verdict, 0) + 1
        where = paths.where(res.location()) if str(res.location()) else ""
        out.append(printable(f"{verdict:<8} {res.ref()}" + (f"  ({where})" if where else "")
                             + (f"  policy {d.policy.describe()}" if d.policy is not None else f"  {d.reason}")
                             + (f"  {len(d.warned)} warning(s)" if d.warned and not show_warnings else "")))
        out += [f"  deny  {finding_line(f)}" for f in d.denied]
        if show_warnings:
            out += [f"  warn  {finding_line(f)}" for f in d.warned]
        if d.message and not d.denied:
            out.append(f"  {printable(d.message)}")
    summary = ", ".join(f"{n} {v.lower()}" for v, n in sorted(counts.items()))
    out.append(f"{len(rows)} object(s): {summary}")
    return "\n".join(out) + "\n"


def _json(rows: list[tuple[Any, Any, Any]], errors: Any) -> dict[str, Any]:
    items = []
    for res, request, d in rows:
        entry: dict[str, Any] = {"object": res.ref().to_json(), "allowed": d.allowed, "decision": d.reason,
                                 "denied": [f.to_json() for f in d.denied], "warned": [f.to_json() for f in d.warned],
                                 "response": d.response(request["uid"])}
        where = res.location().json_entry()
        if where is not None:
            entry[where[0]] = where[1]
        items.append(entry)
    return {"schemaVersion": "1", "decisions": items, "errors": [e.to_json() for e in errors]}


def _render_findings(snapshot: Any, rows: list[tuple[Any, Any, Any]], fmt: str) -> str:
    """The denied and warned findings as one Report, through the formats every judging command shares."""
    from ..findings import Report
    from ..formats import render

    findings = [f for _, _, d in rows for f in (*d.denied, *d.warned)]
    report = Report(objects=len(rows), findings=findings, errors=list(snapshot.errors))
    return render(report, fmt)


@group.command("manifests")
@click.option("--namespace", "namespace", default="kubeward", show_default=True, callback=namespace_name,
              help="Namespace of the webhook (exempt from it, with kube-system).")
@click.option("--fail-policy", type=click.Choice(["Fail", "Ignore"]), default="Fail", show_default=True,
              help="What the apiserver does when the webhook cannot answer.")
@click.option("--timeout", type=click.IntRange(1, 30), default=10, show_default=True, metavar="SECONDS",
              help="timeoutSeconds of the webhook (the API allows 1 to 30).")
@click.option("--image", default=None, help="Container image (default: ghcr.io/kubeward/kubeward:<version>).")
@click.option("--tls-dir", type=click.Path(file_okay=False), default=None,
              help="Generate a CA and the serving certificate here (kubeward's PKI) and put the CA in caBundle.")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CA that signed the serving certificate you provide (PEM).")
@click.option("--cert-manager", is_flag=True, help="A cert-manager Issuer and Certificate; the CA injected by it.")
@click.option("--client-ca", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Require the apiserver's client certificate, signed by this CA (PEM; mutual TLS): the CA goes "
                   "in a ConfigMap, the probes become TCP probes.")
@click.option("--force", is_flag=True, help="Overwrite files in --tls-dir.")
def manifests_cmd(namespace: str, fail_policy: str, timeout: int, image: str | None, tls_dir: str | None,
                  ca_bundle: str | None, cert_manager: bool, client_ca: str | None, force: bool) -> None:
    """The in-cluster webhook as YAML: Deployment (2 replicas, PSS restricted), least RBAC, PDB, Service,
    NetworkPolicy, quota, and the ValidatingWebhookConfiguration. It passes `kubeward scan`.

    \b
    No Secret is printed. With --tls-dir, load the generated pair with
      kubectl -n NS create secret tls kubeward-admission-tls --cert DIR/tls.crt --key DIR/tls.key
    With --client-ca, give the apiserver a client certificate for the webhook (see `kubeward docs admission`).
    """
    from pathlib import Path

    import yaml

    from ..admission.manifests import NAME, manifests, serving_certificate
    from ..pki.errors import PkiError
    from ..pki.files import write_files

    if sum(x is not None and x is not False for x in (tls_dir, ca_bundle, cert_manager or None)) != 1:
        fail("admission manifests: give one of --tls-dir, --ca-bundle or --cert-manager (the webhook's certificate)")
    bundle: bytes | None = None
    if tls_dir is not None:
        ca, crt, key = serving_certificate(namespace)
        d = Path(tls_dir)
        try:
            write_files([(d / "ca.crt", ca, 0o644), (d / "tls.crt", crt, 0o644), (d / "tls.key", key, 0o600)],
                        force=force)
        except PkiError as exc:
            fail(str(exc))
        bundle = ca
        warn(f"wrote {d / 'ca.crt'}, {d / 'tls.crt'}, {d / 'tls.key'}; load them with: kubectl -n {namespace} "
             f"create secret tls {NAME}-tls --cert {d / 'tls.crt'} --key {d / 'tls.key'}")
    elif ca_bundle is not None:
        bundle = _pem_certificates(ca_bundle, "--ca-bundle")
    client_bundle = _pem_certificates(client_ca, "--client-ca") if client_ca is not None else None
    kw = {"image": image} if image else {}
    objs = manifests(namespace, fail_policy=fail_policy, timeout=timeout, ca_bundle=bundle,
                     cert_manager=cert_manager, client_ca=client_bundle, **kw)
    if client_bundle is not None:
        warn("the apiserver needs a client certificate now: kubeward docs admission")  # fits 80 columns
    click.echo(yaml.safe_dump_all(objs, sort_keys=False), nl=False)


def _pem_certificates(path: str, option: str) -> bytes:
    """The PEM certificates of a CA file given to `admission manifests`, re-encoded (so a key in the same file is
    left out); a file without one is one line naming it (pki.files.load_certs)."""
    from pathlib import Path

    from ..pki.errors import PkiError
    from ..pki.files import cert_pem, load_certs

    try:
        return b"".join(cert_pem(c) for c in load_certs(Path(path)))
    except PkiError as exc:
        fail(f"{exc} ({option})")  # the error names the file


@group.command("vap")
@_config_option
@click.option("--controls", "controls", default=None, metavar="ID,…",
              help="Export only these controls (comma-separated; default: the config's selection).")
def vap(config_file: str | None, controls: str | None) -> None:
    """The controls CEL can express, as ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding objects
    (admissionregistration.k8s.io/v1): a Deny, a Warn and an Audit policy per place of the pod spec, each applying
    a control at or above the namespace's threshold for that mode (its kubeward.io/enforce|warn|audit label, else
    the config's default), as the webhook does. Controls without a CEL form are listed on stderr and in the
    output's first comment. See `kubeward docs admission`.
    """
    from dataclasses import replace

    import yaml

    from ..admission.config import ConfigError, load_admission_config
    from ..admission.vap import export
    from ..controls.registry import SelectionError

    try:
        cfg = load_admission_config(config_file)
        if controls is not None:
            ids = tuple(i.strip() for i in controls.split(",") if i.strip())
            if not ids:
                fail("admission vap: --controls: no control id given")
            cfg = replace(cfg, include=ids)
        out = export(cfg)
    except (ConfigError, SelectionError) as exc:
        fail(str(exc))
    lines = [f"# kubeward admission vap: {len(out.exported)} control(s) exported: "
             + (", ".join(c.meta.id for c in out.exported) or "none")]
    if out.not_expressed:
        ids_text = ", ".join(c.meta.id for c in out.not_expressed)
        warn(f"admission vap: {len(out.not_expressed)} control(s) not expressed in CEL (enforce them with "
             f"`admission serve`): {ids_text}")
        lines.append(f"# not expressed in CEL ({len(out.not_expressed)}): {ids_text}")
    if out.dormant:
        ids_text = ", ".join(c.meta.id for c in out.dormant)
        warn(f"admission vap: below every default threshold (acting only in namespaces whose kubeward.io/* labels "
             f"lower one): {ids_text}")
        lines.append(f"# below every default threshold, acting only where namespace labels lower one: {ids_text}")
    click.echo("\n".join(lines))
    if out.objects:
        click.echo(yaml.safe_dump_all(out.objects, sort_keys=False, width=1 << 16), nl=False)
    if not out.exported:
        sys.exit(EXIT_USAGE)


@group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback unless you say otherwise, e.g. 0.0.0.0 in a pod).")
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True)
@serving_tls_options("Server", client_ca_help="Require client certificates signed by this CA: the certificate the "
                     "apiserver presents from its admission kubeconfig (AdmissionConfiguration "
                     "ValidatingAdmissionWebhook kubeConfigFile). Without it any client that reaches the port "
                     "may ask for decisions.")
@_config_option
@exceptions_option
@click.option("--kubeconfig", type=click.Path(dir_okay=False),
              help="Watch namespaces (their kubeward.io/* labels) through this kubeconfig; in a pod the service "
                   "account is used without it. Without either, labels come from the config.")
@click.option("--max-body", default="8M", show_default=True, metavar="SIZE", help="Largest AdmissionReview (413).")
@click.option("--max-connections", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--request-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              metavar="SECONDS", help="Deadline for a body to arrive (the apiserver's own timeout is 10s at most "
                                      "by default, timeoutSeconds).")
def serve(host: str, port: int, tls_cert: str, tls_key: str, client_ca: str | None, config_file: str | None,
          exceptions_file: str | None, kubeconfig: str | None, max_body: str, max_connections: int,
          request_timeout: float) -> None:
    """Validating admission webhook (AdmissionReview v1) over HTTPS: POST /validate.

    GET /healthz, /readyz (503 until the namespace watch has listed once), /metrics (Prometheus).
    With --client-ca every client (probes and scrapers too) must present a certificate that CA signed.
    Stops on SIGTERM.
    """
    import os

    from ..admission.namespaces import NamespaceCache, NamespaceWatcher, api_client
    from ..admission.server import AdmissionServer
    from ..httpserve import serve_until_terminated
    from ..outqueue import stderr_log
    from .common import parse_size

    try:
        body_limit = parse_size(max_body)
    except click.BadParameter as exc:
        fail(f"--max-body: {exc}")
    in_cluster = kubeconfig is not None or bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    cache: NamespaceCache | None = None

    def namespaces(cfg: Any) -> Any:
        nonlocal cache
        cache = NamespaceCache(cfg.namespaces)
        return cache

    decider = _decider(config_file, exceptions_file, namespaces)
    tls = serving_tls(tls_cert, tls_key, client_ca)
    log = stderr_log()
    tls.on_problem = log.put
    watcher = None
    if in_cluster:
        try:
            api = api_client(kubeconfig)
        except Exception as exc:  # ConfigException, OSError, YAML errors: the kubeconfig cannot be used
            fail(f"{kubeconfig or 'in-cluster config'}: {str(exc).splitlines()[0] if str(exc) else exc}")
        assert cache is not None
        watcher = NamespaceWatcher(cache, api, on_problem=log.put).start()
    try:
        srv = AdmissionServer((host, port), decider, cache=cache if watcher is not None else None, tls=tls,
                              max_body=body_limit, max_connections=max_connections, request_timeout=request_timeout,
                              on_problem=log.put)
    except OSError as exc:
        fail(f"{host}:{port}: {exc.strerror or exc}")
    warn(f"serving admission webhook on https://{host}:{srv.server_address[1]}/validate "
         f"({len(decider.controls)} controls; policy {decider.config.defaults.describe()}; client certificates "
         f"{'required, signed by ' + printable(client_ca) if client_ca else 'not required'})")

    try:
        serve_until_terminated(srv, hard_exit_after=15.0)
    finally:
        if watcher is not None:
            watcher.stop()
    m = srv.metrics
    log.put(f"admission serve: {sum(m.reviews.values())} reviews "
            f"({', '.join(f'{k} {v}' for k, v in sorted(m.reviews.items())) or 'none'}), "
            f"{sum(m.errors.values())} bad requests, {srv.connection_errors} connection errors")
    log.close(5.0)
