"""Invariant checks on a live database (ARCHITECTURE.md §2): `bourse audit` prints the report and exits 1
if there is any violation.

Each check is one aggregate query. Run it on a quiet database for an exact answer: while a matcher is
settling, a replace in flight legitimately shows as pending hold on an order that just ended.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from schema.db import make_engine

MAX_PER_CHECK = 20
_FINAL = "('filled', 'canceled', 'expired', 'rejected')"
_OPEN = "('new', 'partially_filled')"


@dataclass(frozen=True, slots=True)
class Violation:
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.detail}"


# name -> (SQL returning one row per violation, how to describe a row)
_CHECKS: dict[str, str] = {
    # per account, the ledger sums equal the cash balances
    "ledger_cash": """
        SELECT a.id, a.cash_available, a.cash_held, COALESCE(l.avail, 0), COALESCE(l.held, 0)
        FROM accounts a LEFT JOIN (
            SELECT account_id, SUM(cash_available_delta) AS avail, SUM(cash_held_delta) AS held
            FROM ledger GROUP BY account_id) l ON l.account_id = a.id
        WHERE a.cash_available <> COALESCE(l.avail, 0) OR a.cash_held <> COALESCE(l.held, 0)""",
    # per account and symbol, the ledger sums equal the position (rows with no position count as 0)
    "ledger_shares": """
        SELECT COALESCE(p.account_id, l.account_id), COALESCE(p.symbol, l.symbol),
               COALESCE(p.qty, 0), COALESCE(p.held_qty, 0), COALESCE(l.qty, 0), COALESCE(l.held, 0)
        FROM positions p FULL OUTER JOIN (
            SELECT account_id, symbol, SUM(qty_delta) AS qty, SUM(held_qty_delta) AS held
            FROM ledger WHERE symbol IS NOT NULL AND (qty_delta <> 0 OR held_qty_delta <> 0)
            GROUP BY account_id, symbol) l ON l.account_id = p.account_id AND l.symbol = p.symbol
        WHERE COALESCE(p.qty, 0) <> COALESCE(l.qty, 0) OR COALESCE(p.held_qty, 0) <> COALESCE(l.held, 0)""",
    # trading moves cash between accounts, never creates or destroys it
    "cash_conserved_by_trades": """
        SELECT SUM(cash_available_delta + cash_held_delta) FROM ledger WHERE kind = 'trade'
        HAVING SUM(cash_available_delta + cash_held_delta) <> 0""",
    # holds and releases move cash or shares between available and held within one account
    "holds_move_within_account": """
        SELECT id, kind, account_id, cash_available_delta, cash_held_delta, qty_delta
        FROM ledger WHERE kind IN ('hold', 'release')
          AND (cash_available_delta + cash_held_delta <> 0 OR qty_delta <> 0)""",
    # per symbol, trades move shares between accounts, never create or destroy them
    "shares_conserved_by_trades": """
        SELECT symbol, SUM(qty_delta) FROM ledger WHERE kind = 'trade' GROUP BY symbol
        HAVING SUM(qty_delta) <> 0""",
    # total cash = what deposits, resets and fees put in
    "total_cash": """
        SELECT (SELECT COALESCE(SUM(cash_available + cash_held), 0) FROM accounts),
               (SELECT COALESCE(SUM(cash_available_delta + cash_held_delta), 0) FROM ledger
                WHERE kind IN ('deposit', 'reset', 'fee'))
        WHERE (SELECT COALESCE(SUM(cash_available + cash_held), 0) FROM accounts) <>
              (SELECT COALESCE(SUM(cash_available_delta + cash_held_delta), 0) FROM ledger
               WHERE kind IN ('deposit', 'reset', 'fee'))""",
    "non_negative_balances": """
        SELECT 'account', id, cash_available, cash_held, NULL FROM accounts
        WHERE cash_available < 0 OR cash_held < 0
        UNION ALL
        SELECT 'position', account_id, qty, held_qty, symbol FROM positions
        WHERE held_qty < 0 OR qty < held_qty""",
    # held cash = what the account's buy orders still reserve (open ones; final ones must hold 0)
    "cash_held_matches_orders": """
        SELECT a.id, a.cash_held, COALESCE(o.need, 0)
        FROM accounts a LEFT JOIN (
            SELECT account_id, SUM(hold_cash + pending_hold) AS need FROM orders
            WHERE side = 'buy' GROUP BY account_id) o ON o.account_id = a.id
        WHERE a.cash_held <> COALESCE(o.need, 0)""",
    "held_qty_matches_orders": """
        SELECT p.account_id, p.symbol, p.held_qty, COALESCE(o.need, 0)
        FROM positions p LEFT JOIN (
            SELECT account_id, symbol, SUM(hold_qty + pending_hold) AS need FROM orders
            WHERE side = 'sell' GROUP BY account_id, symbol) o
          ON o.account_id = p.account_id AND o.symbol = p.symbol
        WHERE p.held_qty <> COALESCE(o.need, 0)""",
    # qty = filled + leaves + canceled with leaves >= 0; final orders have no leaves and hold nothing
    "order_quantities": f"""
        SELECT id, status, qty, filled_qty, canceled_qty FROM orders
        WHERE filled_qty < 0 OR canceled_qty < 0 OR filled_qty + canceled_qty > qty
           OR (status IN {_FINAL} AND filled_qty + canceled_qty <> qty)
           OR (status = 'filled' AND filled_qty <> qty)
           OR (status = 'rejected' AND filled_qty <> 0)
           OR (status = 'new' AND filled_qty <> 0)
           OR (status = 'partially_filled' AND filled_qty = 0)
           OR (status IN {_OPEN} AND filled_qty + canceled_qty >= qty)""",
    "order_holds": f"""
        SELECT id, status, side, hold_cash, hold_qty, pending_hold FROM orders
        WHERE hold_cash < 0 OR hold_qty < 0 OR pending_hold < 0
           OR (side = 'buy' AND hold_qty <> 0) OR (side = 'sell' AND hold_cash <> 0)
           OR (status IN {_FINAL} AND (hold_cash <> 0 OR hold_qty <> 0 OR pending_hold <> 0))""",
    "trade_values": """
        SELECT id, symbol, seq, price, qty FROM trades WHERE price <= 0 OR qty <= 0
           OR buyer_account_id IS NULL OR seller_account_id IS NULL""",
    # what foreign keys would enforce on the append-heavy tables (migration 0008 dropped them): every
    # order, trade and ledger row names an account, order and instrument that exist
    "references": """
        SELECT 'order', o.id, 'account', CAST(o.account_id AS VARCHAR(40)) FROM orders o
        WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = o.account_id)
        UNION ALL SELECT 'order', o.id, 'instrument', o.symbol FROM orders o
        WHERE NOT EXISTS (SELECT 1 FROM instruments i WHERE i.symbol = o.symbol)
        UNION ALL SELECT 'trade', t.id, 'instrument', t.symbol FROM trades t
        WHERE NOT EXISTS (SELECT 1 FROM instruments i WHERE i.symbol = t.symbol)
        UNION ALL SELECT 'trade', x.id, 'order', CAST(x.order_id AS VARCHAR(40))
        FROM (SELECT id, buy_order_id AS order_id FROM trades
              UNION ALL SELECT id, sell_order_id FROM trades) x
        WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = x.order_id)
        UNION ALL SELECT 'trade', x.id, 'account', CAST(x.account_id AS VARCHAR(40))
        FROM (SELECT id, buyer_account_id AS account_id FROM trades
              UNION ALL SELECT id, seller_account_id FROM trades) x
        WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = x.account_id)
        UNION ALL SELECT 'ledger', l.id, 'account', CAST(l.account_id AS VARCHAR(40)) FROM ledger l
        WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = l.account_id)""",
    # every order's filled qty and notional are the sums of its trades
    "fills_match_trades": """
        SELECT o.id, o.filled_qty, o.filled_notional, COALESCE(t.q, 0), COALESCE(t.n, 0)
        FROM orders o LEFT JOIN (
            SELECT order_id, SUM(qty) AS q, SUM(price * qty) AS n FROM (
                SELECT buy_order_id AS order_id, qty, price FROM trades
                UNION ALL SELECT sell_order_id, qty, price FROM trades) x
            GROUP BY order_id) t ON t.order_id = o.id
        WHERE o.filled_qty <> COALESCE(t.q, 0) OR o.filled_notional <> COALESCE(t.n, 0)""",
}

_SQLITE_LEDGER_SHARES = """
    SELECT p.account_id, p.symbol, p.qty, p.held_qty, COALESCE(l.qty, 0), COALESCE(l.held, 0)
    FROM positions p LEFT JOIN (
        SELECT account_id, symbol, SUM(qty_delta) AS qty, SUM(held_qty_delta) AS held
        FROM ledger WHERE symbol IS NOT NULL GROUP BY account_id, symbol) l
      ON l.account_id = p.account_id AND l.symbol = p.symbol
    WHERE p.qty <> COALESCE(l.qty, 0) OR p.held_qty <> COALESCE(l.held, 0)
    UNION ALL
    SELECT l.account_id, l.symbol, 0, 0, l.qty, l.held FROM (
        SELECT account_id, symbol, SUM(qty_delta) AS qty, SUM(held_qty_delta) AS held
        FROM ledger WHERE symbol IS NOT NULL GROUP BY account_id, symbol) l
    WHERE (l.qty <> 0 OR l.held <> 0) AND NOT EXISTS (
        SELECT 1 FROM positions p WHERE p.account_id = l.account_id AND p.symbol = l.symbol)"""


def audit(session: Session) -> list[Violation]:
    """Every violated invariant (at most MAX_PER_CHECK rows per check). Empty: the database is sound."""
    dialect = session.get_bind().dialect.name
    violations: list[Violation] = []
    for name, sql in _CHECKS.items():
        if name == "ledger_shares" and dialect == "sqlite":  # no FULL OUTER JOIN before SQLite 3.39
            sql = _SQLITE_LEDGER_SHARES
        rows = session.execute(text(sql)).all()
        for row in rows[:MAX_PER_CHECK]:
            violations.append(Violation(name, ", ".join(str(v) for v in row)))
        if len(rows) > MAX_PER_CHECK:
            violations.append(Violation(name, f"... and {len(rows) - MAX_PER_CHECK} more"))
    session.rollback()
    return violations


def audit_database(database_url: str | Engine) -> list[Violation]:
    """`bourse audit`: open the database, run every check, close."""
    engine = make_engine(database_url, pool_size=1) if isinstance(database_url, str) else database_url
    try:
        with Session(engine) as session:
            return audit(session)
    finally:
        if isinstance(database_url, str):
            engine.dispose()


def format_report(violations: list[Violation]) -> str:
    if not violations:
        return f"audit passed: {len(_CHECKS)} invariant checks, no violation"
    lines = [f"audit FAILED: {len(violations)} violation(s)"]
    lines += [f"  - {v}" for v in violations]
    return "\n".join(lines)
