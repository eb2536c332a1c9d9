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


def random_commands(n: int, seed: int, symbol: str = SYM) -> list:
    """A seeded mix of every command kind (limits, markets, stops, holds, DAY/GTD, cancels, replaces,
    expiries) around price 1000, for determinism and state tests."""
    import random

    from engine.commands import Expire, MassCancel

    rng = random.Random(seed)
    out: list = []
    live: list[tuple[int, int]] = []
    next_id = 1
    for step in range(n):
        u = rng.random()
        acct = rng.randint(1, 6)
        if u < 0.25 and live:
            oid, a = live.pop(rng.randrange(len(live)))
            out.append(Cancel(oid, a, symbol, ts=step))
            continue
        if u < 0.33 and live:
            oid, a = live[rng.randrange(len(live))]
            qty = rng.choice([None, rng.randint(1, 60)])
            price = rng.choice([None, rng.randint(990, 1010)])
            extra = rng.choice([0, 5000])
            out.append(Replace(oid, a, symbol, qty=qty, price=price, extra_hold=extra, ts=step))
            continue
        if u < 0.335:
            out.append(Expire(symbol, now=step))
            continue
        if u < 0.34:
            out.append(MassCancel(acct, symbol, ts=step))
            continue
        side = BUY if rng.random() < 0.5 else SELL
        qty = rng.randint(1, 50)
        kind = rng.random()
        tif = rng.choice([TimeInForce.GTC] * 5 + [TimeInForce.DAY, TimeInForce.GTD, TimeInForce.IOC])
        kw: dict = {"tif": tif, "ts": step, "stp": rng.choice(list(StpMode))}
        if tif is TimeInForce.GTD:
            kw["expire_at"] = step + rng.randint(1, 200)
        price = rng.randint(990, 1010)
        if kind < 0.1:
            kw.update(type=OrderType.MARKET, tif=TimeInForce.IOC)
            price = None
        elif kind < 0.15:
            kw.update(type=OrderType.STOP, stop_price=rng.randint(990, 1010))
            kw["tif"] = TimeInForce.GTC
            price = None
        elif kind < 0.2:
            kw.update(type=OrderType.STOP_LIMIT, stop_price=rng.randint(990, 1010), tif=TimeInForce.GTC)
        if rng.random() < 0.5:
            kw["hold"] = qty if side is SELL else (price or 1000) * qty + rng.choice([0, 0, 100])
        out.append(order(next_id, side, qty, price, acct, symbol=symbol, **kw))
        live.append((next_id, acct))
        next_id += 1
    return out
