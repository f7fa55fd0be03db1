"""Aggregated ClusterRoles computed to a fixpoint, as the clusterroleaggregation controller converges.

Upstream pkg/controller/clusterroleaggregation/clusterroleaggregation_controller.go `syncClusterRole`:
for a ClusterRole with an aggregationRule, walk its clusterRoleSelectors in order; for each, take the matching
ClusterRoles sorted by name, skip the role itself, and append every rule not already present (DeepEqual).
The result *replaces* `.rules`. Any ClusterRole change re-queues every aggregated role, so nested aggregation
(edit → admin) converges; offline we iterate until nothing changes. The authorizer itself ignores
aggregationRule and reads only `.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...records import record
from ...selectors import Selector, SelectorError, compile_selector
from .model import Rule


@record
class AggregatedRole:
    name: str
    labels: Mapping[str, str]
    rules: tuple[Rule, ...]
    selectors: tuple[Selector, ...] | None  # None: not aggregated
    sources: tuple[str, ...] = ()  # the ClusterRoles whose rules it aggregates, in selection order


def aggregate(roles: dict[str, AggregatedRole], max_rounds: int | None = None) -> list[str]:
    """Fill the rules of aggregated roles in place; returns problems (bad selectors, no convergence)."""
    problems: list[str] = []
    aggregated = sorted(n for n, r in roles.items() if r.selectors is not None)
    if not aggregated:
        return problems
    by_name = sorted(roles)
    # Which roles each selector picks never changes (labels are fixed): compute once.
    members: dict[str, list[list[str]]] = {}
    for n in aggregated:
        sels = roles[n].selectors or ()
        members[n] = [[m for m in by_name if m != n and s.matches(roles[m].labels)] for s in sels]
        roles[n].sources = tuple(dict.fromkeys(m for picked in members[n] for m in picked))
    rounds = max_rounds if max_rounds is not None else len(aggregated) + 2
    for _ in range(rounds):
        changed = False
        for n in aggregated:
            new: list[Rule] = []
            seen: set[tuple[tuple[str, ...], ...]] = set()
            for picked in members[n]:
                for m in picked:
                    for rule in roles[m].rules:
                        if rule.raw not in seen:  # ruleExists: DeepEqual on the written fields
                            seen.add(rule.raw)
                            new.append(rule)
            if tuple(new) != roles[n].rules:
                roles[n].rules = tuple(new)
                changed = True
        if not changed:
            return problems
    problems.append("aggregated ClusterRoles did not converge (selectors form a cycle); rules are the last round's")
    return problems


def parse_selectors(name: str, agg: object) -> tuple[tuple[Selector, ...] | None, str | None]:
    """aggregationRule.clusterRoleSelectors → compiled selectors; an invalid one makes the sync fail (rules kept)."""
    if agg is None:
        return None, None
    if not isinstance(agg, dict):
        return None, f'ClusterRole "{name}": aggregationRule must be a map'
    specs = agg.get("clusterRoleSelectors") or []
    if not isinstance(specs, list):
        return None, f'ClusterRole "{name}": clusterRoleSelectors must be a list'
    out: list[Selector] = []
    for spec in specs:
        try:
            sel = compile_selector(spec)
        except SelectorError as exc:
            return None, f'ClusterRole "{name}": invalid clusterRoleSelector: {exc}'
        if sel is not None:
            out.append(sel)
    return tuple(out), None
