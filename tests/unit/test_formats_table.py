"""Table output: grouped by control in severity order, summary and scores, no ANSI codes unless asked."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from kubeward.findings import Finding, Location
from kubeward.formats import render, table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "formats"))
import formats_reports as reports

ANSI = re.compile(r"\x1b\[")


def test_plain_has_no_ansi_and_colour_has() -> None:
    report = reports.edge_report()
    plain = render(report, "table", color=False)
    coloured = render(report, "table", color=True)
    assert not ANSI.search(plain)
    assert ANSI.search(coloured)
    # the same words are there either way
    stripped = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    for word in ("T-CRIT", "Summary", "NOT ASSESSED"):
        assert word in plain and word in stripped


def test_grouped_by_control_in_severity_order() -> None:
    out = table.render(reports.edge_report(), width=120)
    positions = [out.index(f" {cid} ") for cid in ("T-CRIT", "T-HIGH", "T-MED", "T-LOW", "T-INFO")]
    assert positions == sorted(positions)
    assert "deploy/web.yaml:12" in out
    assert "cluster:prod-eu" in out
    assert 'container "a" runs privileged' in out
    assert "Fix: Fix T-CRIT." in out


def test_summary_counts_and_explicit_not_assessed() -> None:
    out = table.render(reports.edge_report(), width=120)
    summary = out[out.index("Summary"):]
    assert re.search(r"Objects scanned\s+4\b", summary)
    assert re.search(r"Findings\s+6\s+\(critical 2\s+high 1\s+medium 1\s+low 1\s+info 1\)", summary)
    assert re.search(r"Suppressed\s+2\b", summary)
    assert re.search(r"Input errors\s+1\b", summary)
    assert re.search(r"NOT ASSESSED\s+rbac.authorization.k8s.io/ClusterRoleBinding: 403 Forbidden", summary)
    assert "Expired exception" in summary and "controls=T-LOW" in summary
    assert re.search(r"Types read\s+12 of 14", summary)


def test_framework_scores_shown() -> None:
    report = reports.edge_report()
    out = table.render(report, width=120)
    for fw, score in report.framework_scores().items():
        assert re.search(rf"(Compliance|  ) .*\b{fw} {score:.1f}%", out), fw


def test_suppressed_listed_with_reason() -> None:
    out = table.render(reports.edge_report(), width=140)
    assert "Suppressed (2)" in out
    assert "annotation: needs host network for metrics" in out
    assert "capacity is managed by the team quota" in out


def test_markup_in_user_text_is_literal() -> None:
    report = reports.clean_report()
    report.findings.append(
        Finding(reports.CRIT, reports.ref("[bold red]x[/]"), Location("a.yaml", 1), "/p", "msg [link=http://e]y[/link]")
    )
    out = table.render(report, width=160, color=True)
    assert "[bold red]x[/]" in out
    assert "[link=http://e]y[/link]" in out


def test_empty_and_clean() -> None:
    out = table.render(reports.empty_report())
    assert "Findings" not in out.split("Summary")[0]
    assert "Nothing was scanned." in out
    assert re.search(r"Objects scanned\s+0", out)
    clean = table.render(reports.clean_report())
    assert "No findings." in clean
    assert re.search(r"Compliance .*\bnsa 100.0%", clean)


def test_errors_only_lists_each_error() -> None:
    out = table.render(reports.errors_only_report(), width=120)
    assert "Input errors (3)" in out
    for name in ("bad/a.yaml: not UTF-8", "bad/b.json: JSON document is not an object", "-: document 2"):
        assert name in out


def test_large_reports_cap_rows_per_control() -> None:
    report = reports.big_report(table.CAP_ABOVE + 5)
    out = table.render(report, width=120)
    assert out.count("finding number ") == 5 * table.CAPPED_ROWS
    per_control = (table.CAP_ABOVE + 5) // 5
    assert f"… {per_control - table.CAPPED_ROWS} more finding(s) (-o json for all)" in out
    assert re.search(rf"Findings\s+{table.CAP_ABOVE + 5}\b", out)


def test_small_reports_show_every_row_and_explicit_cap_applies() -> None:
    report = reports.big_report(40)
    assert table.render(report, width=120).count("finding number ") == 40
    assert table.render(report, width=120, max_rows=2).count("finding number ") == 10


def test_width_is_respected() -> None:
    out = table.render(reports.edge_report(), width=80)
    assert max(len(line) for line in out.splitlines()) <= 80


def test_terminal_control_characters_from_manifests_are_escaped() -> None:
    """A container name carrying ESC or CR must not reach the terminal raw (screen rewriting)."""
    report = reports.clean_report()
    evil = "x\x1b[2J\x1b]0;pwned\x07\rfake"
    report.findings.append(Finding(reports.CRIT, reports.ref(evil), Location("a.yaml", 1), "/p", f"msg {evil}"))
    for color in (False, True):
        out = table.render(report, width=200, color=color)
        assert "\x07" not in out and "\r" not in out and "[2J" not in out.replace("\\x1b[2J", "")
        assert "x\\x1b[2J\\x1b]0;pwned\\x07\\x0dfake" in re.sub(r"\x1b\[[0-9;]*m", "", out)
