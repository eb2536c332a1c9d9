"""The hot path's statements keep index plans while the orders table grows from empty.

The matcher's statements are prepared once per connection and the intake's are prepared by psycopg; a
prepared statement keeps its generic plan, made from the table's size when it was first run. On a new,
near-empty orders table that plan was a sequential scan, kept as the table grew: in the service bench
about 200 scans of orders a second and most of PostgreSQL's CPU. Both connections now run with
enable_seqscan off (schema.db, key_lookups_only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from market_kit import make_market
from sqlalchemy import text
from sqlalchemy.orm import Session

from schema import balances
from schema.models import Account, Order
from workers.reconciler import pending_holds_query, release_stranded_holds
from workers.runner import matcher_engine
from workers.settlement import order_refs

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)

_GROW = """
INSERT INTO orders (account_id, client_order_id, symbol, side, type, time_in_force, qty, limit_price,
    stop_price, expire_at, post_only, stp, status, filled_qty, filled_notional, canceled_qty, hold_cash,
    hold_qty, pending_hold, reason, triggered, seq, created_at, updated_at)
SELECT :account, 'g' || g, 'AAPL', 'buy', 'limit', 'gtc', 1, 100, NULL, NULL, false, 'cancel_resting',
    'new', 0, 0, 0, 0, 0, 0, NULL, false, NULL, now(), now()
FROM generate_series(1, 20000) AS g
"""

_ONE_WITH_PENDING_HOLD = """
INSERT INTO orders (account_id, client_order_id, symbol, side, type, time_in_force, qty, limit_price,
    stop_price, expire_at, post_only, stp, status, filled_qty, filled_notional, canceled_qty, hold_cash,
    hold_qty, pending_hold, reason, triggered, seq, created_at, updated_at)
VALUES (:account, :cid, 'AAPL', 'buy', 'limit', 'gtc', 1, 100, NULL, NULL, false, 'cancel_resting',
    :status, 0, 0, 0, 0, 0, :pending, NULL, false, 1, :at, :at)
RETURNING id
"""


def test_the_matchers_prepared_lookup_stays_an_index_scan_as_orders_grow(pg_url: str) -> None:
    market = make_market(pg_url, NOW)
    account = market.user(0)
    engine = matcher_engine(pg_url)
    try:
        with engine.connect() as conn:
            for _ in range(8):  # past the custom-plan tries: the generic plan is made on an empty table
                with Session(bind=conn) as session:
                    order_refs(session, [1, 2, 3])
                    session.commit()
            with engine.connect() as other, other.begin():
                other.execute(text(_GROW), {"account": account})
            explain = "EXPLAIN EXECUTE bourse_settle_refs('{1,2,3}')"
            plan = "\n".join(r[0] for r in conn.exec_driver_sql(explain))
        assert "Index" in plan and "Seq Scan" not in plan, plan
    finally:
        engine.dispose()
        market.sessions.kw["bind"].dispose()


def test_the_reconcilers_pending_hold_scan_reads_only_orders_with_a_pending_hold(pg_url: str) -> None:
    """Every few seconds in the matcher's loop: it must not read every final order the symbol ever had."""
    market = make_market(pg_url, NOW)
    account = market.user(1000)
    with market.sessions() as s:
        s.execute(text(_GROW.replace("'new'", "'filled'")), {"account": account})
        ids = {}
        for status in ("canceled", "new"):  # an ended order's pending hold is stranded; an open one's is not
            assert balances.hold_cash(s, account, 500, NOW, None)
            ids[status] = s.execute(
                text(_ONE_WITH_PENDING_HOLD),
                {"account": account, "cid": status, "status": status, "pending": 500, "at": NOW},
            ).scalar_one()
        s.commit()
        sql = str(pending_holds_query(["AAPL"]).compile(s.get_bind(), compile_kwargs={"literal_binds": True}))
        plan = "\n".join(r[0] for r in s.execute(text("EXPLAIN " + sql)))
    assert "ix_orders_pending_hold" in plan and "ix_orders_symbol_status_seq" not in plan, plan

    assert release_stranded_holds(market.sessions, symbols=["AAPL"], now=NOW + timedelta(seconds=10)) == 1
    with market.sessions() as s:
        assert s.get(Order, ids["canceled"]).pending_hold == 0
        assert s.get(Order, ids["new"]).pending_hold == 500
        acct = s.get(Account, account)
        assert (acct.cash_available, acct.cash_held) == (500, 500)
    market.sessions.kw["bind"].dispose()
