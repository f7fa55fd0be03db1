"""Pausing Python's cyclic garbage collector around bulk construction of acyclic objects.

A scan or an index build allocates a few container objects per finding or rule and makes no reference cycles,
yet each allocation burst triggers collections that rescan everything alive (a quarter of a large scan's CPU).
Reference counting still frees everything; the collector resumes, as it was, when the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
