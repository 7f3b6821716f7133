"""The portal over HTTP on SQLite and PostgreSQL: sessions, CSRF, role and organisation refusals, and
each owner and operator page."""

from __future__ import annotations

import io
import re
import zipfile
from importlib import resources

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.e2e.portal_support import PASSWORD, Portal, build_portal, csrf_of, sign_in
from v2g.services.actors.ports import SYSTEM


@pytest.fixture
def portal(engine: Engine) -> Portal:
    return build_portal(engine)


@pytest.fixture
def settled(engine: Engine) -> Portal:
    """The portal with October settled (statements and ledger lines on record)."""
    return build_portal(engine, settle=True)


def test_sign_in_sets_a_session_cookie_scripts_cannot_read_and_sign_out_ends_it(portal: Portal) -> None:
    client = portal.client
    landing = client.get("/")
    assert 'action="/login"' in landing.text
    assert "owner-c1" in landing.text  # the demo logins are shown
    assert "script-src 'self'" in landing.headers["content-security-policy"]
    wrong = client.post(
        "/login", data={"csrf_token": csrf_of(landing.text), "username": "owner-c1", "password": "nope-nope"}
    )
    assert wrong.status_code == 401
    assert "Okänt användarnamn eller fel lösenord." in wrong.text
    answer = client.post(
        "/login",
        data={"csrf_token": csrf_of(client.get("/").text), "username": "owner-c1", "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("v2g_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    home = client.get("/")
    assert home.url.path == "/owner"
    session = client.cookies.get("v2g_session")
    out = client.post("/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.set("v2g_session", session or "")
    assert client.get("/owner", follow_redirects=False).headers["location"] == "/"  # the token was revoked


def test_over_tls_the_session_cookie_is_secure(portal: Portal) -> None:
    client = TestClient(portal.client.app, base_url="https://portal.example")
    landing = client.get("/")
    answer = client.post(
        "/login",
        data={"csrf_token": csrf_of(landing.text), "username": "owner-c1", "password": PASSWORD},
        follow_redirects=False,
    )
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("v2g_session="))
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


def test_every_form_post_needs_the_sessions_csrf_token(portal: Portal) -> None:
    client = portal.client
    client.get("/")
    refused = client.post("/login", data={"username": "owner-c1", "password": PASSWORD})
    assert refused.status_code == 403
    assert (
        "security token is missing or wrong"
        in client.post(
            "/login", data={"username": "owner-c1", "password": PASSWORD}, headers={"accept-language": "en"}
        ).text
    )
    csrf = sign_in(client, "owner-c1")
    form = {"dep_mon": "06:30", "target_soc_percent": "90", "min_soc_percent": "30"}
    for token in (None, "x" * 64, csrf_of(build_other_session(portal))):
        data = dict(form) if token is None else {**form, "csrf_token": token}
        answer = client.post("/owner/schedule/veh-c1", data=data)
        assert answer.status_code == 403, answer.text
        assert "Formulärets säkerhetsnyckel saknas eller är fel" in answer.text
    assert portal.platform.preferences is not None
    assert portal.platform.preferences.get(SYSTEM, "veh-c1").is_default  # nothing was stored
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/owner/service/pause", data={"csrf_token": "bad"}).status_code == 403
    ok = client.post("/owner/schedule/veh-c1", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303


def build_other_session(portal: Portal) -> str:
    """A page of another owner's session (its CSRF token must not work in this one)."""
    other = TestClient(portal.client.app)
    sign_in(other, "owner-c2")
    return other.get("/owner").text


def test_owners_see_only_their_own_and_other_roles_are_refused(settled: Portal) -> None:
    portal = settled
    client = portal.client
    sign_in(client, "owner-c2")
    assert client.get("/owner/schedule/veh-c1").status_code == 404  # another owner's EV: as if unknown
    assert "veh-c2" in client.get("/owner/schedule", follow_redirects=True).url.path
    assert client.get("/operator").status_code == 403
    assert client.get("/operator/blueprint").status_code == 403
    assert client.get("/owner/statements/2026-10").status_code == 200  # their own
    sign_in(client, "aggregator")
    refused = client.get("/owner")
    assert refused.status_code == 403
    assert "may not open this page (allowed: owner)" in refused.text
    assert client.get("/owner/statements/2026-10").status_code == 403
    sign_in(client, "installer")
    landing = client.get("/")
    assert landing.url.path == "/work"  # the stakeholders' work queue
    assert "Din arbetskö" in landing.text
    assert client.get("/operator").status_code == 403
    assert client.get("/owner/earnings").status_code == 403
    client.cookies.clear()
    assert client.get("/owner", follow_redirects=False).headers["location"] == "/"


def test_the_owner_overview_shows_a_value_range_with_its_assumptions_and_the_tracker(portal: Portal) -> None:
    client = portal.client
    sign_in(client, "owner-c1")
    page = client.get("/owner")
    assert page.status_code == 200
    assert '<html lang="sv">' in page.text  # Swedish unless the browser or the switch asks otherwise
    assert '<html lang="en">' in client.get("/owner", headers={"accept-language": "en-GB,en;q=0.8"}).text
    switched = client.get("/lang/en?next=/owner", follow_redirects=False)
    assert switched.headers["location"] == "/owner"
    assert client.get("/lang/en?next=//evil.example", follow_redirects=False).headers["location"] == "/"
    page = client.get("/owner")
    assert '<html lang="en">' in page.text
    found = re.search(r'id="value-range">([\d\u202f]+) to ([\d\u202f]+) kr a year<', page.text)
    assert found is not None, page.text
    low, high = (int(x.replace("\u202f", "")) for x in found.groups())
    assert 0 < low < high  # a range from the planner, never a fixed figure
    assert portal.platform.value is not None
    indication = portal.platform.value.for_ev(
        *_owner_ev(portal, "c1")  # the same figure the service computes
    )
    assert (low, high) == (int(indication.low_sek_per_year), int(indication.high_sek_per_year))
    assert len(indication.nights) == 14
    for text in ("Trafikanalys", "of the reserve revenue", "replayed", "Where your service stands", "Stage "):
        assert text in page.text
    # the next steps and who they wait on come from the journey's tracker
    tracker = portal.world.service.tracker(
        _principal(portal, "aggregator"), portal.world.service.list_journeys(SYSTEM)[0].id
    )
    for step in tracker.next_steps:
        assert step.title in page.text


def _principal(portal: Portal, username: str):  # type: ignore[no-untyped-def]
    from v2g.services.actors.auth import principal_for_token

    with portal.world.service.uow() as repo:
        return principal_for_token(repo, portal.world.tokens[username], now=portal.world.clock.now())


def _owner_ev(portal: Portal, cid: str):  # type: ignore[no-untyped-def]
    who = _principal(portal, "aggregator")
    file = next(f for f in portal.world.service.customer_files(who) if f.customer.id == cid)
    return who, file.vehicles[0], file.sites[0], file.chargers[0]


def test_schedule_settings_change_through_the_preferences_use_case_with_errors_by_field(portal: Portal) -> None:
    client = portal.client
    csrf = sign_in(client, "owner-c1")
    page = client.get("/owner/schedule/veh-c1")
    assert '<label for="dep_mon">' in page.text
    bad = client.post(
        "/owner/schedule/veh-c1",
        data={
            "csrf_token": csrf,
            "version": "",
            "dep_mon": "25:99",
            "target_soc_percent": "150",
            "min_soc_percent": "30",
            "charge_now_until": "2026-11-02T12:00",
        },
    )
    assert bad.status_code == 422
    # each problem sits next to its field, and the field is marked invalid
    assert re.search(r'id="dep_mon"[^>]*aria-invalid="true"', bad.text)
    assert re.search(r'id="target_soc_percent"[^>]*aria-invalid="true"', bad.text)
    assert 'id="dep_mon-error"' in bad.text
    assert 'id="target_soc_percent-error"' in bad.text
    assert 'id="min_soc_percent-error"' not in bad.text
    good = client.post(
        "/owner/schedule/veh-c1",
        data={
            "csrf_token": csrf,
            "version": "",
            **{f"dep_{d}": "07:30" for d in ("mon", "tue", "wed", "thu", "fri")},
            "dep_sat": "",
            "dep_sun": "",
            "target_soc_percent": "90",
            "min_soc_percent": "30",
            "charge_now_until": "2026-11-02T14:00",  # Swedish time; the world clock is 10:00 there
            "opt_out_today": "on",
        },
    )
    assert good.status_code == 200
    assert good.url.query == b"saved=1" or good.url.query == "saved=1"
    assert portal.platform.preferences is not None
    stored = portal.platform.preferences.get(SYSTEM, "veh-c1").to_json(portal.world.clock.now())
    assert stored["departures"]["mon"] == "07:30"
    assert stored["departures"]["sat"] is None
    assert (stored["target_soc_percent"], stored["min_soc_percent"]) == (90, 30)
    assert stored["charge_now_until"] == "2026-11-02T13:00:00+00:00"
    assert stored["opt_out_today"] is True
    assert 'value="07:30"' in good.text
    stale = client.post("/owner/schedule/veh-c1", data={"csrf_token": csrf, "version": "", "target_soc_percent": "70"})
    assert stale.status_code == 409


def test_earnings_per_month_link_the_statements_the_settlement_service_renders(settled: Portal) -> None:
    portal = settled
    client = portal.client
    sign_in(client, "owner-c1")
    page = client.get("/owner/earnings")
    assert page.status_code == 200
    assert 'href="/owner/statements/2026-10"' in page.text
    assert portal.platform.settlement_reports is not None
    statement = portal.platform.settlement_reports.owner_statement("c1", portal_october())
    assert f"{statement.owner_net_sek:,.2f}".replace(",", "\u202f") in page.text
    document = client.get("/owner/statements/2026-10")
    assert document.status_code == 200
    assert "Månadsbesked oktober 2026" in document.text
    assert client.get("/owner/statements/2026-09").status_code == 404
    assert client.get("/owner/statements/2026-13").status_code == 404


def portal_october():  # type: ignore[no-untyped-def]
    from tests.e2e.portal_support import OCTOBER

    return OCTOBER


def test_pause_resume_terminate_and_the_data_export(portal: Portal) -> None:
    client = portal.client
    csrf = sign_in(client, "owner-c1")
    export = client.get("/owner/export")
    assert export.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
    assert any(n.endswith(".json") for n in names)
    service = client.get("/owner/service").text
    journey = portal.world.service.list_journeys(SYSTEM)
    c1 = next(j for j in journey if j.customer_id == "c1")
    assert 'action="/owner/service/pause"' not in service  # not in this stage: the journey rules say where
    refused = client.post("/owner/service/pause", data={"csrf_token": csrf, "reason": "holiday"})
    assert refused.status_code == 422
    assert "the service can be paused in usage" in refused.text
    assert portal.world.service.get(SYSTEM, c1.id).journey.status.value == "active"
    none = client.post("/owner/service/terminate", data={"csrf_token": csrf, "comment": "x"})
    assert none.status_code == 422
    ended = client.post("/owner/service/terminate", data={"csrf_token": csrf, "reasons": ["unclear_value", "other"]})
    assert ended.status_code == 200, ended.text
    assert portal.world.service.get(SYSTEM, c1.id).journey.status.value in ("terminating", "terminated")


def test_the_operator_sees_the_fleet_status_and_the_blueprint_with_counts(portal: Portal) -> None:
    client = portal.client
    sign_in(client, "aggregator")
    page = client.get("/operator")
    assert page.status_code == 200
    assert 'id="stages"' in page.text
    counts = re.findall(r'<tr><th scope="row">[^<]+</th><td class="num">(\d+)</td></tr>', page.text)
    assert sum(int(n) for n in counts) == 1  # c1 only: c2 is served by another aggregator
    assert "Ingen plan ännu." in page.text
    swimlane = client.get("/operator/blueprint")
    assert swimlane.status_code == 200
    assert swimlane.text.count("journeys now") == len(portal.world.blueprint.stages)
    assert "1 journeys now" in swimlane.text


def test_both_catalogues_have_every_key_the_templates_use() -> None:
    root = resources.files("v2g.web")
    sv = yaml.safe_load(root.joinpath("i18n", "sv.yaml").read_text(encoding="utf-8"))
    en = yaml.safe_load(root.joinpath("i18n", "en.yaml").read_text(encoding="utf-8"))
    assert set(sv) == set(en)
    used: set[str] = set()
    for template in root.joinpath("templates").iterdir():
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_0-9]+)["']\s*[,)]""", template.read_text(encoding="utf-8")))
    assert used, "no catalogue keys found in the templates"
    used |= {f"day_{d}" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    used |= {f"done_{a}" for a in ("pause", "resume", "terminate")}  # keys the templates build
    assert used <= set(sv), used - set(sv)
