"""The compiled RBAC state of a snapshot: roles (aggregated), bindings indexed by subject, by namespace and by
role, and rules indexed by (verb, apiGroup, resource) so both directions of the question are cheap:

- `authorize(user, request)`: rule.go VisitRulesFor + rbac.go Authorize (first allowing rule wins);
- `allowed_subjects(request)`: subject_locator.go AllowedSubjects (who can).

Built once per snapshot; every query afterwards is a handful of dictionary lookups.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ...resource import Resource
from ...snapshot import Snapshot
from .aggregation import AggregatedRole, aggregate, parse_selectors
from .matching import non_resource_url_matches, resource_name_matches, rule_allows, verb_matches
from .model import MASTERS, Binding, Decision, Request, Rule, Subject, UserInfo

RoleKey = tuple[str, str, str]  # (kind, namespace or "", name)
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")  # bootstrappolicy labels its objects so


@dataclass(frozen=True, slots=True)
class Grant:
    """One rule of one role reached through one binding: the unit of explanation."""

    binding: Binding
    role: RoleKey
    rule_index: int
    rule: Rule

    def describe(self) -> str:
        return f"{self.binding.describe()}: rule {self.rule_index} ({self.rule})"


@dataclass(frozen=True, slots=True)
class Allowed:
    """who-can result: subjects in subject-locator order (not deduplicated) and the bindings behind them."""

    subjects: list[tuple[Subject, str]]  # (subject, binding namespace) — the namespace resolves SA subjects
    via: list[Grant]
    errors: list[str]


def role_label(key: RoleKey) -> str:
    kind, ns, name = key
    return f'{kind} "{name}"' if kind == "ClusterRole" else f'{kind} "{ns}/{name}"'


class RBACIndex:
    """Roles, bindings and their indexes; see the module docstring."""

    def __init__(self, roles: dict[RoleKey, tuple[Rule, ...]], bindings: list[Binding],
                 role_objects: dict[RoleKey, Resource] | None = None, problems: Iterable[str] = ()) -> None:
        self.roles = roles
        self.bindings = bindings
        self.role_objects = role_objects or {}
        self.problems = list(problems)
        self._crb_by_subject: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._rb_by_subject: dict[tuple[str, str, str], list[int]] = defaultdict(list)  # (ns, kind, name)
        self._crb_by_role: dict[str, list[int]] = defaultdict(list)
        self._rb_by_role: dict[tuple[str, str, str], list[int]] = defaultdict(list)  # (ns, roleKind, role)
        self._rb_ns: dict[str, list[int]] = defaultdict(list)
        for b in bindings:
            cluster = b.kind == "ClusterRoleBinding"
            for s in b.subjects:
                k = s.key(b.namespace)
                if k is None:
                    continue
                lst = self._crb_by_subject[k] if cluster else self._rb_by_subject[(b.namespace, *k)]
                if not lst or lst[-1] != b.index:
                    lst.append(b.index)
            if cluster:
                if b.role_kind == "ClusterRole":  # a ClusterRoleBinding can only refer to a ClusterRole
                    self._crb_by_role[b.role_name].append(b.index)
            else:
                self._rb_ns[b.namespace].append(b.index)
                self._rb_by_role[(b.namespace, b.role_kind, b.role_name)].append(b.index)
        # (verb, group, resource) as written in rules → [(role, rule index)]; `*` entries stay literal keys.
        self._rule_index: dict[tuple[str, str, str], list[tuple[RoleKey, int]]] = defaultdict(list)
        self._url_rules: list[tuple[RoleKey, int, Rule]] = []
        for key, rules in roles.items():
            for i, r in enumerate(rules):
                if r.urls:
                    self._url_rules.append((key, i, r))
                for v in r.verbs:
                    for g in r.groups:
                        for res in r.resources:
                            self._rule_index[(v, g, res)].append((key, i))
        self._missing: dict[int, str] = {}
        for b in bindings:
            if b.role_key not in roles:
                self._missing[b.index] = self._missing_message(b)

    # ---- building ---------------------------------------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> RBACIndex:
        problems: list[str] = []
        agg: dict[str, AggregatedRole] = {}
        objects: dict[RoleKey, Resource] = {}
        for r in snapshot.of_kind("ClusterRole"):
            if r.name in agg:
                problems.append(f'ClusterRole "{r.name}" defined twice; the first definition is used')
                continue
            sels, err = parse_selectors(r.name, r.obj.get("aggregationRule"))
            if err:
                problems.append(err)
            agg[r.name] = AggregatedRole(r.name, r.labels, _rules(r), sels)
            objects[("ClusterRole", "", r.name)] = r
        problems += aggregate(agg)
        roles: dict[RoleKey, tuple[Rule, ...]] = {("ClusterRole", "", n): a.rules for n, a in agg.items()}
        for r in snapshot.of_kind("Role"):
            key = ("Role", r.namespace or "default", r.name)
            if key not in roles:
                roles[key] = _rules(r)
                objects[key] = r
        bindings: list[Binding] = []
        for kind in ("ClusterRoleBinding", "RoleBinding"):
            for r in snapshot.of_kind(kind):
                bindings.append(_binding(r, len(bindings), kind))
        return cls(roles, bindings, objects, problems)

    def _missing_message(self, b: Binding) -> str:
        # rule.go GetRoleReferenceRules: a missing role is an error handed to the visitor; the walk continues.
        if b.role_kind not in ("Role", "ClusterRole"):
            return f"{b.describe()}: unsupported role reference kind: {b.role_kind!r}"
        return f"{b.describe()}: {role_label(b.role_key)} not found"

    # ---- lookups ----------------------------------------------------------------------------------------------

    def rules_of(self, b: Binding) -> tuple[Rule, ...]:
        return self.roles.get(b.role_key, ())

    def missing_roles(self) -> list[str]:
        return [self._missing[i] for i in sorted(self._missing)]

    def bindings_for(self, user: UserInfo, namespace: str) -> Iterator[Binding]:
        """rule.go VisitRulesFor order: ClusterRoleBindings first, then RoleBindings of `namespace` (if any)."""
        keys = [("user", user.name), *(("group", g) for g in user.groups)]
        crb: set[int] = set()
        for k in keys:
            crb.update(self._crb_by_subject.get(k, ()))
        for i in sorted(crb):
            yield self.bindings[i]
        if namespace:
            rb: set[int] = set()
            for k in keys:
                rb.update(self._rb_by_subject.get((namespace, *k), ()))
            for i in sorted(rb):
                yield self.bindings[i]

    def authorize(self, user: UserInfo, req: Request) -> Decision:
        """The union authorizer reduced to what offline state decides: system:masters, then RBAC.

        reload.go puts the privileged-groups authorizer (system:masters) first; RBAC then allows on the first
        matching rule and otherwise has no opinion, which the union turns into a denial.
        """
        if MASTERS in user.groups:
            return Decision(True, f'allowed by group "{MASTERS}" (privileged group, before RBAC)')
        errors: list[str] = []
        for b in self.bindings_for(user, req.namespace):
            msg = self._missing.get(b.index)
            if msg is not None:
                errors.append(msg)
                continue
            for rule in self.rules_of(b):
                if rule_allows(req, rule):
                    return Decision(True, f"RBAC: allowed by {b.describe()}", b, role_label(b.role_key), rule,
                                    errors)
        return Decision(False, "RBAC: " + "; ".join(errors) if errors else "", errors=errors)

    def rules_for(self, user: UserInfo, namespace: str) -> list[Rule]:
        """rule.go RulesFor: every rule that applies to the user in the namespace (duplicates kept)."""
        out: list[Rule] = []
        for b in self.bindings_for(user, namespace):
            out.extend(self.rules_of(b))
        return out

    def _allowing_roles(self, req: Request) -> dict[RoleKey, int]:
        """Roles with a rule allowing `req` → index of the first such rule."""
        found: dict[RoleKey, int] = {}
        if not req.resource_request:
            for key, i, rule in self._url_rules:
                if (key not in found or i < found[key]) and verb_matches(rule, req.verb) \
                        and non_resource_url_matches(rule, req.path):
                    found[key] = i
            return found
        if req.subresource:
            resources = {f"{req.resource}/{req.subresource}", "*", f"*/{req.subresource}"}
        else:
            resources = {req.resource, "*"}
        for v in {req.verb, "*"}:
            for g in {req.api_group, "*"}:
                for res in resources:
                    for key, i in self._rule_index.get((v, g, res), ()):
                        if (key not in found or i < found[key]) and resource_name_matches(
                                self.roles[key][i], req.name):
                            found[key] = i
        return found

    def grants(self, req: Request) -> list[Grant]:
        """Every binding whose role allows `req`, in subject-locator order (ClusterRoleBindings, then the
        namespace's RoleBindings), each with the first allowing rule."""
        roles = self._allowing_roles(req)
        hits: list[int] = []
        for key in roles:
            kind, ns, name = key
            if kind == "ClusterRole":
                hits.extend(self._crb_by_role.get(name, ()))
                if req.namespace:
                    hits.extend(self._rb_by_role.get((req.namespace, "ClusterRole", name), ()))
            elif req.namespace and ns == req.namespace:
                hits.extend(self._rb_by_role.get((ns, "Role", name), ()))
        out = []
        for bi in sorted(set(hits)):
            b = self.bindings[bi]
            i = roles[b.role_key]
            out.append(Grant(b, b.role_key, i, self.roles[b.role_key][i]))
        return out

    def allowed_subjects(self, req: Request, super_user: str = "") -> Allowed:
        """subject_locator.go AllowedSubjects: Group system:masters first (and the super user), then the
        subjects of every binding whose rules allow the request; duplicates kept as upstream returns them."""
        subjects: list[tuple[Subject, str]] = [(Subject("Group", MASTERS), "")]
        if super_user:
            subjects.append((Subject("User", super_user), ""))
        via = self.grants(req)
        for g in via:
            subjects.extend((s, g.binding.namespace) for s in g.binding.subjects)
        errors = [m for i, m in sorted(self._missing.items())
                  if self.bindings[i].kind == "ClusterRoleBinding" or self.bindings[i].namespace == req.namespace]
        return Allowed(subjects, via, errors)


def _rules(r: Resource) -> tuple[Rule, ...]:
    rules = r.obj.get("rules")
    return tuple(Rule.parse(x) for x in rules) if isinstance(rules, list) else ()


def _binding(r: Resource, index: int, kind: str) -> Binding:
    ref = r.obj.get("roleRef")
    ref = ref if isinstance(ref, dict) else {}
    subs = r.obj.get("subjects")
    subjects = []
    for s in subs if isinstance(subs, list) else ():
        if isinstance(s, dict):
            subjects.append(Subject(str(s.get("kind") or ""), str(s.get("name") or ""), str(s.get("namespace") or "")))
    ns = "" if kind == "ClusterRoleBinding" else (r.namespace or "default")
    labels = r.labels
    return Binding(index, kind, ns, r.name, str(ref.get("kind") or ""), str(ref.get("name") or ""), tuple(subjects),
                   r, labels.get(BOOTSTRAP_LABEL[0]) == BOOTSTRAP_LABEL[1])
