"""Node configuration as the components see it: static-pod flags, kubelet config, file modes and owners.

Flags follow spf13/pflag semantics, which every Kubernetes component uses:
- `--name=value` or `--name value`; a boolean flag given bare means true (`--flag=false` to turn it off);
- booleans parse with Go's strconv.ParseBool (1, t, T, TRUE, true, True / 0, f, F, FALSE, false, False);
- a scalar flag repeated: the last one wins; a string-slice flag (e.g. --enable-admission-plugins) repeated:
  the values accumulate (pflag stringSlice.Set appends after the first Set);
- arguments after a bare `--` are not flags; positional arguments between flags are skipped (pflag parses
  interspersed arguments);
- `_` and `-` in a flag name are the same (component-base/cli/run.go installs cliflag.WordSepNormalizeFunc).
etcd parses with Go's standard `flag` package instead (`grammar="goflag"`): `-name` and `--name` are the same,
there is no name normalisation, and parsing stops at the first argument that is not a flag.
Paths inside manifests are host paths; with --root they are resolved below that directory.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..findings import InputError
from ..resource import Resource
from ..sources.files import display_path, load_paths

if TYPE_CHECKING:
    from .proc import Process

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
# Boolean flags (pflag: a bare flag means true; the next argument is never its value).
BOOL_FLAGS = frozenset({
    "anonymous-auth", "profiling", "allow-privileged", "service-account-lookup", "use-service-account-credentials",
    "client-cert-auth", "peer-client-cert-auth", "auto-tls", "peer-auto-tls", "enable-bootstrap-token-auth",
    "leader-elect", "strict-reconfig-check", "enable-v2", "experimental-initial-corrupt-check",
    "rotate-certificates", "make-iptables-util-chains", "protect-kernel-defaults", "read-only-port-enabled",
    "rotate-server-certificates", "seccomp-default", "fail-swap-on", "register-node", "serialize-image-pulls",
    "enable-server", "enable-debugging-handlers", "cleanup", "masquerade-all", "bind-address-hard-fail",
    "enable-aggregator-routing", "enable-priority-and-fairness", "enable-garbage-collector",
    "service-account-extend-token-expiration", "enable-logs-handler",
    "enable-dynamic-provisioning", "allocate-node-cidrs", "enable-pprof", "enable-grpc-gateway",
    "force-new-cluster",
})
SLICE_FLAGS = frozenset({"enable-admission-plugins", "disable-admission-plugins", "authorization-mode",
                         "tls-cipher-suites", "cipher-suites", "api-audiences", "service-account-key-file",
                         "feature-gates"})
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(text: str) -> bool | None:
    """strconv.ParseBool; None when Go would reject the value (the component would not start)."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float | None:
    """time.ParseDuration in seconds ("0" is allowed bare); None when invalid."""
    t = text.strip()
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    if t == "0":
        return 0.0
    if not t:
        return None
    pos, total = 0, 0.0
    for m in _DURATION.finditer(t):
        if m.start() != pos or m.group(1) in ("", "."):
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total if pos == len(t) else None


@dataclass(slots=True)
class Flags:
    values: dict[str, list[str]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # flag -> where it came from, when not the command line

    def has(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str) -> str | None:
        v = self.values.get(name)
        return v[-1] if v else None

    def bool(self, name: str, default: bool) -> bool | None:
        v = self.get(name)
        return default if v is None else parse_bool(v)

    def list(self, name: str) -> list[str]:
        out: list[str] = []
        for v in self.values.get(name, []):
            out += [p.strip() for p in v.split(",") if p.strip()]
        return out


def parse_flags(argv: list[str], grammar: str = "pflag") -> Flags:
    """Flags as the component's parser reads them: `pflag` (every Kubernetes component) or `goflag` (etcd).

    A value-taking flag whose type kubeward does not know takes the next argument unless that one starts with
    `--` (pflag would take it; kubeward does not guess that a bare unknown flag is a string flag whose value
    looks like a flag)."""
    flags = Flags()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            if grammar == "goflag":  # flag.FlagSet.Parse stops at the first non-flag argument
                break
            continue
        body = arg[2:] if arg.startswith("--") else arg[1:]
        name, eq, value = body.partition("=")
        if grammar == "pflag":
            name = name.replace("_", "-")
        if eq:
            pass
        elif name in BOOL_FLAGS:
            value = "true"
        elif i < len(argv) and not argv[i].startswith("--"):
            value = argv[i]
            i += 1
        else:
            value = "true"
        if name in SLICE_FLAGS:
            flags.values.setdefault(name, []).append(value)
        else:
            flags.values[name] = [value]
    return flags


@dataclass(slots=True)
class FileInfo:
    path: Path
    mode: int
    uid: int
    gid: int
    is_dir: bool


def stat_path(path: Path) -> FileInfo | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return FileInfo(path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, stat.S_ISDIR(st.st_mode))


@dataclass(slots=True)
class Component:
    name: str
    manifest: Path
    resource: Resource
    container: int
    argv: list[str]
    flags: Flags
    text: str
    pid: int | None = None  # set when the flags are a running process's (`manifest` is then its cmdline)
    on_disk: Component | None = None  # live: the static-pod manifest of the same component, if any
    process: Process | None = None  # live: the process, which resolves the paths it names

    @property
    def static_manifest(self) -> Path | None:
        """The static-pod manifest file on disk (what 1.1.x judges), whichever source the flags came from."""
        if self.pid is None:
            return self.manifest
        return self.on_disk.manifest if self.on_disk is not None else None

    def line_of_flag(self, flag: str) -> int | None:
        """Line of the flag in the manifest (last occurrence, the one that wins); the object line otherwise."""
        found = None
        pat = re.compile(rf"(^|[\s\"'\[,])--{re.escape(flag)}(=|[\s\"',\]]|$)")
        for n, line in enumerate(self.text.splitlines(), 1):
            if pat.search(line):
                found = n
        return found or self.resource.line


@dataclass(slots=True)
class NodeConfig:
    root: Path
    manifests_dir: Path
    components: dict[str, Component] = field(default_factory=dict)
    kubelet: Resource | None = None
    kubelet_path: Path | None = None
    kubelet_flags: Flags = field(default_factory=Flags)
    errors: list[InputError] = field(default_factory=list)
    live: bool = False  # flags read from running processes (sources/nodelive.py), files from their views
    disk_components: dict[str, Component] = field(default_factory=dict)  # live: the static-pod manifests on disk
    kubelet_source: str = ""  # where the KubeletConfiguration values came from, for messages
    proxy: Resource | None = None  # KubeProxyConfiguration (--config), or the flags' built-in defaults
    proxy_path: Path | None = None
    proxy_flags: Flags = field(default_factory=Flags)
    proxy_kubeconfig: Path | None = None

    kubelet_process: Process | None = None
    proxy_process: Process | None = None

    def host(self, path: str) -> Path:
        """A host path as seen under --root."""
        return self.root / path.lstrip("/") if path else self.root

    def path_of(self, c: Component | None, path: str) -> Path:
        """A path a component names, where it sees it: its process's root and working directory when it runs,
        else below --root."""
        if c is not None and c.process is not None:
            return c.process.host_path(path)
        return self.host(path)

    def kubelet_path_of(self, path: str) -> Path:
        return self.kubelet_process.host_path(path) if self.kubelet_process is not None else self.host(path)


_SHELLS = frozenset({"sh", "bash", "dash", "ash"})
# What ends a command in a shell script: control operators and redirections (`>>log`, `2>&1`, `<in`).
_SHELL_END = re.compile(r"^(?:[;&|]+|\d*[<>].*)$")


def _invocation(words: list[str]) -> tuple[str, list[str]] | None:
    """(component, its own arguments) of the first component binary a command line runs: the words after the one
    whose basename is the binary (a wrapper such as kube-up's and kops' `/go-runner --log-file=… kube-apiserver`
    keeps its flags to itself), or after `hyperkube NAME` (`hyperkube apiserver` in older releases)."""
    for i, word in enumerate(words):
        if word.startswith("-"):
            continue  # a flag (or its `=value`), never the binary
        base = os.path.basename(word)
        if base in COMPONENTS:
            return base, words[i + 1:]
        if base == "hyperkube" and i + 1 < len(words):
            sub = words[i + 1]
            name = sub if sub in COMPONENTS else f"kube-{sub}"
            if name in COMPONENTS:
                return name, words[i + 2:]
    return None


def _shell_words(script: str) -> list[str] | None:
    """The first simple command of a `sh -c` script that can be read as words (POSIX quoting), up to the first
    control operator or redirection; None when the script does not tokenize (an open quote)."""
    import shlex

    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return None
    out: list[str] = []
    for w in words:
        if _SHELL_END.match(w):
            if _invocation(out) is not None:
                break
            out = []  # `mkfifo /tmp/log; exec kube-apiserver …`: a later command may be the component
            continue
        out.append(w)
    return out


def _component_of(res: Resource) -> tuple[str, int, list[str], list[str]] | str | None:
    """(component, container index, argv, flag arguments), None when no container is a component, or why the
    flags cannot be read (a shell script that runs no component binary kubeward can find).

    The flags are the words after the component's binary: in `command` + `args` (a wrapper's own flags left out),
    or in a `sh -c` script's first command that runs it (redirections and `;`, `&&` end it). With no `command`
    (the image's entrypoint is the binary) every arg may be a flag."""
    spec = res.obj.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not isinstance(containers, list):
        return None
    for i, c in enumerate(containers):
        if not isinstance(c, dict):
            continue
        command = [str(a) for a in c.get("command") or [] if isinstance(a, str | int | float)]
        args = [str(a) for a in c.get("args") or [] if isinstance(a, str | int | float)]
        words = command + args
        exe = os.path.basename(command[0]) if command else ""
        named = c.get("name") if c.get("name") in COMPONENTS else None
        if exe in _SHELLS and "-c" in words[1:]:
            at = words.index("-c", 1) + 1
            found = _invocation(_shell_words(words[at]) or []) if at < len(words) else None
            if found is not None:
                return found[0], i, words, found[1]
            if named:
                return (f'container "{named}" runs a shell script ({exe} -c) in which kubeward finds no '
                        f"{named} command to read the flags from")
            continue
        found = _invocation(command)  # the binary is in `command`; `args` are its arguments, never the binary
        if found is not None:
            return found[0], i, words, found[1] + args
        if named:
            return str(named), i, words, (command[1:] if command else []) + args
    return None


def load_node(root: Path, manifests: Path | None = None, kubelet_config: Path | None = None) -> NodeConfig:
    cfg = NodeConfig(root, manifests or root / "etc/kubernetes/manifests")
    if cfg.manifests_dir.is_dir():
        # The kubelet reads every regular file not named with a leading dot, whatever its suffix (GCE writes
        # kube-apiserver.manifest): pkg/kubelet/config/file.go extractFromDir.
        files = sorted(p for p in cfg.manifests_dir.iterdir() if not p.name.startswith(".") and p.is_file())
        for path in files:
            loaded = load_paths([str(path)])
            cfg.errors += loaded.errors
            for res in loaded.resources:
                if res.kind != "Pod":
                    continue
                found = _component_of(res)
                if found is None:
                    continue
                if isinstance(found, str):
                    cfg.errors.append(InputError(display_path(str(path)), found))
                    continue
                name, idx, argv, flag_args = found
                text = path.read_text(encoding="utf-8", errors="replace")
                cfg.components.setdefault(name, Component(name, path, res, idx, argv, parse_flags(flag_args), text))
    elif manifests is not None:
        cfg.errors.append(InputError(str(manifests), "not a directory"))
    kpath = kubelet_config or root / "var/lib/kubelet/config.yaml"
    if kpath.is_file():
        loaded = load_paths([str(kpath)])
        cfg.errors += loaded.errors
        kc = [r for r in loaded.resources if r.kind == "KubeletConfiguration"]
        if kc:
            cfg.kubelet, cfg.kubelet_path = kc[0], kpath
        elif not loaded.errors:
            cfg.errors.append(InputError(str(kpath), "no KubeletConfiguration document"))
    elif kubelet_config is not None:
        why = "not a regular file" if kpath.exists() else "no such file"
        cfg.errors.append(InputError(str(kubelet_config), why))
    env = root / "var/lib/kubelet/kubeadm-flags.env"
    if env.is_file():
        m = re.search(r'KUBELET_KUBEADM_ARGS="?([^"\n]*)"?', env.read_text(errors="replace"))
        if m:
            cfg.kubelet_flags = parse_flags(m.group(1).split())
    return cfg


def get_path(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj
