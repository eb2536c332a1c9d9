"""Order state inside the engine, and its plain-data twin `RestingOrder`.

A live order is a plain list indexed by the constants below, not an object: building a 9-item list
costs ~50 ns where a slotted object with as many fields costs ~250 ns, and each new order builds one.
Item access (`o[LEAVES]`) is as fast as slot access. Only OrderBook and the match loop touch these
lists; everything outside the engine sees `RestingOrder` copies. The two rarely set attributes, stop
price and expire_at, live in side tables of the book (8 bytes saved per order for each).

While an order is open, filled = qty - leaves (a reduce lowers both), so neither `filled` nor the
status is stored. A list whose LEAVES is 0 is dead (canceled, replaced, filled): levels delete lazily.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import OrderStatus, OrderType, Side, StpMode, TimeInForce

Order = list  # [OID, ACCT, SIDE, PRICE, QTY, LEAVES, HOLD, SEQ, TERMS]

OID = 0  # order_id
ACCT = 1  # account
SIDE = 2  # Side
PRICE = 3  # limit price in ticks; None for market / stop (market on trigger)
QTY = 4  # total qty, filled included
LEAVES = 5  # open qty; 0 = dead entry
HOLD = 6  # cash (buy) or shares (sell) still reserved, None when not tracked
SEQ = 7  # time priority: seq of the event that (re)placed it
TERMS = 8  # shared Terms: type, tif, stp, post_only
FIELDS = 9


@dataclass(frozen=True, slots=True)
class Terms:
    """The rarely varying attributes of an order, interned: one shared object per combination."""

    type: OrderType
    tif: TimeInForce
    stp: StpMode
    post_only: bool


_TERMS: dict[tuple, Terms] = {}


def terms(type: OrderType, tif: TimeInForce, stp: StpMode, post_only: bool) -> Terms:
    key = (type, tif, stp, post_only)
    t = _TERMS.get(key)
    if t is None:
        t = _TERMS[key] = Terms(type, tif, stp, bool(post_only))
    return t


def status_of(o: Order) -> OrderStatus:
    """Status of an open order."""
    return OrderStatus.NEW if o[LEAVES] == o[QTY] else OrderStatus.PARTIALLY_FILLED


@dataclass(frozen=True, slots=True)
class RestingOrder:
    """What settlement stores about an open order and what a rebuild loads back, field for field.

    `triggered` is True for a stop / stop-limit order that has fired and now rests on the book as a limit.
    """

    order_id: int
    account: int
    side: Side
    type: OrderType
    tif: TimeInForce
    qty: int
    filled: int
    leaves: int
    price: int | None
    stop_price: int | None
    seq: int
    hold_remaining: int | None = None
    expire_at: int | None = None
    stp: StpMode = StpMode.CANCEL_RESTING
    post_only: bool = False
    status: OrderStatus = OrderStatus.NEW
    triggered: bool = False

    @classmethod
    def of(cls, o: Order, stop_price: int | None, expire_at: int | None, triggered: bool) -> RestingOrder:
        t: Terms = o[TERMS]
        return cls(
            order_id=o[OID],
            account=o[ACCT],
            side=o[SIDE],
            type=t.type,
            tif=t.tif,
            qty=o[QTY],
            filled=o[QTY] - o[LEAVES],
            leaves=o[LEAVES],
            price=o[PRICE],
            stop_price=stop_price,
            seq=o[SEQ],
            hold_remaining=o[HOLD],
            expire_at=expire_at,
            stp=t.stp,
            post_only=t.post_only,
            status=status_of(o),
            triggered=triggered,
        )

    def to_order(self) -> Order:
        if self.filled != self.qty - self.leaves:
            raise ValueError(f"order {self.order_id}: filled must equal qty - leaves for an open order")
        return [
            self.order_id,
            self.account,
            self.side,
            self.price,
            self.qty,
            self.leaves,
            self.hold_remaining,
            self.seq,
            terms(self.type, self.tif, self.stp, self.post_only),
        ]


def describe(o: Order, stop_price: int | None, expire_at: int | None) -> str:
    t: Terms = o[TERMS]
    return (
        f"{o[OID]} {o[ACCT]} {o[SIDE]} {t.type} {t.tif} {o[PRICE]} {stop_price} {o[QTY]} {o[LEAVES]} "
        f"{o[HOLD]} {o[SEQ]} {expire_at} {t.stp} {int(t.post_only)}"
    )
