"""A DSO's visit to the portal in a real headless Chromium (the system's, driven by Playwright): sign
in, open the work queue, open the installation-approval task, upload the signed approval as a PDF,
complete the task, and see the customer's journey move on. Screenshots go to test-output/, and
axe-core audits every page visited for serious accessibility violations."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.e2e.test_blueprint_browser import _chromium
from tests.e2e.test_portal_browser import _audit
from tests.journey_support import PASSWORD
from tests.stakeholder_support import (
    AGG,
    APPROVAL,
    COVERAGE,
    INSURER,
    PDF,
    StakeholderPortal,
    build_stakeholder_portal,
)
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import upgrade

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[StakeholderPortal, str]]:
    """The portal on a real socket (uvicorn on 127.0.0.1, a free port), over a fresh SQLite database,
    with c1's insurer having confirmed coverage: the DSO's approval is what the journey waits for."""
    engine = make_engine(f"sqlite:///{tmp_path / 'v2g.sqlite3'}")
    upgrade(engine)
    portal = build_stakeholder_portal(engine)
    portal.world.service.complete_task(
        INSURER, f"{portal.journey_id}:{COVERAGE}", evidence={"coverage_confirmation": "POL-1"}
    )
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


def test_a_dso_approves_an_installation_with_an_uploaded_pdf_and_the_journey_moves_on(
    served: tuple[StakeholderPortal, str], test_output: Path, tmp_path: Path
) -> None:
    portal, base = served
    task_id = f"{portal.journey_id}:{APPROVAL}"
    signed = tmp_path / "signed-approval.pdf"
    signed.write_bytes(PDF)
    chromium = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
            page = context.new_page()
            page.goto(base + "/")
            page.get_by_label("Username").fill("dso")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(base + "/work")
            _audit(page, "work queue")
            rows = page.locator("#work-queue tbody tr")
            assert rows.count() == 1  # c1's approval; c3 is in another DSO's area
            assert "On time" in rows.first.inner_text()
            assert "Owner c1" in rows.first.inner_text()
            page.screenshot(path=str(test_output / "stakeholder-dso-queue.png"), full_page=True)
            page.keyboard.press("Tab")  # the first stop is the skip link
            assert page.evaluate("document.activeElement.className") == "skip"
            page.keyboard.press("Enter")  # past the header and the navigation: the queue's first task is next
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.textContent") == "Inspect and approve installation"
            page.keyboard.press("Enter")  # the keyboard opens the task
            page.wait_for_url("**/work/tasks/**")
            _audit(page, "approval task")
            assert "inspection_report" in page.locator("#evidence-required").inner_text()
            page.get_by_label("Evidence field").select_option("inspection_report")
            page.get_by_label("File", exact=True).set_input_files(str(signed))
            page.get_by_role("button", name="Upload the file").click()
            page.wait_for_url("**uploaded=ev-*")
            assert page.get_by_role("status").inner_text().startswith("The file is uploaded")
            assert "signed-approval.pdf" in page.locator("#evidence-files").inner_text()
            reference = page.get_by_label("inspection_report").input_value()
            assert reference.startswith("file:ev-")
            _audit(page, "approval task after the upload")
            page.get_by_label("grid_connection_id").fill("735999-GC-42")
            page.get_by_label("Approved").check()
            page.screenshot(path=str(test_output / "stakeholder-dso-task.png"), full_page=True)
            page.get_by_role("button", name="Complete the task").click()
            page.wait_for_url("**completed=1")
            assert "Test pre-qualification" in page.locator("#completed").inner_text()
            assert page.locator("#task-status").inner_text() == "Completed"
            assert "Approved" in page.locator("#task-facts").inner_text()
            _audit(page, "completed task")
            page.screenshot(path=str(test_output / "stakeholder-dso-completed.png"), full_page=True)

            view = portal.world.service.get(AGG, portal.journey_id)
            assert view.journey.stage_id == "test_prequalification"
            done = next(t for t in view.tasks if t.id == task_id)
            assert done.outcome == "approved"
            assert done.evidence["inspection_report"] == reference

            page.get_by_role("link", name="Grid areas").click()
            page.wait_for_url(base + "/work/areas")
            _audit(page, "grid areas")
            assert "V2G-GA-1-CP-c1" in page.locator("#area-GA-1").inner_text()
            page.screenshot(path=str(test_output / "stakeholder-dso-areas.png"), full_page=True)

            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            page.get_by_role("link", name="Svenska").click()
            page.goto(base + "/work?done=1")
            _audit(page, "work queue with completed tasks, on a phone")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            assert page.locator("#work-done tbody tr").count() == 1
            page.screenshot(path=str(test_output / "stakeholder-dso-queue-phone.png"), full_page=True)
        finally:
            browser.close()
