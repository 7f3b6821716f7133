"""Who may read which settlement records: the one rule the API and the portal both apply.

* an owner reads their own statements and ledger lines only;
* an aggregator operator reads those of the customers its organisation serves, the reconciliation
  and the ledger export;
* any other role is refused naming the roles allowed. A customer the caller may not read is
  answered as not found, naming the id, so its existence does not leak.
"""

from __future__ import annotations

from typing import Protocol

from v2g.journey.model import Journey
from v2g.services.actors.ports import ForbiddenError, NotFoundError, Principal
from v2g.services.markets.access import AGGREGATOR_ROLE

OWNER_DATA_READERS = ("owner", AGGREGATOR_ROLE)
OPERATOR_READERS = (AGGREGATOR_ROLE,)


class VisibleJourneys(Protocol):
    """The part of the journey service that scopes a caller to the customers it serves."""

    def list_journeys(self, who: Principal) -> list[Journey]: ...


def require_role(who: Principal, allowed: tuple[str, ...], what: str) -> None:
    """Refuse (:class:`ForbiddenError`) a role not in ``allowed``, naming the roles allowed."""
    if who.role not in allowed:
        msg = f"role {who.role!r} may not read {what} (allowed: {', '.join(allowed)})"
        raise ForbiddenError(msg)


def customer_visible(who: Principal, customer_id: str, journeys: VisibleJourneys | None) -> bool:
    """The owner themselves; an aggregator operator for the customers its organisation serves."""
    if who.role == "owner":
        return who.customer_id == customer_id
    if journeys is None:
        return False
    return customer_id in {j.customer_id for j in journeys.list_journeys(who)}


def require_owner_data(who: Principal, customer_id: str, journeys: VisibleJourneys | None, what: str) -> None:
    """Owner statements and ledger lines: the role first (403), then the customer (404 naming ``what``)."""
    require_role(who, OWNER_DATA_READERS, "owner statements and ledger lines")
    if not customer_visible(who, customer_id, journeys):
        msg = f"{what} of customer {customer_id!r} not found"
        raise NotFoundError(msg)
