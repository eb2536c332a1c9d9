"""Whole-book state: snapshot / restore and a deterministic hash over the full queue order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.order import RestingOrder, describe

if TYPE_CHECKING:
    from engine.book import OrderBook
    from engine.symbols import Instrument


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """Plain, immutable data: safe to pickle or serialize. Orders in engine-seq order."""

    instrument: Instrument
    seq: int
    last_price: int | None
    reference_price: int | None
    orders: tuple[RestingOrder, ...]


def snapshot(book: OrderBook) -> BookSnapshot:
    return BookSnapshot(
        book.instrument, book.seq, book.last_price, book.reference_price, tuple(book.open_orders())
    )


def restore(snap: BookSnapshot) -> OrderBook:
    from engine.book import OrderBook
    from engine.commands import SetReference

    book = OrderBook(snap.instrument)
    if snap.reference_price != book.reference_price and snap.reference_price is not None:
        book.set_reference(SetReference(book.symbol, snap.reference_price))
    book.load_resting(snap.orders, seq=snap.seq, last_price=snap.last_price)
    return book


def state_lines(book: OrderBook):
    """The canonical text of the book state, one line per item, in full priority order."""
    yield (
        f"book {book.symbol} seq={book.seq} last={book.last_price} ref={book.reference_price} "
        f"open={len(book.orders)} stops={len(book.stops)} expiring={len(book.expiry)}"
    )
    for side, prices, levels in (
        ("B", reversed(book.bid_prices), book.bids),
        ("S", book.ask_prices, book.asks),
    ):
        for price in prices:
            level = levels[price]
            yield f"L {side} {price} {level.qty} {level.count}"
            for o in level.live():
                yield describe(o, book.stop_prices.get(o[0]), book.expiry.get(o[0]))
    for o in book.stops:
        yield "S " + describe(o, book.stop_prices.get(o[0]), book.expiry.get(o[0]))


def state_hash(book: OrderBook) -> str:
    h = hashlib.sha256()
    for line in state_lines(book):
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()
