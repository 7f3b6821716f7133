"""Price and frequency feeds: real data layouts, API response shapes, replay speed and live UDP input."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.shared_data import FREQUENCY_2015_01_01
from v2g.adapters.feeds.entsoe import parse_entsoe_csv, parse_entsoe_xml
from v2g.adapters.feeds.esett import parse_esett_prices
from v2g.adapters.feeds.frequency import FrequencyRecording, FrequencySample, UdpFrequencyInput
from v2g.adapters.feeds.mimer import parse_mimer_fcr_csv, parse_mimer_mfrr_cm_csv
from v2g.adapters.feeds.nordpool import parse_nordpool_json
from v2g.adapters.feeds.prices import FeedError, StaticPriceSource, parse_price_csv, quarter_prices

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"


async def until(condition: Callable[[], bool], limit_s: float = 20.0) -> None:
    """Wait until ``condition`` holds (the datagrams are handled by the event loop); fail after ``limit_s``."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_shared_price_csv() -> None:
    lines = (FIXTURES / "se_dayahead_hourly_2015-12-31_2016-01-02.csv").read_text().splitlines()
    assert len(lines) == 49
    points = parse_price_csv("\n".join(lines))
    assert len(points) == 48 * 4
    first = points[0]
    assert first.start_at == datetime(2015, 12, 31, 23, tzinfo=UTC)
    assert first.end_at - first.start_at == timedelta(hours=1)
    se3 = [p for p in points if p.area == "SE3"]
    quarters = quarter_prices(se3)
    assert len(quarters) == 48 * 4
    assert quarters[first.start_at + timedelta(minutes=45)] == se3[0].price
    window = StaticPriceSource(points).prices(first.start_at, first.start_at + timedelta(hours=2))
    assert len(window) == 8


def test_price_csv_errors_name_line_and_field() -> None:
    with pytest.raises(FeedError, match="line 3: SE3 'abc' is not a number"):
        parse_price_csv("utc_start,SE1,SE2,SE3,SE4\n2020-01-01T00:00Z,1,2,3,4\n2020-01-01T01:00Z,1,2,abc,4\n")
    with pytest.raises(FeedError, match="line 2: utc_start"):
        parse_price_csv("utc_start,SE1,SE2,SE3,SE4\nyesterday,1,2,3,4\n")


def test_entsoe_a03_quarter_hours() -> None:
    points = parse_entsoe_xml((FIXTURES / "entsoe_a44_se3.xml").read_text())
    assert [p.area for p in points] == ["SE3"] * 4
    assert [p.price for p in points] == [40.0, 39.99, 40.0, 40.0]  # position 4 repeats position 3 (A03)
    assert points[0].start_at == datetime(2025, 10, 1, 1, 0, tzinfo=UTC)
    assert points[3].end_at == datetime(2025, 10, 1, 2, 0, tzinfo=UTC)


def test_entsoe_acknowledgement_and_garbage() -> None:
    ack = (
        '<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">'
        "<Reason><code>999</code><text>No matching data found</text></Reason></Acknowledgement_MarketDocument>"
    )
    with pytest.raises(FeedError, match="No matching data found"):
        parse_entsoe_xml(ack)
    with pytest.raises(FeedError, match="not well-formed"):
        parse_entsoe_xml("<nope")


def test_nordpool_matches_entsoe() -> None:
    nordpool = parse_nordpool_json((FIXTURES / "nordpool_dayahead_se3_2025-10-01.json").read_bytes())
    entsoe = parse_entsoe_xml((FIXTURES / "entsoe_a44_se3.xml").read_text())
    assert [(p.start_at, p.price) for p in nordpool] == [(p.start_at, p.price) for p in entsoe]
    with pytest.raises(FeedError, match=r"multiAreaEntries\[0\]: missing field"):
        parse_nordpool_json('{"multiAreaEntries": [{"deliveryStart": "2025-10-01T22:00:00Z"}]}')


def test_entsoe_csv_export_matches_the_xml() -> None:
    points = parse_entsoe_csv((FIXTURES / "entsoe_dayahead_se3_2025-10-01.csv").read_text())
    assert len(points) == 24
    assert {p.area for p in points} == {"SE3"}
    assert points[0].start_at == datetime(2025, 10, 1, 0, tzinfo=UTC)  # 02:00 CEST
    assert all(p.end_at - p.start_at == timedelta(minutes=15) for p in points)
    xml = parse_entsoe_xml((FIXTURES / "entsoe_a44_se3.xml").read_text())
    by_start = {p.start_at: p.price for p in points}
    assert [by_start[p.start_at] for p in xml] == [p.price for p in xml] == [40.0, 39.99, 40.0, 40.0]


def test_entsoe_csv_errors_name_line_and_column() -> None:
    header = '"MTU (CET/CEST)","Area","Sequence","Day-ahead Price (EUR/MWh)"\n'
    with pytest.raises(FeedError, match=r"line 3: Day-ahead Price \(EUR/MWh\) 'abc' is not a number"):
        parse_entsoe_csv(
            header
            + '"01/10/2025 02:00:00 - 01/10/2025 02:15:00","BZN|SE3","","45.61"\n'
            + '"01/10/2025 02:15:00 - 01/10/2025 02:30:00","BZN|SE3","","abc"\n'
        )
    with pytest.raises(FeedError, match=r"line 2: MTU \(CET/CEST\): '2025-10-01 02:00' is not"):
        parse_entsoe_csv(header + '"2025-10-01 02:00 - 2025-10-01 02:15","BZN|SE3","","1"\n')
    with pytest.raises(FeedError, match="line 1: needs an 'MTU"):
        parse_entsoe_csv("time,price\n")


def test_entsoe_csv_autumn_hour_twice() -> None:
    text = (
        '"MTU (CET/CEST)","Area","Sequence","Day-ahead Price (EUR/MWh)"\n'
        '"26/10/2025 02:00:00 (CEST) - 26/10/2025 02:00:00 (CET)","BZN|SE3","","10"\n'
        '"26/10/2025 02:00:00 (CET) - 26/10/2025 03:00:00 (CET)","BZN|SE3","","20"\n'
    )
    first, second = parse_entsoe_csv(text)
    assert (first.start_at, first.end_at) == (
        datetime(2025, 10, 26, 0, tzinfo=UTC),
        datetime(2025, 10, 26, 1, tzinfo=UTC),
    )
    assert (second.start_at, second.end_at) == (
        datetime(2025, 10, 26, 1, tzinfo=UTC),
        datetime(2025, 10, 26, 2, tzinfo=UTC),
    )


def test_mimer_fcr_export_as_published() -> None:
    results = parse_mimer_fcr_csv((FIXTURES / "svk_mimer_fcr_export_2026-01-01.csv").read_text(encoding="utf-8"))
    assert len(results) == 24 * 3
    first = {r.product: r for r in results if r.start_at == datetime(2025, 12, 31, 23, tzinfo=UTC)}
    assert first["fcr_n"].price_eur_per_mw_h == pytest.approx(9.451339285714286)
    assert first["fcr_n"].volume_mw == 224
    assert first["fcr_d_up"].price_eur_per_mw_h == pytest.approx(3.928365553602812)
    assert first["fcr_d_down"].price_eur_per_mw_h == pytest.approx(1.1634275936599424)
    assert first["fcr_d_down"].volume_mw == pytest.approx(555.2)
    assert {r.auction for r in results} == {"total"}
    assert results[-1].start_at == datetime(2026, 1, 1, 22, tzinfo=UTC)


def test_mimer_fcr_errors_name_line_and_column() -> None:
    with pytest.raises(FeedError, match="line 2: Datum '10/03/2024' is not"):
        parse_mimer_fcr_csv("Datum;FCR-N Pris (EUR/MW)\n10/03/2024;1,0\n")
    with pytest.raises(FeedError, match=r"line 3: FCR-D upp Pris \(EUR/MW\) 'x' is not a number"):
        parse_mimer_fcr_csv(
            "Datum;FCR-N Pris (EUR/MW);FCR-D upp Pris (EUR/MW)\n2026-01-01 00:00:00;1,5;2\n2026-01-01 01:00:00;1;x\n"
        )
    with pytest.raises(FeedError, match="no Datum column"):
        parse_mimer_fcr_csv("Period;FCR-N Pris (EUR/MW)\n2026-01-01 00:00:00;1\n")
    with pytest.raises(FeedError, match="auction: 'd-3'"):
        parse_mimer_fcr_csv("Datum;FCR-N Pris (EUR/MW)\n", auction="d-3")


def test_mimer_mfrr_capacity_export() -> None:
    results = parse_mimer_mfrr_cm_csv((FIXTURES / "svk_mimer_mfrr_cm_format_example.csv").read_text(encoding="utf-8"))
    se3_up = [(r.start_at, r.price_eur_per_mw_h) for r in results if r.area == "SE3" and r.product == "mfrr_cm_up"]
    # 02:00 local twice on 2025-10-26: 00:00 and 01:00 UTC; then 03:00 local = 02:00 UTC
    assert se3_up == [
        (datetime(2025, 10, 26, 0, tzinfo=UTC), 3.5),
        (datetime(2025, 10, 26, 1, tzinfo=UTC), 3.1),
        (datetime(2025, 10, 26, 2, tzinfo=UTC), 2.9),
    ]
    se4 = [r for r in results if r.area == "SE4"]
    assert {r.product: r.volume_mw for r in se4} == {"mfrr_cm_up": 40.0, "mfrr_cm_down": 30.0}
    with pytest.raises(FeedError, match=r"line 2: mFRR Upp Pris \(EUR/MW\) 'n/a' is not a number"):
        parse_mimer_mfrr_cm_csv("Period;Elområde;mFRR Upp Pris (EUR/MW)\n2025-10-01 00:00:00;SN3;n/a\n")
    with pytest.raises(FeedError, match="line 2: Elområde is empty"):
        parse_mimer_mfrr_cm_csv("Period;Elområde;mFRR Upp Pris (EUR/MW)\n2025-10-01 00:00:00;;1\n")


def test_esett_imbalance_and_mfrr_activation_prices() -> None:
    points = parse_esett_prices((FIXTURES / "esett_exp14_prices_format_example.json").read_bytes())
    se3 = {(p.product, p.start_at): p for p in points if p.area == "SE3"}
    t0 = datetime(2026, 1, 15, 0, tzinfo=UTC)
    assert se3[("imbalance", t0)].price == 21.0
    assert se3[("mfrr_up", t0)].price == 76.32
    assert se3[("mfrr_down", t0)].price == 21.0
    assert se3[("mfrr_up", t0)].end_at == t0 + timedelta(minutes=15)
    assert not any(p.start_at == t0 + timedelta(minutes=30) for p in points)  # not yet published
    assert {p.area for p in points} == {"SE3", "SE4"}  # the EIC code of SE4 is named
    csv_text = "timestampUTC,mba,imblSalesPrice,upRegPrice,downRegPrice\n2026-01-15T00:00:00Z,SE3,21.0,76.32,21.0\n"
    assert [(p.product, p.price) for p in parse_esett_prices(csv_text)] == [
        ("imbalance", 21.0),
        ("mfrr_up", 76.32),
        ("mfrr_down", 21.0),
    ]
    with pytest.raises(FeedError, match=r"record\[0\]: upRegPrice 'high' is not a number"):
        parse_esett_prices('[{"timestampUTC": "2026-01-15T00:00:00Z", "mba": "SE3", "upRegPrice": "high"}]')
    with pytest.raises(FeedError, match="line 2: timestampUTC is missing"):
        parse_esett_prices("timestampUTC,mba,imblSalesPrice\n,SE3,1\n")


async def test_frequency_replay_at_1000x(tmp_path: Path) -> None:
    source = FREQUENCY_2015_01_01
    replay = FrequencyRecording(source, seconds=500, speed=1000.0)
    started = asyncio.get_running_loop().time()
    samples = [s async for s in replay.samples()]
    elapsed = asyncio.get_running_loop().time() - started
    assert len(samples) == 500
    span = (samples[-1].at - samples[0].at).total_seconds()
    assert span >= 499
    assert elapsed >= span / 1000.0 * 0.9  # paced, not dumped
    assert all(49.0 < s.f_hz < 51.0 for s in samples)
    small = tmp_path / "f.csv.gz"
    with gzip.open(small, "wt") as fh:
        fh.write("utc,f_hz\n2015-01-01T00:00:00Z,50.01\n2015-01-01T00:00:01Z,\n2015-01-01T00:00:02Z,49.98\n")
    blanks = FrequencyRecording(small, speed=1000.0)
    assert [s.f_hz async for s in blanks.samples()] == [50.01, 50.01, 49.98]  # a blank second holds the last value
    assert blanks.filled == 1
    assert blanks.step_s == 1.0
    with pytest.raises(FeedError, match="speed"):
        FrequencyRecording(small, speed=5000.0)


async def test_udp_frequency_input() -> None:
    feed = UdpFrequencyInput(max_rate_hz=1e9)
    port = await feed.start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(b"2026-11-25T10:00:00Z,49.952", ("127.0.0.1", port))
        sock.sendto(b'{"at": "2026-11-25T10:00:00.100Z", "f_hz": 49.95}', ("127.0.0.1", port))
        sock.sendto(b"garbage", ("127.0.0.1", port))
        sock.sendto(b"2026-11-25T10:00:00.2Z,61.0", ("127.0.0.1", port))
        sock.close()
        stream = feed.samples()
        first = await asyncio.wait_for(anext(stream), 2.0)
        second = await asyncio.wait_for(anext(stream), 2.0)
        assert first == FrequencySample(datetime(2026, 11, 25, 10, 0, tzinfo=UTC), 49.952)
        assert second.f_hz == 49.95
        await until(lambda: len(feed.rejected) == 2)
        assert "outside" in feed.rejected[1]
    finally:
        feed.close()


async def test_udp_input_thins_to_max_rate() -> None:
    feed = UdpFrequencyInput(max_rate_hz=10.0)
    port = await feed.start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(5):
            sock.sendto(f"2026-11-25T10:00:00.0{i}Z,50.0{i}".encode(), ("127.0.0.1", port))
        sock.close()
        first = await asyncio.wait_for(anext(feed.samples()), 2.0)
        assert first.f_hz == 50.0
        await until(lambda: feed.thinned == 4)  # 5 datagrams within 100 ms: one passes at 10 Hz
    finally:
        feed.close()
