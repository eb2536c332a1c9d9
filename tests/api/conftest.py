from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_harness import Harness, harness


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Every API test runs on the embedded SQLite path and on real PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return request.getfixturevalue(fixture)


@pytest.fixture
def ex(db_url: str) -> Iterator[Harness]:
    with harness(db_url) as h:
        yield h
