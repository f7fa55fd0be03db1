"""The controls of `creds audit` and the collector its readers add findings and expiries to."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..controls.registry import Shape, control, meta_of
from ..findings import (
    ControlMeta,
    ControlResult,
    Finding,
    InputError,
    Location,
    NotAssessed,
    ObjectRef,
    Report,
)
from ..findings import Severity as S
from ..sources.files import display_path


def _meta(id: str, title: str, sev: S, remediation: str, frameworks: tuple[str, ...] = (), *,
          why: str) -> ControlMeta:
    """Register a `creds audit` check in the one registry (shape `credential`: its readers in this package add
    the findings to a Collector, so the registered function is never called) and return its metadata."""

    def reported_by_creds_audit() -> Iterator[tuple[str, str]]:
        return iter(())

    control(id, title, sev.name.lower(), "credentials", frameworks=frameworks, remediation=remediation,
            description=why, shape=Shape.CREDENTIAL)(reported_by_creds_audit)
    return meta_of(id)


FILE_MODE = _meta("KW-C001", "Credential file readable by group or others", S.HIGH,
                  "chmod 600 the file (and chown it to the account that uses it).", ("cis-1.1.13", "mitre-T1552.001"),
                  why="A kubeconfig, token file or key grants nothing to group or others (mode 0600 or stricter): "
                      "any local user who can read it is that identity. Upstream: CIS 1.1.13/4.1.x (kube-bench "
                      "cfg/cis-1.12); client-go clientcmd writes kubeconfigs 0600.")
EMBEDDED_TOKEN = _meta("KW-C002", "Bearer token stored in a kubeconfig", S.MEDIUM,
                       "Use an exec credential plugin or short-lived tokens (`kubectl create token`) instead of a "
                       "token written into the file.", ("nsa", "mitre-T1552.001"),
                       why="No users[].user.token (or tokenFile, or an OIDC auth-provider's id-token) in a kubeconfig: a "
                           "bearer token is a password anyone holding the file can replay, often without expiry. "
                           "Upstream: client-go tools/clientcmd/api/types.go (AuthInfo); the Authenticating docs.")
STATIC_KEY = _meta("KW-C003", "Client private key stored in a kubeconfig", S.MEDIUM,
                   "Prefer an exec credential plugin (or short-lived certificates from the CSR API); keep "
                   "long-lived admin keys offline.", ("mitre-T1552.004",),
                   why="No client-key(-data) in a kubeconfig: a client certificate cannot be revoked by the apiserver "
                       "(no CRL), so its key stays a credential until the certificate expires. Upstream: client-go "
                       "clientcmd AuthInfo; the Certificates and CSR docs.")
SKIP_TLS = _meta("KW-C004", "Kubeconfig cluster skips TLS verification", S.HIGH,
                 "Remove insecure-skip-tls-verify and set certificate-authority(-data) to the cluster's CA.",
                 ("nsa", "mitre-T1557"),
                 why="No clusters[].cluster.insecure-skip-tls-verify: without server verification anyone on the path "
                     "can pose as the apiserver and collect the credentials the client sends. Upstream: client-go "
                     "clientcmd api Cluster.InsecureSkipTLSVerify.")
BASIC_AUTH = _meta("KW-C005", "Basic-auth password in a kubeconfig", S.HIGH,
                   "Remove username/password (kube-apiserver dropped basic auth in v1.19); use certificates, OIDC "
                   "or an exec plugin.", ("mitre-T1552.001",),
                   why="No users[].user.username/password: a static password in a file, sent with every request. "
                       "Upstream: basic auth removed from kube-apiserver in v1.19 (kubernetes/kubernetes#89069).")
PLAIN_HTTP = _meta("KW-C006", "Kubeconfig context talks to the server over plain HTTP", S.HIGH,
                   "Point the cluster's server at the https:// endpoint.", ("nsa", "mitre-T1040"),
                   why="Every clusters[].cluster.server a context uses is https://: over http the credentials and "
                       "every object travel in the clear. Upstream: client-go rest config (a server without TLS).")
STATIC_TOKEN = _meta("KW-C010", "Static token in the apiserver's token file", S.HIGH,
                     "Remove --token-auth-file and the file; give the user a certificate, OIDC or a bound "
                     "service-account token.", ("cis-1.2.2", "mitre-T1078"),
                     why="kube-apiserver has no --token-auth-file entries: static tokens last indefinitely and the "
                         "file changes only with an apiserver restart. Upstream: the Authenticating docs (Static "
                         "Token File); CIS 1.2.2.")
BASIC_AUTH_FILE = _meta("KW-C011", "Password in the apiserver's basic-auth file", S.HIGH,
                        "Remove --basic-auth-file and the file (removed in kube-apiserver v1.19).",
                        ("mitre-T1078",),
                        why="kube-apiserver names no --basic-auth-file: static passwords, and a flag current releases "
                            "refuse to start with. Upstream: removed in v1.19 (kubernetes/kubernetes#89069).")
TOKEN_LIFETIME = _meta("KW-C012", "Bound service-account tokens have no maximum lifetime", S.LOW,
                       "Set --service-account-max-token-expiration (e.g. 48h) on kube-apiserver.", ("nsa",),
                       why="kube-apiserver sets --service-account-max-token-expiration, so a TokenRequest cannot ask "
                           "for a token that outlives its use. Upstream: kube-apiserver flags "
                           "(pkg/kubeapiserver/options/authentication.go); the Service Accounts admin docs.")
TOKEN_SETTINGS = _meta("KW-C013", "Service-account token issuing is not fully configured", S.MEDIUM,
                       "Set --service-account-issuer, --service-account-signing-key-file and "
                       "--service-account-key-file to readable files.",
                       why="kube-apiserver has --service-account-issuer, --service-account-signing-key-file and "
                           "--service-account-key-file, each file readable: bound tokens are issued and verified "
                           "with keys the node holds. Upstream: the Service Accounts admin docs; CIS 1.2.28/1.2.29.")
AGGREGATOR_SKIP_TLS = _meta("KW-C020", "APIService skips TLS verification", S.HIGH,
                            "Set spec.caBundle to the extension server's CA and remove insecureSkipTLSVerify.",
                            ("mitre-T1557",),
                            why="No APIService with spec.insecureSkipTLSVerify: the aggregator would forward "
                                "requests, with the user's identity headers, to whoever answers. Upstream: "
                                "k8s.io/kube-aggregator apiregistration/v1 APIServiceSpec; the aggregation layer docs "
                                "(kubernetes.io/docs/concepts/extend-kubernetes/api-extension/apiserver-aggregation/).")
CONTROLS = (FILE_MODE, EMBEDDED_TOKEN, STATIC_KEY, SKIP_TLS, BASIC_AUTH, PLAIN_HTTP, STATIC_TOKEN, BASIC_AUTH_FILE,
            TOKEN_LIFETIME, TOKEN_SETTINGS, AGGREGATOR_SKIP_TLS)


@dataclass(frozen=True, slots=True)
class Expiry:
    """One credential and its end: `not_after` None means it never expires (static and legacy tokens)."""

    id: str  # stable across runs: "<kind>:<where>", e.g. "cert:/etc/kubernetes/pki/apiserver.crt"
    owner: str  # who presents it (a user, a component, a service account)
    not_after: dt.datetime | None


@dataclass(slots=True)
class Collector:
    """What the readers found; `report()` turns it into the one Report every format renders."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    findings: list[Finding] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    not_assessed: list[NotAssessed] = field(default_factory=list)
    expiries: list[Expiry] = field(default_factory=list)
    results: dict[str, ControlResult] = field(default_factory=dict)
    objects: int = 0
    _failed: dict[str, set[tuple[ObjectRef, str | None]]] = field(default_factory=dict)

    def judged(self, meta: ControlMeta, n: int = 1) -> None:
        self.results.setdefault(meta.id, ControlResult(meta)).evaluated += n

    def add(self, meta: ControlMeta, ref: ObjectRef, where: Location, path: str, message: str) -> None:
        self.findings.append(Finding(meta, ref, where, path, message))
        self._failed.setdefault(meta.id, set()).add((ref, where.file))  # two files may share a base name
        self.results.setdefault(meta.id, ControlResult(meta))

    def error(self, what: str, message: str) -> None:
        self.errors.append(InputError(what, message))

    def expiry(self, id: str, owner: str, not_after: dt.datetime | None) -> None:
        self.expiries.append(Expiry(id, owner, not_after))

    def report(self) -> Report:
        for cid, refs in self._failed.items():
            res = self.results[cid]
            res.failed = len(refs)
            res.evaluated = max(res.evaluated, res.failed)
        findings = sorted(self.findings, key=lambda f: (-f.severity, f.control.id, str(f.location), f.path))
        return Report(objects=self.objects, findings=findings, errors=list(self.errors),
                      not_assessed=list(self.not_assessed), controls=dict(sorted(self.results.items())))


def file_ref(kind: str, path: Path | str) -> ObjectRef:
    """A file as the object of a finding: named by its base name (the location gives the whole path)."""
    return ObjectRef("kubeward.io/v1", kind, None, Path(path).name)


def file_loc(path: Path | str) -> Location:
    return Location(file=display_path(str(path)))


def changed_on(path: Path) -> str:
    """`, file changed YYYY-MM-DD`: the age of a credential a file holds, as far as the file can tell."""
    try:
        when = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError:
        return ""
    return f", file changed {when:%Y-%m-%d}"


def mode_of(path: Path) -> int | None:
    """The permission bits of a regular file (None when it is not one or cannot be stat'ed)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def check_mode(col: Collector, kind: str, path: Path, what: str) -> None:
    """KW-C001 for one credential file: any group or other permission bit is too much."""
    mode = mode_of(path)
    if mode is None:
        return
    col.judged(FILE_MODE)
    if mode & 0o077:
        col.add(FILE_MODE, file_ref(kind, path), file_loc(path), "/mode",
                f"{what} has mode {mode:04o} (want 0600)")


def under_root(root: Path | None, path: str, base: Path | None = None) -> Path:
    """A path a file names, seen from here: absolute paths below the node root (`--node-root`), relative ones
    from the naming file's folder (clientcmd resolves kubeconfig paths against the file's directory)."""
    if os.path.isabs(path):
        return root / path.lstrip("/") if root is not None else Path(path)
    return (base or Path.cwd()) / path
