"""CIS 1.1 and 4.1: modes and owners of the control-plane and worker files (manifests, kubeconfigs, PKI, etcd
data, kubelet service and configuration files).

A file that is not there or cannot be examined is not assessed (NotRead), never passed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from ...sources.files import display_path
from ...sources.node import FileInfo, NodeConfig, stat_path
from .base import CM, SCH, A, E, Hit, K, NotRead, kval, mode_hit, node_control, owner_hit, stat_or_not_read

# ---- 1.1.1-1.1.8 static-pod manifests ---------------------------------------------------------------------------


def _manifest_files(component: str, mode: bool) -> Callable[[NodeConfig], Iterator[Hit]]:
    def check(cfg: NodeConfig) -> Iterator[Hit]:
        c = cfg.components[component]
        manifest = c.static_manifest  # live: the manifest beside the running process, if there is one
        if manifest is None:
            raise NotRead(f"{component} runs (pid {c.pid}) without a static-pod manifest in "
                          f"{display_path(str(cfg.manifests_dir))}")
        shown = manifest.name
        info = stat_or_not_read(manifest, shown)
        yield from (mode_hit(info, 0o600, shown) if mode else owner_hit(info, shown))
    return check


_LABEL = {A: "API server", CM: "controller manager", SCH: "scheduler", E: "etcd"}
for _i, _comp in enumerate((A, CM, SCH, E)):
    node_control(f"1.1.{2 * _i + 1}",
                 f"Ensure that the {_LABEL[_comp]} pod specification file permissions are set to 600 or more "
                 "restrictive", "medium", _comp, f"chmod 600 /etc/kubernetes/manifests/{_comp}.yaml",
                 doc=f"The {_comp} static-pod manifest has mode 0600 or stricter. The kubelet runs whatever this "
                     f"file says as {_comp}: whoever can write it controls the component (its flags, image and "
                     "host mounts).")(_manifest_files(_comp, True))
    node_control(f"1.1.{2 * _i + 2}",
                 f"Ensure that the {_LABEL[_comp]} pod specification file ownership is set to root:root", "medium",
                 _comp, f"chown root:root /etc/kubernetes/manifests/{_comp}.yaml",
                 doc=f"The {_comp} static-pod manifest is owned by root:root, so only root may change what the "
                     "kubelet runs from it.")(_manifest_files(_comp, False))


# ---- 1.1.13-1.1.18, 4.1.5-4.1.6 kubeconfig files ----------------------------------------------------------------

def _conf_files(names: tuple[str, ...], mode: bool, mask: int = 0o600) -> Callable[[NodeConfig], Iterator[Hit]]:
    def check(cfg: NodeConfig) -> Iterator[Hit]:
        found = [(n, info) for n in names if (info := stat_path(cfg.host(f"/etc/kubernetes/{n}"))) is not None]
        if not found:
            raise NotRead(f"{' or '.join('/etc/kubernetes/' + n for n in names)} not found on the node")
        for n, info in found:
            yield from (mode_hit(info, mask, n) if mode else owner_hit(info, n))
    return check


_KUBECONFIGS = (
    ("1.1.13", "Ensure that the default administrative credential file permissions are set to 600",
     "1.1.14", "Ensure that the default administrative credential file ownership is set to root:root",
     ("admin.conf", "super-admin.conf"), "high",
     "they hold client certificates of cluster administrators (super-admin.conf is in system:masters, which RBAC "
     "cannot restrict)"),
    ("1.1.15", "Ensure that the scheduler.conf file permissions are set to 600 or more restrictive",
     "1.1.16", "Ensure that the scheduler.conf file ownership is set to root:root",
     ("scheduler.conf",), "medium", "it holds the scheduler's client credential"),
    ("1.1.17", "Ensure that the controller-manager.conf file permissions are set to 600 or more restrictive",
     "1.1.18", "Ensure that the controller-manager.conf file ownership is set to root:root",
     ("controller-manager.conf",), "medium",
     "it holds the controller manager's client credential, which can read every secret and create any pod"),
    ("4.1.5", "Ensure that the --kubeconfig kubelet.conf file permissions are set to 600 or more restrictive",
     "4.1.6", "Ensure that the --kubeconfig kubelet.conf file ownership is set to root:root",
     ("kubelet.conf",), "medium", "it holds the node's client credential (system:node:<name>)"),
)
def _kubelet_kubeconfig(mode: bool) -> Callable[[NodeConfig], Iterator[Hit]]:
    """The kubeconfig the running kubelet names (--kubeconfig), else kubeadm's /etc/kubernetes/kubelet.conf."""
    fixed = _conf_files(("kubelet.conf",), mode)

    def check(cfg: NodeConfig) -> Iterator[Hit]:
        named = cfg.kubelet_flags.get("kubeconfig") if cfg.kubelet_process is not None else None
        if not named:
            yield from fixed(cfg)
            return
        info = stat_or_not_read(cfg.kubelet_path_of(named), named)
        yield from (mode_hit(info, 0o600, named) if mode else owner_hit(info, named))
    return check


for _mode_id, _mode_title, _owner_id, _owner_title, _names, _sev, _why in _KUBECONFIGS:
    _paths = " ".join(f"/etc/kubernetes/{n}" for n in _names)
    _kubelet = _names == ("kubelet.conf",)  # live: the file the running kubelet names
    node_control(_mode_id, _mode_title, _sev, "", f"chmod 600 {_paths}",
                 doc=f"{_paths} has mode 0600 or stricter: {_why}; whoever reads the file is that client."
                 )(_kubelet_kubeconfig(True) if _kubelet else _conf_files(_names, True))
    node_control(_owner_id, _owner_title, _sev, "", f"chown root:root {_paths.split()[0]}",
                 doc=f"{_paths} is owned by root:root: {_why}."
                 )(_kubelet_kubeconfig(False) if _kubelet else _conf_files(_names, False))


# ---- 1.1.19-1.1.21 the PKI directory ----------------------------------------------------------------------------

def _pki_files(cfg: NodeConfig) -> Iterator[tuple[str, FileInfo]]:
    base = cfg.host("/etc/kubernetes/pki")
    if not base.is_dir():
        raise NotRead("/etc/kubernetes/pki is not a directory on the node")
    for dirpath, _dirs, files in os.walk(base):
        for name in sorted(files):
            p = os.path.join(dirpath, name)
            info = stat_path(type(base)(p))
            if info is not None:
                yield os.path.relpath(p, cfg.root), info


def _pki_mode(cfg: NodeConfig, suffix: str, mask: int) -> Iterator[Hit]:
    files = [(shown, info) for shown, info in _pki_files(cfg) if shown.endswith(suffix)]
    if not files:
        raise NotRead(f"no *{suffix} file under /etc/kubernetes/pki")
    for shown, info in files:
        yield from mode_hit(info, mask, "/" + shown)


@node_control("1.1.19", "Ensure that the Kubernetes PKI directory and file ownership is set to root:root", "medium",
              "", "chown -R root:root /etc/kubernetes/pki/")
def pki_owner(cfg: NodeConfig) -> Iterator[Hit]:
    """Every file under /etc/kubernetes/pki is owned by root:root: the folder holds the CA keys, and the owner of a
    CA key can issue any identity the cluster trusts."""
    for shown, info in _pki_files(cfg):
        yield from owner_hit(info, "/" + shown)


@node_control("1.1.20", "Ensure that the Kubernetes PKI certificate file permissions are set to 644 or more "
              "restrictive", "low", "", "chmod 644 /etc/kubernetes/pki/*.crt")
def pki_crt_mode(cfg: NodeConfig) -> Iterator[Hit]:
    """Every *.crt under /etc/kubernetes/pki has mode 0644 or stricter: certificates are public, but a writable one
    lets its writer replace a trusted CA."""
    yield from _pki_mode(cfg, ".crt", 0o644)


@node_control("1.1.21", "Ensure that the Kubernetes PKI key file permissions are set to 600", "high", "",
              "chmod 600 /etc/kubernetes/pki/*.key")
def pki_key_mode(cfg: NodeConfig) -> Iterator[Hit]:
    """Every *.key under /etc/kubernetes/pki has mode 0600 or stricter: a readable CA or service-account signing key
    lets any local user mint cluster credentials."""
    yield from _pki_mode(cfg, ".key", 0o600)


@node_control("1.1.11", "Ensure that the etcd data directory permissions are set to 700 or more restrictive",
              "medium", E, "chmod 700 /var/lib/etcd")
def etcd_data_dir(cfg: NodeConfig) -> Iterator[Hit]:
    """etcd's --data-dir (default /var/lib/etcd) has mode 0700 or stricter: it holds every object of the cluster,
    secrets included, readable without any API authorization."""
    e = cfg.components[E]
    d = e.flags.get("data-dir") or "/var/lib/etcd"
    yield from mode_hit(stat_or_not_read(cfg.path_of(e, d), d), 0o700, d)


# ---- 4.1 worker node files ----------------------------------------------------------------------------------------

KUBELET_SVC = ("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
               "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
               "/etc/systemd/system/kubelet.service", "/lib/systemd/system/kubelet.service")


def _svc_files(mode: bool) -> Callable[[NodeConfig], Iterator[Hit]]:
    def check(cfg: NodeConfig) -> Iterator[Hit]:
        found = [(p, info) for p in KUBELET_SVC if (info := stat_path(cfg.host(p))) is not None and not info.is_dir]
        if not found:
            raise NotRead("no kubelet service file at " + ", ".join(KUBELET_SVC))
        for p, info in found:
            yield from (mode_hit(info, 0o600, p) if mode else owner_hit(info, p))
    return check


node_control("4.1.1", "Ensure that the kubelet service file permissions are set to 600 or more restrictive", "medium",
             K, "chmod 600 /etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
             doc="Every kubelet systemd unit or drop-in found (kubeadm's 10-kubeadm.conf first) has mode 0600 or "
                 "stricter: the unit sets the kubelet's command line, so its writer sets the kubelet's flags."
             )(_svc_files(True))
node_control("4.1.2", "Ensure that the kubelet service file ownership is set to root:root", "medium", K,
             "chown root:root /etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
             doc="Every kubelet systemd unit or drop-in found is owned by root:root, so only root sets the kubelet's "
                 "flags.")(_svc_files(False))


def _client_ca_file(mode: bool) -> Callable[[NodeConfig], Iterator[Hit]]:
    def check(cfg: NodeConfig) -> Iterator[Hit]:
        v, _ = kval(cfg, "client-ca-file", "/authentication/x509/clientCAFile", "")
        if not v:
            raise NotRead("the kubelet has no clientCAFile (4.2.3 reports it)")
        info = stat_or_not_read(cfg.kubelet_path_of(str(v)), str(v))
        yield from (mode_hit(info, 0o644, str(v)) if mode else owner_hit(info, str(v)))
    return check


node_control("4.1.7", "Ensure that the certificate authorities file permissions are set to 644 or more restrictive",
             "low", K, "chmod 644 <clientCAFile>",
             doc="The kubelet's client CA file (authentication.x509.clientCAFile or --client-ca-file) has mode 0644 "
                 "or stricter: whoever writes it chooses which client certificates the kubelet API accepts."
             )(_client_ca_file(True))
node_control("4.1.8", "Ensure that the client certificate authorities file ownership is set to root:root", "low", K,
             "chown root:root <clientCAFile>",
             doc="The kubelet's client CA file is owned by root:root, so only root chooses whom the kubelet API "
                 "trusts.")(_client_ca_file(False))


@node_control("4.1.9", "If the kubelet config.yaml configuration file is being used validate permissions set to 600 "
              "or more restrictive", "medium", K, "chmod 600 /var/lib/kubelet/config.yaml")
def kubelet_conf_mode(cfg: NodeConfig) -> Iterator[Hit]:
    """The KubeletConfiguration file (--config, kubeadm: /var/lib/kubelet/config.yaml) has mode 0600 or stricter: it
    sets the kubelet's authentication, authorization and ports."""
    if cfg.kubelet_path is None:
        raise NotRead("the kubelet runs without --config: no configuration file")
    yield from mode_hit(stat_or_not_read(cfg.kubelet_path, cfg.kubelet_path.name), 0o600, cfg.kubelet_path.name)


@node_control("4.1.10", "If the kubelet config.yaml configuration file is being used validate file ownership is set "
              "to root:root", "medium", K, "chown root:root /var/lib/kubelet/config.yaml")
def kubelet_conf_owner(cfg: NodeConfig) -> Iterator[Hit]:
    """The KubeletConfiguration file is owned by root:root, so only root changes how the kubelet authenticates and
    authorizes requests."""
    if cfg.kubelet_path is None:
        raise NotRead("the kubelet runs without --config: no configuration file")
    yield from owner_hit(stat_or_not_read(cfg.kubelet_path, cfg.kubelet_path.name), cfg.kubelet_path.name)
