"""Dict serializers in the exact shapes of docs/api.md, shared by the REST API and the publisher.

They take ORM rows (or anything with the same attributes) and return plain JSON-ready dicts: money and
quantities as decimal strings, times as ISO-8601 UTC strings. No I/O and no session here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from schema.money import CENTS, avg_price_str, cents_str, cents_str_or_none

View = dict[str, Any]


# iso() of recent datetimes: a batch's pushes repeat a few instants many times (every order it updated
# carries the same updated_at, an order's created_at comes back with each of its events), and a dict hit is
# several times cheaper than formatting. Equal datetimes are the same instant, so share one string.
_ISO_CACHE: dict[datetime, str] = {}
_ISO_CACHE_MAX = 4096


def iso(ts: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and a Z. SQLite hands back naive datetimes: they are UTC."""
    if ts is None:
        return None
    text = _ISO_CACHE.get(ts)
    if text is None:
        if len(_ISO_CACHE) >= _ISO_CACHE_MAX:
            _ISO_CACHE.clear()
        utc = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
        text = _ISO_CACHE[ts] = utc.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return text


def shares_str(qty: int) -> str:
    return str(qty)


class _OrderLike(Protocol):
    id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: int
    filled_qty: int
    canceled_qty: int
    filled_notional: int
    limit_price: int | None
    stop_price: int | None
    expire_at: datetime | None
    post_only: bool
    stp: str
    status: str
    reason: str | None
    hold_cash: int
    hold_qty: int
    pending_hold: int
    created_at: datetime
    updated_at: datetime


def order_hold_str(order: _OrderLike) -> str:
    """What the order still reserves, including a replace the matcher has not applied yet."""
    if order.side == "buy":
        return cents_str(order.hold_cash + order.pending_hold)
    return shares_str(order.hold_qty + order.pending_hold)


def order_view(order: _OrderLike) -> View:
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": str(order.side),
        "type": str(order.type),
        "time_in_force": str(order.time_in_force),
        "qty": shares_str(order.qty),
        "filled_qty": shares_str(order.filled_qty),
        "leaves_qty": shares_str(order.qty - order.filled_qty - order.canceled_qty),
        "canceled_qty": shares_str(order.canceled_qty),
        "filled_avg_price": avg_price_str(order.filled_notional, order.filled_qty),
        "limit_price": cents_str_or_none(order.limit_price),
        "stop_price": cents_str_or_none(order.stop_price),
        "expire_at": iso(order.expire_at),
        "post_only": bool(order.post_only),
        "stp": str(order.stp),
        "status": str(order.status),
        "reason": order.reason,
        "hold": order_hold_str(order),
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
    }


def _ratio_str(numerator: int, denominator: int) -> str | None:
    if denominator == 0:
        return None
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001")))


def position_view(position: Any, current_price: int | None) -> View:
    """One /positions item. `current_price` in cents (last trade, else reference); None if unknown."""
    qty, cost = position.qty, position.cost_basis
    market_value = None if current_price is None else current_price * qty
    unrealized = None if market_value is None else market_value - cost
    return {
        "symbol": position.symbol,
        "qty": shares_str(qty),
        "qty_available": shares_str(qty - position.held_qty),
        "held_qty": shares_str(position.held_qty),
        "avg_entry_price": avg_price_str(cost, qty),
        "cost_basis": cents_str(cost),
        "current_price": cents_str_or_none(current_price),
        "market_value": cents_str_or_none(market_value),
        "unrealized_pl": cents_str_or_none(unrealized),
        "unrealized_plpc": None if unrealized is None else _ratio_str(unrealized, cost),
        "realized_pl": cents_str(position.realized_pnl),
    }


def account_view(
    account: Any,
    user: Any,
    *,
    positions_value: int,
    realized_pl: int,
    unrealized_pl: int,
) -> View:
    """GET /account. Amounts in cents; positions_value/unrealized_pl at current prices."""
    cash = account.cash_available + account.cash_held
    return {
        "account_id": account.id,
        "email": user.email,
        "display_name": user.display_name,
        "leaderboard_opt_in": bool(user.leaderboard_opt_in),
        "cash": cents_str(cash),
        "cash_available": cents_str(account.cash_available),
        "cash_held": cents_str(account.cash_held),
        "positions_value": cents_str(positions_value),
        "equity": cents_str(cash + positions_value),
        "starting_cash": cents_str(account.starting_cash),
        # No margin: what a new buy can hold is the available cash.
        "buying_power": cents_str(account.cash_available),
        "realized_pl": cents_str(realized_pl),
        "unrealized_pl": cents_str(unrealized_pl),
    }


def account_cash_view(account: Any) -> View:
    """The `account` push event."""
    return {
        "cash_available": cents_str(account.cash_available),
        "cash_held": cents_str(account.cash_held),
    }


def fill_view(trade: Any, side: str) -> View:
    """One fill of `trade` seen from its `side` ("buy" or "sell")."""
    buy = side == "buy"
    return {
        "trade_id": trade.id,
        "order_id": trade.buy_order_id if buy else trade.sell_order_id,
        "symbol": trade.symbol,
        "side": side,
        "price": cents_str(trade.price),
        "qty": shares_str(trade.qty),
        "liquidity": "taker" if str(trade.aggressor) == side else "maker",
        "executed_at": iso(trade.executed_at),
    }


def fills_for_account(trade: Any, account_id: int) -> list[View]:
    """The fills `account_id` got from `trade` (two when the account traded with itself)."""
    out = []
    if trade.buyer_account_id == account_id:
        out.append(fill_view(trade, "buy"))
    if trade.seller_account_id == account_id:
        out.append(fill_view(trade, "sell"))
    return out


def trade_view(trade: Any) -> View:
    """A tape entry: GET /markets/{symbol}/trades items and the `trade` push event."""
    return {
        "symbol": trade.symbol,
        "id": trade.id,
        "seq": trade.seq,
        "price": cents_str(trade.price),
        "qty": shares_str(trade.qty),
        "aggressor": str(trade.aggressor),
        "executed_at": iso(trade.executed_at),
    }


def activity_view(entry: Any) -> View:
    """One ledger entry for GET /activities. Cash deltas in dollars, share deltas in shares."""
    return {
        "id": entry.id,
        "kind": entry.kind,
        "symbol": entry.symbol,
        "cash_available_delta": cents_str(entry.cash_available_delta),
        "cash_held_delta": cents_str(entry.cash_held_delta),
        "qty_delta": shares_str(entry.qty_delta),
        "held_qty_delta": shares_str(entry.held_qty_delta),
        "order_id": entry.order_id,
        "trade_id": entry.trade_id,
        "created_at": iso(entry.created_at),
    }


def band_prices(instrument: Any) -> tuple[int, int]:
    """(band_low, band_high) in cents, both inclusive; the same integer math as engine.symbols.price_band:
    low rounds up and high rounds down to the tick, so the band never admits a price outside it."""
    ref, tick, bps = instrument.reference_price, instrument.tick, instrument.band_bps
    if not bps:
        return tick, instrument.max_notional
    unit = 10_000 * tick
    low = -(-(ref * (10_000 - bps)) // unit) * tick
    high = (ref * (10_000 + bps)) // unit * tick
    return max(low, tick), high


def market_view(instrument: Any, ticker: View | None) -> View:
    """One GET /markets item: the instrument's static fields overlaid with the live ticker doc."""
    low, high = band_prices(instrument)
    view: View = {
        "symbol": instrument.symbol,
        "name": instrument.name,
        "tick": cents_str(instrument.tick),
        "lot": shares_str(instrument.lot),
        "min_qty": shares_str(instrument.min_qty),
        "status": instrument.status,
        "last": None,
        "bid": None,
        "ask": None,
        "prev_close": cents_str(instrument.reference_price),
        "change": None,
        "change_pct": None,
        "volume": "0",
        "high": None,
        "low": None,
        "band_low": cents_str(low),
        "band_high": cents_str(high),
    }
    if ticker:
        for key in ("last", "bid", "ask", "change", "change_pct", "volume", "high", "low"):
            if key in ticker:
                view[key] = ticker[key]
    return view


__all__ = [
    "CENTS",
    "account_cash_view",
    "account_view",
    "activity_view",
    "band_prices",
    "fill_view",
    "fills_for_account",
    "iso",
    "market_view",
    "order_view",
    "position_view",
    "trade_view",
]
