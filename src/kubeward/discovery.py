"""Resource arguments resolved as kubectl resolves them: discovery data, the shortcut expander and the priority
RESTMapper, plus CustomResourceDefinitions found in the input.

Upstream (each rule below cites its function):
- kubectl `auth can-i` resourceFor (staging/src/k8s.io/kubectl/pkg/cmd/auth/cani.go): `*` stays; the argument is
  lower-cased and parsed by schema.ParseResourceArg; `resource.version.group` is tried first, then `resource.group`;
  when nothing matches it warns "the server doesn't have a resource type …" (not for users/groups) and passes the
  argument through unchanged as the resource, group "".
- schema.ParseResourceArg / ParseGroupResource (apimachinery/pkg/runtime/schema/group_version.go): two or more dots
  make `resource.version.group`; the text after the first dot is the group.
- shortcutExpander.expandResourceShortcut (client-go/restmapper/shortcut.go): an exact plural or singular name
  is never expanded; otherwise the first short name in group priority order wins; with a group given, a short name
  also matches a group prefix.
- NewDiscoveryRESTMapper (client-go/restmapper/discovery.go) and DefaultRESTMapper.ResourcesFor
  (apimachinery/pkg/api/meta/restmapper.go): each resource maps by plural and singular (or the kind guessed to a
  resource), plus the unsafe `<Kind>List` guess; a group is matched exactly, else by prefix
  (`storageclass.storage`); PriorityRESTMapper.ResourceFor picks among several matches by core v1 first, then each
  group's preferred version in discovery order, then its other versions, then any version of each group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NON_STANDARD = frozenset({"users", "groups"})  # cani.go nonStandardResourceNames: never warned about
GVR = tuple[str, str, str]  # (group, version, resource)


@dataclass(frozen=True, slots=True)
class APIResource:
    group: str
    version: str
    name: str  # plural; `pods/exec` for subresources
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a resource argument means to the apiserver: the SubjectAccessReview's group and resource."""

    group: str
    resource: str
    version: str = ""
    namespaced: bool = True  # unknown resources are asked in the namespace, as kubectl sends them
    known: bool = True
    warning: str = ""  # kubectl's stderr warning, without the "Warning: " prefix

    @property
    def label(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(slots=True)
class _Group:
    name: str
    preferred: str
    versions: list[tuple[str, list[APIResource]]] = field(default_factory=list)


def guess_kind_to_resource(kind: str) -> tuple[str, str]:
    """meta.UnsafeGuessKindToResource: (plural, singular) guessed from a Kind."""
    singular = kind.lower()
    if not singular:
        return "", ""
    if singular.endswith("endpoints"):  # unpluralizedSuffixes
        return singular, singular
    if singular.endswith("s"):
        return singular + "es", singular
    if singular.endswith("y"):
        return singular[:-1] + "ies", singular
    return singular + "s", singular


_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(v: str) -> tuple[int, int, int, str]:
    """apimachinery version.CompareKubeAwareVersionStrings order as a sort key: GA > beta > alpha, higher first,
    then anything else alphabetically."""
    m = _VERSION.match(v)
    if not m:
        return (3, 0, 0, v)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor, v)


class RESTMapper:
    """Built from discovery documents in server order; `resolve(arg)` is kubectl's resourceFor."""

    def __init__(self, groups: list[_Group]) -> None:
        self.groups = groups
        self.resources: list[APIResource] = [r for g in groups for _, rs in g.versions for r in rs]
        self.subresources: dict[tuple[str, str, str], set[str]] = {}
        # (plural GVR, singular GVR) pairs of every version mapper, in group and version order.
        self._pairs: list[tuple[GVR, GVR]] = []
        self._shortcuts: list[tuple[str, str, str]] = []  # (group, short, plural)
        self._priority: list[tuple[str, str]] = [("", "v1")]  # (group, version); "*" = any
        for g in groups:
            if any(v == g.preferred for v, _ in g.versions):
                self._priority.append((g.name, g.preferred))
            for v, rs in g.versions:
                if v != g.preferred:
                    self._priority.append((g.name, v))
                for r in rs:
                    if "/" in r.name:
                        base, _, sub = r.name.partition("/")
                        self.subresources.setdefault((g.name, v, base), set()).add(sub)
                        continue
                    singular = r.singular or guess_kind_to_resource(r.kind)[1]
                    self._pairs.append(((g.name, v, r.name), (g.name, v, singular)))
                    lp, ls = guess_kind_to_resource(r.kind + "List")
                    self._pairs.append(((g.name, v, lp), (g.name, v, ls)))
                    self._shortcuts += [(g.name, s, r.name) for s in r.short_names]
                self._pairs.append(((g.name, v, "lists"), (g.name, v, "list")))  # versionMapper.Add(List)
        self._priority += [(g.name, "*") for g in groups]
        self._by_gvr = {(r.group, r.version, r.name): r for r in self.resources}

    # ---- construction ------------------------------------------------------------------------------------------

    @classmethod
    def from_discovery(cls, doc: dict[str, Any]) -> RESTMapper:
        groups = []
        for g in doc.get("groups") or ():
            grp = _Group(g["name"], g.get("preferredVersion") or "")
            for v in g.get("versions") or ():
                grp.versions.append((v["version"], [_api_resource(g["name"], v["version"], r)
                                                     for r in v.get("resources") or ()]))
            groups.append(grp)
        return cls(groups)

    @classmethod
    def builtin(cls, version: str | None = None) -> RESTMapper:
        from .apidata import discovery

        return _builtin(discovery(version)["serverVersion"], version)

    def with_crds(self, crds: Iterable[Any]) -> RESTMapper:
        """This mapper plus the served versions of CustomResourceDefinitions (apiextensions.k8s.io/v1), their
        groups after the built-in ones (CRD APIServices have the lowest group priority, ties by name)."""
        extra: dict[str, _Group] = {}
        known = {g.name for g in self.groups}
        for crd in crds:
            obj = getattr(crd, "obj", crd)
            spec = obj.get("spec") if isinstance(obj, dict) else None
            if not isinstance(spec, dict):
                continue
            names = _d(spec.get("names"))
            group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
            if not (isinstance(group, str) and isinstance(plural, str) and isinstance(kind, str)) or group in known:
                continue
            singular = str(names.get("singular") or "")
            shorts = tuple(s for s in names.get("shortNames") or () if isinstance(s, str))
            namespaced = spec.get("scope") != "Cluster"
            grp = extra.setdefault(group, _Group(group, ""))
            for v in spec.get("versions") or ():
                if not isinstance(v, dict) or not v.get("served", True) or not isinstance(v.get("name"), str):
                    continue
                rs = _version_list(grp, v["name"])
                rs.append(APIResource(group, v["name"], plural, singular or kind.lower(), kind, namespaced,
                                      short_names=shorts))
                subs = _d(v.get("subresources"))
                for sub in ("status", "scale"):
                    if sub in subs:
                        rs.append(APIResource(group, v["name"], f"{plural}/{sub}", "", kind, namespaced))
        if not extra:
            return self
        for grp in extra.values():
            grp.versions.sort(key=lambda x: version_priority(x[0]))
            grp.preferred = grp.versions[0][0] if grp.versions else ""
        return RESTMapper([*self.groups, *(extra[n] for n in sorted(extra))])

    # ---- lookups -----------------------------------------------------------------------------------------------

    def lookup(self, group: str, resource: str) -> APIResource | None:
        """The discovery entry of a (group, plural) in its preferred version."""
        for g in self.groups:
            if g.name != group:
                continue
            for _, rs in sorted(g.versions, key=lambda x: x[0] != g.preferred):
                for r in rs:
                    if r.name == resource:
                        return r
        return None

    def has_subresource(self, group: str, resource: str, sub: str) -> bool:
        return any(sub in subs for (g, _, r), subs in self.subresources.items() if g == group and r == resource)

    def top_level(self) -> list[APIResource]:
        """One entry per (group, resource), preferred version, no subresources; discovery order."""
        seen: set[tuple[str, str]] = set()
        out = []
        for g in self.groups:
            for _, rs in sorted(g.versions, key=lambda x: x[0] != g.preferred):
                for r in rs:
                    if "/" not in r.name and (g.name, r.name) not in seen:
                        seen.add((g.name, r.name))
                        out.append(r)
        return out

    def _expand(self, gvr: GVR) -> GVR:
        """shortcutExpander.expandResourceShortcut."""
        group, version, res = gvr
        for r in self.resources:
            if group and r.group != group:
                continue
            if res == r.name or res == r.singular:
                return gvr
        found: tuple[str, str] | None = None
        for sg, short, plural in self._shortcuts:
            if group and group != sg:
                continue
            if res == short and found is None:
                found = (sg, plural)
        if found is not None:
            return (found[0], "", found[1])
        if not group:
            return gvr
        for sg, short, plural in self._shortcuts:
            if sg.startswith(group) and res == short:
                return (sg, version, plural)
        return gvr

    def _resources_for(self, gvr: GVR) -> list[GVR]:
        """DefaultRESTMapper.ResourcesFor over every version mapper (MultiRESTMapper, de-duplicated)."""
        group, version, res = gvr
        ret: list[GVR] = []
        if group and version:
            ret = [p for p, s in self._pairs if s == gvr or p == gvr]
        elif group:
            ret = [p for p, s in self._pairs if (s[0], s[2]) == (group, res) or (p[0], p[2]) == (group, res)]
            if not ret:
                ret = [p for p, s in self._pairs if p[0].startswith(group) and res in (s[2], p[2])]
        elif version:
            ret = [p for p, s in self._pairs if (s[1], s[2]) == (version, res) or (p[1], p[2]) == (version, res)]
        else:
            ret = [p for p, s in self._pairs if res in (s[2], p[2])]
        return list(dict.fromkeys(ret))

    def resource_for(self, gvr: GVR) -> GVR | None:
        """PriorityRESTMapper.ResourceFor after shortcut expansion; None for no match or an ambiguous one."""
        found = self._resources_for(self._expand(gvr))
        if len(found) <= 1:
            return found[0] if found else None
        remaining = found
        for pg, pv in self._priority:
            matched = [x for x in remaining if x[0] == pg and (pv == "*" or x[1] == pv)]
            if len(matched) == 1:
                return matched[0]
            if matched:
                remaining = matched
        return None

    def resolve(self, arg: str) -> Resolved:
        """kubectl auth can-i resourceFor (cani.go), with the scope and kubectl's warning for unknown types."""
        if arg == "*":
            return Resolved("", "*")
        lower = arg.lower()
        gvr: GVR | None = None
        if lower.count(".") >= 2:  # schema.ParseResourceArg
            res, version, group = lower.split(".", 2)
            gvr = self.resource_for((group, version, res))
        res, _, group = lower.partition(".")  # schema.ParseGroupResource
        if gvr is None:
            gvr = self.resource_for((group, "", res))
        if gvr is None:
            gr = f"{res}.{group}" if group else res
            warning = ""
            if gr not in NON_STANDARD:
                warning = (f"the server doesn't have a resource type '{res}'" if not group else
                           f"the server doesn't have a resource type '{res}' in group '{group}'")
            return Resolved("", arg, known=False, warning=warning)
        # cani.go isNamespaced looks the name up in discovery; a `<Kind>List` guess is not listed there, so it is
        # asked in the namespace like any resource kubectl cannot place.
        entry = self._by_gvr.get(gvr)
        return Resolved(gvr[0], gvr[2], gvr[1], entry.namespaced if entry is not None else True)


def _version_list(grp: _Group, version: str) -> list[APIResource]:
    for v, rs in grp.versions:
        if v == version:
            return rs
    grp.versions.append((version, []))
    return grp.versions[-1][1]


def _api_resource(group: str, version: str, r: dict[str, Any]) -> APIResource:
    return APIResource(group, version, r["name"], r.get("singularName") or "", r.get("kind") or "",
                       bool(r.get("namespaced")), tuple(r.get("verbs") or ()), tuple(r.get("shortNames") or ()))


_CACHE: dict[str, RESTMapper] = {}


def _builtin(server_version: str, version: str | None) -> RESTMapper:
    key = server_version
    if key not in _CACHE:
        from .apidata import discovery

        _CACHE[key] = RESTMapper.from_discovery(discovery(version))
    return _CACHE[key]


def mapper_for(snapshot: Any = None, version: str | None = None) -> RESTMapper:
    """The built-in API of `version` plus the snapshot's CustomResourceDefinitions."""
    base = RESTMapper.builtin(version)
    if snapshot is None:
        return base
    return base.with_crds(snapshot.of_kind("CustomResourceDefinition"))


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
