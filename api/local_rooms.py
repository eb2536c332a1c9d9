"""Drop the matchers' pushes for rooms with no client in this API process before they cost anything.

Every API process receives every push every matcher publishes (python-socketio's Redis manager has one
channel), and most are for `user:{account}` rooms whose owner is not connected here. The matchers send
a batch's pushes as one message of lines that each start with the room (schema.push_wire): lines for a
room without a local participant are skipped undecoded, the others are handed to python-socketio one by
one, as if each had come alone. Any other message (another publisher's, a callback, a disconnect) goes
through untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from schema.push_wire import batch_lines, room_of


class LocalRoomsOnly:
    """Mixin for a python-socketio pub/sub manager (before it in the bases): `_listen` yields only the
    messages this process has a client for."""

    rooms: dict[str, dict[Any, Any]]
    skipped = 0

    def _local(self, message: bytes) -> bool:
        room = room_of(message)
        if room is None or self.rooms.get("/", {}).get(room):
            return True
        self.skipped += 1
        return False

    async def _listen(self) -> AsyncIterator[Any]:
        async for message in super()._listen():  # type: ignore[misc]
            if not isinstance(message, bytes):
                yield message
                continue
            lines = batch_lines(message)
            if lines is None:
                if self._local(message):
                    yield message
                continue
            for line in lines:
                if self._local(line):
                    yield line
