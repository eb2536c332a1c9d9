"""Moves of cash and shares, each recorded in the ledger. Functions take a session and never commit.

Holds are conditional updates (available >= amount), so concurrent orders on one account can never
overspend: the row lock serialises them and the loser sees rowcount 0.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from schema.models import Account, LedgerEntry, Position


def record(
    session: Session,
    account_id: int,
    kind: str,
    now: datetime,
    *,
    symbol: str | None = None,
    cash_available_delta: int = 0,
    cash_held_delta: int = 0,
    qty_delta: int = 0,
    held_qty_delta: int = 0,
    order_id: int | None = None,
    trade_id: int | None = None,
) -> None:
    session.execute(
        insert(LedgerEntry).values(
            account_id=account_id,
            kind=kind,
            symbol=symbol,
            cash_available_delta=cash_available_delta,
            cash_held_delta=cash_held_delta,
            qty_delta=qty_delta,
            held_qty_delta=held_qty_delta,
            order_id=order_id,
            trade_id=trade_id,
            created_at=now,
        )
    )


def deposit(session: Session, account_id: int, amount: int, now: datetime, kind: str = "deposit") -> None:
    session.execute(
        update(Account).where(Account.id == account_id).values(cash_available=Account.cash_available + amount)
    )
    record(session, account_id, kind, now, cash_available_delta=amount)


def hold_cash(session: Session, account_id: int, amount: int, now: datetime, order_id: int | None) -> bool:
    """Move `amount` from available to held if available covers it. False (and no change) otherwise."""
    if amount == 0:
        return True
    result = session.execute(
        update(Account)
        .where(Account.id == account_id, Account.cash_available >= amount)
        .values(cash_available=Account.cash_available - amount, cash_held=Account.cash_held + amount)
    )
    if result.rowcount != 1:
        return False
    record(
        session,
        account_id,
        "hold",
        now,
        cash_available_delta=-amount,
        cash_held_delta=amount,
        order_id=order_id,
    )
    return True


def release_cash(session: Session, account_id: int, amount: int, now: datetime, order_id: int | None) -> None:
    if amount == 0:
        return
    session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(cash_available=Account.cash_available + amount, cash_held=Account.cash_held - amount)
    )
    record(
        session,
        account_id,
        "release",
        now,
        cash_available_delta=amount,
        cash_held_delta=-amount,
        order_id=order_id,
    )


def hold_shares(
    session: Session, account_id: int, symbol: str, qty: int, now: datetime, order_id: int | None
) -> bool:
    """Reserve `qty` shares for a sell if the account owns that many beyond what is already held."""
    if qty == 0:
        return True
    result = session.execute(
        update(Position)
        .where(
            Position.account_id == account_id,
            Position.symbol == symbol,
            Position.qty - Position.held_qty >= qty,
        )
        .values(held_qty=Position.held_qty + qty)
    )
    if result.rowcount != 1:
        return False
    record(session, account_id, "hold", now, symbol=symbol, held_qty_delta=qty, order_id=order_id)
    return True


def release_shares(
    session: Session, account_id: int, symbol: str, qty: int, now: datetime, order_id: int | None
) -> None:
    if qty == 0:
        return
    session.execute(
        update(Position)
        .where(Position.account_id == account_id, Position.symbol == symbol)
        .values(held_qty=Position.held_qty - qty)
    )
    record(session, account_id, "release", now, symbol=symbol, held_qty_delta=-qty, order_id=order_id)
