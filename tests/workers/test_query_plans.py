"""The hot path's statements keep index plans while the orders table grows from empty.

The matcher's statements are prepared once per connection and the intake's are prepared by psycopg; a
prepared statement keeps its generic plan, made from the table's size when it was first run. On a new,
near-empty orders table that plan was a sequential scan, kept as the table grew: in the service bench
about 200 scans of orders a second and most of PostgreSQL's CPU. Both connections now run with
enable_seqscan off (schema.db, key_lookups_only)."""

from __future__ import annotations

from datetime import UTC, datetime

from market_kit import make_market
from sqlalchemy import text
from sqlalchemy.orm import Session

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
