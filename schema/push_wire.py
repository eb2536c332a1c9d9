"""The layout of the matchers' Socket.IO pushes on Redis, shared by the publisher (workers) and the API.

A settled batch's pushes go out as ONE pub/sub message: `BATCH_MARKER` then one python-socketio emit
message per line (JSON has no raw newlines). Each line starts with `EMIT_PREFIX` + the room, so an API
process can drop the lines for rooms it has no client in without decoding them. Why: every API process
receives every push, and redis-py's parsing of one pub/sub message per push, most of them for rooms
connected elsewhere, was a third of an API process's CPU under order load.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

BATCH_MARKER = b"bourse-emits\n"
EMIT_PREFIX = b'{"method": "emit", "room": "'


def batch_payload(lines: Sequence[str | bytes]) -> bytes:
    """The lines as one message. The matcher's publisher hands bytes (orjson), other callers may hand str."""
    return BATCH_MARKER + b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines)


def batch_lines(message: bytes) -> Iterator[bytes] | None:
    """The emit messages of a batch payload, or None if `message` is not one."""
    if not message.startswith(BATCH_MARKER):
        return None
    return iter(message[len(BATCH_MARKER) :].split(b"\n"))


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
