"""The bootstrap RBAC policy every kube-apiserver creates and keeps at start-up, merged with the input as the
apiserver's reconciliation merges it.

The objects themselves (ClusterRoles, ClusterRoleBindings, and the Roles/RoleBindings of kube-system and
kube-public, all labelled kubernetes.io/bootstrapping=rbac-defaults) come from a real kube-apiserver of each
supported version (kubeward/data/bootstrap-policy-v*.json, scripts/gen-api-data), not from a transcription.

Merge (pkg/registry/rbac/rest/storage_rbac.go ensureRBACPolicy, with RemoveExtraPermissions and
RemoveExtraSubjects false; pkg/registry/rbac/reconciliation/reconcile_role.go computeReconciledRole and
reconcile_rolebindings.go computeReconciledRoleBinding). On every start the apiserver reconciles each bootstrap
object against the stored one of the same kind, namespace and name:
- absent: the bootstrap object is created;
- annotated rbac.authorization.kubernetes.io/autoupdate: "false": left exactly as it is (protected);
- otherwise a union: labels and annotations gain the missing bootstrap keys (existing values win); a role gains
  the bootstrap rules it does not already have and, for aggregated ClusterRoles, the missing clusterRoleSelectors;
  a binding gets the bootstrap roleRef (the apiserver recreates it when the roleRef differs) and gains the missing
  bootstrap subjects. Nothing the input grants is removed.
The input is taken as what is stored, so the result is the steady state of a cluster running these manifests.
Missing rules are computed as validation.Covers computes them: the bootstrap rules broken down to one verb, group,
resource and name each, kept when no existing rule covers them, and appended in that broken-down form.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ...records import record
from ...resource import Duplicate, Resource, applied_copies

AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"  # rbac.AutoUpdateAnnotationKey
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
Key = tuple[str, str, str]  # (kind, namespace or "", name)


@record(frozen=True)
class Entry:
    """One RBAC object as the cluster holds it: its content, the input object it came from (None when the
    bootstrap policy supplied it) and whether it is the apiserver's own (supplied, or labelled as such)."""

    obj: dict[str, Any]
    resource: Resource | None
    bootstrap: bool


def key_of(kind: str, obj: dict[str, Any]) -> Key:
    meta = _d(obj.get("metadata"))
    ns = "" if kind.startswith("Cluster") else str(meta.get("namespace") or "default")
    return (kind, ns, str(meta.get("name") or ""))


def policy_objects(version: str | None = None) -> list[dict[str, Any]]:
    from ...apidata import bootstrap_policy

    return bootstrap_policy(version)


def _labels(obj: dict[str, Any], field: str) -> dict[str, str]:
    meta = _d(obj.get("metadata"))
    v = meta.get(field)
    return dict(v) if isinstance(v, dict) else {}


def _list(obj: dict[str, Any], field: str) -> list[Any]:
    v = obj.get(field)
    return list(v) if isinstance(v, list) else []


def reconcile(existing: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The stored object after the apiserver's reconciliation with the bootstrap one (see the module docstring)."""
    if _labels(existing, "annotations").get(AUTOUPDATE) == "false":
        return existing
    out = dict(existing)
    meta = dict(_d(existing.get("metadata")))
    for field in ("labels", "annotations"):
        merged = {**_labels(expected, field), **_labels(existing, field)}  # merge(): later maps win
        if merged:
            meta[field] = merged
    out["metadata"] = meta
    if expected.get("kind") in ("ClusterRole", "Role"):
        rules = _list(existing, "rules")
        out["rules"] = rules + uncovered(rules, _list(expected, "rules"))  # result.MissingRules appended
        want = expected.get("aggregationRule")
        if isinstance(want, dict):
            have = existing.get("aggregationRule")
            if not isinstance(have, dict):
                out["aggregationRule"] = want
            else:  # aggregationRuleUnion
                sels = _list(have, "clusterRoleSelectors")
                out["aggregationRule"] = {**have, "clusterRoleSelectors": sels + [
                    s for s in _list(want, "clusterRoleSelectors") if s not in sels]}
    else:
        out["roleRef"] = expected.get("roleRef")
        subjects = _list(existing, "subjects")
        out["subjects"] = subjects + [s for s in _list(expected, "subjects") if s not in subjects]
    return out


def _strs(rule: Any, field: str) -> list[str]:
    v = rule.get(field) if isinstance(rule, dict) else None
    return [str(x) for x in v] if isinstance(v, list) else []


def breakdown(rule: Any) -> list[dict[str, list[str]]]:
    """BreakdownRule (component-helpers/auth/rbac/validation/policy_comparator.go): one verb, one group, one
    resource and at most one name per rule; non-resource URLs combine with verbs only."""
    out: list[dict[str, list[str]]] = []
    verbs, names = _strs(rule, "verbs"), _strs(rule, "resourceNames")
    for g in _strs(rule, "apiGroups"):
        for r in _strs(rule, "resources"):
            for v in verbs:
                base = {"verbs": [v], "apiGroups": [g], "resources": [r]}
                out += [{**base, "resourceNames": [n]} for n in names] if names else [base]
    for u in _strs(rule, "nonResourceURLs"):
        out += [{"verbs": [v], "nonResourceURLs": [u]} for v in verbs]
    return out


def _covers(owner: Any, sub: dict[str, list[str]]) -> bool:
    """ruleCovers: the owner rule allows everything the broken-down rule does."""
    verbs, groups, res = _strs(owner, "verbs"), _strs(owner, "apiGroups"), _strs(owner, "resources")
    names, urls = _strs(owner, "resourceNames"), _strs(owner, "nonResourceURLs")
    if not ("*" in verbs or all(v in verbs for v in sub.get("verbs", []))):
        return False
    if not ("*" in groups or all(g in groups for g in sub.get("apiGroups", []))):
        return False
    for path in sub.get("resources", []):  # resourceCoversAll
        if "*" in res or path in res:
            continue
        if "/" not in path or "*/" + path.split("/", 1)[1] not in res:
            return False
    for path in sub.get("nonResourceURLs", []):  # nonResourceURLsCoversAll
        if not any(o == path or (o.endswith("*") and path.startswith(o.rstrip("*"))) for o in urls):
            return False
    want = sub.get("resourceNames", [])
    return not names if not want else (not names or all(n in names for n in want))


def uncovered(owner_rules: list[Any], servant_rules: list[Any]) -> list[dict[str, list[str]]]:
    """validation.Covers: the broken-down servant rules no owner rule covers (what reconciliation appends)."""
    return [sub for rule in servant_rules for sub in breakdown(rule)
            if not any(_covers(o, sub) for o in owner_rules)]


def merged(inputs: dict[str, list[Resource]], policy: Iterable[dict[str, Any]] | None,
           duplicates: list[Duplicate] | None = None) -> dict[str, list[Entry]]:
    """Per RBAC kind, the objects a cluster holds: the input objects, one per name as `kubectl apply` of the
    inputs in order leaves them (reconciled where the bootstrap policy has one of the same name), and the
    bootstrap objects the input lacks. `policy` None: the input alone. Each input copy that does not count is
    added to `duplicates`."""
    out: dict[str, list[Entry]] = {k: [] for k in RBAC_KINDS}
    wanted: dict[Key, dict[str, Any]] = {}
    for obj in policy or ():
        wanted.setdefault(key_of(obj["kind"], obj), obj)
    seen: set[Key] = set()
    for kind in RBAC_KINDS:
        kept, dropped = applied_copies(inputs.get(kind, ()), _roleref_change if kind.endswith("Binding") else None)
        if duplicates is not None:
            duplicates += dropped
        for r in kept:
            k = key_of(kind, r.obj)
            exp = wanted.get(k)
            seen.add(k)
            if exp is None:
                out[kind].append(Entry(r.obj, r, _is_bootstrap(r.obj)))
            else:
                # judged as the input's own object: a bootstrap name in the input is no reason to skip it
                out[kind].append(Entry(reconcile(r.obj, exp), r, _is_bootstrap(r.obj)))
    for k, obj in wanted.items():
        if k not in seen:
            out[k[0]].append(Entry(obj, None, True))
    return out


def _roleref_change(old: Resource, new: Resource) -> str | None:
    """pkg/apis/rbac/validation/validation.go ValidateRoleBindingUpdate (and the ClusterRoleBinding one):
    ValidateImmutableField on roleRef, so an update may not change it."""
    def ref(r: Resource) -> tuple[str, str, str]:
        rr = _d(r.obj.get("roleRef"))
        return (str(rr.get("apiGroup") or ""), str(rr.get("kind") or ""), str(rr.get("name") or ""))
    return "roleRef: field is immutable" if ref(old) != ref(new) else None


def _is_bootstrap(obj: dict[str, Any]) -> bool:
    return _labels(obj, "labels").get(BOOTSTRAP_LABEL[0]) == BOOTSTRAP_LABEL[1]


def names(version: str | None = None) -> Iterator[Key]:
    """The (kind, namespace, name) of every bootstrap object of a version."""
    for obj in policy_objects(version):
        yield key_of(obj["kind"], obj)


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
