"""Commands into the engine: frozen, imperative, and carrying the time (`ts`, epoch ms) they apply at.

Holds: the service reserves cash (buys) or shares (sells) before it sends a command. `hold` tells the
engine how much was reserved, so it can refuse to spend more and report, on every event, exactly what
settlement must release. `hold=None` means "not tracked" (benchmarks, LOBSTER replay).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import OrderType, Side, StpMode, TimeInForce


@dataclass(frozen=True, slots=True)
class NewOrder:
    order_id: int
    account: int
    symbol: str
    side: Side
    type: OrderType
    qty: int
    price: int | None = None  # limit price in ticks (limit, stop_limit)
    stop_price: int | None = None  # trigger on the last trade price (stop, stop_limit)
    tif: TimeInForce = TimeInForce.GTC
    expire_at: int | None = None  # epoch ms; GTD, and DAY orders carry the session close
    post_only: bool = False
    stp: StpMode = StpMode.CANCEL_RESTING
    hold: int | None = None  # buy: cash reserved (price units); sell: shares reserved
    ts: int = 0


@dataclass(frozen=True, slots=True)
class Cancel:
    order_id: int
    account: int
    symbol: str
    ts: int = 0


@dataclass(frozen=True, slots=True)
class MassCancel:
    account: int
    symbol: str | None = None  # None: every symbol of the exchange
    ts: int = 0


@dataclass(frozen=True, slots=True)
class Replace:
    """Change price and/or total qty. A lower qty at the same price is a reduce and keeps queue position;
    a price change or a qty increase loses it and may trade at once.

    `extra_hold` is what the service reserved on top of the order's current hold (cash for a buy, shares
    for a sell) so the new terms are covered; the engine releases whatever it does not need.
    """

    order_id: int
    account: int
    symbol: str
    qty: int | None = None  # new total qty (filled included); None keeps it
    price: int | None = None  # new limit price; None keeps it
    stop_price: int | None = None  # new stop price for untriggered stops; None keeps it
    extra_hold: int = 0
    ts: int = 0


@dataclass(frozen=True, slots=True)
class Expire:
    """Expire every order of `symbol` whose expire_at <= now (GTD at its time, DAY at the close)."""

    symbol: str
    now: int


@dataclass(frozen=True, slots=True)
class SetReference:
    """Set a symbol's reference price (e.g. the previous close, sent by the end-of-day job); the price band
    is recomputed from it. Resting orders are kept even if now outside the band. Emits no event."""

    symbol: str
    price: int
    ts: int = 0


@dataclass(frozen=True, slots=True)
class Withdraw:
    """A NewOrder its owner canceled before any book saw it (queued for the open, or re-sent after a lost
    publish): it is canceled without resting or matching, and its whole hold goes back. The reconciler
    sends it in place of the NewOrder (schema.wire carries it as the NewOrder's fields)."""

    order: NewOrder

    @property
    def symbol(self) -> str:
        return self.order.symbol


Command = NewOrder | Cancel | MassCancel | Replace | Expire | SetReference | Withdraw
