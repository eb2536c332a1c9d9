"""Composition of a worker process from Settings: bus, lease, publisher, market data, matcher, reconciler."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence

from schema.db import make_engine, make_session_factory
from schema.marketdata import MarketDataStore, RedisMarketData
from schema.orderbook_load import all_symbols
from schema.settings import Settings
from schema.transport import CommandBus, RedisStreamBus
from workers.lease import Lease, RedisLease
from workers.matcher import Matcher
from workers.publisher import Publisher, SocketIORedisPublisher
from workers.reconciler import DEFAULT_AGE_S, reconcile

log = logging.getLogger(__name__)

RECONCILE_EVERY_S = 5.0


def shard_symbols(symbols: Sequence[str], shard: int, shards: int) -> list[str]:
    """Symbols of shard `shard` (0-based) out of `shards`: every shards-th of the sorted list."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    return [s for i, s in enumerate(sorted(symbols)) if i % shards == shard]


def build_matcher(
    settings: Settings,
    symbols: Sequence[str] | None,
    *,
    worker_id: str | None = None,
    bus: CommandBus | None = None,
    publisher: Publisher | None = None,
    market_data: MarketDataStore | None = None,
    lease: Lease | None = None,
) -> Matcher:
    """A Matcher for `symbols` (None: every instrument in SQL). With settings.redis_url set, the Redis
    stream bus, lease, market-data store and Socket.IO publisher are built here unless given; embedded
    (`bourse serve`), pass the InProcessBus, MemoryMarketData and a CallbackPublisher."""
    engine = make_engine(settings.database_url, pool_size=2)
    sessions = make_session_factory(engine)
    if symbols is None:
        with sessions() as session:
            symbols = all_symbols(session)
    if settings.redis_url is not None:
        import redis

        client = redis.Redis.from_url(settings.redis_url)
        bus = bus or RedisStreamBus(client)
        lease = lease or RedisLease(
            client, worker_id or f"{socket.gethostname()}:{os.getpid()}", settings.lease_ttl_ms
        )
        market_data = market_data or RedisMarketData(client)
        publisher = publisher or SocketIORedisPublisher(settings.redis_url)
    if bus is None:
        raise ValueError("embedded mode needs the in-process bus the API publishes to")
    return Matcher(
        sessions, bus, symbols, settings=settings, lease=lease, publisher=publisher, market_data=market_data
    )


def run_matchers(
    settings: Settings,
    symbols: Sequence[str] | None,
    stop: threading.Event | None = None,
    *,
    worker_id: str | None = None,
    reconcile_every_s: float = RECONCILE_EVERY_S,
) -> None:
    """`bourse worker`: match `symbols` (None: all) until `stop` is set, re-enqueueing stranded orders of
    the owned symbols every few seconds (and once at start, after the books are rebuilt)."""
    stop = stop or threading.Event()
    matcher = build_matcher(settings, symbols, worker_id=worker_id)
    owned = matcher.start()
    log.info("matching %s", ", ".join(owned) or "nothing yet (leases held elsewhere)")
    next_reconcile = 0.0
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_reconcile and matcher.books:
                next_reconcile = now + reconcile_every_s
                try:
                    reconcile(
                        matcher.sessions, matcher.bus, symbols=sorted(matcher.books), age_s=DEFAULT_AGE_S
                    )
                except Exception:
                    log.exception("reconciler failed")
            try:
                matcher.step()
            except Exception:
                log.exception("matcher step failed")
                time.sleep(0.5)
    finally:
        matcher.close()
