"""The Redis command stream: a batch is appended in order by one script call (from sync and from asyncio
code), and survives the script cache being emptied (a Redis restart)."""

from __future__ import annotations

import asyncio

from redis import Redis

from engine.commands import Cancel, NewOrder
from engine.types import OrderType, Side, TimeInForce
from schema.transport import RedisStreamBus, stream_key


def _order(i: int) -> NewOrder:
    return NewOrder(
        order_id=i, account=7, symbol="AAPL", side=Side.BUY, type=OrderType.LIMIT, qty=i, price=100_00,
        tif=TimeInForce.GTC, hold=i * 100_00, ts=1_765_000_000_000 + i,
    )  # fmt: skip


def test_publish_many_appends_the_batch_in_order_and_returns_its_ids(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    bus = RedisStreamBus(client)
    batch = [_order(1), Cancel(1, 7, "AAPL", 5), _order(2)]
    ids = bus.publish_many("AAPL", batch)
    assert len(ids) == 3 and all(isinstance(i, str) for i in ids)
    assert [i for i, _ in bus.read("AAPL", "0-0", 10, 0)] == ids
    assert [c for _, c in bus.read("AAPL", "0-0", 10, 0)] == batch
    assert client.xlen(stream_key("AAPL")) == 3
    assert bus.publish_many("AAPL", []) == []


def test_publish_many_reloads_its_script_after_the_cache_is_emptied(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    bus = RedisStreamBus(client)
    first = bus.publish_many("MSFT", [_order(1)])
    client.script_flush()  # what a Redis restart does to loaded scripts
    second = bus.publish_many("MSFT", [_order(2), _order(3)])
    assert [i for i, _ in bus.read("MSFT", "0-0", 10, 0)] == first + second


def test_publish_many_async_appends_through_the_asyncio_client(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = Redis.from_url(redis_url)
    batch = [_order(4), Cancel(4, 7, "AAPL", 9), _order(5)]

    async def publish() -> tuple[list[str], list[str]]:
        aclient = aioredis.Redis.from_url(redis_url)
        try:
            bus = RedisStreamBus(client, aclient)
            ids = await bus.publish_many_async("GOOG", batch)
            await aclient.script_flush()  # reloaded on the next call, as the sync script is
            return ids, await bus.publish_many_async("GOOG", [_order(6)])
        finally:
            await aclient.aclose()

    ids, more = asyncio.run(publish())
    bus = RedisStreamBus(client)
    assert [i for i, _ in bus.read("GOOG", "0-0", 10, 0)] == ids + more
    assert [c for _, c in bus.read("GOOG", "0-0", 10, 0)] == [*batch, _order(6)]
    # without an asyncio client the sync one serves (the embedded default's in-process bus does the same)
    assert len(asyncio.run(RedisStreamBus(client).publish_many_async("GOOG", [_order(7)]))) == 1
    assert client.xlen(stream_key("GOOG")) == 5
