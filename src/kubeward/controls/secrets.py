"""Secret-handling controls: credentials outside Secrets, long-lived tokens, secrets leaking through manifests.

Messages name keys, never values: findings end up in CI logs and SARIF uploads.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import orjson

from ..lazyre import lazy
from ..resource import Resource
from ..snapshot import Snapshot
from .registry import Hit, control
from .workload import credential_value, sensitive_name


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _esc(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@control(
    "KW-S001", "Credential-named key in ConfigMap", "high", "secrets",
    frameworks=("nsa", "cis-5.4.1", "mitre-T1552.001"),
    remediation="Move the value into a Secret (mounted as a file); ConfigMaps are readable by far more subjects.",
    shape="object", kinds=("ConfigMap",),
)
def configmap_credential_key(res: Resource) -> Iterator[Hit]:
    """No non-empty ConfigMap key is named like a credential (password, token, secret, api key...; placeholders
    such as ${VAR}, flags and absolute file paths are not values): ConfigMaps are not Secrets, so far more
    subjects may read them, they are not encrypted at rest by a secrets EncryptionConfiguration, and they are
    shown in plain text. Upstream: the
    ConfigMap docs (kubernetes.io/docs/concepts/configuration/configmap/: not for confidential data); CIS 5.4.1."""
    for section in ("data", "binaryData"):
        for key, value in _d(res.obj.get(section)).items():
            if credential_value(value) and sensitive_name(str(key)):
                yield f"/{section}/{_esc(str(key))}", f'ConfigMap key "{key}" looks like a credential'


# Shapes of real credentials inside a value (config files, connection strings). Compiled once.
_CREDENTIAL_VALUE = lazy(
    r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b"  # GitHub token
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack token
    r"|://[^/\s:@]+:[^/\s@$]+@"  # user:password@ in a URL
    r"|(?im:^\s*[\w.-]*(?:password|passwd|secret|token|api[_-]?key)[\w.-]*\s*[:=]\s*['\"]?(?![$%{<\s'\"/])\S)",
)


@control(
    "KW-S002", "Credential inside ConfigMap value", "high", "secrets",
    frameworks=("nsa", "mitre-T1552.001"),
    remediation="Keep configuration in the ConfigMap and the credential in a Secret referenced from it.",
    shape="object", kinds=("ConfigMap",),
)
def configmap_credential_value(res: Resource) -> Iterator[Hit]:
    """No ConfigMap value holds the shape of a real credential: a PEM private key, an AWS access key id, a
    GitHub or Slack token, user:password@ in a URL, or a password/token/secret/api key assignment in a
    configuration file. Upstream: the ConfigMap docs (not for confidential data); MITRE ATT&CK T1552.001."""
    for key, value in _d(res.obj.get("data")).items():
        if sensitive_name(str(key)):
            continue  # KW-S001 reports the key itself
        if isinstance(value, str) and _CREDENTIAL_VALUE.search(value):
            yield f"/data/{_esc(str(key))}", f'ConfigMap key "{key}" contains a credential (private key, token or password)'


LEGACY_TOKEN_TYPE = "kubernetes.io/service-account-token"
# Set by the legacy-token tracking controller (KEP-2799, v1.28+): the day a request last authenticated with the
# token; and by the cleaner (v1.29+) once it invalidated an unused token (pkg/controlplane/controller/
# legacytokentracking, pkg/controller/serviceaccount/legacy_serviceaccount_token_cleaner.go).
LAST_USED_LABEL = "kubernetes.io/legacy-token-last-used"
INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since"
SHOWN_USERS = 3


def secret_users(snap: Snapshot) -> dict[tuple[str | None, str], list[str]]:
    """(namespace, Secret name) -> the pod-carrying objects of that namespace that read it: secret and projected
    volumes, env secretKeyRef and envFrom secretRef (a pod can only reference Secrets of its own namespace)."""
    users: dict[tuple[str | None, str], list[str]] = {}

    def add(res: Resource, name: Any) -> None:
        if isinstance(name, str) and name:
            seen = users.setdefault((res.namespace, name), [])
            label = f"{res.kind}/{res.name}"
            if label not in seen:
                seen.append(label)

    for res in snap.workloads():
        pod = res.pod()
        if pod is None:
            continue
        for vol, _ in pod.volumes():
            add(res, _d(vol.get("secret")).get("secretName"))
            for src in _d(vol.get("projected")).get("sources") or []:
                add(res, _d(_d(src).get("secret")).get("name"))
        for c, _, _ in pod.containers():
            for e in c.get("env") or []:
                add(res, _d(_d(_d(e).get("valueFrom")).get("secretKeyRef")).get("name"))
            for e in c.get("envFrom") or []:
                add(res, _d(_d(e).get("secretRef")).get("name"))
    return users


def token_age(res: Resource, now: dt.datetime | None = None) -> str:
    """`, created YYYY-MM-DD (N days ago)` for an object read from a cluster; empty for a manifest."""
    now = now or dt.datetime.now(dt.UTC)
    created = res.metadata.get("creationTimestamp")
    if not created:
        return ""
    try:
        when = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return f", created {when:%Y-%m-%d} ({max((now - when).days, 0)} days ago)"


def legacy_token_usage(res: Resource, users: list[str]) -> str:
    """What is known of a legacy token's use: the pods that mount it, the last-used day, or that nothing does."""
    labels = res.labels
    parts = []
    if users:
        more = f" and {len(users) - SHOWN_USERS} more" if len(users) > SHOWN_USERS else ""
        parts.append("used by " + ", ".join(users[:SHOWN_USERS]) + more)
    last = labels.get(LAST_USED_LABEL)
    if isinstance(last, str) and last:
        parts.append(f"last used {last}")
    invalid = labels.get(INVALID_SINCE_LABEL)
    if isinstance(invalid, str) and invalid:
        parts.append(f"invalidated since {invalid}")
    if not parts:
        parts.append(f"no workload mounts it and the apiserver recorded no use (no {LAST_USED_LABEL} label; "
                     "recorded since v1.28): likely unused, delete it")
    return "; ".join(parts)


@control(
    "KW-S003", "Long-lived service account token Secret", "medium", "secrets",
    frameworks=("nsa", "mitre-T1528"),
    remediation="Delete kubernetes.io/service-account-token Secrets; use projected, expiring tokens "
    "(TokenRequest, `kubectl create token`). Move the workloads that use one first.",
    shape="object", kinds=("Secret",),
)
def legacy_sa_token(res: Resource) -> Iterator[Hit]:
    """No Secret of type kubernetes.io/service-account-token: such a token never expires and outlives every pod
    that used it, while projected TokenRequest tokens expire and are bound to their pod. Upstream: KEP-2799
    (reduction of secret-based service account tokens; legacy token cleanup since v1.29); the Service Accounts
    docs."""
    # These never expire and survive pod deletion (KEP-2799, legacy token cleanup since v1.29). Judged per object
    # (so admission sees it too); `creds audit` adds who uses it (legacy_token_usage).
    if res.obj.get("type") == LEGACY_TOKEN_TYPE:
        sa = res.annotations.get("kubernetes.io/service-account.name", "?")
        yield "/type", f'non-expiring token Secret for service account "{sa}"{token_age(res)}'


@control(
    "KW-S004", "Secret value committed in a manifest", "medium", "secrets",
    frameworks=("nsa", "mitre-T1552.001"),
    remediation="Keep secret values out of version control: use an external secret store, SOPS or sealed secrets.",
    shape="object", kinds=("Secret",),
)
def committed_secret(res: Resource) -> Iterator[Hit]:
    """A Secret read from a file (not a live cluster) carries no values in data or stringData: a manifest in
    version control then holds the secret in plain text or base64, which is an encoding, not encryption; token
    Secrets are filled in by the controller and skipped. Upstream: the Secrets good-practices docs
    (kubernetes.io/docs/concepts/security/secrets-good-practices/)."""
    if res.file is None or res.obj.get("type") == "kubernetes.io/service-account-token":
        return  # live objects are expected to hold data; token data is filled in by the controller
    for section in ("stringData", "data"):
        values = _d(res.obj.get(section))
        filled = [str(k) for k, v in values.items() if v]
        if filled:
            kind = "plain text" if section == "stringData" else "base64 (not encrypted)"
            yield f"/{section}", f"manifest holds {len(filled)} secret value(s) in {kind}: keys {', '.join(sorted(filled))}"
            return


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@control(
    "KW-S005", "Secret data copied into last-applied-configuration", "high", "secrets",
    frameworks=("nsa", "mitre-T1552.001"),
    remediation="Re-create the Secret with `kubectl apply --server-side` or `kubectl create`; annotations are "
    "readable by anyone who can get the object's metadata.",
    shape="object", kinds=("Secret",),
)
def secret_in_annotation(res: Resource) -> Iterator[Hit]:
    """A Secret's kubectl.kubernetes.io/last-applied-configuration annotation does not repeat its data or
    stringData: client-side kubectl apply copies the whole object into it, and annotations are shown to anyone
    who can read the object's metadata (kubectl get -o yaml, list with partial metadata). Upstream: kubectl
    apply's last-applied annotation (kubernetes.io/docs/tasks/manage-kubernetes-objects/declarative-config/)."""
    text = res.annotations.get(LAST_APPLIED)
    if not isinstance(text, str) or ("data" not in text):
        return
    try:
        applied = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    if isinstance(applied, dict) and (_d(applied.get("data")) or _d(applied.get("stringData"))):
        yield f"/metadata/annotations/{_esc(LAST_APPLIED)}", "the last-applied-configuration annotation repeats the secret values"


_KEY_FILE = lazy(r"(\.key|\.pem|\.p12|\.pfx|id_rsa|id_ed25519|id_ecdsa|kubeconfig|\.kube/config)$", re.IGNORECASE)


@control(
    "KW-S006", "Private key or kubeconfig in an Opaque Secret", "low", "secrets",
    frameworks=("nsa", "mitre-T1552.004"),
    remediation="Store TLS pairs as type kubernetes.io/tls (so tooling can rotate them) and avoid shipping "
    "kubeconfigs or SSH keys to workloads.",
    shape="object", kinds=("Secret",),
)
def opaque_key_material(res: Resource) -> Iterator[Hit]:
    """An Opaque Secret has no key named like key material or a kubeconfig (*.key, *.pem, *.p12, id_rsa,
    kubeconfig...): TLS pairs belong in type kubernetes.io/tls, which tooling validates and rotates, and
    kubeconfigs or SSH keys handed to workloads are credentials beyond the pod's own. Upstream: the Secrets
    docs, types of Secret (kubernetes.io/docs/concepts/configuration/secret/#secret-types)."""
    if res.obj.get("type", "Opaque") not in ("Opaque", "", None):
        return
    for section in ("data", "stringData"):
        for key in _d(res.obj.get(section)):
            if _KEY_FILE.search(str(key)):
                yield f"/{section}/{_esc(str(key))}", f'Opaque Secret key "{key}" holds key material or a kubeconfig'
