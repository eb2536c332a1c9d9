"""The migrations build exactly the schema the models describe, on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from schema.db import make_engine
from schema.migrate import current, upgrade
from schema.models import Base


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_upgrade_builds_the_models_schema_and_is_idempotent(backend: str, request) -> None:  # type: ignore[no-untyped-def]
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    upgrade(url)
    upgrade(url)  # a second run is a no-op
    assert current(url) is not None
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"
