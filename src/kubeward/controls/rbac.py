"""Simple RBAC controls: one Role/ClusterRole or binding at a time (CIS Kubernetes Benchmark 5.1).

Rule matching follows pkg/apis/rbac/v1/evaluation_helpers.go: a verb, apiGroup or resource matches when the
rule lists it or `*`; `*` as resource covers subresources too, otherwise `pods` does not cover `pods/exec`.
resourceNames narrow a rule but are ignored here: a rule that reaches even one Secret is worth a look.
Who can do what through chains of bindings is kubeward.engines.rbac's job; these checks are the cheap forms.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..resource import Resource
from ..snapshot import Snapshot
from ..textsafe import printable
from .registry import Hit, control

ROLE_KINDS = ("Role", "ClusterRole")
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")
BOOTSTRAP_LABEL = "kubernetes.io/bootstrapping"  # value rbac-defaults on the apiserver's own roles and bindings


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _builtin(res: Resource) -> bool:
    """The apiserver's bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy): not the user's to fix."""
    return res.labels.get(BOOTSTRAP_LABEL) == "rbac-defaults" or res.name.startswith("system:")


def _rules(res: Resource) -> Iterator[tuple[int, dict[str, Any]]]:
    if _builtin(res):
        return
    for i, r in enumerate(_l(res.obj.get("rules"))):
        if isinstance(r, dict):
            yield i, r


def _strs(rule: dict[str, Any], key: str) -> frozenset[str]:
    return frozenset(str(v) for v in _l(rule.get(key)))


def grants(rule: dict[str, Any], groups: frozenset[str], resources: frozenset[str], verbs: frozenset[str]) -> bool:
    """Whether a resource rule allows any of `verbs` on any of `resources` in any of `groups`."""
    rg, rr, rv = _strs(rule, "apiGroups"), _strs(rule, "resources"), _strs(rule, "verbs")
    return (
        ("*" in rv or bool(rv & verbs))
        and ("*" in rg or bool(rg & groups))
        and ("*" in rr or bool(rr & resources))
    )


def _wildcard(field: str) -> Any:
    def check(res: Resource) -> Iterator[Hit]:
        for i, rule in _rules(res):
            values = _l(rule.get(field))
            if "*" in values:
                yield f"/rules/{i}/{field}/{values.index('*')}", f"rule {i} grants {field} '*'"
    return check


_ROLE: dict[str, Any] = {"shape": "object", "kinds": ROLE_KINDS}

control(
    "KW-R001", "Wildcard verbs in RBAC rule", "high", "rbac",
    frameworks=("nsa", "cis-5.1.3", "mitre-T1078"),
    remediation="List the verbs the subject needs instead of '*'.", description=(
        "No rule of a Role or ClusterRole grants verbs '*': it covers every verb, including escalate, bind "
        "and impersonate and any verb added later. Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the RBAC good-practices docs "
        "(kubernetes.io/docs/concepts/security/rbac-good-practices/); CIS 5.1.3."
    ),
    **_ROLE,
)(_wildcard("verbs"))
control(
    "KW-R002", "Wildcard resources in RBAC rule", "high", "rbac",
    frameworks=("nsa", "cis-5.1.3", "mitre-T1078"),
    remediation="List the resources the subject needs instead of '*' (which also covers every subresource).",
    description=(
        "No rule grants resources '*': it covers every resource of its groups and every subresource "
        "(pods/exec, nodes/proxy, serviceaccounts/token), also those added later. Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the RBAC good-practices docs; CIS 5.1.3."
    ),
    **_ROLE,
)(_wildcard("resources"))
control(
    "KW-R003", "Wildcard API groups in RBAC rule", "medium", "rbac",
    frameworks=("nsa", "cis-5.1.3"),
    remediation="List the API groups the rule needs instead of '*' (which includes every future CRD group).",
    description=(
        "No rule grants apiGroups '*': it reaches every API group, including every CustomResourceDefinition "
        "group installed later. Rules are matched as pkg/apis/rbac/v1/evaluation_helpers.go matches them (a "
        "listed value or '*'); roles of the bootstrap policy are skipped. Upstream: the RBAC good-practices "
        "docs; CIS 5.1.3."
    ),
    **_ROLE,
)(_wildcard("apiGroups"))
control(
    "KW-R004", "Wildcard non-resource URLs in RBAC rule", "low", "rbac",
    frameworks=("cis-5.1.3",),
    remediation="Grant only the non-resource URLs needed (e.g. /healthz) instead of '*'.", description=(
        "No rule grants nonResourceURLs '*': it opens every non-resource path of the apiserver (/metrics, "
        "/debug, /logs) rather than the one a client needs. Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the RBAC docs (non-resource URLs); CIS 5.1.3."
    ),
    **_ROLE,
)(_wildcard("nonResourceURLs"))


def _grant_check(groups: set[str], resources: set[str], verbs: set[str], what: str) -> Any:
    g, r, v = frozenset(groups), frozenset(resources), frozenset(verbs)

    def check(res: Resource) -> Iterator[Hit]:
        for i, rule in _rules(res):
            if grants(rule, g, r, v):
                yield f"/rules/{i}", f"rule {i} allows {what}"
    return check


CORE = {"", "*"}
control(
    "KW-R005", "Role can read Secrets", "high", "rbac",
    frameworks=("nsa", "cis-5.1.2", "mitre-T1552.007"),
    remediation="Remove get/list/watch on secrets; list and watch return the values too.", description=(
        "No rule allows get, list or watch on secrets: list and watch return every value of the namespace, so"
        " read access to Secrets is access to every credential in them. Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the RBAC good-practices docs (listing secrets); CIS 5.1.2."
    ),
    **_ROLE,
)(_grant_check(CORE, {"secrets"}, {"get", "list", "watch"}, "reading Secrets (get/list/watch)"))
control(
    "KW-R006", "Role can exec or attach into pods", "high", "rbac",
    frameworks=("nsa", "mitre-T1609"),
    # WebSocket exec used GET until v1.30; create covers SPDY and current WebSocket (KEP-4006).
    remediation="Remove create/get on pods/exec and pods/attach; use ephemeral debug workflows with audit.",
    description=(
        "No rule allows create or get on pods/exec or pods/attach: a shell in a running container is that "
        "container's service account, mounted Secrets and network position (GET covers WebSocket exec before "
        "v1.30, create SPDY and current WebSocket, KEP-4006). Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the RBAC good-practices docs; MITRE ATT&CK T1609."
    ),
    **_ROLE,
)(_grant_check(CORE, {"pods/exec", "pods/attach"}, {"create", "get"}, "exec/attach into running containers"))
control(
    "KW-R007", "Role can create pods", "medium", "rbac",
    frameworks=("nsa", "cis-5.1.4", "mitre-T1610"),
    remediation="Remove create on pods; a pod creator can mount any Secret and run as any ServiceAccount of the "
    "namespace.", description=(
        "No rule allows create on pods: a pod creator can mount any Secret and run as any ServiceAccount of "
        "the namespace, and, if admission allows, as privileged on the node. Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the RBAC good-practices docs (workload creation); CIS 5.1.4."
    ),
    **_ROLE,
)(_grant_check(CORE, {"pods"}, {"create"}, "creating pods"))
control(
    "KW-R008", "Role can create workload controllers", "medium", "rbac",
    frameworks=("nsa", "cis-5.1.4", "mitre-T1610"),
    remediation="Limit create/update/patch on Deployments, DaemonSets, StatefulSets, Jobs and CronJobs to CI.",
    description=(
        "No rule allows create, update or patch on the workload controllers (Deployments, ReplicaSets, "
        "StatefulSets, DaemonSets, Jobs, CronJobs, ReplicationControllers): they create pods, so they carry "
        "every power of pod creation. Rules are matched as pkg/apis/rbac/v1/evaluation_helpers.go matches "
        "them (a listed value or '*'); roles of the bootstrap policy are skipped. Upstream: the RBAC "
        "good-practices docs (workload creation); CIS 5.1.4."
    ),
    **_ROLE,
)(_grant_check(
    {"apps", "batch", "", "*"},
    {"deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs", "replicationcontrollers"},
    {"create", "update", "patch"}, "creating or changing workloads (and so pods)",
))
control(
    "KW-R009", "Role can impersonate", "critical", "rbac",
    frameworks=("nsa", "cis-5.1.8", "mitre-T1078"),
    remediation="Remove the impersonate verb; grant it only to audited break-glass identities.", description=(
        "No rule allows impersonate on users, groups, service accounts, uids or userextras: impersonation "
        "acts as any identity named, up to system:masters. Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the Authenticating docs, user impersonation "
        "(kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation); CIS 5.1.8."
    ),
    **_ROLE,
)(_grant_check(
    {"", "authentication.k8s.io", "*"}, {"users", "groups", "serviceaccounts", "uids", "userextras"},
    {"impersonate"}, "impersonating users, groups or service accounts",
))
control(
    "KW-R010", "Role can bind or escalate roles", "high", "rbac",
    frameworks=("nsa", "cis-5.1.8", "mitre-T1098"),
    remediation="Remove bind and escalate on roles/clusterroles; they bypass RBAC's escalation check.", description=(
        "No rule allows bind or escalate on roles or clusterroles: they exempt the subject from RBAC's "
        "escalation check, so it can grant or bind permissions it does not hold. Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the RBAC docs, privilege escalation prevention and bootstrapping; CIS "
        "5.1.8."
    ),
    **_ROLE,
)(_grant_check({"rbac.authorization.k8s.io", "*"}, {"roles", "clusterroles"}, {"bind", "escalate"},
               "bind/escalate on roles (grants permissions the subject does not hold)"))
control(
    "KW-R011", "Role can modify RBAC", "high", "rbac",
    frameworks=("nsa", "mitre-T1098"),
    remediation="Limit create/update/patch on roles and bindings to cluster administrators.", description=(
        "No rule allows create, update or patch on roles, clusterroles, rolebindings or clusterrolebindings: "
        "who writes RBAC decides who may do what (within the escalation check). Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the RBAC docs, privilege escalation prevention."
    ),
    **_ROLE,
)(_grant_check({"rbac.authorization.k8s.io", "*"},
               {"roles", "clusterroles", "rolebindings", "clusterrolebindings"},
               {"create", "update", "patch"}, "creating or changing roles and bindings"))
control(
    "KW-R012", "Role can proxy to the kubelet (nodes/proxy)", "high", "rbac",
    frameworks=("nsa", "cis-5.1.10", "mitre-T1609"),
    remediation="Remove access to nodes/proxy; it reaches the kubelet API (exec in any pod on the node).", description=(
        "No rule allows nodes/proxy: it reaches the kubelet API of every node through the apiserver, where "
        "exec into any pod on the node is a request away, past the admission checks pods/exec goes through. Rules"
        " are matched as pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles "
        "of the bootstrap policy are skipped. Upstream: the RBAC good-practices docs (nodes/proxy); CIS "
        "5.1.10."
    ),
    **_ROLE,
)(_grant_check(CORE, {"nodes/proxy"}, {"get", "create", "update", "patch", "delete"}, "access to nodes/proxy"))
control(
    "KW-R013", "Role can mint service account tokens", "high", "rbac",
    frameworks=("nsa", "cis-5.1.13", "mitre-T1528"),
    remediation="Remove create on serviceaccounts/token.", description=(
        "No rule allows create on serviceaccounts/token: it mints tokens for any service account of the "
        "namespace, holding each one's permissions. Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the TokenRequest API "
        "(kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-request-v1/); CIS "
        "5.1.13."
    ),
    **_ROLE,
)(_grant_check(CORE, {"serviceaccounts/token"}, {"create"}, "creating tokens for service accounts"))
def _csr_approval(res: Resource) -> Iterator[Hit]:
    """Approving a CSR takes both halves the certificates API checks (docs "Certificates and Certificate Signing
    Requests", Authorization; pkg/registry/certificates/certificates/strategy.go and the signer admission plugin
    plugin/pkg/admission/certificates/approval): update (or patch) on certificatesigningrequests/approval AND
    approve on signers (any signer name: resourceNames narrow which). One half alone approves nothing."""
    from ..engines.rbac.matching import rule_allows
    from ..engines.rbac.model import Request, Rule

    group = "certificates.k8s.io"
    approval = [Request(v, "certificatesigningrequests", "approval", group) for v in ("update", "patch")]
    first = second = None
    for i, raw in _rules(res):
        rule = Rule.parse(raw)
        name = next(iter(rule.names), "")  # a names-limited rule still approves the signers it names
        if first is None and any(rule_allows(Request(r.verb, r.resource, r.subresource, group, "", name), rule)
                                 for r in approval):
            first = i
        if second is None and rule_allows(Request("approve", "signers", "", group, "", name), rule):
            second = i
    if first is not None and second is not None:
        both = f"rule {first}" if first == second else f"rules {first} and {second}"
        yield (f"/rules/{first}", f"{both} allow approving certificate signing requests (update on "
                                  "certificatesigningrequests/approval and approve on signers: minting client certs)")


control(
    "KW-R014", "Role can approve certificate signing requests", "high", "rbac",
    frameworks=("cis-5.1.11", "mitre-T1649"),
    remediation="Remove update on certificatesigningrequests/approval or approve on signers; approving needs both.",
    description=(
        "Fails for a role whose rules, together (in one rule or two), allow update or patch on "
        "certificatesigningrequests/approval and approve on signers (any signer name; resourceNames narrow "
        "which): approving needs both halves, and an approved client certificate for a chosen name (a node, "
        "system:masters) is a login as it. Rules are matched as pkg/apis/rbac/v1/evaluation_helpers.go matches "
        "them. Upstream: kubernetes.io/docs/reference/access-authn-authz/certificate-signing-requests/ "
        "(Authorization); plugin/pkg/admission/certificates/approval; CIS 5.1.11."
    ), **_ROLE,
)(_csr_approval)
control(
    "KW-R015", "Role can change admission webhooks", "medium", "rbac",
    frameworks=("cis-5.1.12", "mitre-T1562.001"),
    remediation="Limit write access to (Validating|Mutating)WebhookConfigurations to cluster administrators.",
    description=(
        "No rule allows create, update, patch or delete on validating or mutating webhook configurations: who"
        " controls them can read or rewrite every object sent to admission, or switch a policy webhook off. "
        "Rules are matched as pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); "
        "roles of the bootstrap policy are skipped. Upstream: the Dynamic Admission Control docs; CIS 5.1.12."
    ),
    **_ROLE,
)(_grant_check({"admissionregistration.k8s.io", "*"},
               {"validatingwebhookconfigurations", "mutatingwebhookconfigurations"},
               {"create", "update", "patch", "delete"}, "changing admission webhook configuration"))
control(
    "KW-R016", "Role can create PersistentVolumes", "medium", "rbac",
    frameworks=("cis-5.1.9", "mitre-T1611"),
    remediation="Remove create on persistentvolumes; a hostPath PV exposes the node's filesystem.", description=(
        "No rule allows create on persistentvolumes: a hostPath PersistentVolume bound by a claim exposes the"
        " node's filesystem to the pod that mounts it. Rules are matched as "
        "pkg/apis/rbac/v1/evaluation_helpers.go matches them (a listed value or '*'); roles of the bootstrap "
        "policy are skipped. Upstream: the RBAC good-practices docs (persistent volume creation); CIS 5.1.9."
    ),
    **_ROLE,
)(_grant_check(CORE, {"persistentvolumes"}, {"create"}, "creating PersistentVolumes (hostPath to the node)"))


# -------------------------------------------------------------------------------------------- bindings

_BIND: dict[str, Any] = {"shape": "object", "kinds": BINDING_KINDS}


def _subjects(res: Resource) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, s in enumerate(_l(res.obj.get("subjects"))):
        if isinstance(s, dict):
            yield i, s


def _role_ref(res: Resource) -> tuple[str, str]:
    ref = _d(res.obj.get("roleRef"))
    return str(ref.get("kind", "")), str(ref.get("name", ""))


@control(
    "KW-R017", "Binding to cluster-admin", "high", "rbac",
    frameworks=("nsa", "cis-5.1.1", "mitre-T1078"),
    remediation="Bind a narrower role; keep cluster-admin for break-glass accounts only.", **_BIND,
)
def cluster_admin_binding(res: Resource) -> Iterator[Hit]:
    """No binding (but the bootstrap policy's) grants the ClusterRole cluster-admin, cluster-wide or in a
    namespace: it is every permission there is, Secrets and RBAC included. Subjects in system:masters are
    skipped: they hold everything before RBAC is asked. Upstream: the RBAC docs, user-facing roles; CIS 5.1.1."""
    if _role_ref(res) != ("ClusterRole", "cluster-admin") or res.labels.get(BOOTSTRAP_LABEL) == "rbac-defaults":
        return
    for i, s in _subjects(res):
        if s.get("kind") == "Group" and s.get("name") == "system:masters":
            continue  # already all-powerful before RBAC is asked (authorizer union, A3)
        scope = "cluster-wide" if res.kind == "ClusterRoleBinding" else f"in namespace {res.namespace}"
        yield f"/subjects/{i}", f'{s.get("kind")} "{s.get("name")}" is bound to cluster-admin {scope}'


# Default bindings of the bootstrap policy that legitimately name these groups.
_PUBLIC_ROLES = frozenset({"system:public-info-viewer"})
_AUTHENTICATED_ROLES = frozenset({"system:basic-user", "system:discovery", "system:public-info-viewer"})


@control(
    "KW-R018", "Binding grants access to anonymous users", "critical", "rbac",
    frameworks=("nsa", "mitre-T1078", "mitre-T1190"),
    remediation="Remove system:anonymous and system:unauthenticated from the binding's subjects.", **_BIND,
)
def anonymous_binding(res: Resource) -> Iterator[Hit]:
    """No binding names system:anonymous or system:unauthenticated (but to system:public-info-viewer, as the
    bootstrap policy does): it grants its role to every request without credentials, from anywhere that reaches
    the apiserver. Upstream: kubernetes.io/docs/reference/access-authn-authz/authentication/#anonymous-requests;
    kubernetes.io/docs/reference/access-authn-authz/rbac/ (default roles and role bindings)."""
    kind, name = _role_ref(res)
    if kind == "ClusterRole" and name in _PUBLIC_ROLES:
        return
    for i, s in _subjects(res):
        if (s.get("kind"), s.get("name")) in (("User", "system:anonymous"), ("Group", "system:unauthenticated")):
            yield f"/subjects/{i}", f'{s.get("name")} (unauthenticated requests) is bound to {kind} "{name}"'


@control(
    "KW-R019", "Binding grants access to every authenticated user", "high", "rbac",
    frameworks=("nsa", "mitre-T1078"),
    remediation="Bind specific users, groups or service accounts instead of system:authenticated.", **_BIND,
)
def authenticated_binding(res: Resource) -> Iterator[Hit]:
    """No binding names system:authenticated or system:serviceaccounts (but to the bootstrap discovery roles):
    every user or every service account of the cluster, including every pod's token, then holds the role.
    Upstream: kubernetes.io/docs/reference/access-authn-authz/rbac/ (default roles and role bindings);
    kubernetes.io/docs/concepts/security/rbac-good-practices/."""
    kind, name = _role_ref(res)
    if kind == "ClusterRole" and name in _AUTHENTICATED_ROLES:
        return
    for i, s in _subjects(res):
        if s.get("kind") == "Group" and s.get("name") in ("system:authenticated", "system:serviceaccounts"):
            yield f"/subjects/{i}", f'every member of {s.get("name")} is bound to {kind} "{name}"'


@control(
    "KW-R020", "Binding grants permissions to a default service account", "medium", "rbac",
    frameworks=("nsa", "cis-5.1.5", "mitre-T1078.001"),
    remediation="Bind a dedicated ServiceAccount; every pod without serviceAccountName runs as `default`.",
    **_BIND,
)
def default_sa_binding(res: Resource) -> Iterator[Hit]:
    """No binding (but the bootstrap policy's) names a namespace's default ServiceAccount (the subject's
    namespace, else the binding's): every pod without serviceAccountName runs as default, so the permissions go
    to every such pod. Upstream: the Service Accounts docs; CIS 5.1.5."""
    if res.labels.get(BOOTSTRAP_LABEL) == "rbac-defaults":
        return
    kind, name = _role_ref(res)
    for i, s in _subjects(res):
        if s.get("kind") == "ServiceAccount" and s.get("name") == "default":
            # subject.namespace, else the binding's namespace (rule.go appliesToUser)
            ns = s.get("namespace") or res.namespace or "?"
            yield f"/subjects/{i}", f'service account {ns}/default is bound to {kind} "{name}"'


@control(
    "KW-R021", "Default service account automounts its token", "low", "rbac",
    frameworks=("nsa", "cis-5.1.5", "mitre-T1528"),
    remediation="Set automountServiceAccountToken: false on each namespace's default ServiceAccount.",
    shape="object", kinds=("ServiceAccount",),
)
def default_sa_automount(res: Resource) -> Iterator[Hit]:
    """A namespace's default ServiceAccount sets automountServiceAccountToken: false: otherwise its token is
    mounted into every pod that does not name another account, whether the pod needs the API or not. Upstream:
    the Service Accounts docs, opt out of API credential automounting; CIS 5.1.5."""
    if res.name == "default" and res.obj.get("automountServiceAccountToken") is not False:
        where = "/automountServiceAccountToken" if "automountServiceAccountToken" in res.obj else "/metadata"
        yield where, f"default service account in {res.namespace} mounts its token into every pod that uses it"


# ------------------------------------------------------------------------------ traffic and identity hijack
# These ask the RBAC engine's exact matcher (engines/rbac/matching.py rule_allows, rbac.go RuleAllows) whether a
# rule allows a request. A rule with resourceNames still allows the request for those names, so the request is
# asked for one of them: writing even one Service or the one aws-auth ConfigMap is the finding.

Want = tuple[str, str, str, tuple[str, ...]]  # (apiGroup, resource, subresource, verbs)


def rule_grants(rule: dict[str, Any], wants: tuple[Want, ...], name: str | None = None) -> bool:
    """Whether the rule allows any of the requests in `wants` (for `name`, or for some object it names)."""
    from ..engines.rbac.matching import rule_allows
    from ..engines.rbac.model import Request, Rule

    parsed = Rule.parse(rule)
    target = name if name is not None else next(iter(sorted(parsed.names)), "")
    return any(rule_allows(Request(verb, resource, sub, group, name=target), parsed)
               for group, resource, sub, verbs in wants for verb in verbs)


WRITE = ("create", "update", "patch")


def _wants_check(wants: tuple[Want, ...], what: str) -> Any:
    def check(res: Resource) -> Iterator[Hit]:
        for i, rule in _rules(res):
            if rule_grants(rule, wants):
                yield f"/rules/{i}", f"rule {i} allows {what}"
    return check


control(
    "KW-R022", "Role can write Service or Node status", "high", "rbac",
    frameworks=("nsa", "mitre-T1557"),
    remediation="Remove update/patch on services/status and nodes/status; only the cloud controller and kubelets "
    "set load-balancer IPs and node addresses (CVE-2020-8554).", description=(
        "No rule allows update or patch on services/status or nodes/status (asked of the RBAC engine's exact "
        "matcher, resourceNames taken into account): they set load-balancer ingress IPs and node addresses, "
        "which redirects cluster traffic (CVE-2020-8554). Upstream: kubernetes/kubernetes#97076; "
        "plugin/pkg/auth/authorizer/rbac/rbac.go (RuleAllows)."
    ),
    **_ROLE,
)(_wants_check((("", "services", "status", ("update", "patch")), ("", "nodes", "status", ("update", "patch"))),
               "writing services/status or nodes/status (claim load-balancer IPs or node addresses)"))
control(
    "KW-R023", "Role can write Services, Endpoints or EndpointSlices", "medium", "rbac",
    frameworks=("nsa", "mitre-T1557"),
    remediation="Limit create/update/patch on services, endpoints and endpointslices to deploy pipelines; a Service "
    "with externalIPs intercepts cluster traffic to those IPs (CVE-2020-8554), and endpoints redirect a Service.",
    description=(
        "No rule allows create, update or patch on services, endpoints or endpointslices: a Service with "
        "externalIPs intercepts cluster traffic to those addresses (CVE-2020-8554), and written endpoints "
        "redirect an existing Service. Upstream: kubernetes/kubernetes#97076; the RBAC good-practices docs."
    ),
    **_ROLE,
)(_wants_check((("", "services", "", WRITE), ("", "endpoints", "", WRITE),
                ("discovery.k8s.io", "endpointslices", "", WRITE)),
               "creating or changing Services, Endpoints or EndpointSlices (traffic interception)"))
control(
    "KW-R024", "Role can write NetworkPolicies", "medium", "rbac",
    frameworks=("nsa", "mitre-T1562.007"),
    remediation="Limit create/update/patch/delete on networkpolicies to cluster or platform administrators; "
    "whoever writes them can lift the namespace's isolation.", description=(
        "No rule allows create, update, patch or delete on networkpolicies: whoever writes them can lift the "
        "isolation of every pod in the namespace. Upstream: kubernetes.io/docs/concepts/services-networking/network-policies/; "
        "kubernetes.io/docs/concepts/security/rbac-good-practices/."
    ),
    **_ROLE,
)(_wants_check((("networking.k8s.io", "networkpolicies", "", (*WRITE, "delete")),),
               "creating, changing or deleting NetworkPolicies (lifting isolation)"))


KUBE_SYSTEM = "kube-system"
_CONFIGMAP_WRITE: tuple[Want, ...] = (("", "configmaps", "", WRITE),)


@control(
    "KW-R025", "Subject can write ConfigMaps in kube-system", "high", "rbac",
    frameworks=("nsa", "mitre-T1098"),
    remediation="Remove write access to ConfigMaps in kube-system; on EKS the aws-auth ConfigMap there maps IAM "
    "identities to Kubernetes groups, so writing it grants system:masters.",
    shape="snapshot", kinds=ROLE_KINDS, reads=BINDING_KINDS,
)
def kube_system_configmaps(snap: Snapshot) -> Iterator[tuple[Resource, str, str]]:
    """No Role or ClusterRole bound in kube-system (a RoleBinding there, or a ClusterRoleBinding) allows writing
    ConfigMaps there: on EKS the aws-auth ConfigMap in kube-system maps IAM identities to Kubernetes groups, so
    writing it grants system:masters, and kube-proxy and CoreDNS read their configuration from there. Upstream:
    the EKS access docs (aws-auth ConfigMap); plugin/pkg/auth/authorizer/rbac/rbac.go (a RoleBinding grants a
    ClusterRole's rules in its namespace)."""
    # A Role in kube-system applies there through a RoleBinding in kube-system; a ClusterRole through a
    # ClusterRoleBinding or a RoleBinding in kube-system (rbac.go: a RoleBinding grants a ClusterRole's rules in
    # the binding's namespace). Unbound roles grant nothing.
    bound: set[tuple[str, str]] = set()
    for b in snap.of_kind(*BINDING_KINDS):
        # the binding's own kind and namespace first: most RoleBindings are elsewhere, their roleRef unread
        if b.kind == "RoleBinding" and b.namespace != KUBE_SYSTEM:
            continue
        kind, name = _role_ref(b)
        cluster_wide = b.kind == "ClusterRoleBinding" and kind == "ClusterRole"
        if cluster_wide or (b.kind == "RoleBinding" and kind in ROLE_KINDS):
            bound.add((kind, name))
    for res in snap.of_kind(*ROLE_KINDS):
        if (res.kind, res.name) not in bound or (res.kind == "Role" and res.namespace != KUBE_SYSTEM):
            continue
        for i, rule in _rules(res):
            if rule_grants(rule, _CONFIGMAP_WRITE):
                yield (res, f"/rules/{i}",
                       f"rule {i} allows writing ConfigMaps in kube-system (EKS aws-auth grants cluster groups)")


_BROAD_GROUPS = frozenset({"system:authenticated", "system:unauthenticated", "system:serviceaccounts"})


def _broad_group(subject: dict[str, Any]) -> bool:
    # system:serviceaccounts:<ns> holds every service account of one namespace (serviceaccount/util.go)
    name = str(subject.get("name", ""))
    return subject.get("kind") == "Group" and (name in _BROAD_GROUPS or name.startswith("system:serviceaccounts:"))


@control(
    "KW-R026", "admin or edit bound cluster-wide or to a broad group", "high", "rbac",
    frameworks=("nsa", "mitre-T1078"),
    remediation="Bind admin or edit with a RoleBinding in the one namespace a named subject needs; a "
    "ClusterRoleBinding grants them in every namespace (Secrets included), a broad group to everyone in it.",
    **_BIND,
)
def admin_edit_binding(res: Resource) -> Iterator[Hit]:
    """The ClusterRoles admin and edit are bound with a RoleBinding to named subjects, not with a
    ClusterRoleBinding (every namespace, Secrets included) nor to a broad group (system:authenticated,
    system:unauthenticated, system:serviceaccounts or system:serviceaccounts:<ns>). Upstream:
    kubernetes.io/docs/reference/access-authn-authz/rbac/ (user-facing roles)."""
    kind, name = _role_ref(res)
    if kind != "ClusterRole" or name not in ("admin", "edit") or res.labels.get(BOOTSTRAP_LABEL) == "rbac-defaults":
        return
    for i, s in _subjects(res):
        if res.kind == "ClusterRoleBinding":
            who = printable(f'{s.get("kind")} "{s.get("name")}"')
            yield f"/subjects/{i}", f"{who} holds {name} in every namespace"
        elif _broad_group(s):
            yield f"/subjects/{i}", f'every member of {printable(str(s.get("name")))} holds {name} in namespace {res.namespace}'
