"""CIS Kubernetes Benchmark node checks (control plane, etcd, worker), judged from node configuration.

IDs follow the CIS 1.12 numbering used by kube-bench (cfg/cis-1.12/master.yaml, etcd.yaml, node.yaml). Unlike a
flag-is-set test, every value is read with its component's typed default (an absent flag is its default, e.g.
kube-apiserver --anonymous-auth and --profiling default to true, --authorization-mode to AlwaysAllow), admission
plugins are the effective set (defaults + enabled - disabled), and three checks look behind the flags:
the etcd CA really differs from the apiserver client CA, the EncryptionConfiguration really encrypts secrets,
and the audit policy exists and logs something.
These judge node files, not snapshot objects, so they have their own small registry and build Findings directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..findings import ControlMeta, ControlResult, Finding, Location, NotAssessed, ObjectRef, Report, Severity
from ..sources.files import display_path, load_paths
from ..sources.node import Component, FileInfo, NodeConfig, get_path, parse_bool, parse_duration, stat_path

Hit = tuple[ObjectRef, Location, str, str]


@dataclass(frozen=True, slots=True)
class NodeControl:
    meta: ControlMeta
    needs: str  # a component name, "kubelet", or "" (always evaluated)
    func: Callable[[NodeConfig], Iterable[Hit]]


REGISTRY: list[NodeControl] = []
SEV = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM, "low": Severity.LOW}


def node_control(cis: str, title: str, severity: str, needs: str, remediation: str, *, extra_id: str = "",
                 frameworks: tuple[str, ...] = ()) -> Callable[[Callable[[NodeConfig], Iterable[Hit]]],
                                                                Callable[[NodeConfig], Iterable[Hit]]]:
    def deco(f: Callable[[NodeConfig], Iterable[Hit]]) -> Callable[[NodeConfig], Iterable[Hit]]:
        cid = extra_id or f"KW-CIS-{cis}"
        fws = ((f"cis-{cis}",) if cis else ()) + frameworks
        REGISTRY.append(NodeControl(ControlMeta(cid, title, SEV[severity], "node", fws, remediation), needs, f))
        return f
    return deco


# ---- helpers -------------------------------------------------------------------------------------------------

def _ref(c: Component) -> ObjectRef:
    return ObjectRef("v1", "Pod", c.resource.namespace or "kube-system", c.resource.name or c.name)


def flag_hit(c: Component, flag: str, message: str) -> Hit:
    loc = Location(file=display_path(str(c.manifest)), line=c.line_of_flag(flag))
    return _ref(c), loc, f"/spec/containers/{c.container}/command", message


def _apiserver(cfg: NodeConfig) -> Component:
    return cfg.components["kube-apiserver"]


def _require_set(c: Component, *flags: str) -> Iterator[Hit]:
    missing = [f for f in flags if not c.flags.get(f)]
    if missing:
        yield flag_hit(c, missing[0], f"{' and '.join('--' + m for m in missing)} not set")


def _want_bool(c: Component, flag: str, want: bool, default: bool) -> Iterator[Hit]:
    raw = c.flags.get(flag)
    value = c.flags.bool(flag, default)
    if value is None:
        yield flag_hit(c, flag, f"--{flag}={raw} is not a boolean (the component will not start)")
    elif value != want:
        how = f"--{flag}={raw}" if raw is not None else f"--{flag} unset (defaults to {str(default).lower()})"
        yield flag_hit(c, flag, f"{how}; want {str(want).lower()}")


def _want_int_at_least(c: Component, flag: str, minimum: int) -> Iterator[Hit]:
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


# kube-apiserver defaults: pkg/kubeapiserver/options/plugins.go (DefaultOffAdmissionPlugins: everything else off).
DEFAULT_ON_ADMISSION = frozenset({
    "NamespaceLifecycle", "LimitRanger", "ServiceAccount", "TaintNodesByCondition", "PodSecurity", "Priority",
    "DefaultTolerationSeconds", "DefaultStorageClass", "StorageObjectInUseProtection", "PersistentVolumeClaimResize",
    "RuntimeClass", "CertificateApproval", "CertificateSigning", "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction", "DefaultIngressClass", "MutatingAdmissionWebhook", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook", "ResourceQuota",
})


def effective_admission(c: Component) -> frozenset[str]:
    """(default-on ∪ --enable-admission-plugins) − --disable-admission-plugins (options/admission.go)."""
    return (DEFAULT_ON_ADMISSION | set(c.flags.list("enable-admission-plugins"))) - set(
        c.flags.list("disable-admission-plugins"))


def _plugin(c: Component, name: str, want: bool) -> Iterator[Hit]:
    on = name in effective_admission(c)
    if on != want:
        flag = "enable-admission-plugins" if want or name in c.flags.list("enable-admission-plugins") \
            else "disable-admission-plugins"
        yield flag_hit(c, flag, f"admission plugin {name} is {'enabled' if on else 'not enabled'}")


# ---- 1.1 control-plane files ---------------------------------------------------------------------------------

def _file_ref(path: str) -> ObjectRef:
    return ObjectRef("kubeward.io/v1", "File", None, path)


def _mode_hit(info: FileInfo, mask: int, shown: str) -> Iterator[Hit]:
    if info.mode & ~mask:
        yield (_file_ref(shown), Location(file=display_path(str(info.path))), "/mode",
               f"{shown} has mode {info.mode:04o}; want {mask:04o} or more restrictive")


def _owner_hit(info: FileInfo, shown: str, uid: int = 0, gid: int = 0, want: str = "root:root") -> Iterator[Hit]:
    if (info.uid, info.gid) != (uid, gid):
        yield (_file_ref(shown), Location(file=display_path(str(info.path))), "/owner",
               f"{shown} is owned by {info.uid}:{info.gid}; want {want}")


def _manifest_files(component: str, mode: bool) -> Callable[[NodeConfig], Iterator[Hit]]:
    def check(cfg: NodeConfig) -> Iterator[Hit]:
        c = cfg.components[component]
        info = stat_path(c.manifest)
        if info is not None:
            shown = c.manifest.name
            yield from (_mode_hit(info, 0o600, shown) if mode else _owner_hit(info, shown))
    return check


for _i, _comp in enumerate(("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")):
    _label = {"kube-apiserver": "API server", "kube-controller-manager": "controller manager",
              "kube-scheduler": "scheduler", "etcd": "etcd"}[_comp]
    node_control(f"1.1.{2 * _i + 1}", f"{_label} pod specification file permissions are 600 or stricter", "medium",
                 _comp, f"chmod 600 /etc/kubernetes/manifests/{_comp}.yaml")(_manifest_files(_comp, True))
    node_control(f"1.1.{2 * _i + 2}", f"{_label} pod specification file is owned by root:root", "medium", _comp,
                 f"chown root:root /etc/kubernetes/manifests/{_comp}.yaml")(_manifest_files(_comp, False))


def _conf_files(names: tuple[str, ...], mode: bool, mask: int = 0o600) -> Callable[[NodeConfig], Iterator[Hit]]:
    def check(cfg: NodeConfig) -> Iterator[Hit]:
        for n in names:
            info = stat_path(cfg.host(f"/etc/kubernetes/{n}"))
            if info is not None:
                yield from (_mode_hit(info, mask, n) if mode else _owner_hit(info, n))
    return check


node_control("1.1.13", "Administrative kubeconfig permissions are 600", "high", "",
             "chmod 600 /etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf")(
    _conf_files(("admin.conf", "super-admin.conf"), True))
node_control("1.1.14", "Administrative kubeconfig is owned by root:root", "high", "",
             "chown root:root /etc/kubernetes/admin.conf")(_conf_files(("admin.conf", "super-admin.conf"), False))
node_control("1.1.15", "scheduler.conf permissions are 600 or stricter", "medium", "",
             "chmod 600 /etc/kubernetes/scheduler.conf")(_conf_files(("scheduler.conf",), True))
node_control("1.1.16", "scheduler.conf is owned by root:root", "medium", "",
             "chown root:root /etc/kubernetes/scheduler.conf")(_conf_files(("scheduler.conf",), False))
node_control("1.1.17", "controller-manager.conf permissions are 600 or stricter", "medium", "",
             "chmod 600 /etc/kubernetes/controller-manager.conf")(_conf_files(("controller-manager.conf",), True))
node_control("1.1.18", "controller-manager.conf is owned by root:root", "medium", "",
             "chown root:root /etc/kubernetes/controller-manager.conf")(_conf_files(("controller-manager.conf",), False))
node_control("4.1.5", "kubelet.conf permissions are 600 or stricter", "medium", "",
             "chmod 600 /etc/kubernetes/kubelet.conf")(_conf_files(("kubelet.conf",), True))
node_control("4.1.6", "kubelet.conf is owned by root:root", "medium", "",
             "chown root:root /etc/kubernetes/kubelet.conf")(_conf_files(("kubelet.conf",), False))


def _pki_files(cfg: NodeConfig) -> Iterator[tuple[str, FileInfo]]:
    base = cfg.host("/etc/kubernetes/pki")
    if not base.is_dir():
        return
    for dirpath, _dirs, files in os.walk(base):
        for name in sorted(files):
            p = os.path.join(dirpath, name)
            info = stat_path(type(base)(p))
            if info is not None:
                yield os.path.relpath(p, cfg.root), info


@node_control("1.1.19", "PKI directory and files are owned by root:root", "medium", "",
              "chown -R root:root /etc/kubernetes/pki/")
def pki_owner(cfg: NodeConfig) -> Iterator[Hit]:
    for shown, info in _pki_files(cfg):
        yield from _owner_hit(info, "/" + shown)


@node_control("1.1.20", "PKI certificate files are 644 or stricter", "low", "",
              "chmod 644 /etc/kubernetes/pki/*.crt")
def pki_crt_mode(cfg: NodeConfig) -> Iterator[Hit]:
    for shown, info in _pki_files(cfg):
        if shown.endswith(".crt"):
            yield from _mode_hit(info, 0o644, "/" + shown)


@node_control("1.1.21", "PKI key files are 600", "high", "", "chmod 600 /etc/kubernetes/pki/*.key")
def pki_key_mode(cfg: NodeConfig) -> Iterator[Hit]:
    for shown, info in _pki_files(cfg):
        if shown.endswith(".key"):
            yield from _mode_hit(info, 0o600, "/" + shown)


@node_control("1.1.11", "etcd data directory permissions are 700 or stricter", "medium", "etcd",
              "chmod 700 /var/lib/etcd")
def etcd_data_dir(cfg: NodeConfig) -> Iterator[Hit]:
    d = cfg.components["etcd"].flags.get("data-dir") or "/var/lib/etcd"
    info = stat_path(cfg.host(d))
    if info is not None:
        yield from _mode_hit(info, 0o700, d)


# ---- 1.2 API server ------------------------------------------------------------------------------------------

A = "kube-apiserver"
APISERVER_FIX = "Edit /etc/kubernetes/manifests/kube-apiserver.yaml: "


@node_control("1.2.1", "API server --anonymous-auth is false", "medium", A, APISERVER_FIX + "--anonymous-auth=false")
def api_anonymous(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _want_bool(_apiserver(cfg), "anonymous-auth", False, True)


@node_control("1.2.2", "API server --token-auth-file is not set", "high", A, APISERVER_FIX + "remove --token-auth-file")
def api_token_file(cfg: NodeConfig) -> Iterator[Hit]:
    c = _apiserver(cfg)
    if c.flags.has("token-auth-file"):
        yield flag_hit(c, "token-auth-file", "static token file authentication is enabled")


@node_control("1.2.4", "API server has kubelet client certificate and key", "high", A,
              APISERVER_FIX + "--kubelet-client-certificate and --kubelet-client-key")
def api_kubelet_client(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(_apiserver(cfg), "kubelet-client-certificate", "kubelet-client-key")


@node_control("1.2.5", "API server verifies kubelets (--kubelet-certificate-authority)", "high", A,
              APISERVER_FIX + "--kubelet-certificate-authority=<ca>")
def api_kubelet_ca(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(_apiserver(cfg), "kubelet-certificate-authority")


def _authz(c: Component) -> list[str]:
    return c.flags.list("authorization-mode") or ["AlwaysAllow"]  # kube-apiserver default


@node_control("1.2.6", "API server --authorization-mode is not AlwaysAllow", "critical", A,
              APISERVER_FIX + "--authorization-mode=Node,RBAC")
def api_authz_always_allow(cfg: NodeConfig) -> Iterator[Hit]:
    c = _apiserver(cfg)
    if "AlwaysAllow" in _authz(c):
        how = "includes AlwaysAllow" if c.flags.has("authorization-mode") else "unset (defaults to AlwaysAllow)"
        yield flag_hit(c, "authorization-mode", f"--authorization-mode {how}: every request is authorized")


@node_control("1.2.7", "API server --authorization-mode includes Node", "high", A,
              APISERVER_FIX + "--authorization-mode=Node,RBAC")
def api_authz_node(cfg: NodeConfig) -> Iterator[Hit]:
    c = _apiserver(cfg)
    if "Node" not in _authz(c):
        yield flag_hit(c, "authorization-mode", f"--authorization-mode={','.join(_authz(c))} lacks Node")


@node_control("1.2.8", "API server --authorization-mode includes RBAC", "high", A,
              APISERVER_FIX + "--authorization-mode=Node,RBAC")
def api_authz_rbac(cfg: NodeConfig) -> Iterator[Hit]:
    c = _apiserver(cfg)
    if "RBAC" not in _authz(c):
        yield flag_hit(c, "authorization-mode", f"--authorization-mode={','.join(_authz(c))} lacks RBAC")


for _cis, _plug, _want, _sev in (("1.2.9", "EventRateLimit", True, "low"), ("1.2.10", "AlwaysAdmit", False, "high"),
                                 ("1.2.11", "AlwaysPullImages", True, "low"), ("1.2.12", "ServiceAccount", True, "high"),
                                 ("1.2.13", "NamespaceLifecycle", True, "medium"),
                                 ("1.2.14", "NodeRestriction", True, "high")):
    def _make(plugin: str, want: bool) -> Callable[[NodeConfig], Iterator[Hit]]:
        return lambda cfg: _plugin(_apiserver(cfg), plugin, want)
    node_control(_cis, f"Admission plugin {_plug} is {'enabled' if _want else 'not enabled'}", _sev, A,
                 APISERVER_FIX + f"{'add' if _want else 'remove'} {_plug} "
                 f"{'to' if _want else 'from'} --enable-admission-plugins")(_make(_plug, _want))


@node_control("1.2.15", "API server --profiling is false", "medium", A, APISERVER_FIX + "--profiling=false")
def api_profiling(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _want_bool(_apiserver(cfg), "profiling", False, True)


@node_control("1.2.16", "API server --audit-log-path is set", "high", A, APISERVER_FIX + "--audit-log-path=<file>")
def api_audit_path(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(_apiserver(cfg), "audit-log-path")


for _cis, _flag, _min in (("1.2.17", "audit-log-maxage", 30), ("1.2.18", "audit-log-maxbackup", 10),
                          ("1.2.19", "audit-log-maxsize", 100)):
    def _mk(flag: str, minimum: int) -> Callable[[NodeConfig], Iterator[Hit]]:
        return lambda cfg: _want_int_at_least(_apiserver(cfg), flag, minimum)
    node_control(_cis, f"API server --{_flag} is at least {_min}", "low", A,
                 APISERVER_FIX + f"--{_flag}={_min}")(_mk(_flag, _min))


@node_control("1.2.21", "API server --service-account-lookup is true", "medium", A,
              APISERVER_FIX + "remove --service-account-lookup or set it true")
def api_sa_lookup(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _want_bool(_apiserver(cfg), "service-account-lookup", True, True)


@node_control("1.2.22", "API server --service-account-key-file is set", "medium", A,
              APISERVER_FIX + "--service-account-key-file=/etc/kubernetes/pki/sa.pub")
def api_sa_key(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(_apiserver(cfg), "service-account-key-file")


@node_control("1.2.23", "API server uses a client certificate for etcd", "high", A,
              APISERVER_FIX + "--etcd-certfile and --etcd-keyfile")
def api_etcd_cert(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(_apiserver(cfg), "etcd-certfile", "etcd-keyfile")


@node_control("1.2.24", "API server serves TLS with its own certificate", "medium", A,
              APISERVER_FIX + "--tls-cert-file and --tls-private-key-file")
def api_tls(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(_apiserver(cfg), "tls-cert-file", "tls-private-key-file")


@node_control("1.2.25", "API server --client-ca-file is set", "high", A, APISERVER_FIX + "--client-ca-file=<ca>")
def api_client_ca(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(_apiserver(cfg), "client-ca-file")


@node_control("1.2.26", "API server verifies etcd (--etcd-cafile)", "high", A, APISERVER_FIX + "--etcd-cafile=<ca>")
def api_etcd_ca(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(_apiserver(cfg), "etcd-cafile")


@node_control("1.2.27", "API server --encryption-provider-config is set", "high", A,
              APISERVER_FIX + "--encryption-provider-config=<file> (see `kubeward encryption generate`)")
def api_encryption_set(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(_apiserver(cfg), "encryption-provider-config")


@node_control("1.2.28", "The EncryptionConfiguration really encrypts secrets", "high", A,
              "First provider for secrets must encrypt (kms v2, secretbox, aesgcm); key sizes must be valid.")
def api_encryption_real(cfg: NodeConfig) -> Iterator[Hit]:
    from ..cli.encryption import check_file

    c = _apiserver(cfg)
    path = c.flags.get("encryption-provider-config")
    if not path:
        return
    host = cfg.host(path)
    if not host.is_file():
        yield flag_hit(c, "encryption-provider-config", f"{path} does not exist on the node")
        return
    report = check_file(str(host))
    for e in report.errors:
        yield flag_hit(c, "encryption-provider-config", f"{path}: {e.message}")
    for f in report.findings:
        if f.severity >= Severity.HIGH:
            yield _ref(c), f.location, f.path, f"{path}: {f.message}"


STRONG_CIPHERS = frozenset({
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
})


@node_control("1.2.29", "API server uses only strong TLS cipher suites", "medium", A,
              APISERVER_FIX + "--tls-cipher-suites=" + ",".join(sorted(STRONG_CIPHERS)[:4]) + ",…")
def api_ciphers(cfg: NodeConfig) -> Iterator[Hit]:
    c = _apiserver(cfg)
    suites = c.flags.list("tls-cipher-suites")
    weak = [s for s in suites if s not in STRONG_CIPHERS]
    if not suites:
        yield flag_hit(c, "tls-cipher-suites", "--tls-cipher-suites unset (Go defaults include CBC suites)")
    elif weak:
        yield flag_hit(c, "tls-cipher-suites", f"weak suites allowed: {', '.join(weak)}")


@node_control("", "The audit policy file exists and logs something", "high", A,
              "Set --audit-policy-file to a Policy with at least one rule whose level is not None.",
              extra_id="KW-NODE-001", frameworks=("nsa",))
def api_audit_policy(cfg: NodeConfig) -> Iterator[Hit]:
    c = _apiserver(cfg)
    if not c.flags.has("audit-log-path") and not c.flags.has("audit-webhook-config-file"):
        return  # no audit backend: 1.2.16 reports it
    path = c.flags.get("audit-policy-file")
    if not path:
        yield flag_hit(c, "audit-log-path", "an audit backend is set but --audit-policy-file is not: nothing is "
                                            "logged")
        return
    host = cfg.host(path)
    if not host.is_file():
        yield flag_hit(c, "audit-policy-file", f"{path} does not exist on the node")
        return
    loaded = load_paths([str(host)])
    docs = [r for r in loaded.resources if r.kind == "Policy"]
    if not docs:
        why = loaded.errors[0].message if loaded.errors else "no audit Policy document"
        yield flag_hit(c, "audit-policy-file", f"{path}: {why}")
        return
    rules = docs[0].obj.get("rules")
    levels = [r.get("level") for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []
    if not any(lv in ("Metadata", "Request", "RequestResponse") for lv in levels):
        yield (_ref(c), docs[0].location("/rules"), "/rules",
               f"{path}: no rule logs anything (every level is None or there are no rules)")


def _read_ca(cfg: NodeConfig, path: str) -> list[bytes] | None:
    from ..pki.errors import PkiError
    from ..pki.files import load_certs, public_bytes

    try:
        return [public_bytes(cert.public_key()) for cert in load_certs(cfg.host(path))]
    except PkiError:
        return None


@node_control("2.7", "etcd uses a CA separate from the cluster CA", "critical", "etcd",
              "Point etcd --trusted-ca-file at a dedicated etcd CA (kubeadm: /etc/kubernetes/pki/etcd/ca.crt).",
              frameworks=("nsa",))
def etcd_unique_ca(cfg: NodeConfig) -> Iterator[Hit]:
    e = cfg.components["etcd"]
    trusted = e.flags.get("trusted-ca-file")
    if not trusted:
        yield flag_hit(e, "trusted-ca-file", "--trusted-ca-file not set")
        return
    api = cfg.components.get(A)
    client_ca = api.flags.get("client-ca-file") if api else None
    if not client_ca:
        return
    if os.path.normpath(trusted) == os.path.normpath(client_ca):
        yield flag_hit(e, "trusted-ca-file", f"--trusted-ca-file is the apiserver --client-ca-file ({client_ca})")
        return
    etcd_keys, cluster_keys = _read_ca(cfg, trusted), _read_ca(cfg, client_ca)
    if etcd_keys is None or cluster_keys is None:
        return  # files not readable here: kube-bench's flag test already passed; nothing more to prove
    shared = set(etcd_keys) & set(cluster_keys)
    if shared:
        yield flag_hit(e, "trusted-ca-file", f"{trusted} and the apiserver --client-ca-file {client_ca} contain the "
                                             "same CA key: every cluster client certificate can reach etcd")


# ---- 1.3 controller manager, 1.4 scheduler --------------------------------------------------------------------

CM, SCH = "kube-controller-manager", "kube-scheduler"


@node_control("1.3.2", "Controller manager --profiling is false", "medium", CM, "--profiling=false")
def cm_profiling(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _want_bool(cfg.components[CM], "profiling", False, True)


@node_control("1.3.3", "Controller manager --use-service-account-credentials is true", "medium", CM,
              "--use-service-account-credentials=true")
def cm_sa_creds(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _want_bool(cfg.components[CM], "use-service-account-credentials", True, False)


@node_control("1.3.4", "Controller manager --service-account-private-key-file is set", "high", CM,
              "--service-account-private-key-file=/etc/kubernetes/pki/sa.key")
def cm_sa_key(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(cfg.components[CM], "service-account-private-key-file")


@node_control("1.3.5", "Controller manager --root-ca-file is set", "medium", CM,
              "--root-ca-file=/etc/kubernetes/pki/ca.crt")
def cm_root_ca(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(cfg.components[CM], "root-ca-file")


@node_control("1.3.6", "RotateKubeletServerCertificate is not disabled", "medium", CM,
              "Remove RotateKubeletServerCertificate=false from --feature-gates")
def cm_rotate(cfg: NodeConfig) -> Iterator[Hit]:
    c = cfg.components[CM]
    gates: dict[str, bool | None] = {}  # mapStringBool: repeated flags merge, later keys win
    for gate in c.flags.list("feature-gates"):
        name, _, value = gate.partition("=")
        gates[name.strip()] = parse_bool(value.strip())
    if gates.get("RotateKubeletServerCertificate", True) is False:
        yield flag_hit(c, "feature-gates", "RotateKubeletServerCertificate=false")


def _bind_local(component: str) -> Callable[[NodeConfig], Iterator[Hit]]:
    def check(cfg: NodeConfig) -> Iterator[Hit]:
        c = cfg.components[component]
        addr = c.flags.get("bind-address")
        if addr not in ("127.0.0.1", "::1", "localhost"):
            how = f"--bind-address={addr}" if addr else "--bind-address unset (defaults to 0.0.0.0)"
            yield flag_hit(c, "bind-address", f"{how}: metrics/health served on all interfaces")
    return check


node_control("1.3.7", "Controller manager binds to loopback", "low", CM, "--bind-address=127.0.0.1")(_bind_local(CM))


@node_control("1.4.1", "Scheduler --profiling is false", "medium", SCH, "--profiling=false")
def sch_profiling(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _want_bool(cfg.components[SCH], "profiling", False, True)


node_control("1.4.2", "Scheduler binds to loopback", "low", SCH, "--bind-address=127.0.0.1")(_bind_local(SCH))


# ---- 2 etcd ---------------------------------------------------------------------------------------------------

E = "etcd"


@node_control("2.1", "etcd serves clients with TLS (--cert-file, --key-file)", "critical", E,
              "--cert-file and --key-file (kubeadm: etcd/server.crt, etcd/server.key)")
def etcd_tls(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(cfg.components[E], "cert-file", "key-file")


@node_control("2.2", "etcd requires client certificates (--client-cert-auth)", "critical", E, "--client-cert-auth=true")
def etcd_client_auth(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _want_bool(cfg.components[E], "client-cert-auth", True, False)


@node_control("2.3", "etcd --auto-tls is not true", "high", E, "remove --auto-tls or set it false")
def etcd_auto_tls(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _want_bool(cfg.components[E], "auto-tls", False, False)


@node_control("2.4", "etcd peers use TLS (--peer-cert-file, --peer-key-file)", "high", E,
              "--peer-cert-file and --peer-key-file")
def etcd_peer_tls(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _require_set(cfg.components[E], "peer-cert-file", "peer-key-file")


@node_control("2.5", "etcd peers require client certificates", "high", E, "--peer-client-cert-auth=true")
def etcd_peer_auth(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _want_bool(cfg.components[E], "peer-client-cert-auth", True, False)


@node_control("2.6", "etcd --peer-auto-tls is not true", "high", E, "remove --peer-auto-tls or set it false")
def etcd_peer_auto_tls(cfg: NodeConfig) -> Iterator[Hit]:
    yield from _want_bool(cfg.components[E], "peer-auto-tls", False, False)


# ---- 4 worker node (kubelet) -----------------------------------------------------------------------------------
# KubeletConfiguration v1beta1 defaults: pkg/kubelet/apis/config/v1beta1/defaults.go (anonymous false, webhook
# authn true, authorization Webhook, readOnlyPort 0, streamingConnectionIdleTimeout 4h, makeIPTablesUtilChains
# true, rotateCertificates false). Command-line flags override the file (kubeadm-flags.env).

K = "kubelet"


def _kubelet_ref() -> ObjectRef:
    return ObjectRef("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration", None, "kubelet")


def _kval(cfg: NodeConfig, flag: str, path: str, default: object) -> tuple[object, str]:
    """(value, where) with flag > config file > default."""
    if cfg.kubelet_flags.has(flag):
        return cfg.kubelet_flags.get(flag), f"--{flag}"
    assert cfg.kubelet is not None
    v = get_path(cfg.kubelet.obj, *path.strip("/").split("/"))
    return (default, f"{path} unset") if v is None else (v, path)


def _khit(cfg: NodeConfig, path: str, message: str) -> Hit:
    assert cfg.kubelet is not None
    return _kubelet_ref(), cfg.kubelet.location(path), path or "/", message


def _as_bool(v: object) -> bool | None:
    return v if isinstance(v, bool) else parse_bool(str(v))


@node_control("4.1.9", "kubelet config file permissions are 600 or stricter", "medium", K,
              "chmod 600 /var/lib/kubelet/config.yaml")
def kubelet_conf_mode(cfg: NodeConfig) -> Iterator[Hit]:
    assert cfg.kubelet_path is not None
    info = stat_path(cfg.kubelet_path)
    if info is not None:
        yield from _mode_hit(info, 0o600, cfg.kubelet_path.name)


@node_control("4.1.10", "kubelet config file is owned by root:root", "medium", K,
              "chown root:root /var/lib/kubelet/config.yaml")
def kubelet_conf_owner(cfg: NodeConfig) -> Iterator[Hit]:
    assert cfg.kubelet_path is not None
    info = stat_path(cfg.kubelet_path)
    if info is not None:
        yield from _owner_hit(info, cfg.kubelet_path.name)


@node_control("4.2.1", "kubelet anonymous authentication is disabled", "critical", K,
              "authentication.anonymous.enabled: false")
def kubelet_anonymous(cfg: NodeConfig) -> Iterator[Hit]:
    v, where = _kval(cfg, "anonymous-auth", "/authentication/anonymous/enabled", False)
    if _as_bool(v) is not False:
        yield _khit(cfg, "/authentication/anonymous/enabled", f"{where}={v}: anonymous requests reach the kubelet")


@node_control("4.2.2", "kubelet authorization mode is not AlwaysAllow", "critical", K, "authorization.mode: Webhook")
def kubelet_authz(cfg: NodeConfig) -> Iterator[Hit]:
    v, where = _kval(cfg, "authorization-mode", "/authorization/mode", "Webhook")
    if v == "AlwaysAllow":
        yield _khit(cfg, "/authorization/mode", f"{where}=AlwaysAllow: every authenticated request is allowed")


@node_control("4.2.3", "kubelet verifies client certificates (clientCAFile)", "high", K,
              "authentication.x509.clientCAFile: /etc/kubernetes/pki/ca.crt")
def kubelet_client_ca(cfg: NodeConfig) -> Iterator[Hit]:
    v, where = _kval(cfg, "client-ca-file", "/authentication/x509/clientCAFile", "")
    if not v:
        yield _khit(cfg, "/authentication/x509/clientCAFile", f"{where}: no client CA, x509 authentication is off")


@node_control("4.2.4", "kubelet read-only port is disabled", "high", K, "readOnlyPort: 0")
def kubelet_ro_port(cfg: NodeConfig) -> Iterator[Hit]:
    v, where = _kval(cfg, "read-only-port", "/readOnlyPort", 0)
    try:
        port = int(str(v))
    except ValueError:
        yield _khit(cfg, "/readOnlyPort", f"{where}={v} is not a port number")
        return
    if port != 0:
        yield _khit(cfg, "/readOnlyPort", f"{where}={port}: unauthenticated read-only API is served")


@node_control("4.2.5", "kubelet streaming connection idle timeout is not 0", "low", K,
              "streamingConnectionIdleTimeout: 4h0m0s")
def kubelet_streaming(cfg: NodeConfig) -> Iterator[Hit]:
    v, where = _kval(cfg, "streaming-connection-idle-timeout", "/streamingConnectionIdleTimeout", "4h")
    secs = parse_duration(str(v))
    if secs is None:
        yield _khit(cfg, "/streamingConnectionIdleTimeout", f"{where}={v} is not a duration")
    elif secs == 0:
        yield _khit(cfg, "/streamingConnectionIdleTimeout", f"{where}={v}: idle streams never time out")


@node_control("4.2.6", "kubelet manages iptables util chains", "low", K, "makeIPTablesUtilChains: true")
def kubelet_iptables(cfg: NodeConfig) -> Iterator[Hit]:
    v, where = _kval(cfg, "make-iptables-util-chains", "/makeIPTablesUtilChains", True)
    if _as_bool(v) is False:
        yield _khit(cfg, "/makeIPTablesUtilChains", f"{where}={v}")


@node_control("4.2.10", "kubelet rotates its client certificate", "medium", K, "rotateCertificates: true")
def kubelet_rotate(cfg: NodeConfig) -> Iterator[Hit]:
    v, where = _kval(cfg, "rotate-certificates", "/rotateCertificates", False)
    if _as_bool(v) is not True:
        yield _khit(cfg, "/rotateCertificates", f"{where}={v}: client certificate rotation is off")


KUBELET_SVC = ("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
               "/etc/systemd/system/kubelet.service", "/lib/systemd/system/kubelet.service")


def _svc_files(mode: bool) -> Callable[[NodeConfig], Iterator[Hit]]:
    def check(cfg: NodeConfig) -> Iterator[Hit]:
        for p in KUBELET_SVC:
            info = stat_path(cfg.host(p))
            if info is not None and not info.is_dir:
                yield from (_mode_hit(info, 0o600, p) if mode else _owner_hit(info, p))
    return check


node_control("4.1.1", "kubelet service file permissions are 600 or stricter", "medium", K,
             "chmod 600 /etc/systemd/system/kubelet.service.d/10-kubeadm.conf")(_svc_files(True))
node_control("4.1.2", "kubelet service file is owned by root:root", "medium", K,
             "chown root:root /etc/systemd/system/kubelet.service.d/10-kubeadm.conf")(_svc_files(False))


def _client_ca_file(mode: bool) -> Callable[[NodeConfig], Iterator[Hit]]:
    def check(cfg: NodeConfig) -> Iterator[Hit]:
        v, _ = _kval(cfg, "client-ca-file", "/authentication/x509/clientCAFile", "")
        info = stat_path(cfg.host(str(v))) if v else None
        if info is not None:
            yield from (_mode_hit(info, 0o644, str(v)) if mode else _owner_hit(info, str(v)))
    return check


node_control("4.1.7", "kubelet client CA file permissions are 644 or stricter", "low", K,
             "chmod 644 <clientCAFile>")(_client_ca_file(True))
node_control("4.1.8", "kubelet client CA file is owned by root:root", "low", K,
             "chown root:root <clientCAFile>")(_client_ca_file(False))


@node_control("4.2.7", "kubelet --hostname-override is not set", "low", K, "remove --hostname-override")
def kubelet_hostname_override(cfg: NodeConfig) -> Iterator[Hit]:
    if cfg.kubelet_flags.has("hostname-override"):
        yield _khit(cfg, "", f"--hostname-override={cfg.kubelet_flags.get('hostname-override')}: the node name no "
                             "longer matches the host, breaking Node authorization and TLS names")


@node_control("4.2.9", "kubelet serves TLS with its own certificate", "medium", K,
              "tlsCertFile and tlsPrivateKeyFile, or serverTLSBootstrap: true")
def kubelet_tls(cfg: NodeConfig) -> Iterator[Hit]:
    cert, _ = _kval(cfg, "tls-cert-file", "/tlsCertFile", "")
    key, _ = _kval(cfg, "tls-private-key-file", "/tlsPrivateKeyFile", "")
    bootstrap, _ = _kval(cfg, "rotate-server-certificates", "/serverTLSBootstrap", False)
    if not (cert and key) and _as_bool(bootstrap) is not True:
        yield _khit(cfg, "/tlsCertFile", "no tlsCertFile/tlsPrivateKeyFile and no serverTLSBootstrap: the kubelet "
                                         "serves a self-signed certificate nobody can verify")


@node_control("4.2.11", "kubelet RotateKubeletServerCertificate is not disabled", "low", K,
              "remove RotateKubeletServerCertificate=false from featureGates")
def kubelet_rotate_server(cfg: NodeConfig) -> Iterator[Hit]:
    gates: dict[str, object] = {}
    assert cfg.kubelet is not None
    fg = cfg.kubelet.obj.get("featureGates")
    if isinstance(fg, dict):
        gates.update(fg)
    for gate in cfg.kubelet_flags.list("feature-gates"):
        name, _, value = gate.partition("=")
        gates[name.strip()] = value.strip()
    if _as_bool(gates.get("RotateKubeletServerCertificate", True)) is False:
        yield _khit(cfg, "/featureGates/RotateKubeletServerCertificate", "RotateKubeletServerCertificate=false")


KUBELET_CIPHERS = frozenset({
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
})


@node_control("4.2.12", "kubelet uses only strong TLS cipher suites", "low", K,
              "tlsCipherSuites: " + ",".join(sorted(KUBELET_CIPHERS)))
def kubelet_ciphers(cfg: NodeConfig) -> Iterator[Hit]:
    assert cfg.kubelet is not None
    if cfg.kubelet_flags.has("tls-cipher-suites"):
        suites, where = cfg.kubelet_flags.list("tls-cipher-suites"), "--tls-cipher-suites"
    else:
        raw = cfg.kubelet.obj.get("tlsCipherSuites")
        suites, where = ([str(x) for x in raw] if isinstance(raw, list) else []), "/tlsCipherSuites"
    weak = [x for x in suites if x not in KUBELET_CIPHERS]
    if not suites:
        yield _khit(cfg, "/tlsCipherSuites", "tlsCipherSuites unset (Go defaults include CBC suites)")
    elif weak:
        yield _khit(cfg, "/tlsCipherSuites", f"{where}: weak suites allowed: {', '.join(weak)}")


@node_control("4.2.13", "kubelet limits PIDs per pod", "low", K, "podPidsLimit: 4096 (or as appropriate)")
def kubelet_pids(cfg: NodeConfig) -> Iterator[Hit]:
    v, where = _kval(cfg, "pod-max-pids", "/podPidsLimit", -1)
    try:
        limit = int(str(v))
    except ValueError:
        yield _khit(cfg, "/podPidsLimit", f"{where}={v} is not an integer")
        return
    if limit <= 0:
        yield _khit(cfg, "/podPidsLimit", f"{where}={limit}: unlimited (a fork bomb can exhaust the node)")


@node_control("4.2.14", "kubelet applies RuntimeDefault seccomp by default", "low", K, "seccompDefault: true")
def kubelet_seccomp(cfg: NodeConfig) -> Iterator[Hit]:
    v, where = _kval(cfg, "seccomp-default", "/seccompDefault", False)
    if _as_bool(v) is not True:
        yield _khit(cfg, "/seccompDefault", f"{where}={v}: containers without a profile run Unconfined")


# ---- runner -----------------------------------------------------------------------------------------------------

def run(cfg: NodeConfig) -> Report:
    report = Report(objects=len(cfg.components) + (1 if cfg.kubelet else 0), findings=[], errors=list(cfg.errors))
    for ctl in REGISTRY:
        res = report.controls.setdefault(ctl.meta.id, ControlResult(ctl.meta))
        if ctl.needs == K and cfg.kubelet is None:
            continue
        if ctl.needs and ctl.needs != K and ctl.needs not in cfg.components:
            continue
        hits = list(ctl.func(cfg))
        res.evaluated += 1
        res.failed += 1 if hits else 0
        report.findings += [Finding(ctl.meta, ref, loc, path, msg) for ref, loc, path, msg in hits]
    missing = [c for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
               if c not in cfg.components]
    for c in missing:
        report.not_assessed.append(NotAssessed(c, f"no static-pod manifest in {display_path(str(cfg.manifests_dir))}"))
    if cfg.kubelet is None:
        report.not_assessed.append(NotAssessed("kubelet", "no KubeletConfiguration file"))
    report.findings.sort(key=lambda f: (-f.severity, f.control.id))
    return report
