"""The audit finds broken invariants (and passes on a sound database: see tests/workers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from schema import balances
from schema.audit import audit, format_report
from schema.db import make_engine, make_session_factory
from schema.migrate import upgrade
from schema.models import Account, Instrument, LedgerEntry, Order, Trade, User


def _instrument_and_account(s: Session, starting_cash: int) -> None:
    """AAPL, and account 1 (user 1) with no cash yet."""
    s.add(Instrument(symbol="AAPL", name="Apple", reference_price=100_00))
    s.add(User(id=1, email="a@x.test", password_hash="x"))
    s.flush()
    s.add(Account(id=1, user_id=1, starting_cash=starting_cash, cash_available=0, cash_held=0))
    s.flush()


def test_audit_reports_each_broken_invariant(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    sessions = make_session_factory(make_engine(sqlite_url))
    now = datetime.now(UTC)
    with sessions() as s:
        _instrument_and_account(s, starting_cash=1000_00)
        balances.deposit(s, 1, 1000_00, now)
        s.add(Order(id=1, account_id=1, client_order_id="c1", symbol="AAPL", side="buy", type="limit",
                    time_in_force="gtc", qty=10, limit_price=10_00, hold_cash=100_00, status="new",
                    created_at=now, updated_at=now))  # fmt: skip
        balances.hold_cash(s, 1, 100_00, now, 1)
        s.commit()
        assert audit(s) == []
        assert "audit passed" in format_report([])
        # money appears from nowhere, and a final order keeps its hold
        s.execute(update(Account).where(Account.id == 1).values(cash_available=Account.cash_available + 1))
        s.execute(update(Order).where(Order.id == 1).values(status="canceled", canceled_qty=10))
        s.commit()
        checks = {v.check for v in audit(s)}
    assert {"ledger_cash", "total_cash", "order_holds"} <= checks


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_audit_reports_rows_that_name_a_missing_account_order_or_instrument(backend: str, request) -> None:  # type: ignore[no-untyped-def]
    """orders, trades and ledger have no foreign keys (migration 0008): the audit checks the references."""
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    try:
        with sessions() as s:
            _instrument_and_account(s, starting_cash=0)
            order = {"client_order_id": "c", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": 1,
                     "limit_price": 10_00, "status": "canceled", "canceled_qty": 1, "created_at": now,
                     "updated_at": now}  # fmt: skip
            s.add(Order(id=1, account_id=1, symbol="AAPL", **order))
            s.commit()
            assert audit(s) == []
            s.add(Order(id=2, account_id=999, symbol="AAPL", **{**order, "client_order_id": "d"}))
            s.add(Order(id=3, account_id=1, symbol="ZZZZ", **{**order, "client_order_id": "e"}))
            s.add(Trade(id=1, symbol="AAPL", seq=1, price=10_00, qty=1, aggressor="buy", buy_order_id=1,
                        sell_order_id=777, buyer_account_id=1, seller_account_id=888,
                        executed_at=now))  # fmt: skip
            s.add(LedgerEntry(account_id=555, kind="fee", created_at=now))
            s.commit()
            found = {v.detail for v in audit(s) if v.check == "references"}
    finally:
        engine.dispose()
    assert found == {
        "order, 2, account, 999",
        "order, 3, instrument, ZZZZ",
        "trade, 1, order, 777",
        "trade, 1, account, 888",
        f"ledger, {_ledger_id(url)}, account, 555",
    }


def _ledger_id(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(LedgerEntry.id).where(LedgerEntry.account_id == 555)).scalar_one())
    finally:
        engine.dispose()
