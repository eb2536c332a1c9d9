"""GET /account, POST /account/reset, GET /positions, /activities, /account/fills."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Body, Depends, Query
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api import accounts
from api.deps import Services, WireRouter, current_principal, get_services, get_session
from api.errors import ApiError
from api.models import ResetRequest
from api.security import Principal
from engine.commands import MassCancel
from schema.models import Account, LedgerEntry, Position, Trade, User
from schema.money import AmountError, to_cents
from schema.views import account_view, activity_view, fills_for_account, position_view

router = WireRouter(tags=["account"])
MAX_ID = 2**63 - 1
MAX_STARTING_CASH = 1_000_000_000_00  # cents: one billion dollars


def current_price(services: Services, symbol: str) -> int | None:
    """Last trade price from the market-data ticker, else the instrument's reference price."""
    ticker = services.marketdata.ticker(symbol)
    if ticker and ticker.get("last") is not None:
        try:
            return to_cents(ticker["last"])
        except AmountError:
            pass
    rules = services.instruments.get(symbol)
    return None if rules is None else rules.reference_price


def _positions(session: Session, account_id: int) -> list[Position]:
    return list(
        session.scalars(
            select(Position)
            .where(Position.account_id == account_id)
            .where(or_(Position.qty != 0, Position.held_qty != 0, Position.realized_pnl != 0))
            .order_by(Position.symbol)
        )
    )


def account_doc(session: Session, services: Services, account_id: int) -> dict[str, Any]:
    account = session.get(Account, account_id)
    if account is None:
        raise ApiError(401, "UNAUTHORIZED", "the account of this token no longer exists")
    user = session.get(User, account.user_id)
    value = realized = unrealized = 0
    for pos in _positions(session, account_id):
        price = current_price(services, pos.symbol)
        realized += pos.realized_pnl
        if price is not None:
            value += price * pos.qty
            unrealized += price * pos.qty - pos.cost_basis
    return account_view(account, user, positions_value=value, realized_pl=realized, unrealized_pl=unrealized)


@router.get("/account")
def get_account(
    principal: Principal = Depends(current_principal),
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    return account_doc(session, services, principal.account_id)


@router.post("/account/reset")
def reset_account(
    body: ResetRequest | None = Body(None),
    principal: Principal = Depends(current_principal),
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Cancel every open order through the matcher (so holds are released by settlement, exactly once),
    wait until none is open, then reset cash and positions in one transaction (ledger kind "reset")."""
    account = session.get(Account, principal.account_id)
    if account is None:
        raise ApiError(401, "UNAUTHORIZED", "the account of this token no longer exists")
    target = account.starting_cash
    if body is not None and body.starting_cash is not None:
        try:
            target = to_cents(body.starting_cash)
        except AmountError as exc:
            raise ApiError(422, "VALIDATION_ERROR", "starting_cash: at most two decimals") from exc
        if not 0 < target <= MAX_STARTING_CASH:
            raise ApiError(
                422, "VALIDATION_ERROR", "starting_cash: must be above 0 and at most 1000000000.00"
            )
    session.rollback()
    deadline = time.monotonic() + services.reset_wait_s
    next_cancel = 0.0
    while True:
        if accounts.try_reset(session, principal.account_id, target, services.clock()):
            break
        if time.monotonic() >= deadline:
            raise ApiError(503, "SERVICE_UNAVAILABLE", "open orders are still being canceled; retry shortly")
        if time.monotonic() >= next_cancel:
            # Re-sent every second: an order placed while we wait is canceled too.
            ts = services.now_ms()
            for symbol in accounts.open_order_symbols(session, principal.account_id):
                services.bus.publish(symbol, MassCancel(principal.account_id, symbol, ts))
            session.rollback()
            next_cancel = time.monotonic() + 1.0
        time.sleep(0.02)
    return account_doc(session, services, principal.account_id)


@router.get("/positions")
def get_positions(
    principal: Principal = Depends(current_principal),
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    return [
        position_view(p, current_price(services, p.symbol)) for p in _positions(session, principal.account_id)
    ]


@router.get("/activities")
def get_activities(
    limit: int = Query(50, ge=1, le=500),
    cursor: int | None = Query(None, ge=1, le=MAX_ID),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    query = select(LedgerEntry).where(LedgerEntry.account_id == principal.account_id)
    if cursor is not None:
        query = query.where(LedgerEntry.id < cursor)
    rows = list(session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit)))
    return {
        "activities": [activity_view(e) for e in rows],
        "next_cursor": rows[-1].id if len(rows) == limit else None,
    }


@router.get("/account/fills")
def get_fills(
    limit: int = Query(50, ge=1, le=500),
    cursor: int | None = Query(None, ge=1, le=MAX_ID),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    me = principal.account_id
    query = select(Trade).where(or_(Trade.buyer_account_id == me, Trade.seller_account_id == me))
    if cursor is not None:
        query = query.where(Trade.id < cursor)
    trades = list(session.scalars(query.order_by(Trade.id.desc()).limit(limit)))
    fills = [f for t in trades for f in fills_for_account(t, me)]
    return {"fills": fills, "next_cursor": trades[-1].id if len(trades) == limit else None}
