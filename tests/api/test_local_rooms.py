"""api.local_rooms: an API process skips the matchers' pushes for rooms it has no client in, undecoded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from api.local_rooms import LocalRoomsOnly
from schema.push_wire import batch_payload, room_of


class _Source:
    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages
        self.rooms: dict[str, dict[Any, Any]] = {"/": {"user:1": {"sid-a": "eio-a"}, "market:AAPL": {}}}

    async def _listen(self) -> AsyncIterator[Any]:
        for m in self.messages:
            yield m


class _Filtered(LocalRoomsOnly, _Source):
    pass


def _emit(room: str) -> bytes:
    return json.dumps({"method": "emit", "room": room, "event": "order", "data": [{}]}).encode()


def test_only_messages_for_local_rooms_and_foreign_layouts_pass() -> None:
    other_layout = json.dumps({"method": "emit", "event": "x", "room": "user:2"}).encode()
    messages = [_emit("user:1"), _emit("user:2"), _emit("market:AAPL"), other_layout, {"method": "emit"}]
    manager = _Filtered(messages)

    async def collect() -> list[Any]:
        return [m async for m in manager._listen()]

    got = asyncio.run(collect())
    # user:2 has nobody here; market:AAPL's room is empty; the rest pass (the library decodes them).
    assert got == [messages[0], other_layout, {"method": "emit"}]
    assert manager.skipped == 2


def test_a_batch_is_split_into_its_local_emits_in_order() -> None:
    lines = [
        _emit("user:1").decode(),
        _emit("user:9").decode(),
        _emit("user:1").decode().replace("order", "fill"),
    ]
    manager = _Filtered([batch_payload(lines), _emit("user:1")])

    async def collect() -> list[Any]:
        return [m async for m in manager._listen()]

    got = asyncio.run(collect())
    assert got == [lines[0].encode(), lines[2].encode(), _emit("user:1")]
    assert [json.loads(m)["event"] for m in got] == ["order", "fill", "order"]
    assert manager.skipped == 1


def test_room_of_reads_only_plain_room_names() -> None:
    assert room_of(_emit("market:MSFT")) == "market:MSFT"
    assert room_of(b'{"method": "emit", "room": "a\\"b", "event": 1}') is None
    assert room_of(b'{"method": "emit", "room": "unterminated') is None
    assert room_of(b'{"method": "disconnect", "room": "user:1"}') is None
