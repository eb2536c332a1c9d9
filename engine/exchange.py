"""Exchange: routes each command to its symbol's OrderBook."""

from __future__ import annotations

from collections.abc import Iterable

from engine.book import OrderBook
from engine.commands import MassCancel, NewOrder, Replace
from engine.events import Event, Rejected
from engine.snapshot import BookSnapshot, restore, snapshot
from engine.symbols import Instrument
from engine.types import RejectReason


class Exchange:
    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self.books: dict[str, OrderBook] = {}
        for ins in instruments:
            if ins.symbol in self.books:
                raise ValueError(f"duplicate instrument {ins.symbol}")
            self.books[ins.symbol] = OrderBook(ins)
        # symbol -> {command class -> bound handler}: one dict hop per command on the hot path
        self._routes = {sym: book._dispatch for sym, book in self.books.items()}

    def book(self, symbol: str) -> OrderBook:
        return self.books[symbol]

    def apply(self, cmd: object) -> list[Event]:
        try:
            handler = self._routes[cmd.symbol][cmd.__class__]  # type: ignore[attr-defined]
        except (KeyError, AttributeError, TypeError):
            return self._slow_apply(cmd)
        return handler(cmd)

    def _slow_apply(self, cmd: object) -> list[Event]:
        if isinstance(cmd, MassCancel) and cmd.symbol is None:
            events: list[Event] = []
            for sym in sorted(self.books):
                events.extend(self.books[sym].cancel_account(cmd.account, cmd.ts))
            return events
        symbol = getattr(cmd, "symbol", None)
        book = self.books.get(symbol) if isinstance(symbol, str) else None
        if book is None:
            # no book, so no seq: seq 0 marks an event outside every book's sequence
            oid = getattr(cmd, "order_id", None)
            hold = cmd.hold if isinstance(cmd, NewOrder) and cmd.hold is not None else 0
            buy = isinstance(cmd, NewOrder) and cmd.side == "buy"
            cash = hold if buy else 0
            shares = 0 if buy else hold
            if isinstance(
                cmd, Replace
            ):  # the side is unknown here: a replace's extra hold comes back as cash
                cash = cmd.extra_hold
            acct = getattr(cmd, "account", 0)
            ts = getattr(cmd, "ts", 0)
            return [Rejected(0, str(symbol), oid, acct, RejectReason.UNKNOWN_SYMBOL, cash, shares, ts)]
        return book.apply(cmd)  # raises TypeError for a non-command

    def snapshot(self) -> dict[str, BookSnapshot]:
        return {sym: snapshot(book) for sym, book in self.books.items()}

    def restore(self, snaps: dict[str, BookSnapshot]) -> None:
        for sym, snap in snaps.items():
            self.books[sym] = restore(snap)
        self._routes = {sym: book._dispatch for sym, book in self.books.items()}

    def state_hash(self) -> str:
        import hashlib

        h = hashlib.sha256()
        for sym in sorted(self.books):
            h.update(f"{sym}={self.books[sym].state_hash()}\n".encode())
        return h.hexdigest()
