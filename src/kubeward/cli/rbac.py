"""`kubeward rbac`: can-i, who-can, matrix, risks and paths over manifests (the RBAC engine's front door)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

import click
import orjson

from ..engines.rbac import RBACIndex, Request, user_info
from ..engines.rbac.matrix import BUILTIN, VERBS, access_matrix
from ..findings import Severity
from ..identity import SA_PREFIX, UserInfo
from ..snapshot import Snapshot
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    INPUT_NAMESPACE,
    emit,
    fail,
    fail_on_type,
    input_namespace,
    input_namespace_option,
    load_snapshot,
    parse_fail_on,
    print_errors,
    severity_type,
    warn,
)
from .live import live_options, live_request

CLUSTER_SCOPED = {(g, r) for g, r, namespaced in BUILTIN if not namespaced}


def _no_builtin(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta["kubeward.rbac.builtin_roles"] = not value
    return value


def source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """`-f PATH` (repeatable; files, folders, '-') or `--cluster [--context C] [--kubeconfig F]`."""
    f = live_options(f)
    f = click.option("--no-builtin-roles", is_flag=True, expose_value=False, callback=_no_builtin,
                     help="Do not supply bootstrap ClusterRoles (cluster-admin, admin, edit, view, …) "
                          "that the input binds without defining.")(f)
    f = click.option("--max-file-size", default="16M", show_default=True, metavar="SIZE",
                     help="Refuse input files larger than this.")(f)
    f = click.option("-f", "--filename", "paths", multiple=True, metavar="PATH",
                     help="Manifests: file, folder or '-' for stdin (repeatable).")(f)
    return f


def load_rbac(paths: tuple[str, ...], max_file_size: str) -> tuple[Snapshot, RBACIndex]:
    """The single place RBAC commands get their objects from: files, or the live cluster with --cluster."""
    live = live_request()
    if live is not None:
        if paths:
            fail("--cluster reads a live cluster: give no -f with it")
        if click.get_current_context().meta.get(INPUT_NAMESPACE):
            fail("-n/--namespace places file inputs; it does not apply to --cluster")
        from ..sources.cluster import RBAC_TYPES
        from .live import load_cluster_cli

        snapshot = load_cluster_cli(*live, RBAC_TYPES)
        if snapshot.not_assessed:
            fail(f"cluster {snapshot.context}: cannot read every RBAC type; answers would be guesses")
        # A live cluster has every bootstrap role it binds; never add offline defaults to it.
        index = RBACIndex.from_snapshot(snapshot, builtin_roles=False)
        for p in index.problems:
            warn(p)
        return snapshot, index
    if not paths:
        fail("no input: give -f PATH (file, folder or '-')")
    # `-n` of risks/paths is kubectl's for the inputs; the request `-n` of can-i, who-can and matrix, when given,
    # also places namespace-less inputs there (as `kubectl apply -n NS` would have) but refuses nothing.
    ns, enforce = input_namespace("namespace")
    snapshot = load_snapshot(paths, max_file_size, namespace=ns, enforce_namespace=enforce)
    print_errors(snapshot.errors)
    if len(snapshot) == 0:
        if snapshot.errors:  # already said, one line per input
            sys.exit(EXIT_USAGE)
        fail(f"{', '.join(paths)}: no Kubernetes objects found")
    builtin = click.get_current_context().meta.get("kubeward.rbac.builtin_roles", True)
    index = RBACIndex.from_snapshot(snapshot, builtin_roles=builtin)
    gc.collect()
    gc.freeze()  # the snapshot and index live until exit: spare them from every later collection
    for p in index.problems:
        warn(p)
    return snapshot, index


def subject_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--sa", "sa", metavar="NS/NAME", help="Act as this service account.")(f)
    f = click.option("--as-group", "as_groups", multiple=True, metavar="GROUP",
                     help="Groups of the user (repeatable).")(f)
    f = click.option("--as", "as_user", metavar="USER", help="The user to ask about.")(f)
    return f


def resolve_user(as_user: str | None, as_groups: tuple[str, ...], sa: str | None) -> UserInfo:
    if sa:
        ns, sep, name = sa.partition("/")
        if not sep or not ns or not name:
            fail(f"--sa {sa}: expected NAMESPACE/NAME")
        if as_user:
            fail("--as and --sa are mutually exclusive")
        as_user = f"{SA_PREFIX}{ns}:{name}"
    if not as_user:
        fail("give --as USER (or --sa NS/NAME): offline there is no current user")
    return user_info(as_user, as_groups)


def namespace_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-A", "--all-namespaces", "cluster", is_flag=True,
                     help="Cluster scope (namespace \"\"): only ClusterRoleBindings apply.")(f)
    f = click.option("-n", "--namespace", default="default", show_default=True, help="Namespace of the request.")(f)
    return f


def build_request(verb: str, target: str, name: str | None, namespace: str, cluster: bool,
                  api_group: str | None) -> Request:
    """kubectl auth can-i argument forms: VERB /url, or VERB RESOURCE[.GROUP][/SUBRESOURCE] [NAME]."""
    if target.startswith("/"):
        if name:
            fail(f"{target}: a non-resource URL takes no name")
        return Request.non_resource(verb, target)
    res, _, sub = target.partition("/")
    group = api_group
    if group is None:
        res, _, group = res.partition(".")  # resource names carry no dots: the rest is the group
    if not res:
        fail(f"{target}: no resource")
    ns = "" if cluster or (group, res) in CLUSTER_SCOPED else namespace
    return Request(verb, res, sub, group or "", ns, name or "")


@click.group("rbac")
def group() -> None:
    """RBAC as the kube-apiserver decides it, offline: can-i, who-can, matrix, risks, escalation paths."""


@group.command("can-i")
@click.argument("verb")
@click.argument("target", metavar="RESOURCE[/SUB]|/URL")
@click.argument("name", required=False)
@namespace_options
@click.option("--api-group", default=None, help="API group of the resource (core is \"\").")
@subject_options
@click.option("--explain", is_flag=True, help="Show the binding, role and rule that decide it.")
@source_options
def can_i(verb: str, target: str, name: str | None, namespace: str, cluster: bool, api_group: str | None,
          as_user: str | None, as_groups: tuple[str, ...], sa: str | None, explain: bool,
          paths: tuple[str, ...], max_file_size: str) -> None:
    """Print yes or no, exit 0 or 1, as `kubectl auth can-i` does.

    \b
    kubeward rbac can-i create pods -n dev --as jane -f cluster/
    kubeward rbac can-i get /healthz --as system:anonymous -f rbac.yaml
    """
    user = resolve_user(as_user, as_groups, sa)
    req = build_request(verb, target, name, namespace, cluster, api_group)
    _, index = load_rbac(paths, max_file_size)
    decision = index.authorize(user, req)
    click.echo("yes" if decision.allowed else "no")
    if explain:
        click.echo(f"request: {req}")
        click.echo(f"user: {user.name} groups: {', '.join(user.groups) or '(none)'}")
        if decision.allowed and decision.binding is not None:
            click.echo(f"binding: {decision.binding.describe()}")
            builtin = decision.binding.role_kind == "ClusterRole" and decision.binding.role_name in index.builtin
            click.echo(f"role: {decision.role}" + (" (built-in bootstrap role, not in the input)" if builtin else ""))
            click.echo(f"rule: {decision.rule}")
        elif decision.allowed:
            click.echo(decision.reason)
        else:
            click.echo("no RBAC rule allows it (RBAC has no opinion, so the request is forbidden)")
        for e in decision.errors:
            click.echo(f"error: {e}")
    sys.exit(EXIT_OK if decision.allowed else EXIT_FINDINGS)


@group.command("who-can")
@click.argument("verb")
@click.argument("target", metavar="RESOURCE[/SUB]|/URL")
@click.argument("name", required=False)
@namespace_options
@click.option("--api-group", default=None, help="API group of the resource (core is \"\").")
@click.option("-o", "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@source_options
def who_can(verb: str, target: str, name: str | None, namespace: str, cluster: bool, api_group: str | None,
            fmt: str, output_file: str | None, paths: tuple[str, ...], max_file_size: str) -> None:
    """List the subjects allowed to do it, as the apiserver's subject locator does (system:masters first).

    \b
    kubeward rbac who-can get secrets -n prod -f cluster/ -o json
    """
    req = build_request(verb, target, name, namespace, cluster, api_group)
    _, index = load_rbac(paths, max_file_size)
    allowed = index.allowed_subjects(req)
    for e in allowed.errors:
        warn(e)
    subjects: list[dict[str, str]] = []
    seen: set[tuple[str, ...]] = set()
    for s, bns in allowed.subjects:
        d = s.to_json(bns)
        key = tuple(d.values())
        if key not in seen:
            seen.add(key)
            subjects.append(d)
    via = [{"binding": g.binding.ref(), "role": {"kind": g.role[0], "name": g.role[2],
                                                  **({"namespace": g.role[1]} if g.role[1] else {})},
            "rule": _rule_json(index, g, req), "subjects": [s.to_json(g.binding.namespace) for s in g.binding.subjects]}
           for g in allowed.via]
    if fmt == "json":
        emit(orjson.dumps({"subjects": subjects, "via": via}, option=orjson.OPT_INDENT_2).decode() + "\n",
             output_file)
        return
    rows = [("KIND", "NAME", "NAMESPACE", "VIA")]
    rows.append(("Group", "system:masters", "", "privileged group (outside RBAC)"))
    for g in allowed.via:
        for s in g.binding.subjects:
            d = s.to_json(g.binding.namespace)
            rows.append((d["kind"], d["name"], d.get("namespace", ""), g.binding.describe()))
    emit(_table(rows), output_file)


@group.command("matrix")
@subject_options
@click.option("-n", "--namespace", default="", help="Namespaced resources in this namespace (default: cluster scope).")
@click.option("--verbs", default=",".join(VERBS), show_default=True, help="Comma-separated verbs (columns).")
@click.option("-o", "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@source_options
def matrix(as_user: str | None, as_groups: tuple[str, ...], sa: str | None, namespace: str, verbs: str, fmt: str,
           output_file: str | None, paths: tuple[str, ...], max_file_size: str) -> None:
    """Resources × verbs for one subject, like rakkess (access-matrix).

    \b
    kubeward rbac matrix --sa dev/builder -n dev -f cluster/
    """
    user = resolve_user(as_user, as_groups, sa)
    verb_list = tuple(v.strip() for v in verbs.split(",") if v.strip())
    _, index = load_rbac(paths, max_file_size)
    rows = access_matrix(index, user, namespace, verb_list)
    if fmt == "json":
        data = {"user": user.name, "groups": list(user.groups), "namespace": namespace,
                "resources": [{"apiGroup": r.group, "resource": r.resource, "namespaced": r.namespaced,
                               "verbs": r.allowed} for r in rows]}
        emit(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n", output_file)
        return
    table = [("NAME", *(v.upper() for v in verb_list))]
    for r in rows:
        table.append((r.label, *("✔" if r.allowed[v] else "✖" for v in verb_list)))
    emit(_table(table), output_file)


@group.command("risks")
@click.option("--include-defaults", is_flag=True,
              help="Also judge the bootstrap policy (kubernetes.io/bootstrapping=rbac-defaults) and system:masters.")
@click.option("--min-severity", type=severity_type(), default="low", show_default=True)
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True,
              help="Exit 1 when a risk at or above this severity exists.")
@click.option("-o", "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@source_options
@input_namespace_option(expose=False)
def risks(include_defaults: bool, min_severity: str, fail_on: str, fmt: str, output_file: str | None,
          paths: tuple[str, ...], max_file_size: str) -> None:
    """Risky permissions per subject (rbac-police and KubiScan categories), the binding path, and the pods
    that run as each risky service account.

    \b
    kubeward rbac risks -f cluster/ -o json
    """
    from ..engines.rbac.risks import find_risks
    from ..engines.rbac.workloads import pods_by_service_account

    snapshot, index = load_rbac(paths, max_file_size)
    found = find_risks(index, pods_by_service_account(snapshot), include_defaults=include_defaults,
                       min_severity=Severity.parse(min_severity))
    if fmt == "json":
        emit(orjson.dumps({"risks": [r.to_json() for r in found]}, option=orjson.OPT_INDENT_2).decode() + "\n",
             output_file)
    else:
        rows = [("SEVERITY", "SUBJECT", "SCOPE", "RISK", "VIA", "PODS")]
        for r in found:
            pods = ", ".join(str(p) for p in r.pods[:3]) + (f" (+{len(r.pods) - 3})" if len(r.pods) > 3 else "")
            rows.append((r.severity.label, r.subject_text, r.namespace or "cluster", r.category.id,
                         "; ".join(p.describe() for p in r.paths), pods))
        emit(_table(rows) if found else "no risky permissions found\n", output_file)
    worst = parse_fail_on(fail_on)
    sys.exit(EXIT_FINDINGS if any(r.severity >= worst for r in found) else EXIT_OK)


@group.command("paths")
@click.option("--from", "start", metavar="SUBJECT",
              help='Only paths from this subject, e.g. "ServiceAccount dev/ci" or "User jane".')
@click.option("--include-defaults", is_flag=True,
              help="Also list paths whose first step comes from the bootstrap policy (controllers' own grants).")
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@source_options
@input_namespace_option(expose=False)
def paths_cmd(start: str | None, include_defaults: bool, fmt: str, output_file: str | None, paths: tuple[str, ...],
              max_file_size: str) -> None:
    """Privilege-escalation paths to cluster-admin, one per line; exit 1 when any exists.

    \b
    kubeward rbac paths -f cluster/
    """
    from ..engines.rbac.paths import escalation_paths

    snapshot, index = load_rbac(paths, max_file_size)
    found = escalation_paths(index, snapshot, start)
    if not include_defaults:  # kube-system controllers create pods everywhere by design (bootstrappolicy)
        found = [p for p in found if p.first_binding is None or not p.first_binding.bootstrap]
    if fmt == "json":
        emit(orjson.dumps({"paths": [p.to_json() for p in found]}, option=orjson.OPT_INDENT_2).decode() + "\n",
             output_file)
    else:
        emit("".join(f"{p}\n" for p in found) or "no escalation paths found\n", output_file)
    sys.exit(EXIT_FINDINGS if found else EXIT_OK)


def _rule_json(index: RBACIndex, grant: Any, req: Request) -> dict[str, list[str]]:
    found = index.rule_for(grant, req)
    return found[1].to_json() if found else {}


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows)
