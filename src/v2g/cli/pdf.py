"""HTML to PDF with headless Chromium: the page prints exactly as a browser shows it (inline SVG,
CSS print rules, A4 from the page's ``@page``).

Chromium is a Debian package on every machine the platform runs on (CI installs it for the
browser tests too); Python PDF libraries either need system libraries of their own (WeasyPrint:
Pango) or do not draw inline SVG (xhtml2pdf), so the statement's chart would be lost.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class PdfError(RuntimeError):
    """No browser, or the browser did not print the page; the message says what to do."""


def find_chromium() -> str:
    """The browser to print with: ``V2G_CHROMIUM`` when set, else the first one on the PATH."""
    explicit = os.environ.get("V2G_CHROMIUM")
    if explicit:
        return explicit
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    msg = "a PDF needs headless Chromium (apt-get install chromium, or set V2G_CHROMIUM); or write .html"
    raise PdfError(msg)


def html_to_pdf(html: str, out: Path, *, timeout_s: float = 120.0) -> None:
    """Print ``html`` to ``out`` as PDF."""
    browser = find_chromium()
    with tempfile.TemporaryDirectory(prefix="v2g-pdf-") as work:
        page = Path(work) / "page.html"
        page.write_text(html, encoding="utf-8")
        target = Path(work) / "page.pdf"
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-pdf-header-footer",
            f"--user-data-dir={Path(work) / 'profile'}",
            f"--print-to-pdf={target}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            msg = f"{browser} did not print the page: {exc}"
            raise PdfError(msg) from exc
        if not target.is_file() or target.read_bytes()[:5] != b"%PDF-":
            msg = f"{browser} did not print the page (exit {done.returncode}): {done.stderr.strip()[-400:]}"
            raise PdfError(msg)
        out.write_bytes(target.read_bytes())
