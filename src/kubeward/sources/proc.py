"""The node's running Kubernetes components, read from /proc: what each process really runs with.

A component is recognised by what it executes, not by a process name: argv[0]'s base name (`kube-apiserver`,
`etcd`, `kubelet`, ...), or a multi-call binary followed by the component's subcommand (`hyperkube
kube-apiserver`, the test harness's `kubeward-k8s apiserver`). Wrappers that only start the component (go-runner,
a shell) are not the component: the component is their child, with its own command line.

Paths a process names are read where that process sees them: below /proc/PID/root (its mount namespace, so a
containerised kube-proxy's config is its own, not the host's), relative paths against /proc/PID/cwd.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..findings import InputError
from .node import Flags, parse_flags

# component -> the executable base names and multi-call subcommands that run it
EXECUTABLES = {
    "kube-apiserver": ("kube-apiserver",),
    "kube-controller-manager": ("kube-controller-manager",),
    "kube-scheduler": ("kube-scheduler",),
    "etcd": ("etcd",),
    "kubelet": ("kubelet",),
    "kube-proxy": ("kube-proxy",),
}
# hyperkube (cmd/hyperkube, Kubernetes <= 1.18) took `kube-apiserver` or `apiserver`; kubeward-k8s is the
# harness's (e2e/apiserver/main.go) and takes `apiserver` / `controller-manager`.
MULTICALL = frozenset({"hyperkube", "kubeward-k8s"})
SUBCOMMANDS = {
    "apiserver": "kube-apiserver", "kube-apiserver": "kube-apiserver",
    "controller-manager": "kube-controller-manager", "kube-controller-manager": "kube-controller-manager",
    "scheduler": "kube-scheduler", "kube-scheduler": "kube-scheduler",
    "kubelet": "kubelet", "proxy": "kube-proxy", "kube-proxy": "kube-proxy",
}
_BY_EXE = {exe: comp for comp, exes in EXECUTABLES.items() for exe in exes}


@dataclass(frozen=True, slots=True)
class Process:
    """One running component: its pid, full argv, and the arguments its flag parser reads."""

    pid: int
    component: str
    argv: tuple[str, ...]
    flag_args: tuple[str, ...]
    proc: Path = Path("/proc")

    @property
    def source(self) -> str:
        """Where its flags were read, as a finding location names it."""
        return f"{self.proc}/{self.pid}/cmdline"

    def flags(self) -> Flags:
        return parse_flags(list(self.flag_args), "goflag" if self.component == "etcd" else "pflag")

    def environ(self) -> dict[str, str]:
        """The process environment (etcd reads ETCD_* variables for flags not given); {} when not readable."""
        try:
            raw = (self.proc / str(self.pid) / "environ").read_bytes()
        except OSError:
            return {}
        out: dict[str, str] = {}
        for item in raw.split(b"\0"):
            name, eq, value = item.decode("utf-8", "replace").partition("=")
            if eq:
                out[name] = value
        return out

    def host_path(self, path: str) -> Path:
        """A path this process names, as the process sees it (its root and working directory)."""
        base = self.proc / str(self.pid)
        if not os.path.isabs(path):
            try:
                cwd = os.readlink(base / "cwd")
            except OSError:
                cwd = "/"
            path = os.path.join(cwd, path)
        root = base / "root"
        return root / path.lstrip("/") if os.access(root, os.X_OK) else Path(path)


def identify(argv: list[str]) -> tuple[str, list[str]] | None:
    """(component, flag arguments) for a command line that runs a Kubernetes component, else None."""
    if not argv:
        return None
    exe = os.path.basename(argv[0])
    if exe in _BY_EXE:
        return _BY_EXE[exe], argv[1:]
    if exe in MULTICALL and len(argv) > 1 and argv[1] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[1]], argv[2:]
    return None


@dataclass(slots=True)
class Discovery:
    """The components found running, each with every process that runs it, and what could not be read."""

    processes: dict[str, list[Process]] = field(default_factory=dict)
    errors: list[InputError] = field(default_factory=list)
    unreadable: int = 0  # processes whose command line could not be read (not ours to see)

    def one(self, component: str) -> Process | None:
        """The single process of a component; None when absent or ambiguous (an error says which)."""
        found = self.processes.get(component, [])
        return found[0] if len(found) == 1 else None


def read_cmdline(proc: Path, pid: int) -> list[str] | None:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return []  # kernel threads and zombies have none
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", "replace") for p in parts]


def discover(proc: Path = Path("/proc"), pids: frozenset[int] | None = None) -> Discovery:
    """Every running component below `proc` (only `pids` when given: a node running several copies)."""
    found = Discovery()
    try:
        entries = sorted(int(e.name) for e in proc.iterdir() if e.name.isdigit())
    except OSError as exc:
        found.errors.append(InputError(str(proc), f"cannot list processes: {exc.strerror or exc}"))
        return found
    if pids is not None:
        for pid in sorted(pids - set(entries)):
            found.errors.append(InputError(f"{proc}/{pid}", "no such process"))
    for pid in entries:
        if pids is not None and pid not in pids:
            continue
        argv = read_cmdline(proc, pid)
        if argv is None:
            found.unreadable += 1
            continue
        known = identify(argv)
        if known is None:
            if pids is not None:
                found.errors.append(InputError(f"{proc}/{pid}", f"runs {os.path.basename(argv[0]) if argv else 'nothing'}, "
                                                                 "not a Kubernetes component"))
            continue
        comp, args = known
        found.processes.setdefault(comp, []).append(Process(pid, comp, tuple(argv), tuple(args), proc))
    for comp, procs in found.processes.items():
        if len(procs) > 1:
            shown = ", ".join(str(p.pid) for p in procs)
            found.errors.append(InputError(str(proc), f"{len(procs)} {comp} processes (pids {shown}): choose one "
                                                      "with --pid; the component is not assessed"))
    return found


def etcd_env_flags(p: Process, flags: Flags) -> Flags:
    """etcd's flags with its ETCD_<FLAG> environment variables for the flags the command line does not set
    (go.etcd.io/etcd/pkg/flags.SetFlagsFromEnv: name upper-cased, `-` as `_`, only for flags not set)."""
    env = p.environ()
    merged = Flags({k: list(v) for k, v in flags.values.items()})
    for name, value in env.items():
        if not name.startswith("ETCD_"):
            continue
        flag = name[5:].lower().replace("_", "-")
        if flag and flag not in merged.values:
            merged.values[flag] = [value]
            merged.origin[flag] = f"environment {name}"
    return merged
