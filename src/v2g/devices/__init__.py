"""The device layer's pure rules: charger events, protocol-neutral profiles, fail-safe sizing.

No sockets, no database, no protocol library: the OCPP adapter translates messages into the
events here and :class:`ProfilePlan` values into protocol profiles; the device services
(``v2g.services.devices``) orchestrate them through ports.
"""

from v2g.devices.authorization import IdTokenRecord, TokenStatus, authorize_token
from v2g.devices.commands import Ack, AckStatus, CommandResult, FrequencyCurvePoint, Setpoint, summarise_acks
from v2g.devices.events import (
    ChargerNotice,
    ChargingLimit,
    ChargingNeeds,
    LimitPeriod,
    MeterSample,
    TransactionEventIn,
)
from v2g.devices.profiles import (
    DEFAULT_PROFILE_ID,
    DEFAULT_STACK,
    FREQUENCY_PROFILE_ID,
    FREQUENCY_STACK,
    PLAN_PROFILE_ID,
    PLAN_STACK,
    SETPOINT_PROFILE_ID,
    SETPOINT_STACK,
    TEST_PROFILE_ID,
    TEST_STACK,
    DeviceError,
    ProfileKind,
    ProfilePeriod,
    ProfilePlan,
    failsafe_default_p_kw,
    fallback_p_kw,
    plan_from_schedule,
    profile_kind,
    test_profile_plan,
)
from v2g.devices.records import (
    ChargerAuth,
    ChargerRegistration,
    ConnectivityStatus,
    TelemetryBatchResult,
    new_v2g_site_id,
)

__all__ = [
    "DEFAULT_PROFILE_ID",
    "DEFAULT_STACK",
    "FREQUENCY_PROFILE_ID",
    "FREQUENCY_STACK",
    "PLAN_PROFILE_ID",
    "PLAN_STACK",
    "SETPOINT_PROFILE_ID",
    "SETPOINT_STACK",
    "TEST_PROFILE_ID",
    "TEST_STACK",
    "Ack",
    "AckStatus",
    "ChargerAuth",
    "ChargerNotice",
    "ChargerRegistration",
    "ChargingLimit",
    "ChargingNeeds",
    "CommandResult",
    "ConnectivityStatus",
    "DeviceError",
    "FrequencyCurvePoint",
    "IdTokenRecord",
    "LimitPeriod",
    "MeterSample",
    "ProfileKind",
    "ProfilePeriod",
    "ProfilePlan",
    "Setpoint",
    "TelemetryBatchResult",
    "TokenStatus",
    "TransactionEventIn",
    "authorize_token",
    "failsafe_default_p_kw",
    "fallback_p_kw",
    "new_v2g_site_id",
    "plan_from_schedule",
    "profile_kind",
    "summarise_acks",
    "test_profile_plan",
]
