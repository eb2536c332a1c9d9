"""The audit finds broken invariants (and passes on a sound database: see tests/workers)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from schema import balances
from schema.audit import audit, format_report
from schema.db import make_engine, make_session_factory
from schema.migrate import upgrade
from schema.models import Account, Instrument, Order, User


def test_audit_reports_each_broken_invariant(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    sessions = make_session_factory(make_engine(sqlite_url))
    now = datetime.now(UTC)
    with sessions() as s:
        s.add(Instrument(symbol="AAPL", name="Apple", reference_price=100_00))
        s.add(User(id=1, email="a@x.test", password_hash="x"))
        s.flush()
        s.add(Account(id=1, user_id=1, starting_cash=1000_00, cash_available=0, cash_held=0))
        s.flush()
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
