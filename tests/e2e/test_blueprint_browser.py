"""The rendered swimlane page in a real headless Chromium: a screenshot and the DOM."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from v2g.blueprint import load_blueprint
from v2g.blueprint.render import render_html
from v2g.config import BLUEPRINTS_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTH, HEIGHT = 1600, 1000


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("V2G_REQUIRE_BROWSER") == "1":
        pytest.fail("headless Chromium is required (V2G_REQUIRE_BROWSER=1) but not installed: apt-get install chromium")
    pytest.skip("headless Chromium not installed (Debian package 'chromium')")


def _run(
    chromium: str, profile: Path, *args: str, size: tuple[int, int] = (WIDTH, HEIGHT)
) -> subprocess.CompletedProcess[str]:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and raw pixel rows of an 8-bit, non-interlaced RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), (depth, interlace)
    assert colour in (2, 6), colour
    bpp = 4 if colour == 6 else 3
    raw, stride = zlib.decompress(idat), width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up, up_left = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i : i + 3]) for r in rows for i in range(0, stride, bpp * 7)]


def test_swimlane_page_in_headless_chromium(tmp_path: Path, test_output: Path) -> None:
    chromium = _chromium()
    page = test_output / "blueprint-sweden-private-ev.html"
    page.write_text(render_html(load_blueprint(BLUEPRINTS_DIR / "sweden-private-ev.yaml")), encoding="utf-8")
    shot = test_output / "blueprint-sweden-private-ev.png"
    shot.unlink(missing_ok=True)

    result = _run(chromium, tmp_path / "profile", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    width, height, pixels = _decode_png(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    colours = set(pixels)
    assert len(colours) > 20, f"screenshot looks blank: {len(colours)} colours"
    # the lane colours of the page are on screen: customer (yellow) and frontstage (blue) backgrounds
    assert bytes.fromhex("fff4d6") in colours
    assert bytes.fromhex("e3f2fd") in colours

    dom = _run(chromium, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for name in (
        "Awareness &amp; Interest",
        "Selection &amp; Request",
        "Decision &amp; Contracting",
        "Installation Preparation",
        "Installation &amp; Onboarding",
        "Test Pre-qualification",
        "Usage",
        "Engagement",
        "Termination",
    ):
        assert f'<span class="name">{name}</span>' in html, name
    assert html.count(' data-stage="') == 9
    assert 'id="line-of-visibility"' in html
    assert "line of visibility" in html

    # printable: the print stylesheet lays the blueprint out on A3 landscape pages
    pdf = test_output / "blueprint-sweden-private-ev.pdf"
    pdf.unlink(missing_ok=True)
    _run(chromium, tmp_path / "profile-pdf", "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
    document = pdf.read_bytes()
    assert document.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", document))
    assert 1 <= pages <= 6, pages
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)", document)
    assert box is not None
    assert float(box.group(1)) > float(box.group(2))  # landscape

    # the whole page in one tall image, for people to look at after the run (not asserted on)
    _run(chromium, tmp_path / "profile-full", f"--screenshot={test_output / 'blueprint-full.png'}", page.as_uri(),
         size=(WIDTH, 4200))  # fmt: skip
