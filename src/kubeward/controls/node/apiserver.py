"""CIS 1.2: kube-apiserver flags, read with their typed defaults, and what the flags point at (the
EncryptionConfiguration, the audit policy).

Defaults are kube-apiserver's own: pkg/kubeapiserver/options/authentication.go (anonymous auth on, service
account lookup on), authorization.go (AlwaysAllow when --authorization-mode is unset), plugins.go (the
admission plugins on by default), k8s.io/apiserver/pkg/server/options (profiling on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ...findings import Severity
from ...sources.files import load_paths
from ...sources.node import Component, NodeConfig
from .base import (
    A,
    Hit,
    NotRead,
    component_ref,
    flag_hit,
    node_control,
    require_set,
    want_bool,
    want_int_at_least,
)

FIX = "Edit /etc/kubernetes/manifests/kube-apiserver.yaml: "


def _apiserver(cfg: NodeConfig) -> Component:
    return cfg.components[A]


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
    return frozenset((set(DEFAULT_ON_ADMISSION) | set(c.flags.list("enable-admission-plugins"))) - set(
        c.flags.list("disable-admission-plugins")))


def _plugin(c: Component, name: str, want: bool) -> Iterator[Hit]:
    on = name in effective_admission(c)
    if on != want:
        flag = "enable-admission-plugins" if want or name in c.flags.list("enable-admission-plugins") \
            else "disable-admission-plugins"
        yield flag_hit(c, flag, f"admission plugin {name} is {'enabled' if on else 'not enabled'}")


# ---- authentication -------------------------------------------------------------------------------------------

@node_control("1.2.1", "Ensure that the --anonymous-auth argument is set to false", "medium", A,
              FIX + "--anonymous-auth=false")
def api_anonymous(cfg: NodeConfig) -> Iterator[Hit]:
    """--anonymous-auth is false. It defaults to true (options/authentication.go): requests without credentials
    are then served as system:anonymous, and any binding to that user or system:unauthenticated opens the API."""
    yield from want_bool(_apiserver(cfg), "anonymous-auth", False, True)


@node_control("1.2.2", "Ensure that the --token-auth-file parameter is not set", "high", A,
              FIX + "remove --token-auth-file")
def api_token_file(cfg: NodeConfig) -> Iterator[Hit]:
    """--token-auth-file is absent: static tokens live in a plain file, never expire and cannot be revoked
    without restarting the apiserver."""
    c = _apiserver(cfg)
    if c.flags.has("token-auth-file"):
        yield flag_hit(c, "token-auth-file", "static token file authentication is enabled")


@node_control("1.2.4", "Ensure that the --kubelet-client-certificate and --kubelet-client-key arguments are set as "
              "appropriate", "high", A, FIX + "--kubelet-client-certificate and --kubelet-client-key")
def api_kubelet_client(cfg: NodeConfig) -> Iterator[Hit]:
    """--kubelet-client-certificate and --kubelet-client-key are set: without them the apiserver calls kubelets
    (exec, logs, port-forward) without a client certificate, so a kubelet can only serve it by serving anyone."""
    yield from require_set(_apiserver(cfg), "kubelet-client-certificate", "kubelet-client-key")


@node_control("1.2.5", "Ensure that the --kubelet-certificate-authority argument is set as appropriate", "high", A,
              FIX + "--kubelet-certificate-authority=<ca>")
def api_kubelet_ca(cfg: NodeConfig) -> Iterator[Hit]:
    """--kubelet-certificate-authority is set: without it the apiserver does not verify kubelets' serving
    certificates, and a man in the middle sees exec sessions and logs."""
    yield from require_set(_apiserver(cfg), "kubelet-certificate-authority")


# ---- authorization ----------------------------------------------------------------------------------------------

def _authz(c: Component) -> list[str]:
    return c.flags.list("authorization-mode") or ["AlwaysAllow"]  # kube-apiserver default


@node_control("1.2.6", "Ensure that the --authorization-mode argument is not set to AlwaysAllow", "critical", A,
              FIX + "--authorization-mode=Node,RBAC")
def api_authz_always_allow(cfg: NodeConfig) -> Iterator[Hit]:
    """--authorization-mode does not include AlwaysAllow. Unset, it defaults to AlwaysAllow
    (options/authorization.go): every authenticated request is then authorized."""
    c = _apiserver(cfg)
    if "AlwaysAllow" in _authz(c):
        how = "includes AlwaysAllow" if c.flags.has("authorization-mode") else "unset (defaults to AlwaysAllow)"
        yield flag_hit(c, "authorization-mode", f"--authorization-mode {how}: every request is authorized")


@node_control("1.2.7", "Ensure that the --authorization-mode argument includes Node", "high", A,
              FIX + "--authorization-mode=Node,RBAC")
def api_authz_node(cfg: NodeConfig) -> Iterator[Hit]:
    """--authorization-mode includes Node: the Node authorizer limits each kubelet to the objects of its own pods;
    without it a kubelet's credential reads every secret its RBAC group may."""
    c = _apiserver(cfg)
    if "Node" not in _authz(c):
        yield flag_hit(c, "authorization-mode", f"--authorization-mode={','.join(_authz(c))} lacks Node")


@node_control("1.2.8", "Ensure that the --authorization-mode argument includes RBAC", "high", A,
              FIX + "--authorization-mode=Node,RBAC")
def api_authz_rbac(cfg: NodeConfig) -> Iterator[Hit]:
    """--authorization-mode includes RBAC, the authorizer every Role and binding of the cluster is written for."""
    c = _apiserver(cfg)
    if "RBAC" not in _authz(c):
        yield flag_hit(c, "authorization-mode", f"--authorization-mode={','.join(_authz(c))} lacks RBAC")


# ---- admission plugins: the effective set (defaults + enabled - disabled) -----------------------------------

_PLUGINS = (
    ("1.2.9", "EventRateLimit", True, "low", "it bounds the events one source can write, so a flood of events "
     "cannot overload the apiserver and etcd"),
    ("1.2.10", "AlwaysAdmit", False, "high", "it admits every request, switching off the checks of every other "
     "plugin"),
    ("1.2.11", "AlwaysPullImages", True, "low", "it makes every pod pull its images, so a pod cannot run a private "
     "image another tenant's pod already pulled onto the node"),
    ("1.2.12", "ServiceAccount", True, "high", "it gives pods their service account and refuses references to "
     "accounts that do not exist"),
    ("1.2.13", "NamespaceLifecycle", True, "medium", "it refuses objects in namespaces that do not exist or are "
     "being deleted"),
    ("1.2.14", "NodeRestriction", True, "high", "it limits each kubelet to changing its own Node and the pods bound "
     "to it"),
)


def _make_plugin_check(plugin: str, want: bool) -> Callable[[NodeConfig], Iterator[Hit]]:
    return lambda cfg: _plugin(_apiserver(cfg), plugin, want)


for _cis, _plug, _want, _sev, _why in _PLUGINS:
    node_control(_cis, f"Ensure that the admission control plugin {_plug} is {'set' if _want else 'not set'}", _sev,
                 A, FIX + f"{'add' if _want else 'remove'} {_plug} {'to' if _want else 'from'} "
                 "--enable-admission-plugins",
                 doc=f"The admission plugin {_plug} is {'on' if _want else 'off'} in the effective set (the "
                     "default-on plugins of pkg/kubeapiserver/options/plugins.go, plus --enable-admission-plugins, "
                     f"minus --disable-admission-plugins): {_why}.")(_make_plugin_check(_plug, _want))


# ---- profiling, audit log --------------------------------------------------------------------------------------

@node_control("1.2.15", "Ensure that the --profiling argument is set to false", "medium", A,
              FIX + "--profiling=false")
def api_profiling(cfg: NodeConfig) -> Iterator[Hit]:
    """--profiling is false. It defaults to true (k8s.io/apiserver server options): /debug/pprof then exposes
    the program's internals and a cheap way to load the apiserver."""
    yield from want_bool(_apiserver(cfg), "profiling", False, True)


@node_control("1.2.16", "Ensure that the --audit-log-path argument is set", "high", A,
              FIX + "--audit-log-path=<file>")
def api_audit_path(cfg: NodeConfig) -> Iterator[Hit]:
    """--audit-log-path is set: without an audit backend no request is recorded, so an intrusion leaves no trace
    in the API's own log."""
    yield from require_set(_apiserver(cfg), "audit-log-path")


def _make_int_check(flag: str, minimum: int) -> Callable[[NodeConfig], Iterator[Hit]]:
    return lambda cfg: want_int_at_least(_apiserver(cfg), flag, minimum)


for _cis, _flag, _min, _what in (("1.2.17", "audit-log-maxage", 30, "days rotated audit files are kept"),
                                 ("1.2.18", "audit-log-maxbackup", 10, "rotated audit files are kept"),
                                 ("1.2.19", "audit-log-maxsize", 100, "megabytes an audit file grows to before it "
                                  "is rotated")):
    node_control(_cis, f"Ensure that the --{_flag} argument is set to {_min} or as appropriate", "low", A,
                 FIX + f"--{_flag}={_min}",
                 doc=f"--{_flag} (how many {_what}) is set to at least {_min}, so the audit history kept is a "
                     "decision written in the manifest. Unset (0) it is left to the log rotation library's "
                     "default (k8s.io/apiserver/pkg/server/options/audit.go, gopkg.in/natefinch/lumberjack: keep "
                     "every file, rotate at 100 MB).")(_make_int_check(_flag, _min))


# ---- service accounts, etcd and TLS ------------------------------------------------------------------------------

@node_control("1.2.21", "Ensure that the --service-account-lookup argument is set to true", "medium", A,
              FIX + "remove --service-account-lookup or set it true")
def api_sa_lookup(cfg: NodeConfig) -> Iterator[Hit]:
    """--service-account-lookup is true (its default): the apiserver then checks that a token's service account
    still exists, so deleting the account revokes its legacy tokens."""
    yield from want_bool(_apiserver(cfg), "service-account-lookup", True, True)


@node_control("1.2.22", "Ensure that the --service-account-key-file argument is set as appropriate", "medium", A,
              FIX + "--service-account-key-file=/etc/kubernetes/pki/sa.pub")
def api_sa_key(cfg: NodeConfig) -> Iterator[Hit]:
    """--service-account-key-file is set to the public key(s) service-account tokens are verified with, so the
    signing key can be rotated while old tokens still verify."""
    yield from require_set(_apiserver(cfg), "service-account-key-file")


@node_control("1.2.23", "Ensure that the --etcd-certfile and --etcd-keyfile arguments are set as appropriate", "high",
              A, FIX + "--etcd-certfile and --etcd-keyfile")
def api_etcd_cert(cfg: NodeConfig) -> Iterator[Hit]:
    """--etcd-certfile and --etcd-keyfile are set: the apiserver authenticates to etcd with a client certificate,
    which is what lets etcd refuse every other client."""
    yield from require_set(_apiserver(cfg), "etcd-certfile", "etcd-keyfile")


@node_control("1.2.24", "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as "
              "appropriate", "medium", A, FIX + "--tls-cert-file and --tls-private-key-file")
def api_tls(cfg: NodeConfig) -> Iterator[Hit]:
    """--tls-cert-file and --tls-private-key-file are set: otherwise the apiserver serves a self-signed
    certificate no client can verify."""
    yield from require_set(_apiserver(cfg), "tls-cert-file", "tls-private-key-file")


@node_control("1.2.25", "Ensure that the --client-ca-file argument is set as appropriate", "high", A,
              FIX + "--client-ca-file=<ca>")
def api_client_ca(cfg: NodeConfig) -> Iterator[Hit]:
    """--client-ca-file is set: it turns on x509 client-certificate authentication, which the control plane and
    kubelets use to authenticate."""
    yield from require_set(_apiserver(cfg), "client-ca-file")


@node_control("1.2.26", "Ensure that the --etcd-cafile argument is set as appropriate", "high", A,
              FIX + "--etcd-cafile=<ca>")
def api_etcd_ca(cfg: NodeConfig) -> Iterator[Hit]:
    """--etcd-cafile is set: the apiserver verifies etcd's serving certificate, so it cannot be pointed at a fake
    etcd."""
    yield from require_set(_apiserver(cfg), "etcd-cafile")


# ---- encryption at rest ----------------------------------------------------------------------------------------

@node_control("1.2.27", "Ensure that the --encryption-provider-config argument is set as appropriate", "high", A,
              FIX + "--encryption-provider-config=<file> (see `kubeward encryption generate`)")
def api_encryption_set(cfg: NodeConfig) -> Iterator[Hit]:
    """--encryption-provider-config is set: without it secrets are stored in etcd in plaintext."""
    yield from require_set(_apiserver(cfg), "encryption-provider-config")


@node_control("1.2.28", "Ensure that encryption providers are appropriately configured", "high", A,
              "First provider for secrets must encrypt (kms v2, secretbox, aesgcm); key sizes must be valid.")
def api_encryption_real(cfg: NodeConfig) -> Iterator[Hit]:
    """The file --encryption-provider-config names exists, is a valid EncryptionConfiguration, and its first
    provider for secrets encrypts (the high-severity findings of `kubeward encryption check`): a config whose
    first provider is identity writes secrets in plaintext although the flag is set. Upstream:
    staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go."""
    from ..encryption import check_file

    c = _apiserver(cfg)
    path = c.flags.get("encryption-provider-config")
    if not path:  # nothing to judge (1.2.27 fails); not a pass either
        raise NotRead("no --encryption-provider-config to judge (1.2.27 reports it)")
    host = cfg.path_of(c, path)
    if not host.is_file():
        yield flag_hit(c, "encryption-provider-config", f"{path} does not exist on the node")
        return
    report = check_file(str(host))
    for e in report.errors:
        yield flag_hit(c, "encryption-provider-config", f"{path}: {e.message}")
    for f in report.findings:
        if f.severity >= Severity.HIGH:
            yield component_ref(c), f.location, f.path, f"{path}: {f.message}"


STRONG_CIPHERS = frozenset({
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
})


@node_control("1.2.29", "Ensure that the API Server only makes use of Strong Cryptographic Ciphers", "medium", A,
              FIX + "--tls-cipher-suites=" + ",".join(sorted(STRONG_CIPHERS)[:4]) + ",…")
def api_ciphers(cfg: NodeConfig) -> Iterator[Hit]:
    """--tls-cipher-suites lists only AEAD suites with forward secrecy. Unset, Go's defaults also offer CBC
    suites (crypto/tls cipher_suites.go)."""
    c = _apiserver(cfg)
    suites = c.flags.list("tls-cipher-suites")
    weak = [s for s in suites if s not in STRONG_CIPHERS]
    if not suites:
        yield flag_hit(c, "tls-cipher-suites", "--tls-cipher-suites unset (Go defaults include CBC suites)")
    elif weak:
        yield flag_hit(c, "tls-cipher-suites", f"weak suites allowed: {', '.join(weak)}")


@node_control("1.2.30", "Ensure that the --service-account-extend-token-expiration parameter is set to false", "low",
              A, FIX + "--service-account-extend-token-expiration=false")
def api_sa_extend_expiration(cfg: NodeConfig) -> Iterator[Hit]:
    """--service-account-extend-token-expiration is false. It defaults to true (options/authentication.go:
    ServiceAccounts.ExtendExpiration): projected tokens asked for an hour are then issued for a year."""
    yield from want_bool(_apiserver(cfg), "service-account-extend-token-expiration", False, True)


@node_control("", "The audit policy file exists and logs something", "high", A,
              "Set --audit-policy-file to a Policy with at least one rule whose level is not None.",
              extra_id="KW-NODE-001", frameworks=("nsa",))
def api_audit_policy(cfg: NodeConfig) -> Iterator[Hit]:
    """With an audit backend set, --audit-policy-file names an existing audit Policy with at least one rule whose
    level is not None. Without a policy the apiserver logs nothing although --audit-log-path is set
    (k8s.io/apiserver/pkg/server/options/audit.go), which a flag-is-set test passes. Upstream: the Auditing task
    (kubernetes.io/docs/tasks/debug/debug-cluster/audit/); NSA/CISA Kubernetes Hardening Guide, audit logging."""
    c = _apiserver(cfg)
    if not c.flags.has("audit-log-path") and not c.flags.has("audit-webhook-config-file"):
        raise NotRead("no audit backend (--audit-log-path, --audit-webhook-config-file) to judge (1.2.16 reports it)")
    path = c.flags.get("audit-policy-file")
    if not path:
        yield flag_hit(c, "audit-log-path", "an audit backend is set but --audit-policy-file is not: nothing is "
                                            "logged")
        return
    host = cfg.path_of(c, path)
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
        yield (component_ref(c), docs[0].location("/rules"), "/rules",
               f"{path}: no rule logs anything (every level is None or there are no rules)")
