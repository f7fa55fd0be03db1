"""CIS 1.4: kube-scheduler flags (defaults: cmd/kube-scheduler/app/options)."""

from __future__ import annotations

from collections.abc import Iterator

from ...sources.node import NodeConfig
from .base import SCH, Hit, bind_local, node_control, want_bool


@node_control("1.4.1", "Ensure that the --profiling argument is set to false", "medium", SCH, "--profiling=false")
def sch_profiling(cfg: NodeConfig) -> Iterator[Hit]:
    """--profiling is false. It defaults to true: /debug/pprof then exposes the scheduler's internals."""
    yield from want_bool(cfg.components[SCH], "profiling", False, True)


@node_control("1.4.2", "Ensure that the --bind-address argument is set to 127.0.0.1", "low", SCH,
              "--bind-address=127.0.0.1")
def sch_bind_address(cfg: NodeConfig) -> Iterator[Hit]:
    """--bind-address is loopback. It defaults to 0.0.0.0, serving the scheduler's health and metrics endpoints on
    every interface of the node."""
    yield from bind_local(cfg, SCH)
