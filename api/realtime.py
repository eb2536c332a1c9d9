"""Socket.IO: rooms `market:{SYMBOL}` (anyone) and `user:{account}` (JWT in the connect `auth` payload).

Scaled out, the server uses AsyncRedisManager, so events that matchers emit through a write-only
RedisManager reach clients of every API process. Embedded, the in-process matcher emits through
`LoopEmitter`, which hands each emit to the server's event loop from the matcher's thread.

A room emit goes out through `_FanoutMixin`: the packet is encoded once and written straight to each
idle websocket (docs/api.md, "Fan-out"); python-socketio's own path costs a task per client and a wake
of engine.io's per-client writer task, which was most of the server's time with 1,000 clients.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import socketio
from engineio import packet as eio_packet
from engineio.async_drivers import asgi as eio_asgi
from socketio import packet as sio_packet
from websockets.frames import Frame, Opcode
from websockets.protocol import State as WsState

from api.local_rooms import LocalRoomsOnly
from api.security import TokenError, verify_access_token
from schema.presence import count_connection
from schema.settings import Settings

if TYPE_CHECKING:
    from api.deps import Services

log = logging.getLogger("bourse.realtime")


def user_room(account_id: int) -> str:
    return f"user:{account_id}"


def market_room(symbol: str) -> str:
    return f"market:{symbol}"


# ------------------------------------------------------------------------------------------- fan-out
class _FanoutWebSocket(eio_asgi.WebSocket):  # type: ignore[misc]
    """engine.io's ASGI websocket, reachable from its engine.io socket, and counting sends in flight.

    engine.io builds one per websocket with the socket's bound `_websocket_handler`, so `handler.__self__`
    is the socket."""

    def __init__(self, handler: Any, server: Any) -> None:
        super().__init__(handler, server)
        self.sending = 0
        self._server_ws: tuple[Any, str] | None = None  # (uvicorn's protocol, its class name), once known
        socket = getattr(handler, "__self__", None)
        if socket is not None:
            socket.bourse_ws = self

    async def send(self, message: str | bytes) -> None:
        self.sending += 1
        try:
            await super().send(message)
        finally:
            self.sending -= 1

    def idle_transport(self) -> asyncio.Transport | None:
        """The client's TCP transport, if a complete text frame may be written to it right now: the ASGI
        server is uvicorn's websockets or websockets-sansio protocol, the connection is open with no
        extension (permessage-deflate would change the frame), no send is in flight and nothing is
        buffered. Otherwise None, and the frame goes through the ASGI send."""
        if self._server_ws is None:
            # Fixed for the connection's life; found once, not per frame (this runs per client per emit).
            proto = getattr(getattr(self, "asgi_send", None), "__self__", None)
            if proto is None:
                return None
            self._server_ws = (proto, type(proto).__name__)
        proto, kind = self._server_ws
        if kind == "WebSocketsSansIOProtocol":
            conn = proto.conn  # type: ignore[union-attr]
            if proto.close_sent or conn.state is not WsState.OPEN or conn.extensions:  # type: ignore[union-attr]
                return None
        elif kind == "WebSocketProtocol":
            if proto.state is not WsState.OPEN or proto.extensions:  # type: ignore[union-attr]
                return None
        else:
            return None
        transport = proto.transport  # type: ignore[union-attr]
        if self.sending or transport is None or transport.is_closing() or transport.get_write_buffer_size():
            return None
        return transport


def _send_now(send: Coroutine[Any, Any, None]) -> None:
    """Run a websocket send here, up to its first wait. The ASGI server writes to the socket at once
    unless the client's buffer is full, so almost every send ends in this call; one that must wait is
    finished by a task, so a slow client never holds up the others."""
    try:
        waiting = send.send(None)
    except StopIteration:
        return
    except Exception:  # the client is gone; its reader closes the socket
        log.debug("websocket send failed", exc_info=True)
        return
    asyncio.ensure_future(_finish_send(send, waiting))


async def _finish_send(send: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Drive the rest of a send that `_send_now` started, as a Task would from its second step on.

    It awaits the very future the send yielded, so it wakes in that future's callback order: a later send
    to the same client (engine.io's writer, waiting on the same ASGI flow control) resumes after it."""
    while True:
        if waiting is None:  # a bare yield: give the loop one turn
            await asyncio.sleep(0)
        else:
            # Task's handshake with a yielded future: the flag says "yielded by await"; a Task clears it
            # before waiting, or awaiting the future again is refused.
            waiting._asyncio_future_blocking = False
            try:
                await waiting
            except asyncio.CancelledError:
                if not waiting.done():  # this task itself is cancelled (shutdown)
                    send.close()
                    raise
            except Exception:  # noqa: BLE001, S110 - the send reads the outcome itself below
                pass
        try:
            waiting = send.send(None)
        except StopIteration:
            return
        except BaseException:  # noqa: BLE001 - the client is gone (or the send was cancelled)
            log.debug("websocket send failed", exc_info=True)
            return


class _FanoutMixin(socketio.AsyncManager):  # type: ignore[misc]
    """A room emit without callback: encode once, then per client write now or queue.

    A client whose engine.io queue is empty and whose websocket has no send in flight gets the frame
    written directly (`_send_now`); otherwise the packet joins its engine.io queue behind what is
    already there, so per-client order is kept. Anything else (callbacks, binary payloads, no server
    with websocket sockets) takes python-socketio's own path.

    "Directly" is, where the ASGI server allows it (`_FanoutWebSocket.idle_transport`), one
    `transport.write` of the websocket frame, built once for the room: about 13 us per client through
    the ASGI send against a few through the transport, and a trade goes to every client of its room."""

    frames_written = 0  # frames written straight to a transport (tests check the lane is in use)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if callback is not None or namespace not in self.rooms:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        if not isinstance(encoded, str):  # binary attachments: several frames per client
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, **kwargs)
            return
        pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        frame = pkt.encode()
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        wire: bytes | None = None
        sockets = self.server.eio.sockets
        # A client that has not answered a ping in time gets its queue: engine.io drops it if it stays silent.
        stale = time.time() - self.server.eio.ping_timeout
        for sid, eio_sid in self.get_participants(namespace, room):
            socket = sockets.get(eio_sid)
            if sid in skip or socket is None or socket.closing or socket.closed:
                continue
            ws = getattr(socket, "bourse_ws", None)
            if (
                ws is not None
                and ws.sending == 0
                and socket.upgraded
                and socket.queue.empty()
                and not (socket.last_ping and socket.last_ping < stale)
            ):
                transport = ws.idle_transport()
                if transport is None:
                    _send_now(ws.send(frame))
                else:
                    # Server frames are unmasked, so every client gets the same bytes: build them once.
                    if wire is None:
                        wire = Frame(Opcode.TEXT, frame.encode()).serialize(mask=False)
                    transport.write(wire)
                    self.frames_written += 1
            else:
                socket.queue.put_nowait(pkt)


class FanoutManager(_FanoutMixin):
    """Embedded: one process, no message queue."""


class RedisFanoutManager(LocalRoomsOnly, socketio.AsyncRedisManager, _FanoutMixin):  # type: ignore[misc]
    """Scaled out: AsyncRedisManager; what it receives from Redis is emitted by `_FanoutMixin` (next in
    the MRO after AsyncPubSubManager, whose `_handle_emit` calls `super().emit`). `LocalRoomsOnly` drops
    the matchers' messages for rooms without a client here before they are decoded."""


def cors_allowed_origins(settings: Settings) -> Callable[[str | None, dict[str, Any]], bool] | str | None:
    """python-socketio's origin check: None is same origin only; extra origins are added to it."""
    extra = frozenset(settings.socketio_cors_origins)
    if not extra:
        return None
    if "*" in extra:
        return "*"

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None or origin in extra:
            return True
        scheme, host = environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST")
        return host is not None and origin == f"{scheme}://{host}"

    return allowed


def build_server(settings: Settings) -> socketio.AsyncServer:
    """The AsyncServer; with a Redis URL its manager fans out emits from every process."""
    manager: socketio.AsyncManager = (
        FanoutManager() if settings.redis_url is None else RedisFanoutManager(settings.redis_url)
    )
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager,
        cors_allowed_origins=cors_allowed_origins(settings),
        logger=False,
        engineio_logger=False,
    )
    # engine.io picks its websocket class from this table; ours lets the fan-out reach each websocket.
    sio.eio._async = {**sio.eio._async, "websocket": _FanoutWebSocket}
    return sio


# ------------------------------------------------------------------------------------------ handlers
def register(sio: socketio.AsyncServer, services: Services) -> None:
    expiries: dict[str, asyncio.TimerHandle] = {}

    def drop_at_expiry(sid: str, exp: int) -> None:
        """An authenticated connection ends when its token does; the client reconnects with a new one."""
        delay = max(0.0, exp - services.clock().timestamp())
        expiries[sid] = asyncio.get_running_loop().call_later(
            delay, lambda: asyncio.ensure_future(sio.disconnect(sid))
        )

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if token is None:
            await sio.save_session(sid, {"account_id": None})
            return  # anonymous: market data only
        if not isinstance(token, str):
            raise socketio.exceptions.ConnectionRefusedError("UNAUTHORIZED: token must be a string")
        try:
            principal, exp = verify_access_token(token, services.settings.secret_key, services.clock())
        except TokenError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                "UNAUTHORIZED: invalid or expired token"
            ) from exc
        await sio.enter_room(sid, user_room(principal.account_id))
        # Counted before the handshake completes, so before the client can read its state over REST: a
        # matcher skips an account's pushes only while it has no connection (schema.presence).
        counted = await _count_connection(services, principal.account_id, +1)
        await sio.save_session(sid, {"account_id": principal.account_id, "counted": counted})
        drop_at_expiry(sid, exp)

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        timer = expiries.pop(sid, None)
        if timer is not None:
            timer.cancel()
        session = await sio.get_session(sid)
        if session.get("counted"):
            await _count_connection(services, session["account_id"], -1)

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


async def _count_connection(services: Services, account_id: int, delta: int) -> bool:
    """Keep the account's connection count in Redis (scaled out; embedded, the matcher builds every push).
    False if there is no Redis or it failed: the pushes then reach whoever listens, or nobody."""
    if services.async_redis is None:
        return False
    try:
        await count_connection(services.async_redis, account_id, delta)
    except Exception:  # noqa: BLE001 - a connection must not fail because the count did
        log.warning("could not count a Socket.IO connection of account %s", account_id, exc_info=True)
        return False
    return True


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
