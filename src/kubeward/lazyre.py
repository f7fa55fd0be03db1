"""Regular expressions compiled on first use.

Compiling a pattern costs 0.1-0.6 ms, paid at import for a module-level one: the patterns for Secret values,
credential-like environment variables, CRD text or vulnerability ids were most of what importing their modules
cost a scan whose inputs hold none of them. `lazy` keeps the pattern's text and compiles it the first time a
method (`search`, `match`, `sub`, ...) is asked for, and keeps that method: later calls cost what the compiled
pattern's cost (a second method's first use finds the compiled pattern in `re`'s cache).
"""

from __future__ import annotations

import re
from typing import Any


class _Lazy:
    """The pattern's text until first use; then each attribute asked for (a bound method of the compiled
    pattern) is kept in the instance, so later calls cost what the compiled pattern's own cost."""

    def __init__(self, pattern: str, flags: int) -> None:
        self._args = (pattern, flags)

    def __getattr__(self, name: str) -> Any:  # only for what the instance does not hold yet
        if name.startswith("__"):
            raise AttributeError(name)  # copy, pickle and the like probe for protocols: not the pattern's
        value = getattr(re.compile(*self._args), name)
        self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        return f"lazy({self._args[0]!r}, {self._args[1]})"


def lazy(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """`re.compile(pattern, flags)`, done when the pattern is first used (a pattern some runs never need)."""
    return _Lazy(pattern, flags)  # type: ignore[return-value]  # answers every Pattern method of the compiled one
