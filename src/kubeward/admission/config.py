"""The admission configuration (`--config admission.yaml`) and the per-namespace modes read from labels.

Modes follow pod-security-admission's (k8s.io/pod-security-admission/api/helpers.go PolicyToEvaluate): a namespace
label `kubeward.io/<mode>: <threshold>` overrides the configured default of that mode. A threshold is a severity
(`critical`, `high`, `medium`, `low`, `info`: findings at or above it) or `none` (the mode is off). As PSA does
with a level it cannot parse, an unparsable enforce value fails closed (the strictest threshold, `info`) and
unparsable warn and audit values fail open (`none`); each is named in the response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..findings import Severity

MODES = ("enforce", "warn", "audit")
LABEL_PREFIX = "kubeward.io/"
NONE = "none"
TOP_KEYS = ("defaults", "exemptions", "allowUnworsenedUpdates", "inlineIgnores", "exceptions", "controls",
            "namespaces")
EXEMPTION_KEYS = ("namespaces", "usernames", "groups")
CONTROL_KEYS = ("include", "exclude")


class ConfigError(ValueError):
    """The admission configuration is unreadable or malformed (exit 2)."""


def parse_threshold(text: Any) -> Severity | None:
    """`none` → None (mode off); a severity name → that severity; anything else raises ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"must be a string: one of critical, high, medium, low, info, {NONE}")
    if text.strip().lower() == NONE:
        return None
    try:
        return Severity.parse(text)
    except ValueError:
        raise ValueError(f"must be one of critical, high, medium, low, info, {NONE}") from None


@dataclass(frozen=True, slots=True)
class Policy:
    """The threshold of each mode for one namespace; None: that mode is off."""

    enforce: Severity | None = Severity.HIGH  # what `scan --fail-on high` fails
    warn: Severity | None = Severity.INFO  # everything below is warned
    audit: Severity | None = Severity.INFO
    errors: tuple[str, ...] = ()  # labels that could not be parsed

    def describe(self) -> str:
        return " ".join(f"{m}={getattr(self, m).label if getattr(self, m) is not None else NONE}" for m in MODES)


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    defaults: Policy = field(default_factory=Policy)
    exempt_namespaces: frozenset[str] = frozenset()
    exempt_usernames: frozenset[str] = frozenset()
    exempt_groups: frozenset[str] = frozenset()
    allow_unworsened_updates: bool = True  # PSA lets updates that change no pod-security field through
    # `kubeward.io/ignore` on the object itself: whoever creates the object could silence the webhook with it, so
    # only the exceptions file (which the cluster's owners control) applies unless this is turned on.
    inline_ignores: bool = False
    exceptions: str | None = None  # an exceptions file, as `scan --exceptions`
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)  # offline namespace labels

    def policy_for(self, labels: dict[str, Any] | None) -> Policy:
        """The namespace's labels over the defaults (PolicyToEvaluate)."""
        d = self.defaults
        values: dict[str, Severity | None] = {"enforce": d.enforce, "warn": d.warn, "audit": d.audit}
        errors: list[str] = []
        for mode in MODES:
            key = LABEL_PREFIX + mode
            if not labels or key not in labels:
                continue
            try:
                values[mode] = parse_threshold(labels[key])
            except ValueError as exc:
                # PSA: enforce fails closed (restricted), warn and audit fail open (privileged).
                values[mode] = Severity.INFO if mode == "enforce" else None
                errors.append(f"{key}={str(labels[key])[:63]!r}: {exc}")
        return Policy(values["enforce"], values["warn"], values["audit"], tuple(errors))


def _check_keys(mapping: dict[Any, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [str(k) for k in mapping if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})")


def _names(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: must be a list of non-empty strings")
    return frozenset(value)


def load_admission_config(path: str | None) -> AdmissionConfig:
    """Read the file through the shared configuration loader (size limit, YAML guards); None: the defaults."""
    if path is None:
        return AdmissionConfig()
    from ..sources.files import load_config

    docs, errors = load_config(path)
    if errors:
        raise ConfigError(f"{errors[0].file}: {errors[0].message}")
    docs = [d for d in docs if d is not None]
    if not docs:
        return AdmissionConfig()
    if len(docs) > 1 or not isinstance(docs[0], dict):
        raise ConfigError(f"{path}: expected one mapping (defaults, exemptions, ...)")
    data: dict[str, Any] = docs[0]
    _check_keys(data, TOP_KEYS, path)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: defaults must be a mapping of enforce/warn/audit to a threshold")
    _check_keys(defaults, MODES, f"{path}: defaults")
    base = Policy()
    values: dict[str, Severity | None] = {m: getattr(base, m) for m in MODES}
    for mode, text in defaults.items():
        try:
            values[mode] = parse_threshold(text)
        except ValueError as exc:
            raise ConfigError(f"{path}: defaults.{mode}: {exc}") from None
    ex = data.get("exemptions") or {}
    if not isinstance(ex, dict):
        raise ConfigError(f"{path}: exemptions must be a mapping")
    _check_keys(ex, EXEMPTION_KEYS, f"{path}: exemptions")
    ctl = data.get("controls") or {}
    if not isinstance(ctl, dict):
        raise ConfigError(f"{path}: controls must be a mapping with include/exclude lists")
    _check_keys(ctl, CONTROL_KEYS, f"{path}: controls")
    upd = data.get("allowUnworsenedUpdates", True)
    if not isinstance(upd, bool):
        raise ConfigError(f"{path}: allowUnworsenedUpdates must be true or false")
    inline = data.get("inlineIgnores", False)
    if not isinstance(inline, bool):
        raise ConfigError(f"{path}: inlineIgnores must be true or false")
    exc_file = data.get("exceptions")
    if exc_file is not None and (not isinstance(exc_file, str) or not exc_file):
        raise ConfigError(f"{path}: exceptions must be the path of an exceptions file")
    nss = data.get("namespaces") or {}
    if not isinstance(nss, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
            for k, v in nss.items()):
        raise ConfigError(f"{path}: namespaces must map namespace names to their labels (strings)")
    return AdmissionConfig(
        defaults=Policy(values["enforce"], values["warn"], values["audit"]),
        exempt_namespaces=_names(ex.get("namespaces"), f"{path}: exemptions.namespaces"),
        exempt_usernames=_names(ex.get("usernames"), f"{path}: exemptions.usernames"),
        exempt_groups=_names(ex.get("groups"), f"{path}: exemptions.groups"),
        allow_unworsened_updates=upd,
        inline_ignores=inline,
        exceptions=str(Path(path).parent / exc_file) if exc_file else None,  # relative to the config file
        include=tuple(sorted(_names(ctl.get("include"), f"{path}: controls.include"))),
        exclude=tuple(sorted(_names(ctl.get("exclude"), f"{path}: controls.exclude"))),
        namespaces={k: dict(v) for k, v in nss.items()},
    )
