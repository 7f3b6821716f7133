"""The 2030.5 documents the client reads and writes, and their translation to and from the platform's terms.

Read: a DERControl or DefaultDERControl becomes a :class:`~v2g.services.planning.der_controls.DerControl`
(times moved onto the platform's clock by the server's time offset). Written: the EndDevice of an
area, its DERCapability, DERSettings and DERStatus, its MirrorUsagePoint and readings, and the
Responses to controls. Powers are W with a power-of-ten multiplier of 0.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from envoy_schema.server.schema.sep2.der import (
    ConnectStatusTypeValue,
    DERCapability,
    DERControlBase,
    DERControlResponse,
    DERControlType,
    DERSettings,
    DERStatus,
    DERType,
    DOESupportedMode,
    OperationalModeStatusType,
    OperationalModeStatusTypeValue,
    StateOfChargeStatusValue,
)
from envoy_schema.server.schema.sep2.der_control_types import ActivePower
from envoy_schema.server.schema.sep2.end_device import EndDeviceRequest
from envoy_schema.server.schema.sep2.metering import Reading, ReadingType
from envoy_schema.server.schema.sep2.metering_mirror import (
    MirrorMeterReading,
    MirrorMeterReadingRequest,
    MirrorUsagePointRequest,
)
from envoy_schema.server.schema.sep2.response import DERControlResponse as DERControlReply
from envoy_schema.server.schema.sep2.response import ResponseType
from envoy_schema.server.schema.sep2.types import (
    CommodityType,
    DataQualifierType,
    DateTimeIntervalType,
    FlowDirectionType,
    KindType,
    ServiceKind,
    UomType,
)
from pydantic_xml import BaseXmlModel

from v2g.adapters.ieee2030_5.identity import DeviceId
from v2g.adapters.ieee2030_5.transport import ServerAnswerError
from v2g.services.planning.der_controls import ControlBase, DerControl, EventStatus, power_w
from v2g.services.planning.der_reports import AreaFacts

DEVICE_CATEGORY_EV = 0x10000  # DeviceCategoryType bit 16: electric vehicle
MODES = DERControlType.CHARGE_MODE | DERControlType.DISCHARGE_MODE | DERControlType.OP_MOD_CONNECT
MODES |= DERControlType.OP_MOD_ENERGIZE | DERControlType.OP_MOD_MAX_LIM_W
DOE_MODES = f"{int(DOESupportedMode(15)):02X}"  # CSIP-AUS: export, import, generation and load limits
ROLE_MIRROR_DER = 0x49  # RoleFlagsType: isMirror | isDER | isSubmeter


def _xml(model: BaseXmlModel) -> str:
    out = model.to_xml(skip_empty=True)
    return out.decode() if isinstance(out, bytes) else out


def _ts(at: datetime) -> int:
    return int(at.timestamp())


def _w(kw: float) -> ActivePower:
    return ActivePower(value=round(kw * 1000.0), multiplier=0)


def mrid(*parts: str) -> str:
    """A stable 128-bit mRID (32 hex digits) from ``parts``."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32].upper()


def _opt_w(power: ActivePower | None, field: str, href: str) -> float | None:
    if power is None:
        return None
    try:
        return power_w(power.value, power.multiplier, field=field)
    except ValueError as exc:
        raise ServerAnswerError(href, field, str(exc)) from exc


def control_base(base: DERControlBase, href: str, root: str) -> ControlBase:
    pct = base.opModMaxLimW
    if pct is not None and not 0 <= pct <= 10000:
        raise ServerAnswerError(href, f"{root}/opModMaxLimW", f"{pct} is outside 0..10000 (hundredths of a percent)")
    return ControlBase(
        import_limit_w=_opt_w(base.opModImpLimW, f"{root}/opModImpLimW", href),
        export_limit_w=_opt_w(base.opModExpLimW, f"{root}/opModExpLimW", href),
        generation_limit_w=_opt_w(base.opModGenLimW, f"{root}/opModGenLimW", href),
        load_limit_w=_opt_w(base.opModLoadLimW, f"{root}/opModLoadLimW", href),
        max_limit_pct=None if pct is None else pct / 100.0,
        connect=base.opModConnect,
        energize=base.opModEnergize,
    )


def der_control(c: DERControlResponse, *, list_href: str, primacy: int, offset: timedelta) -> DerControl:
    """A DERControl of a program of ``primacy``; ``offset`` is server time minus platform time."""
    href = c.href or list_href
    if c.interval.duration <= 0:
        raise ServerAnswerError(href, "DERControl/interval/duration", f"{c.interval.duration} s is not positive")
    try:
        status = EventStatus(c.EventStatus_.currentStatus)
    except ValueError as exc:
        raise ServerAnswerError(
            href, "DERControl/EventStatus/currentStatus", f"{c.EventStatus_.currentStatus} is not an event status"
        ) from exc
    required = int(c.responseRequired, 16) if isinstance(c.responseRequired, str) else int(c.responseRequired or 0)
    return DerControl(
        mrid=c.mRID,
        href=href,
        program_primacy=primacy,
        created_at=datetime.fromtimestamp(c.creationTime, UTC) - offset,
        start_at=datetime.fromtimestamp(c.interval.start, UTC) - offset,
        duration=timedelta(seconds=c.interval.duration),
        status=status,
        base=control_base(c.DERControlBase_, href, "DERControl/DERControlBase"),
        reply_to=c.replyTo,
        response_required=required,
    )


def end_device(device: DeviceId, at: datetime) -> str:
    return _xml(
        EndDeviceRequest(
            lFDI=device.lfdi,
            sFDI=device.sfdi,
            deviceCategory=f"{DEVICE_CATEGORY_EV:X}",
            changedTime=_ts(at),
            enabled=True,
        )
    )


def response(control: DerControl, device: DeviceId, status: ResponseType, at: datetime) -> str:
    return _xml(
        DERControlReply(
            createdDateTime=_ts(at),
            endDeviceLFDI=device.lfdi,
            status=status,
            subject=control.mrid,
        )
    )


def capability(facts: AreaFacts) -> str:
    return _xml(
        DERCapability(
            modesSupported=f"{int(MODES):08X}",
            type_=DERType.ELECTRIC_VEHICLE,
            rtgMaxW=_w(max(facts.max_discharge_kw, facts.max_charge_kw)),
            rtgMaxChargeRateW=_w(facts.max_charge_kw),
            rtgMaxDischargeRateW=_w(facts.max_discharge_kw),
            doeModesSupported=DOE_MODES,
        )
    )


def settings(facts: AreaFacts, at: datetime) -> str:
    return _xml(
        DERSettings(
            modesEnabled=f"{int(MODES):08X}",
            setGradW=0,
            setMaxW=_w(max(facts.max_discharge_kw, facts.max_charge_kw)),
            setMaxChargeRateW=_w(facts.max_charge_kw),
            setMaxDischargeRateW=_w(facts.max_discharge_kw),
            updatedTime=_ts(at),
            doeModesEnabled=DOE_MODES,
        )
    )


def status(facts: AreaFacts, at: datetime) -> str:
    connected = 0b111 if facts.evs_online else 0b000  # connected | available | operating
    return _xml(
        DERStatus(
            readingTime=_ts(at),
            genConnectStatus=ConnectStatusTypeValue(dateTime=_ts(at), value=f"{connected:02X}"),
            operationalModeStatus=OperationalModeStatusTypeValue(
                dateTime=_ts(at),
                value=OperationalModeStatusType.OPERATIONAL_MODEL
                if facts.evs_online
                else OperationalModeStatusType.OFF,
            ),
            stateOfChargeStatus=None
            if facts.soc_percent is None
            else StateOfChargeStatusValue(dateTime=_ts(at), value=round(facts.soc_percent * 100)),
        )
    )


def _power_reading_type() -> ReadingType:
    return ReadingType(
        commodity=CommodityType(1),  # electricity, secondary metered (the fleet behind the connection points)
        kind=KindType.POWER,
        dataQualifier=DataQualifierType.AVERAGE,
        flowDirection=FlowDirectionType.FORWARD,
        uom=UomType(38),  # W
        powerOfTenMultiplier=0,
        intervalLength=0,
    )


def usage_point(area_id: str, device: DeviceId) -> str:
    return _xml(
        MirrorUsagePointRequest(
            mRID=mrid(device.lfdi, "mup"),
            description=f"EV fleet {area_id}"[:32],
            roleFlags=f"{ROLE_MIRROR_DER:04X}",
            serviceCategoryKind=ServiceKind.ELECTRICITY,
            status=1,
            deviceLFDI=device.lfdi,
            mirrorMeterReadings=[
                MirrorMeterReading(
                    mRID=mrid(device.lfdi, "mmr", "power"),
                    description="EV fleet net active power",
                    readingType=_power_reading_type(),
                )
            ],
        )
    )


def power_reading(device: DeviceId, p_kw: float, start_at: datetime, seconds: int) -> str:
    """The fleet's net power in the area (W, import positive), averaged over ``seconds`` from ``start_at``."""
    return _xml(
        MirrorMeterReadingRequest(
            mRID=mrid(device.lfdi, "mmr", "power"),
            description="EV fleet net active power",
            readingType=_power_reading_type(),
            reading=Reading(
                value=round(p_kw * 1000.0),
                timePeriod=DateTimeIntervalType(start=_ts(start_at), duration=seconds),
            ),
        )
    )
