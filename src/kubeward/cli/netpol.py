"""`kubeward netpol reach|explain|lint|generate|check-flows`: what the NetworkPolicies actually allow."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NoReturn

import click
import yaml

from ..engines.netpol import ClassIndex, decide, from_snapshot
from ..engines.netpol.cluster import Cluster
from ..engines.netpol.flows import Flow, FlowChecker, FlowError, read_flows
from ..engines.netpol.generate import generate as generate_policies
from ..engines.netpol.model import PROTOCOLS, Pod
from ..engines.netpol.ports import PortSpace, describe
from ..formats import DOCUMENTS, FORMATS, document, json_line, render, streamed
from ..formats.reach import reach_json, reach_ports_json
from ..sources.cluster import NETPOL_TYPES
from ..textsafe import escape_control
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    INPUT_NAMESPACE,
    all_namespaces_option,
    answer_output_options,
    emit,
    exit_code,
    fail,
    fail_on_type,
    format_option,
    input_namespace,
    input_namespace_option,
    input_options,
    load_snapshot,
    output_options,
    parse_fail_on,
    print_errors,
    warn,
)
from .live import live_options, live_request, load_cluster_cli


@click.group("netpol")
def group() -> None:
    """NetworkPolicy: reachability matrix, explain one connection, lint, generate from flows, check flows."""


def _ipblock_option(f: Any) -> Any:
    return click.option(
        "--ipblock-matches-pods", type=click.BOOL, default=True, show_default=True, metavar="true|false",
        help="Whether NetworkPolicy ipBlock peers match pod IPs (status.podIPs), as upstream e2e expects; false "
             "for CNIs that apply ipBlock to cluster-external traffic only. AdminNetworkPolicy networks always "
             "match pod IPs (the API defines it).")(f)


def _protocol_option(f: Any) -> Any:
    return click.option("--protocol", type=click.Choice(PROTOCOLS, case_sensitive=False), default="TCP",
                        show_default=True, callback=lambda _c, _p, v: v.upper() if v else v)(f)


def _cluster(paths: tuple[str, ...], max_file_size: str, ipblock_matches_pods: bool) -> tuple[Cluster, int]:
    """The model and the number of inputs it could not take in whole (input errors, objects left out): when
    that is not 0, answers may be wrong, so the command says so and exits 2 after its output."""
    live = live_request()
    if live is not None:
        if paths:
            fail("--cluster reads a live cluster: give no paths with it")
        if click.get_current_context().meta.get(INPUT_NAMESPACE):
            fail("-n/--namespace places file inputs; it does not apply to --cluster")
        snap = load_cluster_cli(*live, NETPOL_TYPES)
        if snap.not_assessed:
            fail(f"cluster {snap.context}: cannot read every type reachability needs; answers would be guesses")
        cluster = from_snapshot(snap, ipblock_matches_pods=ipblock_matches_pods)
        return cluster, _say_notes(cluster)
    if not paths:
        fail("nothing to analyse: give files, folders or '-' for stdin")
    ns, enforce = input_namespace("namespaces")  # reach's -n filters; given once it also places inputs
    snapshot = load_snapshot(paths, max_file_size, namespace=ns, enforce_namespace=enforce)
    print_errors(snapshot.errors)
    if len(snapshot) == 0:
        fail("nothing to analyse: no Kubernetes objects could be read")
    cluster = from_snapshot(snapshot, ipblock_matches_pods=ipblock_matches_pods)
    return cluster, len(snapshot.errors) + _say_notes(cluster)


def _say_notes(cluster: Cluster) -> int:
    """One stderr line per note (objects left out, assumptions); returns how many are errors."""
    for note in cluster.notes:
        warn(str(note))
    return sum(1 for n in cluster.notes if n.error)


def _finish(code: int, incomplete: int, what: str) -> NoReturn:
    """Exit with `code`, or 2 when some input could not be used: a partial model must not pass as a full one."""
    if incomplete:
        fail(f"{what}: {incomplete} input error(s) above: the answer leaves out what could not be read")
    sys.exit(code)


@contextmanager
def _sink(output_file: str | None) -> Iterator[IO[str]]:
    """stdout or a file, written incrementally (the full JSON matrix can be 10^8 pairs)."""
    if not output_file:
        yield sys.stdout
        return
    try:
        fh = Path(output_file).open("w", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        fail(f"{output_file}: {exc.strerror or exc}")
    with fh:
        yield fh
    from .common import wrote

    wrote(output_file)


# ---- reach -------------------------------------------------------------------------------------------------

@group.command("reach")
@input_options
@live_options
@click.option("--port", type=click.IntRange(1, 65535), help="One port: the allowed/denied matrix. "
              "Without it: the allowed ports and protocols per pair.")
@_protocol_option
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Only pods of this namespace (repeatable).")
@all_namespaces_option("namespaces")
@_ipblock_option
@answer_output_options(("table", *DOCUMENTS), "netpol reach")
def reach(paths: tuple[str, ...], max_file_size: str, port: int | None, protocol: str,
          namespaces: tuple[str, ...], ipblock_matches_pods: bool, fmt: str, output_file: str | None) -> None:
    """Pod-to-pod reachability over every ordered pair of pods.

    \b
    Pods come from Pod objects; a workload whose Pod objects are not in the
    inputs (ownerReferences decide) is one row standing for its replicas,
    and its own cell is replica-to-replica traffic, decided by the policies.
    Table: '.' allowed, 'X' denied (rows = from, columns = to), fitted to
    the terminal width. JSON, with --port:
      {"port", "protocol", "pods": [...], "pairs": [{"from", "to", "allowed"}]}
    without --port, each pair also has "ports" ("All", "None", "TCP 80"...).
    Exit 2 (after the output) when some input could not be read or used.
    """
    cluster, incomplete = _cluster(paths, max_file_size, ipblock_matches_pods)
    chosen = [i for i, p in enumerate(cluster.pods) if not namespaces or p.namespace in namespaces]
    if not chosen:
        fail("no pods or workloads in the inputs" + (f" in namespace {', '.join(namespaces)}" if namespaces else ""))
    index = ClassIndex(cluster)
    names = [cluster.pods[i].key for i in chosen]
    with _sink(output_file) as sink, streamed(sink, fmt) as out:
        if port is not None:
            matrix = index.matrix(port, protocol)
            if fmt in DOCUMENTS:
                reach_json(out, names, chosen, matrix, {"port": port, "protocol": protocol})
            else:
                width = None if output_file else shutil.get_terminal_size((80, 24)).columns
                _reach_table(out, names, chosen, matrix.allowed, f"{protocol}/{port}", width)
                _replica_legend(out, [cluster.pods[i] for i in chosen])
        else:
            space = PortSpace.build(index)
            pc = index.pod_class
            cache: dict[tuple[int, int], str] = {}
            pods = cluster.pods

            def conns(i: int, j: int) -> str:
                if i == j and pods[i].single:
                    return "All"  # loopback
                key = (pc[i], pc[j])
                text = cache.get(key)
                if text is None:
                    if len(cache) > 1_000_000:  # bounded: class pairs repeat along a row and across replicas
                        cache.clear()
                    text = cache[key] = describe(space.allowed(*key))
                return text

            if fmt in DOCUMENTS:
                reach_ports_json(out, names, chosen, conns)
            else:
                shown = [escape_control(n) for n in names]
                width = max(len(n) for n in shown)
                for a, i in zip(shown, chosen, strict=True):
                    for b, j in zip(shown, chosen, strict=True):
                        if i != j or not pods[i].single:
                            out.write(f"{a:<{width}} => {b:<{width}} : {conns(i, j)}\n")
                _replica_legend(out, [pods[i] for i in chosen])
    _finish(EXIT_OK, incomplete, "reach")


def _reach_table(out: IO[str], names: list[str], idx: list[int], allowed: Any, title: str,
                 width: int | None) -> None:
    """A Cyclonus-style truth table whose cells sit under their headers: names as column headers when all are
    short, otherwise numbered columns and rows labelled `k name`. With a `width`, the columns are split into
    blocks that fit it (each block repeats the row labels) and labels too long for one column are shortened in the
    middle (their full names are listed after the table), so no line wraps."""
    names = [escape_control(n) for n in names]
    n = len(names)
    short = max(len(x) for x in names) <= 12
    heads = names if short else [str(k) for k in range(n)]
    cw = max(len(h) for h in heads)
    labels = names if short else [f"{k:>{len(str(n - 1))}} {a}" for k, a in enumerate(names)]
    lw = max(len(x) for x in [*labels, title])
    cut: list[int] = []
    if width is not None:
        room = width - 2 - (min(n, 16) * (cw + 1) - 1)  # room for 16 columns per block, if labels allow
        if lw > room:
            lw = max(room, 24)
            cut = [k for k, x in enumerate(labels) if len(x) > lw]
            labels = [_shorten(x, lw) for x in labels]
            title = _shorten(title, lw)
    per = n if width is None else max(1, (width - lw - 2 + 1) // (cw + 1))
    for start in range(0, n, per):
        block = range(start, min(n, start + per))
        if start:
            out.write("\n")
        out.write(f"{title:<{lw}}  " + " ".join(f"{heads[c]:>{cw}}" for c in block) + "\n")
        for k, i in enumerate(idx):
            cells = " ".join(f"{'.' if allowed(i, idx[c]) else 'X':>{cw}}" for c in block)
            out.write(f"{labels[k]:<{lw}}  {cells}\n")
    out.write(". allowed   X denied   (rows: from, columns: to)\n")
    for k in cut:
        out.write(f"{k}: {names[k]}\n")


def _shorten(text: str, size: int) -> str:
    """`head…tail` in `size` characters (the ends of pod names are what tell replicas apart)."""
    if len(text) <= size:
        return text
    head = (size - 1 + 1) // 2
    tail = size - 1 - head
    return text[:head] + "\u2026" + (text[-tail:] if tail else "")


def _replica_legend(out: IO[str], pods: list[Pod]) -> None:
    """Say which rows stand for several pods: their own cell is traffic between two replicas, not loopback."""
    multi = [p for p in pods if not p.single]
    if multi:
        out.write("replica-to-replica (own cell of a workload of several pods): " + ", ".join(
            f"{escape_control(p.key)} ({p.count if p.count is not None else 'n'} pods)" for p in multi) + "\n")


# ---- explain -----------------------------------------------------------------------------------------------

@group.command("explain")
@click.argument("src")
@click.argument("dst")
@input_options
@live_options
@click.option("--port", type=click.IntRange(1, 65535), required=True)
@_protocol_option
@_ipblock_option
@format_option(("text", *DOCUMENTS), "netpol explain")
@input_namespace_option(expose=False)
def explain(src: str, dst: str, paths: tuple[str, ...], max_file_size: str, port: int, protocol: str,
            ipblock_matches_pods: bool, fmt: str) -> None:
    """Is SRC → DST:PORT allowed, and which policies and rules decided each direction.

    SRC and DST are ns/pod (or ns/workload for manifests) or IP addresses. Exit 0 allowed, 1 denied.
    """
    cluster, incomplete = _cluster(paths, max_file_size, ipblock_matches_pods)
    checker = FlowChecker(cluster)
    try:
        a, b = checker.endpoint(src), checker.endpoint(dst)
    except FlowError as exc:
        fail(str(exc))
    d = decide(cluster, a, b, port, protocol)
    if fmt in DOCUMENTS:
        click.echo(document(d.to_json(), fmt), nl=False)
    else:
        click.echo(f"{a.key} -> {b.key} {protocol}/{port}: {'ALLOWED' if d.allowed else 'DENIED'}")
        for res, end in ((d.egress, a), (d.ingress, b)):
            if res is None:
                continue
            label = f"{res.direction.lower():<7} at {end.key}"
            if not res.isolated and not res.reasons:
                click.echo(f"  {label}: allowed (not isolated: no policy selects it for {res.direction.lower()})")
                continue
            verdict = "allowed" if res.allowed else "denied"
            click.echo(f"  {label}: {verdict}")
            for r in res.reasons:
                if r.rule:
                    click.echo(f"    {r.action} by {r.policy} {r.rule} [{r.tier}]")
                elif r.policy:
                    click.echo(f"    isolated by {r.policy}: no rule allows this [{r.tier}]")
                else:
                    click.echo(f"    {r.action} ({r.tier})")
        if isinstance(b, Pod) and isinstance(a, Pod) and a is b:
            if a.single:
                click.echo("  (a pod can always reach itself)")
            else:
                many = f"{a.count} pods" if a.count is not None else "several pods"
                click.echo(f"  ({a.workload} runs {many}: this is traffic between two of its replicas)")
    _finish(EXIT_OK if d.allowed else EXIT_FINDINGS, incomplete, "explain")


# ---- lint --------------------------------------------------------------------------------------------------

# The simple-form network controls that answer "no isolation at all" (controls/network.py), run with ours.
LINT_EXTRA = ("KW-N007", "KW-N008", "KW-N009", "KW-N010")


@group.command("lint")
@input_options
@click.option("--fail-on", type=fail_on_type(), default="high", show_default=True,
              help="Exit 1 when a finding at or above this severity remains.")
@output_options(FORMATS)
@input_namespace_option(expose=False)
def lint_cmd(paths: tuple[str, ...], max_file_size: str, fail_on: str, fmt: str, output_file: str | None) -> None:
    """Policies selecting no pods, peers matching nothing, named ports that never resolve, except outside cidr,
    invalid fields, pods without isolation or isolated-but-open, egress isolation that blocks DNS."""
    from ..controls.registry import all_controls, run

    if not paths:
        fail("nothing to lint: give files, folders or '-' for stdin")
    ns, enforce = input_namespace()
    snapshot = load_snapshot(paths, max_file_size, namespace=ns, enforce_namespace=enforce)
    print_errors(snapshot.errors)
    controls = all_controls()
    chosen = [c for cid, c in controls.items() if cid.startswith("KW-N1") or cid in LINT_EXTRA]
    report = run(snapshot, chosen)
    from .common import color_wanted

    emit(render(report, fmt, color=color_wanted(output_file)), output_file, report)
    sys.exit(exit_code(report, parse_fail_on(fail_on), scanned=len(snapshot) > 0))


# ---- flows -------------------------------------------------------------------------------------------------

def _flows(path: str, checker: FlowChecker) -> Iterator[Flow]:
    """Valid flows whose ends resolve; one stderr line per bad record (file:line: reason)."""
    name = "<stdin>" if path == "-" else path
    try:
        fh = sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        fail(f"{name}: cannot read: {exc.strerror or exc}")
    with fh:
        for item in read_flows(fh):
            if isinstance(item, FlowError):
                click.echo(f"kubeward: {name}: {item}", err=True)
                continue
            try:
                checker.endpoint(item.src)
                checker.endpoint(item.dst)
            except FlowError as exc:
                click.echo(f"kubeward: {name}: line {item.line}: {exc}", err=True)
                continue
            yield item


@group.command("generate")
@input_options
@live_options
@click.option("--flows", "flows_file", required=True, metavar="FILE",
              help="Observed flows as JSON lines: {src, dst, port, protocol}; '-' for stdin.")
@_ipblock_option
@format_option(("yaml", "json"), "netpol generate")
@click.option("--output", "output_file", type=click.Path(dir_okay=False, writable=True), help="Write to FILE.")
@input_namespace_option(expose=False)
def generate(paths: tuple[str, ...], max_file_size: str, flows_file: str, ipblock_matches_pods: bool, fmt: str,
             output_file: str | None) -> None:
    """Least-privilege NetworkPolicies (one per workload, selected by labels) allowing exactly the observed flows.

    The inputs give the pods (labels, IPs) the flows name; each workload seen gets Ingress and Egress isolation.
    """
    cluster, incomplete = _cluster(paths, max_file_size, ipblock_matches_pods)
    checker = FlowChecker(cluster)
    flows = list(_flows(flows_file, checker))
    if not flows:
        fail(f"{flows_file}: no usable flow records")
    policies = generate_policies(checker, flows)
    for pol in policies:
        if not pol["spec"]["podSelector"]:
            meta = pol["metadata"]
            warn(f"NetworkPolicy {meta['namespace']}/{meta['name']}: its pods carry no labels of their own, so it "
                 f"selects every pod of namespace {meta['namespace']}; label the workload to narrow it")
    if fmt == "json":
        text = document({"apiVersion": "v1", "kind": "List", "items": policies}, "json")
    else:
        text = yaml.safe_dump_all(policies, sort_keys=False, explicit_start=True)
    emit(text, output_file)
    _finish(EXIT_OK, incomplete, "generate")


@group.command("check-flows")
@input_options
@live_options
@click.option("--flows", "flows_file", required=True, metavar="FILE",
              help="Observed flows as JSON lines: {src, dst, port, protocol}; '-' for stdin (streamed).")
@_ipblock_option
@click.option("--output", "output_file", type=click.Path(dir_okay=False, writable=True), help="Write to FILE.")
@input_namespace_option(expose=False)
def check_flows(paths: tuple[str, ...], max_file_size: str, flows_file: str, ipblock_matches_pods: bool,
                output_file: str | None) -> None:
    """One alert record (JSON line) per observed flow the policies would deny.

    \b
    {"alert": "unauthorized communication attempt", "src", "dst", "port", "protocol",
     "denied": ["egress"|"ingress"], "policies": [deciding policies]}
    Exit 0 no alert, 1 alerts, 2 when no flow could be checked.
    """
    cluster, incomplete = _cluster(paths, max_file_size, ipblock_matches_pods)
    checker = FlowChecker(cluster)
    checked = alerts = 0
    with _sink(output_file) as out:
        for flow in _flows(flows_file, checker):
            checked += 1
            alert = checker.check(flow)
            if alert is not None:
                alerts += 1
                out.write(json_line(alert))
                out.flush()
    if not checked:
        fail(f"{flows_file}: no usable flow records")
    _finish(EXIT_FINDINGS if alerts else EXIT_OK, incomplete, "check-flows")

