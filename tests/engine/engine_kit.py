"""Small builders for the engine tests (no services needed)."""

from __future__ import annotations

from engine.book import OrderBook
from engine.commands import Cancel, NewOrder, Replace
from engine.exchange import Exchange
from engine.symbols import Instrument
from engine.types import OrderType, Side, StpMode, TimeInForce

SYM = "ACME"
BUY, SELL = Side.BUY, Side.SELL


def buy(oid: int, qty: int, price: int | None = None, acct: int = 1, **kw) -> NewOrder:
    return order(oid, BUY, qty, price, acct, **kw)


def sell(oid: int, qty: int, price: int | None = None, acct: int = 2, **kw) -> NewOrder:
    return order(oid, SELL, qty, price, acct, **kw)


def order(oid: int, side: Side, qty: int, price: int | None, acct: int, **kw) -> NewOrder:
    if "type" not in kw:
        kw["type"] = OrderType.LIMIT if price is not None else OrderType.MARKET
    if kw["type"] is OrderType.MARKET:
        kw.setdefault("tif", TimeInForce.IOC)
    return NewOrder(
        order_id=oid, account=acct, symbol=kw.pop("symbol", SYM), side=side, qty=qty, price=price, **kw
    )


def cancel(oid: int, acct: int) -> Cancel:
    return Cancel(order_id=oid, account=acct, symbol=SYM)


def replace(oid: int, acct: int, **kw) -> Replace:
    return Replace(order_id=oid, account=acct, symbol=SYM, **kw)


def plain() -> Instrument:
    return Instrument(SYM)


def banded() -> Instrument:
    # reference 10000, +-10% -> band [9000, 11000]; tick 5, lot 10
    return Instrument(SYM, tick=5, lot=10, min_qty=10, max_qty=10_000, max_notional=50_000_000,
                      reference_price=10_000, band_bps=1000)  # fmt: skip


__all__ = ["BUY", "SELL", "SYM", "OrderBook", "Exchange", "StpMode", "TimeInForce", "OrderType"]
