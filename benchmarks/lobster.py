"""Replay a LOBSTER message file through the engine and compare with LOBSTER's orderbook file, row by row.

    python -m benchmarks.lobster --zip ../shared/lobster/zips/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip
    python -m benchmarks.lobster --message M.csv --orderbook O.csv      (plain or .gz)

Method (see ../shared/lobster/README.md for the format and its traps):
- The book is seeded from orderbook row 0, one anonymous order per level, ahead of every later order
  (gotchas 1, 2). Replay starts at message 1. Instrument: tick 1 (raw price units), no band, no holds.
- Type 1 -> NewOrder limit GTC. Type 2 -> Replace to a lower qty (a reduce, keeps priority).
  Type 3 -> Cancel. Types 5, 6, 7 leave the book unchanged and are skipped (gotchas 4, 7).
- Type 4 (execution of a resting order) -> a synthetic IOC limit order on the opposite side, at the row's
  price and size, so the engine itself does the matching (gotcha 5). When the named order is not at the
  head of its queue in the engine (LOBSTER's fills are not always FIFO, gotcha 6), the row is applied
  as "execute that order by size" (a reduce/cancel by id) and counted as `executions_by_id`.
- A cancel or execution of an id the replay never saw draws from the anonymous liquidity at its price.
- What the messages determine (gotcha 3): a level-N file says nothing about prices beyond the N-th
  level. Per side the replay keeps an `edge`: prices at or better than it are exactly known. When the
  window widens (a level emptied and a deeper one moved into view), the newly visible levels are
  "revealed": the engine level there is replaced by anonymous liquidity of the file's size, and those
  levels are left out of that row's comparison. Every other visible level is compared, and so is the
  absence of engine levels inside the window.
A row matches when every compared level (price, total size) equals the file's.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.book import OrderBook
from engine.commands import Cancel, NewOrder, Replace
from engine.events import Rejected, Trade
from engine.order import LEAVES, OID, QTY
from engine.symbols import Instrument
from engine.types import OrderType, Side, StpMode, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
LIMIT, GTC, IOC = OrderType.LIMIT, TimeInForce.GTC, TimeInForce.IOC
ACCT_BOOK = 1  # every LOBSTER order
ACCT_AGGRESSOR = 2  # synthetic aggressors of type-4 rows
ASK_DUMMY, BID_DUMMY = 9999999999, -9999999999
INF = float("inf")


@dataclass
class ReplayStats:
    rows: int = 0  # orderbook rows compared (all but row 0, which seeds the book)
    matched: int = 0
    mismatched: int = 0
    rows_with_revealed_levels: int = 0
    levels_compared: int = 0
    messages_by_type: dict[int, int] = field(default_factory=dict)
    executions_matched_by_engine: int = 0  # type 4 rows turned into IOC aggressors
    executions_by_id: int = 0  # type 4 rows where the named order was not at the queue head
    anonymous_draws: int = 0  # type 2/3/4 rows on ids from before the window
    trades: int = 0
    engine_rejects: int = 0
    first_mismatch: int | None = None
    seconds: float = 0.0

    @property
    def match_rate(self) -> float:
        return self.matched / self.rows if self.rows else 1.0


def _open_text(path: str | Path) -> io.TextIOBase:
    path = str(path)
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path), encoding="ascii")
    return open(path, encoding="ascii")


def read_messages(f) -> list[tuple[int, int, int, int, int]]:
    """(type, order id, size, price, direction); the time column is not needed (file order is event order)."""
    out = []
    for line in f:
        _t, typ, oid, size, price, direction = line.rstrip().split(",")[:6]
        out.append((int(typ), int(oid), int(size), int(price), int(direction)))
    return out


def read_orderbook(f) -> list[tuple[int, ...]]:
    return [tuple(map(int, line.rstrip().split(","))) for line in f if line.strip()]


def load_zip(path: str | Path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        msg = next(n for n in names if "_message_" in n)
        ob = next(n for n in names if "_orderbook_" in n)
        with z.open(msg) as f:
            messages = read_messages(io.TextIOWrapper(f, encoding="ascii"))
        with z.open(ob) as f:
            books = read_orderbook(io.TextIOWrapper(f, encoding="ascii"))
    return messages, books, msg


def file_levels(row: tuple[int, ...], n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    asks, bids = [], []
    for i in range(n):
        ap, asz, bp, bsz = row[4 * i : 4 * i + 4]
        if ap != ASK_DUMMY:
            asks.append((ap, asz))
        if bp != BID_DUMMY:
            bids.append((bp, bsz))
    return asks, bids


class Replay:
    def __init__(self, n_levels: int, symbol: str = "LOBSTER") -> None:
        self.n = n_levels
        self.book = OrderBook(Instrument(symbol))
        self.symbol = symbol
        self.next_synthetic = -1  # anonymous and aggressor ids are negative: LOBSTER ids are positive
        self.anon: dict[tuple[Side, int], int] = {}  # (side, price) -> id of the anonymous order there
        self.edge = {SELL: -INF, BUY: INF}  # prices better than or at the edge are known exactly
        self.stats = ReplayStats()

    # ------------------------------------------------------------ engine commands
    def _apply(self, cmd) -> list:
        events = self.book.apply(cmd)
        for e in events:
            if isinstance(e, Trade):
                self.stats.trades += 1
            elif isinstance(e, Rejected):
                self.stats.engine_rejects += 1
        return events

    def _new_id(self) -> int:
        self.next_synthetic -= 1
        return self.next_synthetic

    def _add_anonymous(self, side: Side, price: int, size: int) -> None:
        oid = self._new_id()
        self._apply(NewOrder(oid, ACCT_BOOK, self.symbol, side, LIMIT, size, price, None, GTC))
        self.anon[(side, price)] = oid

    def _take(self, oid: int, size: int) -> None:
        """Remove `size` shares of open order `oid` outside matching: reduce, or cancel when all."""
        o = self.book.orders[oid]
        if size >= o[LEAVES]:
            self._apply(Cancel(oid, ACCT_BOOK, self.symbol))
        else:
            self._apply(Replace(oid, ACCT_BOOK, self.symbol, qty=o[QTY] - size))

    def _wipe(self, side: Side, price: int) -> None:
        for r in self.book.level_orders(side, price):
            self._apply(Cancel(r.order_id, ACCT_BOOK, self.symbol))
        self.anon.pop((side, price), None)

    # ------------------------------------------------------------ seeding and syncing
    def seed(self, row: tuple[int, ...]) -> None:
        asks, bids = file_levels(row, self.n)
        for side, levels in ((SELL, asks), (BUY, bids)):
            for price, size in levels:
                self._add_anonymous(side, price, size)
            self.edge[side] = self._window_edge(side, levels)

    def _window_edge(self, side: Side, levels: list[tuple[int, int]]) -> float:
        if len(levels) < self.n:
            return INF if side is SELL else -INF  # the whole side is visible
        return levels[-1][0]

    def _known(self, side: Side, price: int, edge: float) -> bool:
        return price <= edge if side is SELL else price >= edge

    # ------------------------------------------------------------ messages
    def message(self, typ: int, oid: int, size: int, price: int, direction: int) -> None:
        st = self.stats
        st.messages_by_type[typ] = st.messages_by_type.get(typ, 0) + 1
        side = BUY if direction == 1 else SELL
        book = self.book
        if typ == 1:
            self._apply(NewOrder(oid, ACCT_BOOK, self.symbol, side, LIMIT, size, price, None, GTC))
        elif typ in (2, 3):
            if oid in book.orders:
                self._take(oid, size)
            else:
                self._draw_anonymous(side, price, size)
        elif typ == 4:
            self._execute(oid, side, price, size)
        # 5 hidden execution, 6 cross summary, 7 halt: no change to the visible book

    def _draw_anonymous(self, side: Side, price: int, size: int) -> None:
        self.stats.anonymous_draws += 1
        aid = self.anon.get((side, price))
        if aid is not None and aid in self.book.orders:
            self._take(aid, size)
            if aid not in self.book.orders:
                del self.anon[(side, price)]

    def _execute(self, oid: int, side: Side, price: int, size: int) -> None:
        book = self.book
        target = oid if oid in book.orders else self.anon.get((side, price))
        if oid not in book.orders:
            self.stats.anonymous_draws += 1
        if target is None or target not in book.orders:
            return
        level = (book.bids if side is BUY else book.asks).get(price)
        head = None
        if level is not None:
            for o in level.orders:
                if o[LEAVES]:
                    head = o
                    break
        best = book.best_bid if side is BUY else book.best_ask
        if head is not None and head[OID] == target and head[LEAVES] >= size and best == price:
            self.stats.executions_matched_by_engine += 1
            aggressor = SELL if side is BUY else BUY
            self._apply(
                NewOrder(
                    self._new_id(),
                    ACCT_AGGRESSOR,
                    self.symbol,
                    aggressor,
                    LIMIT,
                    size,
                    price,
                    None,
                    IOC,
                    stp=StpMode.NONE,
                )  # fmt: skip
            )
        else:
            self.stats.executions_by_id += 1
            self._take(target, size)
        if target not in book.orders and self.anon.get((side, price)) == target:
            del self.anon[(side, price)]

    # ------------------------------------------------------------ comparison
    def compare(self, row: tuple[int, ...], index: int) -> None:
        st = self.stats
        asks, bids = file_levels(row, self.n)
        ok = True
        revealed = False
        for side, levels in ((SELL, asks), (BUY, bids)):
            old_edge = self.edge[side]
            new_edge = self._window_edge(side, levels)
            # determined range: known before the message and still visible after it
            det_edge = min(old_edge, new_edge) if side is SELL else max(old_edge, new_edge)
            want = [(p, q) for p, q in levels if self._known(side, p, det_edge)]
            prices = self.book.ask_prices if side is SELL else self.book.bid_prices
            lv = self.book.asks if side is SELL else self.book.bids
            if side is SELL:
                engine_prices = list(prices.irange(maximum=det_edge))
            else:
                engine_prices = list(prices.irange(minimum=det_edge, reverse=True))
            got = [(p, lv[p].qty) for p in engine_prices]
            st.levels_compared += len(want)
            if got != want:
                ok = False
            # levels revealed by a widened window: take them from the file, as anonymous liquidity
            widened = (new_edge > old_edge) if side is SELL else (new_edge < old_edge)
            if widened:
                file_prices = {p: q for p, q in levels}
                lo, hi = (old_edge, new_edge) if side is SELL else (new_edge, old_edge)
                stale = (
                    [p for p in list(lv) if lo < p <= hi]
                    if side is SELL
                    else [p for p in list(lv) if lo <= p < hi]
                )
                for p in stale:
                    self._wipe(side, p)
                for p, q in file_prices.items():
                    if (side is SELL and old_edge < p <= new_edge) or (
                        side is BUY and new_edge <= p < old_edge
                    ):
                        self._wipe(side, p)
                        self._add_anonymous(side, p, q)
                        revealed = True
            self.edge[side] = new_edge
        st.rows += 1
        st.rows_with_revealed_levels += revealed
        if ok:
            st.matched += 1
        else:
            st.mismatched += 1
            if st.first_mismatch is None:
                st.first_mismatch = index


def replay(messages, books, n_levels: int) -> ReplayStats:
    r = Replay(n_levels)
    t0 = time.perf_counter()
    r.seed(books[0])
    for i in range(1, len(messages)):
        r.message(*messages[i])
        r.compare(books[i], i)
    r.stats.seconds = round(time.perf_counter() - t0, 3)
    return r.stats


def levels_of(books) -> int:
    return len(books[0]) // 4


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zip", help="a LOBSTER sample zip (read in place, nothing is extracted)")
    ap.add_argument("--message", help="message CSV (or .csv.gz)")
    ap.add_argument("--orderbook", help="orderbook CSV (or .csv.gz)")
    ap.add_argument("--json", help="also write the stats here")
    a = ap.parse_args(argv)
    if a.zip:
        messages, books, name = load_zip(a.zip)
    elif a.message and a.orderbook:
        with _open_text(a.message) as f:
            messages = read_messages(f)
        with _open_text(a.orderbook) as f:
            books = read_orderbook(f)
        name = Path(a.message).name
    else:
        ap.error("give --zip, or --message and --orderbook")
    if len(messages) != len(books):
        print(f"message rows {len(messages)} != orderbook rows {len(books)}", file=sys.stderr)
        return 2
    n = levels_of(books)
    stats = replay(messages, books, n)
    out = {"file": name, "levels": n, **asdict(stats), "match_rate": stats.match_rate}
    print(json.dumps(out, indent=2))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 0 if stats.mismatched == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
