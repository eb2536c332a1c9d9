"""Bourse's own seeded order-flow generator: the workload every service benchmark replays.

It is the user-facing counterpart of `../shared/flow/flow.py` (the measuring stick the engine figures are
quoted on): the same message shape and, by default, the same mix (~55% limits, ~35% cancels, ~10% market
orders), but every knob is a parameter, several symbols can be interleaved, and each message carries the
time (seconds from the start) at which an open-loop load generator should send it.

A message is `Message(t, kind, order_id, side, price, qty, symbol)`:
- `kind`: "L" new limit (GTC), "C" cancel, "M" market (IOC: the rest is dropped);
- `order_id`: new orders are numbered 1, 2, 3, ... across all symbols; a cancel carries its target's id;
- `side`: "B" or "S"; `price`: integer ticks (a market order has 0; a cancel carries its target's price);
- `qty`: 1..max_qty shares (a cancel has 0).

Cancels always target an order that is resting at that moment in a small, obviously correct price-time
reference book the generator keeps per symbol (fills at the maker's price, price then time priority), so a
replay never cancels an order that has already traded. Prices sit around a mid that follows the chosen
price process: "walk" (one tick up or down with probability p_mid_step per message, as the shared flow)
or "gbm" (a geometric Brownian motion, sigma per message, rounded to ticks).

The same FlowParams give the same messages on every platform (random.Random is specified to be stable).
Generation happens before any timing starts.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal, NamedTuple

from sortedcontainers import SortedDict

LIMIT, CANCEL, MARKET = "L", "C", "M"
BUY, SELL = "B", "S"


class Message(NamedTuple):
    t: float  # seconds after the start at which an open-loop sender sends it (0.0 when flat out)
    kind: str
    order_id: int
    side: str
    price: int
    qty: int
    symbol: str


@dataclass(frozen=True)
class FlowParams:
    """Every parameter of a generated flow. Defaults reproduce the shared flow's mix and price process."""

    n: int = 10_000
    seed: int = 1
    symbols: tuple[str, ...] = ("AAPL",)
    p_cancel: float = 0.35
    p_market: float = 0.10  # limits are the rest (0.55 by default)
    p_aggressive: float = 0.10  # share of limits priced through the mid
    max_through: int = 3  # an aggressive limit is 0..max_through ticks through the mid
    mean_depth: float = 4.0  # passive limits sit 1 + Exp(mean_depth) ticks from the mid
    max_depth: int = 50
    max_qty: int = 500
    start_mid: int = 100_000  # ticks
    price_process: Literal["walk", "gbm"] = "walk"
    p_mid_step: float = 0.01  # walk: per message, the mid moves one tick with this probability
    sigma: float = 0.0001  # gbm: log-return standard deviation per message
    rate: float | None = None  # offered messages/s (all symbols together); None: flat out (t = 0)
    arrivals: Literal["uniform", "poisson"] = "uniform"

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError("n must be >= 0")
        if not self.symbols:
            raise ValueError("at least one symbol")
        if not (self.p_cancel >= 0 and self.p_market >= 0 and self.p_cancel + self.p_market <= 1):
            raise ValueError("p_cancel and p_market must be probabilities summing to at most 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive (or None for flat out)")
        if self.max_qty < 1 or self.max_depth < 1:
            raise ValueError("max_qty and max_depth must be >= 1")

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["symbols"] = list(self.symbols)
        d["p_limit"] = round(1 - self.p_cancel - self.p_market, 6)
        return d


class ReferenceBook:
    """A naive price-time book (one symbol) used only to keep cancels valid. Fills at the maker's price."""

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()  # price -> deque[[order_id, qty]]
        self.asks: SortedDict = SortedDict()
        self.orders: dict[int, tuple[str, int]] = {}  # resting order id -> (side, price)
        self.fills = 0

    def _match(self, side: str, price: int | None, qty: int) -> tuple[int, list[int]]:
        """Take liquidity; returns (qty left, ids of makers that were filled completely)."""
        opposite = self.asks if side == BUY else self.bids
        done: list[int] = []
        while qty and opposite:
            best = opposite.keys()[0] if side == BUY else opposite.keys()[-1]
            if price is not None and (best > price if side == BUY else best < price):
                break
            queue = opposite[best]
            while qty and queue:
                maker = queue[0]
                take = min(qty, maker[1])
                qty -= take
                maker[1] -= take
                self.fills += 1
                if maker[1] == 0:
                    queue.popleft()
                    del self.orders[maker[0]]
                    done.append(maker[0])
            if not queue:
                del opposite[best]
        return qty, done

    def limit(self, order_id: int, side: str, price: int, qty: int) -> list[int]:
        left, done = self._match(side, price, qty)
        if left:
            book = self.bids if side == BUY else self.asks
            book.setdefault(price, deque()).append([order_id, left])
            self.orders[order_id] = (side, price)
        return done

    def market(self, side: str, qty: int) -> list[int]:
        return self._match(side, None, qty)[1]

    def cancel(self, order_id: int) -> None:
        side, price = self.orders.pop(order_id)
        book = self.bids if side == BUY else self.asks
        queue = book[price]
        for i, entry in enumerate(queue):
            if entry[0] == order_id:
                del queue[i]
                break
        if not queue:
            del book[price]


@dataclass
class _SymbolState:
    symbol: str
    rng: random.Random
    mid: float
    book: ReferenceBook = field(default_factory=ReferenceBook)
    live: list[int] = field(default_factory=list)
    where: dict[int, int] = field(default_factory=dict)

    def add_live(self, oid: int) -> None:
        self.where[oid] = len(self.live)
        self.live.append(oid)

    def drop_live(self, oid: int) -> None:
        i = self.where.pop(oid)
        last = self.live.pop()
        if last != oid:
            self.live[i] = last
            self.where[last] = i


def _step_mid(st: _SymbolState, p: FlowParams) -> int:
    rng = st.rng
    if p.price_process == "walk":
        if rng.random() < p.p_mid_step:
            st.mid += 1 if rng.random() < 0.5 else -1
    else:
        st.mid *= math.exp(rng.gauss(-0.5 * p.sigma * p.sigma, p.sigma))
    return max(1 + p.max_depth, round(st.mid))


def _one(st: _SymbolState, p: FlowParams, next_id: int) -> tuple[tuple[str, int, str, int, int], bool]:
    """The next message of one symbol; returns it and whether it used `next_id`."""
    rng = st.rng
    mid = _step_mid(st, p)
    u = rng.random()
    kind = CANCEL if u < p.p_cancel else MARKET if u < p.p_cancel + p.p_market else LIMIT
    if kind == CANCEL and not st.live:
        kind = LIMIT
    if kind == CANCEL:
        oid = st.live[rng.randrange(len(st.live))]
        side, price = st.book.orders[oid]
        st.book.cancel(oid)
        st.drop_live(oid)
        return (CANCEL, oid, side, price, 0), False
    side = BUY if rng.random() < 0.5 else SELL
    qty = rng.randint(1, p.max_qty)
    if kind == MARKET:
        done = st.book.market(side, qty)
        msg = (MARKET, next_id, side, 0, qty)
    else:
        if rng.random() < p.p_aggressive:
            through = rng.randint(0, p.max_through)
            price = mid + through if side == BUY else mid - through
        else:
            depth = 1 + min(int(rng.expovariate(1.0 / p.mean_depth)), p.max_depth - 1)
            price = mid - depth if side == BUY else mid + depth
        done = st.book.limit(next_id, side, price, qty)
        if next_id in st.book.orders:
            st.add_live(next_id)
        msg = (LIMIT, next_id, side, price, qty)
    for maker in done:
        st.drop_live(maker)
    return msg, True


def send_times(n: int, rate: float | None, arrivals: str, seed: int) -> list[float]:
    """Scheduled send offsets (seconds) for n messages at `rate` messages/s."""
    if rate is None:
        return [0.0] * n
    if arrivals == "uniform":
        return [i / rate for i in range(n)]
    rng = random.Random(seed ^ 0x5EED)
    t, out = 0.0, []
    for _ in range(n):
        out.append(t)
        t += rng.expovariate(rate)
    return out


def generate(params: FlowParams) -> list[Message]:
    """The whole flow, deterministic in params. Symbols are interleaved at random (seeded), each symbol
    with its own rng stream, mid and reference book."""
    states = [
        _SymbolState(sym, random.Random(f"{params.seed}:{i}:{sym}"), float(params.start_mid))
        for i, sym in enumerate(params.symbols)
    ]
    pick = random.Random(f"{params.seed}:pick")
    times = send_times(params.n, params.rate, params.arrivals, params.seed)
    out: list[Message] = []
    next_id = 1
    for i in range(params.n):
        st = states[0] if len(states) == 1 else states[pick.randrange(len(states))]
        (kind, oid, side, price, qty), used = _one(st, params, next_id)
        if used:
            next_id += 1
        out.append(Message(times[i], kind, oid, side, price, qty, st.symbol))
    return out


def load_csv(
    path: str | Path,
    symbol: str = "AAPL",
    *,
    limit: int | None = None,
    rate: float | None = None,
    arrivals: str = "uniform",
    seed: int = 1,
) -> list[Message]:
    """A flow file in the shared format (kind,order_id,side,price_ticks,qty; no header) as Messages."""
    rows: list[tuple[str, int, str, int, int]] = []
    with open(path) as f:
        for line in f:
            if limit is not None and len(rows) >= limit:
                break
            k, oid, side, price, qty = line.strip().split(",")
            rows.append((k, int(oid), side, int(price), int(qty)))
    times = send_times(len(rows), rate, arrivals, seed)
    return [Message(t, *row, symbol) for t, row in zip(times, rows, strict=True)]


def retime(messages: Sequence[Message], rate: float | None, arrivals: str = "uniform", seed: int = 1) -> list:
    """The same messages scheduled at another offered rate."""
    times = send_times(len(messages), rate, arrivals, seed)
    return [m._replace(t=t) for m, t in zip(messages, times, strict=True)]


def stats(messages: Iterable[Message]) -> dict[str, object]:
    """Counts and shares of each kind, and how many new orders the reference book saw trade at once."""
    msgs = list(messages)
    n = len(msgs) or 1
    kinds = {LIMIT: 0, CANCEL: 0, MARKET: 0}
    per_symbol: dict[str, int] = {}
    for m in msgs:
        kinds[m.kind] += 1
        per_symbol[m.symbol] = per_symbol.get(m.symbol, 0) + 1
    return {
        "messages": len(msgs),
        "limit_pct": round(100 * kinds[LIMIT] / n, 2),
        "cancel_pct": round(100 * kinds[CANCEL] / n, 2),
        "market_pct": round(100 * kinds[MARKET] / n, 2),
        "new_orders": kinds[LIMIT] + kinds[MARKET],
        "per_symbol": per_symbol,
        "duration_s": round(msgs[-1].t, 3) if msgs else 0.0,
    }


def params_from_args(args: argparse.Namespace) -> FlowParams:
    base = FlowParams()
    fields = {
        "n": args.n,
        "seed": args.seed,
        "symbols": tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip()),
        "p_cancel": args.p_cancel,
        "p_market": args.p_market,
        "price_process": args.price_process,
        "max_qty": args.max_qty,
        "rate": args.rate,
        "arrivals": args.arrivals,
    }
    return replace(base, **{k: v for k, v in fields.items() if v is not None})


def add_flow_arguments(p: argparse.ArgumentParser) -> None:
    """The generator's knobs as CLI flags (shared by `bourse bench service` and this module's CLI)."""
    p.add_argument("--n", type=int, help="messages to generate (default 10000)")
    p.add_argument("--seed", type=int, help="seed (default 1)")
    p.add_argument("--symbols", default="AAPL", help="comma-separated symbols, interleaved (default AAPL)")
    p.add_argument("--p-cancel", dest="p_cancel", type=float, help="share of cancels (default 0.35)")
    p.add_argument("--p-market", dest="p_market", type=float, help="share of market orders (default 0.10)")
    p.add_argument("--price-process", dest="price_process", choices=("walk", "gbm"), help="default walk")
    p.add_argument("--max-qty", dest="max_qty", type=int, help="largest order in shares (default 500)")
    p.add_argument("--arrivals", choices=("uniform", "poisson"), help="send-time process (default uniform)")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.generator", description=__doc__.split("\n")[0])
    add_flow_arguments(ap)
    ap.add_argument("--rate", type=float, help="offered messages/s (default: flat out)")
    ap.add_argument("--csv", help="write kind,order_id,side,price_ticks,qty,symbol,t here")
    a = ap.parse_args(argv)
    params = params_from_args(a)
    msgs = generate(params)
    if a.csv:
        with open(a.csv, "w") as f:
            for m in msgs:
                f.write(f"{m.kind},{m.order_id},{m.side},{m.price},{m.qty},{m.symbol},{m.t:.6f}\n")
    print(json.dumps({"params": params.as_dict(), "stats": stats(msgs)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
