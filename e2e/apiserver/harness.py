"""Start and stop a real loopback cluster (etcd + kube-apiserver + kube-controller-manager) for kubeward's tests.

One code path for `scripts/cluster-up`, `scripts/cluster-down` and the pytest session fixture. Everything the
cluster needs comes from kubeward itself: `pki init` (kubeadm layout, separate etcd CA), `encryption generate`,
`pki issue-user … --group system:masters --allow-masters` for the admin kubeconfig, `pki issue-user` for the client
certificate the admission webhook plugins present (AdmissionConfiguration). Processes are tracked by pid
files in the state directory so a second `up` first stops what a first one left, and `down` stops them even after a failed start.

Usage: python3 harness.py up|down|restart-apiserver [--state DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_STATE = Path(os.environ.get("KUBEWARD_CLUSTER_DIR", Path.home() / ".cache" / "kubeward" / "cluster"))
READY_TIMEOUT = 120.0
COMPONENTS = ("kubelet", "kube-proxy", "kube-controller-manager", "kube-apiserver", "etcd")  # stop order
SHAPED = HERE / "shaped_process.py"


class HarnessError(Exception):
    """A step failed; the message names it and where its log is."""


@dataclass
class Cluster:
    state: Path
    bin_dir: Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def etcd_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.ports['etcd']}"

    @property
    def node_root(self) -> Path:
        """A kubeadm node's layout of this control plane: etc/kubernetes/manifests/kube-apiserver.yaml with the
        flags the apiserver really runs with (host paths as kubeadm writes them), etc/kubernetes/pki and
        admin.conf; `--root`/`--node-root` of `node check` and `creds audit` read it as they read a node."""
        return self.state / "node"

    @property
    def audit_log(self) -> Path:
        return self.state / "audit.log"

    @property
    def audit_policy(self) -> Path:
        return self.state / "audit-policy.yaml"

    @property
    def encryption_config(self) -> Path:
        # Where a kubeadm node keeps it, below the node root: `encryption rotate --node-root` edits this file.
        return self.node_root / "etc" / "kubernetes" / "enc" / "encryption.yaml"

    @property
    def admission_config(self) -> Path:
        """--admission-control-config-file: the webhook plugins present `admission_kubeconfig`'s client
        certificate to every webhook (user `*`), signed by the cluster CA (pki/ca.crt)."""
        return self.state / "admission-config.yaml"

    @property
    def admission_kubeconfig(self) -> Path:
        return self.state / "admission-webhooks.kubeconfig"

    def write_admission_config(self) -> None:
        """AdmissionConfiguration (apiserver.config.k8s.io/v1) whose ValidatingAdmissionWebhook and
        MutatingAdmissionWebhook read `admission_kubeconfig` (k8s.io/apiserver/pkg/admission/plugin/webhook/config):
        a client certificate from `pki issue-user`, under the user name `*` that matches every webhook host."""
        import yaml

        issued = self.state / "admission-client.kubeconfig"
        kubeward("pki", "issue-user", str(self.pki), "kubeward-admission-client", "--kubeconfig-out", str(issued),
                 "--server", self.server, "--cluster-name", "kubeward-e2e")
        user = yaml.safe_load(issued.read_text())["users"][0]["user"]
        issued.unlink()
        doc = {"apiVersion": "v1", "kind": "Config", "users": [{"name": "*", "user": {
            "client-certificate-data": user["client-certificate-data"], "client-key-data": user["client-key-data"]}}]}
        fd = os.open(self.admission_kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(doc, fh)
        plugin = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "WebhookAdmissionConfiguration",
                  "kubeConfigFile": str(self.admission_kubeconfig)}
        self.admission_config.write_text(yaml.safe_dump({
            "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
            "plugins": [{"name": n, "configuration": plugin}
                        for n in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")]}))

    def log(self, component: str) -> Path:
        return self.state / "logs" / f"{component}.log"

    # ---- processes -------------------------------------------------------------------------------------------

    def _pidfile(self, component: str) -> Path:
        return self.state / "run" / f"{component}.pid"

    def _start(self, component: str, argv: list[str], executable: str | None = None) -> None:
        (self.state / "logs").mkdir(parents=True, exist_ok=True)
        (self.state / "run").mkdir(parents=True, exist_ok=True)
        with self.log(component).open("ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self.state, executable=executable)
        self._pidfile(component).write_text(f"{proc.pid}\n{argv[0]}\n")

    def stop(self, component: str, timeout: float = 15.0) -> None:
        """SIGTERM the recorded process group, SIGKILL after `timeout`; only pids this harness recorded."""
        pidfile = self._pidfile(component)
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if _alive(pid) and _is_ours(pid, pidfile):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                while _alive(pid):
                    time.sleep(0.05)
        pidfile.unlink(missing_ok=True)

    def start_shaped(self, component: str, flags: list[str]) -> int:
        """A process that runs as `component` for whoever reads the process table (argv[0] is the component's
        name, then its flags): the harness has no kubelet or kube-proxy, and `node check` reads their command
        lines and the config files they name. It only sleeps; `stop` ends it like the real components."""
        self._start(component, [component, str(SHAPED), *flags], executable=sys.executable)
        return self.pid(component)

    def stop_all(self) -> None:
        for component in COMPONENTS:
            self.stop(component)

    def running(self, component: str) -> bool:
        try:
            pid = int(self._pidfile(component).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        return _alive(pid)

    # ---- components ------------------------------------------------------------------------------------------

    def pid(self, component: str) -> int:
        """The recorded pid of a running component (what `kubeward node check --pid` is pointed at)."""
        return int(self._pidfile(component).read_text().split()[0])

    def start_etcd(self, *, extra: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> None:
        p, e = self.ports, self.pki / "etcd"
        self._start("etcd", _edit_args([
            str(self.bin_dir / "etcd"), "--name", "kubeward-e2e", "--data-dir", str(self.state / "etcd-data"),
            "--listen-client-urls", self.etcd_endpoint, "--advertise-client-urls", self.etcd_endpoint,
            "--listen-peer-urls", f"https://127.0.0.1:{p['etcd-peer']}",
            "--initial-advertise-peer-urls", f"https://127.0.0.1:{p['etcd-peer']}",
            "--initial-cluster", f"kubeward-e2e=https://127.0.0.1:{p['etcd-peer']}",
            "--cert-file", str(e / "server.crt"), "--key-file", str(e / "server.key"),
            "--client-cert-auth", "--trusted-ca-file", str(e / "ca.crt"),
            "--peer-cert-file", str(e / "peer.crt"), "--peer-key-file", str(e / "peer.key"),
            "--peer-client-cert-auth", "--peer-trusted-ca-file", str(e / "ca.crt"),
            "--snapshot-count", "10000", "--log-level", "warn",
        ], extra, drop))
        self._wait("etcd", lambda: _get(f"{self.etcd_endpoint}/health", self.pki / "etcd" / "ca.crt",
                                        self.pki / "etcd" / "healthcheck-client.crt",
                                        self.pki / "etcd" / "healthcheck-client.key") == 200)

    def start_apiserver(self, *, encryption: bool = True, extra: tuple[str, ...] = (),
                        drop: tuple[str, ...] = ()) -> None:
        """`extra` arguments go after the usual ones (pflag: a repeated scalar flag's last value wins, a repeated
        slice flag accumulates); `drop` names flags removed with their values."""
        k = self.pki
        argv = [
            str(self.bin_dir / "kubeward-k8s"), "apiserver",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.ports["apiserver"]),
            "--etcd-servers", self.etcd_endpoint, "--etcd-cafile", str(k / "etcd" / "ca.crt"),
            "--etcd-certfile", str(k / "apiserver-etcd-client.crt"),
            "--etcd-keyfile", str(k / "apiserver-etcd-client.key"),
            "--client-ca-file", str(k / "ca.crt"),
            "--tls-cert-file", str(k / "apiserver.crt"), "--tls-private-key-file", str(k / "apiserver.key"),
            "--kubelet-client-certificate", str(k / "apiserver-kubelet-client.crt"),
            "--kubelet-client-key", str(k / "apiserver-kubelet-client.key"),
            "--authorization-mode", "Node,RBAC", "--anonymous-auth=false",
            "--service-account-key-file", str(k / "sa.pub"), "--service-account-signing-key-file", str(k / "sa.key"),
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range", "10.96.0.0/12",
            "--enable-admission-plugins", "NodeRestriction",
            "--audit-policy-file", str(self.audit_policy), "--audit-log-path", str(self.audit_log),
            "--audit-log-maxbackup", "1", "--audit-log-maxsize", "200",
            "--allow-privileged=true",  # as kubeadm sets it: privileged pods reach admission
            "--endpoint-reconciler-type", "none", "--profiling=false", "--v", "1",
        ]
        argv += ["--encryption-provider-config",
                 str(self.encryption_config if encryption else self._plaintext_writes_config())]
        if self.admission_config.exists():
            argv += ["--admission-control-config-file", str(self.admission_config)]
        argv = _edit_args(self._node_flags(argv), extra, drop)
        self._write_node_root(argv)
        self._start("kube-apiserver", argv)
        # The serving certificate is checked against the client CA file (kubeadm: one cluster CA signs both; during
        # `pki rotate-ca` that file is the old+new bundle), with the apiserver's own kubelet client certificate.
        ca, cert, key = (Path(_flag(argv, f)) for f in ("--client-ca-file", "--kubelet-client-certificate",
                                                       "--kubelet-client-key"))
        self._wait("kube-apiserver", lambda: _get(f"{self.server}/readyz", ca, cert, key) == 200)

    # Flags whose value the node root's manifest holds once it exists: `creds rotate-sa-key` and `pki rotate-ca` edit
    # them there, and the restart takes them up as a kubelet restarts a static pod.
    NODE_FLAGS = ("--service-account-key-file", "--service-account-signing-key-file", "--client-ca-file",
                  "--tls-cert-file", "--tls-private-key-file", "--kubelet-client-certificate", "--kubelet-client-key")
    # The controller-manager's: `creds rotate-sa-key` switches the key that signs legacy Secret tokens, `pki rotate-ca`
    # the CA the tokens controller puts into them (cmd/kube-controller-manager/app/options/serviceaccountcontroller.go).
    CM_NODE_FLAGS = ("--service-account-private-key-file", "--root-ca-file")

    def manifest(self, component: str) -> Path:
        return self.node_root / "etc" / "kubernetes" / "manifests" / f"{component}.yaml"

    def _node_flags(self, argv: list[str], component: str = "kube-apiserver",
                    names: tuple[str, ...] = NODE_FLAGS) -> list[str]:
        """argv with the `names` flags of the node root's manifest of `component` when there is one (each host path
        read through the node root back to the state file it leads to), in place of the defaults; unchanged without
        a manifest."""
        import yaml

        manifest = self.manifest(component)
        if not manifest.exists():
            return argv
        command = [str(a) for a in yaml.safe_load(manifest.read_text())["spec"]["containers"][0]["command"]]
        state = self.state.resolve()
        found: list[str] = []
        for i, arg in enumerate(command):
            name = arg.split("=", 1)[0]
            if name in names:
                value = arg.split("=", 1)[1] if "=" in arg else command[i + 1] if i + 1 < len(command) else ""
                real = (self.node_root / value.lstrip("/")).resolve()
                found += [name, str(self.state / real.relative_to(state) if real.is_relative_to(state) else real)]
        owned = {found[i] for i in range(0, len(found), 2)}
        return _edit_args(argv, (), tuple(n.lstrip("-") for n in owned)) + found

    def _write_node_root(self, argv: list[str]) -> None:
        """node_root: the apiserver's static-pod manifest with its real flags, each state path replaced by the
        kubeadm host path a symlink below the node root leads back to (pki/ → /etc/kubernetes/pki, other files →
        /etc/kubernetes/NAME, the audit log → /var/log/kubernetes/audit.log); admin.conf a 0600 copy made at the first
        start (the node's own after that: `pki rotate-ca` re-issues it there)."""
        kube = self.node_root / "etc" / "kubernetes"
        self._write_manifest("kube-apiserver", argv[2:])
        if self.kubeconfig.exists() and not (kube / "admin.conf").exists():  # then the node's own, as on a node
            admin = kube / "admin.conf"
            fd = os.open(admin, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.kubeconfig.read_bytes())

    def _write_manifest(self, component: str, flags: list[str]) -> str:
        """The static-pod manifest of `component` below the node root, its command `flags` with each state path
        (a whole argument or the value of `--name=value`) as the host path a symlink leads back from; returns the
        text written."""
        import yaml

        kube = self.node_root / "etc" / "kubernetes"
        (kube / "manifests").mkdir(parents=True, exist_ok=True)
        places = {self.pki: "/etc/kubernetes/pki", self.audit_log: "/var/log/kubernetes/audit.log"}

        def host(arg: str) -> str:
            if arg.startswith("--") and "=" in arg:
                name, value = arg.split("=", 1)
                return f"{name}={host(value)}"
            path = Path(arg)
            if arg.startswith(str(self.node_root) + "/"):
                return arg[len(str(self.node_root)):]  # already below the node root
            if not arg.startswith(str(self.state) + "/"):
                return arg
            for real, where in places.items():
                if path == real or real in path.parents:
                    return where + arg[len(str(real)):]
            places[path] = f"/etc/kubernetes/{path.name}"
            return places[path]

        command = [component, *(host(a) for a in flags)]
        for real, where in places.items():
            link = self.node_root / where.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(real)
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": component, "namespace": "kube-system",
                            "labels": {"component": component, "tier": "control-plane"}},
               "spec": {"hostNetwork": True, "priorityClassName": "system-node-critical",
                        "containers": [{"name": component, "image": f"registry.k8s.io/{component}",
                                        "command": command}]}}
        text = yaml.safe_dump(pod, sort_keys=False)
        fd = os.open(self.manifest(component), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return text

    def _plaintext_writes_config(self) -> Path:
        """"Encryption off" for a cluster that already holds encrypted data: identity first writes plaintext, the
        configured providers after it still read what earlier writes encrypted (an apiserver without any config
        would refuse to start: `identity transformer tried to read encrypted data`)."""
        import yaml

        doc = yaml.safe_load(self.encryption_config.read_text())
        for res in doc["resources"]:
            res["providers"] = [{"identity": {}}, *(p for p in res["providers"] if "identity" not in p)]
        path = self.state / "encryption-plaintext-writes.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(doc, fh)
        return path

    def start_controller_manager(self) -> None:
        """Only the controllers the tests need: clusterrole-aggregation (aggregated ClusterRoles as in a real
        cluster), serviceaccount (the `default` ServiceAccount that pod admission looks up),
        validatingadmissionpolicy-status-controller (writes a ValidatingAdmissionPolicy's status.typeChecking) and
        serviceaccount-token (fills legacy token Secrets, signed with --service-account-private-key-file, ca.crt
        from --root-ca-file: pkg/controller/serviceaccount/tokens_controller.go). Its static-pod manifest is written
        below the node root in kubeadm's `--name=value` form; CM_NODE_FLAGS are read back from it once it exists,
        as for the apiserver, and the text written is kept to tell when `restart_apiserver` must restart it too."""
        k = self.pki
        argv = self._node_flags([
            str(self.bin_dir / "kubeward-k8s"), "controller-manager",
            f"--kubeconfig={self.kubeconfig}", f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={self.ports['controller-manager']}",
            "--controllers=clusterrole-aggregation,serviceaccount,serviceaccount-token,"
            "validatingadmissionpolicy-status-controller",
            f"--service-account-private-key-file={k / 'sa.key'}", f"--root-ca-file={k / 'ca.crt'}",
            "--leader-elect=false", "--v=1",
        ], "kube-controller-manager", self.CM_NODE_FLAGS)
        rest, flags = argv[2:], []
        while rest:  # the flags read back follow as `--name value`: kubeadm writes `--name=value`
            arg = rest.pop(0)
            flags.append(f"{arg}={rest.pop(0)}" if arg in self.CM_NODE_FLAGS else arg)
        self._cm_started().parent.mkdir(parents=True, exist_ok=True)
        self._cm_started().write_text(self._write_manifest("kube-controller-manager", flags))
        self._start("kube-controller-manager", argv)
        self._wait("kube-controller-manager", lambda: _get(
            f"https://127.0.0.1:{self.ports['controller-manager']}/healthz", None, None, None) == 200)

    def _cm_started(self) -> Path:
        """The controller-manager manifest's text as the running controller-manager was started from it."""
        return self.state / "run" / "kube-controller-manager.yaml"

    def restart_apiserver(self, *, encryption: bool = True, extra: tuple[str, ...] = (),
                          drop: tuple[str, ...] = ()) -> None:
        """The apiserver, then the controller-manager when its manifest changed since it started (a kubelet
        restarts each static pod whose manifest changed: `creds rotate-sa-key`, `pki rotate-ca` edit both)."""
        self.stop("kube-apiserver")
        self.start_apiserver(encryption=encryption, extra=extra, drop=drop)
        manifest, started = self.manifest("kube-controller-manager"), self._cm_started()
        if manifest.exists() and (not started.exists() or manifest.read_text() != started.read_text()):
            self.stop("kube-controller-manager")
            self.start_controller_manager()

    def restart_etcd(self, *, extra: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> None:
        """etcd with changed flags; the apiserver keeps running and reconnects."""
        self.stop("etcd")
        self.start_etcd(extra=extra, drop=drop)

    def _wait(self, component: str, ready: object) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if not self.running(component):
                raise HarnessError(f"{component} exited during start; log: {self.log(component)}\n"
                                   + _tail(self.log(component)))
            try:
                if ready():  # type: ignore[operator]
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise HarnessError(f"{component} not ready after {READY_TIMEOUT:.0f}s; log: {self.log(component)}\n"
                           + _tail(self.log(component)))


def _edit_args(argv: list[str], extra: tuple[str, ...], drop: tuple[str, ...]) -> list[str]:
    """argv without the `drop` flags (as `--name value` or `--name=value`; every flag here that is given with a
    separate argument takes a value, except the bare booleans listed) and with `extra` appended."""
    bare = {"--client-cert-auth", "--peer-client-cert-auth"}
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name.lstrip("-") in drop:
            i += 1 if "=" in arg or name in bare else 2
            continue
        out.append(arg)
        i += 1
    return out + list(extra)


def _flag(argv: list[str], name: str) -> str:
    """The last value of `name` in argv (`--name value` or `--name=value`)."""
    values = [argv[i + 1] if a == name else a.split("=", 1)[1] for i, a in enumerate(argv)
              if (a == name and i + 1 < len(argv)) or a.startswith(name + "=")]
    return values[-1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie child of ours counts as gone
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def _is_ours(pid: int, pidfile: Path) -> bool:
    """The pid still runs the binary we recorded (guards against pid reuse)."""
    try:
        recorded = pidfile.read_text().split("\n")[1]
        exe = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, IndexError):
        return False
    return exe == recorded


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _get(url: str, ca: Path | None, cert: Path | None, key: Path | None) -> int:
    ctx = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=3) as resp:  # loopback only
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def build() -> Path:
    """Run scripts/build-apiserver (a no-op when the cached binaries match the sources); returns the bin dir."""
    out = subprocess.run([str(REPO / "scripts" / "build-apiserver")], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise HarnessError(f"build-apiserver failed (exit {out.returncode}):\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def kubeward(*args: str) -> None:
    argv = [sys.executable, "-c", "from kubeward.cli.main import main; main()", *args]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    if out.returncode != 0:
        raise HarnessError(f"kubeward {' '.join(args)}: exit {out.returncode}: {out.stderr.strip()}")


def down(state: Path = DEFAULT_STATE, *, remove: bool = True) -> None:
    """Stop whatever an earlier `up` in this state dir started, then remove the state."""
    Cluster(state, Path()).stop_all()
    if remove and state.exists():
        shutil.rmtree(state)


def up(state: Path = DEFAULT_STATE, *, bin_dir: Path | None = None, audit_policy: Path | None = None) -> Cluster:
    """A fresh cluster in `state` (any earlier one there is stopped and wiped first)."""
    down(state)
    state.mkdir(parents=True)
    state.chmod(0o700)
    cluster = Cluster(state, bin_dir or build())
    names = ("etcd", "etcd-peer", "apiserver", "controller-manager")
    cluster.ports = dict(zip(names, _free_ports(len(names)), strict=True))
    try:
        kubeward("pki", "init", str(cluster.pki), "--node-name", "kubeward-e2e", "--key-type", "ecdsa",
                 "--advertise-address", "127.0.0.1")
        cluster.encryption_config.parent.mkdir(parents=True, mode=0o700)
        kubeward("encryption", "generate", "--provider", "aescbc", "--output", str(cluster.encryption_config))
        shutil.copyfile(audit_policy or HERE / "audit-policy.yaml", cluster.audit_policy)
        kubeward("pki", "issue-user", str(cluster.pki), "kubeward-admin", "--group", "system:masters",
                 "--allow-masters", "--kubeconfig-out", str(cluster.kubeconfig), "--server", cluster.server,
                 "--cluster-name", "kubeward-e2e")
        cluster.write_admission_config()
        cluster.start_etcd()
        cluster.start_apiserver()
        cluster.start_controller_manager()
    except BaseException:
        cluster.stop_all()
        raise
    (state / "ports").write_text("".join(f"{k}={v}\n" for k, v in cluster.ports.items()))
    return cluster


def attach(state: Path = DEFAULT_STATE) -> Cluster:
    """The Cluster that `up` left running in `state`."""
    ports = dict(line.split("=", 1) for line in (state / "ports").read_text().split())
    return Cluster(state, Path((state / "run" / "kube-apiserver.pid").read_text().split("\n")[1]).parent,
                   {k: int(v) for k, v in ports.items()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="harness.py", description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("up", "down", "restart-apiserver"))
    ap.add_argument("--state", type=Path, default=DEFAULT_STATE, help=f"state directory (default {DEFAULT_STATE})")
    ap.add_argument("--audit-policy", type=Path, help="audit policy file (default: e2e/apiserver/audit-policy.yaml)")
    args = ap.parse_args(argv)
    try:
        if args.action == "down":
            down(args.state)
            print(f"cluster in {args.state} stopped and removed")
            return 0
        if args.action == "restart-apiserver":  # as the kubelet restarts a static pod (`encryption rotate`)
            attach(args.state).restart_apiserver()
            return 0
        cluster = up(args.state, audit_policy=args.audit_policy)
    except HarnessError as exc:
        print(f"cluster-{args.action}: {exc}", file=sys.stderr)
        return 1
    print(f"logs: {cluster.state / 'logs'}")
    print(f"KUBECONFIG={cluster.kubeconfig}")
    print(f"PKI={cluster.pki}")
    print(f"ETCD_ENDPOINT={cluster.etcd_endpoint}")
    print(f"NODE_ROOT={cluster.node_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
