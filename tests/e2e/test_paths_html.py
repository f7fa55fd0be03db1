"""The attack-path HTML view in headless Chromium: the graph is painted (the screenshot shows the node colours and a
highlighted path) and the inline script, under the page's CSP, highlights the path `#path=N` names."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from test_html_render import BROWSER, decode_png, near

from kubeward.formats.paths_html import render_html
from kubeward.paths import analyze
from kubeward.scan import load

pytestmark = pytest.mark.e2e
WORLDS = Path(__file__).resolve().parents[1] / "data" / "paths"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _page(tmp: Path) -> Path:
    folder = tmp / "worlds"
    folder.mkdir()
    for w in ("dashboard", "ci-runner", "token-secret", "impersonate"):
        shutil.copy(WORLDS / f"{w}.yaml", folder)
    a = analyze(load([str(folder)]), "internet", "cluster-admin")
    assert len(a.paths) == 4
    page = tmp / "paths.html"
    page.write_text(render_html(a.paths, "internet", a.target, len(a.paths), a.cut().to_json()), encoding="utf-8")
    return page


def test_graph_is_painted_and_a_path_highlighted(tmp_path: Path) -> None:
    if BROWSER is None:
        pytest.skip("no chromium binary on PATH (apt-get install -y chromium)")
    page = _page(tmp_path)
    png = tmp_path / "shot.png"
    subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
                    "--window-size=1280,700", "--hide-scrollbars", "--force-device-scale-factor=1",
                    page.as_uri() + "#path=1"], capture_output=True, timeout=120, check=False)
    assert png.is_file(), "chromium wrote no screenshot"
    width, height, rows = decode_png(png.read_bytes())
    assert (width, height) == (1280, 700)
    graph = [(r[x], r[x + 1], r[x + 2]) for r in rows[150:560] for x in range(0, width * 3, 3)]
    colours = Counter(graph)
    assert len(colours) > 50
    assert near((rows[20][30], rows[20][31], rows[20][32]), "#1b3a5c")  # the header band
    assert sum(near(p, "#b42318", 14) for p in graph) > 500, "no internet node / highlighted edge painted"
    assert sum(near(p, "#7a1010", 14) for p in graph) > 500, "no cluster-admin node painted"
    assert sum(near(p, "#2f6fdb", 14) for p in graph) > 500, "the highlighted pod is not at full colour"


def test_fragment_highlights_the_path(tmp_path: Path) -> None:
    if BROWSER is None:
        pytest.skip("no chromium binary on PATH (apt-get install -y chromium)")
    page = _page(tmp_path)
    proc = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000",
                           "--dump-dom", page.as_uri() + "#path=2"], capture_output=True, timeout=120, check=False)
    dom = proc.stdout.decode("utf-8", "replace")
    assert 'class="graph dim"' in dom
    on_nodes = re.findall(r'<g class="node on" data-paths="[^"]*" data-node="([^"]+)"', dom)
    text = page.read_text()
    second = re.search(r'<tr class="path" data-path="2" id="kw-path-2"><td>2</td><td>\d+</td><td>\d+</td>\n<td>([^\n<]+)', text)
    assert second is not None
    assert sorted(on_nodes) == sorted(n.strip() for n in second.group(1).split("→"))
    assert 'class="path on" data-path="2"' in dom and 'class="steps on" id="kw-steps-2"' in dom


def test_scan_report_shows_the_graph_of_kw_p101(tmp_path: Path) -> None:
    """`scan -o html`: the KW-P101 paths appear as the same interactive graph inside the scan report."""
    if BROWSER is None:
        pytest.skip("no chromium binary on PATH (apt-get install -y chromium)")
    from kubeward.scan import ScanOptions, render, scan

    folder = tmp_path / "worlds"
    folder.mkdir()
    for w in ("dashboard", "token-secret"):
        shutil.copy(WORLDS / f"{w}.yaml", folder)
    report = scan([str(folder)], ScanOptions())
    assert len(report.attack_paths) == 2
    page = tmp_path / "report.html"
    page.write_text(render(report, "html"), encoding="utf-8")
    proc = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000",
                           "--dump-dom", page.as_uri() + "#path=1"], capture_output=True, timeout=120, check=False)
    dom = proc.stdout.decode("utf-8", "replace")
    assert "Attack paths to cluster-admin (2, KW-P101)" in dom and 'class="graph dim"' in dom
    on = re.findall(r'<g class="node on" data-paths="[^"]*" data-node="([^"]+)"', dom)
    assert sorted(on) == sorted(report.attack_paths[0].key)
