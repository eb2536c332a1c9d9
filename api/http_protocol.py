"""uvicorn's httptools protocol, with each HTTP response's head and body sent in one write.

uvicorn writes a response's status line and headers, then its body, in two `transport.write()` calls, and
uvloop hands each to the socket at once: two syscalls and two TCP segments per response, and the client
woken twice to read them (strace of the API at 1,540 msgs/s: `write(fd, "HTTP/1.1 201 Created…", 131)`
then `write(fd, "{\"id\":…", 432)` for every order). Here the head waits for the body's first write and
both go in one. Everything else is uvicorn's; `bourse serve` and `bourse api` name this class as uvicorn's
`http` protocol (`HTTP_PROTOCOL`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

HTTP_PROTOCOL = "api.http_protocol:OneWriteHttpToolsProtocol"

_BEFORE_HEAD, _HEAD_HELD, _PASS_THROUGH = 0, 1, 2


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # a new request's cycle (not a websocket upgrade)
            cycle.transport = _HeadWithBody(cycle)  # type: ignore[assignment]


class _HeadWithBody:
    """The transport one request's cycle writes through. The cycle sets `response_started` just before it
    writes the head, so the first write after that is the head: held, and sent with the next write (the
    body, or its first chunk). Writes before it (a `100 Continue`) and after it go straight through; a
    close sends a held head first (an app that failed after starting its response)."""

    __slots__ = ("_cycle", "_transport", "_state", "_head")

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = cycle
        self._transport: asyncio.Transport = cycle.transport
        self._state = _BEFORE_HEAD
        self._head = b""

    def write(self, data: bytes) -> None:
        state = self._state
        if state == _HEAD_HELD:
            self._state = _PASS_THROUGH
            head, self._head = self._head, b""
            self._transport.write(head + data)
        elif state == _BEFORE_HEAD and self._cycle.response_started:
            self._state = _HEAD_HELD
            self._head = data
        else:
            self._transport.write(data)

    def close(self) -> None:
        if self._state == _HEAD_HELD:
            self.write(b"")
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...: the real transport's
        return getattr(self._transport, name)
