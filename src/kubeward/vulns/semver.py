"""Semantic Versioning 2.0.0 (https://semver.org/), the ordering OSV's SEMVER ranges use.

Precedence (semver.org §11): major, minor, patch numerically; a pre-release is lower than its release; pre-release
identifiers compare left to right, numeric ones numerically, alphanumeric ones in ASCII order, numeric below
alphanumeric, and a longer list is higher when the shorter one is its prefix. Build metadata never counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# semver.org's recommended regular expression, less its named groups; no leading "v", no leading zeros.
_NUM = r"0|[1-9][0-9]*"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(rf"({_NUM})\.({_NUM})\.({_NUM})(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?")
MAX_LEN = 256  # longer strings are not versions anyone writes; refusing them bounds the work per comparison


class SemverError(ValueError):
    """Not a SemVer 2.0.0 version."""


@dataclass(frozen=True, slots=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""
    key: tuple[object, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        # A release sorts above every pre-release of it: (1,) > (0, ...). Identifiers: (0, n) numeric < (1, s).
        pre: tuple[object, ...] = (1,) if not self.prerelease else (0, tuple(
            (0, int(p)) if p.isdigit() else (1, p) for p in self.prerelease))
        object.__setattr__(self, "key", (self.major, self.minor, self.patch, pre))

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    def __le__(self, other: Version) -> bool:
        return self.key <= other.key

    def __gt__(self, other: Version) -> bool:
        return self.key > other.key

    def __ge__(self, other: Version) -> bool:
        return self.key >= other.key

    def same_precedence(self, other: Version) -> bool:
        """Equal in SemVer's ordering (build metadata ignored); `==` also compares the build."""
        return self.key == other.key

    @property
    def release(self) -> Version:
        return Version(self.major, self.minor, self.patch)

    def __str__(self) -> str:
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            s += "-" + ".".join(self.prerelease)
        return s + (f"+{self.build}" if self.build else "")


def parse(text: str) -> Version:
    if len(text) > MAX_LEN:
        raise SemverError(f"{text[:40]}…: longer than {MAX_LEN} characters")
    m = _SEMVER.fullmatch(text)
    if m is None:
        raise SemverError(f"{text!r} is not a SemVer 2.0.0 version")
    pre = tuple(m.group(4).split(".")) if m.group(4) else ()
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, m.group(5) or "")


ZERO = Version(0, 0, 0, ("0",))  # below every version: OSV's `introduced: "0"`
