"""The checks of `etcd probe`: what a real connection to an etcd client URL showed (sources/etcd.py).

Each check receives the ProbeResult and yields (JSON pointer, message); a check whose material was not given
(no client or cluster certificate) or whose answer could not be determined raises NotProbed and is reported as
not assessed, never passed.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import ControlResult, Finding, Location, NotAssessed, ObjectRef, Report
from ..sources.etcd import ProbeResult
from .registry import Control, Shape, control, meta_of, registered

Hit = tuple[str, str]


class NotProbed(Exception):
    """The probe did not test this (material not given, or not determinable)."""


def _tested(r: ProbeResult, value: object, why: str) -> object:
    if value is None:
        raise NotProbed(why if r.tls else "the endpoint speaks plain http: no TLS to test (KW-ETCD-001)")
    return value


@control("KW-ETCD-001", "etcd serves clients without TLS", "critical", "etcd", frameworks=("nsa", "cis-2.1"),
         shape=Shape.ETCD, remediation="Start etcd with --cert-file/--key-file and https:// client URLs.")
def no_tls(r: ProbeResult) -> Iterator[Hit]:
    """The client URL speaks TLS. Over plain http every value, secrets included, travels in the clear, and no
    client certificate can be asked for. Upstream: etcd transport security
    (etcd.io/docs/latest/op-guide/security/); CIS 2.1."""
    if not r.tls:
        yield "/tls", "client URL is plain http: traffic and secrets travel unencrypted"


@control("KW-ETCD-002", "etcd does not require client certificates", "critical", "etcd",
         frameworks=("nsa", "cis-2.2"), shape=Shape.ETCD,
         remediation="Start etcd with --client-cert-auth=true --trusted-ca-file=<etcd CA>.")
def no_client_auth(r: ProbeResult) -> Iterator[Hit]:
    """A request without any client certificate is refused (the probe really sends one). etcd has no
    authorization of its own in a Kubernetes setup: whoever it serves reads and writes the whole cluster state.
    Upstream: etcd --client-cert-auth (etcd.io/docs/latest/op-guide/security/); CIS 2.2."""
    if _tested(r, r.anonymous_refused, "not determinable: the TLS handshake did not complete") is False:
        yield "/clientCertAuth", "a request without any client certificate was served"


@control("KW-ETCD-003", "etcd accepts a client certificate signed by the cluster CA", "critical", "etcd",
         frameworks=("nsa", "cis-2.7"), shape=Shape.ETCD,
         remediation="Use a separate CA for etcd (--trusted-ca-file=etcd/ca.crt, not ca.crt).")
def cluster_cert(r: ProbeResult) -> Iterator[Hit]:
    """A client certificate signed by the Kubernetes cluster CA is refused (given --cluster-cert/--cluster-key):
    if etcd trusts the cluster CA, every user's client certificate reaches etcd directly, past RBAC. Upstream:
    kubeadm's separate etcd CA (kubernetes.io/docs/setup/best-practices/certificates/); CIS 2.7."""
    if _tested(r, r.cluster_cert_refused, "no --cluster-cert/--cluster-key given") is False:
        yield "/trustedCA", "a client certificate signed by the cluster CA was accepted"


@control("KW-ETCD-004", "The cluster CA validates etcd's serving certificate", "high", "etcd", frameworks=("cis-2.7",),
         shape=Shape.ETCD, remediation="Issue etcd's serving certificate from the separate etcd CA.")
def cluster_ca_server(r: ProbeResult) -> Iterator[Hit]:
    """etcd's serving certificate does not verify against the cluster CA (given --cluster-ca): a serving
    certificate from the cluster CA means the two CAs are one, or etcd's identity can be claimed by anything the
    cluster CA signs. Upstream: kubernetes.io/docs/setup/best-practices/certificates/; CIS 2.7."""
    if _tested(r, r.cluster_ca_trusts_server, "no --cluster-ca given"):
        yield "/serverCert", "the serving certificate verifies against the cluster CA"


@control("KW-ETCD-005", "etcd accepts TLS older than 1.2", "medium", "etcd", frameworks=("nsa",), shape=Shape.ETCD,
         remediation="Set --tls-min-version=TLS1.2 (or newer).")
def legacy_tls(r: ProbeResult) -> Iterator[Hit]:
    """A TLS 1.0/1.1-only handshake is refused: those versions are deprecated (RFC 8996). Upstream: etcd
    --tls-min-version (etcd.io/docs/latest/op-guide/configuration/)."""
    if _tested(r, r.legacy_tls_refused, "not determinable: this Python's TLS library offers no TLS 1.0/1.1") is False:
        yield "/tlsMinVersion", "a TLS 1.0/1.1-only handshake succeeded"


@control("KW-ETCD-006", "etcd accepts CBC or non-forward-secret TLS 1.2 cipher suites", "low", "etcd",
         frameworks=("nsa",), shape=Shape.ETCD,
         remediation="Set --cipher-suites to ECDHE AES-GCM/ChaCha20 suites only.")
def weak_ciphers(r: ProbeResult) -> Iterator[Hit]:
    """No TLS 1.2 handshake offering only a CBC or non-forward-secret suite succeeds. Upstream: etcd
    --cipher-suites (etcd.io/docs/latest/op-guide/configuration/); Go crypto/tls cipher_suites.go."""
    _tested(r, r.weak_ciphers, "not determinable: no TLS 1.2 handshake was possible")
    if r.weak_ciphers:
        yield "/cipherSuites", f"accepted: {', '.join(r.weak_ciphers)}"


NO_TLS, NO_CLIENT_AUTH, CLUSTER_CERT = meta_of("KW-ETCD-001"), meta_of("KW-ETCD-002"), meta_of("KW-ETCD-003")
CLUSTER_CA_SERVER, LEGACY_TLS, WEAK_CIPHERS = meta_of("KW-ETCD-004"), meta_of("KW-ETCD-005"), meta_of("KW-ETCD-006")


def etcd_checks() -> dict[str, Control]:
    """The checks of `etcd probe`, by id."""
    return registered(Shape.ETCD)


def probe_report(r: ProbeResult, controls: list[Control] | None = None) -> Report:
    """The findings of one probed endpoint."""
    chosen = list(etcd_checks().values()) if controls is None else controls
    ref = ObjectRef("kubeward.io/v1", "EtcdEndpoint", None, r.endpoint)
    loc = Location(cluster=r.endpoint)
    report = Report(objects=1, findings=[], controls={c.meta.id: ControlResult(c.meta) for c in chosen})
    for c in chosen:
        try:
            hits = list(c.func(r))
        except NotProbed as exc:
            report.not_assessed.append(NotAssessed(c.meta.id, str(exc)))
            continue
        report.findings += [Finding(c.meta, ref, loc, p, msg) for p, msg in hits]
        report.controls[c.meta.id].evaluated = 1
        report.controls[c.meta.id].failed = int(bool(hits))
    return report
