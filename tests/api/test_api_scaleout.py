"""The scaled-out API process (PostgreSQL + Redis): orders go to the symbol's Redis stream, login
throttling is shared through Redis, and a matcher's write-only Socket.IO emits reach this process's
clients through AsyncRedisManager."""

from __future__ import annotations

import socket
import threading
import time

import socketio
import uvicorn
from fastapi.testclient import TestClient
from redis import Redis

from bourse.compose import build_scaleout, prepare_database
from schema.presence import RedisListeners
from schema.settings import Settings
from schema.transport import RedisStreamBus
from workers.publisher import SocketIORedisPublisher


def _settings(pg_url: str, redis_url: str) -> Settings:
    return Settings(
        _env_file=None,
        database_url=pg_url,
        redis_url=redis_url,
        env="test",  # type: ignore[call-arg]
        market_hours="always",
        login_attempts_per_minute=2,
    )


def test_scaled_out_api_publishes_to_redis_streams(pg_url: str, redis_url: str) -> None:
    settings = _settings(pg_url, redis_url)
    prepare_database(settings, seed=True)
    with TestClient(build_scaleout(settings)) as client:
        r = client.post(
            "/api/v1/auth/register", json={"email": "so@example.com", "password": "long password"}
        )
        token = r.json()["access_token"]
        r = client.post(
            "/api/v1/orders",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "symbol": "NVDA",
                "side": "buy",
                "type": "limit",
                "time_in_force": "gtc",
                "qty": "2",
                "limit_price": "120.00",
            },
        )
        assert r.status_code == 201, r.text
        [(_id, cmd)] = RedisStreamBus(Redis.from_url(redis_url)).read("NVDA", "0-0", 10, 0)
        assert (cmd.order_id, cmd.hold) == (r.json()["id"], 24000)
        codes = [
            client.post(
                "/api/v1/auth/login", json={"email": "so@example.com", "password": "nope nope"}
            ).status_code
            for _ in range(3)
        ]
        assert codes == [401, 401, 429]
    # A second API process shares the throttle through Redis.
    with TestClient(build_scaleout(settings)) as other:
        r = other.post("/api/v1/auth/login", json={"email": "so@example.com", "password": "long password"})
        assert (r.status_code, r.json()["code"]) == (429, "TOO_MANY_ATTEMPTS")


def test_matcher_emits_fan_out_through_redis_to_api_clients(pg_url: str, redis_url: str) -> None:
    settings = _settings(pg_url, redis_url)
    prepare_database(settings, seed=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_scaleout(settings), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        import httpx

        reg = httpx.post(
            f"{base}/api/v1/auth/register", json={"email": "fan@example.com", "password": "long password"}
        )
        account = reg.json()["account_id"]
        got: list[tuple[str, object]] = []
        client = socketio.Client(reconnection=False)
        client.on("*", lambda event, data: got.append((event, data)))
        client.connect(
            base, auth={"token": reg.json()["access_token"]}, transports=["websocket"], wait_timeout=5
        )
        time.sleep(0.5)  # the API's Redis subscription is up
        publisher = SocketIORedisPublisher(redis_url)  # what a matcher process uses
        # Other test processes may share this Redis's Socket.IO channel: mark our events.
        mine, other = (
            {"cash_available": "1.23", "cash_held": "4.56"},
            {"cash_available": "7.89", "cash_held": "0"},
        )
        publisher.emit("account", mine, f"user:{account}")
        publisher.emit("account", other, f"user:{account + 1}")
        publisher.flush()
        deadline = time.monotonic() + 5
        while ("account", mine) not in got and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert ("account", mine) in got and ("account", other) not in got
        # The connection is counted for the matchers (schema.presence), and uncounted when it closes.
        listeners = RedisListeners(Redis.from_url(redis_url))
        assert listeners.among([account, account + 1]) == {account}
        second = socketio.Client(reconnection=False)
        second.connect(
            base, auth={"token": reg.json()["access_token"]}, transports=["websocket"], wait_timeout=5
        )
        client.disconnect()
        time.sleep(0.3)
        assert listeners.among([account]) == {account}  # a second tab is still open
        second.disconnect()
        deadline = time.monotonic() + 5
        while listeners.among([account]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listeners.among([account]) == set()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_presence_counts_survive_more_connects_and_closes_in_flight_than_the_pool_holds(
    redis_url: str,
) -> None:
    """Many Socket.IO connections opening or closing at once: each count waits for a pooled connection
    instead of failing (redis-py's default pool raises past its size), so none is lost."""
    import asyncio

    from bourse.compose import async_redis_client
    from schema.presence import LISTENERS_KEY, count_connection

    accounts = range(9_000_000, 9_000_150)

    async def burst() -> None:
        client = async_redis_client(redis_url, max_connections=4)
        try:
            await asyncio.gather(*(count_connection(client, a, +1) for a in accounts for _ in range(2)))
            await asyncio.gather(*(count_connection(client, a, -1) for a in accounts))
        finally:
            await client.aclose()

    sync = Redis.from_url(redis_url)
    sync.hdel(LISTENERS_KEY, *map(str, accounts))
    try:
        asyncio.run(burst())
        assert RedisListeners(sync).among(accounts) == set(accounts)  # each still has one connection
        assert {int(n) for n in sync.hmget(LISTENERS_KEY, list(accounts))} == {1}
    finally:
        sync.hdel(LISTENERS_KEY, *map(str, accounts))
