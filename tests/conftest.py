"""Shared fixtures for tests that need real services. They never skip: no service, no green run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
import redis

PG_ADMIN_URL = os.environ.get("BOURSE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("BOURSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def make_pg_database() -> Iterator[Callable[[], str]]:
    """Creates empty PostgreSQL databases on demand and drops them at the end of the session."""
    created: list[str] = []
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - environment failure
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")

    def create() -> str:
        name = f"bourse_test_{uuid.uuid4().hex[:12]}"
        admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return _pg_url(name)

    yield create
    for name in created:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def pg_url(make_pg_database: Callable[[], str]) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return make_pg_database()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis (db 15), flushed before and after the test."""
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=5)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:  # pragma: no cover - environment failure
        pytest.fail(f"Redis is not reachable at {REDIS_TEST_URL}: {exc}")
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'bourse.db'}"
