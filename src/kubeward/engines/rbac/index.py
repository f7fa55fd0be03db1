"""The compiled RBAC state of a snapshot: roles (aggregated), bindings indexed by subject, by namespace and by
role, and rules indexed by (verb, apiGroup, resource) so both directions of the question are cheap:

- `authorize(user, request)`: rule.go VisitRulesFor + rbac.go Authorize (first allowing rule wins);
- `allowed_subjects(request)`: subject_locator.go AllowedSubjects (who can).

Built once per snapshot; every query afterwards is a handful of dictionary lookups.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from ...gcpause import gc_paused as paused_gc
from ...records import record
from ...resource import Duplicate, Resource, where
from ...snapshot import Changes, Snapshot
from .aggregation import AggregatedRole, aggregate, parse_selectors
from .matching import non_resource_url_matches, rule_allows, verb_matches
from .model import MASTERS, Binding, Decision, Request, Rule, Subject, UserInfo

RoleKey = tuple[str, str, str]  # (kind, namespace or "", name)
BINDING_KINDS = ("ClusterRoleBinding", "RoleBinding")


@record(frozen=True)
class Grant:
    """A binding whose role allows a request; the deciding rule is found on demand (`rule_for`)."""

    binding: Binding
    role: RoleKey

    def describe(self) -> str:
        return self.binding.describe()


@record(frozen=True)
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
        self.aggregated_from: dict[str, tuple[str, ...]] = {}  # aggregated ClusterRole → its sources
        self.builtin: frozenset[str] = frozenset()  # bootstrap ClusterRoles supplied because the input lacks them
        self.duplicates: list[Duplicate] = []  # input copies the cluster does not hold (kubectl apply semantics)
        self._crb_by_subject: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._rb_by_subject: dict[tuple[str, str, str], list[int]] = defaultdict(list)  # (ns, kind, name)
        self._crb_by_role: dict[str, list[int]] = defaultdict(list)
        self._rb_by_role: dict[tuple[str, str, str], list[int]] = defaultdict(list)  # (ns, roleKind, role)
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
                self._rb_by_role[(b.namespace, b.role_kind, b.role_name)].append(b.index)
        # (verb, group, resource) as written in rules → roles; `*` entries stay literal keys. Rules with
        # resourceNames go to a side list, since they only match requests naming one of those objects.
        self._rule_index: dict[tuple[str, str, str], set[RoleKey]] = defaultdict(set)
        self._named_index: dict[tuple[str, str, str], list[tuple[RoleKey, frozenset[str]]]] = defaultdict(list)
        self._url_rules: list[tuple[RoleKey, Rule]] = []
        for key, rules in roles.items():
            for r in rules:
                if r.urls:
                    self._url_rules.append((key, r))
                for v in r.verbs:
                    for g in r.groups:
                        for res in r.resources:
                            if r.names:
                                self._named_index[(v, g, res)].append((key, r.names))
                            else:
                                self._rule_index[(v, g, res)].add(key)
        self._subject_pairs = [tuple((s, b.namespace) for s in b.subjects) for b in bindings]
        self._grants = [Grant(b, b.role_key) for b in bindings]  # constant per binding: built once
        self._missing: dict[int, str] = {}
        for b in bindings:
            if b.role_key not in roles:
                self._missing[b.index] = self._missing_message(b)
        # what `updated` needs (set by _build): per binding kind, the input objects in order and the binding
        # number of each (None: a second definition, skipped); the bootstrap objects reconciled with inputs
        self._inputs: dict[str, tuple[tuple[Resource, ...], list[int | None]]] | None = None
        self._wanted: dict[tuple[str, str, str], dict[str, Any]] = {}
        # the bindings the last `updated` replaced, (before, after): what the escalation graph patches from
        self.generation = 0
        self.replaced: list[tuple[Binding, Binding]] = []

    # ---- building ---------------------------------------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, builtin_roles: bool = True, k8s_version: str | None = None) -> RBACIndex:
        """Compile the snapshot's RBAC objects; with `builtin_roles`, merged with the bootstrap policy of
        `k8s_version` (default: the newest shipped) as the apiserver's reconciliation merges it (bootstrap.py).

        The cyclic collector is paused meanwhile: building allocates hundreds of thousands of acyclic objects,
        and its generation scans would otherwise dominate."""
        with paused_gc():
            return cls._build(snapshot, builtin_roles, k8s_version)

    @classmethod
    def _build(cls, snapshot: Snapshot, builtin_roles: bool, k8s_version: str | None = None) -> RBACIndex:
        from .bootstrap import RBAC_KINDS, key_of, merged, policy_objects

        problems: list[str] = []
        agg: dict[str, AggregatedRole] = {}
        objects: dict[RoleKey, Resource] = {}
        duplicates: list[Duplicate] = []
        inputs = {k: snapshot.of_kind(k) for k in RBAC_KINDS}
        policy = policy_objects(k8s_version) if builtin_roles else None
        entries = merged(inputs, policy, duplicates)
        problems += (f"{where(d.copy)}: {d.message()}" for d in duplicates)
        builtin: set[str] = set()
        for e in entries["ClusterRole"]:
            name = _name(e.obj)
            sels, err = parse_selectors(name, e.obj.get("aggregationRule"))
            if err:
                problems.append(err)
            agg[name] = AggregatedRole(name, _obj_labels(e.obj), _rules(e.obj), sels)
            if e.resource is None:
                builtin.add(name)
            else:
                objects[("ClusterRole", "", name)] = e.resource
        problems += aggregate(agg)
        roles: dict[RoleKey, tuple[Rule, ...]] = {("ClusterRole", "", n): a.rules for n, a in agg.items()}
        for e in entries["Role"]:
            key = ("Role", _namespace(e.obj), _name(e.obj))
            roles[key] = _rules(e.obj)
            if e.resource is not None:
                objects[key] = e.resource
        bindings: list[Binding] = []
        numbers: dict[int, int] = {}  # id(input object) -> its binding's number
        for kind in BINDING_KINDS:
            for e in entries[kind]:
                if e.resource is not None:
                    numbers[id(e.resource)] = len(bindings)
                bindings.append(_binding(e.obj, e.resource, len(bindings), kind, e.bootstrap))
        built = cls(roles, bindings, objects, problems)
        built.aggregated_from = {n: a.sources for n, a in agg.items() if a.selectors is not None}
        built.builtin = frozenset(builtin)
        built.duplicates = duplicates
        built._inputs = {k: (tuple(inputs[k]), [numbers.get(id(r)) for r in inputs[k]]) for k in BINDING_KINDS}
        wanted: dict[tuple[str, str, str], dict[str, Any]] = {}
        for obj in policy or ():
            if obj["kind"] in BINDING_KINDS:
                wanted.setdefault(key_of(obj["kind"], obj), obj)
        built._wanted = wanted
        return built

    @classmethod
    def updated(cls, before: RBACIndex, snapshot: Snapshot, changes: Changes) -> RBACIndex | None:
        """`before` (the index of the monitor's previous snapshot) patched to equal a build over `snapshot`,
        when only bindings changed and each changed one kept its name and place (an update, not a create or
        delete: those renumber the bindings after them); None otherwise (then the caller builds afresh).
        Patched in place: only the replaced bindings are unindexed and indexed again."""
        from .bootstrap import RBAC_KINDS, key_of

        kinds = changes.kinds() & set(RBAC_KINDS)
        if kinds - set(BINDING_KINDS) or before._inputs is None or before.duplicates:
            return None  # a copy defined twice: an update may change which copy counts (kubectl apply semantics)
        work: list[tuple[str, int, Resource, Resource]] = []
        for kind in BINDING_KINDS:
            now = snapshot.of_kind(kind)
            old, numbers = before._inputs[kind]
            if len(now) != len(old):
                return None
            for i, (a, b) in enumerate(zip(now, old, strict=True)):
                if a is not b:
                    ka, kb = key_of(kind, a.obj), key_of(kind, b.obj)
                    if ka != kb or not ka[2]:  # renamed (another place) or generateName (no name to match by)
                        return None
                    n = numbers[i]
                    if n is not None:  # never None here: without duplicates every input binding is numbered
                        work.append((kind, n, a, b))
        with paused_gc():
            before._replace(work, {k: tuple(snapshot.of_kind(k)) for k in BINDING_KINDS})
        return before

    def _replace(self, work: list[tuple[str, int, Resource, Resource]],
                 inputs: dict[str, tuple[Resource, ...]]) -> None:
        from .bootstrap import _is_bootstrap, key_of, reconcile

        assert self._inputs is not None
        self.replaced = []
        self.generation += 1
        missing = False
        for kind, n, res, _ in work:
            old = self.bindings[n]
            exp = self._wanted.get(key_of(kind, res.obj))  # as merged(): the input object of a bootstrap name is reconciled
            obj = reconcile(res.obj, exp) if exp is not None else res.obj
            new = _binding(obj, res, n, kind, _is_bootstrap(res.obj))
            self._index_binding(old, remove=True)
            self._index_binding(new)
            self.bindings[n] = new
            self._grants[n] = Grant(new, new.role_key)
            self._subject_pairs[n] = tuple((s, new.namespace) for s in new.subjects)
            if self._missing.pop(n, None) is not None:
                missing = True
            if new.role_key not in self.roles:
                self._missing[n] = self._missing_message(new)
                missing = True
            self.replaced.append((old, new))
        if missing:  # in binding order, as a build makes it (allowed_subjects lists the errors in that order)
            self._missing = dict(sorted(self._missing.items()))
        self._inputs = {k: (inputs[k], self._inputs[k][1]) for k in BINDING_KINDS}

    def _index_binding(self, b: Binding, remove: bool = False) -> None:
        """Put `b`'s number in (or take it out of) the subject and role lists, each kept in binding order."""
        cluster = b.kind == "ClusterRoleBinding"
        lists: list[tuple[dict[Any, list[int]], Any]] = []
        for s in b.subjects:
            k = s.key(b.namespace)
            if k is not None:
                lists.append((self._crb_by_subject, k) if cluster else (self._rb_by_subject, (b.namespace, *k)))
        if cluster:
            if b.role_kind == "ClusterRole":
                lists.append((self._crb_by_role, b.role_name))
        else:
            lists.append((self._rb_by_role, (b.namespace, b.role_kind, b.role_name)))
        seen: set[tuple[int, Any]] = set()
        for table, key in lists:
            if (id(table), key) in seen:  # a binding naming one subject twice is listed once
                continue
            seen.add((id(table), key))
            lst = table.get(key)
            if remove:
                if lst is None:
                    continue
                i = bisect_left(lst, b.index)
                if i < len(lst) and lst[i] == b.index:
                    del lst[i]
                    if not lst:
                        del table[key]
            else:
                lst = table[key]
                i = bisect_left(lst, b.index)
                if i == len(lst) or lst[i] != b.index:
                    lst.insert(i, b.index)

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

    def _allowing_roles(self, req: Request) -> set[RoleKey]:
        """Roles with at least one rule allowing `req` (rbac.go RuleAllows over each role's rules)."""
        if not req.resource_request:
            return {key for key, rule in self._url_rules
                    if verb_matches(rule, req.verb) and non_resource_url_matches(rule, req.path)}
        if req.subresource:
            resources = {f"{req.resource}/{req.subresource}", "*", f"*/{req.subresource}"}
        else:
            resources = {req.resource, "*"}
        keys = [(v, g, res) for v in {req.verb, "*"} for g in {req.api_group, "*"} for res in resources]
        found: set[RoleKey] = set()
        for k in keys:
            hit = self._rule_index.get(k)
            if hit:
                found |= hit
            if req.name:
                for key, names in self._named_index.get(k, ()):
                    if req.name in names:
                        found.add(key)
        return found

    def grants(self, req: Request) -> list[Grant]:
        """Every binding whose role allows `req`, in subject-locator order (ClusterRoleBindings, then the
        namespace's RoleBindings)."""
        grants = self._grants
        return [grants[i] for i in self._granting(req)]

    def _granting(self, req: Request) -> list[int]:
        ns = req.namespace
        crb, rb = self._crb_by_role, self._rb_by_role
        hits: list[int] = []
        for kind, rns, name in self._allowing_roles(req):
            if kind == "ClusterRole":
                got = crb.get(name)
                if got:
                    hits.extend(got)
                if ns:
                    got = rb.get((ns, "ClusterRole", name))
                    if got:
                        hits.extend(got)
            elif ns and rns == ns:
                got = rb.get((ns, "Role", name))
                if got:
                    hits.extend(got)
        hits.sort()
        return hits

    def rule_for(self, grant: Grant, req: Request) -> tuple[int, Rule] | None:
        """The first rule of the grant's role that allows `req` (what `--explain` shows)."""
        for i, rule in enumerate(self.roles.get(grant.role, ())):
            if rule_allows(req, rule):
                return i, rule
        return None

    def allowed_subjects(self, req: Request, super_user: str = "") -> Allowed:
        """subject_locator.go AllowedSubjects: Group system:masters first (and the super user), then the
        subjects of every binding whose rules allow the request; duplicates kept as upstream returns them."""
        subjects: list[tuple[Subject, str]] = [(Subject("Group", MASTERS), "")]
        if super_user:
            subjects.append((Subject("User", super_user), ""))
        ids = self._granting(req)
        pairs = self._subject_pairs
        for i in ids:
            subjects.extend(pairs[i])
        errors = [m for i, m in self._missing.items()
                  if not self.bindings[i].namespace or self.bindings[i].namespace == req.namespace] \
            if self._missing else []
        grants = self._grants
        return Allowed(subjects, [grants[i] for i in ids], errors)

def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


def _namespace(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("namespace") or "default") if isinstance(meta, dict) else "default"


def _obj_labels(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _rules(obj: dict[str, Any]) -> tuple[Rule, ...]:
    rules = obj.get("rules")
    return tuple(Rule.parse(x) for x in rules) if isinstance(rules, list) else ()


def _binding(obj: dict[str, Any], resource: Resource | None, index: int, kind: str, bootstrap: bool) -> Binding:
    ref = obj.get("roleRef")
    ref = ref if isinstance(ref, dict) else {}
    subs = obj.get("subjects")
    subjects = []
    for s in subs if isinstance(subs, list) else ():
        if isinstance(s, dict):
            subjects.append(Subject(str(s.get("kind") or ""), str(s.get("name") or ""), str(s.get("namespace") or "")))
    ns = "" if kind == "ClusterRoleBinding" else _namespace(obj)
    return Binding(index, kind, ns, _name(obj), str(ref.get("kind") or ""), str(ref.get("name") or ""),
                   tuple(subjects), resource, bootstrap)
