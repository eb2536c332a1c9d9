"""The group-commit intake's SQL (bourse_place_orders, migration 0003) on a real PostgreSQL: one batch
gives every order the outcome place_order would give it one transaction at a time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from market_kit import Market, make_market
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.types import OrderType, Side, TimeInForce
from schema.intake import IntakeError, OrderSpec, Rules, hold_for, place_order
from schema.intake_batch import NewOrderRow, Outcome, place_orders
from schema.models import Account, Instrument, LedgerEntry, Order, Position
from schema.seed import seed_demo

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def market(pg_url: str) -> Iterator[Market]:
    made = make_market(pg_url, NOW)
    yield made
    made.sessions.kw["bind"].dispose()


def _account(market: Market, cash: int, shares: int = 0) -> int:
    account = market.user(cash)
    if shares:
        market.grant_shares(account, "AAPL", shares)
    return account


def _rules(s: Session) -> Rules:
    inst = s.get(Instrument, "AAPL")
    assert inst is not None
    return Rules.of(inst)


def _row(account_id: int, side: Side, qty: int, price: int, rules: Rules, coid: str) -> NewOrderRow:
    spec = OrderSpec("AAPL", side, OrderType.LIMIT, TimeInForce.GTC, qty, price, client_order_id=coid)
    return NewOrderRow(account_id, spec, coid, hold_for(spec, rules), NOW, None)


def _ledger_matches(s: Session) -> None:
    for acct in s.scalars(select(Account)):
        sums = s.execute(
            select(
                func.coalesce(func.sum(LedgerEntry.cash_available_delta), 0),
                func.coalesce(func.sum(LedgerEntry.cash_held_delta), 0),
            ).where(LedgerEntry.account_id == acct.id, LedgerEntry.symbol.is_(None))
        ).one()
        assert (acct.cash_available, acct.cash_held) == tuple(sums)
    for pos in s.scalars(select(Position)):
        held = s.scalar(
            select(func.coalesce(func.sum(LedgerEntry.held_qty_delta), 0)).where(
                LedgerEntry.account_id == pos.account_id, LedgerEntry.symbol == pos.symbol
            )
        )
        assert pos.held_qty == held


def test_one_batch_holds_in_order_and_writes_only_what_held(market: Market) -> None:
    factory = market.sessions
    with factory() as s:
        rules = _rules(s)
    price = rules.reference_price
    buyer = _account(market, cash=10 * price)  # enough for exactly 10 shares
    seller = _account(market, cash=0, shares=5)
    rows = [
        _row(buyer, Side.BUY, 6, price, rules, "b1"),  # held
        _row(buyer, Side.BUY, 5, price, rules, "b2"),  # 4 left: insufficient
        _row(buyer, Side.BUY, 4, price, rules, "b3"),  # exactly the rest: held
        _row(seller, Side.SELL, 3, price, rules, "s1"),  # held
        _row(seller, Side.SELL, 3, price, rules, "s2"),  # 2 left: insufficient
        _row(buyer, Side.BUY, 1, price, rules, "b1"),  # same client_order_id as the first
    ]
    with factory.kw["bind"].begin() as conn:
        outcomes = place_orders(conn, rows)
    kinds = [o for o, _ in outcomes]
    assert kinds == [
        Outcome.CREATED,
        Outcome.INSUFFICIENT,
        Outcome.CREATED,
        Outcome.CREATED,
        Outcome.INSUFFICIENT,
        Outcome.DUPLICATE,
    ]
    ids = [i for _, i in outcomes]
    assert ids[1] is None and ids[4] is None and ids[5] is None
    assert ids[0] < ids[2] < ids[3]  # ids follow the batch's order
    with factory() as s:
        acct = s.get(Account, buyer)
        assert (acct.cash_available, acct.cash_held) == (0, 10 * price)
        pos = s.get(Position, (seller, "AAPL"))
        assert (pos.qty, pos.held_qty) == (5, 3)
        orders = s.scalars(select(Order).order_by(Order.id)).all()
        assert [o.client_order_id for o in orders] == ["b1", "b3", "s1"]
        assert [(o.hold_cash, o.hold_qty, o.status) for o in orders] == [
            (6 * price, 0, "new"),
            (4 * price, 0, "new"),
            (0, 3, "new"),
        ]
        holds = s.scalars(select(LedgerEntry.order_id).where(LedgerEntry.kind == "hold")).all()
        assert sorted(holds) == sorted(ids[i] for i in (0, 2, 3))
        _ledger_matches(s)


@pytest.fixture(scope="module")
def two_markets(make_pg_database) -> Iterator[list[Market]]:  # type: ignore[no-untyped-def]
    made = [make_market(make_pg_database(), NOW) for _ in range(2)]
    yield made
    for m in made:
        m.sessions.kw["bind"].dispose()


def _fresh(market: Market) -> tuple[list[int], Rules]:
    with market.sessions() as s:
        s.execute(text("TRUNCATE ledger, trades, orders, positions, accounts, users, instruments CASCADE"))
        seed_demo(s)
        s.commit()
        rules = _rules(s)
    cash_shares = ((10, 4), (3, 0), (0, 9))
    return [_account(market, cash=c * rules.reference_price, shares=sh) for c, sh in cash_shares], rules


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    orders=st.lists(
        st.tuples(
            st.integers(0, 2),  # which account
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(1, 8),  # qty
            st.integers(-3, 3),  # ticks from the reference price
            st.integers(0, 5),  # client_order_id: a few values, so some repeat
        ),
        min_size=1,
        max_size=25,
    ),
    unique_ids=st.booleans(),
)
def test_a_batch_equals_one_transaction_per_order(two_markets, orders, unique_ids) -> None:  # type: ignore[no-untyped-def]
    """The same orders through place_order one by one and through one batch: same outcomes, same rows.
    With `unique_ids` no client_order_id repeats within the batch, the function's set-based path
    (migration 0009); otherwise some repeat, its one-by-one path."""
    accts_a, rules = _fresh(two_markets[0])
    accts_b, _ = _fresh(two_markets[1])
    one_by_one, batched = two_markets[0].sessions, two_markets[1].sessions
    specs = []
    for i, (who, side, qty, ticks, coid) in enumerate(orders):
        price = rules.reference_price + ticks * rules.tick
        spec = OrderSpec(
            "AAPL", side, OrderType.LIMIT, TimeInForce.GTC, qty, price,
            client_order_id=f"u{i}" if unique_ids else f"c{coid}",
        )  # fmt: skip
        specs.append((who, spec))
    rows = [
        NewOrderRow(accts_b[who], spec, f"{spec.client_order_id}", hold_for(spec, rules), NOW, None)
        for who, spec in specs
    ]
    # Twice: the second round's client_order_ids are mostly taken by committed orders (retries).
    for _round in range(2):
        expected: list[str] = []
        with one_by_one() as s:
            for who, spec in specs:
                try:
                    placed = place_order(s, accts_a[who], spec, rules, NOW, None)
                    expected.append("created" if placed.created else "duplicate")
                except IntakeError as exc:
                    # A different order under a used client_order_id: the batch reports the collision and
                    # the API compares the original with the request (DUPLICATE_CLIENT_ORDER_ID).
                    duplicate = exc.code == "DUPLICATE_CLIENT_ORDER_ID"
                    assert duplicate or exc.code.startswith("INSUFFICIENT_"), exc.code
                    expected.append("duplicate" if duplicate else "insufficient")
        with batched.kw["bind"].begin() as conn:
            got = [o.value for o, _ in place_orders(conn, rows)]
        assert got == expected

    def state(made: sessionmaker[Session], accts: list[int]) -> list[object]:
        idx = {a: i for i, a in enumerate(accts)}
        with made() as s:
            _ledger_matches(s)
            cash = [
                (idx[a.id], a.cash_available, a.cash_held)
                for a in s.scalars(select(Account).order_by(Account.id))
            ]
            pos = [
                (idx[p.account_id], p.qty, p.held_qty)
                for p in s.scalars(select(Position).order_by(Position.account_id))
            ]
            placed = [
                (idx[o.account_id], o.client_order_id, o.side, o.qty, o.limit_price, o.hold_cash, o.hold_qty)
                for o in s.scalars(select(Order).order_by(Order.id))
            ]
        # Ids follow the lock order (by account), not the arrival order: compare per account.
        return [cash, pos, sorted(placed)]

    assert state(one_by_one, accts_a) == state(batched, accts_b)


def test_a_batch_of_cancel_requests_records_only_the_owners_open_orders(market: Market) -> None:
    """request_cancels: the owner's open order is marked, another account's and a final one are not,
    and every asked order's row comes back as it was before (the API checks ownership on it)."""
    from datetime import timedelta

    from schema.intake_batch import request_cancels

    with market.sessions() as s:
        rules = _rules(s)
    alice = _account(market, cash=100 * rules.reference_price)
    bob = _account(market, cash=100 * rules.reference_price)
    rows = [_row(alice, Side.BUY, 1, rules.reference_price, rules, f"a{i}") for i in range(3)]
    rows.append(_row(bob, Side.BUY, 1, rules.reference_price, rules, "b0"))
    engine = market.sessions.kw["bind"]
    with engine.begin() as conn:
        ids = [order_id for _, order_id in place_orders(conn, rows)]
        conn.execute(text("UPDATE orders SET status = 'filled' WHERE id = :id"), {"id": ids[2]})
    later = NOW + timedelta(seconds=5)
    asks = [(ids[0], alice), (ids[3], alice), (ids[2], alice), (10**12, alice), (ids[1], alice)]
    with engine.begin() as conn:
        got = request_cancels(conn, asks, later)
    assert set(got) == {ids[0], ids[1], ids[2], ids[3]}
    assert all(row.cancel_requested_at is None for row in got.values())  # as before the statement
    assert got[ids[3]].account_id == bob
    with engine.begin() as conn:
        again = request_cancels(conn, [(ids[0], alice)], later + timedelta(seconds=1))
    assert again[ids[0]].cancel_requested_at == later  # the first request's time is kept
    with market.sessions() as s:
        marked = dict(s.execute(select(Order.id, Order.cancel_requested_at)).all())
    assert marked == {ids[0]: later, ids[1]: later, ids[2]: None, ids[3]: None}


def _async_conninfo(market: Market) -> str:
    return market.sessions.kw["bind"].url.set(drivername="postgresql").render_as_string(hide_password=False)


def test_new_orders_and_cancels_in_one_round_trip_commit_together(market: Market) -> None:
    """place_orders_and_request_cancels_async: the pipelined pair answers as the two statements alone
    do, and is one transaction: when the cancels fail (here a lock timeout on the asked order, held by
    another transaction), the new orders of the same round trip are not committed either."""
    import asyncio
    from datetime import timedelta

    import psycopg

    from schema.intake_batch import place_orders_and_request_cancels_async

    with market.sessions() as s:
        rules = _rules(s)
    alice = _account(market, cash=100 * rules.reference_price)
    engine = market.sessions.kw["bind"]
    with engine.begin() as conn:
        (_, resting), (_, other) = place_orders(
            conn, [_row(alice, Side.BUY, 1, rules.reference_price, rules, c) for c in ("r0", "r1")]
        )
    later = NOW + timedelta(seconds=5)
    fresh = [_row(alice, Side.BUY, 2, rules.reference_price, rules, c) for c in ("n0", "n1")]

    async def both(rows: list[NewOrderRow], asks: list[tuple[int, int]]) -> object:
        async with await psycopg.AsyncConnection.connect(_async_conninfo(market), autocommit=True) as conn:
            await conn.execute("SET lock_timeout = '200ms'")
            return await place_orders_and_request_cancels_async(conn, rows, asks, later)

    def cash(account_id: int) -> tuple[int, int]:
        with market.sessions() as s:
            acct = s.get(Account, account_id)
            assert acct is not None
            return acct.cash_available, acct.cash_held

    before = cash(alice)
    with engine.connect() as blocker:  # holds the asked order's row: the cancels wait, then fail
        blocker.execute(text("SELECT 1 FROM orders WHERE id = :id FOR UPDATE"), {"id": other})
        with pytest.raises(psycopg.errors.LockNotAvailable):
            asyncio.run(both(fresh[:1], [(other, alice)]))
        blocker.rollback()
    with market.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Order).where(Order.client_order_id == "n0")) == 0
    assert cash(alice) == before  # n0's hold was rolled back with the cancels

    outcomes, rows = asyncio.run(both(fresh, [(resting, alice)]))  # type: ignore[misc]
    assert [o for o, _ in outcomes] == [Outcome.CREATED, Outcome.CREATED]
    assert set(rows) == {resting} and rows[resting].cancel_requested_at is None  # as before the statement
    with market.sessions() as s:
        placed = dict(s.execute(select(Order.client_order_id, Order.cancel_requested_at)).all())
        _ledger_matches(s)
    assert placed == {"r0": later, "r1": None, "n0": None, "n1": None}
