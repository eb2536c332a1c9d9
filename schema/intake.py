"""The SQL side of placing, replacing and canceling orders. Functions take a session; place/replace commit
(the hold and the insert are one transaction), checks raise IntakeError and write nothing.

The checks mirror the engine's so a client gets its error synchronously; the engine validates again and
is the final word (a late reject releases the hold through settlement).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.commands import NewOrder, Replace
from engine.types import OrderStatus, OrderType, Side, StpMode, TimeInForce
from schema import balances
from schema.models import Instrument, Order
from schema.orderbook_load import to_epoch_ms
from schema.views import band_prices

OPEN_STATUSES = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)
FINAL_STATUSES = (
    OrderStatus.FILLED.value,
    OrderStatus.CANCELED.value,
    OrderStatus.EXPIRED.value,
    OrderStatus.REJECTED.value,
)
_PRICED = (OrderType.LIMIT, OrderType.STOP_LIMIT)
_STOPPED = (OrderType.STOP, OrderType.STOP_LIMIT)
_TIF_ALLOWED: dict[OrderType, tuple[TimeInForce, ...]] = {
    OrderType.LIMIT: tuple(TimeInForce),
    # A market order never rests: what it cannot fill at once is canceled (ioc) or nothing fills (fok).
    OrderType.MARKET: (TimeInForce.IOC, TimeInForce.FOK),
    OrderType.STOP: (TimeInForce.DAY, TimeInForce.GTC, TimeInForce.GTD),
    OrderType.STOP_LIMIT: (TimeInForce.DAY, TimeInForce.GTC, TimeInForce.GTD),
}


class OrderRow(Protocol):
    """An order as the ORM entity or a Core row: what the ownership check reads."""

    account_id: int
    status: str


class IntakeError(Exception):
    """A refused order: `code` is one of docs/api.md's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Rules:
    """An instrument's trading rules, cached by the API (prices in cents, quantities in shares)."""

    symbol: str
    name: str
    tick: int
    lot: int
    min_qty: int
    max_qty: int
    max_notional: int
    reference_price: int
    band_bps: int
    band_low: int
    band_high: int
    status: str

    @classmethod
    def of(cls, inst: Instrument) -> Rules:
        low, high = band_prices(inst)
        return cls(
            symbol=inst.symbol,
            name=inst.name,
            tick=inst.tick,
            lot=inst.lot,
            min_qty=inst.min_qty,
            max_qty=inst.max_qty,
            max_notional=inst.max_notional,
            reference_price=inst.reference_price,
            band_bps=inst.band_bps,
            band_low=low,
            band_high=high,
            status=inst.status,
        )


@dataclass(frozen=True, slots=True)
class OrderSpec:
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    qty: int
    limit_price: int | None = None
    stop_price: int | None = None
    expire_at: datetime | None = None
    post_only: bool = False
    stp: StpMode = StpMode.CANCEL_RESTING
    client_order_id: str | None = None


def _check_qty(qty: int, rules: Rules, *, floor: int = 0) -> None:
    if qty <= floor:
        raise IntakeError("INVALID_QTY", f"qty must be greater than {floor}")
    if qty % rules.lot:
        raise IntakeError("OFF_LOT", f"qty must be a multiple of the lot ({rules.lot})")
    if qty > rules.max_qty:
        raise IntakeError("INVALID_QTY", f"qty must be at most {rules.max_qty}")


def _check_price(name: str, price: int, rules: Rules, *, band: bool = True) -> None:
    if price <= 0:
        raise IntakeError("INVALID_PRICE", f"{name} must be positive")
    if price % rules.tick:
        raise IntakeError("OFF_TICK", f"{name} must be a multiple of the tick")
    # A stop price is not banded (as in the engine): a GTC stop may trigger on a later day's band.
    if band and not rules.band_low <= price <= rules.band_high:
        raise IntakeError(
            "OUTSIDE_BAND",
            f"{name} is outside today's band {rules.band_low / 100:.2f}..{rules.band_high / 100:.2f}",
        )


def check_order(spec: OrderSpec, rules: Rules, now: datetime) -> None:
    """Every static check of a new order, in a fixed order so a request gets one stable code."""
    if rules.status != "active":
        raise IntakeError("MARKET_CLOSED", f"{rules.symbol} is {rules.status}")
    _check_qty(spec.qty, rules)
    if spec.qty < rules.min_qty:
        raise IntakeError("INVALID_QTY", f"qty must be at least {rules.min_qty}")
    if spec.type in _PRICED:
        if spec.limit_price is None:
            raise IntakeError("INVALID_PRICE", f"limit_price is required for {spec.type} orders")
        _check_price("limit_price", spec.limit_price, rules)
    elif spec.limit_price is not None:
        raise IntakeError("INVALID_PRICE", f"limit_price is not allowed for {spec.type} orders")
    if spec.type in _STOPPED:
        if spec.stop_price is None:
            raise IntakeError("INVALID_PRICE", f"stop_price is required for {spec.type} orders")
        _check_price("stop_price", spec.stop_price, rules, band=False)
    elif spec.stop_price is not None:
        raise IntakeError("INVALID_PRICE", f"stop_price is not allowed for {spec.type} orders")
    if spec.limit_price is not None and spec.limit_price * spec.qty > rules.max_notional:
        raise IntakeError("MAX_NOTIONAL", f"notional is above the maximum {rules.max_notional / 100:.2f}")
    if spec.tif not in _TIF_ALLOWED[spec.type]:
        raise IntakeError("INVALID_TIF", f"time_in_force {spec.tif} is not allowed for {spec.type} orders")
    if spec.tif == TimeInForce.GTD:
        if spec.expire_at is None:
            raise IntakeError("INVALID_TIF", "expire_at is required for gtd orders")
        if spec.expire_at <= now:
            raise IntakeError("INVALID_TIF", "expire_at must be in the future")
    elif spec.expire_at is not None:
        raise IntakeError("INVALID_TIF", "expire_at is only allowed with time_in_force gtd")
    if spec.post_only and (spec.type != OrderType.LIMIT or spec.tif in (TimeInForce.IOC, TimeInForce.FOK)):
        raise IntakeError("INVALID_TIF", "post_only is only allowed for resting limit orders")


def hold_for(spec: OrderSpec, rules: Rules) -> int:
    """Cash (buy, cents) or shares (sell) to reserve: a market or stop buy may cost up to the band top."""
    if spec.side == Side.SELL:
        return spec.qty
    price = spec.limit_price if spec.limit_price is not None else rules.band_high
    return spec.qty * price


def _same_order(order: Order, spec: OrderSpec) -> bool:
    return (
        order.symbol == spec.symbol
        and order.side == spec.side.value
        and order.type == spec.type.value
        and order.time_in_force == spec.tif.value
        and order.qty == spec.qty
        and order.limit_price == spec.limit_price
        and order.stop_price == spec.stop_price
    )


def find_by_client_order_id(session: Session, account_id: int, client_order_id: str) -> Order | None:
    return session.scalar(
        select(Order).where(Order.account_id == account_id, Order.client_order_id == client_order_id)
    )


def original_order(order: Order, spec: OrderSpec) -> Order:
    """The order a retry with the same client_order_id gets back, or DUPLICATE_CLIENT_ORDER_ID."""
    if not _same_order(order, spec):
        raise IntakeError(
            "DUPLICATE_CLIENT_ORDER_ID",
            f"client_order_id {order.client_order_id!r} was used for a different order ({order.id})",
        )
    return order


# One constant statement on the Table, not the ORM entity (which would take the ORM bulk-insert path);
# its compiled form is cached and the values are bound per call.
_INSERT_ORDER = insert(Order.__table__).returning(Order.__table__.c.id)


def order_values(
    account_id: int, spec: OrderSpec, coid: str, hold: int, now: datetime, expire_at: datetime | None
) -> dict[str, object]:
    """Every column of a new order's row (the id aside), as placed: status new, nothing filled."""
    buy = spec.side == Side.BUY
    return {
        "account_id": account_id,
        "client_order_id": coid,
        "symbol": spec.symbol,
        "side": spec.side.value,
        "type": spec.type.value,
        "time_in_force": spec.tif.value,
        "qty": spec.qty,
        "limit_price": spec.limit_price,
        "stop_price": spec.stop_price,
        "expire_at": expire_at,
        "post_only": spec.post_only,
        "stp": spec.stp.value,
        "status": OrderStatus.NEW.value,
        "filled_qty": 0,
        "filled_notional": 0,
        "canceled_qty": 0,
        "hold_cash": hold if buy else 0,
        "hold_qty": 0 if buy else hold,
        "pending_hold": 0,
        "reason": None,
        "triggered": False,
        "seq": None,
        "created_at": now,
        "updated_at": now,
        "cancel_requested_at": None,
    }


def insufficient(spec: OrderSpec, hold: int) -> IntakeError:
    if spec.side == Side.BUY:
        return IntakeError("INSUFFICIENT_FUNDS", f"this order needs {hold / 100:.2f} of available cash")
    return IntakeError("INSUFFICIENT_SHARES", f"this order needs {hold} available {spec.symbol} shares")


@dataclass(frozen=True, slots=True)
class Placed:
    order: Order
    created: bool  # False: an idempotent retry returned the original order
    hold: int


def place_order(
    session: Session,
    account_id: int,
    spec: OrderSpec,
    rules: Rules,
    now: datetime,
    expire_at: datetime | None,
    *,
    client_order_id_checked: bool = False,
) -> Placed:
    """Hold and insert in one transaction (committed here). Raises IntakeError with nothing written.

    `client_order_id_checked`: the caller has just looked the client_order_id up in this session and
    found nothing, so the lookup is not repeated (a concurrent duplicate still loses on the unique key)."""
    coid = spec.client_order_id
    if coid is None:
        coid = uuid.uuid4().hex
    elif not client_order_id_checked:
        existing = find_by_client_order_id(session, account_id, coid)
        if existing is not None:
            session.rollback()
            return Placed(original_order(existing, spec), False, 0)
    hold = hold_for(spec, rules)
    buy = spec.side == Side.BUY
    values = order_values(account_id, spec, coid, hold, now, expire_at)
    try:
        # A Core INSERT ... RETURNING id: the ORM unit of work cost more than the statement (API hot path).
        order_id = session.execute(_INSERT_ORDER, values).scalar_one()
    except IntegrityError:
        # A concurrent duplicate won the unique key (account_id, client_order_id): return the original.
        session.rollback()
        existing = find_by_client_order_id(session, account_id, coid)
        if existing is None:  # pragma: no cover - the other insert rolled back too; let the client retry
            raise
        session.rollback()
        return Placed(original_order(existing, spec), False, 0)
    # The row as inserted, as a detached Order (every column set, so reading it never loads).
    order = Order(id=order_id, **values)
    if buy:
        ok = balances.hold_cash(session, account_id, hold, now, order.id)
    else:
        ok = balances.hold_shares(session, account_id, spec.symbol, hold, now, order.id)
    if not ok:
        session.rollback()
        raise insufficient(spec, hold)
    session.commit()
    return Placed(order, True, hold)


def new_order_command(order: Order, hold: int, ts_ms: int) -> NewOrder:
    expire_ms = None if order.expire_at is None else to_epoch_ms(order.expire_at)
    return NewOrder(
        order_id=order.id,
        account=order.account_id,
        symbol=order.symbol,
        side=Side(order.side),
        type=OrderType(order.type),
        qty=order.qty,
        price=order.limit_price,
        stop_price=order.stop_price,
        tif=TimeInForce(order.time_in_force),
        expire_at=expire_ms,
        post_only=order.post_only,
        stp=StpMode(order.stp),
        hold=hold,
        ts=ts_ms,
    )


def owned_order(session: Session, account_id: int, order_id: int, *, open_only: bool = True) -> Order:
    """The account's order, or ORDER_NOT_FOUND (also for another account's order); ORDER_FINAL if done."""
    order = session.get(Order, order_id)
    check_owned(order, account_id, order_id, open_only=open_only)
    assert order is not None
    return order


def request_cancel(conn: Session | Connection, order_ids: Sequence[int], now: datetime) -> None:
    """Record that the owner asked to cancel these (checked) orders, in the caller's transaction; the
    first request's time is kept."""
    if order_ids:
        # One statement: its index scan locks the rows in id order, as settlement's update of orders does,
        # so the two never wait on each other in a cycle (row by row in arrival order, they could:
        # PostgreSQL breaks such a deadlock only after deadlock_timeout, 1 s).
        orders = Order.__table__
        conn.execute(
            update(orders)
            .where(orders.c.id.in_(sorted(set(order_ids))), orders.c.cancel_requested_at.is_(None))
            .values(cancel_requested_at=now)
        )


def check_owned(order: OrderRow | None, account_id: int, order_id: int, *, open_only: bool = True) -> None:
    """ORDER_NOT_FOUND for a missing order and for another account's (no hint that it exists);
    ORDER_FINAL if `open_only` and the order is done."""
    if order is None or order.account_id != account_id:
        raise IntakeError("ORDER_NOT_FOUND", f"order {order_id} not found")
    if open_only and order.status in FINAL_STATUSES:
        raise IntakeError("ORDER_FINAL", f"order {order_id} is already {order.status}")


def _replace_pending(order_id: int) -> IntakeError:
    return IntakeError(
        "REPLACE_PENDING",
        f"order {order_id}'s previous replace is still being applied; retry once it settled",
    )


def replace_order(
    session: Session,
    account_id: int,
    order_id: int,
    rules: Rules,
    now: datetime,
    *,
    qty: int | None,
    limit_price: int | None,
    stop_price: int | None,
    ts_ms: int,
) -> tuple[Order, Replace]:
    """Check a replace, hold what the new terms need beyond the current hold (into orders.pending_hold
    and the account's held balance), commit, and return the Replace command to publish."""
    order = owned_order(session, account_id, order_id)
    kind = OrderType(order.type)
    if order.replace_ts is not None:
        raise _replace_pending(order.id)
    if qty is None and limit_price is None and stop_price is None:
        raise IntakeError("VALIDATION_ERROR", "give at least one of qty, limit_price, stop_price")
    if kind == OrderType.MARKET:
        raise IntakeError("VALIDATION_ERROR", "market orders cannot be replaced")
    if qty is not None:
        _check_qty(qty, rules, floor=order.filled_qty)
        if qty < rules.min_qty:
            raise IntakeError("INVALID_QTY", f"qty must be at least {rules.min_qty}")
    if limit_price is not None:
        if kind not in _PRICED:
            raise IntakeError("INVALID_PRICE", f"limit_price is not allowed for {kind} orders")
        _check_price("limit_price", limit_price, rules)
    if stop_price is not None:
        if kind not in _STOPPED or order.triggered:
            raise IntakeError("INVALID_PRICE", "stop_price can only change on an untriggered stop order")
        _check_price("stop_price", stop_price, rules, band=False)
    if (
        (qty in (None, order.qty))
        and (limit_price in (None, order.limit_price))
        and (stop_price in (None, order.stop_price))
    ):
        raise IntakeError("VALIDATION_ERROR", "the new terms are the same as the order's")
    new_qty = order.qty if qty is None else qty
    new_price = limit_price if limit_price is not None else order.limit_price
    if new_price is not None and new_price * new_qty > rules.max_notional:
        raise IntakeError("MAX_NOTIONAL", f"notional is above the maximum {rules.max_notional / 100:.2f}")
    leaves = new_qty - order.filled_qty
    buy = order.side == Side.BUY.value
    if buy:
        required = leaves * (new_price if new_price is not None else rules.band_high)
        extra = max(0, required - order.hold_cash - order.pending_hold)
        ok = balances.hold_cash(session, account_id, extra, now, order.id)
    else:
        extra = max(0, leaves - order.hold_qty - order.pending_hold)
        ok = balances.hold_shares(session, account_id, order.symbol, extra, now, order.id)
    if not ok:
        session.rollback()
        code = "INSUFFICIENT_FUNDS" if buy else "INSUFFICIENT_SHARES"
        raise IntakeError(code, "not enough available to cover the new terms")
    # The request is kept with the order until its Replace settles, so a Replace the stream lost is sent
    # again (workers.reconciler). Conditional: of two concurrent replaces of one order, one wins.
    # pending_hold is an expression, not the loaded value: the matcher may be updating the row.
    recorded = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.replace_ts.is_(None))
        .values(
            pending_hold=Order.pending_hold + extra,
            replace_ts=ts_ms,
            replace_qty=qty,
            replace_limit_price=limit_price,
            replace_stop_price=stop_price,
        )
    )
    if recorded.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise _replace_pending(order.id)
    session.commit()
    session.refresh(order)
    command = Replace(
        order_id=order.id,
        account=account_id,
        symbol=order.symbol,
        qty=qty,
        price=limit_price,
        stop_price=stop_price,
        extra_hold=extra,
        ts=ts_ms,
    )
    return order, command
