"""SQL records of organisations, users, API tokens and which customers each organisation serves."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import insert, or_, select, update

from v2g.adapters.db.bound import ConnectionBound
from v2g.adapters.db.tables.fleet import grid_areas, sites
from v2g.adapters.db.tables.journey import api_tokens, organisation_customers, organisations, users
from v2g.services.actors.ports import Organisation, User


class SqlActorRepository(ConnectionBound):
    """Implements :class:`v2g.services.actors.ports.ActorRepository`."""

    def add_organisation(self, org: Organisation) -> None:
        self.conn.execute(insert(organisations).values(**asdict(org)))

    def organisation(self, org_id: str) -> Organisation | None:
        row = self.conn.execute(select(organisations).where(organisations.c.id == org_id)).mappings().first()
        return Organisation(**dict(row)) if row else None

    def organisations(self) -> list[Organisation]:
        rows = self.conn.execute(select(organisations).order_by(organisations.c.id)).mappings()
        return [Organisation(**dict(r)) for r in rows]

    def add_user(self, user: User) -> None:
        self.conn.execute(insert(users).values(**asdict(user)))

    def user(self, user_id: str) -> User | None:
        row = self.conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
        return User(**dict(row)) if row else None

    def user_by_username(self, username: str) -> User | None:
        row = self.conn.execute(select(users).where(users.c.username == username)).mappings().first()
        return User(**dict(row)) if row else None

    def owner_users(self, customer_id: str) -> list[User]:
        rows = self.conn.execute(select(users).where(users.c.customer_id == customer_id)).mappings()
        return [User(**dict(r)) for r in rows]

    def add_token(self, token_hash: str, user_id: str, label: str, at: datetime, expires_at: datetime | None) -> None:
        self.conn.execute(
            insert(api_tokens).values(
                token_hash=token_hash, user_id=user_id, label=label, created_at=at, expires_at=expires_at
            )
        )

    def user_by_token(self, token_hash: str, now: datetime) -> User | None:
        row = (
            self.conn.execute(
                select(users)
                .join(api_tokens, api_tokens.c.user_id == users.c.id)
                .where(api_tokens.c.token_hash == token_hash)
                .where(or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now))
            )
            .mappings()
            .first()
        )
        return User(**dict(row)) if row else None

    def revoke_token(self, token_hash: str, at: datetime) -> bool:
        t = api_tokens.c
        result = self.conn.execute(
            update(api_tokens)
            .where(t.token_hash == token_hash, or_(t.expires_at.is_(None), t.expires_at > at))
            .values(expires_at=at)
        )
        return bool(result.rowcount)

    def assign(self, organisation_id: str, customer_id: str) -> None:
        if not self.serves(organisation_id, customer_id):
            self.conn.execute(
                insert(organisation_customers).values(organisation_id=organisation_id, customer_id=customer_id)
            )

    def serves(self, organisation_id: str, customer_id: str) -> bool:
        oc = organisation_customers.c
        q = select(oc.customer_id).where(oc.organisation_id == organisation_id, oc.customer_id == customer_id)
        return self.conn.execute(q).first() is not None

    def serving_organisations(self, customer_id: str) -> list[Organisation]:
        q = (
            select(organisations)
            .join(organisation_customers, organisation_customers.c.organisation_id == organisations.c.id)
            .where(organisation_customers.c.customer_id == customer_id)
            .order_by(organisations.c.id)
        )
        return [Organisation(**dict(r)) for r in self.conn.execute(q).mappings()]

    def customers_served_by(self, organisation_id: str) -> set[str]:
        oc = organisation_customers.c
        return set(self.conn.execute(select(oc.customer_id).where(oc.organisation_id == organisation_id)).scalars())

    def customers_in_dso_areas(self, organisation_id: str) -> set[str]:
        q = (
            select(sites.c.customer_id)
            .join(grid_areas, grid_areas.c.id == sites.c.grid_area_id)
            .where(grid_areas.c.dso_org_id == organisation_id)
        )
        return set(self.conn.execute(q).scalars())
