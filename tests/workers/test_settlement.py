"""Settlement is exact: trades, holds, releases, positions and P&L to the cent, on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from backbone_market import Market, now
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from schema.audit import audit_database
from schema.db import make_session_factory
from schema.marketdata import MemoryMarketData
from schema.settings import Settings
from schema.transport import InProcessBus
from workers.matcher import Matcher
from workers.publisher import RecordingPublisher
from workers.runner import matcher_engine
from workers.settlement import settle_batch

SYM = "AAPL"


class Env:
    def __init__(self, url: str, own_engine: bool = False) -> None:
        self.bus = InProcessBus()
        self.market = Market(url, self.bus)
        self.market.add_instrument(SYM, ref=100_00)
        self.pub = RecordingPublisher()
        self.md = MemoryMarketData()
        # own_engine: the matcher on its production engine (workers.runner.matcher_engine: no pre-ping,
        # settlement's SQL-level prepared statements) rather than the test market's.
        self.engine = matcher_engine(url) if own_engine else None
        self.sessions = make_session_factory(self.engine) if self.engine else self.market.sessions
        self.matcher = self.new_matcher()

    def new_matcher(self) -> Matcher:
        m = Matcher(self.sessions, self.bus, [SYM], settings=Settings(), publisher=self.pub,
                    market_data=self.md)  # fmt: skip
        m.start()
        return m

    def run(self) -> None:
        self.matcher.drain()

    def audit(self) -> None:
        assert audit_database(self.market.engine) == []


@pytest.fixture(params=["postgresql", "postgresql-matcher-engine", "sqlite"])
def env(request) -> Iterator[Env]:  # type: ignore[no-untyped-def]
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    e = Env(url, own_engine=request.param == "postgresql-matcher-engine")
    yield e
    if e.engine is not None:
        e.engine.dispose()
    e.market.close()


def test_crossing_limit_orders_settle_to_the_cent_and_release_the_better_price(env: Env) -> None:
    m = env.market
    seller = m.add_account(cash=0, shares={SYM: 100})
    buyer = m.add_account(cash=10_000_00)
    sell = m.place(seller, SYM, "sell", 30, 99_50)
    buy = m.place(buyer, SYM, "buy", 20, 101_00)  # crosses at the maker's 99.50; 1.50 a share comes back
    assert sell and buy
    env.run()

    b, s = m.order(buy.order_id), m.order(sell.order_id)
    assert (b.status, b.filled_qty, b.filled_notional, b.hold_cash) == ("filled", 20, 1990_00, 0)
    assert (s.status, s.filled_qty, s.hold_qty, s.seq) == ("partially_filled", 20, 10, 1)
    ba, sa = m.account(buyer), m.account(seller)
    assert (ba.cash_available, ba.cash_held) == (10_000_00 - 1990_00, 0)
    assert (sa.cash_available, sa.cash_held) == (1990_00, 0)
    bp, sp = m.position(buyer, SYM), m.position(seller, SYM)
    assert bp and sp
    assert (bp.qty, bp.held_qty, bp.cost_basis) == (20, 0, 1990_00)
    assert (sp.qty, sp.held_qty, sp.realized_pnl) == (80, 10, 1990_00)  # shares deposited at zero cost
    [trade] = m.trades(SYM)
    assert (trade.price, trade.qty, trade.aggressor, trade.seq) == (99_50, 20, "buy", 3)
    env.audit()
    # pushed after commit
    assert [e["event"] for e in env.pub.of("order", f"user:{buyer}")] == ["new", "fill"]
    assert {f["liquidity"] for f in env.pub.of("fill", f"user:{seller}")} == {"maker"}
    assert env.pub.of("trade", f"market:{SYM}")[0]["price"] == "99.50"
    depth = env.md.depth(SYM, 10)
    assert depth == {
        "symbol": SYM,
        "seq": 3,
        "bids": [],
        "asks": [{"price": "99.50", "qty": "10", "orders": 1}],
    }
    ticker = env.md.ticker(SYM)
    assert ticker and (ticker["last"], ticker["volume"], ticker["change"], ticker["change_pct"]) == (
        "99.50", "20", "-0.50", "-0.50",
    )  # fmt: skip


def test_partial_fills_cancel_and_realized_pnl(env: Env) -> None:
    m = env.market
    a = m.add_account(cash=10_000_00)
    b = m.add_account(cash=10_000_00)
    c = m.add_account(cash=10_000_00)
    # a buys 10 @ 100 from b (b gets shares first by buying from nobody: deposit shares to b)
    seller = m.add_account(cash=0, shares={SYM: 10})
    m.place(seller, SYM, "sell", 10, 100_00)
    buy_a = m.place(a, SYM, "buy", 10, 100_00)
    env.run()
    assert m.position(a, SYM).cost_basis == 1000_00  # type: ignore[union-attr]
    # a sells 3 @ 103 to b, then 7 rest; b's buy of 3 takes part; c's buy of 2 takes more
    sell_a = m.place(a, SYM, "sell", 10, 103_00)
    m.place(b, SYM, "buy", 3, 103_00)
    m.place(c, SYM, "buy", 2, 104_00)
    env.run()
    o = m.order(sell_a.order_id)  # type: ignore[union-attr]
    assert (o.status, o.filled_qty, o.hold_qty) == ("partially_filled", 5, 5)
    p = m.position(a, SYM)
    assert p and (p.qty, p.held_qty, p.cost_basis, p.realized_pnl) == (5, 5, 500_00, 15_00)
    # cancel the rest: shares come back, status canceled, canceled_qty = leaves
    m.cancel(a, sell_a.order_id, SYM)  # type: ignore[union-attr]
    env.run()
    o = m.order(sell_a.order_id)  # type: ignore[union-attr]
    assert (o.status, o.canceled_qty, o.hold_qty, o.reason) == ("canceled", 5, 0, "user")
    assert m.position(a, SYM).held_qty == 0  # type: ignore[union-attr]
    assert m.account(c).cash_held == 0 and m.account(c).cash_available == 10_000_00 - 206_00
    assert m.order(buy_a.order_id).status == "filled"  # type: ignore[union-attr]
    env.audit()


def test_replace_and_reduce_move_pending_hold_and_release_the_rest(env: Env) -> None:
    m = env.market
    a = m.add_account(cash=10_000_00)
    buy = m.place(a, SYM, "buy", 10, 100_00)
    env.run()
    assert m.account(a).cash_held == 1000_00
    # reduce to 6: keeps priority, 400.00 comes back
    m.replace(a, buy.order_id, qty=6)  # type: ignore[union-attr]
    env.run()
    o = m.order(buy.order_id)  # type: ignore[union-attr]
    assert (o.qty, o.hold_cash, o.pending_hold, o.seq) == (6, 600_00, 0, 1)
    assert (m.account(a).cash_available, m.account(a).cash_held) == (9400_00, 600_00)
    # replace up in price: 6 @ 105 needs 30.00 more, held as pending by the intake, moved in by settlement
    m.replace(a, buy.order_id, price=105_00)  # type: ignore[union-attr]
    o = m.order(buy.order_id)  # type: ignore[union-attr]
    assert o.pending_hold == 30_00
    env.run()
    o = m.order(buy.order_id)  # type: ignore[union-attr]
    assert (o.qty, o.limit_price, o.hold_cash, o.pending_hold, o.seq) == (6, 105_00, 630_00, 0, 3)
    assert m.account(a).cash_held == 630_00
    # a replace that the engine rejects returns its extra hold and leaves the order as it was
    m.cancel(a, buy.order_id, SYM)  # type: ignore[union-attr]
    m.replace(a, buy.order_id, price=106_00)  # type: ignore[union-attr]  # pending 6.00, then rejected
    env.run()
    o = m.order(buy.order_id)  # type: ignore[union-attr]
    assert (o.status, o.hold_cash, o.pending_hold, o.canceled_qty) == ("canceled", 0, 0, 6)
    assert (m.account(a).cash_available, m.account(a).cash_held) == (10_000_00, 0)
    events = [e["event"] for e in env.pub.of("order", f"user:{a}")]
    assert events == ["new", "reduced", "replaced", "canceled", "rejected"]
    env.audit()


def test_market_buy_rest_is_released_and_rejects_return_the_hold(env: Env) -> None:
    m = env.market
    seller = m.add_account(cash=0, shares={SYM: 5})
    buyer = m.add_account(cash=10_000_00)
    m.place(seller, SYM, "sell", 5, 100_00)
    mkt = m.place(buyer, SYM, "buy", 8, type="market", tif="ioc")  # holds 8 * band high (110.00)
    bad = m.place(buyer, SYM, "buy", 1, 200_00)  # outside the band: the engine rejects it
    env.run()
    o = m.order(mkt.order_id)  # type: ignore[union-attr]
    assert (o.status, o.filled_qty, o.canceled_qty, o.hold_cash, o.reason) == (
        "canceled",
        5,
        3,
        0,
        "ioc_remainder",
    )
    r = m.order(bad.order_id)  # type: ignore[union-attr]
    assert (r.status, r.reason, r.hold_cash) == ("rejected", "outside_band", 0)
    assert (m.account(buyer).cash_available, m.account(buyer).cash_held) == (10_000_00 - 500_00, 0)
    env.audit()


def test_stops_expiry_and_mass_cancel(env: Env) -> None:
    m = env.market
    mm = m.add_account(cash=100_000_00, shares={SYM: 1000})
    a = m.add_account(cash=10_000_00, shares={SYM: 50})
    stop = m.place(a, SYM, "sell", 10, 97_00, type="stop_limit", stop=98_00)  # fires at <= 98, rests at 97
    gtd = m.place(a, SYM, "buy", 5, 90_00, tif="gtd", expire_at=now() + timedelta(hours=1))
    b = m.add_account(cash=10_000_00)
    m.place(b, SYM, "buy", 1, 98_00)
    m.place(mm, SYM, "sell", 1, 98_00)  # trade at 98: the stop fires and rests (no bid >= 97 left)
    env.run()
    o = m.order(stop.order_id)  # type: ignore[union-attr]
    assert (o.status, o.triggered, o.hold_qty) == ("new", True, 10)
    m.expire(SYM, now() + timedelta(hours=2))
    m.mass_cancel(a, SYM)
    env.run()
    assert m.order(gtd.order_id).status == "expired"  # type: ignore[union-attr]
    assert m.order(stop.order_id).status == "canceled"  # type: ignore[union-attr]
    assert m.position(a, SYM).held_qty == 0 and m.account(a).cash_held == 0  # type: ignore[union-attr]
    env.audit()


def test_restart_rebuilds_the_same_book_and_skips_duplicates(env: Env) -> None:
    m = env.market
    mm = m.add_account(cash=1_000_000_00, shares={SYM: 10_000})
    for i in range(20):
        m.place(mm, SYM, "sell", 10 + i, 100_00 + i * 5)
        m.place(mm, SYM, "buy", 10 + i, 99_00 - i * 5, stp="none")
    stop = m.place(mm, SYM, "buy", 5, type="stop", stop=105_00)
    env.run()
    before = env.matcher.state_hash(SYM)
    # a duplicate NewOrder (the reconciler's) after restart changes nothing
    env.bus.publish(SYM, stop)  # type: ignore[arg-type]
    env.matcher = env.new_matcher()
    assert env.matcher.state_hash(SYM) == before
    env.run()
    assert env.matcher.state_hash(SYM) == before
    assert env.matcher.stats["skipped"] == 1
    env.audit()


def test_repeated_settlement_fails_loudly(env: Env) -> None:
    m = env.market
    seller = m.add_account(cash=0, shares={SYM: 10})
    buyer = m.add_account(cash=10_000_00)
    sell = m.place(seller, SYM, "sell", 10, 100_00, publish=False)
    buy = m.place(buyer, SYM, "buy", 10, 100_00, publish=False)
    from engine.exchange import Exchange
    from schema.orderbook_load import instrument_spec, load_instruments
    from workers.settlement import order_refs

    with m.sessions() as s:
        ex = Exchange([instrument_spec(i) for i in load_instruments(s, [SYM])])
        steps = [(c, ex.apply(c)) for c in (sell, buy)]
        refs = order_refs(s, [sell.order_id, buy.order_id])  # type: ignore[union-attr]
        s.rollback()
    token = env.matcher.books[SYM].token
    with m.sessions() as s:
        settle_batch(s, SYM, steps, refs=refs, stream_id="1-1", seq=3, token=token, now=now())
        s.commit()
    with m.sessions() as s, pytest.raises(IntegrityError):
        settle_batch(s, SYM, steps, refs=refs, stream_id="1-1", seq=3, token=token, now=now())
        s.flush()
    env.audit()


def test_a_command_the_engine_fails_on_is_skipped_without_half_applying_the_batch(env: Env) -> None:
    m = env.market
    seller = m.add_account(cash=0, shares={SYM: 10})
    buyer = m.add_account(cash=10_000_00)
    sell = m.place(seller, SYM, "sell", 10, 100_00)
    bad = m.place(buyer, SYM, "buy", 5, 100_00)
    good = m.place(buyer, SYM, "buy", 5, 100_00)
    st = env.matcher.books[SYM]
    real = st.exchange.apply

    def flaky(command):  # type: ignore[no-untyped-def]
        if getattr(command, "order_id", None) == bad.order_id:  # type: ignore[union-attr]
            raise RuntimeError("engine bug")
        return real(command)

    st.exchange.apply = flaky  # type: ignore[method-assign]
    env.run()
    assert env.matcher.stats["rebuilds"] == 1
    assert m.order(bad.order_id).status == "new" and m.order(bad.order_id).seq is None  # type: ignore[union-attr]
    assert m.order(good.order_id).status == "filled"  # type: ignore[union-attr]
    assert m.order(sell.order_id).filled_qty == 5  # type: ignore[union-attr]
    env.audit()


def test_pushes_carry_exactly_what_a_read_after_commit_shows(env: Env) -> None:
    """The user pushes are built from what settlement returned in its transaction (no read after commit).
    Step by step through a random flow (trades, partial fills, cancels, reduces, replaces, rejected
    replaces, stops, market and FOK orders), every `order` / `account` / `position` payload of a batch must
    equal the docs/api.md view of the row as SQL holds it right after that batch."""
    from backbone_flow import Flow

    from schema.views import account_cash_view, order_view, position_view

    m = env.market
    accounts = [m.add_account(cash=1_000_000_00, shares={SYM: 2_000}) for _ in range(6)]
    env.matcher.settings = Settings(batch_max_commands=7)
    flow = Flow(m, [SYM], accounts, seed=3)
    seen = {"order": 0, "account": 0, "position": 0}
    for _ in range(25):
        for _ in range(12):
            flow.step()
        while True:
            start = len(env.pub.events)
            n = env.matcher.step(block_ms=0)
            st = env.matcher.books[SYM]
            price = st.stats.last if st.stats.last is not None else st.instrument.reference_price
            for event, data, room in env.pub.events[start:]:
                if event == "order":
                    assert data["order"] == order_view(m.order(data["order"]["id"]))
                elif event == "account":
                    assert data == account_cash_view(m.account(int(room.split(":")[1])))
                elif event == "position":
                    p = m.position(int(room.split(":")[1]), SYM)
                    assert data == position_view(p, price)
                else:
                    continue
                seen[event] += 1
            if n == 0:
                break
    assert min(seen.values()) > 20, seen
    events = {d["event"] for d in env.pub.of("order")}
    assert {"new", "fill", "partial_fill", "canceled", "reduced", "replaced"} <= events, events
    # trade ids: what was pushed is what SQL holds, and every "trade" ledger row points at its own trade
    from sqlalchemy import select

    from schema.models import LedgerEntry
    from schema.views import trade_view

    sql_trades = {t.id: t for t in m.trades(SYM)}
    assert len(sql_trades) > 20
    assert sorted(d["id"] for d in env.pub.of("trade")) == sorted(sql_trades)
    assert all(d == trade_view(sql_trades[d["id"]]) for d in env.pub.of("trade"))
    with m.sessions() as s:
        rows = s.execute(select(LedgerEntry).where(LedgerEntry.kind == "trade")).scalars().all()
        assert len(rows) == 2 * len(sql_trades)
        for r in rows:
            t = sql_trades[r.trade_id]
            assert r.order_id in (t.buy_order_id, t.sell_order_id)
            assert r.account_id == (
                t.buyer_account_id if r.order_id == t.buy_order_id else t.seller_account_id
            )
    env.audit()


def test_settlement_prepared_statements_survive_rollbacks_and_come_back_after_a_deallocate(
    pg_url: str,
) -> None:
    env = Env(pg_url, own_engine=True)
    try:
        m = env.market
        seller = m.add_account(cash=0, shares={SYM: 100})
        buyer = m.add_account(cash=100_000_00)
        m.place(seller, SYM, "sell", 20, 100_00)
        m.place(buyer, SYM, "buy", 4, 100_00)
        env.run()
        # a rolled-back transaction on the matcher's connection (the reconciler's reads end this way)
        with env.sessions() as s:
            s.execute(select(1))
            s.rollback()
        m.place(buyer, SYM, "buy", 3, 100_00)
        env.run()
        assert [t.qty for t in m.trades(SYM)] == [4, 3]
        assert env.matcher.stats["rebuilds"] == 0
        # someone drops them, all or one, on every pooled connection: the read or settlement that finds
        # one gone is retried in a fresh transaction, which prepares them again; no rebuild
        for name in (None, "bourse_settle_orders"):
            held = [env.sessions() for _ in range(2)]  # the matcher's engine pools two connections
            for s in held:
                names = s.connection().exec_driver_sql("SELECT name FROM pg_prepared_statements").scalars()
                if name is None or name in set(names):
                    s.connection().exec_driver_sql(f"DEALLOCATE {name or 'ALL'}")
                s.commit()
            for s in held:
                s.close()
            m.place(buyer, SYM, "buy", 2, 100_00)
            env.run()
        assert [t.qty for t in m.trades(SYM)] == [4, 3, 2, 2]
        assert env.matcher.stats["rebuilds"] == 0
        env.audit()
    finally:
        assert env.engine is not None
        env.engine.dispose()
        env.market.close()


def test_account_pushes_go_only_to_accounts_with_a_connection(pg_url: str, redis_url: str) -> None:
    """A matcher builds user pushes only for accounts the API processes count as connected, asked in
    Redis after each commit (schema.presence); market pushes are unchanged, and a listening account gets
    every update of its orders, fills, cash and position."""
    import redis
    from backbone_flow import Flow

    from schema.presence import LISTENERS_KEY, RedisListeners

    env = Env(pg_url)
    try:
        m = env.market
        accounts = [m.add_account(cash=1_000_000_00, shares={SYM: 2_000}) for _ in range(6)]
        client = redis.Redis.from_url(redis_url)
        listening = set(accounts[:2])
        client.hset(LISTENERS_KEY, mapping={str(a): 1 for a in listening} | {str(accounts[2]): 0})
        env.matcher.listeners = RedisListeners(client)
        flow = Flow(m, [SYM], accounts, seed=5)
        for _ in range(150):
            flow.step()
        env.run()
        user_events = [(e, d, room) for e, d, room in env.pub.events if room.startswith("user:")]
        assert user_events and {int(room.split(":")[1]) for _, _, room in user_events} <= listening
        with m.sessions() as s:
            from schema.models import Order

            ids = set(s.scalars(select(Order.id).where(Order.account_id.in_(listening))))
        assert {d["order"]["id"] for e, d, _ in user_events if e == "order"} == ids
        trades = m.trades(SYM)
        assert len(env.pub.of("trade")) == len(trades) > 10  # the market room hears every trade
        theirs = [t for t in trades if {t.buyer_account_id, t.seller_account_id} & listening]
        fills = [d for e, d, _ in user_events if e == "fill"]
        assert theirs and len(fills) == sum(
            len({t.buyer_account_id, t.seller_account_id} & listening) for t in theirs
        )
        env.audit()
    finally:
        env.market.close()


def test_under_load_the_matcher_waits_batch_max_ms_for_more_and_a_quiet_market_never_waits(
    pg_url: str,
) -> None:
    import threading
    import time

    env = Env(pg_url)
    try:
        m = env.market
        trader = m.add_account(cash=1_000_000_00)
        env.matcher.settings = Settings(batch_max_ms=300)

        def batches_for(late_orders: int) -> tuple[int, float]:
            before = env.matcher.stats["batches"]
            m.place(trader, SYM, "buy", 1, 90_00)
            later = threading.Timer(
                0.05, lambda: [m.place(trader, SYM, "buy", 1, 90_00) for _ in range(late_orders)]
            )
            later.start()
            start = time.monotonic()
            env.matcher.step(block_ms=0)
            elapsed = time.monotonic() - start
            later.join()
            env.matcher.drain()
            return env.matcher.stats["batches"] - before, elapsed

        # quiet: the last read found one command, so this one settles at once and the late one apart
        assert env.matcher.step(block_ms=0) == 0
        batches, elapsed = batches_for(1)
        assert (batches, elapsed < 0.2) == (2, True)
        # busy: after a read of 4, the next read waits and the late commands join its batch
        for _ in range(4):
            m.place(trader, SYM, "buy", 1, 90_00)
        assert env.matcher.step(block_ms=0) == 4
        batches, elapsed = batches_for(2)
        assert (batches, elapsed >= 0.3) == (1, True)
    finally:
        env.market.close()
