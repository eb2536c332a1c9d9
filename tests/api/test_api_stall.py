"""Regression: many concurrent requests through a real uvicorn, with a connection pool and a thread pool
both smaller than the requests in flight, all succeed.

The stall this pins (benchmarks/RESULTS.md, "A stall that is not CPU"): a sync route returned, kept its
session's connection until the dependency exit, and needed a thread-pool token again to validate its
return value; meanwhile new requests held every token waiting for a connection, so nothing moved until
pool_timeout failed them with 503. It needs in flight >= connections + tokens; here 2 + 4 = 6 vs 48.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import httpx
import pytest
import uvicorn
from api_harness import prepare_database
from sqlalchemy import create_engine

from api.app import create_app
from api.deps import InstrumentCache, Services
from schema.db import make_session_factory
from schema.marketdata import MemoryMarketData
from schema.settings import Settings
from schema.transport import InProcessBus

CONNECTIONS = 2
TOKENS = 4
IN_FLIGHT = 48


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _small_tokens() -> None:  # runs in the server's event loop (lifespan startup)
    anyio.to_thread.current_default_thread_limiter().total_tokens = TOKENS


@pytest.fixture
def base(db_url: str) -> Iterator[str]:
    prepare_database(db_url).kw["bind"].dispose()
    url = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    kw: dict[str, Any] = {"pool_size": CONNECTIONS, "max_overflow": 0, "pool_timeout": 10}
    if url.startswith("sqlite"):
        kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kw)
    factory = make_session_factory(engine)
    settings = Settings(_env_file=None, database_url=db_url, env="test", market_hours="always")  # type: ignore[call-arg]
    services = Services(settings, factory, InProcessBus(), MemoryMarketData(), InstrumentCache(factory))
    services.extras["on_startup"] = [_small_tokens]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, services), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def test_more_requests_in_flight_than_connections_and_tokens_all_succeed(base: str) -> None:
    r = httpx.post(
        f"{base}/api/v1/auth/register", json={"email": "stall@example.com", "password": "correct horse 1"}
    )
    assert r.status_code == 201, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    order = {
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "qty": "1",
        "limit_price": "230.00",
    }
    barrier = threading.Barrier(IN_FLIGHT)

    def one(i: int) -> tuple[str, int]:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            barrier.wait()
            match i % 3:
                case 0:  # sync route: get_session + the endpoint in the pool
                    return "list", client.get("/api/v1/orders").status_code
                case 1:
                    return "account", client.get("/api/v1/account").status_code
                case _:  # async route, one hop
                    return "post", client.post("/api/v1/orders", json=order).status_code

    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        results = Counter(pool.map(one, range(IN_FLIGHT)))
    # A stall ends in pool_timeout (10 s): SERVICE_UNAVAILABLE (503) for the requests that waited on it.
    assert results == {("list", 200): 16, ("account", 200): 16, ("post", 201): 16}, results
