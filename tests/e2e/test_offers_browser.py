"""An owner in a real headless Chromium reads the value indication, compares the offers and opens the
contract summary, on a phone in Swedish and on a wide screen in English. Screenshots go to
test-output/, and axe-core audits every page for serious accessibility violations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.portal_support import PASSWORD, Portal
from tests.e2e.test_blueprint_browser import _chromium
from tests.e2e.test_portal_browser import _audit, served

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")

__all__ = ["served"]  # the fixture: the portal on a real socket


def test_an_owner_reads_the_indication_compares_the_offers_and_opens_the_contract(
    served: tuple[Portal, str], test_output: Path
) -> None:
    _portal, base = served
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"], headless=True)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="sv-SE")  # a phone
            page = context.new_page()
            page.goto(base + "/")
            page.get_by_label("Användarnamn").fill("owner-c1")
            page.get_by_label("Lösenord").fill(PASSWORD)
            page.get_by_role("button", name="Logga in").click()
            page.wait_for_url(base + "/owner")
            assert "kr per år" in page.locator("#value-range").inner_text()
            page.screenshot(path=str(test_output / "portal-owner-terms-phone.png"), full_page=True)
            _audit(page, "owner overview with the terms")
            terms = page.locator("table.terms").first
            for part in ("Billigare laddning", "Din andel av reservintäkterna", "Totalt"):
                assert part in terms.inner_text()

            page.get_by_role("link", name="Jämför erbjudanden").first.click()
            page.wait_for_url(base + "/owner/offers")
            cards = page.locator("article.offer")
            assert cards.count() == 3
            assert "ditt avtal" in page.locator("#offer-v2g-basic").inner_text()
            assert "35 kr i månaden" in page.locator("#offer-v1g-reserves").inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing scrolls sideways
            page.screenshot(path=str(test_output / "portal-offers-phone.png"), full_page=True)
            _audit(page, "offers (phone)")

            page.locator("#offer-v2g-basic").get_by_role("link", name="Läs avtalet i korthet").click()
            page.wait_for_url(base + "/owner/contract?offer=v2g-basic")
            summary = page.locator("#contract-summary").inner_text()
            assert len(summary.split()) <= 600  # read in under 3 minutes at 200 words a minute
            for text in ("Vad vi lovar", "80 %", "20 %", "70 %", "30 dagars uppsägning"):
                assert text in summary, text
            page.screenshot(path=str(test_output / "portal-contract-phone.png"), full_page=True)
            _audit(page, "contract (phone)")

            page.set_viewport_size({"width": 1280, "height": 900})
            page.get_by_role("link", name="English").click()
            page.get_by_role("link", name="Compare offers").click()
            page.wait_for_url(base + "/owner/offers")
            boxes = [page.locator("article.offer").nth(i).bounding_box() for i in range(3)]
            assert all(b is not None for b in boxes)
            tops = {round(b["y"]) for b in boxes if b is not None}
            assert len(tops) == 1  # side by side on a wide screen
            page.screenshot(path=str(test_output / "portal-offers.png"), full_page=True)
            _audit(page, "offers")
            page.get_by_role("link", name="Your contract").click()
            page.wait_for_url(base + "/owner/contract")
            assert "What we promise" in page.locator("#contract-summary").inner_text()
            page.screenshot(path=str(test_output / "portal-contract.png"), full_page=True)
            _audit(page, "contract")
        finally:
            browser.close()
