"""Migrations build the same schema as the code's tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from v2g.adapters.db.fleet_repo import NotFoundError, SqlFleetRepository
from v2g.adapters.db.migrate import (
    SchemaNotCurrentError,
    downgrade,
    ensure_schema_current,
    schema_status,
    upgrade,
)
from v2g.adapters.db.tables import metadata
from v2g.fleet import Customer, GridArea, PriceArea, Site


def test_migrations_match_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_unmigrated_database_is_refused_with_the_command_to_run(empty_engine: Engine) -> None:
    with pytest.raises(SchemaNotCurrentError, match=r"no schema yet: run `v2g db upgrade`"):
        ensure_schema_current(empty_engine)


def test_database_behind_is_refused(empty_engine: Engine) -> None:
    upgrade(empty_engine, "0001_foundation")
    status = schema_status(empty_engine)
    if status.up_to_date:
        pytest.skip("only one migration exists")
    with pytest.raises(SchemaNotCurrentError, match=r"behind .*run `v2g db upgrade`"):
        ensure_schema_current(empty_engine)


def test_newer_schema_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(SchemaNotCurrentError, match="newer than this code knows"):
        ensure_schema_current(engine)


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    ensure_schema_current(engine)


def test_fleet_round_trip_keeps_utc(engine: Engine) -> None:
    created = datetime(2026, 11, 25, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    with engine.begin() as conn:
        repo = SqlFleetRepository(conn)
        repo.add_grid_area(GridArea("GA1", "Area 1", None, PriceArea.SE3, 500.0, 400.0, 600.0, 2))
        repo.add_customer(Customer("c1", "Ann Andersson", "ann@example.se", created))
        repo.add_site(Site("s1", "c1", "Gatan 1", PriceArea.SE3, "GA1", main_fuse_a=20))
    with engine.connect() as conn:
        repo = SqlFleetRepository(conn)
        customer = repo.customer("c1")
        assert customer.created_at == datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
        assert customer.created_at.tzinfo is UTC
        assert repo.sites_of("c1")[0].fuse_limit_kw == pytest.approx(13.8)
        assert repo.grid_area("GA1").connection_queue_length == 2
        with pytest.raises(NotFoundError, match="customer 'nobody' not found"):
            repo.customer("nobody")


def test_naive_datetime_is_refused_at_the_database_edge(engine: Engine) -> None:
    from v2g.adapters.db.tables.fleet import customers

    with engine.begin() as conn, pytest.raises(Exception, match="naive datetime"):
        conn.execute(
            customers.insert().values(id="c2", name="Bo", email="bo@example.se", created_at=datetime(2026, 1, 1))
        )
