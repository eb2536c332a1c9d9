"""Order state inside the engine (`Order`, mutable, slotted) and its plain-data twin (`RestingOrder`)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import OrderStatus, OrderType, Side, StpMode, TimeInForce


class Order:
    """A live order: resting on the book, or waiting as a stop. Owned and mutated by its OrderBook only.

    `hold` is the cash (buy) or shares (sell) still reserved for it, None when holds are not tracked.
    `seq` is its time priority: the seq of the event that (re)placed it. An entry whose leaves is 0 is
    dead: levels delete lazily, so a dead Order may linger in a level's queue until it reaches the head.
    """

    __slots__ = (
        "order_id",
        "account",
        "side",
        "type",
        "tif",
        "price",
        "stop_price",
        "qty",
        "filled",
        "leaves",
        "hold",
        "seq",
        "expire_at",
        "stp",
        "post_only",
        "status",
    )

    def __init__(
        self,
        order_id: int,
        account: int,
        side: Side,
        type: OrderType,
        tif: TimeInForce,
        price: int | None,
        stop_price: int | None,
        qty: int,
        filled: int,
        leaves: int,
        hold: int | None,
        seq: int,
        expire_at: int | None,
        stp: StpMode,
        post_only: bool,
        status: OrderStatus,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.side = side
        self.type = type
        self.tif = tif
        self.price = price
        self.stop_price = stop_price
        self.qty = qty
        self.filled = filled
        self.leaves = leaves
        self.hold = hold
        self.seq = seq
        self.expire_at = expire_at
        self.stp = stp
        self.post_only = post_only
        self.status = status

    def copy(self) -> Order:
        return Order(
            self.order_id,
            self.account,
            self.side,
            self.type,
            self.tif,
            self.price,
            self.stop_price,
            self.qty,
            self.filled,
            self.leaves,
            self.hold,
            self.seq,
            self.expire_at,
            self.stp,
            self.post_only,
            self.status,
        )

    def __repr__(self) -> str:
        return (
            f"Order(id={self.order_id}, acct={self.account}, {self.side} {self.type} {self.tif} "
            f"{self.leaves}/{self.qty}@{self.price} stop={self.stop_price} hold={self.hold} seq={self.seq})"
        )


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
    def of(cls, o: Order, triggered: bool) -> RestingOrder:
        return cls(
            order_id=o.order_id,
            account=o.account,
            side=o.side,
            type=o.type,
            tif=o.tif,
            qty=o.qty,
            filled=o.filled,
            leaves=o.leaves,
            price=o.price,
            stop_price=o.stop_price,
            seq=o.seq,
            hold_remaining=o.hold,
            expire_at=o.expire_at,
            stp=o.stp,
            post_only=o.post_only,
            status=o.status,
            triggered=triggered,
        )

    def to_order(self) -> Order:
        return Order(
            self.order_id,
            self.account,
            self.side,
            self.type,
            self.tif,
            self.price,
            self.stop_price,
            self.qty,
            self.filled,
            self.leaves,
            self.hold_remaining,
            self.seq,
            self.expire_at,
            self.stp,
            self.post_only,
            self.status,
        )
