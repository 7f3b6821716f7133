"""An owner's visit to the portal in a real headless Chromium (the system's, driven by Playwright):
sign in, read the value indication, change the charging schedule, read the earnings. Screenshots go
to test-output/, and axe-core audits every page visited for serious accessibility violations."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.e2e.portal_support import PASSWORD, Portal, build_portal
from tests.e2e.test_blueprint_browser import _chromium
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import upgrade
from v2g.services.actors.ports import SYSTEM

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")
axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")

BLOCKING = ("serious", "critical")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Portal, str]]:
    """The portal on a real socket (uvicorn on 127.0.0.1, a free port), over a fresh SQLite database."""
    engine = make_engine(f"sqlite:///{tmp_path / 'v2g.sqlite3'}")
    upgrade(engine)
    portal = build_portal(engine, settle=True)
    server = uvicorn.Server(uvicorn.Config(portal.client.app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the portal did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield portal, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def _audit(page: Any, name: str) -> None:
    """axe-core on the page as shown: no serious or critical violation."""
    result = axe_module.Axe().run(page)
    blocking = [v for v in result.response["violations"] if v.get("impact") in BLOCKING]
    detail = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in blocking]
    assert not blocking, f"{name}: {detail}"


def test_an_owner_signs_in_reads_the_value_changes_the_schedule_and_reads_the_earnings(
    served: tuple[Portal, str], test_output: Path
) -> None:
    portal, base = served
    chromium = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="sv-SE")  # a phone
            page = context.new_page()
            page.goto(base + "/")
            _audit(page, "sign-in page")
            page.keyboard.press("Tab")  # the first stop is the skip link
            assert page.evaluate("document.activeElement.className") == "skip"
            page.get_by_label("Användarnamn").fill("owner-c1")
            page.get_by_label("Lösenord").fill(PASSWORD)
            page.get_by_role("button", name="Logga in").click()
            page.wait_for_url(base + "/owner")
            value = page.locator("#value-range")
            assert "kr per år" in value.inner_text()
            page.screenshot(path=str(test_output / "portal-owner-phone.png"), full_page=True)
            _audit(page, "owner overview")
            # no page scrolls sideways on the phone: wide tables scroll inside their own box
            assert page.evaluate("document.documentElement.scrollWidth") <= 390

            page.get_by_role("link", name="Laddschema").click()
            page.wait_for_url(base + "/owner/schedule/veh-c1")
            _audit(page, "schedule")
            page.get_by_label("Måndag").fill("06:45")
            page.get_by_role("button", name="Kopiera måndag till tisdag-fredag").click()  # the script's convenience
            assert page.get_by_label("Fredag").input_value() == "06:45"
            page.get_by_label("Batteri vid avresa (%)").fill("85")
            page.get_by_role("button", name="Spara inställningarna").click()
            page.wait_for_url(base + "/owner/schedule/veh-c1?saved=1")
            assert page.get_by_role("status").inner_text().startswith("Dina inställningar är sparade")
            page.screenshot(path=str(test_output / "portal-schedule-phone.png"), full_page=True)
            assert portal.platform.preferences is not None
            stored = portal.platform.preferences.get(SYSTEM, "veh-c1").preferences
            assert stored.target_soc_percent == 85
            assert [c.strftime("%H:%M") if c else None for c in stored.departure_by_weekday[:5]] == ["06:45"] * 5

            page.set_viewport_size({"width": 1280, "height": 900})
            page.get_by_role("link", name="English").click()
            page.get_by_role("link", name="Earnings and costs").click()
            page.wait_for_url(base + "/owner/earnings")
            assert page.locator("#earnings tbody tr").count() == 1
            _audit(page, "earnings")
            page.screenshot(path=str(test_output / "portal-earnings.png"), full_page=True)
            page.get_by_role("link", name="Statement 2026-10").click()
            assert "Månadsbesked oktober 2026" in page.content()
            page.goto(base + "/owner")
            page.screenshot(path=str(test_output / "portal-owner.png"), full_page=True)
        finally:
            browser.close()
