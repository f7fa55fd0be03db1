"""CIS 1.4: kube-scheduler flags (defaults: cmd/kube-scheduler/app/options)."""

from __future__ import annotations

from collections.abc import Iterator

from ...sources.files import load_paths
from ...sources.node import NodeConfig
from .base import SCH, Hit, NotRead, bind_local, component_ref, node_control, want_bool


@node_control("1.4.1", "Ensure that the --profiling argument is set to false", "medium", SCH,
              "--profiling=false (with --config: enableProfiling: false in that file)")
def sch_profiling(cfg: NodeConfig) -> Iterator[Hit]:
    """--profiling is false. It defaults to true: /debug/pprof then exposes the scheduler's internals. With
    --config the flag is ignored ("This parameter is ignored if a config file is specified in --config",
    kube-scheduler reference) and the file's enableProfiling, default true, decides."""
    c = cfg.components[SCH]
    conf = c.flags.get("config")
    if not conf:
        yield from want_bool(c, "profiling", False, True)
        return
    path = cfg.path_of(c, conf)
    loaded = load_paths([str(path)]) if path.is_file() else None
    docs = [r for r in loaded.resources if r.kind == "KubeSchedulerConfiguration"] if loaded else []
    if not docs:
        why = loaded.errors[0].message if loaded and loaded.errors else "no KubeSchedulerConfiguration there"
        raise NotRead(f"kube-scheduler --config {conf}: {why}")
    res = docs[0]
    value = res.obj.get("enableProfiling", True)
    ref = component_ref(c)
    if not isinstance(value, bool):
        yield ref, res.location("/enableProfiling"), "/enableProfiling", f"{conf}: enableProfiling={value!r} is not a boolean"
    elif value:
        how = "enableProfiling: true" if "enableProfiling" in res.obj else "enableProfiling unset (defaults to true)"
        yield ref, res.location("/enableProfiling"), "/enableProfiling", f"{conf}: {how}; want false (--profiling is ignored with --config)"


@node_control("1.4.2", "Ensure that the --bind-address argument is set to 127.0.0.1", "low", SCH,
              "--bind-address=127.0.0.1")
def sch_bind_address(cfg: NodeConfig) -> Iterator[Hit]:
    """--bind-address is loopback. It defaults to 0.0.0.0, serving the scheduler's health and metrics endpoints on
    every interface of the node."""
    yield from bind_local(cfg, SCH)
