"""CIS 4.2: the kubelet, from its KubeletConfiguration file and command-line flags (flags win; defaults:
pkg/kubelet/apis/config/v1beta1/defaults.go)."""

from __future__ import annotations

from collections.abc import Iterator

from ...sources.node import NodeConfig, parse_duration
from .base import Hit, K, as_bool, khit, kval, node_control, said


@node_control("4.2.1", "Ensure that the --anonymous-auth argument is set to false", "critical", K,
              "authentication.anonymous.enabled: false")
def kubelet_anonymous(cfg: NodeConfig) -> Iterator[Hit]:
    """authentication.anonymous.enabled (--anonymous-auth) is false: anonymous requests to the kubelet API
    (port 10250: exec, logs, pod list) are otherwise served as system:anonymous."""
    v, where = kval(cfg, "anonymous-auth", "/authentication/anonymous/enabled", False)
    if as_bool(v) is not False:
        yield khit(cfg, "/authentication/anonymous/enabled", f"{where}={said(v)}: anonymous requests reach the kubelet")


@node_control("4.2.2", "Ensure that the --authorization-mode argument is not set to AlwaysAllow", "critical", K,
              "authorization.mode: Webhook")
def kubelet_authz(cfg: NodeConfig) -> Iterator[Hit]:
    """authorization.mode (--authorization-mode) is not AlwaysAllow: Webhook asks the apiserver (SubjectAccessReview)
    whether a caller may use the kubelet API; AlwaysAllow lets every authenticated caller exec into every pod."""
    v, where = kval(cfg, "authorization-mode", "/authorization/mode", "Webhook")
    if v == "AlwaysAllow":
        yield khit(cfg, "/authorization/mode", f"{where}=AlwaysAllow: every authenticated request is allowed")


@node_control("4.2.3", "Ensure that the --client-ca-file argument is set as appropriate", "high", K,
              "authentication.x509.clientCAFile: /etc/kubernetes/pki/ca.crt")
def kubelet_client_ca(cfg: NodeConfig) -> Iterator[Hit]:
    """authentication.x509.clientCAFile (--client-ca-file) is set: it turns on client-certificate authentication,
    how the apiserver authenticates to the kubelet."""
    v, where = kval(cfg, "client-ca-file", "/authentication/x509/clientCAFile", "")
    if not v:
        yield khit(cfg, "/authentication/x509/clientCAFile", f"{where}: no client CA, x509 authentication is off")


@node_control("4.2.4", "Verify that if defined, the --read-only-port argument is set to 0", "high", K,
              "readOnlyPort: 0")
def kubelet_ro_port(cfg: NodeConfig) -> Iterator[Hit]:
    """readOnlyPort (--read-only-port) is 0: the read-only port (10255) serves pod specs and metrics without any
    authentication or authorization."""
    v, where = kval(cfg, "read-only-port", "/readOnlyPort", 0)
    try:
        port = int(str(v))
    except ValueError:
        yield khit(cfg, "/readOnlyPort", f"{where}={said(v)} is not a port number")
        return
    if port != 0:
        yield khit(cfg, "/readOnlyPort", f"{where}={port}: unauthenticated read-only API is served")


@node_control("4.2.5", "Ensure that the --streaming-connection-idle-timeout argument is not set to 0", "low", K,
              "streamingConnectionIdleTimeout: 4h0m0s")
def kubelet_streaming(cfg: NodeConfig) -> Iterator[Hit]:
    """streamingConnectionIdleTimeout is a Go duration other than 0 (default 4h): with 0, idle exec and
    port-forward streams are never closed."""
    v, where = kval(cfg, "streaming-connection-idle-timeout", "/streamingConnectionIdleTimeout", "4h")
    secs = parse_duration(str(v))
    if secs is None:
        yield khit(cfg, "/streamingConnectionIdleTimeout", f"{where}={said(v)} is not a duration")
    elif secs == 0:
        yield khit(cfg, "/streamingConnectionIdleTimeout", f"{where}={said(v)}: idle streams never time out")


@node_control("4.2.6", "Ensure that the --make-iptables-util-chains argument is set to true", "low", K,
              "makeIPTablesUtilChains: true")
def kubelet_iptables(cfg: NodeConfig) -> Iterator[Hit]:
    """makeIPTablesUtilChains is not false (default true): the kubelet then keeps its iptables utility chains in
    step with the pods' networking."""
    v, where = kval(cfg, "make-iptables-util-chains", "/makeIPTablesUtilChains", True)
    if as_bool(v) is False:
        yield khit(cfg, "/makeIPTablesUtilChains", f"{where}={said(v)}")


@node_control("4.2.7", "Ensure that the --hostname-override argument is not set", "low", K,
              "remove --hostname-override")
def kubelet_hostname_override(cfg: NodeConfig) -> Iterator[Hit]:
    """--hostname-override is absent: a node name other than the host's breaks the Node authorizer's and TLS
    name checks."""
    if cfg.kubelet_flags.has("hostname-override"):
        yield khit(cfg, "", f"--hostname-override={cfg.kubelet_flags.get('hostname-override')}: the node name no "
                            "longer matches the host, breaking Node authorization and TLS names")


@node_control("4.2.9", "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate",
              "medium", K, "tlsCertFile and tlsPrivateKeyFile, or serverTLSBootstrap: true")
def kubelet_tls(cfg: NodeConfig) -> Iterator[Hit]:
    """The kubelet serves with a certificate clients can verify: tlsCertFile and tlsPrivateKeyFile, or
    serverTLSBootstrap (a certificate from the certificates API). Otherwise it serves a self-signed one."""
    cert, _ = kval(cfg, "tls-cert-file", "/tlsCertFile", "")
    key, _ = kval(cfg, "tls-private-key-file", "/tlsPrivateKeyFile", "")
    bootstrap, _ = kval(cfg, "rotate-server-certificates", "/serverTLSBootstrap", False)
    if not (cert and key) and as_bool(bootstrap) is not True:
        yield khit(cfg, "/tlsCertFile", "no tlsCertFile/tlsPrivateKeyFile and no serverTLSBootstrap: the kubelet "
                                        "serves a self-signed certificate nobody can verify")


@node_control("4.2.10", "Ensure that the --rotate-certificates argument is not set to false", "medium", K,
              "rotateCertificates: true")
def kubelet_rotate(cfg: NodeConfig) -> Iterator[Hit]:
    """rotateCertificates (--rotate-certificates) is true (default false in v1beta1): the kubelet then renews its
    client certificate before it expires instead of keeping one long-lived credential."""
    v, where = kval(cfg, "rotate-certificates", "/rotateCertificates", False)
    if as_bool(v) is not True:
        yield khit(cfg, "/rotateCertificates", f"{where}={said(v)}: client certificate rotation is off")


@node_control("4.2.11", "Verify that the RotateKubeletServerCertificate argument is set to true", "low", K,
              "remove RotateKubeletServerCertificate=false from featureGates")
def kubelet_rotate_server(cfg: NodeConfig) -> Iterator[Hit]:
    """The RotateKubeletServerCertificate feature gate is not off, in featureGates or --feature-gates (the flag
    wins): the kubelet then renews its serving certificate."""
    gates: dict[str, object] = {}
    assert cfg.kubelet is not None
    fg = cfg.kubelet.obj.get("featureGates")
    if isinstance(fg, dict):
        gates.update(fg)
    for gate in cfg.kubelet_flags.list("feature-gates"):
        name, _, value = gate.partition("=")
        gates[name.strip()] = value.strip()
    if as_bool(gates.get("RotateKubeletServerCertificate", True)) is False:
        yield khit(cfg, "/featureGates/RotateKubeletServerCertificate", "RotateKubeletServerCertificate=false")


KUBELET_CIPHERS = frozenset({
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
})


@node_control("4.2.12", "Ensure that the Kubelet only makes use of Strong Cryptographic Ciphers", "low", K,
              # a YAML list, as KubeletConfiguration's []string reads it (k8s.io/kubelet/config/v1beta1 types.go)
              "tlsCipherSuites: [" + ", ".join(sorted(KUBELET_CIPHERS)) + "]")
def kubelet_ciphers(cfg: NodeConfig) -> Iterator[Hit]:
    """tlsCipherSuites (--tls-cipher-suites) lists only the benchmark's ECDHE AEAD suites. Unset, Go's defaults
    also offer CBC suites (crypto/tls cipher_suites.go)."""
    assert cfg.kubelet is not None
    if cfg.kubelet_flags.has("tls-cipher-suites"):
        suites, where = cfg.kubelet_flags.list("tls-cipher-suites"), "--tls-cipher-suites"
    else:
        raw = cfg.kubelet.obj.get("tlsCipherSuites")
        suites, where = ([str(x) for x in raw] if isinstance(raw, list) else []), "/tlsCipherSuites"
    weak = [x for x in suites if x not in KUBELET_CIPHERS]
    if not suites:
        yield khit(cfg, "/tlsCipherSuites", "tlsCipherSuites unset (Go defaults include CBC suites)")
    elif weak:
        yield khit(cfg, "/tlsCipherSuites", f"{where}: weak suites allowed: {', '.join(weak)}")


@node_control("4.2.13", "Ensure that a limit is set on pod PIDs", "low", K, "podPidsLimit: 4096 (or as appropriate)")
def kubelet_pids(cfg: NodeConfig) -> Iterator[Hit]:
    """podPidsLimit (--pod-max-pids) is positive (default -1, unlimited): one pod's fork bomb cannot then exhaust
    the node's process table."""
    v, where = kval(cfg, "pod-max-pids", "/podPidsLimit", -1)
    try:
        limit = int(str(v))
    except ValueError:
        yield khit(cfg, "/podPidsLimit", f"{where}={said(v)} is not an integer")
        return
    if limit <= 0:
        yield khit(cfg, "/podPidsLimit", f"{where}={limit}: unlimited (a fork bomb can exhaust the node)")


@node_control("4.2.14", "Ensure that the --seccomp-default parameter is set to true", "low", K, "seccompDefault: true")
def kubelet_seccomp(cfg: NodeConfig) -> Iterator[Hit]:
    """seccompDefault (--seccomp-default) is true (default false): containers without a seccomp profile then run
    with the runtime's default profile rather than Unconfined."""
    v, where = kval(cfg, "seccomp-default", "/seccompDefault", False)
    if as_bool(v) is not True:
        yield khit(cfg, "/seccompDefault", f"{where}={said(v)}: containers without a profile run Unconfined")


@node_control("4.2.8", "Ensure that the eventRecordQPS argument is set to a level which ensures appropriate event capture",
              "low", K, "eventRecordQPS: 50 (the default) or another positive rate")
def kubelet_event_qps(cfg: NodeConfig) -> Iterator[Hit]:
    """eventRecordQPS (--event-qps) is a positive integer (default 50, v1beta1 defaults.go): 0 means unlimited,
    which the benchmark's rationale names a denial-of-service risk; a negative value fails the kubelet's
    validation."""
    v, where = kval(cfg, "event-qps", "/eventRecordQPS", 50)
    try:
        qps = int(str(v)) if not isinstance(v, bool) else None
    except ValueError:
        qps = None
    if qps is None:
        yield khit(cfg, "/eventRecordQPS", f"{where}={said(v)} is not an integer")
    elif qps <= 0:
        yield khit(cfg, "/eventRecordQPS", f"{where}={qps}: " + ("event creation is unlimited (a burst can "
                                                                 "overload the kubelet and the API server)"
                                                                 if qps == 0 else "rejected by the kubelet"))
