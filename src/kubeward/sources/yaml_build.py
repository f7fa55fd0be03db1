"""Build Python objects from composed YAML nodes faster than PyYAML's SafeConstructor, with the same result.

PyYAML's C loader parses and composes in C, but turns nodes into dicts, lists and scalars in Python, through a
general machinery (generators for recursive structures, a memo per node, merge-key flattening per mapping) that
manifests rarely need: on Kubernetes manifests that step is two thirds of `yaml.load`. `build_document` covers
what manifests use (mappings, sequences, scalars of the YAML 1.1 core tags) in one tight pass and records each
mapping's key lines on the way (for file:line). Anything else — aliases, merge keys (`<<`), the `=` value key,
explicit or unknown tags, collections as keys — raises `Unsupported`, and the caller hands the same node to
SafeConstructor, so the objects are always exactly what `yaml.safe_load` returns.

Scalar semantics are SafeConstructor's own (pyyaml lib/yaml/constructor.py): `str` is the node's text, the
other core tags (null, bool, int, float, binary, timestamp) call SafeConstructor's method for that tag.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

_STR = BaseResolver.DEFAULT_SCALAR_TAG
_MAP = BaseResolver.DEFAULT_MAPPING_TAG
_SEQ = BaseResolver.DEFAULT_SEQUENCE_TAG
# The scalar tags whose SafeConstructor methods are plain functions of the node (no generators, no recursion).
_SCALARS = {
    tag: SafeConstructor.yaml_constructors[tag]
    for tag in (f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "binary", "timestamp"))
}
_RESOLVED_CACHE_MAX = 1 << 16
# What SafeConstructor's scalar methods raise on a value that does not fit an explicit tag (`!!int abc`,
# `!!bool maybe`, `!!timestamp soon`); the value itself is never repeated in the message (it may be a secret).
BAD_SCALAR = (ValueError, KeyError, AttributeError, TypeError, OverflowError)


class Unsupported(Exception):
    """The document uses a YAML feature `build_document` leaves to SafeConstructor."""


def build_document(
    node: yaml.Node, constructor: SafeConstructor, key_lines: dict[int, dict[str, int]]
) -> Any:
    """The object a document's root node stands for; fills `key_lines` (id(mapping) → {key text: line}).

    Raises Unsupported before anything is added to `key_lines` (entries are collected aside and merged at the
    end), so a caller falling back to SafeConstructor is never left with lines of objects that were dropped.
    The caller bounds nesting beforehand (the loader measures deep or aliased documents first), so the
    recursion here stays shallow.
    """
    lines: dict[int, dict[str, int]] = {}
    obj = _build(node, constructor, lines)
    key_lines.update(lines)
    return obj


def _build(node: yaml.Node, constructor: SafeConstructor, key_lines: dict[int, dict[str, int]]) -> Any:
    cls = node.__class__
    if cls is MappingNode:
        if node.tag != _MAP:
            raise Unsupported(node.tag)
        data: dict[Any, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode:
                raise Unsupported("collection as a mapping key")
            text = key_node.value
            if key_node.tag == _STR:
                key: Any = text
            else:
                key = _tagged(key_node, constructor)  # merge (<<) and value (=) keys: Unsupported
            if value_node.__class__ is ScalarNode and value_node.tag == _STR:
                data[key] = value_node.value
            else:
                data[key] = _build(value_node, constructor, key_lines)
            lines[text] = key_node.start_mark.line + 1  # a repeated key keeps its last line, as its value
        key_lines[id(data)] = lines
        return data
    if cls is SequenceNode:
        if node.tag != _SEQ:
            raise Unsupported(node.tag)
        return [
            item.value if item.__class__ is ScalarNode and item.tag == _STR else _build(item, constructor, key_lines)
            for item in node.value
        ]
    if cls is ScalarNode:
        return node.value if node.tag == _STR else _tagged(node, constructor)
    raise Unsupported(type(node).__name__)


def _tagged(node: ScalarNode, constructor: SafeConstructor) -> Any:
    make = _SCALARS.get(node.tag)
    if make is None:
        raise Unsupported(node.tag)
    try:
        return make(constructor, node)
    except BAD_SCALAR as exc:  # e.g. `!!int abc`: SafeConstructor lets the bare Python error through
        raise ConstructorError(None, None, f"the value does not fit its tag {node.tag.replace('tag:yaml.org,2002:', '!!')}", node.start_mark) from exc



class CachedResolver:
    """Mixin for a SafeLoader: the tag of a plain scalar depends only on its text (pyyaml lib/yaml/resolver.py
    BaseResolver.resolve: the implicit resolvers are picked by the first character and matched in order; only
    path resolvers, which SafeLoader has none of, look further), and manifests repeat the same few thousand
    texts, so each is resolved once per process."""

    _resolved: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._resolved = {}  # per loader class: another class may carry other implicit resolvers

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0] and not self.yaml_path_resolvers:  # type: ignore[attr-defined]
            cache = self._resolved
            tag = cache.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)  # type: ignore[misc]
                if len(cache) < _RESOLVED_CACHE_MAX:
                    cache[value] = tag
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[misc]
