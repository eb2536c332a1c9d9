"""A seeded random order flow through the intake helper, recording exactly what reached the streams."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import redis
from backbone_market import Market

from engine.commands import Command
from engine.events import Trade
from engine.exchange import Exchange
from schema.orderbook_load import instrument_spec, load_book_state, load_instruments


@dataclass
class Flow:
    market: Market
    symbols: list[str]
    accounts: list[int]
    seed: int = 1
    published: dict[str, list[Command]] = field(default_factory=dict)
    last_ids: dict[str, str] = field(default_factory=dict)
    entry_ids: dict[str, list[str]] = field(default_factory=dict)
    lost: list[Command] = field(default_factory=list)
    placed: list[tuple[int, int, str]] = field(default_factory=list)  # (order id, account, symbol)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.published = {s: [] for s in self.symbols}
        self.entry_ids = {s: [] for s in self.symbols}
        self._bus_publish = self.market.bus.publish
        self.market.bus = self  # type: ignore[assignment]  # record every publish, then forward it

    # the intake helper publishes through here
    def publish(self, symbol: str, command: Command) -> str:
        try:
            entry_id = self._bus_publish(symbol, command)
        except redis.ConnectionError:  # like an API crash between commit and XADD: the reconciler's job
            self.lost.append(command)
            return "0-0"
        self.published[symbol].append(command)
        self.last_ids[symbol] = entry_id
        self.entry_ids[symbol].append(entry_id)
        return entry_id

    def step(self) -> None:
        rng, m = self.rng, self.market
        symbol = rng.choice(self.symbols)
        account = rng.choice(self.accounts)
        side = rng.choice(("buy", "sell"))
        ref = 100_00
        roll = rng.random()
        if roll < 0.15 and self.placed:
            oid, owner, sym = rng.choice(self.placed[-200:])
            m.cancel(owner, oid, sym)
        elif roll < 0.22 and self.placed:
            oid, owner, _ = rng.choice(self.placed[-200:])
            o = m.order(oid)
            if o.status in ("new", "partially_filled") and o.limit_price is not None:
                if rng.random() < 0.5:
                    m.replace(owner, oid, qty=max(o.filled_qty + 1, o.qty - rng.randint(1, 5)))
                else:
                    m.replace(owner, oid, price=ref + rng.randint(-150, 150))
        else:
            qty = rng.randint(1, 40)
            if roll < 0.30:
                c = m.place(account, symbol, side, qty, type="market", tif="ioc")
            elif roll < 0.34:
                stop = ref + (rng.randint(20, 120) if side == "buy" else -rng.randint(20, 120))
                limit = stop + (5 if side == "buy" else -5)
                c = m.place(account, symbol, side, qty, limit, type="stop_limit", stop=stop)
            elif roll < 0.36:
                c = m.place(account, symbol, side, qty, ref + rng.randint(-100, 100), tif="fok")
            else:
                spread = rng.randint(0, 150)
                price = (
                    ref - spread + rng.randint(-20, 40)
                    if side == "buy"
                    else ref + spread - rng.randint(-20, 40)
                )
                c = m.place(account, symbol, side, qty, price, stp=rng.choice(("cancel_resting", "none")))
            if c is not None:
                self.placed.append((c.order_id, account, symbol))


def uninterrupted(market: Market, flow: Flow) -> dict[str, tuple[str, list[tuple]]]:
    """Replay the recorded commands through one fresh in-process engine: (state hash, trades) per symbol."""
    with market.sessions() as s:
        specs = [instrument_spec(i) for i in load_instruments(s, flow.symbols)]
    ex = Exchange(specs)
    trades: dict[str, list[tuple]] = {sym: [] for sym in flow.symbols}
    for sym in flow.symbols:
        for command in flow.published[sym]:
            for ev in ex.apply(command):
                if isinstance(ev, Trade):
                    trades[sym].append((ev.seq, ev.price, ev.qty, ev.buy_order_id, ev.sell_order_id))
    return {sym: (ex.book(sym).state_hash(), trades[sym]) for sym in flow.symbols}


def sql_state(market: Market, symbols: list[str]) -> dict[str, tuple[str, list[tuple]]]:
    """The book a matcher would rebuild from SQL, and SQL's trades: (state hash, trades) per symbol."""
    out = {}
    with market.sessions() as s:
        specs = {i.symbol: instrument_spec(i) for i in load_instruments(s, symbols)}
        for sym in symbols:
            state = load_book_state(s, sym)
            ex = Exchange([specs[sym]])
            ex.book(sym).load_resting(state.orders, seq=state.seq, last_price=state.last_price)
            out[sym] = (ex.book(sym).state_hash(), [])
    for sym in symbols:
        out[sym][1].extend(
            (t.seq, t.price, t.qty, t.buy_order_id, t.sell_order_id) for t in market.trades(sym)
        )
    return out
