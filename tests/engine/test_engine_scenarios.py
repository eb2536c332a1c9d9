"""Exchange-core style scenarios: a given book, one command, the exact events and book after it."""

from __future__ import annotations

from engine_kit import BUY, SELL, SYM, banded, buy, cancel, replace, sell

from engine.book import OrderBook
from engine.commands import Expire, MassCancel, NewOrder, SetReference, Withdraw
from engine.events import Accepted, Canceled, Reduced, Rejected, Replaced, Trade, Triggered
from engine.types import CancelReason as CR
from engine.types import OrderStatus as S
from engine.types import OrderType, StpMode, TimeInForce
from engine.types import RejectReason as RR

LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK


def run(book: OrderBook, *cmds):
    out = []
    for c in cmds:
        out = book.apply(c)
    return out


def levels(book: OrderBook, n: int = 10):
    d = book.depth(n)
    return list(d.bids), list(d.asks)


def queue(book: OrderBook, side, price):
    return [(o.order_id, o.leaves) for o in book.level_orders(side, price)]


# ---------------------------------------------------------------- limit orders and priority


def test_limit_order_rests_and_is_accepted_with_seq(book):
    ev = book.apply(buy(1, 100, 99, ts=7))
    assert ev == [Accepted(1, SYM, 1, 1, BUY, LIMIT, GTC, 100, 99, None, True, 7)]
    assert levels(book) == ([(99, 100, 1)], [])
    assert book.best_bid == 99 and book.best_ask is None and book.seq == 1


def test_crossing_limit_trades_at_maker_price_and_rests_remainder(book):
    run(book, sell(1, 50, 101), sell(2, 30, 100))
    ev = book.apply(buy(3, 100, 101, acct=1))
    assert ev == [
        Accepted(3, SYM, 3, 1, BUY, LIMIT, GTC, 100, 101, None, True, 0),
        Trade(4, SYM, 100, 30, BUY, 2, 3, 2, 1, 0, S.FILLED, S.PARTIALLY_FILLED, 0, 70, 0),
        Trade(5, SYM, 101, 50, BUY, 1, 3, 2, 1, 0, S.FILLED, S.PARTIALLY_FILLED, 0, 20, 0),
    ]
    assert levels(book) == ([(101, 20, 1)], [])
    assert book.last_price == 101


def test_fills_follow_price_then_time_priority(book):
    run(book, sell(1, 10, 101, acct=5), sell(2, 10, 100, acct=6), sell(3, 10, 100, acct=7))
    ev = book.apply(buy(4, 25, 101))
    assert [(e.maker_order_id, e.price, e.qty) for e in ev if isinstance(e, Trade)] == [
        (2, 100, 10),
        (3, 100, 10),
        (1, 101, 5),
    ]
    assert queue(book, SELL, 101) == [(1, 5)]


def test_cancel_of_last_order_removes_price_level(book):
    run(book, buy(1, 10, 99))
    ev = book.apply(cancel(1, 1))
    assert ev == [Canceled(2, SYM, 1, 1, BUY, CR.USER, 10, 0, 0, 0, 0)]
    assert levels(book) == ([], []) and book.best_bid is None
    assert book.take_changes()[-1] == (BUY, 99, 0, 0)


def test_cancel_in_middle_of_queue_keeps_others_in_order(book):
    run(book, buy(1, 10, 99), buy(2, 20, 99, acct=3), buy(3, 30, 99, acct=4), cancel(2, 3))
    assert queue(book, BUY, 99) == [(1, 10), (3, 30)]
    assert levels(book) == ([(99, 40, 2)], [])


def test_many_cancels_compact_the_level_without_changing_order(book):
    for i in range(1, 401):
        book.apply(buy(i, 1, 99, acct=i))
    for i in range(1, 401):
        if i % 4:
            book.apply(cancel(i, i))
    assert len(book.bids[99].orders) < 300  # compacted at least once
    assert queue(book, BUY, 99) == [(i, 1) for i in range(4, 401, 4)]
    ev = book.apply(sell(1000, 3, 99, acct=999))
    assert [e.maker_order_id for e in ev if isinstance(e, Trade)] == [4, 8, 12]


# ---------------------------------------------------------------- market orders


def test_market_order_sweeps_and_cancels_remainder_as_ioc(book):
    run(book, sell(1, 10, 100), sell(2, 10, 102))
    ev = book.apply(buy(3, 30))
    assert ev[0] == Accepted(3, SYM, 3, 1, BUY, MARKET, IOC, 30, None, None, False, 0)
    assert [(e.price, e.qty) for e in ev[1:3]] == [(100, 10), (102, 10)]
    assert ev[3] == Canceled(6, SYM, 3, 1, BUY, CR.IOC_REMAINDER, 10, 20, 0, 0, 0)
    assert levels(book) == ([], [])


def test_market_order_on_empty_book_is_canceled(book):
    ev = book.apply(sell(1, 5))
    assert [type(e) for e in ev] == [Accepted, Canceled]
    assert ev[1].reason is CR.IOC_REMAINDER and ev[1].canceled_qty == 5


def test_market_order_never_trades_beyond_the_band():
    book = OrderBook(banded())  # band [9000, 11000]
    run(book, sell(1, 10, 10_500), SetReference(SYM, 9_000))  # new band [8100, 9900]: the ask is outside
    ev = book.apply(buy(2, 10))
    assert [type(e) for e in ev] == [Accepted, Canceled] and ev[1].reason is CR.BAND
    assert levels(book)[1] == [(10_500, 10, 1)]


def test_market_order_stops_at_band_after_partial_fill():
    book = OrderBook(banded())
    run(book, sell(1, 10, 10_900), sell(2, 10, 11_000), SetReference(SYM, 10_000))
    book.apply(SetReference(SYM, 9_950))  # band [8955, 10945]
    ev = book.apply(buy(3, 30))
    assert [(e.price, e.qty) for e in ev if isinstance(e, Trade)] == [(10_900, 10)]
    assert ev[-1].reason is CR.BAND and ev[-1].canceled_qty == 20


def test_market_buy_with_budget_never_spends_more_than_hold(book):
    run(book, sell(1, 10, 100), sell(2, 10, 150))
    ev = book.apply(buy(3, 100, hold=2_000))  # 10 @100 = 1000, then 6 @150 = 900; 100 left < 150
    trades = [e for e in ev if isinstance(e, Trade)]
    assert [(t.price, t.qty) for t in trades] == [(100, 10), (150, 6)]
    assert ev[-1] == Canceled(ev[-1].seq, SYM, 3, 1, BUY, CR.BUDGET, 84, 16, 100, 0, 0)
    assert sum(t.notional + t.buyer_released for t in trades) + ev[-1].released_cash == 2_000


def test_market_buy_with_budget_that_fills_releases_the_rest_on_the_last_trade(book):
    run(book, sell(1, 10, 100))
    ev = book.apply(buy(2, 10, hold=5_000))
    assert ev[1].qty == 10 and ev[1].buyer_released == 4_000 and ev[1].taker_status is S.FILLED
    assert len(ev) == 2


# ---------------------------------------------------------------- holds


def test_limit_buy_needs_its_full_cost_held(book):
    ev = book.apply(buy(1, 10, 100, hold=999))
    assert ev == [Rejected(1, SYM, 1, 1, RR.INSUFFICIENT_HOLD, 999, 0, 0)]
    assert book.orders == {}


def test_buy_filling_below_its_limit_gets_the_difference_back_at_once(book):
    run(book, sell(1, 4, 95))
    ev = book.apply(buy(2, 10, 100, hold=1_000))
    t = ev[1]
    assert (t.price, t.qty, t.buyer_released) == (95, 4, 20)  # 4*(100-95)
    assert book.get_order(2).hold_remaining == 600  # 6 still at 100
    ev = book.apply(cancel(2, 1))
    assert ev[0].released_cash == 600
    assert t.notional + t.buyer_released + ev[0].released_cash == 1_000


def test_resting_buy_with_extra_hold_releases_it_on_first_fill(book):
    run(book, buy(1, 10, 100, hold=1_500))
    ev = book.apply(sell(2, 10, 100))
    assert ev[1].buyer_released == 500 and ev[1].maker_status is S.FILLED


def test_sell_hold_is_shares_and_excess_is_released_when_it_completes(book):
    run(book, buy(1, 10, 100))
    ev = book.apply(sell(2, 10, 100, hold=12))
    assert ev[1].seller_released == 2
    ev = book.apply(sell(3, 10, 100, hold=9))
    assert ev == [Rejected(ev[0].seq, SYM, 3, 2, RR.INSUFFICIENT_HOLD, 0, 9, 0)]


def test_sell_hold_released_on_cancel(book):
    run(book, sell(1, 10, 100, hold=10), buy(2, 4, 100))
    ev = book.apply(cancel(1, 2))
    assert ev[0].released_qty == 6 and ev[0].filled_qty == 4 and ev[0].canceled_qty == 6


# ---------------------------------------------------------------- time in force


def test_ioc_limit_cancels_its_remainder(book):
    run(book, sell(1, 5, 100))
    ev = book.apply(buy(2, 8, 100, tif=IOC))
    assert ev[0].resting is False and ev[1].qty == 5
    assert ev[2].reason is CR.IOC_REMAINDER and ev[2].canceled_qty == 3
    assert levels(book) == ([], [])


def test_fok_that_cannot_fill_leaves_the_book_untouched(book):
    run(book, sell(1, 5, 100), sell(2, 5, 101))
    before = book.state_hash()
    ev = book.apply(buy(3, 11, 101, tif=FOK))
    assert [type(e) for e in ev] == [Accepted, Canceled] and ev[1].reason is CR.FOK_UNFILLED
    assert levels(book) == ([], [(100, 5, 1), (101, 5, 1)])
    assert book.state_hash() != before  # only the seq moved
    assert [o.leaves for o in book.open_orders()] == [5, 5]


def test_fok_that_can_fill_trades_completely(book):
    run(book, sell(1, 5, 100), sell(2, 5, 101))
    ev = book.apply(buy(3, 10, 101, tif=FOK))
    assert [type(e) for e in ev] == [Accepted, Trade, Trade] and ev[-1].taker_status is S.FILLED


def test_fok_does_not_count_own_orders_it_would_cancel(book):
    run(book, sell(1, 5, 100, acct=1), sell(2, 5, 100, acct=2))
    ev = book.apply(buy(3, 10, 100, acct=1, tif=FOK))
    assert ev[-1].reason is CR.FOK_UNFILLED
    assert queue(book, SELL, 100) == [(1, 5), (2, 5)]


def test_post_only_that_would_take_is_rejected(book):
    run(book, sell(1, 5, 100))
    ev = book.apply(buy(2, 5, 100, post_only=True, hold=500))
    assert ev == [Rejected(2, SYM, 2, 1, RR.POST_ONLY_WOULD_TAKE, 500, 0, 0)]
    ev = book.apply(buy(3, 5, 99, post_only=True))
    assert ev[0].resting is True


def test_expire_cancels_gtd_at_its_time_and_day_orders_but_not_gtc(book):
    run(
        book,
        buy(1, 5, 90, tif=TimeInForce.GTD, expire_at=1_000),
        buy(2, 5, 91, tif=TimeInForce.GTD, expire_at=2_000),
        buy(3, 5, 92, tif=TimeInForce.DAY),
        buy(4, 5, 93),
        sell(5, 5, 200, type=OrderType.STOP_LIMIT, stop_price=150, tif=TimeInForce.DAY),
    )
    ev = book.apply(Expire(SYM, now=1_500))
    assert [(e.order_id, e.reason, e.status) for e in ev] == [
        (1, CR.EXPIRED, S.EXPIRED),
        (3, CR.EXPIRED, S.EXPIRED),
        (5, CR.EXPIRED, S.EXPIRED),
    ]
    assert sorted(book.orders) == [2, 4]
    assert [e.order_id for e in book.apply(Expire(SYM, now=2_000))] == [2]


# ---------------------------------------------------------------- self-trade prevention


def test_stp_cancel_resting_is_the_default(book):
    run(book, sell(1, 5, 100, acct=1), sell(2, 5, 100, acct=2))
    ev = book.apply(buy(3, 5, 100, acct=1))
    assert ev[1] == Canceled(4, SYM, 1, 1, SELL, CR.SELF_TRADE_RESTING, 5, 0, 0, 0, 0)
    assert isinstance(ev[2], Trade) and ev[2].maker_order_id == 2


def test_stp_cancel_incoming_keeps_the_resting_order(book):
    run(book, sell(1, 5, 100, acct=2), sell(2, 5, 100, acct=1))
    ev = book.apply(buy(3, 10, 100, acct=1, stp=StpMode.CANCEL_INCOMING, hold=1000))
    assert [type(e) for e in ev] == [Accepted, Trade, Canceled]
    assert ev[2].reason is CR.SELF_TRADE_INCOMING and ev[2].released_cash == 500
    assert queue(book, SELL, 100) == [(2, 5)]


def test_stp_cancel_both(book):
    run(book, sell(1, 5, 100, acct=1, hold=5))
    ev = book.apply(buy(2, 5, 100, acct=1, stp=StpMode.CANCEL_BOTH))
    assert [(e.order_id, e.reason, e.released_qty) for e in ev[1:]] == [
        (1, CR.SELF_TRADE_BOTH, 5),
        (2, CR.SELF_TRADE_BOTH, 0),
    ]
    assert book.orders == {}


def test_stp_none_allows_self_trade(book):
    run(book, sell(1, 5, 100, acct=1))
    ev = book.apply(buy(2, 5, 100, acct=1, stp=StpMode.NONE))
    assert isinstance(ev[1], Trade) and ev[1].maker_account == ev[1].taker_account == 1


# ---------------------------------------------------------------- rejects


def test_reject_reasons_for_bad_new_orders():
    book = OrderBook(banded())  # tick 5, lot 10, min 10, max 10000, notional 50M, band [9000, 11000]
    cases = [
        (buy(1, 0, 10_000), RR.INVALID_QTY),
        (buy(1, 5, 10_000), RR.INVALID_QTY),
        (buy(1, 20_000, 10_000), RR.INVALID_QTY),
        (buy(1, 15, 10_000), RR.OFF_LOT),
        (buy(1, 10, 10_001), RR.OFF_TICK),
        (buy(1, 10, 0), RR.INVALID_PRICE),
        (buy(1, 10, 8_995), RR.OUTSIDE_BAND),
        (buy(1, 10, 11_005), RR.OUTSIDE_BAND),
        (buy(1, 10_000, 10_000), RR.MAX_NOTIONAL),
        (buy(1, 10, tif=GTC), RR.INVALID_TIF),  # market GTC
        (buy(1, 10, 10_000, tif=TimeInForce.GTD), RR.INVALID_TIF),  # no expire_at
        (buy(1, 10, 10_000, type=MARKET, tif=IOC), RR.INVALID_PRICE),  # market with a price
        (buy(1, 10, None, type=OrderType.STOP), RR.INVALID_PRICE),  # stop without stop price
        (buy(1, 10, 10_000, post_only=True, tif=IOC), RR.INVALID_TIF),
        (buy(1, 10, 10_000, hold=99_999), RR.INSUFFICIENT_HOLD),
        (buy(1, 10, 10_000, stp="x"), RR.INVALID_STP),
        (buy(1, 10, 10_000, type="iceberg"), RR.INVALID_TYPE),
    ]
    for cmd, reason in cases:
        ev = book.apply(cmd)
        assert len(ev) == 1 and isinstance(ev[0], Rejected) and ev[0].reason is reason, (cmd, ev)
    assert book.orders == {}
    bad_side = NewOrder(1, 1, SYM, "up", LIMIT, 10, 10_000)  # type: ignore[arg-type]
    assert book.apply(bad_side)[0].reason is RR.INVALID_SIDE


def test_duplicate_open_order_id_is_rejected(book):
    run(book, buy(1, 5, 99))
    assert book.apply(buy(1, 5, 98))[0].reason is RR.DUPLICATE_ORDER_ID


def test_unknown_symbol_and_unknown_order_and_not_owner(ex):
    ev = ex.apply(buy(1, 5, 99, symbol="NOPE", hold=495))
    assert ev[0].reason is RR.UNKNOWN_SYMBOL and ev[0].released_cash == 495
    ex.apply(buy(1, 5, 99, acct=1))
    assert ex.apply(cancel(2, 1))[0].reason is RR.UNKNOWN_ORDER
    assert ex.apply(cancel(1, 9))[0].reason is RR.NOT_OWNER
    assert ex.apply(replace(1, 9, qty=3))[0].reason is RR.NOT_OWNER
    ex.apply(cancel(1, 1))
    assert ex.apply(cancel(1, 1))[0].reason is RR.UNKNOWN_ORDER  # finished


# ---------------------------------------------------------------- reduce and replace


def test_reduce_keeps_queue_priority(book):
    run(book, buy(1, 10, 99, hold=990), buy(2, 10, 99, acct=3))
    ev = book.apply(replace(1, 1, qty=4))
    assert ev == [Reduced(3, SYM, 1, 1, 4, 4, 594, 0, 0)]
    assert queue(book, BUY, 99) == [(1, 4), (2, 10)]
    assert levels(book)[0] == [(99, 14, 2)]


def test_price_change_loses_priority_and_gets_a_new_seq(book):
    run(book, buy(1, 10, 99), buy(2, 10, 98, acct=3))
    ev = book.apply(replace(1, 1, price=98))
    assert ev == [Replaced(3, SYM, 1, 1, 10, 98, None, 10, 0, 0, 0)]
    assert queue(book, BUY, 98) == [(2, 10), (1, 10)] and book.get_order(1).seq == 3


def test_qty_increase_loses_priority_and_needs_extra_hold(book):
    run(book, buy(1, 10, 99, hold=990), buy(2, 10, 99, acct=3))
    ev = book.apply(replace(1, 1, qty=20))
    assert ev[0].reason is RR.INSUFFICIENT_HOLD
    ev = book.apply(replace(1, 1, qty=20, extra_hold=1000))
    assert isinstance(ev[0], Replaced) and ev[0].released_cash == 10
    assert queue(book, BUY, 99) == [(2, 10), (1, 20)]


def test_replace_that_crosses_trades_at_once(book):
    run(book, buy(1, 10, 99), sell(2, 4, 100))
    ev = book.apply(replace(1, 1, price=100))
    assert [type(e) for e in ev] == [Replaced, Trade]
    assert ev[1].taker_order_id == 1 and ev[1].qty == 4 and ev[1].taker_leaves == 6


def test_replace_rejects(book):
    run(book, buy(1, 10, 99), sell(2, 4, 99, acct=3))  # 4 filled
    assert book.apply(replace(1, 1, qty=4))[0].reason is RR.INVALID_REPLACE  # not above filled
    assert book.apply(replace(1, 1, qty=10))[0].reason is RR.INVALID_REPLACE  # nothing changes
    assert book.apply(replace(1, 1, stop_price=90))[0].reason is RR.INVALID_REPLACE
    assert book.apply(replace(7, 1, qty=5, extra_hold=3))[0] == Rejected(
        7, SYM, 7, 1, RR.UNKNOWN_ORDER, 0, 3, 0
    )
    ev = book.apply(replace(1, 1, qty=5))
    assert ev[0].leaves == 1 and book.get_order(1).filled == 4


# ---------------------------------------------------------------- stops


def test_buy_stop_triggers_on_last_trade_and_becomes_market(book):
    run(book, sell(1, 5, 100), sell(2, 5, 105), buy(3, 5, None, type=OrderType.STOP, stop_price=100, acct=7))
    assert levels(book)[1] == [(100, 5, 1), (105, 5, 1)]  # the stop is not on the book
    ev = book.apply(buy(4, 5, 100, acct=8))
    assert [type(e) for e in ev] == [Accepted, Trade, Triggered, Trade]
    assert ev[2] == Triggered(6, SYM, 3, 7, 100, 0)
    assert (ev[3].taker_order_id, ev[3].price, ev[3].qty) == (3, 105, 5)


def test_stop_cascade_fires_in_seq_order(book):
    run(
        book,
        buy(1, 5, 90, acct=5),
        buy(2, 5, 80, acct=5),
        sell(3, 5, None, type=OrderType.STOP, stop_price=90, acct=6),  # fires at <= 90, sells into 80
        sell(4, 5, 70, type=OrderType.STOP_LIMIT, stop_price=80, acct=7),  # fires at <= 80, rests at 70
        sell(5, 1, None, type=OrderType.STOP, stop_price=95, acct=8),  # fires at <= 95
    )
    ev = book.apply(sell(6, 1, 90, acct=9))  # trades at 90
    kinds = [(type(e).__name__, getattr(e, "order_id", getattr(e, "taker_order_id", None))) for e in ev]
    assert kinds == [
        ("Accepted", 6),
        ("Trade", 6),
        ("Triggered", 3),  # seq 3 < seq 5: stop 3 first even though 5 has the higher stop
        ("Trade", 3),  # 4 @90
        ("Trade", 3),  # 1 @80 -> last 80
        ("Triggered", 4),
        ("Trade", 4),  # stop-limit 70 sells 4 @80
        ("Triggered", 5),
        ("Canceled", 5),  # market with an empty bid side
    ]
    assert levels(book) == ([], [(70, 1, 1)])
    assert book.get_order(4).triggered and book.get_order(4).seq == ev[5].seq


def test_stop_with_stop_price_already_reached_fires_at_once(book):
    run(book, sell(1, 5, 100), buy(2, 5, 100), sell(3, 5, 101))
    ev = book.apply(buy(4, 5, None, type=OrderType.STOP, stop_price=99))
    assert [type(e) for e in ev] == [Accepted, Triggered, Trade]


def test_cancel_and_replace_of_waiting_stop(book):
    run(book, buy(1, 5, 110, type=OrderType.STOP_LIMIT, stop_price=105, hold=550))
    ev = book.apply(replace(1, 1, stop_price=106))
    assert isinstance(ev[0], Replaced) and ev[0].stop_price == 106 and ev[0].released_cash == 0
    ev = book.apply(cancel(1, 1))
    assert ev[0].released_cash == 550 and book.orders == {}


# ---------------------------------------------------------------- mass cancel


def test_mass_cancel_cancels_all_open_orders_of_the_account_including_stops(ex):
    ex.apply(buy(1, 5, 99, acct=1))
    ex.apply(buy(2, 5, 98, acct=2))
    ex.apply(sell(3, 5, 120, acct=1, type=OrderType.STOP_LIMIT, stop_price=90))
    ex.apply(buy(4, 5, 99, acct=1, symbol="OTHER"))
    ev = ex.apply(MassCancel(1, SYM))
    assert [(e.order_id, e.reason) for e in ev] == [(1, CR.MASS_CANCEL), (3, CR.MASS_CANCEL)]
    assert ex.apply(MassCancel(1, SYM))[0] == Rejected(6, SYM, None, 1, RR.UNKNOWN_ORDER, 0, 0, 0)
    assert [e.order_id for e in ex.apply(MassCancel(1))] == [4]


# ---------------------------------------------------------------- depth


def test_take_changes_reports_absolute_sizes_of_changed_levels(book):
    run(book, buy(1, 5, 99), buy(2, 7, 99, acct=3), sell(3, 4, 101))
    assert book.take_changes() == [(BUY, 99, 12, 2), (SELL, 101, 4, 1)]
    book.apply(sell(4, 5, 99, acct=9))
    assert book.take_changes() == [(BUY, 99, 7, 1)]
    book.apply(cancel(3, 2))
    assert book.take_changes() == [(SELL, 101, 0, 0)]
    assert book.take_changes() == []


def test_depth_snapshot_top_n_with_seq(book):
    for i in range(5):
        book.apply(buy(i + 1, 10 + i, 95 + i, acct=i))
        book.apply(sell(i + 10, 20 + i, 105 - i, acct=i + 10))
    d = book.depth(2)
    assert d.bids == ((99, 14, 1), (98, 13, 1)) and d.asks == ((101, 24, 1), (102, 23, 1))
    assert d.seq == book.seq == 10 and d.best_bid == 99 and d.best_ask == 101


def test_mass_cancel_of_a_crowded_level_reports_every_canceled_qty(book):
    # enough cancels at one price to trigger the level's compaction in the middle of the mass cancel
    for i in range(1, 151):
        book.apply(buy(i, i, 99, acct=1))
    for i in range(151, 156):
        book.apply(buy(i, 1, 99, acct=2))
    ev = book.apply(MassCancel(1, SYM))
    assert [(e.order_id, e.canceled_qty, e.filled_qty) for e in ev] == [(i, i, 0) for i in range(1, 151)]
    assert queue(book, BUY, 99) == [(i, 1) for i in range(151, 156)]
    assert levels(book)[0] == [(99, 5, 5)] and sorted(book.orders) == list(range(151, 156))
    assert len(book.bids[99].orders) < 60  # it did compact


def test_bad_values_are_rejected_not_raised(book):
    run(book, buy(1, 5, 99))
    cases = [
        (buy(2, 1.5, 99), RR.INVALID_QTY),
        (buy(2, None, 99), RR.INVALID_QTY),  # type: ignore[arg-type]
        (buy(2, 5, "99"), RR.INVALID_PRICE),  # type: ignore[arg-type]
        (buy(2, 5, 99.0), RR.INVALID_PRICE),
        (buy(2, 5, -1), RR.INVALID_PRICE),
        (buy(2, True, 99), RR.INVALID_QTY),
        (replace(1, 1, qty=2.5), RR.INVALID_QTY),
        (replace(1, 1, price=98.5), RR.INVALID_PRICE),
        (replace(1, 1, extra_hold=-5), RR.INVALID_REPLACE),
        (cancel("1", 1), RR.UNKNOWN_ORDER),  # type: ignore[arg-type]
    ]
    for cmd, reason in cases:
        ev = book.apply(cmd)
        assert len(ev) == 1 and ev[0].reason is reason, (cmd, ev)
    assert levels(book) == ([(99, 5, 1)], [])


# ---------------------------------------------------------------- withdraw (canceled before the book saw it)


def test_a_withdrawn_order_neither_rests_nor_trades_and_its_whole_hold_goes_back(book):
    run(book, sell(1, 10, 100, acct=2))
    before = (levels(book), book.seq)
    ev = book.apply(Withdraw(buy(2, 10, 100, acct=1, hold=1000, ts=9)))
    assert ev == [Canceled(2, SYM, 2, 1, BUY, CR.USER, 10, 0, 1000, 0, 9)]
    assert levels(book) == before[0] and book.seq == before[1] + 1  # the crossing sell is untouched
    ev = book.apply(Withdraw(sell(3, 4, 99, acct=3, hold=4)))
    assert ev == [Canceled(3, SYM, 3, 3, SELL, CR.USER, 4, 0, 0, 4, 0)]
    assert 2 not in book.orders and 3 not in book.orders


def test_withdraw_of_an_order_already_in_the_book_is_a_cancel(book):
    run(book, buy(1, 10, 99, acct=1, hold=990))
    ev = book.apply(Withdraw(buy(1, 10, 99, acct=1, hold=990)))
    assert ev == [Canceled(2, SYM, 1, 1, BUY, CR.USER, 10, 0, 990, 0, 0)]
    assert levels(book) == ([], [])
