"""What a matcher rebuilds a book from: instrument specs and the open orders SQL holds, in engine-seq order.

Settlement stores every field the engine keeps per open order (filled, leaves, hold, seq, status,
triggered), so `OrderBook.load_resting(load_book_state(...).orders, seq=..., last_price=...)` gives a
book whose state hash equals the live book's at the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from engine.order import RestingOrder
from engine.symbols import Instrument as InstrumentSpec
from engine.types import OrderStatus, OrderType, Side, StpMode, TimeInForce
from schema.models import Checkpoint, Instrument, Order, Trade

OPEN_STATUSES = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_epoch_ms(ts: datetime) -> int:
    """Exact integer milliseconds (no float): SQLite hands back naive datetimes, which are UTC."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // _MS


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def instrument_spec(row: Instrument) -> InstrumentSpec:
    return InstrumentSpec(
        symbol=row.symbol,
        tick=row.tick,
        lot=row.lot,
        min_qty=row.min_qty,
        max_qty=row.max_qty,
        max_notional=row.max_notional,
        reference_price=row.reference_price,
        band_bps=row.band_bps,
    )


def load_instruments(session: Session, symbols: list[str] | None = None) -> list[Instrument]:
    stmt = select(Instrument).order_by(Instrument.symbol)
    if symbols is not None:
        stmt = stmt.where(Instrument.symbol.in_(symbols))
    return list(session.scalars(stmt))


def all_symbols(session: Session) -> list[str]:
    return list(session.scalars(select(Instrument.symbol).order_by(Instrument.symbol)))


_ORDER_COLUMNS = (
    Order.id,
    Order.account_id,
    Order.side,
    Order.type,
    Order.time_in_force,
    Order.qty,
    Order.filled_qty,
    Order.canceled_qty,
    Order.limit_price,
    Order.stop_price,
    Order.seq,
    Order.hold_cash,
    Order.hold_qty,
    Order.expire_at,
    Order.stp,
    Order.post_only,
    Order.status,
    Order.triggered,
)


def resting_order(row: Row) -> RestingOrder:  # type: ignore[type-arg]
    side = Side(row.side)
    return RestingOrder(
        order_id=row.id,
        account=row.account_id,
        side=side,
        type=OrderType(row.type),
        tif=TimeInForce(row.time_in_force),
        qty=row.qty,
        filled=row.filled_qty,
        leaves=row.qty - row.filled_qty - row.canceled_qty,
        price=row.limit_price,
        stop_price=row.stop_price,
        seq=row.seq,
        hold_remaining=row.hold_cash if side is Side.BUY else row.hold_qty,
        expire_at=None if row.expire_at is None else to_epoch_ms(row.expire_at),
        stp=StpMode(row.stp),
        post_only=bool(row.post_only),
        status=OrderStatus(row.status),
        triggered=bool(row.triggered),
    )


@dataclass(frozen=True, slots=True)
class BookState:
    """Everything a rebuild needs for one symbol, read in one transaction."""

    symbol: str
    orders: list[RestingOrder]  # engine-seq order
    seq: int  # the checkpoint's book seq
    stream_id: str  # the last stream entry the checkpoint covers
    fencing_token: int
    last_price: int | None  # last trade price: stops trigger on it
    reference_price: int


def load_book_state(session: Session, symbol: str) -> BookState:
    """Open orders (new/partially_filled with a seq: resting limits and waiting or fired stops) in seq
    order, plus the checkpoint, the last trade price and the reference price."""
    rows = session.execute(
        select(*_ORDER_COLUMNS)
        .where(Order.symbol == symbol, Order.status.in_(OPEN_STATUSES), Order.seq.is_not(None))
        .order_by(Order.seq)
    ).all()
    cp = session.get(Checkpoint, symbol)
    last_price = session.scalar(
        select(Trade.price).where(Trade.symbol == symbol).order_by(Trade.seq.desc()).limit(1)
    )
    ref = session.scalar(select(Instrument.reference_price).where(Instrument.symbol == symbol))
    if ref is None:
        raise LookupError(f"unknown instrument {symbol}")
    return BookState(
        symbol=symbol,
        orders=[resting_order(r) for r in rows],
        seq=cp.seq if cp else 0,
        stream_id=cp.stream_id if cp else "0-0",
        fencing_token=cp.fencing_token if cp else 0,
        last_price=last_price,
        reference_price=ref,
    )
