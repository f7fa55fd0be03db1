"""PSA's own configuration: defaults for unlabelled namespaces and exemptions, as the apiserver reads them.

Upstream: pod-security-admission/admission/api/types.go (PodSecurityConfiguration), admission/api/v1/defaults.go
(an empty level means privileged, an empty version latest) and admission/api/validation (levels and versions must
parse). The file is either a PodSecurityConfiguration or an apiserver AdmissionConfiguration whose `PodSecurity`
plugin carries it inline (`configuration:`) or by `path:` (relative to the AdmissionConfiguration file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .namespaces import DEFAULT_POLICY, MODES, LevelVersion, Policy
from .versions import PolicyError, parse_level, parse_version

PSA_GROUP = "pod-security.admission.config.k8s.io/"
PSA_VERSIONS = ("v1", "v1beta1", "v1alpha1")


class ConfigError(ValueError):
    """A configuration the apiserver would refuse to start with."""


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    defaults: Policy = DEFAULT_POLICY
    exempt_namespaces: frozenset[str] = field(default_factory=frozenset)
    exempt_runtime_classes: frozenset[str] = field(default_factory=frozenset)
    exempt_usernames: frozenset[str] = field(default_factory=frozenset)


def parse_config(doc: Any, base: Path | None = None, _depth: int = 0) -> AdmissionConfig:
    """From a decoded document (PodSecurityConfiguration or AdmissionConfiguration)."""
    if not isinstance(doc, dict):
        raise ConfigError("not a PodSecurityConfiguration or AdmissionConfiguration")
    kind, api = doc.get("kind"), str(doc.get("apiVersion", ""))
    if kind == "AdmissionConfiguration":
        if _depth:
            raise ConfigError("an AdmissionConfiguration's PodSecurity path must name a PodSecurityConfiguration")
        plugins = [p for p in doc.get("plugins") or () if isinstance(p, dict) and p.get("name") == "PodSecurity"]
        if not plugins:
            raise ConfigError("AdmissionConfiguration has no PodSecurity plugin")
        plugin = plugins[0]
        if isinstance(plugin.get("configuration"), dict):
            return parse_config(plugin["configuration"], base, _depth + 1)
        if isinstance(plugin.get("path"), str):
            return load_config((base or Path(".")) / plugin["path"], _depth + 1)
        raise ConfigError("PodSecurity plugin has neither configuration nor path")
    if kind != "PodSecurityConfiguration" or not api.startswith(PSA_GROUP) or api[len(PSA_GROUP):] not in PSA_VERSIONS:
        raise ConfigError(f"unsupported kind/apiVersion {kind}/{api} (want PodSecurityConfiguration, "
                          f"{PSA_GROUP}v1)")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError("defaults: must be a mapping")
    modes = {}
    for mode in MODES:
        level, version = defaults.get(mode) or "privileged", defaults.get(f"{mode}-version") or "latest"
        try:
            modes[mode] = LevelVersion(parse_level(str(level)), parse_version(str(version)))
        except PolicyError as exc:
            raise ConfigError(f"defaults.{mode}: {exc}") from None
    exemptions = doc.get("exemptions") or {}
    if not isinstance(exemptions, dict):
        raise ConfigError("exemptions: must be a mapping")

    def names(key: str) -> frozenset[str]:
        value = exemptions.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"exemptions.{key}: must be a list of non-empty names")
        return frozenset(value)

    return AdmissionConfig(Policy(**modes), names("namespaces"), names("runtimeClasses"), names("usernames"))


def load_config(path: Path, _depth: int = 0) -> AdmissionConfig:
    from ...sources.files import ConfigFileError, load_config_document

    try:
        doc = load_config_document(str(path))  # the manifest loader's guards, YAML as the apiserver reads it
    except ConfigFileError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return parse_config(doc, path.parent, _depth)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
