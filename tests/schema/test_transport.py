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


def test_publish_batches_async_appends_every_symbols_batch_in_one_call(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = Redis.from_url(redis_url)
    goog = [_order(4), Cancel(4, 7, "AAPL", 9), _order(5)]
    tsla = [_order(8), _order(9)]

    async def publish() -> tuple[dict[str, list[str]], dict[str, list[str]], int]:
        aclient = aioredis.Redis.from_url(redis_url)
        calls = 0
        real = aclient.evalsha

        async def counted(*args: object) -> object:
            nonlocal calls
            calls += 1
            return await real(*args)  # type: ignore[arg-type]

        aclient.evalsha = counted  # type: ignore[method-assign]
        try:
            bus = RedisStreamBus(client, aclient)
            ids = await bus.publish_batches_async({"GOOG": goog, "TSLA": tsla, "IBM": []})
            await aclient.script_flush()  # reloaded on the next call, as the sync script is
            return ids, await bus.publish_batches_async({"GOOG": [_order(6)]}), calls
        finally:
            await aclient.aclose()

    ids, more, calls = asyncio.run(publish())
    assert calls == 3  # one per publish, and the one NOSCRIPT made redis-py repeat after loading
    assert set(ids) == {"GOOG", "TSLA"}
    bus = RedisStreamBus(client)
    assert [i for i, _ in bus.read("GOOG", "0-0", 10, 0)] == ids["GOOG"] + more["GOOG"]
    assert [c for _, c in bus.read("GOOG", "0-0", 10, 0)] == [*goog, _order(6)]
    assert [i for i, _ in bus.read("TSLA", "0-0", 10, 0)] == ids["TSLA"]
    assert [c for _, c in bus.read("TSLA", "0-0", 10, 0)] == tsla
    assert client.exists(stream_key("IBM")) == 0
    # without an asyncio client the sync one serves (the embedded default's in-process bus does the same)
    tsla_before = client.xlen(stream_key("TSLA"))
    more = asyncio.run(
        RedisStreamBus(client).publish_batches_async({"GOOG": [_order(7)], "TSLA": [_order(8)]})
    )
    assert {symbol: len(i) for symbol, i in more.items()} == {"GOOG": 1, "TSLA": 1}
    assert client.xlen(stream_key("GOOG")) == 5
    assert client.xlen(stream_key("TSLA")) == tsla_before + 1
    assert [c for _, c in bus.read("TSLA", "0-0", 10, 0)][-1] == _order(8)
