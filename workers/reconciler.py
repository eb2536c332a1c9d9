"""Re-enqueue orders SQL accepted but the stream lost.

An order is committed (hold + insert) before its NewOrder is XADDed, so a crash between the two, or a
Redis restart that forgets the stream, leaves it `new` with no engine seq forever. The reconciler
publishes those again, rebuilt from the SQL row. Publishing one twice is harmless: the matcher skips a
NewOrder whose order SQL shows as already sequenced, and the same order twice within one batch.

A cancel request is kept in SQL (orders.cancel_requested_at, written before the 202): while such an order
is still open `age_s` after the request, its Cancel is sent again, after any NewOrder re-sent in the same
pass; an order never sequenced whose cancel was requested (queued for the open, or its NewOrder lost)
is re-sent as a Withdraw, so it is canceled when it reaches the matcher and never trades. A replace
request is kept too (orders.replace_ts and the new terms, one at a time per order, written before the
202): while it is unsettled `age_s` after the request its Replace is sent again, between the NewOrders
and the Cancels of the pass; the matcher applies a Replace only while it is the order's pending request,
so one that did arrive is never applied twice. An order that ended with a replace pending has the
replace's extra hold in orders.pending_hold: `release_stranded_holds` gives it back, or the re-sent
Replace is rejected and its settlement does; both are conditional updates of pending_hold, so the hold
goes back exactly once.

The market calendar gates it: while the market is closed nothing is published (an order queued for the
open, `Admission.QUEUE`, is `new` with no seq too, and must not reach the book before the open). At the
open `workers.jobs.open_session` publishes the queued orders at once (`reconcile` with age 0); for the
first `age_s` seconds of a session the periodic run publishes nothing, so it does not send the whole
queue a second time while the matcher is still sequencing it. After that it is the crash repair again
(and the fallback that sends queued orders if no open job ran).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.commands import Cancel, NewOrder, Replace, Withdraw
from engine.types import OrderStatus, OrderType, Side, StpMode, TimeInForce
from schema import balances
from schema.calendar import MarketCalendar, session_open_at_or_before
from schema.intake import FINAL_STATUSES, OPEN_STATUSES
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


def market_accepts(now: datetime, calendar: MarketCalendar | None, age_s: float) -> bool:
    """May the reconciler publish at `now`? Not while closed; not in the session's first age_s seconds."""
    if calendar is None or calendar.always_open:
        return True
    if not calendar.is_open(now):
        return False
    opened = session_open_at_or_before(now, calendar)
    return age_s <= 0 or opened is None or opened <= now - timedelta(seconds=age_s)


def reconcile(
    session_factory: sessionmaker[Session],
    bus: CommandBus,
    *,
    symbols: Sequence[str] | None = None,
    age_s: float = DEFAULT_AGE_S,
    now: datetime | None = None,
    calendar: MarketCalendar | None = None,
) -> int:
    """Publish again every order `new` with no seq created more than `age_s` ago. Returns how many.

    With a `calendar` (None: always open): nothing while the market is closed, and (age_s > 0) nothing in
    the first age_s seconds of a session, when the open job has just published the queued orders."""
    now = now or datetime.now(UTC)
    if not market_accepts(now, calendar, age_s):
        return 0
    by_symbol: dict[str, list[NewOrder | Withdraw]] = defaultdict(list)
    with session_factory() as session:
        orders = stranded_orders(session, older_than=now - timedelta(seconds=age_s), symbols=symbols)
        for order in orders:
            command = new_order_from_row(order)
            # Canceled before any book saw it: its Cancel was (or will be) rejected as unknown, so the
            # order goes as a Withdraw, which never rests or trades.
            withdraw = order.cancel_requested_at is not None
            by_symbol[order.symbol].append(Withdraw(command) if withdraw else command)
        session.rollback()
    _publish(bus, by_symbol, "re-enqueued %d orders")
    resend_replaces(session_factory, bus, symbols=symbols, age_s=age_s, now=now)
    resend_cancels(session_factory, bus, symbols=symbols, age_s=age_s, now=now)
    return len(orders)


def resend_replaces(
    session_factory: sessionmaker[Session],
    bus: CommandBus,
    *,
    symbols: Sequence[str] | None = None,
    age_s: float = DEFAULT_AGE_S,
    now: datetime | None = None,
) -> int:
    """Send the Replace again for every order whose replace request (orders.replace_ts) is older than
    `age_s` and still unsettled: the stream lost it. Its extra hold is what the order still has pending
    (0 if release_stranded_holds already gave it back). The matcher applies a Replace only while it is the
    order's pending request, so a copy of one that did arrive is skipped; an order that ended meanwhile
    gets it rejected, which releases the hold and clears the request. Returns how many."""
    now = now or datetime.now(UTC)
    asked_before = to_epoch_ms(now - timedelta(seconds=age_s))
    stmt = select(
        Order.id, Order.account_id, Order.symbol, Order.pending_hold, Order.replace_ts, Order.replace_qty,
        Order.replace_limit_price, Order.replace_stop_price,
    ).where(Order.replace_ts.is_not(None), Order.replace_ts <= asked_before)  # fmt: skip
    rows = _rows_by_id(session_factory, stmt, symbols)
    by_symbol: dict[str, list[Replace]] = defaultdict(list)
    for r in rows:
        by_symbol[r.symbol].append(
            Replace(
                order_id=r.id, account=r.account_id, symbol=r.symbol, qty=r.replace_qty,
                price=r.replace_limit_price, stop_price=r.replace_stop_price, extra_hold=r.pending_hold,
                ts=r.replace_ts,
            )
        )  # fmt: skip
    _publish(bus, by_symbol, "sent %d replaces again")
    return len(rows)


def resend_cancels(
    session_factory: sessionmaker[Session],
    bus: CommandBus,
    *,
    symbols: Sequence[str] | None = None,
    age_s: float = DEFAULT_AGE_S,
    now: datetime | None = None,
) -> int:
    """Send a Cancel again for every open order whose cancel was requested more than `age_s` ago (the
    stream lost it, or the order was queued for the open). A Cancel of an order already gone is rejected
    by the engine and changes nothing. Returns how many."""
    now = now or datetime.now(UTC)
    stmt = select(Order.id, Order.account_id, Order.symbol).where(
        Order.status.in_(OPEN_STATUSES),
        Order.cancel_requested_at.is_not(None),
        Order.cancel_requested_at <= now - timedelta(seconds=age_s),
    )
    rows = _rows_by_id(session_factory, stmt, symbols)
    ts = to_epoch_ms(now)
    by_symbol: dict[str, list[Cancel]] = defaultdict(list)
    for r in rows:
        by_symbol[r.symbol].append(Cancel(r.id, r.account_id, r.symbol, ts))
    _publish(bus, by_symbol, "sent %d cancels again")
    return len(rows)


def _rows_by_id(
    session_factory: sessionmaker[Session], stmt: Select[Any], symbols: Sequence[str] | None
) -> list[Any]:
    """The orders' rows `stmt` selects, of `symbols` (None: all), in id order, read in a short transaction."""
    if symbols is not None:
        stmt = stmt.where(Order.symbol.in_(list(symbols)))
    with session_factory() as session:
        rows = list(session.execute(stmt.order_by(Order.id)).all())
        session.rollback()
    return rows


def _publish(bus: CommandBus, by_symbol: dict[str, list[Any]], what: str) -> None:
    for symbol, commands in by_symbol.items():
        bus.publish_many(symbol, commands)
    if by_symbol:
        n = sum(len(c) for c in by_symbol.values())
        log.warning("reconciler " + what + " on %s", n, ", ".join(sorted(by_symbol)))


def pending_holds_query(symbols: Sequence[str] | None) -> Select[Any]:
    """Every order with a pending replace hold (of `symbols`; None: all). Only `pending_hold > 0` and the
    symbol are in SQL, so the partial index ix_orders_pending_hold is the one plan: with the status filter
    too, PostgreSQL without fresh statistics chose (symbol, status, seq) and read every final order of the
    symbol, every few seconds, in the matcher's loop (docs/backbone.md)."""
    stmt = select(
        Order.id,
        Order.account_id,
        Order.symbol,
        Order.side,
        Order.pending_hold,
        Order.status,
        Order.updated_at,
    ).where(Order.pending_hold > 0)
    if symbols is not None:
        stmt = stmt.where(Order.symbol.in_(list(symbols)))
    return stmt


def release_stranded_holds(
    session_factory: sessionmaker[Session],
    *,
    symbols: Sequence[str] | None = None,
    age_s: float = DEFAULT_AGE_S,
    now: datetime | None = None,
) -> int:
    """Give back pending replace holds of orders that ended more than `age_s` ago (their Replace was lost,
    or is still to be rejected: whichever comes first releases, the other finds nothing). Returns how many."""
    now = now or datetime.now(UTC)
    ended_before = to_epoch_ms(now - timedelta(seconds=age_s))
    with session_factory() as session:
        rows = [
            r
            for r in session.execute(pending_holds_query(symbols)).all()
            if r.status in FINAL_STATUSES and to_epoch_ms(r.updated_at) < ended_before
        ]
        session.rollback()
    done = 0
    for r in rows:
        with session_factory() as session:
            hit = session.execute(
                update(Order)
                .where(Order.id == r.id, Order.pending_hold == r.pending_hold)
                .values(pending_hold=0)
            )
            if hit.rowcount != 1:
                session.rollback()
                continue
            if r.side == Side.BUY.value:
                balances.release_cash(session, r.account_id, r.pending_hold, now, r.id)
            else:
                balances.release_shares(session, r.account_id, r.symbol, r.pending_hold, now, r.id)
            session.commit()
            done += 1
    if done:
        log.warning("reconciler released %d stranded replace holds", done)
    return done
