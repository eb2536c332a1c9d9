"""Drop the matchers' pushes for rooms with no client in this API process before they cost anything.

Every API process receives every event every matcher publishes (python-socketio's Redis manager has one
channel), and most are for `user:{account}` rooms whose owner is not connected here: decoding and
dispatching them was about a third of an API process's CPU under order load. The matcher's publisher
writes the room first (`workers.publisher.emit_message`), so the room is read from the message's first
bytes, and a message for a room without a local participant is skipped undecoded. Any other message
(another publisher's layout, a callback, a disconnect) goes through untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

# The start of every message the matcher's publisher sends (tests/workers/test_publisher.py pins it).
EMIT_PREFIX = b'{"method": "emit", "room": "'


def room_of(message: bytes) -> str | None:
    """The room of a matcher emit, or None if the message is not one (or the room is not a plain name)."""
    if not message.startswith(EMIT_PREFIX):
        return None
    start = len(EMIT_PREFIX)
    end = message.find(b'"', start)
    if end < 0:
        return None
    name = message[start:end]
    if b"\\" in name:  # an escaped character: leave it to the JSON parser
        return None
    return name.decode()


class LocalRoomsOnly:
    """Mixin for a python-socketio pub/sub manager (before it in the bases): `_listen` yields only the
    messages this process has a client for."""

    rooms: dict[str, dict[Any, Any]]
    skipped = 0

    async def _listen(self) -> AsyncIterator[Any]:
        async for message in super()._listen():  # type: ignore[misc]
            if isinstance(message, bytes):
                room = room_of(message)
                if room is not None and not self.rooms.get("/", {}).get(room):
                    self.skipped += 1
                    continue
            yield message
