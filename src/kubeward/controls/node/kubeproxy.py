"""CIS 4.1.3, 4.1.4 and 4.3.1: kube-proxy, judged from its running process (it usually runs as a DaemonSet with
its configuration in a ConfigMap, so offline these are MANUAL).

Values come from `sources.nodelive.proxy_value` (with --config the file replaces the flags). A check whose input
is absent raises NotRead (WARN), never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ...findings import Location, ObjectRef
from ...sources.node import NodeConfig, stat_path
from ...sources.nodelive import PROXY_METRICS_DEFAULT, proxy_value
from .base import Hit, NotRead, mode_hit, node_control, owner_hit, said

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
        yield from (mode_hit(info, 0o600, shown) if mode else owner_hit(info, shown))
    return check


proxy_kubeconfig_mode = node_control(
    "4.1.3", "If proxy kubeconfig file exists ensure permissions are set to 600 or more restrictive", "medium", "",
    "chmod 600 <kube-proxy --kubeconfig>", offline=PROXY_BY_HAND + "stat -c %a <kubeconfig>",
    doc="The kubeconfig the running kube-proxy uses (clientConnection.kubeconfig with --config, else "
        "--kubeconfig; read in its own mount namespace) has mode 0600 or stricter: it holds kube-proxy's client "
        "credential.")(_proxy_kubeconfig(True))
proxy_kubeconfig_owner = node_control(
    "4.1.4", "If proxy kubeconfig file exists ensure ownership is set to root:root", "medium", "",
    "chown root:root <kube-proxy --kubeconfig>", offline=PROXY_BY_HAND + "stat -c %U:%G <kubeconfig>",
    doc="The kubeconfig the running kube-proxy uses is owned by root:root, so only root can change whose "
        "credential kube-proxy presents.")(_proxy_kubeconfig(False))

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
    """The address kube-proxy serves metrics on (metricsBindAddress with --config, else --metrics-bind-address;
    default 127.0.0.1:10249, pkg/proxy/apis/config/v1alpha1/defaults.go) has a loopback host: its metrics and
    /configz are served without authentication."""
    _need_proxy(cfg)
    v, where = proxy_value(cfg, "metrics-bind-address", "/metricsBindAddress", PROXY_METRICS_DEFAULT)
    if not isinstance(v, str):
        yield _proxy_ref(), _proxy_loc(cfg, "/metricsBindAddress"), "/metricsBindAddress", \
            f"{where}={said(v)} is not an address string"
        return
    host = _host_of(v)
    if not host.startswith(_LOOPBACK):
        shown = host or "every interface"
        yield _proxy_ref(), _proxy_loc(cfg, "/metricsBindAddress"), "/metricsBindAddress", \
            f"{where}={v}: metrics served on {shown}, not only on localhost"
