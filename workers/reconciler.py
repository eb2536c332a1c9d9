"""Re-enqueue orders SQL accepted but the stream lost.

An order is committed (hold + insert) before its NewOrder is XADDed, so a crash between the two, or a
Redis restart that forgets the stream, leaves it `new` with no engine seq forever. The reconciler
publishes those again, rebuilt from the SQL row. Publishing one twice is harmless: the matcher skips a
NewOrder whose order SQL shows as already sequenced, and the same order twice within one batch.

Not covered: a lost Cancel or Replace. A lost cancel leaves the order open (the user may cancel again);
a lost replace leaves its extra hold in orders.pending_hold (visible in the order's `hold`) until the
order ends -- see docs/backbone.md.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.commands import NewOrder
from engine.types import OrderStatus, OrderType, Side, StpMode, TimeInForce
from schema.models import Order
from schema.orderbook_load import to_epoch_ms
from schema.transport import CommandBus

log = logging.getLogger(__name__)

DEFAULT_AGE_S = 3.0


def new_order_from_row(order: Order) -> NewOrder:
    """The NewOrder the API published for this row (same fields, same hold)."""
    side = Side(order.side)
    return NewOrder(
        order_id=order.id,
        account=order.account_id,
        symbol=order.symbol,
        side=side,
        type=OrderType(order.type),
        qty=order.qty,
        price=order.limit_price,
        stop_price=order.stop_price,
        tif=TimeInForce(order.time_in_force),
        expire_at=None if order.expire_at is None else to_epoch_ms(order.expire_at),
        post_only=bool(order.post_only),
        stp=StpMode(order.stp),
        hold=order.hold_cash if side is Side.BUY else order.hold_qty,
        ts=to_epoch_ms(order.created_at),
    )


def stranded_orders(
    session: Session, *, older_than: datetime, symbols: Sequence[str] | None = None, limit: int = 5000
) -> list[Order]:
    """Orders accepted by SQL that the engine never sequenced, oldest first."""
    stmt = (
        select(Order)
        .where(Order.status == OrderStatus.NEW.value, Order.seq.is_(None), Order.created_at < older_than)
        .order_by(Order.id)
        .limit(limit)
    )
    if symbols is not None:
        stmt = stmt.where(Order.symbol.in_(list(symbols)))
    return list(session.scalars(stmt))


def reconcile(
    session_factory: sessionmaker[Session],
    bus: CommandBus,
    *,
    symbols: Sequence[str] | None = None,
    age_s: float = DEFAULT_AGE_S,
    now: datetime | None = None,
) -> int:
    """Publish again every order `new` with no seq created more than `age_s` ago. Returns how many."""
    now = now or datetime.now(UTC)
    with session_factory() as session:
        orders = stranded_orders(session, older_than=now - timedelta(seconds=age_s), symbols=symbols)
        session.rollback()
    by_symbol: dict[str, list[NewOrder]] = defaultdict(list)
    for order in orders:
        by_symbol[order.symbol].append(new_order_from_row(order))
    for symbol, commands in by_symbol.items():
        bus.publish_many(symbol, commands)
    if orders:
        log.warning("reconciler re-enqueued %d orders on %s", len(orders), ", ".join(sorted(by_symbol)))
    return len(orders)
