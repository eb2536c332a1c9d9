"""Socket.IO against a real uvicorn server: token checks at connect and at expiry, allowed origins,
user rooms get only their own events, subscribe sends a depth snapshot, and the room fan-out keeps
order and does not wait for a stalled client. The matcher runs in-process and emits through LoopEmitter."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import socketio
import uvicorn
from api_harness import prepare_database

from api.app import create_app
from api.deps import InstrumentCache, Services
from api.realtime import LoopEmitter, build_server, cors_allowed_origins
from api.security import Principal, create_access_token
from schema.marketdata import MemoryMarketData
from schema.models import LedgerEntry, Position
from schema.settings import Settings
from schema.transport import InProcessBus
from workers.matcher import Matcher
from workers.publisher import CallbackPublisher


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Live:
    base: str
    settings: Settings
    matcher: Matcher
    sio: socketio.AsyncServer
    emitter: LoopEmitter


@pytest.fixture
def live(sqlite_url: str) -> Iterator[Live]:
    factory = prepare_database(sqlite_url)
    settings = Settings(_env_file=None, database_url=sqlite_url, env="test", market_hours="always")  # type: ignore[call-arg]
    bus, md = InProcessBus(), MemoryMarketData()
    sio = build_server(settings)
    emitter = LoopEmitter(sio)
    services = Services(settings, factory, bus, md, InstrumentCache(factory), sio=sio)
    services.extras["emitter"] = emitter
    matcher = Matcher(
        factory, bus, ["AAPL"], settings=settings, publisher=CallbackPublisher(emitter.emit), market_data=md
    )
    matcher.start()
    stop = threading.Event()
    match_thread = threading.Thread(
        target=lambda: [matcher.step(block_ms=20) for _ in iter(stop.is_set, True)]
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, services), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    match_thread.start()
    try:
        yield Live(f"http://127.0.0.1:{port}", settings, matcher, sio, emitter)
    finally:
        stop.set()
        match_thread.join()
        server.should_exit = True
        thread.join(timeout=10)
        matcher.close()


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", lambda event, data: self.events.append((event, data)))

    def connect(self, base: str, token: str | None) -> None:
        self.client.connect(
            base, auth=None if token is None else {"token": token}, transports=["websocket"], wait_timeout=5
        )

    def names(self) -> list[str]:
        return [e for e, _ in self.events]


def give_shares(live: Live, account_id: int, symbol: str, qty: int) -> None:
    with live.matcher.sessions() as s:
        s.add(
            Position(
                account_id=account_id,
                symbol=symbol,
                qty=qty,
                held_qty=0,
                cost_basis=qty * 200_00,
                realized_pnl=0,
            )
        )
        s.add(
            LedgerEntry(
                account_id=account_id,
                kind="deposit",
                symbol=symbol,
                qty_delta=qty,
                created_at=datetime.now(UTC),
            )
        )
        s.commit()


def _register(base: str, email: str) -> dict[str, Any]:
    r = httpx.post(f"{base}/api/v1/auth/register", json={"email": email, "password": "long password"})
    assert r.status_code == 201, r.text
    return r.json()


def _wait(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_bad_and_expired_tokens_are_refused(live: Live) -> None:
    expired = create_access_token(
        Principal(1, 1),
        live.settings.secret_key,
        datetime.now(UTC) - timedelta(hours=1),
        timedelta(minutes=15),
    )
    forged = create_access_token(Principal(1, 1), "not-the-secret", datetime.now(UTC), timedelta(minutes=15))
    for token in ("garbage", expired, forged):
        rec = Recorder()
        with pytest.raises(socketio.exceptions.ConnectionError):
            rec.connect(live.base, token)
    anon = Recorder()
    anon.connect(live.base, None)  # anonymous: allowed, market data only
    assert anon.client.connected
    anon.client.disconnect()


def test_user_rooms_get_only_their_own_events_and_subscribe_sends_a_snapshot(live: Live) -> None:
    alice, bob, carol = (_register(live.base, f"{n}@rt.example.com") for n in ("alice", "bob", "carol"))
    recs = {}
    for name, who in (("alice", alice), ("bob", bob), ("carol", carol)):
        recs[name] = Recorder()
        recs[name].connect(live.base, who["access_token"])
    watcher = Recorder()
    watcher.connect(live.base, None)
    ack = watcher.client.call("subscribe", {"symbol": "aapl"}, timeout=5)
    assert ack == {"ok": True, "symbol": "AAPL"}
    _wait(lambda: "depth_snapshot" in watcher.names())

    def order(who: dict[str, Any], side: str) -> None:
        r = httpx.post(
            f"{live.base}/api/v1/orders",
            headers={"Authorization": f"Bearer {who['access_token']}"},
            json={
                "symbol": "AAPL",
                "side": side,
                "type": "limit",
                "time_in_force": "gtc",
                "qty": "2",
                "limit_price": "230.00",
            },
        )
        assert r.status_code == 201, r.text

    give_shares(live, bob["account_id"], "AAPL", 5)
    order(alice, "buy")
    order(bob, "sell")
    _wait(lambda: "fill" in recs["alice"].names() and "fill" in recs["bob"].names())
    time.sleep(0.3)  # let any stray event arrive before checking that none went astray
    for name in ("alice", "bob"):
        fills = [d for e, d in recs[name].events if e == "fill"]
        assert [(f["side"], f["qty"], f["price"]) for f in fills] == [
            ("buy" if name == "alice" else "sell", "2", "230.00")
        ]
        orders = [d["order"] for e, d in recs[name].events if e == "order"]
        assert orders and {o["side"] for o in orders} == {"buy" if name == "alice" else "sell"}
    assert [e for e in recs["carol"].names() if e in ("order", "fill", "account", "position")] == []
    _wait(lambda: any(e in ("depth", "depth_snapshot") and d.get("bids") for e, d in watcher.events))
    for rec in (*recs.values(), watcher):
        rec.client.disconnect()


def test_an_authenticated_connection_is_dropped_when_its_token_expires(live: Live) -> None:
    now = datetime.now(UTC)
    short = create_access_token(Principal(1, 1), live.settings.secret_key, now, timedelta(seconds=2))
    rec = Recorder()
    rec.connect(live.base, short)
    assert rec.client.connected
    _wait(lambda: not rec.client.connected, timeout=5)  # exp is at most 2 s away
    fresh = Recorder()  # the client comes back with a fresh token
    fresh.connect(
        live.base, create_access_token(Principal(1, 1), live.settings.secret_key, now, timedelta(minutes=15))
    )
    anon = Recorder()
    anon.connect(live.base, None)
    time.sleep(0.5)
    assert fresh.client.connected and anon.client.connected  # no expiry, no drop
    fresh.client.disconnect()
    anon.client.disconnect()


def _opens(base: str, origin: str | None) -> bool:
    client = RawSubscriber(base, origin)
    client.close()
    return client.status == 101


def test_socketio_allows_only_the_page_origin_unless_configured(live: Live) -> None:
    assert _opens(live.base, live.base)  # the page served by the API
    assert _opens(live.base, None)  # no Origin header: not a browser
    assert not _opens(live.base, "https://evil.example")
    assert not _opens(live.base, "http://localhost:5173")  # the vite dev server needs the setting

    dev = live.settings.model_copy(update={"socketio_cors_origins": ["http://localhost:5173"]})
    check = cors_allowed_origins(dev)
    assert callable(check)
    environ = {"wsgi.url_scheme": "http", "HTTP_HOST": "bourse.example"}
    assert check("http://localhost:5173", environ) and check("http://bourse.example", environ)
    assert not check("https://evil.example", environ)
    assert cors_allowed_origins(live.settings.model_copy(update={"socketio_cors_origins": ["*"]})) == "*"
    live.sio.eio.cors_allowed_origins = check  # what build_server(dev) installs
    assert _opens(live.base, "http://localhost:5173") and _opens(live.base, live.base)
    assert not _opens(live.base, "https://evil.example")


class RawSubscriber:
    """A websocket Socket.IO client in the market room on a plain socket with a small fixed receive
    buffer, reading only when asked: while it does not, the server's writes to it back up."""

    def __init__(self, base: str, origin: str | None = None) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)  # no autotuning to many MB
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "" if origin is None else f"Origin: {origin}\r\n"
        self.sock.sendall(
            (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}"
             f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        )  # fmt: skip
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        if self.status != 101:
            self.sock.close()
            return
        assert self.recv()[0] == "0"  # engine.io open
        self.send("40")
        assert self.recv().startswith("40")
        self.send("421" + json.dumps(["subscribe", {"symbol": "AAPL"}]))
        # The snapshot and the ack; a market push (a periodic depth snapshot) may come in between.
        seen: list[str] = []
        while len(seen) < 20 and not (
            any(m.startswith("431") for m in seen) and any(m.startswith("42[") for m in seen)
        ):
            seen.append(self.recv())
        assert any(m.startswith("431") for m in seen) and any(m.startswith("42[") for m in seen), seen

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self) -> str:
        """The next text message (server frames are unmasked and, from uvicorn, unfragmented)."""
        head = self._take(2)
        n = head[1] & 0x7F
        if n >= 126:
            n = int.from_bytes(self._take(2 if n == 126 else 8), "big")
        return self._take(n).decode()

    def send(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def close(self) -> None:
        self.sock.close()


def test_room_fanout_keeps_order_and_does_not_wait_for_a_stalled_client(live: Live) -> None:
    fast = Recorder()
    fast.connect(live.base, None)
    assert fast.client.call("subscribe", {"symbol": "AAPL"}, timeout=5) == {"ok": True, "symbol": "AAPL"}
    stalled = RawSubscriber(live.base)
    # Every websocket went through the fan-out's class: the direct-write lane is in use.
    assert all(getattr(s, "bourse_ws", None) is not None for s in live.sio.eio.sockets.values())

    n, pad = 200, "x" * 100_000  # 20 MB: more than the stalled client's socket buffers hold
    for i in range(n):
        live.emitter.emit("probe", {"i": i, "pad": pad}, room="market:AAPL")
    _wait(lambda: sum(e == "probe" for e in fast.names()) == n, timeout=30)  # while the other one is stuck
    assert [d["i"] for e, d in fast.events if e == "probe"] == list(range(n))
    # Frames went straight to the fast client's transport while its buffer was empty (with 100 kB frames
    # it is not always: those went through the ASGI send, in order behind the others).
    assert live.sio.manager.frames_written > 0
    backed_up = [s for s in live.sio.eio.sockets.values() if s.bourse_ws.sending or not s.queue.empty()]
    assert len(backed_up) == 1  # the stalled one: a send waits for its buffer, the rest is queued

    seen: list[int] = []
    while len(seen) < n:
        text = stalled.recv()
        if text == "2":  # engine.io ping
            stalled.send("3")
        elif text.startswith('42["probe"'):
            seen.append(json.loads(text[2:])[1]["i"])
    assert seen == list(range(n))
    stalled.close()
    fast.client.disconnect()
