"""Every control id kubeward has, in one place: the registry's checks of every shape (scan's and the standalone
commands': node, PKI, encryption, etcd, audit policy) and the component-version notes of `vulns`/`versions`,
whose ids are their data's.

The exceptions file and `kubeward.io/ignore` are validated against it, and `kubeward controls` lists it.
Imported lazily: the PKI checks pull in `cryptography`.
"""

from __future__ import annotations

import functools

from ..findings import ControlMeta
from .registry import every_control


def vulns_metas() -> list[ControlMeta]:
    """The notes `vulns` and `versions` report (the CVE ids of `vulns` are its data's, not here)."""
    from ..vulns.report import DATA_DATE, DATA_STALE, UNRANGED
    from ..vulns.skew import SKEW_CONTROLS
    from ..vulns.support import SUPPORT_CONTROLS
    from ..vulns.versions import VERSION_FOUND

    return [DATA_DATE, DATA_STALE, UNRANGED, *SKEW_CONTROLS, *SUPPORT_CONTROLS, VERSION_FOUND]


@functools.cache
def known_control_ids() -> frozenset[str]:
    """The ids of every check kubeward has: every registered control and the vulns notes (retired ids, which name
    their successors, are in `registry.aliases()`)."""
    return frozenset(every_control()) | {m.id for m in vulns_metas()}
