"""`kubeward paths`: attack paths from the internet, a pod or a subject to cluster-admin, every secret, the nodes
or a namespace; `--why N` explains one path step by step, `--fixes` the fewest changes that cut them all."""

from __future__ import annotations

import sys

import click

from ..formats import DOCUMENTS, document
from ..identity import SubjectError
from .common import EXIT_FINDINGS, EXIT_OK, emit, fail, format_option, input_namespace_option, warn
from .rbac import load_rbac, source_options, terminal_width, wrapped_table


@click.command("paths")
@click.option("--from", "source", metavar="FROM",
              help="Where the attacker starts: internet (default), pods (any one pod), 'pod NS/NAME', or "
                   "'subject SUBJECT' (User:NAME, Group:NAME, ServiceAccount:NS:NAME, NS/NAME).")
@click.option("--to", "target", metavar="TO", default="cluster-admin", show_default=True,
              help="What the attacker wants: cluster-admin, secrets (every namespace), nodes, or a namespace name "
                   "(run as any of its service accounts).")
@click.option("--why", "why", type=click.IntRange(min=1), metavar="N",
              help="Explain path N of the list: each step's object, the rule or field behind it, and its fix.")
@click.option("--fixes", is_flag=True, help="Also show the fewest changes that cut every path (a minimum cut).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Paths listed at most.")
@format_option(("table", "sarif", "html", *DOCUMENTS), "paths")
@click.option("--output", "output_file", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@source_options
@input_namespace_option(expose=False)
def paths(source: str | None, target: str, why: int | None, fixes: bool, limit: int, fmt: str,
          output_file: str | None, paths: tuple[str, ...], max_file_size: str) -> None:
    """Attack paths built from the engines (network policy, RBAC, Pod Security, hostPath, Node authorizer),
    ranked by score (the sum of the steps' difficulty: `kubeward docs paths`); exit 1 when any path exists.

    \b
    kubeward paths k8s/ --to secrets --fixes
    """
    from ..paths import QueryError, analyze, build
    from ..sources.cluster import SCAN_TYPES

    snapshot, index = load_rbac(paths, max_file_size, SCAN_TYPES)
    graph = build(snapshot, index)
    for note in graph.notes:
        warn(note)
    try:
        result = analyze(snapshot, source, target, graph=graph)
    except (QueryError, SubjectError) as exc:
        fail(str(exc))
    shown = result.paths[:limit]
    cut = result.cut() if fixes or fmt in (*DOCUMENTS, "html") else None
    if why is not None and why > len(shown):
        fail(f"--why {why}: there are {len(shown)} paths")
    if fmt == "sarif":
        from ..formats.sarif_paths import render_sarif

        emit(render_sarif(shown, target), output_file)
    elif fmt == "html":
        from ..formats.paths_html import render_html

        origin = result.sources[0] if len(result.sources) == 1 else source or "internet"
        emit(render_html(shown, origin, result.target, len(result.paths), cut.to_json() if cut else None),
             output_file)
    elif fmt in DOCUMENTS:
        doc: dict[str, object] = {"from": result.sources if len(result.sources) > 1 else result.sources[0],
                                  "to": result.target, "total": len(result.paths),
                                  "paths": [p.to_json() for p in (shown if why is None else [shown[why - 1]])]}
        if cut is not None:
            doc["fixes"] = cut.to_json()
            doc["uncuttable"] = cut.uncuttable
        emit(document(doc, fmt), output_file)
    else:
        from ..paths.text import render_table, render_why

        text = render_why(shown[why - 1], why) if why is not None else render_table(
            result, shown, cut, terminal_width(), wrapped_table)
        emit(text, output_file)
    sys.exit(EXIT_FINDINGS if result.paths else EXIT_OK)
