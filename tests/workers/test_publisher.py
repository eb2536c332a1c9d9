"""The Socket.IO Redis publisher: the messages it builds are python-socketio's own, sent in order."""

from __future__ import annotations

import json
import time

import redis

from schema.push_wire import EMIT_PREFIX, batch_lines, room_of
from workers.publisher import SocketIORedisPublisher, _BufferedRedisManager


def test_queued_message_is_what_pubsub_manager_emit_publishes(redis_url: str) -> None:
    m = _BufferedRedisManager(redis_url, "socketio-test")
    data = {"event": "fill", "order": {"id": 7, "qty": "10", "limit_price": None, "post_only": False,
                                       "nested": [{"a": "1"}]}}  # fmt: skip
    m.emit("order", data, room="user:7", namespace="/")  # the library's path
    m.queue_emit("order", data, "user:7")  # ours
    assert len(m._pending) == 2
    assert json.loads(m._pending[0]) == json.loads(m._pending[1])


def test_queued_message_keeps_non_ascii_and_odd_rooms_exact(redis_url: str) -> None:
    m = _BufferedRedisManager(redis_url, "socketio-test")
    data = {"name": "Société Générale", "quote": 'a"b\\c\nd', "n": 2**63 - 1, "none": None, "t": True}
    for room in ("user:1", 'odd "room"'):
        m.emit("order", data, room=room, namespace="/")
        m.queue_emit("order", data, room)
    assert len(m._pending) == 4
    assert json.loads(m._pending[0]) == json.loads(m._pending[1])
    assert json.loads(m._pending[2]) == json.loads(m._pending[3])
    assert b"\n" not in m._pending[1]  # one message per line in a batch payload
    assert room_of(m._pending[1]) == "user:1"
    assert room_of(m._pending[3]) is None  # escaped: left to the JSON parser
    m.queue_emit("order", {"big": 2**70}, "user:1")  # beyond orjson's integers: still exact JSON
    assert json.loads(m._pending[4])["data"] == [{"big": 2**70}]


def test_flush_publishes_every_message_in_order(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    sub = client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("socketio-order-test")
    time.sleep(0.05)
    pub = SocketIORedisPublisher(redis_url, "socketio-order-test")
    n = 1234  # more than one script call
    for i in range(n):
        pub.emit("trade", {"seq": i}, "market:AAPL")
    pub.flush()
    pub.flush()  # nothing pending: no-op
    got: list[dict] = []
    messages = 0
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        msg = sub.get_message(timeout=0.5)
        if msg is not None:
            messages += 1
            lines = batch_lines(msg["data"])
            assert lines is not None
            got += [json.loads(line) for line in lines]
    assert [g["data"][0]["seq"] for g in got] == list(range(n))
    assert messages == 3  # 1,234 emits in chunks of 500: one pub/sub message each


def test_the_room_leads_every_message_so_api_processes_can_skip_it_undecoded(redis_url: str) -> None:
    m = _BufferedRedisManager(redis_url, "socketio-test")
    m.queue_emit("order", {"id": 1, "room": "decoy"}, "user:42")
    raw = m._pending[0]
    assert raw.startswith(EMIT_PREFIX)
    assert room_of(raw) == "user:42"
    # Another publisher's layout (the library's own emit) is never misread: the API decodes it normally.
    m.emit("order", {"id": 1}, room="user:42", namespace="/")
    assert room_of(m._pending[1]) is None
