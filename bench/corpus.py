"""Where benchmarks find the 4,537 Pod Security fixtures: the copy the tests carry (tests/data/upstream), extracted
(byte for byte the upstream corpus the figures in docs/benchmarks.md were taken on)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from vendored import pss_corpus

__all__ = ["pss_corpus"]
