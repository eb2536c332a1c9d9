"""Scale-out depth reads: the matcher's Redis snapshot, fetched at most once per `max_age_s` per symbol
and process, with concurrent requests sharing one in-flight GET (single flight).

Every response is still a whole snapshot stamped with the engine sequence it was taken at; it may be up
to `max_age_s` older than the newest one in Redis, which a client cannot tell from network delay.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from schema.marketdata import depth_key


class RedisDepthReader:
    def __init__(self, client: Any, max_age_s: float = 0.005) -> None:
        self._client = client
        self.max_age_s = max_age_s
        self._fresh: dict[str, tuple[float, bytes | None]] = {}
        self._inflight: dict[str, asyncio.Task[bytes | None]] = {}

    async def raw(self, symbol: str) -> bytes | None:
        hit = self._fresh.get(symbol)
        if hit is not None and time.monotonic() - hit[0] < self.max_age_s:
            return hit[1]
        task = self._inflight.get(symbol)
        if task is None:
            task = asyncio.ensure_future(self._fetch(symbol))
            self._inflight[symbol] = task
            task.add_done_callback(lambda _t: self._inflight.pop(symbol, None))
        return await asyncio.shield(task)

    async def _fetch(self, symbol: str) -> bytes | None:
        raw = await self._client.get(depth_key(symbol))
        self._fresh[symbol] = (time.monotonic(), raw)
        return raw
