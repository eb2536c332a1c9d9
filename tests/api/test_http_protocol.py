"""api.http_protocol: uvicorn's httptools protocol with a response's head and body in one write.

The protocol is driven as uvicorn's server drives it (connection_made, data_received) on a transport that
records each write, so what is checked is the number and content of the writes a client would receive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from api.http_protocol import HTTP_PROTOCOL, OneWriteHttpToolsProtocol

Send = Callable[[dict[str, Any]], Awaitable[None]]
BODY = b'{"id":1,"status":"new"}'
HEAD_FIELDS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def one_response(scope: dict[str, Any], receive: Any, send: Send) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": HEAD_FIELDS})
    await send({"type": "http.response.body", "body": BODY})


async def streamed(scope: dict[str, Any], receive: Any, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for part in (b"one", b"two"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
        await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b""})


async def reads_body_first(scope: dict[str, Any], receive: Any, send: Send) -> None:
    message = await receive()
    assert message["body"] == b"hi"
    await one_response(scope, receive, send)


async def fails_after_start(scope: dict[str, Any], receive: Any, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": HEAD_FIELDS})
    raise RuntimeError("the app broke mid-response")


def connect(app: Any, http: str = HTTP_PROTOCOL) -> tuple[Any, RecordingTransport]:
    """uvicorn's protocol class named by `http`, as its server makes one for a new connection."""
    config = Config(app=app, http=http, log_level="critical", access_log=False, server_header=False)
    config.load()
    protocol = config.http_protocol_class(config, ServerState(), app_state={})  # type: ignore[call-arg]
    transport = RecordingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def settle() -> None:
    for _ in range(20):  # let the request's task run to its end
        await asyncio.sleep(0)


async def serve(app: Any, *requests: bytes) -> RecordingTransport:
    protocol, transport = connect(app)
    assert isinstance(protocol, OneWriteHttpToolsProtocol)
    for request in requests:
        protocol.data_received(request)
        await settle()
    protocol.connection_lost(None)
    return transport


def post(body: bytes = b"", extra: bytes = b"") -> bytes:
    head = b"POST /api/v1/orders HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n%s\r\n" % (len(body), extra)
    return head + body


def test_a_response_is_one_write_with_its_head_and_body() -> None:
    transport = asyncio.run(serve(one_response, post(), post()))  # two requests on one kept-alive connection
    assert len(transport.writes) == 2
    for write in transport.writes:
        head, body = write.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 201 Created\r\n")
        assert b"content-length: %d" % len(BODY) in head
        assert body == BODY


def test_a_streamed_body_sends_the_head_with_its_first_chunk() -> None:
    transport = asyncio.run(serve(streamed, post()))
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n3\r\none\r\n")
    assert transport.writes[1:] == [b"3\r\ntwo\r\n", b"0\r\n\r\n"]


def test_100_continue_is_sent_at_once_and_the_response_after_it() -> None:
    asyncio.run(_continue_then_response())


async def _continue_then_response() -> None:
    request = post(b"", b"expect: 100-continue\r\ncontent-type: text/plain\r\n").replace(
        b"content-length: 0", b"content-length: 2"
    )
    protocol, transport = connect(reads_body_first)
    protocol.data_received(request)
    await settle()
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]  # before the client sends the body
    protocol.data_received(b"hi")
    await settle()
    assert len(transport.writes) == 2
    assert transport.writes[1].startswith(b"HTTP/1.1 201 Created\r\n")
    assert transport.writes[1].endswith(b"\r\n\r\n" + BODY)
    protocol.connection_lost(None)


def test_an_app_failing_after_its_head_still_sends_the_head_before_closing() -> None:
    transport = asyncio.run(serve(fails_after_start, post()))
    assert transport.closed
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")


@pytest.mark.parametrize("protocol", ["httptools", HTTP_PROTOCOL])
def test_plain_uvicorn_writes_twice_where_this_protocol_writes_once(protocol: str) -> None:
    """What the class is for, shown against uvicorn's own protocol on the same request."""
    asyncio.run(_writes_of(protocol))


async def _writes_of(protocol: str) -> None:
    server_protocol, transport = connect(one_response, protocol)
    server_protocol.data_received(post())
    await settle()
    assert b"".join(transport.writes).endswith(b"\r\n\r\n" + BODY)
    assert len(transport.writes) == (1 if protocol == HTTP_PROTOCOL else 2)
