"""The owner's monthly statement in a real headless Chromium: a screenshot of the page, and the PDF
that `v2g settle statement --out F.pdf` prints (A4 portrait)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.test_blueprint_browser import _chromium, _decode_png, _run
from tests.integration.settlement_support import seed, service
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import upgrade
from v2g.adapters.db.settlement_repo import SqlSettlementSources
from v2g.cli.pdf import html_to_pdf
from v2g.services.settlement.reports import SettlementReports
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.statement import render_statement_html

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _statement_html(tmp_path: Path) -> str:
    engine = make_engine(f"sqlite:///{tmp_path / 'v2g.sqlite3'}")
    try:
        upgrade(engine)
        seed(engine)
        january = SettlementPeriod(2026, 1)
        service(engine).run_period(january, ["ev-1", "ev-2"])
        statement = SettlementReports(service(engine), SqlSettlementSources(engine)).owner_statement("c-1", january)
        return render_statement_html(statement)
    finally:
        engine.dispose()


def test_statement_page_and_pdf_in_headless_chromium(tmp_path: Path, test_output: Path) -> None:
    chromium = _chromium()
    page = test_output / "statement-c-1-2026-01.html"
    page.write_text(_statement_html(tmp_path), encoding="utf-8")
    shot = test_output / "statement-c-1-2026-01.png"
    shot.unlink(missing_ok=True)
    result = _run(chromium, tmp_path / "profile", f"--screenshot={shot}", page.as_uri(), size=(1100, 2600))
    assert shot.is_file(), result.stderr[-2000:]
    width, height, pixels = _decode_png(shot.read_bytes())
    assert (width, height) == (1100, 2600)
    colours = set(pixels)
    assert len(colours) > 20, f"screenshot looks blank: {len(colours)} colours"
    assert bytes.fromhex("2f6fb3") in colours  # the charging bars of the chart are drawn

    dom = _run(chromium, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 1
    assert "Okontrollerad laddning hade kostat" in dom.stdout

    pdf = test_output / "statement-c-1-2026-01.pdf"
    pdf.unlink(missing_ok=True)
    html_to_pdf(page.read_text(encoding="utf-8"), pdf)
    document = pdf.read_bytes()
    assert document.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", document))
    assert 1 <= pages <= 6, pages
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)", document)
    assert box is not None
    assert (round(float(box.group(1))), round(float(box.group(2)))) == (595, 842)  # A4 portrait, in points
