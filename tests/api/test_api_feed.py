"""The feed test (issue 6): with python-socketio's real client on a running server, 10,000 random orders.

A market-room client keeps its book from the subscribe snapshot plus the depth deltas (first_seq/last_seq,
absolute level sizes, 0 removes a level), and takes a fresh snapshot on any gap; at every checkpoint its
book equals GET /depth at the same sequence. Every fill reaches its owner's `user:` room and no one
else's. (Forged and expired tokens joining no user room: test_api_realtime.)
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import socketio
from test_api_realtime import Live, Recorder, _register, _wait, give_shares, live  # noqa: F401 - fixture

from engine.commands import Cancel
from engine.types import OrderType, Side, TimeInForce
from schema import balances, intake
from schema.intake import OrderSpec
from schema.models import Instrument, Trade

ORDERS = 10_000
CHECKPOINT_EVERY = 1_000
SPREAD_TICKS = 40  # prices within +-40 cents of the reference: each side stays under the 100 published levels


class BookClient:
    """What a trading screen does: snapshot, then deltas in sequence; a gap means a fresh snapshot.

    It takes only the snapshots it asked for (at subscribe, after a gap), not the room's periodic ones,
    so its book is built from deltas."""

    def __init__(self, base: str, symbol: str) -> None:
        self.symbol = symbol
        self.seq: int | None = None
        self.bids: dict[str, tuple[str, int]] = {}
        self.asks: dict[str, tuple[str, int]] = {}
        self.resyncs = 0
        self.deltas = 0
        self.awaiting_snapshot = True
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        self.client.on("depth_snapshot", self._snapshot)
        self.client.on("depth", self._delta)
        self.client.connect(base, transports=["websocket"], wait_timeout=5)
        self._subscribe()

    def _subscribe(self) -> None:
        self.client.emit("subscribe", {"symbol": self.symbol})

    def _snapshot(self, doc: dict[str, Any]) -> None:
        with self.lock:
            if not self.awaiting_snapshot:
                return  # the room's periodic snapshot: this client keeps its own book
            self.awaiting_snapshot = False
            self.seq = int(doc["seq"])
            self.bids = {lv["price"]: (lv["qty"], lv["orders"]) for lv in doc["bids"]}
            self.asks = {lv["price"]: (lv["qty"], lv["orders"]) for lv in doc["asks"]}

    def _delta(self, doc: dict[str, Any]) -> None:
        with self.lock:
            if self.seq is None:
                return  # before the first snapshot: it covers this
            first, last = int(doc["first_seq"]), int(doc["last_seq"])
            if last <= self.seq:
                return  # already in the snapshot
            if first > self.seq + 1:  # a gap: this book is stale until a new snapshot
                self.seq = None
                self.resyncs += 1
                self.awaiting_snapshot = True
                self.client.start_background_task(self._subscribe)
                return
            for side, levels in ((self.bids, doc["bids"]), (self.asks, doc["asks"])):
                for lv in levels:
                    if lv["qty"] == "0":
                        side.pop(lv["price"], None)
                    else:
                        side[lv["price"]] = (lv["qty"], lv["orders"])
            self.seq = last
            self.deltas += 1

    def view(self) -> tuple[int | None, list[list[Any]], list[list[Any]]]:
        with self.lock:
            bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))
            asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))
            return (
                self.seq,
                [[p, q, n] for p, (q, n) in bids],
                [[p, q, n] for p, (q, n) in asks],
            )


def _depth(base: str) -> tuple[int, list[list[Any]], list[list[Any]]]:
    doc = httpx.get(f"{base}/api/v1/markets/AAPL/depth", params={"levels": 100}).json()
    return (
        int(doc["seq"]),
        [[lv["price"], lv["qty"], lv["orders"]] for lv in doc["bids"]],
        [[lv["price"], lv["qty"], lv["orders"]] for lv in doc["asks"]],
    )


def test_ten_thousand_random_orders_keep_every_client_in_sync(live: Live) -> None:  # noqa: F811
    rng = random.Random(6)
    users = [_register(live.base, f"feed{i}@feed.example.com") for i in range(6)]
    now = datetime.now(UTC)
    with live.matcher.sessions() as s:
        inst = s.get(Instrument, "AAPL")
        assert inst is not None
        rules = intake.Rules.of(inst)
        for u in users:
            balances.deposit(s, u["account_id"], 50_000_000_00, now)  # plenty: no order fails for cash
        s.commit()
    for u in users:
        give_shares(live, u["account_id"], "AAPL", 1_000_000)
    owners = {u["account_id"]: Recorder() for u in users}
    for u in users:
        owners[u["account_id"]].connect(live.base, u["access_token"])
    book = BookClient(live.base, "AAPL")
    _wait(lambda: book.seq is not None)

    open_orders: dict[int, list[int]] = {u["account_id"]: [] for u in users}
    placed = canceled = checkpoints = 0
    for n in range(1, ORDERS + 1):
        account = rng.choice(users)["account_id"]
        mine = open_orders[account]
        if mine and rng.random() < 0.3:
            oid = mine.pop(rng.randrange(len(mine)))
            live.matcher.bus.publish("AAPL", Cancel(oid, account, "AAPL", int(time.time() * 1000)))
            canceled += 1
        else:
            side = rng.choice([Side.BUY, Side.SELL])
            market = rng.random() < 0.1
            price = None if market else rules.reference_price + rng.randint(-SPREAD_TICKS, SPREAD_TICKS)
            spec = OrderSpec(
                "AAPL",
                side,
                OrderType.MARKET if market else OrderType.LIMIT,
                TimeInForce.IOC if market else TimeInForce.GTC,
                rng.randint(1, 20),
                price,
            )
            with live.matcher.sessions() as s:  # every account is funded for the whole run
                p = intake.place_order(s, account, spec, rules, datetime.now(UTC), None)
            command = intake.new_order_command(p.order, p.hold, int(time.time() * 1000))
            live.matcher.bus.publish("AAPL", command)
            placed += 1
            if not market:
                mine.append(p.order.id)
        if n % CHECKPOINT_EVERY == 0:
            # Quiet point: the matcher has taken everything; the client and GET /depth agree on one seq.
            _wait(lambda: live.matcher.books["AAPL"].cursor == live.matcher.bus.last_id("AAPL"), timeout=60)
            _wait(lambda: book.view() == _depth(live.base), timeout=30)
            seq, bids, asks = book.view()
            assert (seq, bids, asks) == _depth(live.base)
            assert len(bids) < 100 and len(asks) < 100  # the whole book is in view
            checkpoints += 1
    assert checkpoints == ORDERS // CHECKPOINT_EVERY and placed > 6_000 and canceled > 1_000
    assert book.deltas > 100  # one per settled batch that changed a level

    # Every fill went to its owner's room, and only there.
    with live.matcher.sessions() as s:
        trades = s.query(Trade).all()
    assert len(trades) > 500
    expected: dict[int, set[tuple[int, str]]] = {a: set() for a in owners}
    for t in trades:
        expected[t.buyer_account_id].add((t.id, "buy"))
        expected[t.seller_account_id].add((t.id, "sell"))

    def heard(account: int) -> set[tuple[int, str]]:
        return {(d["trade_id"], d["side"]) for e, d in list(owners[account].events) if e == "fill"}

    _wait(lambda: all(heard(a) == expected[a] for a in owners), timeout=30)
    for account, rec in owners.items():
        fills = [d for e, d in rec.events if e == "fill"]
        assert len(fills) == len(expected[account])  # no duplicates, nothing foreign
        rec.client.disconnect()
    book.client.disconnect()
