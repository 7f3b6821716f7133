"""OpenADR 3.0.1 objects read and written by the VEN: events to planner signals, fleet reports to JSON.

Every answer of the VTN is read field by field; anything unexpected raises :class:`VtnAnswerError`
with the path of the field (``events[3].intervals[0].payloads[1].values``) and what was wrong.

* ``PRICE`` payloads become price signals in EUR/MWh: the payload descriptor's ``units`` (``KWH``,
  the default, ``MWH`` or ``WH``) and ``currency`` (``EUR``; another currency is refused).
* ``IMPORT_CAPACITY_LIMIT`` / ``EXPORT_CAPACITY_LIMIT`` become grid-area limits in kW (``units``
  ``KW``, the default, ``W`` or ``MW``).
* Other payload types are not used by the platform and are skipped.
* The grid areas: the served areas named in the event's ``targets`` (any target type); an event with
  no targets, or one naming this VEN, applies to the default areas; an event whose targets name
  neither is for someone else and is skipped.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from v2g.services.planning.dso_interface import AreaAggregate
from v2g.services.planning.grid_events import GridEvent
from v2g.services.planning.grid_signals import LimitSignal, PriceSignal

SOURCE = "openadr3"
UNTIL_FURTHER_NOTICE = timedelta(days=3650)  # what a duration of P9999Y (no end) becomes
PRICE_PER_MWH = {"KWH": 1000.0, "MWH": 1.0, "WH": 1_000_000.0}
KW_PER_UNIT = {"KW": 1.0, "W": 0.001, "MW": 1000.0}
LIMIT_TYPES = ("IMPORT_CAPACITY_LIMIT", "EXPORT_CAPACITY_LIMIT")
_DURATION = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<mi>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


class VtnAnswerError(ValueError):
    """The VTN answered something the VEN cannot use; names the field and why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def field(obj: Any, key: str, path: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
    """``obj[key]`` checked to be a ``kind``; None when absent and not ``required``."""
    if not isinstance(obj, dict):
        raise VtnAnswerError(path, f"expected an object, got {type(obj).__name__}")
    value = obj.get(key)
    if value is None:
        if required:
            msg = f"{path}.{key}"
            raise VtnAnswerError(msg, "missing")
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        msg = f"{path}.{key}"
        raise VtnAnswerError(msg, f"expected {_kind_name(kind)}, got {value!r}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}
    return " or ".join(names.get(k, k.__name__) for k in _kinds(kind))


def parse_duration(text: str, path: str) -> timedelta | None:
    """An ISO 8601 duration; None for ``P9999Y`` (no end). Years and months are refused (not a fixed length)."""
    m = _DURATION.match(text)
    if m is None or text in ("P", "PT"):
        raise VtnAnswerError(path, f"{text!r} is not an ISO 8601 duration")
    if text == "P9999Y":
        return None
    if m.group("y") or m.group("mo"):
        raise VtnAnswerError(path, f"{text!r}: years and months have no fixed length; give weeks, days or hours")
    parts = {k: float(v) for k, v in m.groupdict().items() if v is not None}
    return timedelta(
        weeks=parts.get("w", 0.0),
        days=parts.get("d", 0.0),
        hours=parts.get("h", 0.0),
        minutes=parts.get("mi", 0.0),
        seconds=parts.get("s", 0.0),
    )


def parse_time(text: str, path: str, now: datetime) -> datetime:
    """An RFC 3339 date-time with its offset; ``0000-00-00`` means now (OpenADR 3)."""
    if text.startswith("0000-00-00"):
        return now
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise VtnAnswerError(path, f"{text!r} is not an RFC 3339 date-time") from None
    if value.tzinfo is None:
        raise VtnAnswerError(path, f"{text!r} has no UTC offset")
    return value.astimezone(now.tzinfo)


@dataclass(frozen=True, slots=True)
class VtnProgram:
    id: str
    name: str
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VtnEvent:
    """What the VEN keeps of an event: its identity, span and whether it asks for reports."""

    id: str
    program_id: str
    name: str
    modification: str
    start_at: datetime
    end_at: datetime
    wants_reports: bool
    areas: tuple[str, ...] = ()  # the served grid areas it applies to

    @property
    def ref(self) -> str:
        return f"{SOURCE}:event/{self.id}"


def parse_programs(answer: Any, path: str = "programs") -> list[VtnProgram]:
    if not isinstance(answer, list):
        raise VtnAnswerError(path, f"expected a list of programs, got {type(answer).__name__}")
    out = []
    for k, item in enumerate(answer):
        where = f"{path}[{k}]"
        out.append(
            VtnProgram(
                id=str(field(item, "id", where, (str, int))),
                name=field(item, "programName", where, str),
                targets=_target_values(item, where),
            )
        )
    return out


def _target_values(obj: Mapping[str, Any], path: str) -> tuple[str, ...]:
    targets = field(obj, "targets", path, list, required=False) or []
    values: list[str] = []
    for k, target in enumerate(targets):
        where = f"{path}.targets[{k}]"
        field(target, "type", where, str)
        for j, value in enumerate(field(target, "values", where, list)):
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                msg = f"{where}.values[{j}]"
                raise VtnAnswerError(msg, f"expected a string or number, got {value!r}")
            values.append(str(value))
    return tuple(values)


def event_areas(
    targets: Sequence[str], *, served: Sequence[str], default: Sequence[str], ven_name: str
) -> tuple[str, ...]:
    """The served areas an event with these target values applies to (empty: it is for someone else)."""
    named = tuple(a for a in served if a in targets)
    if named:
        return named
    if not targets or ven_name in targets:
        return tuple(default)
    return ()


def parse_event(
    item: Any,
    path: str,
    *,
    now: datetime,
    served: Sequence[str],
    default_areas: Sequence[str],
    ven_name: str,
    program_name: str,
) -> tuple[VtnEvent, GridEvent]:
    """One event of a ``GET /events`` answer: what the VEN keeps and the planner signals it carries."""
    event_id = str(field(item, "id", path, (str, int)))
    program_id = str(field(item, "programID", path, (str, int)))
    name = field(item, "eventName", path, str, required=False) or ""
    modification = str(
        field(item, "modificationDateTime", path, str, required=False)
        or field(item, "createdDateTime", path, str, required=False)
        or ""
    )
    descriptors = _descriptors(item, path)
    default_period = field(item, "intervalPeriod", path, dict, required=False)
    intervals = field(item, "intervals", path, list)
    areas = event_areas(_target_values(item, path), served=served, default=default_areas, ven_name=ven_name)
    prices: list[PriceSignal] = []
    limits: dict[tuple[datetime, datetime], dict[str, float]] = {}
    spans: list[tuple[datetime, datetime]] = []
    ref = f"{SOURCE}:event/{event_id}"
    for k, interval in enumerate(intervals):
        where = f"{path}.intervals[{k}]"
        field(interval, "id", where, int)
        period = field(interval, "intervalPeriod", where, dict, required=False) or default_period
        if period is None:
            msg = f"{where}.intervalPeriod"
            raise VtnAnswerError(msg, "missing, and the event has no intervalPeriod")
        p_where = f"{where}.intervalPeriod" if "intervalPeriod" in interval else f"{path}.intervalPeriod"
        start_at = parse_time(field(period, "start", p_where, str), f"{p_where}.start", now)
        duration_text = field(period, "duration", p_where, str, required=False)
        duration = parse_duration(duration_text, f"{p_where}.duration") if duration_text else None
        step = duration if duration is not None else UNTIL_FURTHER_NOTICE
        if "intervalPeriod" not in interval:  # the event's period: intervals follow one another
            start_at = start_at + k * step
        end_at = start_at + step
        if end_at <= start_at:
            msg = f"{p_where}.duration"
            raise VtnAnswerError(msg, f"{duration_text!r} is not a positive duration")
        spans.append((start_at, end_at))
        for j, payload in enumerate(field(interval, "payloads", where, list)):
            pl_where = f"{where}.payloads[{j}]"
            kind = field(payload, "type", pl_where, str)
            if kind != "PRICE" and kind not in LIMIT_TYPES:
                continue
            value = _single_number(field(payload, "values", pl_where, list), f"{pl_where}.values")
            descriptor = descriptors.get(kind, {})
            if kind == "PRICE":
                eur_per_mwh = value * _price_factor(descriptor, f"{path}.payloadDescriptors[{kind}]")
                prices.extend(PriceSignal(a, start_at, end_at, eur_per_mwh, ref) for a in areas)
            else:
                kw = value * _kw_factor(descriptor, f"{path}.payloadDescriptors[{kind}]")
                if kw < 0:
                    msg = f"{pl_where}.values[0]"
                    raise VtnAnswerError(msg, f"a capacity limit of {value:g} is negative")
                limits.setdefault((start_at, end_at), {})[kind] = kw
    limit_signals = tuple(
        LimitSignal(
            a,
            s,
            e,
            kinds.get("IMPORT_CAPACITY_LIMIT", math.inf),
            kinds.get("EXPORT_CAPACITY_LIMIT"),
            source="openadr3",
            ref=ref,
        )
        for (s, e), kinds in limits.items()
        for a in areas
    )
    start = min((s for s, _ in spans), default=now)
    end = max((e for _, e in spans), default=now)
    wants_reports = bool(field(item, "reportDescriptors", path, list, required=False))
    kept = VtnEvent(event_id, program_id, name, modification, start, end, wants_reports, areas)
    grid = GridEvent(SOURCE, ref, program_name, event_id, modification, tuple(prices), limit_signals, name)
    return kept, grid


def _descriptors(item: Mapping[str, Any], path: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for k, d in enumerate(field(item, "payloadDescriptors", path, list, required=False) or []):
        where = f"{path}.payloadDescriptors[{k}]"
        out[field(d, "payloadType", where, str)] = d
    return out


def _single_number(values: list[Any], path: str) -> float:
    if not values:
        raise VtnAnswerError(path, "empty: expected one number")
    value = values[0]
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        msg = f"{path}[0]"
        raise VtnAnswerError(msg, f"expected a finite number, got {value!r}")
    return float(value)


def _price_factor(descriptor: Mapping[str, Any], path: str) -> float:
    currency = descriptor.get("currency") or "EUR"
    if currency != "EUR":
        msg = f"{path}.currency"
        raise VtnAnswerError(msg, f"{currency!r}: the platform plans in EUR")
    units = str(descriptor.get("units") or "KWH").upper()
    if units not in PRICE_PER_MWH:
        msg = f"{path}.units"
        raise VtnAnswerError(msg, f"{units!r}: expected one of {', '.join(PRICE_PER_MWH)}")
    return PRICE_PER_MWH[units]


def _kw_factor(descriptor: Mapping[str, Any], path: str) -> float:
    units = str(descriptor.get("units") or "KW").upper()
    if units not in KW_PER_UNIT:
        msg = f"{path}.units"
        raise VtnAnswerError(msg, f"{units!r}: expected one of {', '.join(KW_PER_UNIT)}")
    return KW_PER_UNIT[units]


def fleet_report(
    *,
    ven_name: str,
    event: VtnEvent,
    aggregates: Mapping[str, AreaAggregate],
    at: datetime,
    period: timedelta,
) -> dict[str, Any]:
    """A 3.0.1 report of the fleet in each grid area of the event (all given when it names none).

    Power now (``DEMAND``, kW, import positive) and what the fleet could still move
    (``UP_REGULATION_AVAILABLE`` towards export, ``DOWN_REGULATION_AVAILABLE`` towards import).
    """
    stamp = at.isoformat().replace("+00:00", "Z")
    seconds = max(1, round(period.total_seconds()))
    return {
        "objectType": "REPORT",
        "programID": event.program_id,
        "eventID": event.id,
        "clientName": ven_name,
        "reportName": f"{ven_name}/{event.id}/{stamp}/{uuid.uuid4().hex[:12]}",  # unique: the VTN may dedupe by it
        "payloadDescriptors": [
            {"objectType": "REPORT_PAYLOAD_DESCRIPTOR", "payloadType": t, "readingType": "DIRECT_READ", "units": "KW"}
            for t in ("DEMAND", "UP_REGULATION_AVAILABLE", "DOWN_REGULATION_AVAILABLE")
        ],
        "resources": [
            {
                "resourceName": area,
                "intervalPeriod": {"start": stamp, "duration": f"PT{seconds}S"},
                "intervals": [
                    {
                        "id": 0,
                        "payloads": [
                            {"type": "DEMAND", "values": [round(a.p_kw, 3)]},
                            {"type": "UP_REGULATION_AVAILABLE", "values": [round(a.up_kw, 3)]},
                            {"type": "DOWN_REGULATION_AVAILABLE", "values": [round(a.down_kw, 3)]},
                        ],
                    }
                ],
            }
            for area, a in sorted(aggregates.items())
            if not event.areas or area in event.areas
        ],
    }
