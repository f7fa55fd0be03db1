"""Render the HTML report in headless Chromium and check the screenshot shows a real page, charts included."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import pytest

from kubeward.formats import render

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "formats"))
import formats_reports as reports

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 1280, 1600
BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Minimal PNG reader (8-bit RGB/RGBA, not interlaced): returns width, height and RGB(A) rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    bpp = 4 if colour_type == 6 else 3
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        base = y * (stride + 1)
        ftype, line = raw[base], bytearray(raw[base + 1:base + 1 + stride])
        if ftype == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif ftype == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(v for j, v in enumerate(line) if j % 4 != 3))
        prev = line
    return width, height, rows


def screenshot(html_file: Path, png: Path, profile: Path) -> bytes:
    if BROWSER is None:
        pytest.skip("no chromium binary on PATH (apt-get install -y chromium)")
    cmd = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}",
        "--hide-scrollbars", "--force-device-scale-factor=1", html_file.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert png.is_file(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-500:]!r}"
    return png.read_bytes()


def near(pixel: tuple[int, int, int], hex_colour: str, tol: int = 10) -> bool:
    want = bytes.fromhex(hex_colour.lstrip("#"))
    return all(abs(a - b) <= tol for a, b in zip(pixel, want, strict=True))


@pytest.mark.parametrize("build", [reports.edge_report, reports.pipeline_report])
def test_screenshot_is_a_rendered_report(build, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(build(), "html"), encoding="utf-8")
    png = tmp_path / "shot.png"
    width, height, rows = decode_png(screenshot(page, png, tmp_path / "profile"))
    assert (width, height) == (WIDTH, HEIGHT)

    pixels = Counter()
    for row in rows[::4]:
        for x in range(0, width * 3, 12):
            pixels[(row[x], row[x + 1], row[x + 2])] += 1
    total = sum(pixels.values())
    commonest, count = pixels.most_common(1)[0]
    assert count / total < 0.9, f"page is mostly one colour {commonest}"
    assert len(pixels) > 50, "too few colours for a rendered report"

    # the header band is the brand navy, the page below is the light background
    header = rows[20]
    assert near((header[30], header[31], header[32]), "#1b3a5c")
    assert any(near(p, "#f5f7fa", 2) for p in pixels)

    # the severity donut was painted: its critical slice colour appears in the chart area
    chart = [(r[x], r[x + 1], r[x + 2]) for r in rows[250:600] for x in range(0, 700 * 3, 3)]
    assert sum(near(p, "#b42318", 12) for p in chart) > 200, "no critical slice in the severity chart"


def test_decoder_reads_a_known_image() -> None:
    """The PNG reader itself: a 2x2 RGB image with Sub and Up filters."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = bytes([1, 10, 20, 30, 5, 5, 5]) + bytes([2, 1, 1, 1, 0, 0, 0])
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    w, h, rows = decode_png(png)
    assert (w, h) == (2, 2)
    assert rows == [bytes([10, 20, 30, 15, 25, 35]), bytes([11, 21, 31, 15, 25, 35])]


def test_filters_from_url_fragment_hide_rows(tmp_path: Path) -> None:
    """The inline script runs under the page's CSP and applies #sev=…&q=… filters."""
    if BROWSER is None:
        pytest.skip("no chromium binary on PATH (apt-get install -y chromium)")
    page = tmp_path / "report.html"
    page.write_text(render(reports.edge_report(), "html"), encoding="utf-8")
    cmd = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom",
        page.as_uri() + "#sev=critical,high&q=web",
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    dom = proc.stdout.decode("utf-8", "replace")
    assert 'id="kw-shown">2<' in dom, dom[:300]
    shown = re.findall(r'<details class="control( hidden)?"[^>]*data-control="([^"]+)"', dom)
    assert [cid for hidden, cid in shown if not hidden] == ["T-CRIT", "T-HIGH"]
    assert [cid for hidden, cid in shown if hidden] == ["T-MED", "T-LOW", "T-INFO"]
