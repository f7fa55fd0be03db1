"""Node checks that need the node as it runs: kube-proxy (4.1.3, 4.1.4, 4.3.1), the kubelet's event rate
(4.2.8), and whether each running component matches its static-pod manifest (KW-NODE-002).

kube-proxy's values come from `sources.nodelive.proxy_value` (its config file replaces its flags). A check whose
input is absent raises NotRead (WARN), never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..findings import Location, ObjectRef
from ..sources.files import display_path
from ..sources.node import Component, NodeConfig, stat_path
from ..sources.nodelive import PROXY_METRICS_DEFAULT, proxy_value
from .node import Hit, NotRead, _khit, _kval, _mode_hit, _owner_hit, node_control

P = "kube-proxy"
PROXY_BY_HAND = "kube-proxy's flags and config file (usually the kube-system/kube-proxy ConfigMap): "


def _proxy_ref() -> ObjectRef:
    return ObjectRef("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration", None, P)


def _proxy_loc(cfg: NodeConfig, path: str) -> Location:
    assert cfg.proxy is not None
    return cfg.proxy.location(path) if cfg.proxy_path is not None else cfg.proxy.location()


def _need_proxy(cfg: NodeConfig) -> None:
    if cfg.proxy is None:
        raise NotRead("no kube-proxy process on this node (or not chosen with --pid), or its --config could "
                      "not be read" if cfg.proxy_process is not None else "no kube-proxy process on this node "
                      "(or not chosen with --pid)")


def _proxy_kubeconfig(mode: bool) -> Callable[[NodeConfig], Iterator[Hit]]:
    def check(cfg: NodeConfig) -> Iterator[Hit]:
        _need_proxy(cfg)
        if cfg.proxy_kubeconfig is None:
            raise NotRead("kube-proxy runs without a kubeconfig file (in-cluster credentials)")
        info = stat_path(cfg.proxy_kubeconfig)
        shown = str(cfg.proxy_kubeconfig)
        if info is None:
            raise NotRead(f"{shown}: named by kube-proxy but not found (or not readable)")
        yield from (_mode_hit(info, 0o600, shown) if mode else _owner_hit(info, shown))
    return check


proxy_kubeconfig_mode = node_control(
    "4.1.3", "If proxy kubeconfig file exists ensure permissions are set to 600 or more restrictive", "medium", "",
    "chmod 600 <kube-proxy --kubeconfig>", offline=PROXY_BY_HAND + "stat -c %a <kubeconfig>")(_proxy_kubeconfig(True))
proxy_kubeconfig_owner = node_control(
    "4.1.4", "If proxy kubeconfig file exists ensure ownership is set to root:root", "medium", "",
    "chown root:root <kube-proxy --kubeconfig>",
    offline=PROXY_BY_HAND + "stat -c %U:%G <kubeconfig>")(_proxy_kubeconfig(False))

_LOOPBACK = ("127.", "[::1]", "::1", "localhost")


def _host_of(addr: str) -> str:
    """The host part of `host:port` (kube-proxy also accepts a bare IP; `:port` means every interface)."""
    if addr.startswith("["):
        return addr.split("]", 1)[0] + "]"
    if addr.count(":") > 1:  # bare IPv6
        return addr
    return addr.rsplit(":", 1)[0] if ":" in addr else addr


@node_control("4.3.1", "Ensure that the kube-proxy metrics service is bound to localhost", "medium", "",
              "metricsBindAddress: 127.0.0.1:10249 (or remove it: that is the default)",
              offline=PROXY_BY_HAND + "metricsBindAddress (default 127.0.0.1:10249)")
def proxy_metrics_local(cfg: NodeConfig) -> Iterator[Hit]:
    _need_proxy(cfg)
    v, where = proxy_value(cfg, "metrics-bind-address", "/metricsBindAddress", PROXY_METRICS_DEFAULT)
    if not isinstance(v, str):
        yield _proxy_ref(), _proxy_loc(cfg, "/metricsBindAddress"), "/metricsBindAddress", \
            f"{where}={v!r} is not an address string"
        return
    host = _host_of(v)
    if not host.startswith(_LOOPBACK):
        shown = host or "every interface"
        yield _proxy_ref(), _proxy_loc(cfg, "/metricsBindAddress"), "/metricsBindAddress", \
            f"{where}={v}: metrics served on {shown}, not only on localhost"


@node_control("4.2.8", "Ensure that the eventRecordQPS argument is set to a level which ensures appropriate event capture",
              "low", "kubelet", "eventRecordQPS: 50 (the default) or another positive rate")
def kubelet_event_qps(cfg: NodeConfig) -> Iterator[Hit]:
    # KubeletConfiguration v1beta1 default 50 (defaults.go); 0 means unlimited, which the benchmark's rationale
    # names a denial-of-service risk; negative values fail the kubelet's validation.
    v, where = _kval(cfg, "event-qps", "/eventRecordQPS", 50)
    try:
        qps = int(str(v)) if not isinstance(v, bool) else None
    except ValueError:
        qps = None
    if qps is None:
        yield _khit(cfg, "/eventRecordQPS", f"{where}={v} is not an integer")
    elif qps <= 0:
        yield _khit(cfg, "/eventRecordQPS", f"{where}={qps}: " + ("event creation is unlimited (a burst can "
                                                                 "overload the kubelet and the API server)"
                                                                 if qps == 0 else "rejected by the kubelet"))


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
