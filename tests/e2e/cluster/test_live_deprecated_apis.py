"""The removed/deprecated API table (src/kubeward/data/deprecated_apis.json) against the real apiserver of the
newest supported version: every version the table says is removed is not served, every replacement is."""

from __future__ import annotations

import re
from typing import Any

from kubeward.controls.apis import table
from kubeward.controls.settings import NEWEST_MINOR

_GV = re.compile(r"^(?:[a-z0-9.-]+/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$")


def _kinds_served(admin: Any, group_version: str) -> set[str] | None:
    """Kinds the discovery document of one group/version lists (None: the group/version is not served)."""
    path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    status, doc = admin.json("GET", path)
    if status == 404:
        return None
    assert status == 200, (path, status)
    return {r["kind"] for r in doc.get("resources", ()) if "/" not in r["name"]}


def test_removed_versions_are_not_served_and_replacements_are(admin: Any) -> None:
    checked_removed = checked_replacement = 0
    for (api, kind), entry in sorted(table().items()):
        served = _kinds_served(admin, api)
        if entry.removed_in is not None and entry.removed_in <= (1, NEWEST_MINOR):
            assert served is None or kind not in served, f"{api} {kind} is still served"
            checked_removed += 1
        else:
            assert served is not None and kind in served, f"{api} {kind}: deprecated, not removed, but not served"
        replacement = entry.replacement.split()[0]
        if _GV.match(replacement) and " " not in entry.replacement:
            got = _kinds_served(admin, replacement)
            assert got is not None and kind in got, f"replacement {replacement} does not serve {kind}"
            checked_replacement += 1
    assert checked_removed >= 45 and checked_replacement >= 40
