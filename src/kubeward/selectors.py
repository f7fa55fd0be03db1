"""Label selectors with the exact apimachinery semantics, compiled once and matched many times.

Upstream: k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go `LabelSelectorAsSelector` and
pkg/labels/selector.go `Requirement.Matches`:
- a nil selector matches nothing, an empty one (`{}`) matches everything;
- matchLabels and matchExpressions are ANDed;
- In: the key exists and its value is in the set; NotIn: the key is absent or its value is not in the set;
- Exists / DoesNotExist: presence of the key only;
- an invalid operator (or In/NotIn with no values, Exists with values) makes the selector an error, which
  callers treat as matching nothing, as the apiserver would have rejected it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SelectorError(ValueError):
    pass


class Selector:
    __slots__ = ("_exists", "_in", "_labels", "_missing", "_notin", "empty", "text")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        labels = spec.get("matchLabels") or {}
        exprs = spec.get("matchExpressions") or []
        if not isinstance(labels, Mapping) or not isinstance(exprs, list):
            raise SelectorError("matchLabels must be a map and matchExpressions a list")
        self._labels = tuple((str(k), str(v)) for k, v in labels.items())
        self._in: list[tuple[str, frozenset[str]]] = []
        self._notin: list[tuple[str, frozenset[str]]] = []
        self._exists: list[str] = []
        self._missing: list[str] = []
        for e in exprs:
            if not isinstance(e, Mapping):
                raise SelectorError("matchExpressions entries must be maps")
            key, op, values = str(e.get("key", "")), e.get("operator"), e.get("values") or []
            if not isinstance(values, list):
                raise SelectorError(f"values must be a list (key {key!r})")
            if not key:
                raise SelectorError("matchExpressions entry without a key")
            vals = frozenset(str(v) for v in values)
            if op in ("In", "NotIn"):
                if not vals:
                    raise SelectorError(f"operator {op} needs values (key {key!r})")
                (self._in if op == "In" else self._notin).append((key, vals))
            elif op in ("Exists", "DoesNotExist"):
                if vals:
                    raise SelectorError(f"operator {op} takes no values (key {key!r})")
                (self._exists if op == "Exists" else self._missing).append(key)
            else:
                raise SelectorError(f"unknown operator {op!r} (key {key!r})")
        self.empty = not (self._labels or self._in or self._notin or self._exists or self._missing)
        self.text = describe(spec)

    def matches(self, labels: Mapping[str, str]) -> bool:
        for k, v in self._labels:
            if labels.get(k) != v:
                return False
        for k, vals in self._in:
            if labels.get(k) not in vals:
                return False
        for k, vals in self._notin:
            if k in labels and labels[k] in vals:
                return False
        for k in self._exists:
            if k not in labels:
                return False
        return all(k not in labels for k in self._missing)

    def __repr__(self) -> str:
        return f"Selector({self.text})"


def compile_selector(spec: Any) -> Selector | None:
    """None for a nil selector (matches nothing); raises SelectorError for an invalid one."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise SelectorError("a label selector must be a map")
    return Selector(spec)


def describe(spec: Mapping[str, Any]) -> str:
    """kubectl-style text: `app=web,tier in (a,b),!legacy`; `<all>` for the empty selector."""
    parts = [f"{k}={v}" for k, v in (spec.get("matchLabels") or {}).items()]
    for e in spec.get("matchExpressions") or []:
        key, op, vals = e.get("key"), e.get("operator"), ",".join(sorted(str(v) for v in e.get("values") or []))
        parts.append({"In": f"{key} in ({vals})", "NotIn": f"{key} notin ({vals})", "Exists": f"{key}",
                      "DoesNotExist": f"!{key}"}.get(op, f"{key} {op}"))
    return ",".join(parts) or "<all>"
