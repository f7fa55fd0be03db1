"""Record classes as `dataclass` makes them, for a fraction of the cost of defining one.

Python 3.11's `dataclass` compiles each generated method on its own (`exec` for `__init__`, `__repr__`,
`__eq__`, `__hash__`, `__setattr__`, `__delattr__` and each order method): a frozen one takes ~0.4 ms to
define, and a one-file scan defines some thirty at import, a fifth of its own CPU time. `record` compiles only
`__init__` (findings are made by the hundred thousand, so it stays as fast as the dataclass one); the other
methods are shared closures over the class's field names, with the same results: the same `repr`, equality on
the compared fields of the same class, `hash` of the same tuple, order by that tuple, `FrozenInstanceError` on
assignment, `__slots__`, `__match_args__`, copy and pickle; `eq=False` keeps identity. Being shared, `hash` and
`==` cost ~0.1-0.2 µs more a call than generated ones (compiling those too would cost 3 ms of a scan's start-up).
`replace` is `dataclasses.replace`. Not offered: the rest of the dataclasses API (`fields`, `asdict`, `InitVar`,
`kw_only`, inheritance between records), a signature as `__doc__` for a class without a docstring, and the repr's
guard against a record that contains itself: a class that needs one stays a dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T")
_MISSING: Any = object()


class _Field:
    __slots__ = ("compare", "default", "factory", "init", "repr")

    def __init__(self, default: Any, factory: Any, init: bool, repr: bool, compare: bool) -> None:
        self.default, self.factory, self.init, self.repr, self.compare = default, factory, init, repr, compare


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None, init: bool = True,
          repr: bool = True, compare: bool = True) -> Any:
    """`dataclasses.field` for a record: a default or a default factory, and whether the field is an `__init__`
    parameter, in the repr, and compared (and so hashed)."""
    if default is not _MISSING and default_factory is not None:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, _MISSING if default_factory is None else default_factory, init, repr, compare)


def _frozen_error(what: str, name: str) -> AttributeError:
    from dataclasses import FrozenInstanceError  # the error path only: the module is not needed otherwise

    return FrozenInstanceError(f"cannot {what} field {name!r}")


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise _frozen_error("assign to", name)


def _frozen_delattr(self: Any, name: str) -> None:
    raise _frozen_error("delete", name)


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, n) for n in self.__record_fields__]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self.__record_fields__, state, strict=True):
        object.__setattr__(self, name, value)


def _key_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The tuple of the named attributes, as the dataclass methods build it (a tuple even for one name)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda self: (one(self),)
    return lambda self: ()


def _methods(cls: type, repr_names: tuple[str, ...], key: Callable[[Any], tuple[Any, ...]], frozen: bool,
             order: bool, eq: bool) -> None:
    def __repr__(self: Any) -> str:
        return f"{self.__class__.__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in repr_names)})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    made: dict[str, Any] = {"__repr__": __repr__}
    if eq:  # as dataclass: a frozen record hashes its compared fields, a mutable one is unhashable
        made["__eq__"] = __eq__
        made["__hash__"] = (lambda self: hash(key(self))) if frozen else None
    # eq=False: identity, object's own __eq__ and __hash__
    if order:
        def __lt__(self: Any, other: Any) -> Any:
            return key(self) < key(other) if other.__class__ is self.__class__ else NotImplemented

        def __le__(self: Any, other: Any) -> Any:
            return key(self) <= key(other) if other.__class__ is self.__class__ else NotImplemented

        def __gt__(self: Any, other: Any) -> Any:
            return key(self) > key(other) if other.__class__ is self.__class__ else NotImplemented

        def __ge__(self: Any, other: Any) -> Any:
            return key(self) >= key(other) if other.__class__ is self.__class__ else NotImplemented

        made.update(__lt__=__lt__, __le__=__le__, __gt__=__gt__, __ge__=__ge__)
    for name, fn in made.items():
        if name in cls.__dict__:
            continue  # the class's own method wins, as with dataclass
        if fn is not None:
            fn.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, fn)


def _build(cls: type[_T], frozen: bool, order: bool, eq: bool) -> type[_T]:
    if any("__record_fields__" in vars(b) for b in cls.__mro__[1:]):
        raise TypeError(f"{cls.__qualname__}: records do not inherit from records (use dataclass)")
    if "__eq__" in cls.__dict__ or "__hash__" in cls.__dict__:
        raise TypeError(f"{cls.__qualname__}: a record's equality and hash are its fields' (use dataclass)")
    fields: dict[str, _Field] = {}
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 -- the class's own, without loading inspect
    for name, ann in own.items():
        if isinstance(ann, str) and ann.startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, _MISSING)
        fields[name] = f = value if isinstance(value, _Field) else _Field(value, _MISSING, True, True, True)
        if f.default is not _MISSING and f.default.__class__.__hash__ is None:
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
    names = tuple(fields)
    params: list[str] = []
    body: list[str] = []
    env: dict[str, Any] = {"_setattr": object.__setattr__, "_MISSING": _MISSING}
    defaulted = ""
    for name, f in fields.items():
        value = name
        if f.init:
            if f.default is not _MISSING:
                env[f"_d_{name}"] = f.default
                params.append(f"{name}=_d_{name}")
                defaulted = name
            elif f.factory is not _MISSING:
                env[f"_f_{name}"] = f.factory
                params.append(f"{name}=_MISSING")
                value = f"_f_{name}() if {name} is _MISSING else {name}"
                defaulted = name
            elif defaulted:
                raise TypeError(f"non-default argument {name!r} follows default argument {defaulted!r}")
            else:
                params.append(name)
        elif f.default is not _MISSING:
            env[f"_d_{name}"] = f.default
            value = f"_d_{name}"
        elif f.factory is not _MISSING:
            env[f"_f_{name}"] = f.factory
            value = f"_f_{name}()"
        else:
            continue  # neither an argument nor a default: left unset, as dataclass does
        body.append(f"  _setattr(self, {name!r}, {value})" if frozen else f"  self.{name} = {value}")
    if "__post_init__" in cls.__dict__:
        body.append("  self.__post_init__()")
    src = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "  pass") + "\n"
    exec(src, env)  # the source is built above from the class's own field names
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"

    # as dataclass(slots=True): the class is made again with __slots__ (class-level defaults go: they would
    # shadow the slots), so instances carry no __dict__
    ns = dict(cls.__dict__)
    for name in names:
        ns.pop(name, None)
    ns.pop("__dict__", None)
    ns.pop("__weakref__", None)
    ns["__slots__"] = names
    ns["__record_fields__"] = names
    ns["__match_args__"] = tuple(n for n, f in fields.items() if f.init)
    ns["__init__"] = init
    if frozen:
        ns["__setattr__"], ns["__delattr__"] = _frozen_setattr, _frozen_delattr
        ns.setdefault("__getstate__", _getstate)
        ns.setdefault("__setstate__", _setstate)
    meta: Any = type(cls)
    made: type[_T] = meta(cls.__name__, cls.__bases__, ns)
    made.__qualname__ = cls.__qualname__
    _methods(made, tuple(n for n, f in fields.items() if f.repr),
             _key_of(tuple(n for n, f in fields.items() if f.compare)), frozen, order, eq)
    return made


@overload
def record(cls: type[_T], /) -> type[_T]: ...


@overload
def record(*, frozen: bool = False, order: bool = False, eq: bool = True) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[_T] | None = None, /, *, frozen: bool = False, order: bool = False, eq: bool = True) -> Any:
    """`@dataclass(slots=True)` (with `frozen`, `order` and `eq` as there), for classes on the start-up path."""
    if order and not eq:
        raise ValueError("eq must be true if order is true")
    if cls is None:
        return lambda c: _build(c, frozen, order, eq)
    return _build(cls, frozen, order, eq)


def replace(obj: _T, /, **changes: Any) -> _T:
    """`dataclasses.replace` for a record: a new one with the given fields changed."""
    cls: Any = type(obj)
    for name in cls.__match_args__:
        if name not in changes:
            changes[name] = getattr(obj, name)
    result: _T = cls(**changes)
    return result
