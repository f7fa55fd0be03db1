"""records.record behaves as dataclass(slots=True) for everything the project's records use."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeward.records import field, record, replace


def _pair(frozen: bool, order: bool = False) -> tuple[type, type]:
    def body() -> dict[str, object]:
        return {
            "__annotations__": {"a": "int", "b": "str | None", "c": "tuple[str, ...]", "d": "list[int]",
                                "e": "dict[str, int] | None"},
            "__module__": __name__,
        }

    rec_ns = {**body(), "b": None, "c": (), "d": field(default_factory=list),
              "e": field(default=None, init=False, repr=False, compare=False)}
    dc_ns = {**body(), "b": None, "c": (), "d": dataclasses.field(default_factory=list),
             "e": dataclasses.field(default=None, init=False, repr=False, compare=False)}
    rec = record(frozen=frozen, order=order)(type("Thing", (), rec_ns))
    dc = dataclasses.dataclass(frozen=frozen, order=order, slots=True)(type("Thing", (), dc_ns))
    return rec, dc


def _outcome(fn: object, arg: object) -> object:
    try:
        return fn(arg)  # type: ignore[operator]
    except TypeError as e:  # None against a str: both refuse alike
        return type(e)


values = st.tuples(st.integers(-3, 3), st.none() | st.text(max_size=2), st.tuples(*[st.text(max_size=1)] * 2))


@given(values, values)
def test_frozen_record_equals_the_dataclass(x: tuple, y: tuple) -> None:
    rec, dc = _pair(frozen=True, order=True)
    rx, ry, dx, dy = rec(*x), rec(*y), dc(*x), dc(*y)
    assert repr(rx) == repr(dx)
    assert (rx == ry) == (dx == dy)
    for op in ("__lt__", "__le__", "__gt__", "__ge__"):
        assert _outcome(getattr(rx, op), ry) == _outcome(getattr(dx, op), dy)
    assert rx.d == [] and rx.d is not rec(*x).d  # a fresh default per instance
    rx.d.append(1)
    dx.d.append(1)
    # a list field makes both unhashable alike
    with pytest.raises(TypeError):
        hash(rx)
    with pytest.raises(TypeError):
        hash(dx)


@given(values)
def test_hash_is_the_dataclass_hash(x: tuple) -> None:
    @record(frozen=True)
    class Ref:
        kind: str
        name: str | None
        parts: tuple[str, ...] = ()
        _memo: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    @dataclasses.dataclass(frozen=True, slots=True)
    class DRef:
        kind: str
        name: str | None
        parts: tuple[str, ...] = ()
        _memo: dict[str, int] | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    args = (str(x[0]), x[1], x[2])
    assert hash(Ref(*args)) == hash(DRef(*args))  # same hash: sets and dicts of them iterate alike
    assert repr(Ref(*args)).removeprefix("test_hash_is_the_dataclass_hash.<locals>.") == repr(
        DRef(*args)).removeprefix("test_hash_is_the_dataclass_hash.<locals>.D")
    assert Ref(*args) == Ref(*args) and Ref(*args) != DRef(*args)
    assert Ref(*args)._memo is None


def test_frozen_refuses_assignment_and_keeps_slots() -> None:
    rec, _ = _pair(frozen=True)
    thing = rec(1)
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'a'"):
        thing.a = 2
    with pytest.raises(FrozenInstanceError, match="cannot delete field 'a'"):
        del thing.a
    object.__setattr__(thing, "e", {"x": 1})  # the memo fields' way in
    assert thing.e == {"x": 1}
    assert rec.__slots__ == ("a", "b", "c", "d", "e") and not hasattr(thing, "__dict__")
    assert rec.__match_args__ == ("a", "b", "c", "d")
    assert "a" not in rec.__dict__ or not isinstance(rec.__dict__["a"], int)  # defaults do not shadow slots


def test_copy_pickle_and_replace() -> None:
    rec, _ = _pair(frozen=True)
    globals()["Thing"] = rec  # pickle finds classes by module and name
    try:
        thing = rec(1, "x", ("y",), [2])
        for other in (copy.copy(thing), copy.deepcopy(thing), pickle.loads(pickle.dumps(thing))):
            assert other == thing and other is not thing
    finally:
        del globals()["Thing"]
    changed = replace(thing, b="z")
    assert (changed.a, changed.b, changed.c, changed.d, thing.b) == (1, "z", ("y",), [2], "x")


def test_mutable_record() -> None:
    rec, dc = _pair(frozen=False)
    thing = rec(1)
    thing.a = 5
    assert thing == rec(5) and repr(thing) == repr(dc(5))
    assert rec.__hash__ is None  # as a mutable dataclass: unhashable


def test_refused_shapes() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b'"):
        record(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))
    with pytest.raises(ValueError, match="mutable default"):
        record(type("Bad", (), {"__annotations__": {"a": "list[int]"}, "a": []}))
    with pytest.raises(TypeError, match="equality and hash"):
        record(type("Bad", (), {"__annotations__": {"a": "int"}, "__eq__": lambda s, o: True}))


def test_identity_record() -> None:
    @record(frozen=True, eq=False)
    class Pod:
        name: str

    a, b = Pod("web"), Pod("web")
    assert a != b and a == a  # identity, as eq=False
    assert Pod.__eq__ is object.__eq__ and Pod.__hash__ is object.__hash__
    assert repr(a).endswith("Pod(name='web')")
    with pytest.raises(ValueError, match="eq must be true"):
        record(order=True, eq=False)
