"""Pod Security Standards, evaluated exactly as pod-security-admission does, offline, for every level and version.

Pure library (no CLI imports): compile an `Evaluator` once per level/version, evaluate many pods.

    >>> from kubeward.engines.pss import evaluate
    >>> evaluate({"spec": {"containers": [{"name": "c", "securityContext": {"privileged": True}}]}}, "baseline").message
    'privileged (container "c" must not set securityContext.privileged=true)'
"""

from .pod import PodInput
from .registry import (
    CHECKS,
    CHECKS_BY_ID,
    Check,
    Evaluator,
    Result,
    VersionedCheck,
    Violation,
    checks_at,
    evaluate,
)
from .versions import (
    LATEST,
    MAX_MINOR,
    Level,
    PolicyError,
    Version,
    parse_level,
    parse_level_version,
    parse_version,
)

__all__ = [
    "CHECKS", "CHECKS_BY_ID", "LATEST", "MAX_MINOR", "Check", "Evaluator", "Level", "PodInput", "PolicyError",
    "Result", "Version", "VersionedCheck", "Violation", "checks_at", "evaluate", "parse_level", "parse_level_version",
    "parse_version",
]
