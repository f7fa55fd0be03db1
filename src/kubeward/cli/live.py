"""`--cluster [--context C] [--kubeconfig F]` for every command that can read a live cluster, and the CLI side of
reading one (progress on a TTY, one-line errors). The source itself is kubeward.sources.cluster, loaded only when
a command is given --cluster."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from .common import fail, one_line

if TYPE_CHECKING:
    from ..sources.cluster import ClusterSnapshot, ResourceType

LIVE_META = "kubeward.live"


def cluster_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options as parameters of the command (`live`, `context`, `kubeconfig`)."""
    f = click.option("--kubeconfig", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Kubeconfig for --cluster (default: $KUBECONFIG or ~/.kube/config).")(f)
    f = click.option("--context", metavar="NAME", help="Kubeconfig context for --cluster (default: current).")(f)
    f = click.option("--cluster", "live", is_flag=True,
                     help="Read the objects from a live cluster instead of files.")(f)
    return f


def live_options(f: Callable[..., Any], *,
                 cluster_help: str = "Read the objects from a live cluster instead of files.") -> Callable[..., Any]:
    """Like cluster_options, but the values go to the click context (read with `live_request()`), so a command's
    signature does not change when it learns to read a cluster. `cluster_help`: what --cluster adds, where it
    does not replace the files (node check)."""

    def store(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
        def cb(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
            ctx.meta.setdefault(LIVE_META, {})[key] = value
            return value

        return cb

    f = click.option("--kubeconfig", type=click.Path(dir_okay=False), metavar="FILE", expose_value=False,
                     callback=store("kubeconfig"), help="Kubeconfig for --cluster.")(f)
    f = click.option("--context", metavar="NAME", expose_value=False, callback=store("context"),
                     help="Kubeconfig context for --cluster (default: current).")(f)
    f = click.option("--cluster", "live_cluster", is_flag=True, expose_value=False, callback=store("cluster"),
                     help=cluster_help)(f)
    return f


def live_request() -> tuple[str | None, str | None] | None:
    """(kubeconfig, context) when the current command got --cluster, else None."""
    ctx = click.get_current_context(silent=True)
    opts = ctx.meta.get(LIVE_META, {}) if ctx is not None else {}
    return (opts.get("kubeconfig"), opts.get("context")) if opts.get("cluster") else None


def load_cluster_cli(kubeconfig: str | None, context: str | None,
                     types: Sequence[ResourceType] | None = None, namespace: str | None = None) -> ClusterSnapshot:
    """Read a live cluster (the scan's resource types unless `types` says otherwise; in one namespace with
    `namespace`, see load_cluster): progress on stderr only on a TTY; errors become one line and exit 2; areas
    that could not be read are named, never counted as passed."""
    from ..sources.cluster import SCAN_TYPES, Client, ClusterError, load_cluster

    wanted = SCAN_TYPES if types is None else types
    try:
        client = Client(kubeconfig, context)
        unique = len({t.path for t in wanted})
        if not sys.stderr.isatty():
            snap = load_cluster(types=wanted, client=client, namespace=namespace)
        else:
            from rich.progress import Progress

            from .common import stderr_console

            with Progress(transient=True, console=stderr_console()) as bar:
                task = bar.add_task(f"reading {client.context or 'cluster'}", total=unique)
                snap = load_cluster(types=wanted, client=client, on_type=lambda _t: bar.advance(task),
                                    namespace=namespace)
    except ClusterError as exc:
        fail(str(exc))
    for n in snap.not_assessed:
        print(f"kubeward: {one_line(f'cluster {snap.context}: {n.what}: not assessed ({n.reason})')}",
              file=sys.stderr)
    return snap
