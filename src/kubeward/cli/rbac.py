"""`kubeward rbac`: can-i, who-can, matrix, risks and paths over manifests (the RBAC engine's front door)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from ..discovery import RESTMapper, mapper_for
from ..engines.rbac import RBACIndex, Request, user_info
from ..engines.rbac.matrix import VERBS, access_matrix, matrix_resources
from ..findings import Severity
from ..formats import DOCUMENTS, document
from ..identity import SubjectError, SubjectRef, UserInfo, parse_subject, settle_kind
from ..snapshot import Snapshot
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    INPUT_NAMESPACE,
    emit,
    fail,
    fail_on_type,
    format_option,
    input_namespace,
    input_namespace_option,
    input_options,
    load_snapshot,
    parse_fail_on,
    print_errors,
    severity_type,
    warn,
)
from .live import live_options, live_request


def _no_bootstrap(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["kubeward.rbac.bootstrap"] = False
    return value


def _k8s_version(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from ..apidata import UnsupportedVersion, normalise_version

    try:
        ctx.meta["kubeward.rbac.k8s_version"] = normalise_version(value)
    except UnsupportedVersion as exc:
        fail(str(exc))
    return value


def source_options(f: Callable[..., Any] | None = None, *, positional: bool = True) -> Any:
    """Inputs as every group takes them (positional PATHs, `-f PATH`, `--demo`; -f only where the positional
    arguments are the request) or `--cluster [--context C] [--kubeconfig F]`."""
    from ..apidata import supported_versions

    def decorate(g: Callable[..., Any]) -> Callable[..., Any]:
        g = live_options(g)
        g = click.option("--no-builtin-roles", is_flag=True, expose_value=False, callback=_no_bootstrap,
                         hidden=True, help="Old name of --no-bootstrap-policy.")(g)
        g = click.option("--no-bootstrap-policy", is_flag=True, expose_value=False, callback=_no_bootstrap,
                         help="Judge the input alone, without the bootstrap ClusterRoles and bindings every "
                              "kube-apiserver creates (system:discovery, cluster-admin, admin/edit/view, …).")(g)
        g = click.option("--k8s-version", metavar="VERSION", expose_value=False, callback=_k8s_version,
                         is_eager=True,
                         help=f"Kubernetes version of the API discovery and bootstrap policy, as for scan "
                              f"(have: {', '.join(supported_versions())}; default: the newest).")(g)
        g = input_options(g, positional=positional)
        return g

    return decorate(f) if f is not None else decorate


def load_rbac(paths: tuple[str, ...], max_file_size: str, types: Sequence[Any] | None = None,
              ) -> tuple[Snapshot, RBACIndex]:
    """The single place RBAC commands get their objects from: files, or the live cluster with --cluster (the RBAC
    types, or `types` for a command that reads more, such as `paths`)."""
    live = live_request()
    snapshot: Snapshot  # a ClusterSnapshot for --cluster
    if live is not None:
        if paths:
            fail("--cluster reads a live cluster: give no paths, -f or --demo with it")
        if click.get_current_context().meta.get(INPUT_NAMESPACE):
            fail("-n/--namespace places file inputs; it does not apply to --cluster")
        from ..sources.cluster import RBAC_TYPES
        from .live import load_cluster_cli

        snapshot = load_cluster_cli(*live, types or RBAC_TYPES)
        if snapshot.not_assessed:
            what = "RBAC type" if types is None else "type it needs"
            fail(f"cluster {snapshot.context}: cannot read every {what}; answers would be guesses")
        # A live cluster has every bootstrap role it binds; never add offline defaults to it.
        index = RBACIndex.from_snapshot(snapshot, builtin_roles=False)
        _live_discovery(*live)
        for p in index.problems:
            warn(p)
        return snapshot, index
    if not paths:
        fail("no input: give -f PATH (file, folder or '-') or --demo")
    # `-n` of risks/paths is kubectl's for the inputs; the request `-n` of can-i, who-can and matrix, when given,
    # also places namespace-less inputs there (as `kubectl apply -n NS` would have) but refuses nothing.
    ns, enforce = input_namespace("namespace")
    snapshot = load_snapshot(paths, max_file_size, namespace=ns, enforce_namespace=enforce)
    print_errors(snapshot.errors)
    if len(snapshot) == 0:
        if snapshot.errors:  # already said, one line per input
            sys.exit(EXIT_USAGE)
        fail(f"{', '.join(paths)}: no Kubernetes objects found")
    meta = click.get_current_context().meta
    index = RBACIndex.from_snapshot(snapshot, builtin_roles=meta.get("kubeward.rbac.bootstrap", True),
                                    k8s_version=meta.get("kubeward.rbac.k8s_version"))
    gc.collect()
    gc.freeze()  # the snapshot and index live until exit: spare them from every later collection
    for p in index.problems:
        warn(p)
    return snapshot, index


def _live_discovery(kubeconfig: str | None, context: str | None) -> None:
    """With --cluster, resource names resolve through the cluster's own discovery (CRDs and aggregated APIs
    included), as kubectl against it would; if discovery cannot be read, the shipped data is used and said."""
    from ..apidata import fetch_discovery
    from ..sources.cluster import Client, ClusterError

    try:
        doc = fetch_discovery(Client(kubeconfig, context))
    except (ClusterError, RuntimeError, KeyError, TypeError) as exc:
        warn(f"cluster discovery not readable ({exc}); resource names resolve through the shipped discovery")
        return
    click.get_current_context().meta["kubeward.rbac.mapper"] = RESTMapper.from_discovery(doc)


def rbac_mapper(snapshot: Snapshot) -> RESTMapper:
    """The API discovery of --k8s-version plus the input's CustomResourceDefinitions (kubeward.discovery), or the
    live cluster's discovery with --cluster."""
    meta = click.get_current_context().meta
    live = meta.get("kubeward.rbac.mapper")
    if isinstance(live, RESTMapper):
        return live
    return mapper_for(snapshot, meta.get("kubeward.rbac.k8s_version"))


def subject_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--sa", "sa", metavar="NS/NAME", help="Act as this service account.")(f)
    f = click.option("--as-group", "as_groups", multiple=True, metavar="GROUP",
                     help="Groups of the user (repeatable).")(f)
    f = click.option("--as", "as_user", metavar="SUBJECT",
                     help="The user to ask about: NAME, User:NAME, ServiceAccount:NS:NAME, NS/NAME or "
                          "system:serviceaccount:NS:NAME.")(f)
    return f


def _subject(option: str, text: str) -> SubjectRef:
    try:
        return parse_subject(text)
    except SubjectError as exc:
        fail(f"{option}: {exc}")


def resolve_user(as_user: str | None, as_groups: tuple[str, ...], sa: str | None) -> UserInfo:
    """--as / --sa through the one subject parser (identity.parse_subject); a bare --as name is a user, as
    kubectl's --as is."""
    if sa and as_user:
        fail("--as and --sa are mutually exclusive")
    if sa:
        ref = _subject("--sa", sa)
        if not ref.kind and sa.count(":") == 1:  # NS:NAME, as audit2rbac --serviceaccount takes it
            ref = _subject("--sa", "ServiceAccount:" + sa)
        if ref.kind != "ServiceAccount":
            fail(f"--sa {sa}: expected NAMESPACE/NAME (or ServiceAccount:NAMESPACE:NAME)")
        return user_info(ref.username, as_groups)
    if not as_user:
        fail("give --as USER (or --sa NS/NAME): offline there is no current user")
    ref = _subject("--as", as_user)
    if ref.kind == "Group":
        fail(f"--as {as_user}: --as names a user; give a group with --as-group {ref.name} (and any --as name)")
    return user_info(ref.username or ref.name, as_groups)


def named_subjects(index: RBACIndex) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every subject some binding names; service accounts with their namespace."""
    out: set[tuple[str, str, str]] = set()
    for b in index.bindings:
        for s in b.subjects:
            if s.kind == "ServiceAccount":
                out.add(("ServiceAccount", s.namespace or b.namespace, s.name))
            elif s.kind in ("User", "Group"):
                out.add((s.kind, "", s.name))
    return out


def note_unbound(index: RBACIndex, user: UserInfo, explicit_groups: tuple[str, ...]) -> None:
    """Say plainly when no binding names the user nor any group it was given (the answer comes from the
    groups every user has, or nothing)."""
    named = named_subjects(index)
    try:
        ref = parse_subject(user.name)
    except SubjectError:  # a user name that only looks like a service account's: a plain user
        ref = SubjectRef("User", user.name)
    kind_ns = ("ServiceAccount", ref.namespace, ref.name) if ref.kind == "ServiceAccount" else ("User", "", user.name)
    if kind_ns in named or any(("Group", "", g) in named for g in explicit_groups):
        return
    warn(f"no RoleBinding or ClusterRoleBinding names {SubjectRef(kind_ns[0], kind_ns[2], kind_ns[1])}"
         + (f" or its groups {', '.join(explicit_groups)}" if explicit_groups else ""))


def namespace_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-A", "--all-namespaces", "cluster", is_flag=True,
                     help="Cluster scope (namespace \"\"): only ClusterRoleBindings apply.")(f)
    f = click.option("-n", "--namespace", default="default", show_default=True, help="Namespace of the request.")(f)
    return f


def build_request(mapper: RESTMapper, verb: str, target: str, name: str | None, namespace: str, cluster: bool,
                  api_group: str | None, subresource: str | None = None) -> Request:
    """kubectl auth can-i argument forms: VERB /url, or VERB RESOURCE[/SUBRESOURCE] [NAME] where RESOURCE is
    resolved through discovery as kubectl resolves it (kubeward.discovery: plural, singular, short name, Kind,
    resource.group, resource.version.group, CRDs of the input). An unknown type gets kubectl's warning and is
    asked as written. `--api-group G` takes RESOURCE literally in group G (no resolution)."""
    if target.startswith("/"):
        if name:
            fail(f"{target}: a non-resource URL takes no name")
        if subresource:
            fail("--subresource can not be used with a non-resource URL")
        return Request.question(verb, path=target)
    res, slash, sub = target.partition("/")
    if slash and subresource:
        fail(f"{target}: give the subresource once (RESOURCE/SUB or --subresource)")
    sub = sub or subresource or ""
    if not res:
        fail(f"{target}: no resource")
    if api_group is not None:
        entry = mapper.lookup(api_group, res)
        group, resource, namespaced = api_group, res, entry.namespaced if entry is not None else True
    else:
        resolved = mapper.resolve(res)
        if resolved.warning:
            click.echo(f"Warning: {resolved.warning}", err=True)  # kubectl's WarningPrinter line
        group, resource, namespaced = resolved.group, resolved.resource, resolved.namespaced
        if sub and resolved.known and resource != "*" and not mapper.has_subresource(group, resource, sub):
            click.echo(f"Warning: the server doesn't have a subresource '{sub}' of '{resolved.label}'", err=True)
    ns = "" if cluster or not namespaced else namespace
    return Request.question(verb, resource, sub, group, ns, name or "")


@click.group("rbac")
def group() -> None:
    """RBAC as the kube-apiserver decides it, offline: can-i, who-can, matrix, risks, escalation paths."""


@group.command("can-i")
@click.argument("verb")
@click.argument("target", metavar="RESOURCE[/SUB]|/URL")
@click.argument("name", required=False)
@namespace_options
@click.option("--api-group", default=None, help="API group of the resource, taken literally (core is \"\").")
@click.option("--subresource", default=None, metavar="SUB", help="Subresource, as kubectl's flag (e.g. log).")
@subject_options
@click.option("--explain", is_flag=True, help="Show the binding, role and rule that decide it.")
@source_options(positional=False)
def can_i(verb: str, target: str, name: str | None, namespace: str, cluster: bool, api_group: str | None,
          subresource: str | None, as_user: str | None, as_groups: tuple[str, ...], sa: str | None, explain: bool,
          paths: tuple[str, ...], max_file_size: str) -> None:
    """Print yes or no, exit 0 or 1, as `kubectl auth can-i` does.

    \b
    kubeward rbac can-i create pods -n dev --as jane -f cluster/
    kubeward rbac can-i get /healthz --as system:anonymous -f rbac.yaml
    """
    user = resolve_user(as_user, as_groups, sa)
    snapshot, index = load_rbac(paths, max_file_size)
    req = build_request(rbac_mapper(snapshot), verb, target, name, namespace, cluster, api_group, subresource)
    note_unbound(index, user, as_groups)
    decision = index.authorize(user, req)
    click.echo("yes" if decision.allowed else "no")
    if explain:
        click.echo(f"request: {req}")
        click.echo(f"user: {user.name} groups: {', '.join(user.groups) or '(none)'}")
        if decision.allowed and decision.binding is not None:
            click.echo(f"binding: {decision.binding.describe()}")
            builtin = decision.binding.role_kind == "ClusterRole" and decision.binding.role_name in index.builtin
            click.echo(f"role: {decision.role}" + (" (bootstrap policy, not in the input)" if builtin else ""))
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
@click.option("--api-group", default=None, help="API group of the resource, taken literally (core is \"\").")
@click.option("--subresource", default=None, metavar="SUB", help="Subresource, as kubectl's flag (e.g. log).")
@format_option(("table", *DOCUMENTS), "rbac who-can")
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@source_options(positional=False)
def who_can(verb: str, target: str, name: str | None, namespace: str, cluster: bool, api_group: str | None,
            subresource: str | None, fmt: str, output_file: str | None, paths: tuple[str, ...],
            max_file_size: str) -> None:
    """List the subjects allowed to do it, as the apiserver's subject locator does (system:masters first).

    \b
    kubeward rbac who-can get secrets -n prod -f cluster/ -o json
    """
    snapshot, index = load_rbac(paths, max_file_size)
    req = build_request(rbac_mapper(snapshot), verb, target, name, namespace, cluster, api_group, subresource)
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
    if fmt in DOCUMENTS:
        emit(document({"subjects": subjects, "via": via}, fmt), output_file)
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
@click.option("-A", "--all-namespaces", "cluster", is_flag=True,
              help="Cluster scope, the default (as can-i's -A): every resource, granted in every namespace.")
@click.option("--verbs", default=",".join(VERBS), show_default=True, help="Comma-separated verbs (columns).")
@format_option(("table", *DOCUMENTS), "rbac matrix")
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@source_options
def matrix(as_user: str | None, as_groups: tuple[str, ...], sa: str | None, namespace: str, cluster: bool, verbs: str,
           fmt: str, output_file: str | None, paths: tuple[str, ...], max_file_size: str) -> None:
    """Resources × verbs for one subject, like rakkess (access-matrix).

    \b
    kubeward rbac matrix --sa dev/builder -n dev -f cluster/
    kubeward rbac matrix --sa dev/builder -A -f cluster/
    """
    if cluster and namespace:
        raise click.UsageError("-A/--all-namespaces and -n/--namespace exclude each other")
    user = resolve_user(as_user, as_groups, sa)
    verb_list = tuple(v.strip() for v in verbs.split(",") if v.strip())
    snapshot, index = load_rbac(paths, max_file_size)
    note_unbound(index, user, as_groups)
    rows = access_matrix(index, user, namespace, verb_list, matrix_resources(rbac_mapper(snapshot)))
    if fmt in DOCUMENTS:
        data = {"user": user.name, "groups": list(user.groups), "namespace": namespace,
                "resources": [{"apiGroup": r.group, "resource": r.resource, "namespaced": r.namespaced,
                               "verbs": r.allowed} for r in rows]}
        emit(document(data, fmt), output_file)
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
@format_option(("table", *DOCUMENTS), "rbac risks")
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
    if fmt in DOCUMENTS:
        emit(document({"risks": [r.to_json() for r in found]}, fmt), output_file)
    else:
        rows: list[tuple[list[str], ...]] = [(["SEVERITY"], ["SUBJECT"], ["SCOPE"], ["RISK"], ["VIA"], ["PODS"])]
        for r in found:
            pods = [str(p) for p in r.pods[:3]] + ([f"(+{len(r.pods) - 3})"] if len(r.pods) > 3 else [])
            rows.append(([r.severity.label], [r.subject_text], [r.namespace or "cluster"], [r.category.id],
                         [p.describe() for p in r.paths], pods))
        emit(wrapped_table(rows, terminal_width()) if found else "no risky permissions found\n", output_file)
    worst = parse_fail_on(fail_on)
    sys.exit(EXIT_FINDINGS if any(r.severity >= worst for r in found) else EXIT_OK)


@group.command("paths")
@click.option("--from", "start", metavar="SUBJECT",
              help="Only paths from this subject: User:NAME, Group:NAME, ServiceAccount:NS:NAME, NS/NAME, "
                   "system:serviceaccount:NS:NAME, or a bare name that bindings name once.")
@click.option("--include-defaults", is_flag=True,
              help="Also list paths whose first step comes from the bootstrap policy (controllers' own grants).")
@format_option(("text", *DOCUMENTS), "rbac paths")
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
    start_ref = ""
    if start is None:
        found = escalation_paths(index, snapshot, None, include_defaults=include_defaults)
    else:
        start_ref, found = _paths_from(index, snapshot, start, include_defaults)
    if fmt in DOCUMENTS:
        emit(document({"paths": [p.to_json() for p in found]}, fmt), output_file)
    else:
        none = f"no escalation paths found from {start_ref}\n" if start_ref else "no escalation paths found\n"
        emit("".join(f"{p}\n" for p in found) or none, output_file)
    sys.exit(EXIT_FINDINGS if found else EXIT_OK)


def _paths_from(index: RBACIndex, snapshot: Snapshot, text: str, include_defaults: bool) -> tuple[str, list[Any]]:
    """Paths from one typed subject. A name no binding names is said plainly: a bare or Group one is an error
    (exit 2: nothing is known of it); a User or ServiceAccount still inherits its groups' paths."""
    from ..engines.rbac.paths import EscalationPath, Step, escalation_paths
    from ..identity import ALL_SERVICE_ACCOUNTS, AUTHENTICATED

    named = named_subjects(index)
    try:
        ref = settle_kind(parse_subject(text), named)
    except SubjectError as exc:
        fail(f"--from: {exc}")
    if not ref.kind:
        fail(f"--from {text}: no RoleBinding or ClusterRoleBinding names a User, Group or ServiceAccount "
             f"called {text!r}")
    if (ref.kind, ref.namespace, ref.name) in named:
        return str(ref), escalation_paths(index, snapshot, str(ref), include_defaults=include_defaults)
    if ref.kind == "Group":
        fail(f"--from {text}: no RoleBinding or ClusterRoleBinding names {ref}")
    warn(f"no RoleBinding or ClusterRoleBinding names {ref}; only the groups it is in can lead anywhere")
    groups = [AUTHENTICATED]  # authenticated_group_adder.go; service accounts: serviceaccount/util.go
    if ref.kind == "ServiceAccount":
        groups = [f"{ALL_SERVICE_ACCOUNTS}:{ref.namespace}", ALL_SERVICE_ACCOUNTS, AUTHENTICATED]
    best: list[Any] = []
    for g in groups:
        for p in escalation_paths(index, snapshot, f"Group {g}", include_defaults=include_defaults):
            path = EscalationPath(str(ref), (Step(f"Group {g}", "member of"), *p.steps))
            if not best or len(path.steps) < len(best[0].steps):
                best = [path]
    return str(ref), best


def _rule_json(index: RBACIndex, grant: Any, req: Request) -> dict[str, list[str]]:
    found = index.rule_for(grant, req)
    return found[1].to_json() if found else {}


def terminal_width() -> int:
    """The terminal's columns ($COLUMNS, else the tty, else 80), kept within 80..200."""
    import shutil

    return max(80, min(200, shutil.get_terminal_size((80, 24)).columns))


def wrapped_table(rows: list[tuple[list[str], ...]], width: int, gap: int = 2) -> str:
    """A table whose lines fit `width`: each cell is a list of items, each item wrapped at spaces only (a name
    is never broken; one longer than its column overflows it). The widest columns give up space first, never
    below their longest word."""
    import textwrap

    n = len(rows[0])
    if sum(max((len(w) for r in rows for item in r[i] for w in item.split()), default=0)
           for i in range(n)) + gap * (n - 1) > width:
        return _records(rows, width)
    words = [max((len(w) for r in rows for item in r[i] for w in item.split()), default=0) for i in range(n)]
    natural = [max((len(item) for r in rows for item in r[i]), default=0) for i in range(n)]
    widths = list(natural)
    room = width - gap * (n - 1)
    while sum(widths) > room:
        i = max(range(n), key=lambda j: (widths[j] - words[j], widths[j]))
        if widths[i] <= words[i]:
            break  # every column is down to its longest word: overflow rather than break a name
        widths[i] = max(words[i], widths[i] - max(1, (sum(widths) - room) // 2))
    out = []
    for r in rows:
        cells = [[line for item in cell for line in (textwrap.wrap(item, w, break_long_words=False,
                                                                   break_on_hyphens=False) or [""])]
                 for cell, w in zip(r, widths, strict=True)]
        for k in range(max(len(c) for c in cells)):
            parts = [(c[k] if k < len(c) else "").ljust(w) for c, w in zip(cells, widths, strict=True)]
            out.append((" " * gap).join(parts).rstrip() + "\n")
    return "".join(out)


def _records(rows: list[tuple[list[str], ...]], width: int) -> str:
    """The narrow form of `wrapped_table`: one block per row, the first column's item and the rest as labelled
    lines (`SUBJECT: …`), each wrapped at spaces with a hanging indent."""
    import textwrap

    head = [c[0] for c in rows[0]]
    label = max(len(h) for h in head[1:]) + 2
    out = []
    for r in rows[1:]:
        out.append(" ".join(r[0]) + "\n")
        for h, cell in zip(head[1:], r[1:], strict=True):
            for j, item in enumerate(cell):
                lead = f"  {(h.lower() + ':') if j == 0 else '':<{label}}"
                lines = textwrap.wrap(item, max(20, width - len(lead)), break_long_words=False,
                                      break_on_hyphens=False) or [""]
                out += [(lead if k == 0 else " " * len(lead)) + line + "\n" for k, line in enumerate(lines)]
    return "".join(out)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows)
