"""Socket.IO: rooms `market:{SYMBOL}` (anyone) and `user:{account}` (JWT in the connect `auth` payload).

Scaled out, the server uses AsyncRedisManager, so events that matchers emit through a write-only
RedisManager reach clients of every API process. Embedded, the in-process matcher emits through
`LoopEmitter`, which hands each emit to the server's event loop from the matcher's thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import socketio

from api.security import TokenError, decode_access_token
from schema.settings import Settings

if TYPE_CHECKING:
    from api.deps import Services

log = logging.getLogger("bourse.realtime")


def user_room(account_id: int) -> str:
    return f"user:{account_id}"


def market_room(symbol: str) -> str:
    return f"market:{symbol}"


def build_server(settings: Settings, cors_origins: list[str] | str | None = None) -> socketio.AsyncServer:
    """The AsyncServer; with a Redis URL its manager fans out emits from every process."""
    manager = None if settings.redis_url is None else socketio.AsyncRedisManager(settings.redis_url)
    return socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager,
        # The page is served by this API (same origin); "*" keeps local dev servers (vite) working.
        cors_allowed_origins=cors_origins if cors_origins is not None else "*",
        logger=False,
        engineio_logger=False,
    )


def register(sio: socketio.AsyncServer, services: Services) -> None:
    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if token is None:
            await sio.save_session(sid, {"account_id": None})
            return  # anonymous: market data only
        if not isinstance(token, str):
            raise socketio.exceptions.ConnectionRefusedError("UNAUTHORIZED: token must be a string")
        try:
            principal = decode_access_token(token, services.settings.secret_key, services.clock())
        except TokenError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                "UNAUTHORIZED: invalid or expired token"
            ) from exc
        await sio.save_session(sid, {"account_id": principal.account_id})
        await sio.enter_room(sid, user_room(principal.account_id))

    @sio.event
    async def subscribe(sid: str, data: Any = None) -> dict[str, Any]:
        symbol = data.get("symbol") if isinstance(data, dict) else None
        valid = isinstance(symbol, str) and len(symbol) < 13
        rules = services.instruments.peek(symbol.upper()) if valid else None  # type: ignore[union-attr]
        if rules is None:
            return {"code": "UNKNOWN_SYMBOL", "message": f"unknown symbol {symbol!r}"}
        await sio.enter_room(sid, market_room(rules.symbol))
        levels = services.settings.depth_levels_published
        snapshot = await asyncio.to_thread(services.marketdata.depth, rules.symbol, levels)
        if snapshot is None:
            snapshot = {"symbol": rules.symbol, "seq": 0, "bids": [], "asks": []}
        await sio.emit("depth_snapshot", snapshot, to=sid)
        return {"ok": True, "symbol": rules.symbol}

    @sio.event
    async def unsubscribe(sid: str, data: Any = None) -> dict[str, Any]:
        symbol = data.get("symbol") if isinstance(data, dict) else None
        if isinstance(symbol, str):
            await sio.leave_room(sid, market_room(symbol.upper()))
        return {"ok": True}


class LoopEmitter:
    """Thread-safe emits into an AsyncServer running on an asyncio loop (embedded mode).

    `bind(loop)` is called at startup; emits before that (or after shutdown) are dropped, which is fine
    for push: clients resync from REST and snapshots."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop

    def emit(self, event: str, data: Any, room: str | None = None, to: str | None = None) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._sio.emit(event, data, room=room, to=to), loop)
        except RuntimeError:  # the loop stopped between the check and the call
            log.debug("dropped %s emit: loop closed", event)
