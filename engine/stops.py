"""Waiting stop and stop-limit orders, off the visible book, sorted per side by (stop_price, seq)."""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedList

from engine.order import OID, SEQ, SIDE, Order
from engine.types import Side


class StopBook:
    """Buy stops fire when the last trade price >= stop, sell stops when <= stop."""

    __slots__ = ("buys", "sells", "by_id")

    def __init__(self) -> None:
        self.buys: SortedList = SortedList()  # (stop_price, seq, order_id); fired: a prefix
        self.sells: SortedList = SortedList()  # fired: a suffix
        self.by_id: dict[int, Order] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, order_id: int) -> bool:
        return order_id in self.by_id

    def add(self, o: Order, stop_price: int) -> None:
        (self.buys if o[SIDE] is Side.BUY else self.sells).add((stop_price, o[SEQ], o[OID]))
        self.by_id[o[OID]] = o

    def remove(self, o: Order, stop_price: int) -> None:
        (self.buys if o[SIDE] is Side.BUY else self.sells).remove((stop_price, o[SEQ], o[OID]))
        del self.by_id[o[OID]]

    def next_fired(self, last: int) -> Order | None:
        """The fired stop with the lowest seq (the earliest priority), or None."""
        best: tuple[int, int] | None = None
        buys = self.buys
        for i in range(buys.bisect_right((last, float("inf")))):
            _, seq, oid = buys[i]
            if best is None or seq < best[0]:
                best = (seq, oid)
        sells = self.sells
        for i in range(sells.bisect_left((last,)), len(sells)):
            _, seq, oid = sells[i]
            if best is None or seq < best[0]:
                best = (seq, oid)
        return None if best is None else self.by_id[best[1]]

    def __iter__(self) -> Iterator[Order]:
        """Every waiting stop in a deterministic order: buys then sells, by (stop_price, seq)."""
        by_id = self.by_id
        for _, _, oid in self.buys:
            yield by_id[oid]
        for _, _, oid in self.sells:
            yield by_id[oid]
