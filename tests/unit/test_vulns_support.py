"""Support windows of Kubernetes minors in `kubeward versions` (vulns/support.py, data/k8s-releases.json)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.vulns.support import END_OF_LIFE, MAINTENANCE, SUPPORTED, UNKNOWN, shipped, status

D = dt.date.fromisoformat


@pytest.mark.parametrize(("minor", "today", "meta", "said"), [
    (34, "2026-08-26", SUPPORTED, "maintenance mode from 2026-08-27"),
    (34, "2026-08-27", MAINTENANCE, "end of life 2026-10-27 (released 2025-08-27; 61 days left)"),
    (34, "2026-10-26", MAINTENANCE, "1 days left"),
    (34, "2026-10-27", END_OF_LIFE, "end of life since 2026-10-27"),
    (30, "2025-07-14", MAINTENANCE, "end of life 2025-07-15"),  # the actual end, not the planned 2025-06-28
    (30, "2025-07-15", END_OF_LIFE, "since 2025-07-15"),
    (37, "2026-12-07", SUPPORTED, "released 2026-08-26"),
    (12, "2026-12-07", END_OF_LIFE, "before 1.16"),
    (38, "2026-12-07", UNKNOWN, "newer than the release table (dated 2026-09-15, newest 1.37)"),
])
def test_status_boundaries(minor: int, today: str, meta: object, said: str) -> None:
    got, text = status(shipped(), minor, D(today))
    assert got is meta and said in text


def test_table_is_consistent() -> None:
    t = shipped()
    assert t.date == D("2026-09-15") and "kubernetes.io/releases" in t.source
    assert sorted(t.windows) == list(range(16, 38))
    for w in t.windows.values():
        if w.released and w.maintenance:
            assert w.released < w.maintenance < w.eol
    eols = [t.windows[m].eol for m in sorted(t.windows)]
    assert eols == sorted(eols)


def _versions(*args: str) -> tuple[dict, str]:
    r = CliRunner().invoke(cli, ["versions", *args, "-o", "json", "--fail-on", "none"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout), r.stderr


def test_versions_reports_windows_and_table_date() -> None:
    doc, err = _versions("--version", "1.34.1", "--today", "2026-09-01")
    ids = [f["control"]["id"] for f in doc["findings"]]
    assert ids.count("KW-V021") == 5 and "KW-V024" in ids and "KW-V025" not in ids
    assert "release table: https://kubernetes.io/releases/" in err
    doc, _ = _versions("--version", "1.34.1", "--today", "2027-02-01")  # 139 days after the table
    ids = [f["control"]["id"] for f in doc["findings"]]
    assert ids.count("KW-V022") == 5 and "KW-V025" in ids
    stale = next(f for f in doc["findings"] if f["control"]["id"] == "KW-V025")
    assert "dated 2026-09-15, 139 days before 2027-02-01" in stale["message"]


def test_add_ons_are_not_judged_as_kubernetes_minors(tmp_path: object) -> None:
    from pathlib import Path

    p = Path(str(tmp_path)) / "ing.yaml"
    p.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: ic, namespace: ingress-nginx}\nspec:\n  containers:\n"
                 "  - {name: c, image: registry.k8s.io/ingress-nginx/controller:v1.11.2}\n")
    doc, _ = _versions(str(p), "--today", "2026-12-07")
    ids = [f["control"]["id"] for f in doc["findings"]]
    assert "KW-V100" in ids and not {"KW-V020", "KW-V021", "KW-V022", "KW-V023"} & set(ids)
