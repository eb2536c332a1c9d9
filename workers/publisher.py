"""Push after commit: Socket.IO events (docs/api.md) to `market:{symbol}` and `user:{account}` rooms.

`Publisher` is the small port the matcher talks to. Scaled out it is python-socketio's write-only Redis
manager (buffered: a settled batch's pushes go out as one pub/sub message, schema.push_wire); embedded, the
bourse/ composition passes a function (e.g. one that schedules `sio.emit` on the server's loop).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import orjson
import socketio

from schema.push_wire import EMIT_PREFIX, batch_payload

log = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any], str], None]


class Publisher(Protocol):
    def emit(self, event: str, data: dict[str, Any], room: str) -> None: ...

    def flush(self, pipe: Any = None) -> None:
        """Send what emit buffered (called once per settled batch). `pipe`: a Redis pipeline to queue the
        sends on (the matcher sends its post-commit commands together); publishers without Redis ignore
        it."""
        ...


def market_room(symbol: str) -> str:
    return f"market:{symbol}"


def user_room(account_id: int) -> str:
    return f"user:{account_id}"


class CallbackPublisher:
    """Embedded mode: every emit goes straight to `fn(event, data, room)`."""

    def __init__(self, fn: Emit) -> None:
        self._fn = fn

    def emit(self, event: str, data: dict[str, Any], room: str) -> None:
        try:
            self._fn(event, data, room)
        except Exception:  # a push failure must never break settlement
            log.exception("push of %s to %s failed", event, room)

    def flush(self, pipe: Any = None) -> None:
        return None


class RecordingPublisher:
    """Keeps every emit in memory: tests, and a way to look at what a batch pushed."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], str]] = []
        self._lock = threading.Lock()

    def emit(self, event: str, data: dict[str, Any], room: str) -> None:
        with self._lock:
            self.events.append((event, data, room))

    def flush(self, pipe: Any = None) -> None:
        return None

    def of(self, event: str, room: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [d for e, d, r in self.events if e == event and (room is None or r == room)]


# Emits per pub/sub message: API processes parse one message per chunk (schema.push_wire).
_CHUNK = 500


class _BufferedRedisManager(socketio.RedisManager):  # type: ignore[misc]
    """socketio.RedisManager whose messages are queued, already encoded, and sent together by flush().

    `client`: publish with this Redis client instead of the manager's own connection (the matcher's, so
    the pushes can share its post-commit pipeline and keep one order with the unpipelined ones)."""

    def __init__(self, url: str, channel: str = "socketio", client: Any = None) -> None:
        super().__init__(url, channel=channel, write_only=True)
        self._pending: list[bytes] = []
        self._client = client
        # The fixed parts of every emit message, in the key order of PubSubManager.emit's dict.
        self._tail = b'], "binary": false, "namespace": "/", "skip_sid": null, "callback": null, "host_id": '
        self._tail += orjson.dumps(self.host_id) + b"}"

    def _publish(self, data: Any) -> None:  # called by PubSubManager.emit (the library's own path)
        self._pending.append(self.json.dumps(data).encode())

    def queue_emit(self, event: str, data: dict[str, Any], room: str) -> None:
        """The message PubSubManager.emit(event, data, room=room, namespace="/") publishes, built directly.

        PubSubManager.emit walks the payload looking for bytes (binary attachments) and dispatches to this
        host's (write-only: absent) clients first; the matcher's payloads are JSON views (str, int, bool,
        None, dicts, lists), never bytes, so the message is always this one. tests/workers/test_publisher
        pins it against the library's own. The room comes right after the method, so an API process
        can skip a message for a room it has no client in without decoding it (api.local_rooms); the
        prefix is spelled out as schema.push_wire.EMIT_PREFIX expects it. orjson encodes the parts
        (json.dumps of every message was the largest single cost of a small batch's pushes): the same
        JSON values, with non-ASCII as UTF-8 rather than \\u escapes."""
        try:
            body = orjson.dumps(data)
        except TypeError:  # orjson.JSONEncodeError: e.g. an int beyond 64 bits; json has no such limit
            body = json.dumps(data).encode()
        self._pending.append(
            EMIT_PREFIX + orjson.dumps(room)[1:] + b', "event": ' + orjson.dumps(event) + b', "data": ['
            + body + self._tail
        )  # fmt: skip

    def flush(self, pipe: Any = None) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        payloads = [batch_payload(pending[lo : lo + _CHUNK]) for lo in range(0, len(pending), _CHUNK)]
        if pipe is not None:  # the caller executes the pipeline (and handles its failure)
            for payload in payloads:
                pipe.publish(self.channel, payload)
            return
        for attempt in (1, 2):
            try:
                if self._client is not None:
                    for payload in payloads:
                        self._client.publish(self.channel, payload)
                    return
                if not self.connected:
                    self._redis_connect()
                for payload in payloads:
                    self.redis.publish(self.channel, payload)
                return
            except Exception:
                self.connected = False
                if attempt == 2:
                    log.exception("socket.io push of %d messages to Redis failed", len(pending))


class SocketIORedisPublisher:
    """Scaled out: the API processes' Socket.IO servers (AsyncRedisManager on the same channel) fan out.

    `client`: see _BufferedRedisManager."""

    def __init__(self, redis_url: str, channel: str = "socketio", client: Any = None) -> None:
        self._manager = _BufferedRedisManager(redis_url, channel, client)

    def emit(self, event: str, data: dict[str, Any], room: str) -> None:
        self._manager.queue_emit(event, data, room)

    def flush(self, pipe: Any = None) -> None:
        self._manager.flush(pipe)
