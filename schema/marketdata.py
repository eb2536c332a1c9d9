"""Latest depth snapshot and ticker per symbol, written by the matcher and read by the API without SQL.

Scaled out it lives in Redis (`depth:{SYMBOL}`, `ticker:{SYMBOL}`); embedded it is a dict in memory.
Values are already in API shape (decimal strings), so the API only slices and returns them.

depth doc:  {"symbol", "seq", "bids": [{"price", "qty", "orders"}...], "asks": [...]}  best first
ticker doc: one item of GET /markets (see docs/api.md)
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

import orjson

Doc = dict[str, Any]


def depth_key(symbol: str) -> str:
    return f"depth:{symbol}"


def ticker_key(symbol: str) -> str:
    return f"ticker:{symbol}"


def slice_depth(doc: Doc, levels: int) -> Doc:
    return {
        "symbol": doc["symbol"],
        "seq": doc["seq"],
        "bids": doc["bids"][:levels],
        "asks": doc["asks"][:levels],
    }


class MarketDataStore(Protocol):
    def put(self, symbol: str, depth: Doc | None, ticker: Doc | None, pipe: Any = None) -> None:
        """Store the docs. `pipe`: a Redis pipeline to queue the write on (the matcher sends its
        post-commit commands together); stores without Redis ignore it."""
        ...

    def depth(self, symbol: str, levels: int) -> Doc | None: ...

    def ticker(self, symbol: str) -> Doc | None: ...


class MemoryMarketData:
    def __init__(self) -> None:
        self._depth: dict[str, Doc] = {}
        self._ticker: dict[str, Doc] = {}
        self._lock = threading.Lock()

    def put(self, symbol: str, depth: Doc | None, ticker: Doc | None, pipe: Any = None) -> None:
        with self._lock:
            if depth is not None:
                self._depth[symbol] = depth
            if ticker is not None:
                self._ticker[symbol] = ticker

    def depth(self, symbol: str, levels: int) -> Doc | None:
        doc = self._depth.get(symbol)
        return None if doc is None else slice_depth(doc, levels)

    def ticker(self, symbol: str) -> Doc | None:
        return self._ticker.get(symbol)


class RedisMarketData:
    def __init__(self, redis_client) -> None:  # type: ignore[no-untyped-def]
        self._redis = redis_client

    def put(self, symbol: str, depth: Doc | None, ticker: Doc | None, pipe: Any = None) -> None:
        # orjson: the same compact JSON as json.dumps(separators=(",", ":")) for these docs (str, int and
        # None values; non-ASCII as UTF-8 rather than \u escapes), in a fraction of the time.
        mapping = {}
        if depth is not None:
            mapping[depth_key(symbol)] = orjson.dumps(depth)
        if ticker is not None:
            mapping[ticker_key(symbol)] = orjson.dumps(ticker)
        if mapping:
            (pipe if pipe is not None else self._redis).mset(mapping)

    def depth(self, symbol: str, levels: int) -> Doc | None:
        raw = self._redis.get(depth_key(symbol))
        return None if raw is None else slice_depth(json.loads(raw), levels)

    def ticker(self, symbol: str) -> Doc | None:
        raw = self._redis.get(ticker_key(symbol))
        return None if raw is None else json.loads(raw)
