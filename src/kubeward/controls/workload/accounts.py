"""Service account tokens and credentials in the environment."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial

from ...lazyre import lazy
from ...resource import POD_KINDS, PodView, Resource
from ...snapshot import Snapshot, judged_each, namespaces_of
from ..registry import Hit, control
from .common import (
    _containers,
    _d,
    _name,
)

# ------------------------------------------------------------------------------------- service accounts


def _sa_name(pod: PodView) -> str:
    # serviceAccount is the deprecated alias; serviceAccountName wins (core/v1 types.go), "default" when unset.
    return str(pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default")


@control(
    "KW-W044", "Service account token automounted", "medium", "workload",
    frameworks=("nsa", "cis-5.1.6", "mitre-T1528", "mitre-T1552.007"),
    remediation="Set automountServiceAccountToken: false on the pod (or its ServiceAccount) unless it calls the API.",
    shape="snapshot", kinds=POD_KINDS,
)
def sa_token_automount(snap: Snapshot) -> Iterator[tuple[Resource, str, str]]:
    """Fails for each Pod or workload whose pod spec sets automountServiceAccountToken: true, or leaves it unset
    while its ServiceAccount (serviceAccountName, else serviceAccount, else default; looked up in the input's
    same namespace) does not set it false: a ServiceAccount absent from the input counts as mounting. A mounted
    token lets anyone in the container call the API as the workload. Upstream: shouldAutomount in
    plugin/pkg/admission/serviceaccount/admission.go; kubernetes.io/docs/tasks/configure-pod-container/
    configure-service-account/; CIS 5.1.6."""
    # a workload's verdict reads its pod and its ServiceAccount: the monitor re-judges only the workloads that
    # changed and those of namespaces whose ServiceAccounts changed
    yield from judged_each(snap, "workload.sa_token_automount", lambda s: s.workloads(),
                           lambda s: partial(_automount_of, s),
                           lambda changes: namespaces_of(changes, "ServiceAccount"))


def _automount_of(snap: Snapshot, res: Resource) -> list[tuple[Resource, str, str]]:
    """KW-W044 on one workload."""
    # The pod field wins over the ServiceAccount's; both unset means mounted
    # (plugin/pkg/admission/serviceaccount/admission.go shouldAutomount).
    pod = res.pod()
    if pod is None:
        return []
    value = pod.spec.get("automountServiceAccountToken")
    if value is False:
        return []
    if value is True:
        return [(res, f"{pod.spec_path}/automountServiceAccountToken", "pod explicitly mounts its service account token")]
    sa_name = _sa_name(pod)
    sa = snap.get("ServiceAccount", res.namespace, sa_name)
    if sa is not None and sa.obj.get("automountServiceAccountToken") is False:
        return []
    return [(res, pod.spec_path, f'pod mounts the token of service account "{sa_name}" (automount not disabled)')]


@control(
    "KW-W045", "Default service account used", "low", "workload",
    frameworks=("nsa", "cis-5.1.5", "mitre-T1078.001"),
    remediation="Create a dedicated ServiceAccount per workload and set serviceAccountName.",
)
def default_service_account(pod: PodView) -> Iterator[Hit]:
    """Fails when the pod spec's serviceAccountName (else the deprecated serviceAccount) is unset or "default".
    Every pod of the namespace shares that account, so a grant to one is a grant to all. Upstream: CIS 5.1.5;
    kubernetes.io/docs/concepts/security/service-accounts/."""
    if _sa_name(pod) == "default":
        where = f"{pod.spec_path}/serviceAccountName" if "serviceAccountName" in pod.spec else pod.spec_path
        yield where, 'pod runs as the namespace\'s "default" service account'


# ----------------------------------------------------------------------------------------- environment


@control(
    "KW-W046", "Secret exposed as environment variable", "medium", "workload",
    frameworks=("nsa", "cis-5.4.1", "mitre-T1552.001"),
    remediation="Mount secrets as files (secret volume) instead of env/envFrom; env leaks into logs and crash dumps.",
)
def secret_env(pod: PodView) -> Iterator[Hit]:
    """Fails for each env[].valueFrom.secretKeyRef and envFrom[].secretRef of an init, regular or ephemeral
    container. Environment variables leak into logs, crash dumps, child processes and /proc/<pid>/environ.
    Upstream: CIS 5.4.1 (prefer secrets as files over environment variables);
    kubernetes.io/docs/concepts/security/secrets-good-practices/."""
    for c, path, _ in _containers(pod):
        env = c.get("env")
        if isinstance(env, list):
            for i, e in enumerate(env):
                ref = _d(_d(_d(e).get("valueFrom")).get("secretKeyRef"))
                if ref:
                    yield (f"{path}/env/{i}/valueFrom/secretKeyRef",
                           f'container "{_name(c)}" reads secret "{ref.get("name")}" into env {_d(e).get("name")}')
        env_from = c.get("envFrom")
        if isinstance(env_from, list):
            for i, e in enumerate(env_from):
                ref = _d(_d(e).get("secretRef"))
                if ref:
                    yield (f"{path}/envFrom/{i}/secretRef",
                           f'container "{_name(c)}" loads every key of secret "{ref.get("name")}" into env')


SENSITIVE_NAME = lazy(
    r"(pass(word|wd)?|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|access[_-]?key|credential|auth[_-]?key"
    r"|client[_-]?secret|conn(ection)?[_-]?str(ing)?)",
    re.IGNORECASE,
)
# names that mention a secret but hold a reference, not a value
_NOT_A_VALUE = lazy(r"(_FILE|_PATH|_DIR|_NAME|_URL_PATH|_ENABLED|_LENGTH|_TTL|_EXPIR\w*|_REF)$", re.IGNORECASE)


def sensitive_name(name: str) -> bool:
    return bool(SENSITIVE_NAME.search(name)) and not _NOT_A_VALUE.search(name)


# Values that stand for a credential someone fills in later, not a credential: a template expression anywhere
# (Helm/Go/Jinja `{{ ... }}`, envsubst/shell `${VAR}`), or the whole value a fill-in marker (`<ADD YOUR KEY>`,
# `INSERT_API_KEY_HERE`, `REPLACE_ME`). Weak real values such as `changeme` or `password` are credentials.
_FILL_IN = lazy(r"<[^<>\n]+>|(?:INSERT|REPLACE|ADD|ENTER|PUT|YOUR)(?:_[A-Z0-9]+)+|REPLACE_?ME")
_SHELL_VAR = lazy(r"\$\{[A-Za-z_][A-Za-z0-9_]*[:}=?+-]")


def placeholder(value: str) -> bool:
    """Whether an env or config value is a template placeholder rather than a literal (linear time: values
    come from untrusted manifests)."""
    opened = value.find("{{")
    if opened != -1 and value.find("}}", opened + 2) != -1:
        return True
    if "${" in value and _SHELL_VAR.search(value) and "}" in value[value.index("${"):]:
        return True
    return _FILL_IN.fullmatch(value.strip()) is not None


# Values that are no credential whatever the name says: a flag (MYSQL_ALLOW_EMPTY_PASSWORD=yes, the mysql image's
# MYSQL_RANDOM_ROOT_PASSWORD=1) or an absolute file path (GOOGLE_APPLICATION_CREDENTIALS=/etc/sa/key.json names the
# file that holds the credential).
_FLAG_VALUES = frozenset({"true", "false", "yes", "no", "y", "n", "on", "off", "0", "1", "enabled", "disabled"})
_ABSOLUTE_PATH = lazy(r"(?:/[\w.@+-]+)+/?")


def credential_value(value: object) -> bool:
    """Whether a value written next to a credential-like name can be the credential itself: a non-blank string
    that is no template placeholder, flag or absolute file path."""
    if not isinstance(value, str) or not (v := value.strip()):
        return False
    return not (placeholder(v) or v.lower() in _FLAG_VALUES or _ABSOLUTE_PATH.fullmatch(v))


@control(
    "KW-W047", "Credential in plain environment variable", "high", "workload",
    frameworks=("nsa", "mitre-T1552.001"),
    remediation="Move the value into a Secret mounted as a file; never write credentials into manifests.",
)
def env_literal_secret(pod: PodView) -> Iterator[Hit]:
    """Fails for each env[] entry of an init, regular or ephemeral container whose name looks like a credential
    (password, passwd, pwd, secret, token, api key, private key, access key, credential, auth key, client
    secret, connection string; not ending in _FILE, _PATH, _DIR, _NAME, _URL_PATH, _ENABLED, _LENGTH, _TTL,
    _EXPIR*, _REF) with a non-blank literal value that is neither a $(VAR) reference nor a template placeholder
    ({{ }}, ${VAR}, <...>, REPLACE_ME...), a flag (true, yes, 1...) or an absolute file path. The value then
    sits in the manifest, in Git and in etcd unencrypted; it is never printed. Upstream: kubernetes.io/docs/concepts/configuration/secret/; NSA-CISA Kubernetes
    Hardening Guide (secrets); MITRE ATT&CK T1552.001."""
    for c, path, _ in _containers(pod):
        env = c.get("env")
        if not isinstance(env, list):
            continue
        for i, e in enumerate(env):
            e = _d(e)
            name, value = str(e.get("name", "")), e.get("value")
            # $(VAR) is expanded by the kubelet from the container's other variables (core/v1 EnvVar.value)
            if credential_value(value) and "$(" not in str(value) and sensitive_name(name):
                # never echo the value itself
                yield f"{path}/env/{i}/value", f'container "{_name(c)}" env {name} holds a literal credential-like value'
