"""Label selectors: apimachinery semantics (pkg/labels/selector.go Requirement.Matches)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeward.selectors import SelectorError, compile_selector

LABELS = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2"]), max_size=3)


def test_nil_matches_nothing_and_empty_matches_everything() -> None:
    assert compile_selector(None) is None
    sel = compile_selector({})
    assert sel is not None and sel.empty and sel.matches({}) and sel.matches({"x": "y"})


@pytest.mark.parametrize(("expr", "labels", "expected"), [
    ({"key": "a", "operator": "In", "values": ["1"]}, {"a": "1"}, True),
    ({"key": "a", "operator": "In", "values": ["1"]}, {}, False),
    ({"key": "a", "operator": "NotIn", "values": ["1"]}, {}, True),  # absent key satisfies NotIn
    ({"key": "a", "operator": "NotIn", "values": ["1"]}, {"a": "1"}, False),
    ({"key": "a", "operator": "Exists"}, {"a": ""}, True),
    ({"key": "a", "operator": "DoesNotExist"}, {"a": ""}, False),
])
def test_expressions(expr: dict, labels: dict, expected: bool) -> None:
    sel = compile_selector({"matchExpressions": [expr]})
    assert sel is not None and sel.matches(labels) is expected


@pytest.mark.parametrize("expr", [
    {"key": "a", "operator": "In", "values": []},
    {"key": "a", "operator": "Exists", "values": ["x"]},
    {"key": "a", "operator": "Equals", "values": ["x"]},
    {"key": "a", "operator": "In", "values": 3},
    {"operator": "Exists"},
])
def test_invalid_selectors_are_errors(expr: dict) -> None:
    with pytest.raises(SelectorError):
        compile_selector({"matchExpressions": [expr]})


@given(LABELS, LABELS)
def test_match_labels_and_expressions_are_anded(want: dict, have: dict) -> None:
    exprs = [{"key": k, "operator": "In", "values": [v]} for k, v in want.items()]
    by_labels = compile_selector({"matchLabels": want})
    by_exprs = compile_selector({"matchExpressions": exprs})
    assert by_labels is not None and by_exprs is not None
    expected = all(have.get(k) == v for k, v in want.items())
    assert by_labels.matches(have) is expected
    assert by_exprs.matches(have) is expected
