"""Events out of the engine: frozen, past tense, one list per command.

`seq` is the book's sequence number, one per event, strictly increasing per symbol; an order's queue
priority is the seq of the event that (re)placed it on the book. Cash amounts are price*qty in price
units; `released_*` fields say exactly what settlement must return to the owner's available balance.

Events are slotted dataclasses with value equality and a field hash, built with plain positional
construction. They are not `frozen=True`: a frozen dataclass sets each field through
object.__setattr__ (~100 ns a field, 1.5 us for a Trade), which alone cost the engine >10% of its
throughput. Treat them as immutable; nothing in the engine mutates an event after returning it.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import CancelReason, OrderStatus, OrderType, RejectReason, Side, TimeInForce


@dataclass(slots=True, unsafe_hash=True)
class Accepted:
    seq: int
    symbol: str
    order_id: int
    account: int
    side: Side
    type: OrderType
    tif: TimeInForce
    qty: int
    price: int | None
    stop_price: int | None
    resting: bool  # True when (the rest of) the order went on the book or into the stop list
    ts: int


@dataclass(slots=True, unsafe_hash=True)
class Rejected:
    seq: int
    symbol: str
    order_id: int | None  # None for a mass cancel with nothing to do
    account: int
    reason: RejectReason
    released_cash: int  # a rejected new buy returns its whole hold; a rejected replace its extra_hold
    released_qty: int
    ts: int


@dataclass(slots=True, unsafe_hash=True)
class Trade:
    seq: int
    symbol: str
    price: int  # always the maker's price
    qty: int
    aggressor: Side  # the taker's side
    maker_order_id: int
    taker_order_id: int
    maker_account: int
    taker_account: int
    buyer_released: int  # cash the buy order no longer needs after this fill (better price, or done)
    maker_status: OrderStatus
    taker_status: OrderStatus
    maker_leaves: int
    taker_leaves: int
    ts: int
    # added: shares the sell order no longer needs after this fill (only when it completes with a share
    # hold larger than its qty); mirrors buyer_released so every hold is released exactly once
    seller_released: int = 0

    @property
    def notional(self) -> int:
        return self.price * self.qty

    @property
    def buy_order_id(self) -> int:
        return self.taker_order_id if self.aggressor == Side.BUY else self.maker_order_id

    @property
    def sell_order_id(self) -> int:
        return self.maker_order_id if self.aggressor == Side.BUY else self.taker_order_id


@dataclass(slots=True, unsafe_hash=True)
class Canceled:
    seq: int
    symbol: str
    order_id: int
    account: int
    side: Side
    reason: CancelReason
    canceled_qty: int  # leaves at the moment of the cancel
    filled_qty: int
    released_cash: int  # buy: the rest of the cash hold
    released_qty: int  # sell: the rest of the share hold
    ts: int

    @property
    def status(self) -> OrderStatus:
        return OrderStatus.EXPIRED if self.reason == CancelReason.EXPIRED else OrderStatus.CANCELED


@dataclass(slots=True, unsafe_hash=True)
class Reduced:
    seq: int
    symbol: str
    order_id: int
    account: int
    qty: int  # new total qty
    leaves: int
    released_cash: int
    released_qty: int
    ts: int


@dataclass(slots=True, unsafe_hash=True)
class Replaced:
    seq: int  # the order's new queue priority
    symbol: str
    order_id: int
    account: int
    qty: int  # new total qty
    price: int | None
    stop_price: int | None
    leaves: int
    released_cash: int  # hold no longer needed at the new terms
    released_qty: int
    ts: int


@dataclass(slots=True, unsafe_hash=True)
class Triggered:
    """A stop (or stop-limit) order's trigger was reached; it now acts as a market (or limit) order."""

    seq: int
    symbol: str
    order_id: int
    account: int
    trigger_price: int  # the last trade price that triggered it
    ts: int


Event = Accepted | Rejected | Trade | Canceled | Reduced | Replaced | Triggered
