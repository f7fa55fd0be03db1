"""Built-in detections over single audit events, declared with the verbs, resources and stages they need so the
analyzer can dispatch each event to the few detections that could fire (most events reach none).

Falco's k8saudit rules (falcosecurity/plugins plugins/k8saudit/rules/k8s_audit_rules.yaml) give the semantics for the
first group; the field mapping follows pkg/k8saudit/extract.go (ka.user.name = user.username, ka.target.* =
objectRef.*, ka.req.* = requestObject.*, ka.auth.decision = the authorization.k8s.io/decision annotation).
Messages never include a secret's or configmap's values, only names and keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..findings import Severity

Check = Callable[[dict[str, Any]], "str | None"]

# Falco macro kevt: only ResponseComplete; kevt_started: ResponseStarted.
COMPLETE = frozenset({"ResponseComplete"})
STARTED_OR_COMPLETE = frozenset({"ResponseStarted", "ResponseComplete"})
CREATE = frozenset({"create"})
MODIFY = frozenset({"create", "update", "patch"})  # Falco macro kmodify
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection", "*"})


@dataclass(frozen=True, slots=True)
class Detection:
    id: str
    title: str
    severity: Severity
    check: Check
    resources: frozenset[str] | None = None  # objectRef.resource; None = any event
    verbs: frozenset[str] | None = None
    stages: frozenset[str] = COMPLETE
    once_per_request: bool = False  # fires at most once per auditID across the stages it watches
    needs_key: str | None = None  # only events carrying this top-level field (cheap dispatch for "any" events)
    users: frozenset[str] | None = None  # only events by these user names (user.username)
    image_exempt: bool = False  # silenced when every container image is a trusted repository (Falco image lists)
    subresources: frozenset[str] | None = None  # objectRef.subresource ("" = none); None = any


# --- field helpers (Falco macros) ------------------------------------------------------------------------------

def code(ev: dict[str, Any]) -> int:
    return (ev.get("responseStatus") or {}).get("code") or 0


def successful(ev: dict[str, Any]) -> bool:
    """Falco response_successful: the code starts with 2; 101 (an upgraded exec stream) also succeeded."""
    c = code(ev)
    return 200 <= c < 300 or c == 101


def username(ev: dict[str, Any]) -> str:
    return (ev.get("user") or {}).get("username", "")


def system_user(ev: dict[str, Any]) -> bool:
    """Falco non_system_user is the negation: names starting with `system:`."""
    return username(ev).startswith("system:")


def ref(ev: dict[str, Any]) -> dict[str, Any]:
    return ev.get("objectRef") or {}


def no_subresource(ev: dict[str, Any]) -> bool:
    return not ref(ev).get("subresource")


def req(ev: dict[str, Any]) -> dict[str, Any]:
    obj = ev.get("requestObject")
    return obj if isinstance(obj, dict) else {}


def pod_spec(ev: dict[str, Any]) -> dict[str, Any]:
    spec = req(ev).get("spec")
    return spec if isinstance(spec, dict) else {}


def all_containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    # ka.req.pod.containers covers containers, initContainers and ephemeralContainers.
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or ():
            if isinstance(c, dict):
                yield c


def image_repository(image: str) -> str:
    """Falco ka.req.pod.containers.image.repository: the image without digest and tag."""
    image = image.split("@", 1)[0]
    slash, colon = image.rfind("/"), image.rfind(":")
    return image[:colon] if colon > slash else image


def pod_images(ev: dict[str, Any]) -> list[str]:
    return [image_repository(str(c.get("image", ""))) for c in all_containers(pod_spec(ev))]


def target(ev: dict[str, Any]) -> str:
    r = ref(ev)
    name = r.get("name") or req(ev).get("metadata", {}).get("name") or (
        (ev.get("responseObject") or {}).get("metadata", {}).get("name", "") if isinstance(
            ev.get("responseObject"), dict) else "")
    ns = r.get("namespace")
    return f"{ns}/{name}" if ns else str(name)


# --- pods -------------------------------------------------------------------------------------------------------

def _privileged(ev: dict[str, Any]) -> str | None:
    if not no_subresource(ev):
        return None
    names = [c.get("name", "?") for c in all_containers(pod_spec(ev))
             if (c.get("securityContext") or {}).get("privileged") is True]
    return f"pod {target(ev)} created with privileged container(s) {', '.join(names)}" if names else None


# Falco macro sensitive_vol_mount (exact paths, as `intersects` compares whole values).
SENSITIVE_HOST_PATHS = frozenset({
    "/proc", "/var/run/docker.sock", "/", "/etc", "/root", "/var/run/crio/crio.sock",
    "/run/containerd/containerd.sock", "/home/admin", "/var/lib/kubelet", "/var/lib/kubelet/pki",
    "/etc/kubernetes", "/etc/kubernetes/manifests",
})


def _sensitive_mount(ev: dict[str, Any]) -> str | None:
    if not no_subresource(ev):
        return None
    hits = []
    for v in pod_spec(ev).get("volumes") or ():
        path = ((v or {}).get("hostPath") or {}).get("path") if isinstance(v, dict) else None
        if isinstance(path, str) and path in SENSITIVE_HOST_PATHS:
            hits.append(path)
    return f"pod {target(ev)} mounts sensitive host path(s) {', '.join(hits)}" if hits else None


def _host_ns(field_name: str, what: str) -> Check:
    def check(ev: dict[str, Any]) -> str | None:
        if no_subresource(ev) and pod_spec(ev).get(field_name) is True:
            return f"pod {target(ev)} created using the host {what} ({field_name}: true)"
        return None

    return check


def _kube_namespace_pod(ev: dict[str, Any]) -> str | None:
    if no_subresource(ev) and ref(ev).get("namespace") in KUBE_NAMESPACES and not system_user(ev) and successful(ev):
        return f"pod {target(ev)} created in {ref(ev)['namespace']} by a non-system user"
    return None


KUBE_NAMESPACES = frozenset({"kube-system", "kube-public"})


def _exec_attach(ev: dict[str, Any]) -> str | None:
    sub = ref(ev).get("subresource")
    if sub not in ("exec", "attach"):
        return None
    cmd = _query_values(ev.get("requestURI", ""), "command")
    extra = f" command={' '.join(cmd)}" if cmd else ""
    outcome = "" if successful(ev) or ev.get("stage") == "ResponseStarted" else f" (denied, code {code(ev)})"
    return f"{sub} into pod {target(ev)}{extra}{outcome}"


def _portforward(ev: dict[str, Any]) -> str | None:
    if ref(ev).get("subresource") != "portforward":
        return None
    return f"port-forward to pod {target(ev)}" + ("" if successful(ev) else f" (denied, code {code(ev)})")


def _ephemeral(ev: dict[str, Any]) -> str | None:
    if ref(ev).get("subresource") != "ephemeralcontainers":
        return None
    eph = [c.get("name", "?") + "=" + str(c.get("image", "?")) for c in req(ev).get("spec", {}).get(
        "ephemeralContainers") or () if isinstance(c, dict)] if isinstance(req(ev).get("spec"), dict) else []
    return f"ephemeral container added to pod {target(ev)}" + (f" ({', '.join(eph)})" if eph else "")


def _query_values(uri: str, key: str) -> list[str]:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(uri).query).get(key, [])


# --- services, configmaps, ingresses, secrets ----------------------------------------------------------------------

def _nodeport(ev: dict[str, Any]) -> str | None:
    spec = req(ev).get("spec")
    if no_subresource(ev) and isinstance(spec, dict) and spec.get("type") == "NodePort":
        return f"NodePort service {target(ev)} created"
    return None


# Falco macro contains_private_credentials: substrings of the configmap (case-sensitive `contains`).
CREDENTIAL_MARKERS = ("aws_access_key_id", "aws-access-key-id", "aws_s3_access_key_id", "aws-s3-access-key-id",
                      "password", "passphrase")


def _configmap_credentials(ev: dict[str, Any]) -> str | None:
    obj = req(ev)
    if not obj or not no_subresource(ev):
        return None
    text = orjson.dumps(obj.get("data") or {}).decode()
    found = [m for m in CREDENTIAL_MARKERS if m in text]
    if not found:
        return None
    keys = sorted(k for k in (obj.get("data") or {}) if any(m in k for m in found))
    where = f" in keys {', '.join(keys)}" if keys else ""
    return f"configmap {target(ev)} {ev.get('verb')}d with credential-like content ({', '.join(found)}){where}"


def _ingress_no_tls(ev: dict[str, Any]) -> str | None:
    spec = req(ev).get("spec")
    if no_subresource(ev) and isinstance(spec, dict) and not spec.get("tls"):
        return f"ingress {target(ev)} created without TLS"
    return None


def _secret_read(ev: dict[str, Any]) -> str | None:
    if no_subresource(ev) and not system_user(ev) and successful(ev):
        what = f"secret {target(ev)}" if ref(ev).get("name") else f"secrets in {ref(ev).get('namespace') or 'all namespaces'}"
        return f"{what} read ({ev.get('verb')}) by non-system user"
    return None


# --- authentication, identity ------------------------------------------------------------------------------------

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")


def _anonymous_allowed(ev: dict[str, Any]) -> str | None:
    if username(ev) != "system:anonymous":
        return None
    if (ev.get("annotations") or {}).get("authorization.k8s.io/decision") != "allow":
        return None
    uri = ev.get("requestURI", "")
    # Falco health_endpoint/live_endpoint/ready_endpoint: the path exactly or followed by a query.
    if any(uri == p or uri.startswith(p + "?") for p in HEALTH_PATHS):
        return None
    return f"anonymous request allowed: {ev.get('verb')} {uri}"


def _impersonation(ev: dict[str, Any]) -> str | None:
    # The impersonation filter runs before the audit filter records the event, so an impersonated request is one
    # event with user (the caller) and impersonatedUser (who it acted as).
    imp = ev.get("impersonatedUser")
    if not imp:
        return None
    return (f"{username(ev)} acted as {imp.get('username', '?')}"
            + (f" (groups {', '.join(imp.get('groups') or ())})" if imp.get("groups") else "")
            + ("" if successful(ev) else f", code {code(ev)}"))


def control_plane(ev: dict[str, Any]) -> bool:
    """Nodes and control-plane components mint tokens and CSRs routinely."""
    u = ev.get("user") or {}
    name = u.get("username", "")
    return (name.startswith(("system:node:", "system:kube-", "system:bootstrap:"))
            or "system:nodes" in (u.get("groups") or ()) or "system:bootstrappers" in (u.get("groups") or ()))


def _sa_token(ev: dict[str, Any]) -> str | None:
    if ref(ev).get("subresource") == "token" and not control_plane(ev) and successful(ev):
        return f"token requested for serviceaccount {target(ev)}"
    return None


def _sa_kube_namespace(ev: dict[str, Any]) -> str | None:
    if no_subresource(ev) and ref(ev).get("namespace") in KUBE_NAMESPACES and not system_user(ev) and successful(ev):
        return f"serviceaccount {target(ev)} created in {ref(ev)['namespace']} by a non-system user"
    return None


def _csr_created(ev: dict[str, Any]) -> str | None:
    if ref(ev).get("subresource") or control_plane(ev) or not successful(ev):
        return None
    spec = req(ev).get("spec")
    signer = spec.get("signerName", "") if isinstance(spec, dict) else ""
    return f"certificate signing request {target(ev)} created" + (f" for signer {signer}" if signer else "")


def _csr_approved(ev: dict[str, Any]) -> str | None:
    # Approval goes through the certificatesigningrequests/approval subresource (update).
    if ref(ev).get("subresource") != "approval" or not successful(ev):
        return None
    if username(ev) == "system:kube-controller-manager":
        return None  # the csrapproving controller auto-approves kubelet client certificates
    return f"certificate signing request {target(ev)} approved by {username(ev)}"


# --- RBAC --------------------------------------------------------------------------------------------------------

def role_rules(ev: dict[str, Any]) -> list[dict[str, Any]]:
    rules = req(ev).get("rules")
    return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []


def _cluster_admin_binding(ev: dict[str, Any]) -> str | None:
    rr = req(ev).get("roleRef")
    if no_subresource(ev) and isinstance(rr, dict) and rr.get("kind") == "ClusterRole" and rr.get("name") == "cluster-admin":
        subjects = ", ".join(f"{s.get('kind')}:{s.get('name')}" for s in req(ev).get("subjects") or ()
                             if isinstance(s, dict))
        return f"{ref(ev).get('resource')} {target(ev)} grants cluster-admin to {subjects or 'no subjects'}"
    return None


def _wildcard_role(ev: dict[str, Any]) -> str | None:
    for r in role_rules(ev):
        if "*" in (r.get("verbs") or ()) or "*" in (r.get("resources") or ()):
            return f"{_role_kind(ev)} {target(ev)} {ev.get('verb')}d with wildcard rules"
    return None


def _exec_role(ev: dict[str, Any]) -> str | None:
    for r in role_rules(ev):
        if "pods/exec" in (r.get("resources") or ()) and set(r.get("verbs") or ()) & {"create", "get", "*"}:
            return f"{_role_kind(ev)} {target(ev)} {ev.get('verb')}d allowing pods/exec"
    return None


def _write_role(ev: dict[str, Any]) -> str | None:
    for r in role_rules(ev):
        verbs = set(r.get("verbs") or ())
        if verbs & WRITE_VERBS:
            return f"{_role_kind(ev)} {target(ev)} created with write verbs {', '.join(sorted(verbs & WRITE_VERBS))}"
    return None


# Falco "System ClusterRole Modified/Deleted" leaves these two out (updated by their own add-ons).
SYSTEM_ROLE_EXCEPTIONS = frozenset({"system:coredns", "system:managed-certificate-controller"})


def _system_role_modified(ev: dict[str, Any]) -> str | None:
    name = ref(ev).get("name") or req(ev).get("metadata", {}).get("name", "")
    if isinstance(name, str) and name.startswith("system:") and name not in SYSTEM_ROLE_EXCEPTIONS:
        return f"system {_role_kind(ev)} {target(ev)} {ev.get('verb')}"
    return None


def _role_kind(ev: dict[str, Any]) -> str:
    return {"clusterroles": "ClusterRole", "roles": "Role"}.get(ref(ev).get("resource", ""), "role")


# Rules that grant escalation power (reference Part A risks): RBAC self-escalation verbs, impersonation, reading
# secrets, exec into pods, minting tokens, node proxy. Matched as literal rule content.
ESCALATION_VERBS = frozenset({"bind", "escalate", "impersonate"})
READ_VERBS = frozenset({"get", "list", "watch", "*"})


# With the RBAC engine (kubeward.engines.rbac) the powers are its risk categories, matched with the authorizer's
# exact rule semantics; these are the ones that amount to escalation (creating workloads is left out: most
# application roles need it).
ENGINE_CATEGORIES = frozenset({"cluster-admin", "secrets-read", "bind", "escalate", "impersonate", "token-request",
                               "token-secrets", "csr-approve", "pods-exec", "ephemeral-containers", "nodes-proxy",
                               "webhooks"})


def _engine_powers(rules: list[dict[str, Any]]) -> list[str] | None:
    try:
        from ..engines.rbac.matching import rule_allows
        from ..engines.rbac.model import Rule
        from ..engines.rbac.risks import CATEGORIES
    except ImportError:
        return None
    parsed = [Rule.parse(r) for r in rules]
    found = []
    for cat in CATEGORIES:
        if cat.id not in ENGINE_CATEGORIES:
            continue
        if any(all(any(rule_allows(p.request(), r) for r in parsed) for p in alt) for alt in cat.any_of):
            found.append(cat.title.removeprefix("can "))
    return found


def escalation_powers(rules: list[dict[str, Any]]) -> list[str]:
    """Which escalation powers these PolicyRules grant: the RBAC engine's risk categories when it is importable,
    else literal rule inspection."""
    if not rules:
        return []
    # Controllers re-apply the same roles over and over: judge each distinct rule set once (bounded memo).
    key = orjson.dumps(rules, option=orjson.OPT_SORT_KEYS)
    hit = _POWERS_MEMO.get(key)
    if hit is not None:
        return list(hit)
    powers = _engine_powers(rules)
    found = powers if powers is not None else literal_powers(rules)
    if len(_POWERS_MEMO) >= POWERS_MEMO_CAPACITY:
        _POWERS_MEMO.clear()
    _POWERS_MEMO[key] = tuple(found)
    return found


POWERS_MEMO_CAPACITY = 4096
_POWERS_MEMO: dict[bytes, tuple[str, ...]] = {}


def literal_powers(rules: list[dict[str, Any]]) -> list[str]:
    """Plain rule inspection (no engine): RBAC self-escalation verbs, impersonation, secrets, exec, tokens."""
    found: list[str] = []
    for r in rules:
        verbs = set(r.get("verbs") or ())
        res = set(r.get("resources") or ())
        groups = set(r.get("apiGroups") or ())
        if "*" in verbs and "*" in res:
            found.append("all verbs on all resources")
            continue
        if verbs & ESCALATION_VERBS or ("*" in verbs and res & {"roles", "clusterroles", "users", "groups",
                                                                 "serviceaccounts"}):
            found.append("verbs " + ", ".join(sorted((verbs & ESCALATION_VERBS) or {"*"})))
        if res & {"secrets", "*"} and verbs & READ_VERBS and groups & {"", "*"}:
            found.append("read secrets")
        if res & {"pods/exec", "pods/attach", "*"} and verbs & {"create", "get", "*"}:
            found.append("exec into pods")
        if res & {"serviceaccounts/token", "*"} and verbs & {"create", "*"}:
            found.append("create serviceaccount tokens")
        if res & {"nodes/proxy", "*"} and verbs & {"get", "create", "*"}:
            found.append("node proxy")
    return sorted(set(found))


def _rbac_escalation(ev: dict[str, Any]) -> str | None:
    if not successful(ev):
        return None
    powers = escalation_powers(role_rules(ev))
    if powers:
        return f"{_role_kind(ev)} {target(ev)} {ev.get('verb')}d granting {'; '.join(powers)}"
    return None


# Default ClusterRoles that read secrets and exec into pods (bootstrappolicy/policy.go: admin, edit).
POWERFUL_DEFAULT_ROLES = {("ClusterRole", "admin"): "admin (secrets, exec, role bindings)",
                          ("ClusterRole", "edit"): "edit (secrets, exec, impersonate service accounts)"}
KNOWN_ROLES_CAPACITY = 10000


class EscalationBinding:
    """A binding to a role that grants escalation power: a powerful default ClusterRole, or a role this stream saw
    being created with such power (remembered, bounded). Stateful, so each Analyzer gets its own instance."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, str, str], str] = {}

    def __call__(self, ev: dict[str, Any]) -> str | None:
        r = ref(ev)
        res = r.get("resource")
        if res in ("roles", "clusterroles"):
            if successful(ev) and ev.get("verb") in ("create", "update"):
                kind = "Role" if res == "roles" else "ClusterRole"
                name = r.get("name") or req(ev).get("metadata", {}).get("name", "")
                key = (kind, r.get("namespace", "") if kind == "Role" else "", str(name))
                powers = escalation_powers(role_rules(ev))
                if powers and len(self.known) < KNOWN_ROLES_CAPACITY:
                    self.known[key] = "; ".join(powers)
                else:
                    self.known.pop(key, None)
            return None
        rr = req(ev).get("roleRef")
        if not isinstance(rr, dict) or rr.get("name") == "cluster-admin" or not successful(ev):
            return None
        kind, name = rr.get("kind", ""), rr.get("name", "")
        ns = r.get("namespace", "") if kind == "Role" else ""
        why = POWERFUL_DEFAULT_ROLES.get((kind, name)) or self.known.get((kind, ns, name))
        if not why:
            return None
        subjects = ", ".join(f"{s.get('kind')}:{s.get('name')}" for s in req(ev).get("subjects") or ()
                             if isinstance(s, dict))
        return f"{ref(ev).get('resource')} {target(ev)} binds {kind} {name} ({why}) to {subjects or 'no subjects'}"


def builtin() -> list[Detection]:
    """Every built-in detection; ids are stable (users silence and select by them). Resource, subresource, verb
    and stage are declared so the analyzer dispatches on them; the check only looks at the rest."""
    H, M, L, C = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.CRITICAL
    pods, roles = frozenset({"pods"}), frozenset({"clusterroles", "roles"})
    bindings = frozenset({"clusterrolebindings", "rolebindings"})
    none, exec_attach = frozenset({""}), frozenset({"exec", "attach"})
    get_create = frozenset({"create", "get"})
    csr = frozenset({"certificatesigningrequests"})

    def pod_create(id: str, title: str, sev: Severity, check: Check) -> Detection:
        return Detection(id, title, sev, check, pods, CREATE, subresources=none, image_exempt=True)

    return [
        pod_create("privileged-pod", "Create Privileged Pod", H, _privileged),
        pod_create("sensitive-mount-pod", "Create Sensitive Mount Pod", H, _sensitive_mount),
        pod_create("hostnetwork-pod", "Create HostNetwork Pod", M, _host_ns("hostNetwork", "network")),
        pod_create("hostpid-pod", "Create HostPid Pod", H, _host_ns("hostPID", "PID namespace")),
        pod_create("hostipc-pod", "Create HostIPC Pod", M, _host_ns("hostIPC", "IPC namespace")),
        pod_create("pod-in-kube-namespace", "Pod Created in Kube Namespace", M, _kube_namespace_pod),
        # exec/attach/portforward upgrade a POST (verb create) or a websocket GET (verb get) into a stream.
        Detection("exec-attach", "Attach/Exec Pod", M, _exec_attach, pods, get_create, STARTED_OR_COMPLETE,
                  once_per_request=True, subresources=exec_attach),
        Detection("port-forward", "Port-forward to Pod", M, _portforward, pods, get_create, STARTED_OR_COMPLETE,
                  once_per_request=True, subresources=frozenset({"portforward"})),
        Detection("ephemeral-container", "EphemeralContainers Created", M, _ephemeral, pods, MODIFY,
                  subresources=frozenset({"ephemeralcontainers"})),
        Detection("nodeport-service", "Create NodePort Service", L, _nodeport, frozenset({"services"}), CREATE,
                  subresources=none),
        Detection("configmap-credentials", "Create/Modify Configmap With Private Credentials", M,
                  _configmap_credentials, frozenset({"configmaps"}), MODIFY, subresources=none),
        Detection("ingress-without-tls", "Ingress Object without TLS Certificate Created", L, _ingress_no_tls,
                  frozenset({"ingresses"}), CREATE, subresources=none),
        Detection("secret-read", "Secret read by a non-system user", M, _secret_read, frozenset({"secrets"}),
                  frozenset({"get", "list", "watch"}), subresources=none),
        Detection("anonymous-allowed", "Anonymous Request Allowed", H, _anonymous_allowed,
                  users=frozenset({"system:anonymous"})),
        Detection("cluster-admin-binding", "Attach to cluster-admin Role", C, _cluster_admin_binding, bindings,
                  MODIFY, subresources=none),
        Detection("wildcard-role", "ClusterRole With Wildcard Created", H, _wildcard_role, roles, MODIFY),
        Detection("exec-role", "ClusterRole With Pod Exec Created", H, _exec_role, roles, MODIFY),
        Detection("write-role", "ClusterRole With Write Privileges Created", L, _write_role,
                  frozenset({"clusterroles"}), CREATE),
        Detection("system-role-modified", "System ClusterRole Modified/Deleted", H, _system_role_modified, roles,
                  frozenset({"create", "update", "patch", "delete"})),
        Detection("rbac-escalation", "RBAC change adding escalation power", H, _rbac_escalation, roles, MODIFY),
        Detection("escalation-binding", "Binding to a role with escalation power", H, EscalationBinding(),
                  roles | bindings, frozenset({"create", "update"})),
        Detection("sa-in-kube-namespace", "Service Account Created in Kube Namespace", M, _sa_kube_namespace,
                  frozenset({"serviceaccounts"}), CREATE, subresources=none),
        Detection("serviceaccount-token", "ServiceAccount token created", M, _sa_token,
                  frozenset({"serviceaccounts"}), CREATE, subresources=frozenset({"token"})),
        Detection("csr-created", "CertificateSigningRequest created", M, _csr_created, csr, CREATE,
                  subresources=none),
        Detection("csr-approved", "CertificateSigningRequest approved", H, _csr_approved, csr,
                  frozenset({"update", "patch"}), subresources=frozenset({"approval"})),
        Detection("impersonation", "Impersonation", M, _impersonation, needs_key="impersonatedUser"),
    ]
