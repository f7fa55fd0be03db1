"""The checks of `encryption check` (and, through `check_file`, node check 1.2.28): an EncryptionConfiguration
validated as the apiserver validates it, then judged on whether it really encrypts the resources that matter.

Each check receives the parsed config (engines/encryption.py) and the resources that must be encrypted, and
yields (JSON pointer, message); `check_loaded` makes the findings of one file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..engines.encryption import KIND, EncryptionConfig, parse, weaknesses
from ..findings import ControlResult, Finding, InputError, ObjectRef, Report
from .registry import Control, Shape, control, meta_of, registered

Hit = tuple[str, str]


@control("KW-ENC-001", "EncryptionConfiguration is invalid (the apiserver refuses to start)", "high", "encryption",
         frameworks=("cis-1.2.27",), shape=Shape.ENCRYPTION,
         remediation="Fix the field named in the message; see `kubeward encryption generate` for a valid file.")
def invalid(cfg: EncryptionConfig, resources: tuple[str, ...]) -> Iterator[Hit]:
    """The file passes the apiserver's validation: one provider per list element, AES keys of 16, 24 or 32 bytes
    and secretbox keys of 32, named base64 secrets, resource names the apiserver accepts without overlaps, KMS
    with a name, a unix endpoint and a positive timeout. An invalid file keeps the apiserver from starting.
    Upstream: staging/src/k8s.io/apiserver/pkg/apis/apiserver/validation/validation_encryption.go."""
    for p in cfg.errors:
        yield p.path, p.message


@control("KW-ENC-002", "Secrets are not encrypted at rest", "high", "encryption",
         frameworks=("nsa", "cis-1.2.27", "cis-1.2.28"), shape=Shape.ENCRYPTION,
         remediation="List secrets with an encrypting provider (kms v2, secretbox, aesgcm) before identity.")
def plaintext(cfg: EncryptionConfig, resources: tuple[str, ...]) -> Iterator[Hit]:
    """Each resource that must be encrypted (secrets by default) is listed, and the first provider of its entry
    encrypts: the first provider writes, so identity first stores new values in plaintext although the file is
    set. Upstream: staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go (the first entry
    naming a resource wins, then `*.<group>`, then `*.*`)."""
    if not cfg.errors:
        yield from ((p.path, p.message) for p in weaknesses(cfg, resources) if not p.weak)


@control("KW-ENC-003", "Weak or deprecated encryption provider", "low", "encryption", frameworks=("cis-1.2.28",),
         shape=Shape.ENCRYPTION, remediation="Prefer KMS v2 (or secretbox/aesgcm with regular key rotation).")
def weak(cfg: EncryptionConfig, resources: tuple[str, ...]) -> Iterator[Hit]:
    """The first provider of a resource that must be encrypted is neither aescbc (no longer recommended upstream:
    open to padding-oracle attacks) nor KMS v1 (deprecated in favour of KMS v2). Upstream: the Encrypting
    Confidential Data at Rest task (kubernetes.io/docs/tasks/administer-cluster/encrypt-data/)."""
    if not cfg.errors:
        yield from ((p.path, p.message) for p in weaknesses(cfg, resources) if p.weak)


INVALID, PLAINTEXT, WEAK = meta_of("KW-ENC-001"), meta_of("KW-ENC-002"), meta_of("KW-ENC-003")


def encryption_checks() -> dict[str, Control]:
    """The checks of `encryption check`, by id."""
    return registered(Shape.ENCRYPTION)


def check_file(path: str, resources: tuple[str, ...] = ("secrets",),
               controls: list[Control] | None = None) -> Report:
    """Findings for one EncryptionConfiguration file (also used by `node check`)."""
    from ..sources.files import load_paths

    return check_loaded(path, load_paths([path]), resources, controls)


def check_loaded(path: str, loaded: Any, resources: tuple[str, ...] = ("secrets",),
                 controls: list[Control] | None = None) -> Report:
    """check_file on a file already read (`encryption check` reads it once: FILE may be stdin)."""
    chosen = list(encryption_checks().values()) if controls is None else controls
    report = Report(objects=0, findings=[], errors=list(loaded.errors),
                    controls={c.meta.id: ControlResult(c.meta) for c in chosen})
    docs = [r for r in loaded.resources if r.kind == KIND] or loaded.resources[:1]
    for res in docs:
        report.objects += 1
        cfg = parse(res.obj)
        ref = ObjectRef(res.api_version, res.kind, None, Path(path).name)
        for c in chosen:
            hits = list(c.func(cfg, resources))
            report.findings += [Finding(c.meta, ref, res.location(p), p, message) for p, message in hits]
            report.controls[c.meta.id].evaluated += 1
            report.controls[c.meta.id].failed += bool(hits)
    if not loaded.resources and not loaded.errors:
        report.errors.append(InputError(path, "no EncryptionConfiguration document"))
    return report
