"""Orders: place (hold + insert in one transaction, then publish), list, get, replace, cancel."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from fastapi import Depends, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import Services, WireRouter, current_principal, get_services, get_session
from api.errors import ApiError, status_of
from api.models import OrderRequest, ReplaceRequest
from api.security import Principal
from engine.commands import Cancel, MassCancel
from engine.types import OrderStatus, OrderType, TimeInForce
from schema import intake
from schema.calendar import Admission, admission, day_order_expiry
from schema.intake import FINAL_STATUSES, OPEN_STATUSES, IntakeError, OrderSpec, Rules
from schema.intake_batch import NewOrderRow
from schema.models import Order
from schema.money import AmountError, to_cents, to_shares
from schema.views import View, order_view

router = WireRouter(tags=["orders"])
MAX_ID = 2**63 - 1
OrderId = Path(ge=1, le=MAX_ID)
_STATUS_FILTERS = {"open": OPEN_STATUSES, "closed": FINAL_STATUSES, "all": None} | {
    s.value: (s.value,) for s in OrderStatus
}


def intake_error(exc: IntakeError) -> ApiError:
    return ApiError(status_of(exc.code), exc.code, exc.message)


def price_cents(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return to_cents(text)
    except AmountError as exc:
        raise ApiError(422, "OFF_TICK", f"{name} must be a multiple of the tick (0.01)") from exc


def share_count(text: str) -> int:
    try:
        return to_shares(text)
    except AmountError as exc:
        raise ApiError(422, "OFF_LOT", "qty must be a whole number of shares") from exc


def rules_for(services: Services, symbol: str) -> Rules:
    rules = services.instruments.get(symbol)
    if rules is None:
        raise ApiError(422, "UNKNOWN_SYMBOL", f"unknown symbol {symbol!r}")
    return rules


def _publish(services: Services, symbol: str, command: Any) -> None:
    # The order is committed; if the stream is down, the reconciler re-enqueues what SQL holds as new.
    try:
        services.bus.publish(symbol, command)
    except Exception:  # noqa: BLE001 - any transport failure is recovered from SQL
        logging.getLogger("bourse.api").exception("publish to %s failed; the reconciler will retry", symbol)


def _spec(body: OrderRequest, rules: Rules) -> OrderSpec:
    return OrderSpec(
        symbol=rules.symbol,
        side=body.side,
        type=body.type,
        # A market order never rests, so DAY means IOC (as brokers treat it); the engine only takes ioc|fok.
        tif=TimeInForce.IOC
        if body.type == OrderType.MARKET and body.time_in_force == TimeInForce.DAY
        else body.time_in_force,
        qty=share_count(body.qty),
        limit_price=price_cents("limit_price", body.limit_price),
        stop_price=price_cents("stop_price", body.stop_price),
        expire_at=body.expire_at,
        post_only=body.post_only,
        stp=body.stp,
        client_order_id=body.client_order_id,
    )


def _admit(
    services: Services, spec: OrderSpec, rules: Rules, now: datetime
) -> tuple[Admission, datetime | None]:
    """The static checks and the calendar: whether the order goes to the book now or waits for the
    open, and when it expires. CPU only (the calendar and the rules are in memory)."""
    intake.check_order(spec, rules, now)
    assert services.calendar is not None
    admit = admission(now, services.calendar)
    if admit == Admission.REJECT:
        raise IntakeError("MARKET_CLOSED", "the market is closed; see GET /api/v1/market/status")
    expire_at = spec.expire_at
    if spec.tif == TimeInForce.DAY:
        expire_at = day_order_expiry(now, services.calendar)
    return admit, expire_at


def _place(services: Services, account_id: int, body: OrderRequest) -> tuple[int, dict[str, Any]]:
    """All of a POST's blocking work, in one thread-pool call: the rules (a cache that may reload from
    SQL), the hold + insert transaction, and the XADD after commit and after the session is closed."""
    rules = rules_for(services, body.symbol)
    spec = _spec(body, rules)
    now = services.clock()
    with services.session_factory() as session:
        try:
            if spec.client_order_id is not None:
                # A retry returns the original even if the market has closed since, or the funds are gone.
                existing = intake.find_by_client_order_id(session, account_id, spec.client_order_id)
                if existing is not None:
                    return 200, order_view(intake.original_order(existing, spec))
            admit, expire_at = _admit(services, spec, rules, now)
            # The client_order_id lookup above found nothing: place_order need not repeat it (a concurrent
            # duplicate still loses on the unique key and gets the original).
            placed = intake.place_order(
                session, account_id, spec, rules, now, expire_at, client_order_id_checked=True
            )
        except IntakeError as exc:
            raise intake_error(exc) from exc
    view = order_view(placed.order)
    if not placed.created:
        return 200, view
    if admit == Admission.ACCEPT:
        command = intake.new_order_command(placed.order, placed.hold, services.now_ms())
        _publish(services, rules.symbol, command)
    return 201, view


def _batched_row(
    services: Services, account_id: int, body: OrderRequest
) -> tuple[NewOrderRow, Admission] | None:
    """The checked order for the group-commit intake, or None when it must take the per-request path:
    a request with a client_order_id that fails a check may be the retry of an order placed before the
    check started failing (the market closed since), and a retry gets its original back."""
    now = services.clock()
    try:
        rules = rules_for(services, body.symbol)
        spec = _spec(body, rules)
        admit, expire_at = _admit(services, spec, rules, now)
    except ApiError:
        if body.client_order_id is not None:
            return None
        raise
    except IntakeError as exc:
        if body.client_order_id is not None:
            return None
        raise intake_error(exc) from exc
    coid = spec.client_order_id or uuid.uuid4().hex
    hold = intake.hold_for(spec, rules)
    return NewOrderRow(account_id, spec, coid, hold, now, expire_at), admit


@router.post(
    "/orders",
    status_code=201,
    responses={201: {"model": dict[str, Any]}, 200: {"description": "idempotent retry"}},
)
async def place_order(
    body: OrderRequest,
    principal: Principal = Depends(current_principal),
    services: Services = Depends(get_services),
) -> Response:
    # The view is already the wire shape, so it is encoded directly (no response validation).
    status, view = await place(services, principal.account_id, body)
    return JSONResponse(view, status_code=status)


async def place(services: Services, account_id: int, body: OrderRequest) -> tuple[int, View]:
    """(201, the new order) or (200, the original of a retried client_order_id); raises ApiError."""
    batcher = services.batcher
    if batcher is not None:
        checked = _batched_row(services, account_id, body)
        if checked is not None:
            try:
                return await batcher.place(*checked)
            except IntakeError as exc:
                raise intake_error(exc) from exc
    # One hop to the thread pool per request.
    return await run_in_threadpool(_place, services, account_id, body)


@router.get("/orders")
def list_orders(
    status: str = Query("open", max_length=20),
    symbol: str | None = Query(None, max_length=12),
    limit: int = Query(50, ge=1, le=500),
    cursor: int | None = Query(None, ge=1, le=MAX_ID),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    if status not in _STATUS_FILTERS:
        raise ApiError(422, "VALIDATION_ERROR", f"status: must be one of {', '.join(_STATUS_FILTERS)}")
    query = select(Order).where(Order.account_id == principal.account_id)
    statuses = _STATUS_FILTERS[status]
    if statuses is not None:
        query = query.where(Order.status.in_(statuses))
    if symbol:
        query = query.where(Order.symbol == symbol.upper())
    if cursor is not None:
        query = query.where(Order.id < cursor)
    orders = list(session.scalars(query.order_by(Order.id.desc()).limit(limit)))
    next_cursor = orders[-1].id if len(orders) == limit else None
    return {"orders": [order_view(o) for o in orders], "next_cursor": next_cursor}


@router.get("/orders:by_client_order_id")
def get_by_client_order_id(
    client_order_id: str = Query(min_length=1, max_length=64),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    order = intake.find_by_client_order_id(session, principal.account_id, client_order_id)
    if order is None:
        raise ApiError(404, "ORDER_NOT_FOUND", f"no order with client_order_id {client_order_id!r}")
    return order_view(order)


@router.get("/orders/{order_id}")
def get_order(
    order_id: int = OrderId,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    try:
        return order_view(intake.owned_order(session, principal.account_id, order_id, open_only=False))
    except IntakeError as exc:
        raise intake_error(exc) from exc


@router.patch("/orders/{order_id}", status_code=202)
def replace_order(
    body: ReplaceRequest,
    order_id: int = OrderId,
    principal: Principal = Depends(current_principal),
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    qty = None if body.qty is None else share_count(body.qty)
    limit_price = price_cents("limit_price", body.limit_price)
    stop_price = price_cents("stop_price", body.stop_price)
    now = services.clock()
    try:
        order = intake.owned_order(session, principal.account_id, order_id)
        rules = rules_for(services, order.symbol)
        assert services.calendar is not None
        if admission(now, services.calendar) == Admission.REJECT:
            raise IntakeError(
                "MARKET_CLOSED", "the market is closed; orders can be canceled but not replaced"
            )
        order, command = intake.replace_order(
            session,
            principal.account_id,
            order_id,
            rules,
            now,
            qty=qty,
            limit_price=limit_price,
            stop_price=stop_price,
            ts_ms=services.now_ms(),
        )
    except IntakeError as exc:
        raise intake_error(exc) from exc
    _publish(services, order.symbol, command)
    return order_view(order)


def _cancel(services: Services, account_id: int, order_id: int) -> dict[str, Any]:
    with services.session_factory() as session:
        try:
            order = intake.owned_order(session, account_id, order_id)
        except IntakeError as exc:
            raise intake_error(exc) from exc
        view = order_view(order)
        intake.request_cancel(session, [order.id], services.clock())
        session.commit()
    _publish(services, order.symbol, Cancel(order.id, account_id, order.symbol, services.now_ms()))
    return view


@router.delete("/orders/{order_id}", status_code=202, responses={202: {"model": dict[str, Any]}})
async def cancel_order(
    order_id: int = OrderId,
    principal: Principal = Depends(current_principal),
    services: Services = Depends(get_services),
) -> Response:
    return JSONResponse(await cancel(services, principal.account_id, order_id), status_code=202)


async def cancel(services: Services, account_id: int, order_id: int) -> View:
    """The order as of the cancel request (the Cancel is on its way to the matcher); raises ApiError."""
    if services.batcher is not None:
        try:
            return await services.batcher.cancel(account_id, order_id)
        except IntakeError as exc:
            raise intake_error(exc) from exc
    return await run_in_threadpool(_cancel, services, account_id, order_id)


@router.delete("/orders", status_code=202)
def cancel_all(
    symbol: str | None = Query(None, max_length=12),
    principal: Principal = Depends(current_principal),
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    query = select(Order.id, Order.symbol).where(
        Order.account_id == principal.account_id, Order.status.in_(OPEN_STATUSES)
    )
    if symbol:
        query = query.where(Order.symbol == symbol.upper())
    rows = session.execute(query.order_by(Order.id)).all()
    intake.request_cancel(session, [r.id for r in rows], services.clock())
    session.commit()
    ts = services.now_ms()
    for sym in sorted({r.symbol for r in rows}):
        _publish(services, sym, MassCancel(principal.account_id, sym, ts))
    return {"canceled": [r.id for r in rows]}
