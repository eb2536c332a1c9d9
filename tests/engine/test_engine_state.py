"""Determinism, snapshot/restore and rebuild-from-open-orders: same commands, same events, same hash."""

from __future__ import annotations

from engine_kit import BUY, buy, plain, random_commands

from engine.book import OrderBook
from engine.events import Trade, Triggered
from engine.snapshot import restore, snapshot

CMDS = random_commands(6_000, seed=11)


def replay(book: OrderBook, cmds) -> list:
    out = []
    for c in cmds:
        out.extend(book.apply(c))
    return out


def test_the_random_mix_exercises_every_path():
    events = replay(OrderBook(plain()), CMDS)
    kinds = {type(e).__name__ for e in events}
    assert kinds >= {"Accepted", "Rejected", "Trade", "Canceled", "Reduced", "Replaced", "Triggered"}
    assert sum(isinstance(e, Trade) for e in events) > 500
    assert sum(isinstance(e, Triggered) for e in events) > 20


def test_same_commands_give_same_events_and_state_hash():
    a, b = OrderBook(plain()), OrderBook(plain())
    assert replay(a, CMDS) == replay(b, CMDS)
    assert a.state_hash() == b.state_hash()
    assert a.seq == b.seq > len(CMDS)


def test_snapshot_restore_then_continue_is_identical():
    live = OrderBook(plain())
    replay(live, CMDS[:3_000])
    copy = restore(snapshot(live))
    assert copy.state_hash() == live.state_hash()
    assert replay(copy, CMDS[3_000:]) == replay(live, CMDS[3_000:])
    assert copy.state_hash() == live.state_hash()


def test_rebuild_from_open_orders_in_any_order_continues_identically():
    live = OrderBook(plain())
    replay(live, CMDS[:4_000])
    assert live.stops.by_id and live.expiry  # stops and DAY/GTD orders are part of the rebuilt state
    rebuilt = OrderBook(plain())
    rebuilt.load_resting(reversed(live.open_orders()), seq=live.seq, last_price=live.last_price)
    assert rebuilt.state_hash() == live.state_hash()
    assert rebuilt.depth(50) == live.depth(50)
    assert replay(rebuilt, CMDS[4_000:]) == replay(live, CMDS[4_000:])


def test_state_hash_covers_queue_order_not_just_levels():
    a, b = OrderBook(plain()), OrderBook(plain())
    for book, ids in ((a, (1, 2)), (b, (2, 1))):
        for oid in ids:
            book.apply(buy(oid, 5, 99, acct=oid))
    assert a.depth(5) == b.depth(5)
    assert [o.order_id for o in a.level_orders(BUY, 99)] != [o.order_id for o in b.level_orders(BUY, 99)]
    assert a.state_hash() != b.state_hash()


def test_load_resting_refuses_a_non_empty_book_and_inconsistent_orders():
    import dataclasses

    import pytest

    book = OrderBook(plain())
    book.apply(buy(1, 5, 99))
    rows = book.open_orders()
    with pytest.raises(ValueError):
        book.load_resting(rows)
    bad = dataclasses.replace(rows[0], filled=3)
    with pytest.raises(ValueError):
        OrderBook(plain()).load_resting([bad])
