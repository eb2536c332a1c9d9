"""L2 depth views: a top-N snapshot stamped with the book's seq (deltas come from OrderBook.take_changes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.book import OrderBook

LevelRow = tuple[int, int, int]  # (price, total qty, order count)


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    symbol: str
    seq: int  # the book seq this view is consistent with; deltas with a higher seq apply on top
    bids: tuple[LevelRow, ...]  # best (highest) first
    asks: tuple[LevelRow, ...]  # best (lowest) first
    last_price: int | None

    @property
    def best_bid(self) -> int | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> int | None:
        return self.asks[0][0] if self.asks else None


def depth_snapshot(book: OrderBook, n: int) -> DepthSnapshot:
    """Top `n` levels per side in O(log L + n): SortedList slices, then the level aggregates."""
    bids, asks = book.bids, book.asks
    nb = len(book.bid_prices)
    bid_rows = tuple(
        (p, bids[p].qty, bids[p].count) for p in book.bid_prices.islice(max(0, nb - n), nb, reverse=True)
    )
    ask_rows = tuple((p, asks[p].qty, asks[p].count) for p in book.ask_prices.islice(0, n))
    return DepthSnapshot(book.symbol, book.seq, bid_rows, ask_rows, book.last_price)
