"""`--http raw` (benchmarks.service.RawHttpPool) against a real uvicorn server: status codes and JSON bodies
as the library clients return them, keep-alive reuse, the shared connection limit, and recovery when the
server closes a connection (idle, `Connection: close`, mid-response) or a request times out, on both
event loops the bench can run on (uvloop, its default, and asyncio's).

The server is uvicorn in a thread of this process, serving a small raw ASGI app that reports which client
port (which TCP connection) each request came on. Its keep-alive timeout is 1 s, so it closes idle
connections quickly."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qs

import pytest
import uvicorn

from benchmarks import service
from benchmarks.service import RawHttpPool, ServerDisconnectedError

T = TypeVar("T")
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    body, more = b"", True
    while more:
        msg = await receive()
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
    path, port = scope["path"], scope["client"][1]
    headers = dict(scope["headers"])
    query = parse_qs(scope["query_string"].decode())

    async def reply(status: int, payload: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": head + (extra or [])})
        await send({"type": "http.response.body", "body": payload})

    if path.startswith("/api/echo"):
        got = {
            "method": scope["method"], "path": path, "port": port,
            "auth": headers.get(b"authorization", b"").decode(),
            "json": json.loads(body) if body else None,
        }  # fmt: skip
        await reply(201 if scope["method"] == "POST" else 200, json.dumps(got).encode())
    elif path == "/error":
        await reply(422, b'{"code":"INVALID_QTY","message":"qty must be positive"}')
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/text":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"not json", "more_body": True})  # chunked
        await send({"type": "http.response.body", "body": b""})
    elif path == "/chunked":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b'{"port": ', str(port).encode(), b', "chunked": true}'):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/close":
        await reply(200, json.dumps({"port": port}).encode(), [(b"connection", b"close")])
    elif path == "/truncate":
        # promise 100 bytes, send 11, fail: uvicorn closes the connection mid-response
        start = [(b"content-type", b"application/json"), (b"content-length", b"100")]
        await send({"type": "http.response.start", "status": 200, "headers": start})
        await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
        raise RuntimeError("dropped on purpose")
    elif path == "/slow":
        await asyncio.sleep(float(query["s"][0]))
        await reply(200, json.dumps({"port": port}).encode())
    else:
        await reply(404, b'{"code":"NOT_FOUND"}')


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = service.free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="critical", access_log=False,
        timeout_keep_alive=1,
    )  # fmt: skip
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def run(coro: Coroutine[Any, Any, T], loop: str = "asyncio") -> T:
    return service.run_loop(coro, loop)


def test_status_codes_and_json_bodies_match_the_library_clients(server: str) -> None:
    async def calls(kind: str) -> list[tuple[int, Any]]:
        pool = service.http_pool(server, 1, 2, kind)
        try:
            out = [
                await pool.request(0, "POST", "/api/echo/orders", "tok-1", {"symbol": "AAPL", "qty": "5"}),
                await pool.request(0, "DELETE", "/api/echo/orders/42", "tok-2"),
                await pool.request(0, "GET", "/error", "t"),
                await pool.request(0, "GET", "/empty", "t"),
                await pool.request(0, "GET", "/text", "t"),
                await pool.request(0, "GET", "/nowhere", "t"),
            ]
        finally:
            await pool.close()
        for _status, body in out:  # the connection differs from kind to kind
            if isinstance(body, dict):
                body.pop("port", None)
        return out

    raw = run(calls("raw"))
    assert raw == [
        (201, {"method": "POST", "path": "/api/echo/orders", "auth": "Bearer tok-1",
               "json": {"symbol": "AAPL", "qty": "5"}}),
        (200, {"method": "DELETE", "path": "/api/echo/orders/42", "auth": "Bearer tok-2", "json": None}),
        (422, {"code": "INVALID_QTY", "message": "qty must be positive"}),
        (204, None),
        (200, None),
        (404, {"code": "NOT_FOUND"}),
    ]  # fmt: skip
    assert run(calls("aiohttp")) == raw
    assert run(calls("httpx")) == raw


@pytest.mark.parametrize("loop", service.LOOPS)
def test_keep_alive_reuses_one_connection_and_caps_the_pool(server: str, loop: str) -> None:
    async def main() -> tuple[set[int], int, set[int], int, int]:
        pool = RawHttpPool(server, connections=1)
        # sequential and concurrent requests on one connection: queued, never pipelined
        ports = {(await pool.request(0, "GET", "/api/echo", "t"))[1]["port"] for _ in range(5)}
        got = await asyncio.gather(*(pool.request(i, "GET", "/api/echo", "t") for i in range(20)))
        ports |= {body["port"] for _status, body in got}
        one = pool.opened
        await pool.close()
        pool = RawHttpPool(server, connections=3)
        got = await asyncio.gather(*(pool.request(i, "GET", "/slow?s=0.05", "t") for i in range(12)))
        three = {body["port"] for _status, body in got}
        opened, open_now = pool.opened, pool._open
        await pool.close()
        return ports, one, three, opened, open_now

    ports, one, three, opened, open_now = run(main(), loop)
    assert len(ports) == 1 and one == 1
    assert len(three) == 3 and opened == 3 and open_now == 3


def test_chunked_body(server: str) -> None:
    async def main() -> tuple[int, Any, int]:
        pool = RawHttpPool(server, connections=1)
        status, body = await pool.request(0, "GET", "/chunked", "t")
        status2, body2 = await pool.request(0, "GET", "/chunked", "t")  # the connection is still usable
        assert status2 == 200 and body2 == body
        opened = pool.opened
        await pool.close()
        return status, body, opened

    status, body, opened = run(main())
    assert status == 200 and body["chunked"] is True and opened == 1


@pytest.mark.parametrize("loop", service.LOOPS)
def test_recovers_when_the_server_closes_connections(server: str, loop: str) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        pool = RawHttpPool(server, connections=2, idle_s=60.0)  # only the server closes idle connections
        a = (await pool.request(0, "GET", "/api/echo", "t"))[1]["port"]
        await asyncio.sleep(1.6)  # past the server's 1 s keep-alive timeout: it closed the connection
        b = (await pool.request(0, "GET", "/api/echo", "t"))[1]["port"]
        out["idle_closed"] = (a != b, pool.opened)
        # Connection: close in the response: answered, then not reused
        c = (await pool.request(0, "GET", "/close", "t"))[1]["port"]
        d = (await pool.request(0, "GET", "/api/echo", "t"))[1]["port"]
        out["close_header"] = (c == b, d != c, pool.opened)
        # the server drops the connection mid-response: a transport error, then a fresh connection
        with pytest.raises(ServerDisconnectedError) as err:
            await pool.request(0, "GET", "/truncate", "t")
        out["truncate_is_connection_error"] = isinstance(err.value, ConnectionError)
        e = (await pool.request(0, "GET", "/api/echo", "t"))[1]["port"]
        out["after_truncate"] = (e not in (a, b, c, d), pool.opened, pool._open)
        await pool.close()
        # the client's own idle limit (below the server's keep-alive) retires a connection before the server
        pool = RawHttpPool(server, connections=2, idle_s=0.2)
        f = (await pool.request(0, "GET", "/api/echo", "t"))[1]["port"]
        await asyncio.sleep(0.4)
        g = (await pool.request(0, "GET", "/api/echo", "t"))[1]["port"]
        out["idle_limit"] = (f != g, pool.opened)
        await pool.close()
        return out

    out = run(main(), loop)
    assert out["idle_closed"] == (True, 2)  # reconnected silently: no error for the idle close
    assert out["close_header"] == (True, True, 3)  # /close came on the live connection, then a new one
    assert out["truncate_is_connection_error"]
    assert out["after_truncate"] == (True, 4, 1)  # the dropped connection's slot was given back
    assert out["idle_limit"] == (True, 2)


@pytest.mark.parametrize("loop", service.LOOPS)
def test_timeouts_free_the_connection_and_the_slot(server: str, loop: str) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        pool = RawHttpPool(server, connections=1, timeout=2.0)
        # the only connection is busy for 0.6 s: a request queued for it times out (0.2 s) while waiting
        slow = asyncio.ensure_future(pool.request(0, "GET", "/slow?s=0.6", "t"))
        await asyncio.sleep(0.05)
        pool.timeout = 0.2
        with pytest.raises(TimeoutError):
            await pool.request(1, "GET", "/api/echo", "t")
        out["holder"] = (await slow)[0]  # unaffected, and its connection goes back to the pool
        # a request that times out mid-exchange: its connection is closed, never reused...
        pool.timeout = 0.3
        stuck = asyncio.ensure_future(pool.request(2, "GET", "/slow?s=1", "t"))
        await asyncio.sleep(0.1)
        waiting = asyncio.ensure_future(
            pool.request(3, "GET", "/api/echo", "t")
        )  # its deadline is 0.1 s later
        with pytest.raises(TimeoutError):
            await stuck
        # ...and its slot passes to the request queued behind it, which opens a new connection in time
        status, body = await waiting
        out["waiter"] = (status, isinstance(body["port"], int))
        out["after"] = (pool.opened, pool._open, len(pool._waiters))
        await pool.close()
        return out

    out = run(main(), loop)
    assert out["holder"] == 200 and out["waiter"] == (200, True)
    assert out["after"] == (2, 1, 0)


def test_connection_refused_gives_the_slot_back() -> None:
    async def main() -> int:
        pool = RawHttpPool(f"http://127.0.0.1:{service.free_port()}", connections=1)
        for _ in range(3):  # with a leaked slot the second attempt would wait forever (60 s timeout)
            with pytest.raises(OSError):
                await pool.request(0, "GET", "/", "t")
        return pool._open

    assert run(main()) == 0


def test_the_service_bench_defaults_to_raw() -> None:
    args = service.build_parser().parse_args(["--launch", "pg"])
    assert args.http == "raw" and service.ServiceOptions().http == "raw"
    assert args.loop == "uvloop" and service.ServiceOptions().loop == "uvloop"
    assert isinstance(service.http_pool("http://127.0.0.1:1", 8, 16, args.http), RawHttpPool)
    with pytest.raises(ValueError):
        RawHttpPool("https://127.0.0.1:1", 4)


@pytest.mark.parametrize("loop", service.LOOPS)
def test_send_calls_back_once_per_request_without_a_task_each(server: str, loop: str) -> None:
    """The callback form the service bench's open loop uses: every request is answered exactly once (a
    result, a transport error or a timeout), in a slot of the shared limit, and on warm connections no
    task is created per request."""

    async def main() -> dict[str, Any]:
        pool = RawHttpPool(server, connections=2, timeout=5.0)
        answers: dict[int, list[Any]] = {}
        all_in = asyncio.get_running_loop().create_future()

        def answer(i: int, n: int) -> Callable[[Any], None]:
            def done(got: Any) -> None:
                answers.setdefault(i, []).append(got)
                if len(answers) == n and not all_in.done():
                    all_in.set_result(None)

            return done

        await asyncio.gather(*(pool.request(i, "GET", "/api/echo", "t") for i in range(2)))  # warm up
        tasks_before = len(asyncio.all_tasks())
        tasks_during = 0
        for i in range(30):
            pool.send("POST", "/api/echo/orders", f"tok-{i}", {"i": i}, answer(i, 30))
            tasks_during = max(tasks_during, len(asyncio.all_tasks()))
        await all_in
        out: dict[str, Any] = {"tasks": (tasks_before, tasks_during), "open": pool._open}
        out["answers"] = sorted(
            (i, len(got), got[0][0], got[0][1]["json"]["i"], got[0][1]["auth"]) for i, got in answers.items()
        )
        # a failed exchange and a timed-out one are answered with their exception, once, and free the slot
        failed: dict[int, list[Any]] = {}
        both = asyncio.get_running_loop().create_future()

        def fail(i: int) -> Callable[[Any], None]:
            def done(got: Any) -> None:
                failed.setdefault(i, []).append(got)
                if len(failed) == 2 and not both.done():
                    both.set_result(None)

            return done

        pool.timeout = 0.2
        pool.send("GET", "/truncate", "t", None, fail(0))
        pool.send("GET", "/slow?s=1", "t", None, fail(1))
        await both
        await asyncio.sleep(0.3)  # a second call back would come by now
        out["failed"] = {i: [type(x).__name__ for x in got] for i, got in failed.items()}
        pool.timeout = 5.0
        out["after"] = (await pool.request(0, "GET", "/api/echo", "t"))[0]
        await pool.close()
        return out

    out = run(main(), loop)
    assert out["answers"] == [(i, 1, 201, i, f"Bearer tok-{i}") for i in range(30)]
    assert out["tasks"][1] == out["tasks"][0]  # queued and sent on the two warm connections, no task each
    assert out["open"] == 2
    assert out["failed"] == {0: ["ServerDisconnectedError"], 1: ["TimeoutError"]}
    assert out["after"] == 200
