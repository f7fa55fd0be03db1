"""Checks that judge something other than snapshot objects: node files, PKI folders, EncryptionConfiguration,
etcd endpoints, audit policies and component versions (vulns, versions).

They keep their own lists next to the code that runs them; this module only gathers their metadata so that
every control id is known in one place: the exceptions file and `kubeward.io/ignore` are validated against it,
and `kubeward controls` lists them. Imported lazily: the PKI checks pull in `cryptography`.
"""

from __future__ import annotations

import functools

from ..findings import ControlMeta


def standalone_controls() -> list[ControlMeta]:
    """Every non-snapshot check, sorted by id."""
    from ..audit import policycheck
    from ..cli.encryption import CONTROLS as ENCRYPTION
    from ..cli.etcd import CONTROLS as ETCD
    from ..controls.node import REGISTRY as NODE
    from ..creds.base import CONTROLS as CREDS
    from ..pki.checks import CONTROLS as PKI
    from ..vulns.report import DATA_DATE, DATA_STALE
    from ..vulns.skew import SKEW_CONTROLS
    from ..vulns.versions import VERSION_FOUND

    audit = [v for v in vars(policycheck).values() if isinstance(v, ControlMeta)]
    vulns = (DATA_DATE, DATA_STALE, *SKEW_CONTROLS, VERSION_FOUND)  # the CVE ids of `vulns` are its data's, not here
    metas = {m.id: m for m in (*[c.meta for c in NODE], *PKI, *CREDS, *ENCRYPTION, *ETCD, *audit, *vulns)}
    return [metas[k] for k in sorted(metas)]


@functools.cache
def known_control_ids() -> frozenset[str]:
    """The ids of every check kubeward has: the scan registry and the standalone checks (retired ids, which name
    their successors, are in `registry.aliases()`)."""
    from .registry import all_controls

    return frozenset(all_controls()) | {m.id for m in standalone_controls()}
