"""Socket.IO against a real uvicorn server: token checks at connect, user rooms get only their own
events, subscribe sends a depth snapshot. The matcher runs in-process and emits through LoopEmitter."""

from __future__ import annotations

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
from api.realtime import LoopEmitter, build_server
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
        yield Live(f"http://127.0.0.1:{port}", settings, matcher)
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
