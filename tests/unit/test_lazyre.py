"""lazyre.lazy: the compiled pattern's answers, compiled only when first asked."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from kubeward.lazyre import lazy

PATTERNS = [(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]*):[^\s/@]*@", 0), (r"(\.key|\.pem|id_rsa)$", re.IGNORECASE)]


@given(st.sampled_from(PATTERNS), st.text(alphabet="ab:/@.KEYpemid_rs ", max_size=30))
def test_answers_as_the_compiled_pattern(spec: tuple[str, int], text: str) -> None:
    pattern, flags = spec
    compiled, deferred = re.compile(pattern, flags), lazy(pattern, flags)
    assert bool(deferred.search(text)) == bool(compiled.search(text))
    assert deferred.sub(r"\1!", text) == compiled.sub(r"\1!", text)
    assert [m.span() for m in deferred.finditer(text)] == [m.span() for m in compiled.finditer(text)]
    assert (deferred.fullmatch(text) is None) == (compiled.fullmatch(text) is None)


def test_compiled_on_first_use_and_kept() -> None:
    deferred = lazy(r"[0-9]+")
    assert "search" not in vars(deferred)  # nothing compiled at definition
    assert deferred.search("ab12").group() == "12"
    assert "search" in vars(deferred)  # the bound method is kept: later calls skip the lookup
    assert deferred.pattern == "[0-9]+"
