"""IEEE 2030.5 identifiers, control resolution and the client's errors for a server that answers wrongly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from envoy_schema.server.schema.sep2.der import DERControlListResponse

from v2g.adapters.ieee2030_5.identity import lfdi, sfdi
from v2g.adapters.ieee2030_5.resources import der_control
from v2g.adapters.ieee2030_5.transport import ServerAnswerError, parse
from v2g.services.planning.der_controls import ControlBase, DerControl, EventStatus, resolve_windows

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_lfdi_and_sfdi_follow_the_example_of_the_standard() -> None:
    # IEEE 2030.5-2018 §6.3.4: the worked example of a certificate fingerprint
    fp = bytes.fromhex("3E4F45AB31EDFE5B67E343E5E4562E31984E23E5349E2AD745672ED145EE213A")
    assert lfdi(fp) == "3E4F45AB31EDFE5B67E343E5E4562E31984E23E5"
    assert sfdi(fp) == 167261211391


def test_sfdi_keeps_leading_zero_bits() -> None:
    fp = bytes.fromhex("0" * 64)
    assert sfdi(fp) == 0
    fp = bytes.fromhex("00000000F" + "0" * 55)
    assert sfdi(fp) == 154  # the leftmost 36 bits are 15; the check digit 4 makes 1+5+4 a multiple of 10


def _control(mrid: str, primacy: int, start_min: int, minutes: int, base: ControlBase, **kw: object) -> DerControl:
    return DerControl(
        mrid=mrid,
        href=f"/derc/{mrid}",
        program_primacy=primacy,
        created_at=kw.get("created_at", T0),  # type: ignore[arg-type]
        start_at=T0 + timedelta(minutes=start_min),
        duration=timedelta(minutes=minutes),
        status=kw.get("status", EventStatus.SCHEDULED),  # type: ignore[arg-type]
        base=base,
    )


def test_the_lowest_primacy_holds_where_controls_overlap_and_the_default_fills_the_gaps() -> None:
    low = _control("A", 1, 0, 60, ControlBase(import_limit_w=5000))
    high = _control("B", 2, 30, 60, ControlBase(import_limit_w=2000, export_limit_w=0))
    cancelled = _control("C", 0, 0, 120, ControlBase(connect=False), status=EventStatus.CANCELLED)
    default = (5, "P", ControlBase(export_limit_w=3000))
    got = resolve_windows(
        [low, high, cancelled], [default], now=T0, until=T0 + timedelta(hours=2), rated_discharge_kw=30.0
    )
    assert [(w.control, w.start_at, w.end_at, w.import_limit_kw, w.export_limit_kw) for w in got] == [
        ("A", T0, T0 + timedelta(minutes=60), 5.0, None),
        ("B", T0 + timedelta(minutes=60), T0 + timedelta(minutes=90), 2.0, 0.0),
        ("default:P", T0 + timedelta(minutes=90), T0 + timedelta(hours=2), None, 3.0),
    ]


def test_disconnect_and_max_limit_become_limits() -> None:
    assert ControlBase(connect=False, import_limit_w=9000).limits_kw(30.0) == (0.0, 0.0)
    assert ControlBase(max_limit_pct=50.0, generation_limit_w=20000).limits_kw(30.0) == (None, 15.0)
    assert ControlBase(load_limit_w=4000, import_limit_w=6000).limits_kw(30.0) == (4.0, None)


DERC = (
    '<DERControlList xmlns="urn:ieee:std:2030.5:ns" xmlns:csipaus="https://csipaus.org/ns" all="1" results="1">'
    '<DERControl href="/derc/1" replyTo="/rsp" responseRequired="03"><mRID>AB</mRID><creationTime>0</creationTime>'
    "<EventStatus><currentStatus>1</currentStatus><dateTime>0</dateTime><potentiallySuperseded>false"
    "</potentiallySuperseded></EventStatus><interval><duration>{duration}</duration><start>1796300000</start>"
    "</interval><DERControlBase><csipaus:opModImpLimW><multiplier>{mult}</multiplier><value>{value}</value>"
    "</csipaus:opModImpLimW></DERControlBase></DERControl></DERControlList>"
)


def test_a_server_answer_that_breaks_the_schema_names_the_resource_and_element() -> None:
    with pytest.raises(ServerAnswerError, match=r"^/derc: DERControlList: not an XML document"):
        parse("/derc", b"<DERControlList", DERControlListResponse)
    with pytest.raises(ServerAnswerError, match=r"^/derc: DERControlList: the document is a Error"):
        parse("/derc", b'<Error xmlns="urn:ieee:std:2030.5:ns"/>', DERControlListResponse)
    bad = DERC.format(duration=60, mult=0, value="lots").encode()
    with pytest.raises(ServerAnswerError, match=r"^/derc: DERControlList/DERControl/.*opModImpLimW"):
        parse("/derc", bad, DERControlListResponse)
    for duration, mult, value, where in (
        (0, 0, 5000, "DERControl/interval/duration: 0 s is not positive"),
        (60, 0, -5, "opModImpLimW: -5 W is negative"),
        (60, 12, 5, "opModImpLimW.multiplier: 12 is outside -9..9"),
    ):
        listed = parse("/derc", DERC.format(duration=duration, mult=mult, value=value).encode(), DERControlListResponse)
        assert listed.DERControl is not None
        with pytest.raises(ServerAnswerError, match=where):
            der_control(listed.DERControl[0], list_href="/derc", primacy=1, offset=timedelta(0))


def test_a_control_is_moved_onto_the_platforms_clock() -> None:
    listed = parse("/derc", DERC.format(duration=600, mult=3, value=5).encode(), DERControlListResponse)
    assert listed.DERControl is not None
    c = der_control(listed.DERControl[0], list_href="/derc", primacy=3, offset=timedelta(seconds=10))
    assert c.start_at == datetime.fromtimestamp(1796300000 - 10, UTC)
    assert (c.base.import_limit_w, c.status, c.response_required, c.reply_to) == (5000.0, EventStatus.ACTIVE, 3, "/rsp")
