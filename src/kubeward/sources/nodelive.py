"""A node's configuration as it runs: each component's flags from its process, merged with the files it names.

Precedence, as each binary applies it:
- kube-apiserver, kube-controller-manager, kube-scheduler: the command line alone (pflag, last wins).
- etcd: the command line, then ETCD_* environment variables for flags it does not set (pkg/flags.SetFlagsFromEnv);
  with `--config-file`, that file alone.
- kubelet: built-in defaults < `--config` file < `--config-dir` drop-ins (`*.conf`, in name order) < command-line
  flags ("Command-line flags override configuration from this file", kubelet reference, --config; drop-ins: the
  kubelet-config-file task page). Without `--config` the defaults are the command-line API's legacy ones
  (cmd/kubelet/app/options/options.go applyLegacyDefaults: anonymous auth on, webhook authn off, authorization
  AlwaysAllow, read-only port 10255).
- kube-proxy: with `--config`, the file replaces every flag but the logging ones (cmd/kube-proxy/app/server.go
  Options.Complete: `o.config = c` after loading; the "all flags other than --config ... are deprecated" warning);
  without it, the flags over their defaults.
Static-pod manifests on disk are kept beside the live components, so a difference between the two is a finding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..findings import InputError
from ..resource import Resource
from .files import load_paths
from .node import COMPONENTS, Component, Flags, NodeConfig, load_node
from .proc import Discovery, Process, discover, etcd_env_flags

KUBELET_LEGACY_DEFAULTS: dict[str, Any] = {
    "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
    "authorization": {"mode": "AlwaysAllow"},
    "readOnlyPort": 10255,
}
PROXY_METRICS_DEFAULT = "127.0.0.1:10249"  # pkg/proxy/apis/config/v1alpha1/defaults.go (and the flag's default)


def _process_pod(p: Process) -> Resource:
    """The object a live component's findings are about: its pod as kubeadm names it, located at its cmdline."""
    return Resource({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": p.component, "namespace": "kube-system"}},
                    file=p.source)


def _load_config(path: Path, shown: str, kind: str, errors: list[InputError]) -> Resource | None:
    if not path.is_file():
        errors.append(InputError(shown, "no such file (named by the running process)" if not path.exists()
                                 else "not a regular file"))
        return None
    loaded = load_paths([str(path)])
    errors += loaded.errors
    docs = [r for r in loaded.resources if r.kind == kind]
    if not docs and not loaded.errors:
        errors.append(InputError(shown, f"no {kind} document"))
    return docs[0] if docs else None


def merge_dropin(base: dict[str, Any], over: dict[str, Any]) -> None:
    """A drop-in over the config, in place: mappings merge key by key, anything else is replaced (the kubelet
    decodes each drop-in onto the configuration built so far)."""
    for key, value in over.items():
        if key in ("apiVersion", "kind"):
            continue
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_dropin(base[key], value)
        else:
            base[key] = value


def _kubelet(cfg: NodeConfig, p: Process) -> None:
    flags = p.flags()
    cfg.kubelet_flags, cfg.kubelet_process = flags, p
    conf = flags.get("config")
    if not conf:
        cfg.kubelet = Resource({"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                                **KUBELET_LEGACY_DEFAULTS}, file=p.source)
        cfg.kubelet_source = "the kubelet's built-in defaults (no --config)"
        return
    path = p.host_path(conf)
    res = _load_config(path, conf, "KubeletConfiguration", cfg.errors)
    if res is None:
        return
    cfg.kubelet, cfg.kubelet_path, cfg.kubelet_source = res, path, conf
    dropins = flags.get("config-dir")
    if dropins:
        d = p.host_path(dropins)
        if not d.is_dir():
            cfg.errors.append(InputError(dropins, "--config-dir is not a directory"))
            return
        for f in sorted(x for x in d.iterdir() if x.name.endswith(".conf") and x.is_file()):
            over = _load_config(f, f"{dropins}/{f.name}", "KubeletConfiguration", cfg.errors)
            if over is not None:
                merge_dropin(res.obj, over.obj)
                cfg.kubelet_source += f" + {dropins}/{f.name}"


def proxy_value(cfg: NodeConfig, flag: str, path: str, default: object) -> tuple[object, str]:
    """(value, where) for kube-proxy: the config file alone when it runs with --config, else flag > default."""
    if cfg.proxy_path is not None and cfg.proxy is not None:
        node: Any = cfg.proxy.obj
        for k in path.strip("/").split("/"):
            node = node.get(k) if isinstance(node, dict) else None
        shown = f"{path} in {cfg.proxy_path.name}"
        return (default, f"{shown} unset") if node in (None, "") else (node, shown)
    if cfg.proxy_flags.has(flag):
        return cfg.proxy_flags.get(flag), f"--{flag}"
    return default, f"--{flag} unset"


def _proxy(cfg: NodeConfig, p: Process) -> None:
    flags = p.flags()
    cfg.proxy_flags, cfg.proxy_process = flags, p
    conf = flags.get("config")
    if conf:
        path = p.host_path(conf)
        res = _load_config(path, conf, "KubeProxyConfiguration", cfg.errors)
        if res is None:
            return
        cfg.proxy, cfg.proxy_path = res, path
    else:
        cfg.proxy = Resource({"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration"},
                             file=p.source)
    kubeconfig, _ = proxy_value(cfg, "kubeconfig", "/clientConnection/kubeconfig", "")
    if kubeconfig:
        cfg.proxy_kubeconfig = p.host_path(str(kubeconfig))


def _scalar(v: object) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else ",".join(map(str, v)) if isinstance(v, list) else str(v)


def etcd_config_flags(p: Process, conf: str, errors: list[InputError]) -> tuple[Flags, Path] | None:
    """etcd run with --config-file: the file alone ("if a configuration file is provided, other command line
    flags and environment variables will be ignored", etcd --help). Its keys are the flag names, with the TLS
    settings under `client-transport-security` and `peer-transport-security` (the `peer-` flags)."""
    from .files import load_config

    path = p.host_path(conf)
    docs, problems = load_config(str(path))
    errors += problems
    doc = docs[0] if docs else None
    if problems:
        return None
    if not isinstance(doc, dict):
        errors.append(InputError(conf, "etcd --config-file is not a YAML mapping"))
        return None
    flags = Flags()
    for key, value in doc.items():
        section = {"client-transport-security": "", "peer-transport-security": "peer-"}.get(str(key))
        items = value.items() if section is not None and isinstance(value, dict) else [(key, value)]
        for k, v in items:
            if v is None or isinstance(v, dict):
                continue
            name = f"{section or ''}{k}"
            flags.values[name] = [_scalar(v)]
            flags.origin[name] = f"{conf} (--config-file)"
    return flags, path


def from_processes(found: Discovery, disk: NodeConfig) -> NodeConfig:
    """The NodeConfig of the running components; `disk` gives the manifests and node files beside them."""
    cfg = NodeConfig(disk.root, disk.manifests_dir, errors=[*disk.errors, *found.errors], live=True)
    cfg.disk_components = dict(disk.components)
    for name in COMPONENTS:
        p = found.one(name)
        if p is None:
            continue
        flags: Flags = p.flags()
        source = Path(p.source)
        if name == "etcd" and flags.get("config-file"):
            read = etcd_config_flags(p, str(flags.get("config-file")), cfg.errors)
            if read is None:
                continue  # an error names the file; etcd is not assessed
            flags, source = read
        elif name == "etcd":
            flags = etcd_env_flags(p, flags)
        cfg.components[name] = Component(name, source, _process_pod(p), 0, list(p.argv), flags, "",
                                         pid=p.pid, on_disk=disk.components.get(name), process=p)
    kubelet = found.one("kubelet")
    if kubelet is not None:
        _kubelet(cfg, kubelet)
    proxy = found.one("kube-proxy")
    if proxy is not None:
        _proxy(cfg, proxy)
    return cfg


def load_live(proc: Path = Path("/proc"), *, root: Path = Path("/"), pids: frozenset[int] | None = None,
              manifests: Path | None = None) -> tuple[NodeConfig, Discovery]:
    """Discover the running components under `proc` and read what they run with."""
    found = discover(proc, pids)
    return from_processes(found, load_node(root, manifests)), found
