"""Built-in detections over single audit events, declared with the verbs, resources and stages they need so the
analyzer can dispatch each event to the few detections that could fire (most events reach none).

Falco's k8saudit rules (falcosecurity/plugins plugins/k8saudit/rules/k8s_audit_rules.yaml) give the semantics for the
first group; the field mapping follows pkg/k8saudit/extract.go (ka.user.name = user.username, ka.target.* =
objectRef.*, ka.req.* = requestObject.*, ka.auth.decision = the authorization.k8s.io/decision annotation).
Messages never include a secret's or configmap's values, only names and keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..findings import Severity
from . import podfacts
from .identities import POD_CREATING_CONTROLLERS, Identities

# A check returns None (no alert), a message, or (message, the JSON pointer of the field that triggered it).
Check = Callable[[dict[str, Any]], "str | tuple[str, str] | None"]

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
    # The control plane's own identities (identities.py, one allow-list for all rules) are left alone.
    exempt_control_plane: bool = True
    # Refused requests (refused() below): "lower" = an attempt alert one severity lower; "keep" = same severity
    # (custom rules: their author chose it); "only" = the rule is about refusals; "never" = refusals are another
    # rule's business.
    attempts: str = "lower"
    # Rules of one batch share a precondition the analyzer tests once per event before running any of them
    # (BATCH_GATES); they must share their dispatch keys (resources, verbs, stages, subresources).
    batch: str | None = None


# --- field helpers (Falco macros) ------------------------------------------------------------------------------

def code(ev: dict[str, Any]) -> int:
    return (ev.get("responseStatus") or {}).get("code") or 0


def refused(ev: dict[str, Any]) -> bool:
    """The apiserver refused the request: authentication, authorization, admission (a webhook, a policy, quota)
    or validation failed. Every such response is a Status with code >= 400 (apimachinery/pkg/api/errors), and the
    audit filter records it as responseStatus (apiserver/pkg/endpoints/filters/audit.go)."""
    rs = ev.get("responseStatus")
    if not isinstance(rs, dict):
        return False
    c = rs.get("code")
    return (isinstance(c, int) and c >= 400) or rs.get("status") == "Failure"


def refusal(ev: dict[str, Any]) -> str:
    """`code 403 Forbidden`, from responseStatus (code and reason; never the message, which may echo input)."""
    rs = ev.get("responseStatus") or {}
    reason = rs.get("reason") if isinstance(rs.get("reason"), str) else ""
    return f"code {rs.get('code', '?')}" + (f" {reason}" if reason else "")


def said(ev: dict[str, Any], subject: str, past: str, rest: str = "") -> str:
    """`pod web/p created with …` when it happened; `refused attempt (code 403 Forbidden): pod web/p with …` when
    the apiserver refused it: an attempt is never worded as done."""
    tail = f" {rest}" if rest else ""
    if refused(ev):
        return f"refused attempt ({refusal(ev)}): {ev.get('verb', '?')} {subject}{tail}"
    return f"{subject} {past}{tail}"


def successful(ev: dict[str, Any]) -> bool:
    """Falco response_successful: the code starts with 2; 101 (an upgraded exec stream) also succeeded."""
    c = code(ev)
    return 200 <= c < 300 or c == 101


def username(ev: dict[str, Any]) -> str:
    return (ev.get("user") or {}).get("username", "")


def actor(ev: dict[str, Any]) -> str:
    """Who did it, for messages: the caller, and the identity it acted as when it impersonated."""
    imp = ev.get("impersonatedUser")
    name = imp.get("username") if isinstance(imp, dict) else None
    return f"{username(ev)} as {name}" if name else username(ev)


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


def _meta(obj: Any) -> dict[str, Any]:
    m = obj.get("metadata") if isinstance(obj, dict) else None
    return m if isinstance(m, dict) else {}


def target(ev: dict[str, Any]) -> str:
    """ns/name of the object; a create with generateName (every controller-made pod) is named `prefix*` until the
    response (RequestResponse) gives the name."""
    r = ref(ev)
    name = r.get("name") or _meta(req(ev)).get("name") or _meta(ev.get("responseObject")).get("name") or (
        f"{_meta(req(ev)).get('generateName')}*" if _meta(req(ev)).get("generateName") else "")
    ns = r.get("namespace")
    return f"{ns}/{name}" if ns else str(name)


# --- pods: the scan's controls judge the body (podfacts.py) -----------------------------------------------------

def _pod_rule(ids: tuple[str, ...], what: str) -> Check:
    def check(ev: dict[str, Any]) -> tuple[str, str] | None:
        found = podfacts.hits(ev, ids)  # dispatched on pods without subresource only
        if not found:
            return None
        return said(ev, f"pod {target(ev)}", "created", f"{what}: " + "; ".join(m for _, m in found)), found[0][0]

    return check


KUBE_NAMESPACES = frozenset({"kube-system", "kube-public"})
# Workloads whose pods run with the namespace's service accounts and secrets (apps/v1, batch/v1).
WORKLOAD_RESOURCES = frozenset({"deployments", "daemonsets", "statefulsets", "jobs", "cronjobs", "replicasets",
                                "replicationcontrollers"})
OWNER_MEMORY_CAPACITY = 10000


class KubeNamespaceWorkloads:
    """Workloads and pods planted in kube-system/kube-public. A non-control-plane identity creating one is judged
    at once; the pods the controllers then create from it (Deployment -> ReplicaSet -> Pod, CronJob -> Job -> Pod,
    DaemonSet/StatefulSet/Job -> Pod, followed through each body's controller ownerReference) are judged too, naming
    who planted the workload. Stateful (bounded), so each Analyzer gets its own instance."""

    def __init__(self, identities: Identities) -> None:
        self.identities = identities
        self.planted: dict[tuple[str, str, str], str] = {}

    def pod(self, ev: dict[str, Any]) -> str | None:
        return self._judge(ev) if ref(ev).get("resource") == "pods" else None

    def workload(self, ev: dict[str, Any]) -> str | None:
        return self._judge(ev) if ref(ev).get("resource") != "pods" else None

    def _judge(self, ev: dict[str, Any]) -> str | None:
        r = ref(ev)
        ns = r.get("namespace")
        if ns not in KUBE_NAMESPACES or r.get("subresource"):
            return None
        res = r.get("resource")
        kind = podfacts.KIND_BY_RESOURCE.get(str(res), str(res))
        name = r.get("name") or _meta(req(ev)).get("name") or ""
        if not self.identities.exempt(ev):
            if not refused(ev) and name and len(self.planted) < OWNER_MEMORY_CAPACITY:
                self.planted[(kind, ns, name)] = f"{kind} {ns}/{name} created by {actor(ev)}"
            return said(ev, f"{kind.lower() if res == 'pods' else kind} {target(ev)}", f"created in {ns}",
                        f"by {actor(ev)}, not a control-plane identity")
        if username(ev) not in POD_CREATING_CONTROLLERS and not username(ev).startswith("system:kube-controller"):
            return None
        for owner in _meta(req(ev)).get("ownerReferences") or ():
            if not isinstance(owner, dict) or owner.get("controller") is not True:
                continue
            origin = self.planted.get((str(owner.get("kind")), ns, str(owner.get("name"))))
            if origin is None:
                continue
            if name and not refused(ev) and len(self.planted) < OWNER_MEMORY_CAPACITY:
                self.planted[(kind, ns, name)] = origin
            if res == "pods":
                return said(ev, f"pod {target(ev)}", f"created by {actor(ev)}", f"from {origin}")
        return None


def _exec_attach(ev: dict[str, Any]) -> str | None:
    sub = ref(ev).get("subresource")
    if sub not in ("exec", "attach"):
        return None
    cmd = _query_values(ev.get("requestURI", ""), "command")
    extra = f" command={' '.join(cmd)}" if cmd else ""
    return said(ev, f"pod {target(ev)}", f"{sub} into", extra.strip()) if refused(ev) else \
        f"{sub} into pod {target(ev)}{extra}"


def _portforward(ev: dict[str, Any]) -> str | None:
    if ref(ev).get("subresource") != "portforward":
        return None
    return said(ev, f"pod {target(ev)}", "port-forwarded") if refused(ev) else f"port-forward to pod {target(ev)}"


def _ephemeral(ev: dict[str, Any]) -> str | None:
    if ref(ev).get("subresource") != "ephemeralcontainers":
        return None
    eph = [c.get("name", "?") + "=" + str(c.get("image", "?")) for c in req(ev).get("spec", {}).get(
        "ephemeralContainers") or () if isinstance(c, dict)] if isinstance(req(ev).get("spec"), dict) else []
    return said(ev, f"pod {target(ev)}", "given an ephemeral container", f"({', '.join(eph)})" if eph else "")


def _query_values(uri: str, key: str) -> list[str]:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(uri).query).get(key, [])


# --- services, configmaps, ingresses, secrets ----------------------------------------------------------------------

def _nodeport(ev: dict[str, Any]) -> str | tuple[str, str] | None:
    spec = req(ev).get("spec")
    if no_subresource(ev) and isinstance(spec, dict) and spec.get("type") == "NodePort":
        return said(ev, f"NodePort service {target(ev)}", "created"), "/requestObject/spec/type"
    return None


# Falco macro contains_private_credentials: substrings of the configmap (case-sensitive `contains`).
CREDENTIAL_MARKERS = ("aws_access_key_id", "aws-access-key-id", "aws_s3_access_key_id", "aws-s3-access-key-id",
                      "password", "passphrase")


def _configmap_credentials(ev: dict[str, Any]) -> str | tuple[str, str] | None:
    obj = req(ev)
    if not obj or not no_subresource(ev):
        return None
    text = orjson.dumps(obj.get("data") or {}).decode()
    found = [m for m in CREDENTIAL_MARKERS if m in text]
    if not found:
        return None
    keys = sorted(k for k in (obj.get("data") or {}) if any(m in k for m in found))
    where = f" in keys {', '.join(keys)}" if keys else ""
    return said(ev, f"configmap {target(ev)}", f"{ev.get('verb')}d", f"with credential-like content "
                f"({', '.join(found)}){where}"), "/requestObject/data"


def _ingress_no_tls(ev: dict[str, Any]) -> str | tuple[str, str] | None:
    spec = req(ev).get("spec")
    if no_subresource(ev) and isinstance(spec, dict) and not spec.get("tls"):
        return said(ev, f"ingress {target(ev)}", "created", "without TLS"), "/requestObject/spec/tls"
    return None


def _secrets_what(ev: dict[str, Any]) -> str:
    return f"secret {target(ev)}" if ref(ev).get("name") else \
        f"secrets in {ref(ev).get('namespace') or 'all namespaces'}"


def _secret_read(ev: dict[str, Any]) -> str | None:
    if no_subresource(ev) and successful(ev):
        return f"{_secrets_what(ev)} read ({ev.get('verb')}) by {actor(ev)}"
    return None


def _secret_denied(ev: dict[str, Any]) -> str | None:
    # Falco "K8s Secret Get Unsuccessfully Tried": probing for readable secrets is reconnaissance.
    if no_subresource(ev) and code(ev) in (401, 403):
        return f"{_secrets_what(ev)}: {ev.get('verb')} refused ({refusal(ev)}) for {actor(ev)}"
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
            + ("" if not refused(ev) else f", refused ({refusal(ev)})"))


def _sa_token(ev: dict[str, Any]) -> str | None:
    if ref(ev).get("subresource") != "token":
        return None
    return said(ev, f"serviceaccount {target(ev)}", "given a token", f"by {actor(ev)}")


def _sa_token_other(ev: dict[str, Any]) -> str | None:
    """A service account minting a token for another service account: a stolen token widening itself (rbac-police
    token_request). The caller's own account is system:serviceaccount:<ns>:<name> (serviceaccount/util.go)."""
    name = username(ev)
    if ref(ev).get("subresource") != "token" or not name.startswith("system:serviceaccount:"):
        return None
    own = name.removeprefix("system:serviceaccount:")
    target_sa = f"{ref(ev).get('namespace', '')}:{ref(ev).get('name', '')}"
    if own == target_sa:
        return None
    return said(ev, f"serviceaccount {target(ev)}", "given a token", f"by another service account, {name}")


def _sa_kube_namespace(ev: dict[str, Any]) -> str | None:
    if no_subresource(ev) and ref(ev).get("namespace") in KUBE_NAMESPACES:
        return said(ev, f"serviceaccount {target(ev)}", f"created in {ref(ev)['namespace']}", f"by {actor(ev)}")
    return None


def _csr_created(ev: dict[str, Any]) -> str | None:
    if ref(ev).get("subresource"):
        return None
    spec = req(ev).get("spec")
    signer = spec.get("signerName", "") if isinstance(spec, dict) else ""
    return said(ev, f"certificate signing request {target(ev)}", "created", f"for signer {signer}" if signer else "")


def _csr_approved(ev: dict[str, Any]) -> str | None:
    # Approval goes through the certificatesigningrequests/approval subresource (update); the controller
    # manager's csrapproving controller (auto-approving kubelet client certificates) is on the allow-list.
    if ref(ev).get("subresource") != "approval":
        return None
    return said(ev, f"certificate signing request {target(ev)}", f"approved by {actor(ev)}")


# --- admission, events, nodes, persistence, lists from the rules file -----------------------------------------

ADMISSION_RESOURCES = frozenset({
    "mutatingwebhookconfigurations", "validatingwebhookconfigurations", "validatingadmissionpolicies",
    "validatingadmissionpolicybindings", "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"})
DELETE = frozenset({"delete", "deletecollection"})


def _admission_changed(ev: dict[str, Any]) -> str | None:
    # Admission configuration decides what the apiserver lets through: a new webhook sees (and can mutate) every
    # matching object, a deleted policy stops enforcing. admissionregistration.k8s.io (v1, v1beta1).
    if ref(ev).get("apiGroup") not in (None, "admissionregistration.k8s.io"):
        return None
    past = {"create": "created", "delete": "deleted", "deletecollection": "deleted"}.get(str(ev.get("verb")),
                                                                                         "changed")
    what = target(ev) or "(all)"
    return said(ev, f"{ref(ev).get('resource')} {what}", f"{past} by {actor(ev)}")


def _events_deleted(ev: dict[str, Any]) -> str | None:
    # Events expire by TTL (--event-ttl) in etcd; deleting them through the API is covering tracks.
    if ref(ev).get("apiGroup") not in (None, "", "events.k8s.io"):
        return None
    what = f"event {target(ev)}" if ref(ev).get("name") else f"events in {ref(ev).get('namespace') or 'all namespaces'}"
    return said(ev, what, f"deleted by {actor(ev)}")


def _persistence(ev: dict[str, Any]) -> str | None:
    # A DaemonSet runs on every node (and each new one), a CronJob comes back on schedule: MITRE ATT&CK for
    # containers T1053.007 (container orchestration job) and the DaemonSet persistence technique.
    kind = {"daemonsets": "DaemonSet", "cronjobs": "CronJob"}[str(ref(ev).get("resource"))]
    return said(ev, f"{kind} {target(ev)}", f"created by {actor(ev)}")


KUBELET_SUBRESOURCES = frozenset({"proxy", "log", "checkpoint", "pods"})


def _node_proxy(ev: dict[str, Any]) -> str | None:
    # nodes/proxy reaches the kubelet API through the apiserver (run, exec, logs, pods of every container on the
    # node), bypassing pods/exec authorization and its audit record (rbac-police nodes_proxy).
    uri = str(ev.get("requestURI", ""))
    path = uri.split("/proxy", 1)[1].split("?", 1)[0] if "/proxy" in uri else ""
    return said(ev, f"node {target(ev)}", "proxied to", f"(kubelet path {path or '/'})")


def _kubelet_api(identities: Identities) -> Check:
    """The kubelet authorizes its own API (--authorization-mode=Webhook) with a SubjectAccessReview for resource
    nodes and subresource proxy/log/stats/metrics/spec/checkpoint/configz (kubelet/server/auth.go
    GetRequestAttributes): each one is a direct call to a kubelet's port 10250, by spec.user. Monitoring paths
    (stats, metrics, spec, healthz, configz) are left out: scrapers call them every few seconds."""

    def check(ev: dict[str, Any]) -> tuple[str, str] | None:
        spec = req(ev).get("spec")
        if not isinstance(spec, dict):
            return None
        attrs = spec.get("resourceAttributes")
        if not isinstance(attrs, dict) or attrs.get("resource") != "nodes" or \
                attrs.get("subresource") not in KUBELET_SUBRESOURCES:
            return None
        if identities.member({"username": spec.get("user"), "groups": spec.get("groups")}):
            return None
        resp = ev.get("responseObject")
        status = resp.get("status") if isinstance(resp, dict) else None
        allowed = status.get("allowed") if isinstance(status, dict) else None
        outcome = "" if allowed is None else (" (allowed)" if allowed else " (denied)")
        text = (f"kubelet API on node {attrs.get('name') or '?'} called by {spec.get('user')}: {attrs.get('verb')} "
                f"nodes/{attrs.get('subresource')}{outcome}")
        if refused(ev):  # the kubelet could not even ask: its review was refused
            text = f"refused attempt ({refusal(ev)}): {text}"
        return text, "/requestObject/spec/resourceAttributes"

    return check


def _disallowed_user(users: frozenset[str]) -> Check:
    def check(ev: dict[str, Any]) -> str | None:
        for who, u in (("", ev.get("user")), ("impersonated ", ev.get("impersonatedUser"))):
            name = u.get("username") if isinstance(u, dict) else None
            if isinstance(name, str) and name in users:
                return f"request by disallowed {who}user {name}: {ev.get('verb')} {ev.get('requestURI', '')}"
        return None

    return check


def _disallowed_namespace(namespaces: frozenset[str]) -> Check:
    # Falco "Create Disallowed Namespace", turned round: the listed namespaces must not be created or written to.
    def check(ev: dict[str, Any]) -> str | None:
        r = ref(ev)
        ns = r.get("namespace") or (r.get("name") or _meta(req(ev)).get("name") if r.get("resource") == "namespaces"
                                    else None)
        if ns not in namespaces:
            return None
        return said(ev, f"{r.get('resource')} {target(ev) or ns}", f"{ev.get('verb')}d in disallowed namespace {ns}",
                    f"by {actor(ev)}")

    return check


# --- RBAC --------------------------------------------------------------------------------------------------------

def role_rules(ev: dict[str, Any]) -> list[dict[str, Any]]:
    rules = req(ev).get("rules")
    return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []


def _cluster_admin_binding(ev: dict[str, Any]) -> str | tuple[str, str] | None:
    rr = req(ev).get("roleRef")
    if no_subresource(ev) and isinstance(rr, dict) and rr.get("kind") == "ClusterRole" and rr.get("name") == "cluster-admin":
        subjects = ", ".join(f"{s.get('kind')}:{s.get('name')}" for s in req(ev).get("subjects") or ()
                             if isinstance(s, dict))
        return said(ev, f"{ref(ev).get('resource')} {target(ev)}", "grants", f"cluster-admin to "
                    f"{subjects or 'no subjects'}"), "/requestObject/roleRef"
    return None


def _wildcard_role(ev: dict[str, Any]) -> str | None:
    for r in role_rules(ev):
        if "*" in (r.get("verbs") or ()) or "*" in (r.get("resources") or ()):
            return said(ev, f"{_role_kind(ev)} {target(ev)}", f"{ev.get('verb')}d", "with wildcard rules")
    return None


def _exec_role(ev: dict[str, Any]) -> str | None:
    for r in role_rules(ev):
        if "pods/exec" in (r.get("resources") or ()) and set(r.get("verbs") or ()) & {"create", "get", "*"}:
            return said(ev, f"{_role_kind(ev)} {target(ev)}", f"{ev.get('verb')}d", "allowing pods/exec")
    return None


def _write_role(ev: dict[str, Any]) -> str | None:
    for r in role_rules(ev):
        verbs = set(r.get("verbs") or ())
        if verbs & WRITE_VERBS:
            return said(ev, f"{_role_kind(ev)} {target(ev)}", "created",
                        f"with write verbs {', '.join(sorted(verbs & WRITE_VERBS))}")
    return None


# Falco "System ClusterRole Modified/Deleted" leaves these two out (updated by their own add-ons).
SYSTEM_ROLE_EXCEPTIONS = frozenset({"system:coredns", "system:managed-certificate-controller"})


def _system_role_modified(ev: dict[str, Any]) -> str | None:
    name = ref(ev).get("name") or req(ev).get("metadata", {}).get("name", "")
    if isinstance(name, str) and name.startswith("system:") and name not in SYSTEM_ROLE_EXCEPTIONS:
        return said(ev, f"system {_role_kind(ev)} {target(ev)}", f"{ev.get('verb')}d by {actor(ev)}")
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
    powers = escalation_powers(role_rules(ev))
    if powers:
        return said(ev, f"{_role_kind(ev)} {target(ev)}", f"{ev.get('verb')}d", f"granting {'; '.join(powers)}")
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

    def __call__(self, ev: dict[str, Any]) -> str | tuple[str, str] | None:
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
        if not isinstance(rr, dict) or rr.get("name") == "cluster-admin":
            return None
        kind, name = rr.get("kind", ""), rr.get("name", "")
        ns = r.get("namespace", "") if kind == "Role" else ""
        why = POWERFUL_DEFAULT_ROLES.get((kind, name)) or self.known.get((kind, ns, name))
        if not why:
            return None
        subjects = ", ".join(f"{s.get('kind')}:{s.get('name')}" for s in req(ev).get("subjects") or ()
                             if isinstance(s, dict))
        return said(ev, f"{ref(ev).get('resource')} {target(ev)}", "binds",
                    f"{kind} {name} ({why}) to {subjects or 'no subjects'}"), "/requestObject/roleRef"


# A batch's precondition: False means no rule of the batch can fire on the event.
BATCH_GATES: dict[str, Callable[[dict[str, Any]], bool]] = {"podfacts": podfacts.any_hits}


@dataclass(frozen=True, slots=True)
class Settings:
    """What the rules file (`--rules`) sets for the built-in rules besides its own rules: the control-plane
    allow-list and the disallowed users and namespaces."""

    identities: Identities = field(default_factory=Identities)
    disallowed_users: frozenset[str] = frozenset()
    disallowed_namespaces: frozenset[str] = frozenset()


def builtin(settings: Settings | None = None) -> list[Detection]:
    """Every built-in detection; ids are stable (users silence and select by them). Resource, subresource, verb
    and stage are declared so the analyzer dispatches on them; the check only looks at the rest."""
    cfg = settings or Settings()
    H, M, L, C = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.CRITICAL
    pods, roles = frozenset({"pods"}), frozenset({"clusterroles", "roles"})
    bindings = frozenset({"clusterrolebindings", "rolebindings"})
    none, exec_attach = frozenset({""}), frozenset({"exec", "attach"})
    get_create = frozenset({"create", "get"})
    csr = frozenset({"certificatesigningrequests"})
    writes = frozenset({"create", "update", "patch", "delete", "deletecollection"})
    planted = KubeNamespaceWorkloads(cfg.identities)  # one memory for the workload and the pod rule

    def pod_create(id: str, title: str, sev: Severity, ids: tuple[str, ...], what: str) -> Detection:
        # Every pod, controllers' included (Falco): a privileged DaemonSet shows in the pods it makes.
        return Detection(id, title, sev, _pod_rule(ids, what), pods, CREATE, subresources=none, image_exempt=True,
                         exempt_control_plane=False, batch="podfacts")

    found = [
        pod_create("privileged-pod", "Create Privileged Pod", H, podfacts.PRIVILEGED, "with a privileged container"),
        pod_create("sensitive-mount-pod", "Create Sensitive Mount Pod", H, podfacts.SENSITIVE_MOUNT,
                   "mounting a sensitive host path"),
        pod_create("hostnetwork-pod", "Create HostNetwork Pod", M, podfacts.HOST_NETWORK, "using the host network"),
        pod_create("hostpid-pod", "Create HostPid Pod", H, podfacts.HOST_PID, "using the host PID namespace"),
        pod_create("hostipc-pod", "Create HostIPC Pod", M, podfacts.HOST_IPC, "using the host IPC namespace"),
        pod_create("dangerous-capabilities", "Pod Created With Dangerous Capabilities", H,
                   podfacts.DANGEROUS_CAPABILITIES, "adding dangerous capabilities"),
        Detection("pod-in-kube-namespace", "Pod Created in Kube Namespace", M, planted.pod, pods, CREATE,
                  subresources=none, image_exempt=True, exempt_control_plane=False),
        Detection("workload-in-kube-namespace", "Workload Created in Kube Namespace", H, planted.workload,
                  WORKLOAD_RESOURCES, CREATE, subresources=none, exempt_control_plane=False),
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
        Detection("secret-read", "Secret read", M, _secret_read, frozenset({"secrets"}),
                  frozenset({"get", "list", "watch"}), subresources=none, attempts="never"),
        Detection("secret-access-denied", "Secret access refused (reconnaissance)", M, _secret_denied,
                  frozenset({"secrets"}), frozenset({"get", "list", "watch"}), subresources=none, attempts="only"),
        Detection("anonymous-allowed", "Anonymous Request Allowed", H, _anonymous_allowed,
                  users=frozenset({"system:anonymous"}), attempts="never"),
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
        Detection("serviceaccount-token-other", "ServiceAccount token created for another ServiceAccount", H,
                  _sa_token_other, frozenset({"serviceaccounts"}), CREATE, subresources=frozenset({"token"})),
        Detection("csr-created", "CertificateSigningRequest created", M, _csr_created, csr, CREATE,
                  subresources=none),
        Detection("csr-approved", "CertificateSigningRequest approved", H, _csr_approved, csr,
                  frozenset({"update", "patch"}), subresources=frozenset({"approval"})),
        Detection("impersonation", "Impersonation", M, _impersonation, needs_key="impersonatedUser"),
        Detection("admission-config-changed", "Admission webhook or policy configuration changed", H,
                  _admission_changed, ADMISSION_RESOURCES, writes, subresources=none),
        Detection("events-deleted", "Events deleted", M, _events_deleted, frozenset({"events"}), DELETE,
                  subresources=none),
        Detection("persistence-workload", "DaemonSet or CronJob created", L, _persistence,
                  frozenset({"daemonsets", "cronjobs"}), CREATE, subresources=none),
        Detection("node-proxy", "Node proxy (kubelet API through the apiserver)", H, _node_proxy,
                  frozenset({"nodes"}), subresources=frozenset({"proxy"})),
        Detection("kubelet-api-access", "Kubelet API called directly", H, _kubelet_api(cfg.identities),
                  frozenset({"subjectaccessreviews"}), CREATE, exempt_control_plane=False),
    ]
    if cfg.disallowed_users:
        found.append(Detection("disallowed-user", "Disallowed K8s User", H, _disallowed_user(cfg.disallowed_users),
                               exempt_control_plane=False))
    if cfg.disallowed_namespaces:
        found.append(Detection("disallowed-namespace", "Write in a disallowed namespace", H,
                               _disallowed_namespace(cfg.disallowed_namespaces), verbs=writes))
    return found
