"""What every node check module shares: the registration decorator, typed flag and file readers, hit builders.

A node check receives the NodeConfig (sources/node.py) and yields Hits: (object, location, path, message). It is
registered in the one control registry (shape `node`) with the component it needs as its kind, so the runner
knows when it cannot be judged on this node. Its docstring says what it checks and why; the decorator adds the
benchmark reference, and `kubeward controls` / docs/controls.md print the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ...findings import Location, ObjectRef
from ...sources.files import display_path
from ...sources.node import Component, FileInfo, NodeConfig, get_path, parse_bool, stat_path
from ..registry import Shape, control, describe

Hit = tuple[ObjectRef, Location, str, str]
NodeCheck = Callable[[NodeConfig], Iterable[Hit]]

# Component names as the static-pod manifests name them; "kubelet" is the KubeletConfiguration (+ its flags).
A, CM, SCH, E, K = "kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kubelet"
CONTROL_PLANE = (A, CM, SCH, E)
# The kube-bench file of each benchmark section (cfg/cis-1.12/): the reference every check names.
BENCH_FILE = {"1": "master.yaml", "2": "etcd.yaml", "3": "controlplane.yaml", "4": "node.yaml", "5": "policies.yaml"}


class NotRead(Exception):
    """A check's input could not be read on this node: the check is not assessed (WARN), never passed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Checks only the running node answers (kube-proxy, manifest drift): id -> how to check it by hand offline,
# where the runner reports them as OFFLINE + how and the benchmark view shows them MANUAL.
LIVE_ONLY: dict[str, str] = {}
OFFLINE = "judged on the live node only; check by hand: "


def node_control(cis: str, title: str, severity: str, needs: str, remediation: str, *, extra_id: str = "",
                 frameworks: tuple[str, ...] = (), doc: str = "", offline: str = "") -> Callable[[NodeCheck], NodeCheck]:
    """Register a node check: id `KW-CIS-<cis>` (or `extra_id` for a check beyond the benchmark), framework
    `cis-<cis>`, `needs` the component it reads ("" when it reads only files). `doc` stands in for the docstring
    of a check made by a factory (one closure per component or plugin). `offline`: the check needs the running
    node, and this says how to check it by hand when node check reads files."""

    def deco(f: NodeCheck) -> NodeCheck:
        cid = extra_id or f"KW-CIS-{cis}"
        if offline:
            LIVE_ONLY[cid] = offline
        if doc:
            f.__doc__ = doc
        text = describe(f)
        if not text:
            raise ValueError(f"{cid}: a node check says in its docstring what it checks and why")
        if cis:
            text += (f"\n\nUpstream: CIS Kubernetes Benchmark v1.12 {cis} (kube-bench "
                     f"cfg/cis-1.12/{BENCH_FILE[cis.split('.')[0]]}).")
        fws = ((f"cis-{cis}",) if cis else ()) + frameworks
        control(cid, title, severity, "node", frameworks=fws, remediation=remediation, description=text,
                shape=Shape.NODE, kinds=(needs,) if needs else ())(f)
        return f

    return deco


# ---- static-pod flags ----------------------------------------------------------------------------------------

def component_ref(c: Component) -> ObjectRef:
    return ObjectRef("v1", "Pod", c.resource.namespace or "kube-system", c.resource.name or c.name)


def flag_hit(c: Component, flag: str, message: str) -> Hit:
    loc = Location(file=display_path(str(c.manifest)), line=c.line_of_flag(flag))
    return component_ref(c), loc, f"/spec/containers/{c.container}/command", message


def require_set(c: Component, *flags: str) -> Iterator[Hit]:
    missing = [f for f in flags if not c.flags.get(f)]
    if missing:
        yield flag_hit(c, missing[0], f"{' and '.join('--' + m for m in missing)} not set")


def want_bool(c: Component, flag: str, want: bool, default: bool) -> Iterator[Hit]:
    """The flag read as the component's pflag bool (absent = its default); a value pflag refuses is a hit."""
    raw = c.flags.get(flag)
    value = c.flags.bool(flag, default)
    if value is None:
        yield flag_hit(c, flag, f"--{flag}={raw} is not a boolean (the component will not start)")
    elif value != want:
        how = f"--{flag}={raw}" if raw is not None else f"--{flag} unset (defaults to {str(default).lower()})"
        yield flag_hit(c, flag, f"{how}; want {str(want).lower()}")


def want_int_at_least(c: Component, flag: str, minimum: int) -> Iterator[Hit]:
    raw = c.flags.get(flag)
    if raw is None:
        yield flag_hit(c, flag, f"--{flag} unset (defaults to 0); want >= {minimum}")
        return
    try:
        v = int(raw)
    except ValueError:
        yield flag_hit(c, flag, f"--{flag}={raw} is not an integer")
        return
    if v < minimum:
        yield flag_hit(c, flag, f"--{flag}={v}; want >= {minimum}")


# ---- files on the node ---------------------------------------------------------------------------------------

def file_ref(path: str) -> ObjectRef:
    return ObjectRef("kubeward.io/v1", "File", None, path)


def mode_hit(info: FileInfo, mask: int, shown: str) -> Iterator[Hit]:
    if info.mode & ~mask:
        yield (file_ref(shown), Location(file=display_path(str(info.path))), "/mode",
               f"{shown} has mode {info.mode:04o}; want {mask:04o} or more restrictive")


def owner_hit(info: FileInfo, shown: str, uid: int = 0, gid: int = 0, want: str = "root:root") -> Iterator[Hit]:
    if (info.uid, info.gid) != (uid, gid):
        yield (file_ref(shown), Location(file=display_path(str(info.path))), "/owner",
               f"{shown} is owned by {info.uid}:{info.gid}; want {want}")


def stat_or_not_read(path: Path, shown: str) -> FileInfo:
    """The file's mode and owner, or NotRead: a file that cannot be examined is not assessed, never passed."""
    info = stat_path(path)
    if info is None:
        raise NotRead(f"{shown} not found on the node (or not readable)")
    return info


# ---- the kubelet ------------------------------------------------------------------------------------------------
# KubeletConfiguration v1beta1 defaults: pkg/kubelet/apis/config/v1beta1/defaults.go (anonymous false, webhook
# authn true, authorization Webhook, readOnlyPort 0, streamingConnectionIdleTimeout 4h, makeIPTablesUtilChains
# true, rotateCertificates false). Command-line flags override the file (kubeadm-flags.env offline; the running
# kubelet's command line live, see sources/nodelive.py).

def kubelet_ref() -> ObjectRef:
    return ObjectRef("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration", None, "kubelet")


def kval(cfg: NodeConfig, flag: str, path: str, default: object) -> tuple[object, str]:
    """(value, where) with flag > config file > default."""
    if cfg.kubelet_flags.has(flag):
        return cfg.kubelet_flags.get(flag), f"--{flag}"
    assert cfg.kubelet is not None
    v = get_path(cfg.kubelet.obj, *path.strip("/").split("/"))
    return (default, f"{path} unset") if v is None else (v, path)


def khit(cfg: NodeConfig, path: str, message: str) -> Hit:
    """A kubelet finding located where its value came from: messages here start with `kval`'s `where`, so one
    starting `--` names a command-line value, located at the running kubelet's cmdline when there is one."""
    assert cfg.kubelet is not None
    if message.startswith("--") and cfg.kubelet_process is not None:
        return kubelet_ref(), Location(file=cfg.kubelet_process.source), path or "/", message
    return kubelet_ref(), cfg.kubelet.location(path), path or "/", message


def said(v: object) -> str:
    """A value as the file or command line spells it: a YAML/JSON boolean is `true`/`false` (Python would print
    `True`), so `/rotateCertificates=false` reads as the KubeletConfiguration the user wrote."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return "null" if v is None else str(v)


def as_bool(v: object) -> bool | None:
    return v if isinstance(v, bool) else parse_bool(str(v))


def bind_local(cfg: NodeConfig, component: str) -> Iterator[Hit]:
    """--bind-address is loopback (the controller manager's and scheduler's secure port; default 0.0.0.0)."""
    c = cfg.components[component]
    addr = c.flags.get("bind-address")
    if addr not in ("127.0.0.1", "::1", "localhost"):
        how = f"--bind-address={addr}" if addr else "--bind-address unset (defaults to 0.0.0.0)"
        yield flag_hit(c, "bind-address", f"{how}: metrics/health served on all interfaces")
