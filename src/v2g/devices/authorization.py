"""Who may charge: idTokens (RFID cards, app tokens) are authorised against the platform's records.

A token is registered for one charger or for one customer (every charger at the customer's sites).
Unknown tokens are ``Invalid``; a token registered elsewhere is ``NotAtThisLocation``; a blocked
record wins over an accepted one; an expired record alone gives ``Expired``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class TokenStatus(StrEnum):
    """The outcome of an authorisation (the OCPP 2.x AuthorizationStatus names)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    NOT_AT_THIS_LOCATION = "NotAtThisLocation"


RECORD_STATUSES = (TokenStatus.ACCEPTED, TokenStatus.BLOCKED, TokenStatus.EXPIRED)


@dataclass(frozen=True, slots=True)
class IdTokenRecord:
    """One registration of a token: for a charger, or for all chargers of a customer."""

    id_token: str
    status: TokenStatus
    charger_id: str | None = None
    customer_id: str | None = None

    def __post_init__(self) -> None:
        if not self.id_token:
            msg = "id_token: must not be empty"
            raise ValueError(msg)
        if (self.charger_id is None) == (self.customer_id is None):
            msg = f"id_token[{self.id_token}]: register it for exactly one of charger_id or customer_id"
            raise ValueError(msg)
        if self.status not in RECORD_STATUSES:
            msg = f"status: {self.status!r} is not one of {', '.join(RECORD_STATUSES)}"
            raise ValueError(msg)


def authorize_token(records: Sequence[IdTokenRecord], *, charger_id: str, customer_id: str | None) -> TokenStatus:
    """The status of a token presented at ``charger_id`` (owned by ``customer_id``), given its records."""
    if not records:
        return TokenStatus.INVALID
    here = [
        r for r in records if r.charger_id == charger_id or (r.customer_id is not None and r.customer_id == customer_id)
    ]
    if not here:
        return TokenStatus.NOT_AT_THIS_LOCATION
    statuses = {r.status for r in here}
    if TokenStatus.BLOCKED in statuses:
        return TokenStatus.BLOCKED
    if TokenStatus.ACCEPTED in statuses:
        return TokenStatus.ACCEPTED
    return TokenStatus.EXPIRED
