"""HTML report: well-formed, self-contained, escaped, and carrying the counts and sections."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.findings import Finding, Location
from kubeward.formats import html, render

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "formats"))
import formats_reports as reports

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class TreeChecker(HTMLParser):
    """Checks every non-void element is closed in order, and collects attributes and text by element id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.ids: dict[str, str] = {}
        self._capture: list[str] = []
        self.script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        self.attrs.append((tag, d))
        if tag not in VOID:
            self.stack.append(tag)
            self._capture.append(d.get("id") or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs.append((tag, dict(attrs)))  # SVG self-closing elements

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()
        self._capture.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "script":
            self.script_text.append(data)
        for ident in self._capture:
            if ident:
                self.ids[ident] = self.ids.get(ident, "") + data


def check(report: reports.Report) -> tuple[str, TreeChecker]:
    text = render(report, "html", color=False)
    parser = TreeChecker()
    parser.feed(text)
    parser.close()
    assert text.startswith("<!DOCTYPE html>")
    assert not parser.problems, parser.problems[:3]
    assert parser.stack == [], parser.stack
    return text, parser


def test_well_formed_with_counts() -> None:
    report = reports.edge_report()
    text, p = check(report)
    assert p.ids["kw-objects"].strip() == "4"
    assert p.ids["kw-findings"].strip() == "6"
    assert p.ids["kw-suppressed"].strip() == "2"
    assert p.ids["kw-errors"].strip() == "1"
    assert p.ids["kw-notassessed"].strip() == "1"
    for sev, n in report.by_severity().items():
        assert re.search(rf'data-count="{sev}">{n}<', text), sev
    # one collapsible group per failing control, in severity order
    groups = [a["data-control"] for t, a in p.attrs if t == "details"]
    assert groups == ["T-CRIT", "T-HIGH", "T-MED", "T-LOW", "T-INFO"]
    rows = [a for t, a in p.attrs if t == "tr" and "data-text" in a]
    assert len(rows) == len(report.findings)


def test_hostile_object_name_is_escaped() -> None:
    text, p = check(reports.edge_report())
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text
    assert len(p.script_text) == 1  # only the report's own inline filter script
    assert "alert" not in "".join(p.script_text)


def test_self_contained_no_external_urls() -> None:
    text, p = check(reports.pipeline_report())
    for tag, attrs in p.attrs:
        for key in ("src", "href", "xlink:href", "action", "poster"):
            assert key not in attrs, (tag, key)
    assert not re.search(r"url\(|@import|https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text)
    csp = next(a["content"] for t, a in p.attrs if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and "default-src 'none'" in csp


def test_sections_for_suppressed_not_assessed_expired_and_errors() -> None:
    text, _p = check(reports.edge_report())
    for section in ("suppressed", "not-assessed", "expired", "errors"):
        assert f'id="{section}"' in text
    assert "NOT ASSESSED" in text and "403 Forbidden" in text
    assert "annotation: needs host network for metrics" in text
    assert "deploy/broken.yaml" in text
    assert "cluster:prod-eu" in text


def test_charts_are_inline_svg() -> None:
    report = reports.edge_report()
    _text, p = check(report)
    svgs = [a for t, a in p.attrs if t == "svg"]
    assert {a.get("id") for a in svgs} >= {"severity-chart", "framework-chart"}
    # one donut slice per non-empty severity, slices add up to the whole ring
    slices = html.severity_slices(report)
    assert abs(sum(s.dash for s in slices) - html.DONUT_C) < 0.01
    assert len([s for s in slices if s.count]) == 5
    # framework bars: width is score x 4 (400 px = 100 %)
    scores = report.framework_scores()
    widths = [float(a["width"]) for t, a in p.attrs if t == "rect" and a.get("fill") not in ("#e9edf3",) and a.get("x") == "90"]
    assert widths == [round(s * 4, 1) for s in scores.values()]


def test_empty_clean_and_errors_only() -> None:
    text, _ = check(reports.empty_report())
    assert "Nothing was scanned." in text
    assert "No control judged any object." in text
    text, _ = check(reports.clean_report())
    assert "No findings." in text
    text, p = check(reports.errors_only_report())
    assert p.ids["kw-errors"].strip() == "3"
    assert "JSON document is not an object" in text


def test_location_without_file_or_cluster_shows_dash() -> None:
    report = reports.clean_report()
    report.findings.append(Finding(reports.CRIT, reports.ref("x"), Location(), "", "m"))
    text, _ = check(report)
    assert '<td class="mono">-</td>' in text


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_any_user_text_stays_inside_its_cell(text: str) -> None:
    report = reports.clean_report()
    report.findings.append(Finding(reports.CRIT, reports.ref("n" + text), Location(f"{text}.yaml", 1), "/p", text))
    _out, p = check(report)
    assert len([a for t, a in p.attrs if t == "tr" and "data-text" in a]) == 1
    assert len(p.script_text) == 1


def test_large_reports_list_capped_rows_but_exact_counts() -> None:
    n = html.CAP_ABOVE + 10
    report = reports.big_report(n)
    text, p = check(report)
    rows = [a for t, a in p.attrs if t == "tr" and "data-text" in a]
    assert len(rows) == 5 * html.CAPPED_ROWS
    assert p.ids["kw-findings"].strip() == str(n)
    assert p.ids["kw-shown"].strip() == str(5 * html.CAPPED_ROWS)
    assert f"of {n})" in text
    assert f"and {n // 5 - html.CAPPED_ROWS} more findings for this control" in text
    assert f"{n // 5} findings" in text  # the group header counts all of them


def test_explicit_max_rows() -> None:
    text, p = check_with(reports.big_report(40), max_rows=3)
    assert len([a for t, a in p.attrs if t == "tr" and "data-text" in a]) == 15
    assert "and 5 more findings for this control" in text


def check_with(report: reports.Report, **opts: object) -> tuple[str, TreeChecker]:
    text = html.render(report, **opts)
    parser = TreeChecker()
    parser.feed(text)
    parser.close()
    assert not parser.problems and parser.stack == []
    return text, parser
