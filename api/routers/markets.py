"""Market data: instruments + tickers, depth (no SQL: the fast path), the tape, candles, market status."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import Route

from api.deps import Services, WireRouter, get_services, get_session
from api.depthcache import RedisDepthReader
from api.errors import ApiError, error_response
from schema.intake import Rules
from schema.marketdata import slice_depth
from schema.models import Trade
from schema.money import cents_str
from schema.views import market_view, trade_view

router = WireRouter(tags=["markets"])
MAX_ID = 2**63 - 1
INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
MAX_CANDLES = 5000
_JSON = "application/json"


def known(services: Services, symbol: str) -> Rules:
    rules = services.instruments.get(symbol.upper())
    if rules is None:
        raise ApiError(404, "UNKNOWN_SYMBOL", f"unknown symbol {symbol!r}")
    return rules


@router.get("/markets")
def list_markets(services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    rules = services.instruments.all()
    return [market_view(r, services.marketdata.ticker(s)) for s, r in sorted(rules.items())]


def _bad_levels() -> Response:
    return error_response(422, "VALIDATION_ERROR", "levels: must be an integer from 1 to 100")


DEPTH_PATH = "/markets/{symbol}/depth"


@router.get(DEPTH_PATH, responses={200: {"description": "{symbol, seq, bids, asks}"}})
async def depth(symbol: str, request: Request, levels: int = Query(20, ge=1, le=100)) -> Response:
    """`levels` is 1..100 (default 20). Documents the route; requests are served by `depth_fast`, a plain
    Starlette route installed in front of the router (see `install_fast_routes`)."""
    return await depth_fast(request)


async def depth_fast(request: Request) -> Response:
    """The hot path: no SQL, no dependency injection, no pydantic; one dict lookup (or one Redis GET) and
    a JSON body reused while the snapshot is unchanged."""
    symbol: str = request.path_params["symbol"]
    raw_levels = request.query_params.get("levels")
    if raw_levels is None:
        levels = 20
    elif raw_levels.isdigit() and 1 <= int(raw_levels) <= 100:
        levels = int(raw_levels)
    else:
        return _bad_levels()
    services: Services = request.app.state.services
    rules = services.instruments.peek(symbol.upper())
    if rules is None:
        return error_response(404, "UNKNOWN_SYMBOL", f"unknown symbol {symbol!r}")
    cache: dict[tuple[str, int], tuple[Any, bytes]] = services.extras.setdefault("depth_cache", {})
    key = (rules.symbol, levels)
    if services.async_redis is not None:
        reader = services.extras.get("depth_reader")
        if reader is None:
            reader = services.extras["depth_reader"] = RedisDepthReader(services.async_redis)
        raw = await reader.raw(rules.symbol)
        hit = cache.get(key)
        if hit is not None and hit[0] == raw:  # unchanged since the last request: reuse the body
            return Response(hit[1], media_type=_JSON)
        doc = None if raw is None else slice_depth(json.loads(raw), levels)
        version: Any = raw
    else:
        doc = services.marketdata.depth(rules.symbol, levels)
        # The engine sequence changes with every book change, so it identifies the snapshot.
        version = None if doc is None else doc["seq"]
        hit = cache.get(key)
        if hit is not None and hit[0] == version and version is not None:
            return Response(hit[1], media_type=_JSON)
    if doc is None:  # nothing published yet: an empty book at sequence 0
        doc = {"symbol": rules.symbol, "seq": 0, "bids": [], "asks": []}
    body = json.dumps(doc, separators=(",", ":")).encode()
    cache[key] = (version, body)
    return Response(body, media_type=_JSON)


@router.get("/markets/{symbol}/trades")
def trades(
    symbol: str,
    limit: int = Query(50, ge=1, le=500),
    cursor: int | None = Query(None, ge=1, le=MAX_ID),
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    rules = known(services, symbol)
    query = select(Trade).where(Trade.symbol == rules.symbol)
    if cursor is not None:
        query = query.where(Trade.id < cursor)
    rows = list(session.scalars(query.order_by(Trade.id.desc()).limit(limit)))
    return {
        "trades": [trade_view(t) for t in rows],
        "next_cursor": rows[-1].id if len(rows) == limit else None,
    }


@router.get("/markets/{symbol}/candles")
def candles(
    symbol: str,
    interval: str = Query("1m", max_length=4),
    start: int | None = Query(None, alias="from", ge=0, le=10**11),
    end: int | None = Query(None, alias="to", ge=0, le=10**11),
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """OHLCV buckets [time, time + interval) built from the tape; empty buckets are left out."""
    rules = known(services, symbol)
    if interval not in INTERVALS:
        raise ApiError(422, "VALIDATION_ERROR", f"interval: must be one of {', '.join(INTERVALS)}")
    step = INTERVALS[interval]
    end = int(services.clock().timestamp()) + 1 if end is None else end
    start = end - step * 300 if start is None else start
    if start >= end:
        raise ApiError(422, "VALIDATION_ERROR", "from: must be before to")
    if (end - start) // step > MAX_CANDLES:
        raise ApiError(422, "VALIDATION_ERROR", f"from/to: at most {MAX_CANDLES} candles per request")
    start -= start % step
    rows = session.execute(
        select(Trade.executed_at, Trade.price, Trade.qty)
        .where(
            Trade.symbol == rules.symbol,
            Trade.executed_at >= datetime.fromtimestamp(start, UTC),
            Trade.executed_at < datetime.fromtimestamp(end, UTC),
        )
        .order_by(Trade.executed_at, Trade.seq)
    )
    out: list[dict[str, Any]] = []
    bucket: list[int] | None = None  # [time, open, high, low, close, volume]
    for executed_at, price, qty in rows:
        ts = executed_at if executed_at.tzinfo else executed_at.replace(tzinfo=UTC)
        t = int(ts.timestamp()) // step * step
        if bucket is None or bucket[0] != t:
            if bucket is not None:
                out.append(_candle(bucket))
            bucket = [t, price, price, price, price, 0]
        bucket[2] = max(bucket[2], price)
        bucket[3] = min(bucket[3], price)
        bucket[4] = price
        bucket[5] += qty
    if bucket is not None:
        out.append(_candle(bucket))
    return {"symbol": rules.symbol, "interval": interval, "candles": out}


def _candle(b: list[int]) -> dict[str, Any]:
    return {
        "time": b[0],
        "open": cents_str(b[1]),
        "high": cents_str(b[2]),
        "low": cents_str(b[3]),
        "close": cents_str(b[4]),
        "volume": str(b[5]),
    }


@router.get("/market/status")
def market_status(services: Services = Depends(get_services)) -> dict[str, object]:
    assert services.calendar is not None
    return services.calendar.status(services.clock())


def install_fast_routes(app: FastAPI, prefix: str) -> None:
    """Put the depth route first, as a plain Starlette route: it skips FastAPI's per-request dependency
    solving and the linear match over every other route (the endpoint must keep up with a bare FastAPI
    endpoint). The FastAPI route above is shadowed; it stays so OpenAPI documents the endpoint."""
    app.router.routes.insert(0, Route(prefix + DEPTH_PATH, depth_fast, methods=["GET"]))
