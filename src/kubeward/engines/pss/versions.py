"""Policy levels and versions with PSA's parsing rules.

Upstream: staging/src/k8s.io/pod-security-admission/api/helpers.go (ParseLevel, ParseVersion, Older,
CompareLevels) and api/constants.go (level names, namespace label keys).
"""

from __future__ import annotations

from enum import Enum

from ...lazyre import lazy
from ...records import record

# The newest MinimumVersion any implemented check registers (sysctls gains v1.37). `latest` resolves to it, and
# every newer v1.N is clamped down to it, as registry.go EvaluatePod does with r.maxVersion.
MAX_MINOR = 37


class Level(Enum):
    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"

    @property
    def rank(self) -> int:
        """Strictness order of api.CompareLevels: privileged < baseline < restricted."""
        return _RANK[self]

    def stricter(self) -> Level | None:
        """The next stricter level, None above restricted (for upgrade planning)."""
        return {Level.PRIVILEGED: Level.BASELINE, Level.BASELINE: Level.RESTRICTED}.get(self)


_RANK = {Level.PRIVILEGED: 0, Level.BASELINE: 1, Level.RESTRICTED: 2}

# api/helpers.go versionRegexp: "v1." then a minor without a leading zero (a bare "0" is allowed).
_VERSION_RE = lazy(r"v1\.([0-9]|[1-9][0-9]*)")


class PolicyError(ValueError):
    """A level or version string PSA would reject."""


@record(frozen=True, order=True)
class Version:
    """A policy version: v1.<minor>, or `latest` (newer than everything, api.Version.Older)."""

    minor: int
    latest: bool = False

    @property
    def effective_minor(self) -> int:
        """The minor whose checks apply: latest and anything newer clamp to MAX_MINOR."""
        return MAX_MINOR if self.latest else min(self.minor, MAX_MINOR)

    def __str__(self) -> str:
        return "latest" if self.latest else f"v1.{self.minor}"


LATEST = Version(MAX_MINOR, latest=True)


def parse_level(text: str) -> Level:
    """Exactly `privileged`, `baseline` or `restricted` (case-sensitive, as api.ParseLevel)."""
    try:
        return Level(text)
    except ValueError:
        raise PolicyError(f"invalid level {text!r}: must be one of privileged, baseline, restricted") from None


def parse_version(text: str) -> Version:
    """`latest` or `v1.<minor>` (api.ParseVersion; "v1.01" and "1.25" are rejected)."""
    if text == "latest":
        return LATEST
    m = _VERSION_RE.fullmatch(text)
    if m is None:
        raise PolicyError(f'invalid version {text!r}: must be "latest" or "v1.x"')
    return Version(int(m.group(1)))


def parse_level_version(level: str, version: str = "latest") -> tuple[Level, Version]:
    return parse_level(level), parse_version(version)
