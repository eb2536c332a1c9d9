"""Build the running system from Settings: the embedded single process, or one scaled-out API process.

This is the only package that imports both `api` and `workers`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from api.app import create_app
from api.deps import InstrumentCache, Services
from api.hot_path import ASGIApp
from api.realtime import LoopEmitter, build_server
from api.security import RedisThrottle
from schema.db import make_engine, make_session_factory
from schema.gc_tuning import freeze_startup_heap
from schema.marketdata import MemoryMarketData, RedisMarketData
from schema.migrate import upgrade
from schema.seed import seed_demo
from schema.settings import Settings
from schema.transport import InProcessBus, RedisStreamBus

log = logging.getLogger("bourse")


def prepare_database(settings: Settings, *, seed: bool) -> None:
    upgrade(settings.database_url)
    if seed:
        engine = make_engine(settings.database_url, pool_size=1)
        try:
            with make_session_factory(engine)() as session:
                added = seed_demo(session)
                session.commit()
            if added:
                log.info("seeded demo instruments: %s", ", ".join(added))
        finally:
            engine.dispose()


@dataclass
class Embedded:
    """`bourse serve`: API, matchers and Socket.IO in one process, SQLite and in-process queues."""

    settings: Settings
    app: ASGIApp
    services: Services
    stop: threading.Event = field(default_factory=threading.Event)
    running: Any = None  # bourse.embedded_workers.Running once started


def build_embedded(settings: Settings, *, agents: bool | None = None, freeze_heap: bool = False) -> Embedded:
    prepare_database(settings, seed=True)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    bus = InProcessBus()
    marketdata = MemoryMarketData()
    sio = build_server(settings)
    emitter = LoopEmitter(sio)
    services = Services(
        settings=settings,
        session_factory=factory,
        bus=bus,
        marketdata=marketdata,
        instruments=InstrumentCache(factory),
        sio=sio,
    )
    services.extras["emitter"] = emitter
    embedded = Embedded(settings, create_app(settings, services), services)
    start_matchers = _matcher_starter(embedded, factory, bus, marketdata, emitter, agents)
    services.extras["on_startup"] = [start_matchers]
    if freeze_heap:  # `bourse serve`, not a test: keep the startup heap out of full collections
        services.extras["on_startup"].append(freeze_startup_heap)
    services.extras["on_shutdown"] = [lambda: _stop(embedded)]
    return embedded


def _matcher_starter(
    embedded: Embedded,
    factory: Any,
    bus: InProcessBus,
    marketdata: MemoryMarketData,
    emitter: LoopEmitter,
    agents: bool | None,
) -> Any:
    def start() -> None:
        from bourse import embedded_workers

        running = embedded_workers.start(
            embedded.settings,
            factory,
            bus,
            marketdata,
            emitter.emit,
            embedded.stop,
            agents=embedded.settings.agents if agents is None else agents,
        )
        embedded.running = running

    return start


def _stop(embedded: Embedded) -> None:
    embedded.stop.set()
    wake = getattr(embedded.services.bus, "wake", None)
    if wake is not None:
        wake()
    running = embedded.running
    if running is not None:
        for stopper in running.stoppers:
            stopper()
        for thread in running.threads:
            thread.join(timeout=5)


def build_scaleout(settings: Settings, *, on_startup: Sequence[Callable[[], None]] = ()) -> ASGIApp:
    """One API process of the scaled-out setup: PostgreSQL + Redis (streams, depth, fan-out, throttle)."""
    if settings.redis_url is None:
        raise SystemExit("bourse api needs BOURSE_REDIS_URL (and a PostgreSQL BOURSE_DATABASE_URL)")
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    client = redis.Redis.from_url(settings.redis_url)
    async_client = async_redis_client(settings.redis_url)
    services = Services(
        settings=settings,
        session_factory=factory,
        bus=RedisStreamBus(client, async_client),
        marketdata=RedisMarketData(client),
        instruments=InstrumentCache(factory),
        throttle=RedisThrottle(client, settings.login_attempts_per_minute),
        redis=client,
        async_redis=async_client,
    )
    services.extras["on_startup"] = list(on_startup)
    return create_app(settings, services)


def async_redis_client(url: str, max_connections: int = 100, wait_s: float = 10.0) -> Any:
    """The API process's asyncio Redis client (presence counts, the depth fast path). Its pool waits for a
    free connection: redis-py's default pool raises MaxConnectionsError past 100 commands in flight, and
    when the service bench's 200 Socket.IO listeners closed together, ~60 of their presence decrements
    were lost that way (the matcher then went on building pushes for nobody)."""
    import redis.asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait_s)
    return aioredis.Redis(connection_pool=pool)


def scaleout_app() -> ASGIApp:
    """uvicorn factory for `bourse api --workers N` (each worker builds its own pools)."""
    # A server process: once started, keep its startup heap out of full collections (schema.gc_tuning).
    return build_scaleout(Settings(), on_startup=[freeze_startup_heap])
