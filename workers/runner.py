"""Composition of a worker process from Settings: bus, lease, publisher, market data, matcher, reconciler."""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from schema.calendar import MarketCalendar, calendar_from_settings
from schema.db import make_engine, make_session_factory
from schema.gc_tuning import freeze_startup_heap
from schema.marketdata import MarketDataStore, RedisMarketData
from schema.orderbook_load import all_symbols
from schema.presence import Listeners, RedisListeners
from schema.settings import Settings
from schema.transport import CommandBus, RedisStreamBus
from workers.lease import Lease, RedisLease
from workers.matcher import Matcher
from workers.publisher import Publisher, SocketIORedisPublisher
from workers.reconciler import DEFAULT_AGE_S, reconcile, release_stranded_holds

log = logging.getLogger(__name__)

RECONCILE_EVERY_S = 5.0


def shard_symbols(symbols: Sequence[str], shard: int, shards: int) -> list[str]:
    """Symbols of shard `shard` (0-based) out of `shards`: every shards-th of the sorted list."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    return [s for i, s in enumerate(sorted(symbols)) if i % shards == shard]


def matcher_engine(database_url: str) -> Engine:
    """The matcher's engine. No pre-ping, whose round trip on every checkout (one per batch) was a few
    percent of the matcher's CPU: a connection that died while pooled fails its first statement with a
    connection-invalidated OperationalError, which the matcher retries on a fresh connection. No
    psycopg-side prepared statements: settlement keeps SQL-level ones (workers.settlement._pg_run). Index
    scans only (schema.db.make_engine)."""
    return make_engine(
        database_url, pool_size=2, pre_ping=False, psycopg_prepare=False, key_lookups_only=True
    )


def build_matcher(
    settings: Settings,
    symbols: Sequence[str] | None,
    *,
    worker_id: str | None = None,
    bus: CommandBus | None = None,
    publisher: Publisher | None = None,
    market_data: MarketDataStore | None = None,
    lease: Lease | None = None,
    session_factory: sessionmaker[Session] | None = None,
) -> Matcher:
    """A Matcher for `symbols` (None: every instrument in SQL). With settings.redis_url set, the Redis
    stream bus, lease, market-data store and Socket.IO publisher are built here unless given; embedded
    (`bourse serve`), pass the InProcessBus, MemoryMarketData and a CallbackPublisher."""
    sessions = session_factory or make_session_factory(matcher_engine(settings.database_url))
    redis_pipeline: Callable[[], Any] | None = None
    listeners: Listeners | None = None
    if symbols is None:
        with sessions() as session:
            symbols = all_symbols(session)
    if settings.redis_url is not None:
        import redis

        client = redis.Redis.from_url(settings.redis_url)
        lease = lease or RedisLease(
            client, worker_id or f"{socket.gethostname()}:{os.getpid()}", settings.lease_ttl_ms
        )
        own = bus is None and market_data is None and publisher is None
        bus = bus or RedisStreamBus(client)
        market_data = market_data or RedisMarketData(client)
        # On the matcher's client: the pushes share the post-commit pipeline and one connection's order.
        publisher = publisher or SocketIORedisPublisher(settings.redis_url, client=client)
        if own:  # all three built here, so all three take `pipe=`
            redis_pipeline = functools.partial(client.pipeline, transaction=False)
            # The pushes go to API processes, which count their connections there (schema.presence).
            listeners = RedisListeners(client)
    if bus is None:
        raise ValueError("embedded mode needs the in-process bus the API publishes to")
    return Matcher(
        sessions, bus, symbols, settings=settings, lease=lease, publisher=publisher, market_data=market_data,
        redis_pipeline=redis_pipeline, listeners=listeners,
    )  # fmt: skip


def run_matchers(
    settings: Settings,
    symbols: Sequence[str] | None,
    stop: threading.Event | None = None,
    *,
    worker_id: str | None = None,
    reconcile_every_s: float = RECONCILE_EVERY_S,
    reconcile_age_s: float = DEFAULT_AGE_S,
) -> None:
    """`bourse worker`: match `symbols` (None: all) until `stop` is set (blocking)."""
    matcher = build_matcher(settings, symbols, worker_id=worker_id)
    run_matcher_loop(
        matcher,
        stop or threading.Event(),
        calendar=calendar_from_settings(settings),
        reconcile_every_s=reconcile_every_s,
        reconcile_age_s=reconcile_age_s,
        freeze_heap=True,
    )


def run_matcher_loop(
    matcher: Matcher,
    stop: threading.Event,
    *,
    calendar: MarketCalendar | None = None,
    reconcile_every_s: float = RECONCILE_EVERY_S,
    reconcile_age_s: float = DEFAULT_AGE_S,
    freeze_heap: bool = False,
) -> None:
    """Drive `matcher` until `stop` is set, and every `reconcile_every_s` (first right after the books are
    rebuilt) re-enqueue the owned symbols' stranded orders and release stranded replace holds.

    `calendar` (None: always open; build it with `calendar_from_settings`) gates the re-enqueue: nothing
    is published while the market is closed, so orders queued for the open stay off the book until then
    (see workers.reconciler). Time is `matcher.clock`. `freeze_heap` (a worker process, not a test
    thread): `schema.gc_tuning.freeze_startup_heap` once the books are rebuilt.

    `bourse serve` runs this in a thread with the embedded matcher: after a restart the in-process queue
    is empty, and the reconciler is what re-sends orders the previous process committed but never matched.
    """
    owned = matcher.start()
    if freeze_heap:
        freeze_startup_heap()  # the rebuilt books included: see schema.gc_tuning
    log.info("matching %s", ", ".join(owned) or "nothing yet (leases held elsewhere)")
    next_reconcile = 0.0
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_reconcile and matcher.books:
                next_reconcile = now + reconcile_every_s
                try:
                    owned = sorted(matcher.books)
                    at = matcher.clock()
                    reconcile(
                        matcher.sessions,
                        matcher.bus,
                        symbols=owned,
                        age_s=reconcile_age_s,
                        now=at,
                        calendar=calendar,
                    )
                    release_stranded_holds(matcher.sessions, symbols=owned, age_s=reconcile_age_s, now=at)
                except Exception:
                    log.exception("reconciler failed")
            try:
                matcher.step()
            except Exception:
                log.exception("matcher step failed")
                time.sleep(0.5)
    finally:
        matcher.close()
