"""`kubeward netpol reach|explain|lint|generate|check-flows`: what the NetworkPolicies actually allow."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click
import orjson
import yaml

from ..engines.netpol import ClassIndex, ClassMatrix, decide, from_snapshot
from ..engines.netpol.cluster import Cluster
from ..engines.netpol.flows import Flow, FlowChecker, FlowError, read_flows
from ..engines.netpol.generate import generate as generate_policies
from ..engines.netpol.model import PROTOCOLS, Pod
from ..engines.netpol.ports import PortSpace, describe
from ..formats import FORMATS, render
from ..sources.cluster import NETPOL_TYPES
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    INPUT_NAMESPACE,
    emit,
    exit_code,
    fail,
    fail_on_type,
    input_namespace,
    input_namespace_option,
    input_options,
    load_snapshot,
    output_options,
    parse_fail_on,
    print_errors,
)
from .live import live_options, live_request, load_cluster_cli


@click.group("netpol")
def group() -> None:
    """NetworkPolicy: reachability matrix, explain one connection, lint, generate from flows, check flows."""


def _ipblock_option(f: Any) -> Any:
    return click.option(
        "--ipblock-matches-pods", type=click.BOOL, default=True, show_default=True, metavar="true|false",
        help="Whether ipBlock peers match pod IPs (status.podIPs), as upstream e2e expects; false for CNIs that "
             "apply ipBlock to cluster-external traffic only.")(f)


def _protocol_option(f: Any) -> Any:
    return click.option("--protocol", type=click.Choice(PROTOCOLS, case_sensitive=False), default="TCP",
                        show_default=True, callback=lambda _c, _p, v: v.upper() if v else v)(f)


def _cluster(paths: tuple[str, ...], max_file_size: str, ipblock_matches_pods: bool) -> Cluster:
    live = live_request()
    if live is not None:
        if paths:
            fail("--cluster reads a live cluster: give no paths with it")
        if click.get_current_context().meta.get(INPUT_NAMESPACE):
            fail("-n/--namespace places file inputs; it does not apply to --cluster")
        snap = load_cluster_cli(*live, NETPOL_TYPES)
        if snap.not_assessed:
            fail(f"cluster {snap.context}: cannot read every type reachability needs; answers would be guesses")
        return from_snapshot(snap, ipblock_matches_pods=ipblock_matches_pods)
    if not paths:
        fail("nothing to analyse: give files, folders or '-' for stdin")
    ns, enforce = input_namespace("namespaces")  # reach's -n filters; given once it also places inputs
    snapshot = load_snapshot(paths, max_file_size, namespace=ns, enforce_namespace=enforce)
    print_errors(snapshot.errors)
    if len(snapshot) == 0:
        fail("nothing to analyse: no Kubernetes objects could be read")
    return from_snapshot(snapshot, ipblock_matches_pods=ipblock_matches_pods)


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
@_ipblock_option
@output_options(("table", "json"))
def reach(paths: tuple[str, ...], max_file_size: str, port: int | None, protocol: str,
          namespaces: tuple[str, ...], ipblock_matches_pods: bool, fmt: str, output_file: str | None) -> None:
    """Pod-to-pod reachability over every ordered pair of pods.

    \b
    Pods come from Pod objects, or one representative per workload when only templates exist.
    Table: '.' allowed, 'X' denied (rows = from, columns = to). JSON:
      {"port": 80, "protocol": "TCP", "pods": [...], "pairs": [{"from", "to", "allowed"}]}
    or, without --port, {"pods": [...], "pairs": [{"from", "to", "allowed", "ports"}]}.
    """
    cluster = _cluster(paths, max_file_size, ipblock_matches_pods)
    chosen = [i for i, p in enumerate(cluster.pods) if not namespaces or p.namespace in namespaces]
    if not chosen:
        fail("no pods or workloads in the inputs" + (f" in namespace {', '.join(namespaces)}" if namespaces else ""))
    index = ClassIndex(cluster)
    names = [cluster.pods[i].key for i in chosen]
    with _sink(output_file) as out:
        if port is not None:
            matrix = index.matrix(port, protocol)
            if fmt == "json":
                _reach_json(out, names, chosen, matrix, {"port": port, "protocol": protocol})
            else:
                _reach_table(out, names, chosen, matrix.allowed, f"{protocol}/{port}")
        else:
            space = PortSpace.build(index)
            pc = index.pod_class
            cache: dict[tuple[int, int], str] = {}

            def conns(i: int, j: int) -> str:
                if i == j:
                    return "All"
                key = (pc[i], pc[j])
                text = cache.get(key)
                if text is None:
                    if len(cache) > 1_000_000:  # bounded: class pairs repeat along a row and across replicas
                        cache.clear()
                    text = cache[key] = describe(space.allowed(*key))
                return text

            if fmt == "json":
                _reach_ports_json(out, names, chosen, conns)
            else:
                width = max(len(n) for n in names)
                for a, i in zip(names, chosen, strict=True):
                    for b, j in zip(names, chosen, strict=True):
                        if i != j:
                            out.write(f"{a:<{width}} => {b:<{width}} : {conns(i, j)}\n")


def _reach_json(out: IO[str], names: list[str], idx: list[int], matrix: ClassMatrix, head: dict[str, Any]) -> None:
    """Streamed row by row; each row is joined from per-destination fragments chosen by the class row bits."""
    pc = matrix.index.pod_class
    enc = [orjson.dumps(n).decode() for n in names]
    yes = [f'"to":{b},"allowed":true}}' for b in enc]
    no = [f'"to":{b},"allowed":false}}' for b in enc]
    dst_class = [pc[j] for j in idx]
    out.write(orjson.dumps(head).decode()[:-1] + ',"pods":' + orjson.dumps(names).decode() + ',"pairs":[')
    for k, (a, i) in enumerate(zip(enc, idx, strict=True)):
        row = matrix.rows[pc[i]]
        tails = [y if row >> c & 1 else n for y, n, c in zip(yes, no, dst_class, strict=True)]
        tails[k] = yes[k]  # a pod can always reach itself
        sep = ',{"from":' + a + ","
        out.write(("," if k else "") + '{"from":' + a + "," + sep.join(tails))
    out.write("]}\n")


def _reach_ports_json(out: IO[str], names: list[str], idx: list[int], conns: Any) -> None:
    enc = [orjson.dumps(n).decode() for n in names]
    out.write('{"pods":' + orjson.dumps(names).decode() + ',"pairs":[')
    first = True
    for a, i in zip(enc, idx, strict=True):
        for b, j in zip(enc, idx, strict=True):
            c = conns(i, j)
            item = f'{{"from":{a},"to":{b},"allowed":{"false" if c == "None" else "true"},"ports":"{c}"}}'
            out.write(item if first else "," + item)
            first = False
    out.write("]}\n")


def _reach_table(out: IO[str], names: list[str], idx: list[int], allowed: Any, title: str) -> None:
    """A Cyclonus-style truth table; column headers are numbered when names would not fit."""
    width = max(len(n) for n in [*names, title])
    short = max(len(n) for n in names) <= 12
    heads = names if short else [str(k) for k in range(len(names))]
    cw = max(len(h) for h in heads)
    out.write(f"{title:<{width}}  " + " ".join(f"{h:>{cw}}" for h in heads) + "\n")
    for k, (a, i) in enumerate(zip(names, idx, strict=True)):
        label = a if short else f"{a} [{k}]"
        cells = " ".join(f"{'.' if allowed(i, j) else 'X':>{cw}}" for j in idx)
        out.write(f"{label:<{width + (0 if short else len(str(k)) + 3)}}  {cells}\n")
    out.write(". allowed   X denied   (rows: from, columns: to)\n")


# ---- explain -----------------------------------------------------------------------------------------------

@group.command("explain")
@click.argument("src")
@click.argument("dst")
@input_options
@live_options
@click.option("--port", type=click.IntRange(1, 65535), required=True)
@_protocol_option
@_ipblock_option
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@input_namespace_option(expose=False)
def explain(src: str, dst: str, paths: tuple[str, ...], max_file_size: str, port: int, protocol: str,
            ipblock_matches_pods: bool, fmt: str) -> None:
    """Is SRC → DST:PORT allowed, and which policies and rules decided each direction.

    SRC and DST are ns/pod (or ns/workload for manifests) or IP addresses. Exit 0 allowed, 1 denied.
    """
    cluster = _cluster(paths, max_file_size, ipblock_matches_pods)
    checker = FlowChecker(cluster)
    try:
        a, b = checker.endpoint(src), checker.endpoint(dst)
    except FlowError as exc:
        fail(str(exc))
    d = decide(cluster, a, b, port, protocol)
    if fmt == "json":
        click.echo(orjson.dumps(d.to_json(), option=orjson.OPT_INDENT_2).decode())
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
            click.echo("  (a pod can always reach itself)")
    sys.exit(EXIT_OK if d.allowed else EXIT_FINDINGS)


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
@click.option("-o", "--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--output", "output_file", type=click.Path(dir_okay=False, writable=True), help="Write to FILE.")
@input_namespace_option(expose=False)
def generate(paths: tuple[str, ...], max_file_size: str, flows_file: str, ipblock_matches_pods: bool, fmt: str,
             output_file: str | None) -> None:
    """Least-privilege NetworkPolicies (one per workload, selected by labels) allowing exactly the observed flows.

    The inputs give the pods (labels, IPs) the flows name; each workload seen gets Ingress and Egress isolation.
    """
    cluster = _cluster(paths, max_file_size, ipblock_matches_pods)
    checker = FlowChecker(cluster)
    flows = list(_flows(flows_file, checker))
    if not flows:
        fail(f"{flows_file}: no usable flow records")
    policies = generate_policies(checker, flows)
    if fmt == "json":
        text = orjson.dumps({"apiVersion": "v1", "kind": "List", "items": policies},
                            option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        text = yaml.safe_dump_all(policies, sort_keys=False, explicit_start=True)
    emit(text, output_file)


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
    cluster = _cluster(paths, max_file_size, ipblock_matches_pods)
    checker = FlowChecker(cluster)
    checked = alerts = 0
    with _sink(output_file) as out:
        for flow in _flows(flows_file, checker):
            checked += 1
            alert = checker.check(flow)
            if alert is not None:
                alerts += 1
                out.write(orjson.dumps(alert).decode() + "\n")
                out.flush()
    if not checked:
        fail(f"{flows_file}: no usable flow records")
    sys.exit(EXIT_FINDINGS if alerts else EXIT_OK)

