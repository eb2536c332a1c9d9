"""Queue-for-the-open end to end, with a controllable clock: an order sent while the market is closed (queue
mode) is held and stays off the book through the reconciler's runs; the open-session job publishes it at
the open, it matches or rests and settles to the cent; the audit is clean. The reconciler keeps its crash
repair role during the session."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from market_kit import Market, make_market
from sqlalchemy import func, select

from engine.commands import Cancel, Command, NewOrder
from engine.types import OrderType, Side, TimeInForce
from schema.audit import audit_database
from schema.calendar import Admission, MarketCalendar, admission, day_order_expiry
from schema.intake import OrderSpec, place_order, request_cancel
from schema.models import Order, Position
from schema.transport import InProcessBus
from workers.jobs import JobContext, plan, run_open_session
from workers.matcher import Matcher
from workers.reconciler import reconcile
from workers.runner import run_matcher_loop
from workers.scheduler import InProcessScheduler

QUEUE = MarketCalendar(outside_session="queue")
# Tuesday 2025-06-03: the session is 13:30-20:00 UTC (09:30-16:00 New York, daylight saving time).
BEFORE_OPEN = datetime(2025, 6, 3, 10, 0, tzinfo=UTC)
OPEN = datetime(2025, 6, 3, 13, 30, tzinfo=UTC)


class RecordingBus(InProcessBus):
    """The in-process bus, remembering every NewOrder published (entries are trimmed once settled)."""

    def __init__(self) -> None:
        super().__init__()
        self.new_orders: list[int] = []

    def publish_many(self, symbol: str, commands: Sequence[Command]) -> list[str]:
        self.new_orders += [c.order_id for c in commands if isinstance(c, NewOrder)]
        return super().publish_many(symbol, commands)


def _queue(market: Market, account: int, side: str, qty: int, price: int, tif: str = "day") -> int:
    """What the API does with Admission.QUEUE: hold and insert, publish nothing."""
    now = market.clock()
    assert admission(now, QUEUE) is Admission.QUEUE
    spec = OrderSpec("AAPL", Side(side), OrderType.LIMIT, TimeInForce(tif), qty, limit_price=price)
    expire_at = day_order_expiry(now, QUEUE) if tif == "day" else None
    with market.sessions() as s:
        placed = place_order(s, account, spec, market.rules("AAPL"), now, expire_at)
    return placed.order.id


def _unsequenced(market: Market) -> int:
    with market.sessions() as s:
        return int(
            s.scalar(
                select(func.count()).select_from(Order).where(Order.status == "new", Order.seq.is_(None))
            )
            or 0
        )


def _wait(predicate, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def _seller(market: Market, shares: int) -> int:
    seller = market.user(0)
    market.grant_shares(seller, "AAPL", shares, cost_basis=shares * 200_00)
    return seller


def test_queued_orders_wait_for_the_open_then_match_rest_and_settle_exactly(pg_url: str) -> None:
    market = make_market(pg_url, BEFORE_OPEN)
    bus = market.bus = RecordingBus()
    seller = _seller(market, 10)
    buyer = market.user(1_000_000)
    sell_id = _queue(market, seller, "sell", 10, 215_00)
    buy_id = _queue(market, buyer, "buy", 10, 215_00)
    rest_id = _queue(market, buyer, "buy", 5, 212_00, "gtc")
    assert market.account(buyer).cash_held == 10 * 215_00 + 5 * 212_00  # held at once
    with market.sessions() as s:
        position = s.get(Position, (seller, "AAPL"))
        assert position is not None and position.held_qty == 10

    matcher = Matcher(market.sessions, market.bus, ["AAPL"], clock=market.clock)
    stop = threading.Event()
    loop = threading.Thread(
        target=run_matcher_loop,
        args=(matcher, stop),
        kwargs={"calendar": QUEUE, "reconcile_every_s": 0.05, "reconcile_age_s": 3.0},
    )
    loop.start()
    try:
        # Closed: hours pass, the reconciler runs many times, nothing reaches the stream or the book.
        for hours in (1, 2, 3):
            market.clock.now = BEFORE_OPEN + timedelta(hours=hours)
            time.sleep(0.3)
            assert market.bus.last_id("AAPL") is None
            assert _unsequenced(market) == 3
            assert matcher.book("AAPL").open_orders() == []
        assert reconcile(market.sessions, market.bus, age_s=0, now=market.clock(), calendar=QUEUE) == 0

        scheduler = InProcessScheduler(
            JobContext(market.sessions, market.bus, QUEUE, market.clock), horizon=timedelta(days=1)
        )
        scheduler.tick()
        open_job = f"open-{int(OPEN.timestamp() * 1000)}"
        assert open_job in {j["id"] for j in scheduler.status()["scheduled"]}
        market.clock.now = OPEN - timedelta(milliseconds=1)
        scheduler.tick()
        assert scheduler.records[open_job].status == "scheduled"
        assert bus.new_orders == []

        # The open: the periodic reconciler leaves the queue to the open job (its grace period)...
        market.clock.now = OPEN
        time.sleep(0.3)
        assert bus.new_orders == []
        # ...which publishes the three orders at once, in id order.
        scheduler.tick()
        assert scheduler.records[open_job].status == "finished"
        assert scheduler.records[open_job].result == 3
        assert bus.new_orders == [sell_id, buy_id, rest_id]
        _wait(lambda: _unsequenced(market) == 0)
        _wait(lambda: market.order(rest_id).seq is not None and market.order(buy_id).status == "filled")

        sell, buy, rest = market.order(sell_id), market.order(buy_id), market.order(rest_id)
        assert (sell.status, sell.filled_qty) == ("filled", 10)
        assert (buy.status, buy.filled_qty, buy.filled_notional) == ("filled", 10, 10 * 215_00)
        assert (rest.status, rest.filled_qty) == ("new", 0)
        assert [o.order_id for o in matcher.book("AAPL").open_orders()] == [rest_id]
        b, s_ = market.account(buyer), market.account(seller)
        assert (b.cash_available, b.cash_held) == (1_000_000 - 10 * 215_00 - 5 * 212_00, 5 * 212_00)
        assert (s_.cash_available, s_.cash_held) == (10 * 215_00, 0)

        # Idempotent: a second run finds nothing unsequenced and publishes nothing.
        assert run_open_session(scheduler.ctx, int(OPEN.timestamp() * 1000)) == 0
        assert scheduler.tick() == 0  # the finished job is not run again
        market.clock.now = OPEN + timedelta(minutes=5)  # past the grace period: nothing to repair either
        time.sleep(0.3)
        assert bus.new_orders == [sell_id, buy_id, rest_id]
    finally:
        stop.set()
        loop.join(timeout=10)
    assert audit_database(market.url) == []


def test_open_hours_keep_crash_repair_and_a_missed_open_is_caught_up(market: Market) -> None:
    """During the session the reconciler still re-sends an order whose publish was lost (after its grace
    period); a scheduler that was down at the open plans the open job of the session in progress."""
    market.clock.now = BEFORE_OPEN
    buyer = market.user(1_000_000)
    queued = _queue(market, buyer, "buy", 3, 210_00)
    # The scheduler was down at the open; it comes back an hour into the session.
    market.clock.now = OPEN + timedelta(hours=1)
    with market.sessions() as s:
        ids = {spec.id for spec in plan(s, market.clock(), QUEUE, timedelta(hours=1))}
    assert f"open-{int(OPEN.timestamp() * 1000)}" in ids
    assert reconcile(market.sessions, market.bus, age_s=0, now=market.clock(), calendar=QUEUE) == 1
    matcher = market.matcher(["AAPL"])
    matcher.drain()
    assert market.order(queued).seq is not None
    with market.sessions() as s:  # sequenced: nothing left to catch up
        ids = {spec.id for spec in plan(s, market.clock(), QUEUE, timedelta(hours=1))}
    assert not any(i.startswith("open-") for i in ids)

    # An order accepted in the session whose XADD was lost (committed, never published).
    spec = OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 2, limit_price=209_00)
    with market.sessions() as s:
        lost = place_order(s, buyer, spec, market.rules("AAPL"), market.clock(), None).order.id
    kw = {"age_s": 3.0, "calendar": QUEUE}
    assert reconcile(market.sessions, market.bus, now=market.clock() + timedelta(seconds=2), **kw) == 0
    assert reconcile(market.sessions, market.bus, now=market.clock() + timedelta(seconds=4), **kw) == 1
    matcher.drain()
    assert market.order(lost).seq is not None
    # The first seconds of a session belong to the open job; after the close nothing is re-sent at all.
    assert reconcile(market.sessions, market.bus, now=OPEN + timedelta(seconds=2), **kw) == 0
    with market.sessions() as s:
        late = place_order(s, buyer, spec, market.rules("AAPL"), OPEN + timedelta(hours=6, minutes=29), None)
    after_close = OPEN + timedelta(hours=7)
    assert reconcile(market.sessions, market.bus, now=after_close, **kw) == 0
    assert reconcile(market.sessions, market.bus, now=after_close, age_s=0, calendar=QUEUE) == 0
    assert market.order(late.order.id).seq is None
    matcher.close()
    assert audit_database(market.url) == []


def test_an_order_canceled_while_queued_never_reaches_the_book(market: Market) -> None:
    """A queued order is in no book, so the Cancel sent while closed is rejected by the engine; the request
    kept in SQL makes the open job send the Cancel right after the order: it never trades."""
    market.clock.now = BEFORE_OPEN
    buyer, seller = market.user(1_000_000), _seller(market, 3)
    buy = _queue(market, buyer, "buy", 3, 210_00, tif="gtc")
    sell = _queue(market, seller, "sell", 3, 210_00, tif="gtc")  # would cross the buy at the open
    with market.sessions() as s:  # what DELETE /orders/{id} does: record the request, then publish
        request_cancel(s, [buy], market.clock())
        s.commit()
    market.bus.publish("AAPL", Cancel(buy, buyer, "AAPL", int(market.clock().timestamp() * 1000)))
    matcher = market.matcher(["AAPL"])
    matcher.drain()
    assert market.order(buy).status == "new"  # the engine did not know the order yet

    market.clock.now = OPEN + timedelta(seconds=1)
    ctx = JobContext(market.sessions, market.bus, QUEUE, market.clock)
    assert run_open_session(ctx, int(OPEN.timestamp() * 1000)) == 2
    matcher.drain()
    canceled, resting = market.order(buy), market.order(sell)
    assert (canceled.status, canceled.filled_qty, canceled.hold_cash) == ("canceled", 0, 0)
    assert (resting.status, resting.filled_qty, resting.seq is not None) == ("new", 0, True)
    assert market.account(buyer).cash_held == 0
    matcher.close()
    assert audit_database(market.url) == []
