"""CVSS v3.x base score from a vector string (FIRST CVSS v3.1 specification, section 7.1 and 7.4 Roundup, and the
qualitative severity scale of section 5), so a CVE finding gets the severity its record gives."""

from __future__ import annotations

import math

from ..findings import Severity

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_U = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_C = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}
BASE = ("AV", "AC", "PR", "UI", "S", "C", "I", "A")


class CVSSError(ValueError):
    pass


def _roundup(x: float) -> float:
    """Section 7.4: the smallest one-decimal number >= x, computed on integers to avoid float artefacts."""
    i = round(x * 100000)
    return i / 100000.0 if i % 10000 == 0 else (math.floor(i / 10000) + 1) / 10.0


def base_score(vector: str) -> float:
    parts = vector.split("/")
    if not parts or parts[0] not in ("CVSS:3.0", "CVSS:3.1"):
        raise CVSSError(f"{vector!r}: not a CVSS v3.0/v3.1 vector")
    m: dict[str, str] = {}
    for p in parts[1:]:
        k, _, v = p.partition(":")
        if k in m:
            raise CVSSError(f"{vector!r}: {k} given twice")
        m[k] = v
    try:
        scope_changed = {"U": False, "C": True}[m["S"]]
        iss = 1 - (1 - _CIA[m["C"]]) * (1 - _CIA[m["I"]]) * (1 - _CIA[m["A"]])
        pr = (_PR_C if scope_changed else _PR_U)[m["PR"]]
        exploitability = 8.22 * _AV[m["AV"]] * _AC[m["AC"]] * pr * _UI[m["UI"]]
    except KeyError as exc:
        raise CVSSError(f"{vector!r}: missing or unknown base metric {exc.args[0]}") from None
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if scope_changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    total = 1.08 * (impact + exploitability) if scope_changed else impact + exploitability
    return _roundup(min(total, 10.0))


def severity(score: float) -> Severity:
    """Section 5: 0.1-3.9 low, 4.0-6.9 medium, 7.0-8.9 high, 9.0-10.0 critical (0.0 'none' shows as info)."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.INFO
