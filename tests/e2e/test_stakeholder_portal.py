"""The stakeholder pages through a browser-like client: a DSO's work queue, the approval task with its
evidence upload and completion, refusals by field, other roles and organisations, the DSO's areas."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import yaml
from sqlalchemy import Engine

from tests.e2e.portal_support import csrf_of, sign_in
from tests.stakeholder_support import AGG, APPROVAL, COVERAGE, PDF, PNG, StakeholderPortal, build_stakeholder_portal

pytestmark = pytest.mark.slow
PDF_TYPE = "application/pdf"


@pytest.fixture
def portal(engine: Engine) -> StakeholderPortal:
    return build_stakeholder_portal(engine, evidence_max_bytes=4096)


def _task_url(portal: StakeholderPortal, item: str = APPROVAL) -> str:
    return f"/work/tasks/{portal.journey_id}:{item}"


def test_a_dso_signs_in_to_its_queue_and_opens_the_approval_task(portal: StakeholderPortal) -> None:
    client = portal.client
    sign_in(client, "dso")
    assert client.get("/", follow_redirects=False).headers["location"] == "/work"
    page = client.get("/work")
    assert page.status_code == 200
    assert '<a href="/work/areas"' in page.text
    rows = re.findall(r'<a href="/work/tasks/([^"]+)">([^<]+)</a>', page.text)
    assert rows == [(f"{portal.journey_id}%3A{APPROVAL}", "Inspect and approve installation")]  # not c3's (dso2)
    assert "Owner c1" in page.text
    assert "I tid" in page.text  # Swedish by default: on time
    task = client.get(_task_url(portal))
    assert task.status_code == 200
    for expected in ("inspection_report", "grid_connection_id", 'value="approved"', 'value="rejected"'):
        assert expected in task.text
    assert 'enctype="multipart/form-data"' in task.text
    assert task.text.count('name="csrf_token"') == 3  # sign-out, upload, complete
    assert '<label for="upload-file">' in task.text


def test_upload_refusals_name_the_field_and_a_pdf_is_kept_and_fills_its_evidence(portal: StakeholderPortal) -> None:
    client = portal.client
    csrf = sign_in(client, "dso")
    url = _task_url(portal)
    no_token = client.post(url + "/evidence", data={"field": "inspection_report"}, files={"file": ("a.pdf", PDF)})
    assert no_token.status_code == 403
    fake = client.post(
        url + "/evidence",
        data={"csrf_token": csrf, "field": "inspection_report"},
        files={"file": ("approval.pdf", b"<html>not a pdf</html>", PDF_TYPE)},
    )
    assert fake.status_code == 422
    assert 'id="upload-file-error"' in fake.text
    assert "file: only PDF, PNG or JPEG files are accepted" in fake.text
    assert '<option value="inspection_report" selected>' in fake.text  # the choice is kept
    big = client.post(
        url + "/evidence",
        data={"csrf_token": csrf, "field": "inspection_report"},
        files={"file": ("big.pdf", PDF + b"0" * 4096, PDF_TYPE)},
    )
    assert big.status_code == 422
    assert "larger than the 4096 bytes allowed" in big.text
    nothing = client.post(url + "/evidence", data={"csrf_token": csrf, "field": "inspection_report"})
    assert nothing.status_code == 422
    assert "choose a PDF, PNG or JPEG file" in nothing.text

    sent = client.post(
        url + "/evidence",
        data={"csrf_token": csrf, "field": "inspection_report"},
        files={"file": ("../../signed approval.pdf", PDF, PDF_TYPE)},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    file_id = sent.headers["location"].split("uploaded=")[1]
    page = client.get(sent.headers["location"])
    assert "signed approval.pdf" in page.text
    evidence = portal.platform.task_evidence
    assert evidence is not None
    (record,) = evidence.store.for_task(f"{portal.journey_id}:{APPROVAL}")
    assert record.id == file_id
    assert f'name="evidence.inspection_report" maxlength="2000" value="{record.reference}"' in page.text
    download = client.get(f"{url}/evidence/{file_id}")
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == PDF_TYPE


def test_completing_keeps_the_values_on_a_refusal_and_moves_the_journey_on(portal: StakeholderPortal) -> None:
    client = portal.client
    csrf = sign_in(client, "dso")
    url = _task_url(portal)
    client.post(
        url + "/evidence",
        data={"csrf_token": csrf, "field": "inspection_report"},
        files={"file": ("a.pdf", PDF, PDF_TYPE)},
    )
    evidence = portal.platform.task_evidence
    assert evidence is not None
    (record,) = evidence.store.for_task(f"{portal.journey_id}:{APPROVAL}")
    form = {"csrf_token": csrf, "evidence.inspection_report": record.reference, "evidence.grid_connection_id": "GC-9"}
    no_outcome = client.post(url + "/complete", data=form)
    assert no_outcome.status_code == 422
    assert 'id="outcome-error"' in no_outcome.text
    assert 'value="GC-9"' in no_outcome.text  # nothing typed is lost
    forged = client.post(url + "/complete", data={**form, "evidence.inspection_report": "file:ev-x sha256:y"})
    assert forged.status_code == 422
    assert "is not a file uploaded for this task" in forged.text
    done = client.post(url + "/complete", data={**form, "outcome": "approved"}, follow_redirects=False)
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert 'id="completed"' in page.text
    assert "Installation &amp; onboarding" in page.text  # still waiting on the insurer
    # the insurer confirms with a PNG of the policy: the journey moves on
    csrf = sign_in(client, "insurer")
    insurer_url = _task_url(portal, COVERAGE)
    client.post(
        insurer_url + "/evidence",
        data={"csrf_token": csrf, "field": "coverage_confirmation"},
        files={"file": ("policy.png", PNG, "image/png")},
    )
    page = client.get(insurer_url)
    reference = re.search(r'name="evidence.coverage_confirmation" maxlength="2000" value="([^"]+)"', page.text)
    assert reference is not None
    moved = client.post(
        insurer_url + "/complete",
        data={"csrf_token": csrf_of(page.text), "evidence.coverage_confirmation": reference.group(1)},
    )
    assert moved.status_code == 200
    assert "Test pre-qualification" in moved.text
    assert portal.world.service.get(AGG, portal.journey_id).journey.stage_id == "test_prequalification"


def test_other_roles_and_organisations_get_what_the_api_answers(portal: StakeholderPortal) -> None:
    client = portal.client
    sign_in(client, "insurer")
    assert client.get(_task_url(portal)).status_code == 403  # the DSO's task
    assert client.get("/work/areas").status_code == 403
    assert "Confirm coverage" in client.get("/work").text
    csrf = sign_in(client, "dso2")
    assert client.get(_task_url(portal)).status_code == 404  # not dso2's area
    refused = client.post(
        _task_url(portal) + "/evidence",
        data={"csrf_token": csrf, "field": "inspection_report"},
        files={"file": ("a.pdf", PDF, PDF_TYPE)},
    )
    assert refused.status_code == 404
    assert client.get(f"/work/tasks/{portal.journey_id}:nothing").status_code == 404
    sign_in(client, "owner-c1")
    assert client.get("/work").status_code == 403
    client.cookies.clear()
    assert client.get("/work", follow_redirects=False).headers["location"] == "/"


def test_the_dso_areas_page_shows_capacity_queue_and_v2g_sites(portal: StakeholderPortal) -> None:
    client = portal.client
    sign_in(client, "dso")
    client.get("/lang/en")
    page = client.get("/work/areas")
    assert page.status_code == 200
    assert 'id="area-GA-1"' in page.text
    assert 'id="area-GA-2"' not in page.text
    assert '<dd class="hosting">200.0 kW</dd>' in page.text
    assert '<dd class="committed">11.5 kW</dd>' in page.text
    assert "<code>V2G-GA-1-CP-c1</code>" in page.text
    assert "Owner c1" in page.text
    assert client.get("/api/v1/dso/areas").status_code == 401  # the API wants its bearer token


def test_the_stakeholder_strings_are_in_both_catalogues_in_one_block_at_the_end() -> None:
    root = resources.files("v2g.web")
    texts = {lang: root.joinpath("i18n", f"{lang}.yaml").read_text(encoding="utf-8") for lang in ("sv", "en")}
    catalogues = {lang: yaml.safe_load(text) for lang, text in texts.items()}
    assert set(catalogues["sv"]) == set(catalogues["en"])
    for text in texts.values():
        block = text.split("# stakeholder pages\n", 1)[1]
        keys = [line.split(":")[0].strip('"') for line in block.splitlines() if line and not line.startswith(" ")]
        assert "nav_work_queue" in keys
    built = {f"sla_{s}" for s in ("ok", "warning", "breached", "none")}
    built |= {f"status_{s}" for s in ("open", "waiting", "completed")}
    assert built <= set(catalogues["sv"])


def test_a_photo_larger_than_other_requests_uploads_and_a_second_copy_is_the_same_file(engine: Engine) -> None:
    portal = build_stakeholder_portal(engine)  # the default limit: 10 MiB
    client = portal.client
    csrf = sign_in(client, "dso")
    url = _task_url(portal)
    photo = PNG + b"\x00" * 1_500_000  # over the 1 MiB body limit of every other request
    form = {"csrf_token": csrf, "field": "grid_connection_id"}
    first = client.post(url + "/evidence", data=form, files={"file": ("meter.png", photo, "image/png")})
    assert first.status_code == 200
    assert 'id="uploaded"' in first.text
    second = client.post(url + "/evidence", data=form, files={"file": ("meter-copy.png", photo, "image/png")})
    assert "redan uppladdad för det fältet" in second.text  # Swedish: the browser asks for no language
    evidence = portal.platform.task_evidence
    assert evidence is not None
    (record,) = evidence.store.for_task(f"{portal.journey_id}:{APPROVAL}")
    assert record.size_bytes == len(photo)
    # the insurer may not fetch the DSO's file, another DSO does not see it at all
    sign_in(client, "insurer")
    assert client.get(f"{url}/evidence/{record.id}").status_code == 403
    sign_in(client, "dso2")
    assert client.get(f"{url}/evidence/{record.id}").status_code == 404
