"""The fast YAML builder returns exactly what `yaml.safe_load` returns, with the same key lines as SafeConstructor."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeward.sources import files
from kubeward.sources.files import load_paths
from kubeward.sources.yaml_build import Unsupported, build_document
from vendored import PSS_FIXTURE_COUNT, pss_fixtures

# Plain scalars that resolve to every YAML 1.1 core tag, and near misses that stay strings.
TRICKY = [
    "0", "00", "017", "0o17", "0x1F", "0b101", "-0x1", "+12", "1_000", "1:30", "190:20:30", "-1:20", "1.5", "1e3",
    "1.0e+3", ".5", "-.inf", ".Inf", ".NaN", "1_0.5", "6.8523015e+5", "685.230_15e+03", "190:20:30.15",
    "yes", "No", "ON", "off", "true", "False", "y", "n", "~", "null", "Null", "NULL", "", "2001-12-14",
    "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "2002-12-14", "2001-12-14T21:59:43Z",
    "1.2.3", "v1", "nginx:1.25", "0.0.0.0/0", "08", "09.5", "1__2", "_1", "0x", "abc", "'quoted'", '"dq"',
    "a b", "-", "=", "<<", "!!str 5", "!!int 7", "!!float 1", "!!bool yes", "!!null ''", "!!binary aGk=",
    "!!timestamp 2001-12-14", "[a, 1, yes]", "{k: 1, j: [2]}", "[]", "{}", "|\n  text\n  more", ">-\n  folded\n",
]
KEYS = ["a", "b", "name", "1", "true", "null", "2001-12-14", "1.5", "a", "=", "<<"]


def _doc(draw: st.DrawFn, depth: int, indent: int) -> str:
    pad = " " * indent
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(KEYS))
        choice = draw(st.integers(0, 5 if depth < 3 else 2))
        if choice <= 2:
            value = draw(st.sampled_from(TRICKY))
            lines.append(f"{pad}{key}: {value}" if "\n" not in value else f"{pad}{key}: {value.replace(chr(10), chr(10) + pad)}")
        elif choice == 3:
            lines.append(f"{pad}{key}:\n{_doc(draw, depth + 1, indent + 2)}")
        elif choice == 4:
            items = [draw(st.sampled_from(TRICKY[:60])) for _ in range(draw(st.integers(0, 3)))]
            lines.append(f"{pad}{key}:" + "".join(f"\n{pad}- {i}" for i in items) if items else f"{pad}{key}: []")
        else:
            lines.append(f"{pad}{key}:\n{pad}-\n{_doc(draw, depth + 1, indent + 2)}")
    return "\n".join(lines)


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    return _doc(draw, 0, 0) + "\n"


def _outcome(load: Any) -> str:
    try:
        return repr(load())
    except Exception as exc:  # YAMLError, or the bare errors SafeConstructor lets through on bad tagged scalars
        return f"error: {type(exc).__name__}"


def _fast(text: str) -> Any:
    loader = files._PositionLoader(text)
    try:
        node = loader.get_single_node()
        try:
            return build_document(node, loader, {})
        except Unsupported:
            return loader.construct_document(node)
    finally:
        loader.dispose()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_texts())
def test_same_objects_as_safe_load(text: str) -> None:
    expected = _outcome(lambda: yaml.load(text, Loader=yaml.CSafeLoader))
    got = _outcome(lambda: _fast(text))
    if expected.startswith("error") or got.startswith("error"):
        assert expected.startswith("error") and got.startswith("error"), (text, expected, got)
    else:
        assert got == expected, text


def _all_lines(text: str, monkeypatch: pytest.MonkeyPatch | None) -> list[tuple[str, dict[str, int | None]]]:
    if monkeypatch is not None:  # force SafeConstructor (the path the fast builder stands in for)
        def unsupported(*_: Any) -> Any:
            raise Unsupported("forced")
        monkeypatch.setattr(files, "build_document", unsupported)
    result = load_paths(["-"], stdin=io.BytesIO(text.encode()))
    out = []
    for res in result.resources:
        pointers: dict[str, int | None] = {}
        stack: list[tuple[str, Any]] = [("", res.obj)]
        while stack:
            prefix, node = stack.pop()
            children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for k, v in children:
                pointers[f"{prefix}/{k}"] = res.line_of(f"{prefix}/{k}")
                stack.append((f"{prefix}/{k}", v))
        out.append((repr(res.obj), {"": res.line, **pointers}))
    return out


@pytest.mark.parametrize("corpus", ["src/kubeward/demo", "tests/data/controls"])
def test_same_objects_and_lines_as_safe_constructor(corpus: str, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [p.read_text() for p in sorted(Path(corpus).rglob("*.y*ml"))]
    assert texts
    fast = [_all_lines(t, None) for t in texts]
    slow = [_all_lines(t, monkeypatch) for t in texts]
    assert fast == slow


def test_pss_corpus_matches_safe_load() -> None:
    paths = sorted(pss_fixtures().rglob("*.yaml"))
    assert len(paths) == PSS_FIXTURE_COUNT
    for p in paths[::7]:
        text = p.read_text()
        assert repr(_fast(text)) == repr(yaml.load(text, Loader=yaml.CSafeLoader)), p


def test_features_left_to_safe_constructor_still_load() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: cm, labels: {a: b}}\n"
        "base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n=: value-key\nset: !!set {a, b}\n"
    )
    [res] = load_paths(["-"], stdin=io.BytesIO(text.encode())).resources
    assert res.obj["merged"] == {"x": 1, "y": 2}
    assert res.obj["set"] == {"a", "b"}
    assert res.line_of("/merged/y") == 7


def test_a_value_that_does_not_fit_its_tag_is_one_error_for_its_document() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {priority: !!int high}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: good}\n"
    )
    result = load_paths(["-"], stdin=io.BytesIO(text.encode()))
    assert [r.name for r in result.resources] == ["good"]
    assert [e.message for e in result.errors] == ["document 1: line 4: the value does not fit its tag !!int"]
    assert "high" not in result.errors[0].message


def test_a_bad_tagged_value_beside_an_alias_is_one_error_too() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: &m {name: bad}\nx: *m\ny: !!bool maybe\n"
    result = load_paths(["-"], stdin=io.BytesIO(text.encode()))
    assert result.resources == []
    assert len(result.errors) == 1 and "does not fit its explicit tag" in result.errors[0].message
