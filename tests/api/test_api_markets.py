"""Market data REST: depth from the market-data store (no SQL), tape, candles, status, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_harness import Harness
from trade_rows import insert_filled_trade


def test_markets_list_every_instrument_with_its_ticker(ex: Harness) -> None:
    ex.services.marketdata.put(
        "AAPL", None, {"symbol": "AAPL", "last": "231.00", "bid": "230.99", "ask": "231.01", "volume": "120"}
    )
    markets = ex.client.get("/api/v1/markets").json()
    assert [m["symbol"] for m in markets] == ["AAPL", "AMZN", "GOOG", "MSFT", "NVDA", "TSLA"]
    aapl = markets[0]
    assert (aapl["last"], aapl["bid"], aapl["volume"], aapl["prev_close"], aapl["tick"]) == (
        "231.00",
        "230.99",
        "120",
        "229.87",
        "0.01",
    )
    assert markets[1]["last"] is None


def test_depth_comes_from_the_store_and_is_sliced(ex: Harness) -> None:
    levels = [{"price": f"{230 - i}.00", "qty": "10", "orders": 1} for i in range(30)]
    ex.services.marketdata.put("AAPL", {"symbol": "AAPL", "seq": 77, "bids": levels, "asks": []}, None)
    d = ex.client.get("/api/v1/markets/AAPL/depth").json()
    assert (d["symbol"], d["seq"], len(d["bids"]), d["asks"]) == ("AAPL", 77, 20, [])
    assert len(ex.client.get("/api/v1/markets/aapl/depth?levels=5").json()["bids"]) == 5
    empty = ex.client.get("/api/v1/markets/MSFT/depth").json()
    assert empty == {"symbol": "MSFT", "seq": 0, "bids": [], "asks": []}


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/markets/AAPL/depth?levels=0", 422, "VALIDATION_ERROR"),
        ("/api/v1/markets/AAPL/depth?levels=101", 422, "VALIDATION_ERROR"),
        ("/api/v1/markets/AAPL/depth?levels=abc", 422, "VALIDATION_ERROR"),
        ("/api/v1/markets/NOPE/depth", 404, "UNKNOWN_SYMBOL"),
        ("/api/v1/markets/NOPE/trades", 404, "UNKNOWN_SYMBOL"),
        ("/api/v1/markets/NOPE/candles", 404, "UNKNOWN_SYMBOL"),
        ("/api/v1/markets/AAPL/candles?interval=2m", 422, "VALIDATION_ERROR"),
        ("/api/v1/markets/AAPL/candles?from=100&to=50", 422, "VALIDATION_ERROR"),
        ("/api/v1/markets/AAPL/candles?interval=1m&from=0&to=99999999", 422, "VALIDATION_ERROR"),
        ("/api/v1/markets/AAPL/trades?limit=0", 422, "VALIDATION_ERROR"),
        ("/api/v1/markets/AAPL/trades?cursor=-1", 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_market_requests_get_the_standard_body(ex: Harness, path: str, status: int, code: str) -> None:
    r = ex.client.get(path)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert set(r.json()) == {"code", "message"}


def _trade(ex: Harness, seq: int, price: int, qty: int, when: datetime) -> None:
    with ex.session_factory() as s:
        # Trades need orders; a self-contained pair of rows (one account on both sides) is enough here.
        u = ex.register()
        insert_filled_trade(
            s, symbol="AAPL", seq=seq, buyer=u.account_id, seller=u.account_id, price=price, qty=qty, at=when
        )
        s.commit()


def test_tape_and_candles_are_built_from_trades(ex: Harness) -> None:
    t0 = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)  # bucket start 1772548200
    base = int(t0.timestamp())
    for seq, (offset, price, qty) in enumerate(
        [(5, 230_00, 1), (20, 231_50, 2), (59, 229_00, 3), (61, 230_10, 4)], start=1
    ):
        _trade(ex, seq, price, qty, datetime.fromtimestamp(base + offset, UTC))
    page = ex.client.get("/api/v1/markets/AAPL/trades?limit=3").json()
    assert [t["seq"] for t in page["trades"]] == [4, 3, 2] and page["next_cursor"] is not None
    rest = ex.client.get(f"/api/v1/markets/AAPL/trades?limit=3&cursor={page['next_cursor']}").json()
    assert [t["seq"] for t in rest["trades"]] == [1] and rest["next_cursor"] is None
    c = ex.client.get(f"/api/v1/markets/AAPL/candles?interval=1m&from={base}&to={base + 120}").json()
    assert c["interval"] == "1m"
    assert c["candles"] == [
        {"time": base, "open": "230.00", "high": "231.50", "low": "229.00", "close": "229.00", "volume": "6"},
        {
            "time": base + 60,
            "open": "230.10",
            "high": "230.10",
            "low": "230.10",
            "close": "230.10",
            "volume": "4",
        },
    ]
    hourly = ex.client.get(f"/api/v1/markets/AAPL/candles?interval=1h&from={base}&to={base + 3600}").json()
    assert [(k["time"], k["volume"]) for k in hourly["candles"]] == [(base - base % 3600, "10")]


def test_market_status_when_always_open(ex: Harness) -> None:
    s = ex.client.get("/api/v1/market/status").json()
    assert s["open"] is True and s["next_open"] is None and s["timezone"] == "UTC"


def test_depth_scaled_out_reads_the_matchers_redis_snapshot(ex: Harness, redis_url: str) -> None:
    import redis
    import redis.asyncio as aioredis

    from schema.marketdata import RedisMarketData

    RedisMarketData(redis.Redis.from_url(redis_url)).put(
        "AAPL",
        {"symbol": "AAPL", "seq": 5, "bids": [{"price": "230.00", "qty": "3", "orders": 1}], "asks": []},
        None,
    )
    ex.services.async_redis = aioredis.Redis.from_url(redis_url)
    from api.depthcache import RedisDepthReader

    reader = ex.services.extras["depth_reader"] = RedisDepthReader(ex.services.async_redis, max_age_s=0)
    first = ex.client.get("/api/v1/markets/AAPL/depth?levels=1").json()
    assert first == {
        "symbol": "AAPL",
        "seq": 5,
        "bids": [{"price": "230.00", "qty": "3", "orders": 1}],
        "asks": [],
    }
    RedisMarketData(redis.Redis.from_url(redis_url)).put(
        "AAPL", {"symbol": "AAPL", "seq": 6, "bids": [], "asks": []}, None
    )
    assert ex.client.get("/api/v1/markets/AAPL/depth?levels=1").json()["seq"] == 6  # the cache follows
    reader.max_age_s = 60.0  # within max_age the process reuses what it read
    RedisMarketData(redis.Redis.from_url(redis_url)).put(
        "AAPL", {"symbol": "AAPL", "seq": 7, "bids": [], "asks": []}, None
    )
    assert ex.client.get("/api/v1/markets/AAPL/depth?levels=1").json()["seq"] == 6
