"""Database engines and sessions, built by the entry points from Settings (never at import time)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    pre_ping: bool = True,
    psycopg_prepare: bool = True,
    key_lookups_only: bool = False,
) -> Engine:
    """`pre_ping=False` skips the liveness round trip on every pool checkout: for a caller that checks out
    once per small unit of work and recovers from a dropped connection itself (the matcher, whose
    settlement retries an OperationalError on a fresh connection). `psycopg_prepare=False` (PostgreSQL):
    psycopg prepares no statement itself (prepare_threshold None), for a caller that keeps SQL-level
    prepared statements, which psycopg's DEALLOCATE ALL after a rollback would drop (workers.settlement).
    `key_lookups_only` (PostgreSQL): the sessions run with enable_seqscan off, for the intake and the
    matcher, whose every statement finds its rows by key. Their statements are prepared and keep the
    plan made when first run; made on a new, near-empty orders table, that plan was a sequential scan,
    and it stayed one as the table grew (the service bench saw ~200 scans of orders a second, most of
    PostgreSQL's CPU)."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the API read while the in-process matcher writes; FKs are off by default.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    connect_args: dict[str, object] = {} if psycopg_prepare else {"prepare_threshold": None}
    if key_lookups_only:
        connect_args["options"] = "-c enable_seqscan=off"
    return create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        connect_args=connect_args,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
