"""Agents on a real market (PostgreSQL, the backbone's matcher, the in-process bus): a person's market buy
fills within a second inside the band; agents stay within their inventory limits; the audit is clean.
Also the LOBSTER replay through the same order path."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from market_kit import Market
from sqlalchemy import select

from benchmarks.paths import LOBSTER_SAMPLE_DIR
from schema.audit import audit
from schema.models import Order, Position, User
from workers.agents.config import demo_config
from workers.agents.lobster import LobsterReplay, plan_replay, price_factor, read_messages
from workers.agents.runner import AgentRunner, OrderGateway, agent_email

LOBSTER_DIR = LOBSTER_SAMPLE_DIR


def test_market_buy_fills_within_a_second_inside_the_band_with_agents_on(market: Market) -> None:
    stop = threading.Event()
    matcher = market.matcher(["AAPL"])
    matcher_thread = threading.Thread(target=matcher.run, args=(stop,), daemon=True)
    matcher_thread.start()
    config = demo_config(["AAPL"])
    runner = AgentRunner(config, OrderGateway(market.sessions, market.bus, market.clock))
    runner.setup()
    agents_thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    agents_thread.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait for the market maker's asks to rest
            with market.sessions() as s:
                asks = s.scalar(
                    select(Order.id)
                    .where(
                        Order.symbol == "AAPL",
                        Order.side == "sell",
                        Order.status == "new",
                        Order.seq.is_not(None),
                    )
                    .limit(1)  # fmt: skip
                )
            if asks:
                break
            time.sleep(0.05)
        assert asks, "the market maker never quoted"
        rules = market.rules("AAPL")
        buyer = market.user(1_000_000)
        sent = time.monotonic()
        order_id = market.place(buyer, "AAPL", "buy", 10, None, "ioc")
        while time.monotonic() - sent < 1.0:
            order = market.order(order_id)
            if order.status == "filled":
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - sent
        assert order.status == "filled", (order.status, order.reason)
        assert elapsed < 1.0
        avg = Decimal(order.filled_notional) / order.filled_qty
        assert rules.band_low <= avg <= rules.band_high
        # let the agents trade a little more, then check their limits and the books
        time.sleep(1.0)
    finally:
        stop.set()
        agents_thread.join(5)
        matcher_thread.join(5)
    assert runner.placed > 0
    mm = config.agents[0]
    assert mm.market_maker is not None
    with market.sessions() as s:
        mm_positions = (
            s.execute(
                select(Position.qty)
                .join(User, User.id == Position.account_id)
                .where(User.email == agent_email(mm.name), Position.symbol == "AAPL")
            )
            .scalars()
            .all()
        )
        assert all(mm.market_maker.min_inventory <= q <= mm.market_maker.max_inventory for q in mm_positions)
        assert s.scalar(select(User.is_agent).where(User.email == agent_email(mm.name))) is True
        assert audit(s) == []


def test_lobster_plan_rescales_prices_and_maps_event_types() -> None:
    lines = [
        "34200.004241176,1,16113575,18,5853300,1",
        "34200.1,2,16113575,8,5853300,1",
        "34200.5,4,16113575,5,5853300,1",
        "34201.0,3,16113575,5,5853300,1",
        "34201.5,5,0,100,5853350,-1",
    ]
    messages = list(read_messages(lines))
    factor = price_factor(messages, 229_87)
    steps = list(plan_replay(messages, factor))
    assert [(s.kind, s.side.value, s.price, s.qty) for s in steps] == [
        ("add", "buy", 229_87, 18), ("reduce", "buy", 229_87, 8), ("take", "sell", 229_87, 5),
        ("cancel", "buy", 229_87, 5),
    ]  # fmt: skip
    assert [s.at for s in steps] == [0.0, float(Decimal("34200.1") - Decimal("34200.004241176")),
                                     float(Decimal("34200.5") - Decimal("34200.004241176")),
                                     float(Decimal("34201.0") - Decimal("34200.004241176"))]  # fmt: skip


def test_lobster_replay_builds_a_real_book_through_the_order_path(market: Market) -> None:
    message = next(LOBSTER_DIR.glob("*_message_*.csv"))
    matcher = market.matcher(["AAPL"])
    replay = LobsterReplay(OrderGateway(market.sessions, market.bus, market.clock), "AAPL", message,
                           speed=1e12, sleep=lambda _s: None)  # fmt: skip
    counts = replay.run(limit=600)
    matcher.drain(timeout_s=60)
    assert counts["add"] > 250 and counts["cancel"] > 100 and counts["take"] > 10
    depth = matcher.book("AAPL").depth(5)
    assert depth.bids and depth.asks and depth.bids[0][0] < depth.asks[0][0]
    with market.sessions() as s:
        assert audit(s) == []
    matcher.close()


def test_agents_send_nothing_while_the_market_is_closed() -> None:
    from datetime import UTC, datetime

    from engine.types import Side
    from schema.calendar import MarketCalendar
    from schema.intake import Rules
    from schema.transport import InProcessBus
    from workers.agents.orders import Place

    saturday = datetime(2025, 6, 7, 15, 0, tzinfo=UTC)
    bus = InProcessBus()
    gateway = OrderGateway(None, bus, clock=lambda: saturday, calendar=MarketCalendar())  # type: ignore[arg-type]
    rules = Rules("AAPL", "Apple", 1, 1, 1, 10**6, 10**12, 229_87, 1000, 206_89, 252_85, "active")
    assert gateway.place(1, rules, Place(Side.BUY, 10, 229_00)) is None
    assert gateway.rejects == {"MARKET_CLOSED": 1}
    assert bus.read("AAPL", "0-0", 10, 0) == []


def test_a_round_of_agent_orders_is_placed_in_one_batch_with_each_order_held(market: Market) -> None:
    """OrderGateway.place_all on PostgreSQL (the group-commit function): the orders that fit are held,
    inserted and sent in order; one that does not fit is counted as rejected and writes nothing."""
    from engine.commands import NewOrder
    from engine.types import Side
    from schema.models import Account
    from workers.agents.orders import Place

    rules = market.rules("AAPL")
    price = rules.reference_price
    account_id = market.user(3 * 10 * price - 1, agent=True)  # room for two buys of 10, not three
    gateway = OrderGateway(market.sessions, market.bus, market.clock)
    buys = [(account_id, rules, Place(Side.BUY, 10, price, "gtc")) for _ in range(3)]
    assert gateway.place_all(buys) == 2
    assert gateway.rejects == {"INSUFFICIENT_FUNDS": 1}
    sent = [c for _, c in market.bus.read("AAPL", "0-0", 10, 0)]
    assert [(type(c), c.account, c.qty, c.price, c.hold) for c in sent] == [
        (NewOrder, account_id, 10, price, 10 * price)
    ] * 2
    with market.sessions() as s:
        held = s.scalar(select(Order.hold_cash).where(Order.account_id == account_id).limit(1))
        orders = s.scalars(select(Order.id).where(Order.account_id == account_id)).all()
        acct = s.get(Account, account_id)
        assert held == 10 * price and sorted(orders) == sorted(c.order_id for c in sent)
        assert (acct.cash_available, acct.cash_held) == (3 * 10 * price - 1 - 20 * price, 20 * price)
        assert audit(s) == []
