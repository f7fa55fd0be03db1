"""YAML reads as Kubernetes reads it (sigs.k8s.io/yaml YAMLToJSONStrict over go-yaml v2): scalars, keys, merges,
duplicates, recursion. The differential proof against the Go code itself is tests/e2e/test_yaml_differential.py."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.sources.files import load_paths, yaml_values
from kubeward.sources.yaml_build import format_float32_g
from vendored import PSS_FIXTURE_COUNT, pss_fixtures


def _value(scalar: str) -> Any:
    [(obj, problem)] = yaml_values(f"v: {scalar}\n")
    assert problem is None, problem
    return obj["v"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=", "="), ("~", None), ("null", None), ("Null", None), ("NULL", None), ("nULL", "nULL"), ("", None),
        ("y", True), ("Y", True), ("yes", True), ("Yes", True), ("YES", True), ("on", True), ("On", True),
        ("ON", True), ("n", False), ("N", False), ("no", False), ("off", False), ("OFF", False), ("true", True),
        ("False", False), ("tRUE", "tRUE"), ("yEs", "yEs"),
        ("0777", 511), ("0o777", 511), ("0O17", 15), ("0x1F", 31), ("0X1f", 31), ("0b101", 5), ("-0x10", -16),
        ("+12", 12), ("1_000", 1000), ("1__2", 12), ("_1", "_1"), ("08", 8), ("0x", "0x"), ("-1_", -1),
        ("1:20", "1:20"), ("190:20:30", "190:20:30"), ("1e3", 1000), ("1.5", 1.5), (".5", 0.5), ("-.5", -0.5),
        ("1.0", 1), ("-0.0", 0), ("1e21", 1e21), ("1e20", 10**20), ("1e400", "1e400"), ("1.5e-7", 1.5e-7),
        ("9223372036854775807", 2**63 - 1), ("9223372036854775808", 2**63), ("18446744073709551615", 2**64 - 1),
        ("18446744073709551616", 18446744073709552000), ("-9223372036854775809", -9223372036854776000),
        ("2001-12-14", "2001-12-14"), ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
        ("<<", "<<"), ("'yes'", "yes"), ('"0x1F"', "0x1F"), ("!!str 5", "5"), ("!!int '7'", 7),
        ("!!float 1", 1), ("!!bool yes", True), ("!!null ''", None), ("!!binary aGk=", "hi"),
        ("!foo 12", "12"), ("!!timestamp 2001-12-14", "2001-12-14"), ("|\n  a\n  b", "a\nb\n"),
    ],
)
def test_plain_and_tagged_scalars(text: str, expected: Any) -> None:
    got = _value(text)
    assert got == expected and type(got) is type(expected), (text, got)


@pytest.mark.parametrize(("text", "expected"), [("1" * 5000, "1" * 5000), ("1" * 300, float("1" * 300)), ("0" * 5000 + "7", 7),
                                               ("0x" + "f" * 5000, "0x" + "f" * 5000), ("9" * 400, "9" * 400)])
def test_huge_numbers_are_bounded_work_not_a_crash(text: str, expected: Any) -> None:
    assert _value(text) == expected  # CPython refuses int() of over 4,300 digits; Go's ParseInt only says range


@pytest.mark.parametrize(
    "scalar", [".inf", "-.Inf", ".nan", "!!int abc", "!!int 1.5", "!!bool 1", "!!null x", "!!timestamp 5",
               "!!float 18446744073709551615", "!!binary a!"]
)
def test_values_kubernetes_refuses(scalar: str) -> None:
    [(obj, problem)] = yaml_values(f"v: {scalar}\n")
    assert obj is None and problem is not None and problem.startswith("line 1:")


@pytest.mark.parametrize(
    ("key", "expected"),
    [("1", "1"), ("0x10", "16"), ("true", "true"), ("y", "true"), ("1.5", "1.5"), ("1.0", "1"), ("1e6", "1e+06"),
     ("100000.0", "100000"), ("0.1", "0.1"), ("3.14159265358979", "3.1415927"), (".inf", ".inf"),
     ("-.inf", "-.inf"), (".nan", ".nan"), ("1e-5", "1e-05"), ("0.0001", "0.0001"), ("1e300", ".inf"),
     ("2001-12-14", "2001-12-14"), ("=", "=")],
)
def test_keys_become_json_strings_as_yamltojson_makes_them(key: str, expected: str) -> None:
    [(obj, problem)] = yaml_values(f"{key}: v\n")
    assert problem is None and obj == {expected: "v"}


def test_float32_g_formatting_matches_go_examples() -> None:
    assert [format_float32_g(f) for f in (1e21, 123456789.0, 1.5e-7, -2.5, 0.0, -0.0)] == [
        "1e+21", "1.2345679e+08", "1.5e-07", "-2.5", "0", "-0"]
    assert format_float32_g(math.inf) == ".inf"


@pytest.mark.parametrize("key", ["~", "null", "18446744073709551615", "[a]", "{a: 1}"])
def test_keys_without_a_json_form_are_refused(key: str) -> None:
    text = f"? {key}\n: v\n" if key[0] in "[{" else f"{key}: v\n"
    [(obj, problem)] = yaml_values(text)
    assert obj is None and problem is not None


def test_duplicate_key_names_the_key_and_both_lines() -> None:
    [(obj, problem)] = yaml_values("a: 1\nb:\n  c: 1\n  c: 2\n")
    assert obj is None
    assert problem == "line 4: duplicate key 'c' (first at line 3); the strict decoder refuses it"


def test_keys_that_become_the_same_json_key_are_refused() -> None:
    [(obj, problem)] = yaml_values("1: a\n'1': b\n")
    assert obj is None and "both become the JSON key '1'" in (problem or "")


def test_files_concatenated_without_separator_lose_nothing_silently() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n"
    result = load_paths(["-"], stdin=io.BytesIO(text.encode()))
    assert result.resources == []
    assert [e.message for e in result.errors] == [
        "document 1: line 4: duplicate key 'apiVersion' (first at line 1); the strict decoder refuses it"]


def test_merge_keys_as_go_yaml_v2_applies_them() -> None:
    text = "b: &b {x: 1, k: 2}\nm:\n  <<: *b\n  w: 0\nnn:\n  <<: [*b, {q: 5}]\n  y: 6\n"
    [(obj, problem)] = yaml_values(text)
    assert problem is None
    assert obj["m"] == {"x": 1, "k": 2, "w": 0}
    assert obj["nn"] == {"x": 1, "k": 2, "q": 5, "true": 6}  # YAML 1.1: the key y is the boolean true


@pytest.mark.parametrize(
    "text",
    [
        "b: &b {x: 1}\nm:\n  x: 2\n  <<: *b\n",  # an explicit key set again by the merge
        "b: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n",  # overriding a merged key: the strict decoder refuses it too
        "b: &b {x: 1}\nc: &c {x: 2}\nm:\n  <<: [*b, *c]\n",
        "m:\n  <<: 5\n", "s: &s [{a: 1}]\nm:\n  <<: *s\n", "m:\n  <<: [1]\n",
    ],
)
def test_merges_the_strict_decoder_refuses(text: str) -> None:
    [(obj, problem)] = yaml_values(text)
    assert obj is None and problem is not None


@pytest.mark.parametrize(
    "text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a {<<: *a}\n", "a: &a\n  b:\n    - c: *a\n",
             "x: &x {y: &y [*x]}\n"],
)
def test_recursive_documents_are_refused_with_their_line(text: str) -> None:
    result = load_paths(["-"], stdin=io.BytesIO((text + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n").encode()))
    assert [r.name for r in result.resources] == ["p"]
    [error] = result.errors
    assert error.message.startswith("document 1: line ") and "recursive" in error.message


def test_an_anchor_defined_again_wins_for_the_aliases_after_it() -> None:
    """go-yaml overwrites the anchor (libyaml's composer would refuse the whole rest of the file)."""
    text = "z: 0\n---\na: &x {k: 1}\nb: *x\nc: &x [2]\nd: *x\n---\ne: 1\n"
    assert yaml_values(text) == [({"z": 0}, None), ({"a": {"k": 1}, "b": {"k": 1}, "c": [2], "d": [2]}, None),
                                 ({"e": 1}, None)]


def test_anchors_are_shared_not_copied_and_keep_lines() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: &m\n  name: cm\nother: *m\n"
    [res] = load_paths(["-"], stdin=io.BytesIO(text.encode())).resources
    assert res.obj["other"] is res.obj["metadata"]
    assert res.line_of("/metadata/name") == 4


def test_custom_tags_read_as_their_text() -> None:
    [res] = load_paths(["tests/data/yaml/custom-tags.yaml"]).resources
    assert res.obj["weird"] == "ls"
    assert res.obj["data"]["password"] == "hello"


def test_pss_corpus_reads_as_safe_load_where_yaml_1_1_agrees() -> None:
    """The upstream fixtures use no scalar where the two resolvers differ: same objects as PyYAML."""
    paths = sorted(pss_fixtures().rglob("*.yaml"))
    assert len(paths) == PSS_FIXTURE_COUNT
    for p in paths[::7]:
        text = p.read_text()
        ours = [obj for obj, problem in yaml_values(text) if obj is not None]
        assert ours == [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d is not None], p


WORDS = ["a", "=", "~", "yes", "1:20", "0x1F", "1e3", "<<", "2001-12-14", "-", "null", "1", "'q'"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(WORDS)), min_size=1, max_size=6))
def test_any_mapping_is_one_value_or_one_problem(pairs: list[tuple[str, str]]) -> None:
    text = "".join(f"{k}: {v}\n" for k, v in pairs)
    [(obj, problem)] = yaml_values(text)
    assert (obj is None) != (problem is None)
    if obj is not None:
        assert len(obj) <= len(pairs) and all(isinstance(k, str) for k in obj)
