"""Shared fixtures: databases parametrised over SQLite and PostgreSQL.

PostgreSQL runs when ``V2G_TEST_DATABASE_URL`` is set (CI sets it). Each test gets its own fresh
database created on that server and dropped afterwards, so parallel runs never share state. With
``V2G_REQUIRE_POSTGRES=1`` a missing URL is an error, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.shared_data import shared_data_dir
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import upgrade

PG_ENV = "V2G_TEST_DATABASE_URL"
TEST_OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


def _postgres_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("V2G_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{PG_ENV} must be set when V2G_REQUIRE_POSTGRES=1")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (CI sets it)")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test; dropped afterwards."""
    admin_url = _postgres_admin_url()
    assert admin_url is not None
    name = f"v2g_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'v2g.sqlite3'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def empty_engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty (unmigrated) database."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(empty_engine: Engine) -> Engine:
    """An engine on a database migrated to the latest schema."""
    upgrade(empty_engine)
    return empty_engine


@pytest.fixture
def test_output() -> Path:
    """Folder for artefacts a person may want to look at after the run (screenshots, reports)."""
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The large reference data sets (``V2G_SHARED_DATA``); tests read, never ship, them.

    Skipped with the reason when unset, a failure when ``V2G_REQUIRE_SHARED_DATA=1`` (CI) or when the
    folder named does not exist: see :mod:`tests.shared_data`.
    """
    return shared_data_dir(os.environ)
