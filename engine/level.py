"""One price level: a FIFO queue of orders plus the L2 aggregates (total leaves, live order count)."""

from __future__ import annotations

from collections import deque

from engine.order import LEAVES, Order


class Level:
    """Cancels delete lazily: they zero the order's leaves and fix `qty`/`count` at once, and the dead
    entry is dropped when it reaches the head, or by `compact()` once dead entries are more than 64 and
    twice the live ones (amortized O(1), and a churning deep level stays bounded).
    That keeps cancel O(1) with a plain deque (no linked-list bookkeeping in Python)."""

    __slots__ = ("price", "qty", "count", "orders", "dead")

    def __init__(self, price: int) -> None:
        self.price = price
        self.qty = 0
        self.count = 0
        self.orders: deque[Order] = deque()
        self.dead = 0

    def compact(self, leaving: Order | None = None) -> None:
        """Drop dead entries (and `leaving`, an order being taken off whose leaves are still set)."""
        self.orders = deque([o for o in self.orders if o[LEAVES] and o is not leaving])
        self.dead = 0

    def live(self) -> list[Order]:
        return [o for o in self.orders if o[LEAVES]]
