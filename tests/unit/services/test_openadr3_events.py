"""OpenADR 3 events read field by field into planner signals; the desk checks, applies once, withdraws, audits."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from v2g.adapters.openadr.oadr3_model import (
    VtnAnswerError,
    event_areas,
    fleet_report,
    parse_duration,
    parse_event,
    parse_programs,
)
from v2g.services.actors.ports import AuditEntry
from v2g.services.planning.dso_interface import AreaAggregate
from v2g.services.planning.grid_events import EventRejectedError, GridEvent, GridEventDesk
from v2g.services.planning.grid_signals import LimitSignal
from v2g.services.planning.signal_book import GridSignalBook

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
AREA = "GA-SE3-UPPSALA-01"
OTHER = "GA-SE3-UPPSALA-02"
SERVED = (AREA, OTHER)


def _event(**over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "7",
        "programID": "1",
        "eventName": "evening peak",
        "modificationDateTime": "2026-12-03T11:00:00Z",
        "targets": [{"type": "GROUP", "values": [AREA]}],
        "payloadDescriptors": [
            {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"},
            {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "PRICE", "units": "KWH", "currency": "EUR"},
        ],
        "intervalPeriod": {"start": "2026-12-03T13:00:00Z", "duration": "PT1H"},
        "intervals": [
            {"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [40]}]},
            {
                "id": 1,
                "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [25.5]}, {"type": "PRICE", "values": [0.31]}],
            },
        ],
    }
    event.update(over)
    return event


def _parse(item: Any, served: tuple[str, ...] = SERVED) -> Any:
    return parse_event(
        item, "events[0]", now=NOW, served=served, default_areas=(AREA,), ven_name="agg-ven", program_name="dso-limits"
    )


def test_an_event_becomes_limits_and_prices_per_interval_for_the_targeted_area() -> None:
    kept, grid = _parse(_event())
    assert (kept.id, kept.program_id, kept.start_at, kept.end_at) == (
        "7",
        "1",
        NOW + timedelta(hours=1),
        NOW + timedelta(hours=3),
    )
    assert grid.ref == "openadr3:event/7"
    assert grid.modification == "2026-12-03T11:00:00Z"
    assert [
        (s.grid_area_id, s.start_at.hour, s.end_at.hour, s.import_limit_kw, s.export_limit_kw) for s in grid.limits
    ] == [
        (AREA, 13, 14, 40.0, None),
        (AREA, 14, 15, 25.5, None),
    ]
    assert [(p.grid_area_id, p.start_at.hour, p.price_eur_per_mwh) for p in grid.prices] == [
        (AREA, 14, pytest.approx(310.0))
    ]


def test_an_export_limit_in_watts_only_limits_export() -> None:
    event = _event(
        payloadDescriptors=[{"payloadType": "EXPORT_CAPACITY_LIMIT", "units": "W"}],
        intervals=[
            {
                "id": 0,
                "intervalPeriod": {"start": "2026-12-03T14:00:00+01:00", "duration": "PT15M"},
                "payloads": [{"type": "EXPORT_CAPACITY_LIMIT", "values": [12000]}],
            }
        ],
    )
    _, grid = _parse(event)
    (limit,) = grid.limits
    assert limit.start_at == datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
    assert limit.end_at - limit.start_at == timedelta(minutes=15)
    assert math.isinf(limit.import_limit_kw)
    assert limit.export_limit_kw == 12.0


@pytest.mark.parametrize(
    ("over", "path", "why"),
    [
        ({"programID": None}, "events[0].programID", "missing"),
        ({"intervals": "soon"}, "events[0].intervals", "expected a list"),
        ({"intervalPeriod": None}, "events[0].intervals[0].intervalPeriod", "missing, and the event has no"),
        (
            {"intervalPeriod": {"start": "2026-12-03T13:00:00", "duration": "PT1H"}},
            "events[0].intervalPeriod.start",
            "has no UTC offset",
        ),
        (
            {"intervalPeriod": {"start": "2026-12-03T13:00:00Z", "duration": "P1M"}},
            "events[0].intervalPeriod.duration",
            "years and months have no fixed length",
        ),
        (
            {"intervals": [{"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": ["lots"]}]}]},
            "events[0].intervals[0].payloads[0].values[0]",
            "expected a finite number, got 'lots'",
        ),
        (
            {"intervals": [{"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [-5]}]}]},
            "events[0].intervals[0].payloads[0].values[0]",
            "negative",
        ),
        (
            {
                "payloadDescriptors": [{"payloadType": "PRICE", "currency": "USD"}],
                "intervals": [{"id": 0, "payloads": [{"type": "PRICE", "values": [0.2]}]}],
            },
            "events[0].payloadDescriptors[PRICE].currency",
            "'USD': the platform plans in EUR",
        ),
        ({"targets": [{"type": "GROUP", "values": [{"a": 1}]}]}, "events[0].targets[0].values[0]", "expected a string"),
    ],
)
def test_a_wrong_answer_names_the_field_and_why(over: dict[str, Any], path: str, why: str) -> None:
    with pytest.raises(VtnAnswerError) as err:
        _parse(_event(**over))
    assert err.value.path == path
    assert why in err.value.reason


def test_durations_and_programs() -> None:
    assert parse_duration("PT15M", "d") == timedelta(minutes=15)
    assert parse_duration("P1DT2H", "d") == timedelta(days=1, hours=2)
    assert parse_duration("P9999Y", "d") is None
    with pytest.raises(VtnAnswerError, match="is not an ISO 8601 duration"):
        parse_duration("1 hour", "d")
    (program,) = parse_programs(
        [{"id": "1", "programName": "dso-limits", "targets": [{"type": "GROUP", "values": [AREA]}]}]
    )
    assert (program.id, program.name, program.targets) == ("1", "dso-limits", (AREA,))
    with pytest.raises(VtnAnswerError, match=r"programs\[0\].programName: missing"):
        parse_programs([{"id": "1"}])


def test_the_areas_an_event_applies_to() -> None:
    assert event_areas([AREA, "x"], served=SERVED, default=(OTHER,), ven_name="v") == (AREA,)
    assert event_areas([], served=SERVED, default=(OTHER,), ven_name="v") == (OTHER,)
    assert event_areas(["v"], served=SERVED, default=(OTHER,), ven_name="v") == (OTHER,)
    assert event_areas(["someone-else"], served=SERVED, default=(OTHER,), ven_name="v") == ()


class MemoryAudit:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def audit(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


def _desk() -> tuple[GridEventDesk, GridSignalBook, MemoryAudit, list[str]]:
    book = GridSignalBook()
    marked: list[str] = []
    book.listeners.append(marked.append)
    audit = MemoryAudit()
    desk = GridEventDesk(book, {AREA: (100.0, 50.0), OTHER: (80.0, 40.0)}, lambda: NOW, audit)
    return desk, book, audit, marked


def test_the_desk_applies_a_version_once_replaces_it_and_withdraws_it() -> None:
    desk, book, audit, marked = _desk()
    _, grid = _parse(_event())
    start = NOW + timedelta(hours=1)
    assert desk.apply(grid) is True
    assert desk.apply(grid) is False  # read again: nothing changes, nothing audited again
    assert book.import_limits_kw(AREA, 100.0, start, 8) == (40.0,) * 4 + (25.5,) * 4
    assert [(e.action, e.entity_id) for e in audit.entries] == [("grid_limit.set", AREA), ("grid_price.set", AREA)]
    assert audit.entries[0].after is not None
    assert audit.entries[0].after["intervals"][1]["import_limit_kw"] == 25.5
    assert set(marked) == {AREA}
    # a new version replaces the old one entirely
    _, newer = _parse(
        _event(
            modificationDateTime="2026-12-03T11:30:00Z",
            intervals=[{"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [60]}]}],
        )
    )
    assert desk.apply(newer) is True
    assert book.import_limits_kw(AREA, 100.0, start, 8) == (60.0,) * 4 + (100.0,) * 4
    assert book.price_overrides(AREA, start, 8) == {}
    # the VTN deleted it: the area is back to its record, and re-planned
    assert desk.withdraw(grid.ref, why="no longer at the VTN") is True
    assert book.import_limits_kw(AREA, 100.0, start, 4) == (100.0,) * 4
    assert [e.action for e in audit.entries][-1] == "grid_signal.withdrawn"
    assert marked[-1] == AREA


def test_the_desk_refuses_an_event_for_an_area_it_does_not_serve_and_audits_it_once() -> None:
    desk, book, audit, _ = _desk()
    stranger = GridEvent(
        "openadr3",
        "openadr3:event/9",
        "p",
        "9",
        "v1",
        limits=(LimitSignal("GA-NOWHERE", NOW, NOW + timedelta(hours=1), 10.0, ref="openadr3:event/9"),),
    )
    for _ in range(2):
        with pytest.raises(
            EventRejectedError, match=r"limits\[0\] \(area GA-NOWHERE.*\.grid_area_id: the area is not served"
        ):
            desk.apply(stranger)
    assert [e.action for e in audit.entries] == ["grid_signal.rejected"]
    assert book.active_limits(NOW) == []


def test_an_export_limit_reaches_the_book_and_leaves_the_import_limit() -> None:
    desk, book, _, _ = _desk()
    export_only = GridEvent(
        "openadr3",
        "openadr3:event/3",
        "p",
        "3",
        "v1",
        limits=(LimitSignal(AREA, NOW, NOW + timedelta(minutes=30), math.inf, 5.0, ref="openadr3:event/3"),),
    )
    older_import = LimitSignal(AREA, NOW, NOW + timedelta(hours=1), 70.0)
    book.limits([older_import])
    desk.apply(export_only)
    assert book.import_limits_kw(AREA, 100.0, NOW, 4) == (70.0,) * 4
    assert book.export_limits_kw(AREA, 50.0, NOW, 4) == (5.0, 5.0, 50.0, 50.0)


def test_a_fleet_report_is_an_openadr_3_report_per_area() -> None:
    kept, _ = _parse(_event())
    aggregate = AreaAggregate(AREA, 3, 2, 12.5, 32.5, 9.5, 100.0, 40.0, True)
    body = fleet_report(
        ven_name="agg-ven", event=kept, aggregates={AREA: aggregate}, at=NOW, period=timedelta(minutes=1)
    )
    assert (body["objectType"], body["programID"], body["eventID"], body["clientName"]) == (
        "REPORT",
        "1",
        "7",
        "agg-ven",
    )
    (resource,) = body["resources"]
    assert resource["resourceName"] == AREA
    assert resource["intervalPeriod"] == {"start": "2026-12-03T12:00:00Z", "duration": "PT60S"}
    assert {p["type"]: p["values"] for p in resource["intervals"][0]["payloads"]} == {
        "DEMAND": [12.5],
        "UP_REGULATION_AVAILABLE": [32.5],
        "DOWN_REGULATION_AVAILABLE": [9.5],
    }
