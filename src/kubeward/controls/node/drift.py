"""KW-NODE-002: every running control-plane component runs what its static-pod manifest says (live only).

The kubelet starts a static pod from its manifest, but a component can be running with other flags: a manifest
edited while the kubelet was stopped, a process started by hand, a copy left behind. The running process is what
enforces; the manifest is what reviews look at.
"""

from __future__ import annotations

from collections.abc import Iterator

from ...findings import Location, ObjectRef
from ...sources.files import display_path
from ...sources.node import Component, NodeConfig
from .base import Hit, NotRead, node_control


def manifest_drift(c: Component) -> list[str]:
    """Flags whose value differs between the running process and its static-pod manifest (names only: values
    may be secret). A manifest value holding `$(VAR)` is expanded by the kubelet from the container's
    environment, so it is not compared."""
    disk = c.on_disk
    assert disk is not None
    names = sorted(set(c.flags.values) | set(disk.flags.values))
    return [n for n in names if c.flags.values.get(n) != disk.flags.values.get(n)
            and not any("$(" in v for v in disk.flags.values.get(n, []))]


@node_control("", "Every running control-plane component runs what its static-pod manifest says", "high", "",
              "Restart the component (the kubelet restarts a static pod when its manifest changes), or find what "
              "started it with other flags.", extra_id="KW-NODE-002",
              offline="compare `ps -o args` of each component with its manifest")
def running_matches_manifest(cfg: NodeConfig) -> Iterator[Hit]:
    """Each running component's flags (its /proc/PID/cmdline, parsed as the binary does) equal those of its
    static-pod manifest on disk, and every manifest has a running process; flag names are reported, never
    values. Upstream: the static Pods task (kubernetes.io/docs/tasks/configure-pod-container/static-pod/): the
    kubelet watches the manifest directory and runs what each file says."""
    pairs = [c for c in cfg.components.values() if c.on_disk is not None]
    stopped = [d for name, d in cfg.disk_components.items() if name not in cfg.components]
    if not pairs and not stopped:
        raise NotRead("no running component has a static-pod manifest on this node")
    for c in pairs:
        diff = manifest_drift(c)
        if diff:
            assert c.on_disk is not None
            shown = ", ".join("--" + n for n in diff[:8]) + (f" and {len(diff) - 8} more" if len(diff) > 8 else "")
            loc = Location(file=display_path(str(c.on_disk.manifest)), line=c.on_disk.line_of_flag(diff[0]))
            yield (ObjectRef("v1", "Pod", "kube-system", c.name), loc, f"/spec/containers/{c.on_disk.container}/command",
                   f"{c.name} (pid {c.pid}) runs with {shown} not as its manifest says")
    for d in stopped:
        yield (ObjectRef("v1", "Pod", "kube-system", d.name), Location(file=display_path(str(d.manifest))), "/",
               f"{d.name}: static-pod manifest on disk but no {d.name} process running")
