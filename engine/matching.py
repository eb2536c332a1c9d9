"""The match loop: an incoming (taker) order against the opposite side, in price-then-time priority.

One flat function with everything bound to locals: it is the hot path of the engine. Fills always
happen at the maker's price. Holds are settled per fill (docs/engine.md, "Hold accounting").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.events import Canceled, Trade
from engine.order import ACCT, HOLD, LEAVES, OID, PRICE, QTY, SIDE, TERMS, Order
from engine.types import CancelReason, OrderStatus, Side, StpMode

if TYPE_CHECKING:
    from engine.book import OrderBook

BUY = Side.BUY
SELL = Side.SELL
FILLED = OrderStatus.FILLED
PARTIAL = OrderStatus.PARTIALLY_FILLED
STP_NONE = StpMode.NONE
STP_INCOMING = StpMode.CANCEL_INCOMING
STP_RESTING = StpMode.CANCEL_RESTING
STP_BOTH = StpMode.CANCEL_BOTH
R_BAND = CancelReason.BAND
R_BUDGET = CancelReason.BUDGET
R_ST_RESTING = CancelReason.SELF_TRADE_RESTING
R_ST_INCOMING = CancelReason.SELF_TRADE_INCOMING
R_ST_BOTH = CancelReason.SELF_TRADE_BOTH


def match(book: OrderBook, o: Order, limit: int | None, events: list, ts: int) -> CancelReason | None:
    """Trade taker `o` while the opposite best price is within `limit` (None: any price).

    Mutates `o` (leaves, hold) and the book, appends events. Returns why matching stopped early so the
    rest must be canceled (band, budget, self-trade), or None if it ran out of quantity or of
    acceptable liquidity.
    """
    is_buy = o[SIDE] is BUY
    if is_buy:
        levels, prices, changed, idx, best = book.asks, book.ask_prices, book.changed_asks, 0, book.best_ask
    else:
        levels, prices, changed, idx, best = book.bids, book.bid_prices, book.changed_bids, -1, book.best_bid
    orders = book.orders
    expiry = book.expiry
    stop_prices = book.stop_prices
    sym = book.symbol
    seq = book.seq
    append = events.append
    tid = o[OID]
    tacct = o[ACCT]
    stp = o[TERMS].stp
    stp_on = stp is not STP_NONE
    leaves = o[LEAVES]
    hold = o[HOLD]
    tprice = o[PRICE]  # None: market (or fired stop), bounded by `limit` only
    budget = is_buy and hold is not None and tprice is None
    aggressor = o[SIDE]
    reason = None
    last = None

    while leaves and best is not None:
        if limit is not None and (best > limit if is_buy else best < limit):
            if tprice is None:
                reason = R_BAND  # a market order stopped by price protection, not by an empty book
            break
        level = levels[best]
        q = level.orders
        lqty = level.qty
        while q:
            m = q[0]
            ml = m[LEAVES]
            if not ml:  # lazily deleted (canceled / replaced) entry
                q.popleft()
                level.dead -= 1
                continue
            if stp_on and m[ACCT] == tacct:
                if stp is STP_INCOMING:
                    reason = R_ST_INCOMING
                    break
                r = R_ST_RESTING if stp is STP_RESTING else R_ST_BOTH
                q.popleft()
                level.count -= 1
                lqty -= ml
                mid = m[OID]
                del orders[mid]
                if expiry:
                    expiry.pop(mid, None)
                if stop_prices:
                    stop_prices.pop(mid, None)
                mh = m[HOLD] or 0
                m[LEAVES] = 0
                if m[HOLD] is not None:
                    m[HOLD] = 0
                seq += 1
                # the maker is on the other side: a sell maker releases shares, a buy maker cash
                ev = Canceled(seq, sym, mid, m[ACCT], m[SIDE], r, ml, m[QTY] - ml,
                               0 if is_buy else mh, mh if is_buy else 0, ts)  # fmt: skip
                append(ev)
                if stp is STP_BOTH:
                    reason = R_ST_BOTH
                    break
                continue
            n = ml if ml < leaves else leaves
            if budget:
                afford = hold // best
                if afford < n:
                    n = afford
                    if not n:
                        reason = R_BUDGET
                        break
            leaves -= n
            ml -= n
            m[LEAVES] = ml
            lqty -= n
            bre = sre = 0
            mh = m[HOLD]
            if is_buy:
                if hold is not None:
                    hold -= best * n
                    if not leaves:
                        bre = hold
                        hold = 0
                    elif tprice is not None:
                        bre = hold - tprice * leaves
                        hold -= bre
                if mh is not None:
                    mh -= n
                    if not ml:
                        sre = mh
                        mh = 0
                    m[HOLD] = mh
            else:
                if hold is not None:
                    hold -= n
                    if not leaves:
                        sre = hold
                        hold = 0
                if mh is not None:
                    mh -= best * n
                    if not ml:
                        bre = mh
                        mh = 0
                    else:
                        bre = mh - best * ml
                        mh -= bre
                    m[HOLD] = mh
            if ml:
                mstatus = PARTIAL
            else:
                mstatus = FILLED
                q.popleft()
                level.count -= 1
                del orders[m[OID]]
                if expiry:
                    expiry.pop(m[OID], None)
                if stop_prices:
                    stop_prices.pop(m[OID], None)
            seq += 1
            ev = Trade(seq, sym, best, n, aggressor, m[OID], tid, m[ACCT], tacct, bre, mstatus,
                        PARTIAL if leaves else FILLED, ml, leaves, ts, sre)  # fmt: skip
            append(ev)
            last = best
            if not leaves:
                break
        level.qty = lqty
        changed.add(best)
        if not level.count:
            del levels[best]
            prices.remove(best)
            best = prices[idx] if levels else None
        if reason is not None:
            break

    if is_buy:
        book.best_ask = best
    else:
        book.best_bid = best
    book.seq = seq
    if last is not None:
        book.last_price = last
    o[LEAVES] = leaves
    o[HOLD] = hold
    return reason


def fillable(book: OrderBook, o: Order, limit: int | None) -> bool:
    """FOK check: could `o` fill completely right now (price, STP and budget respected)? Read-only."""
    is_buy = o[SIDE] is BUY
    if is_buy:
        levels = book.asks
        walk = book.ask_prices.irange(maximum=limit) if limit is not None else iter(book.ask_prices)
    else:
        levels = book.bids
        walk = (
            book.bid_prices.irange(minimum=limit, reverse=True)
            if limit is not None
            else reversed(book.bid_prices)
        )
    need = o[LEAVES]
    acct = o[ACCT]
    stp = o[TERMS].stp
    stp_on = stp is not STP_NONE
    budget = o[HOLD] if (is_buy and o[HOLD] is not None and o[PRICE] is None) else None
    for price in walk:
        for m in levels[price].orders:
            ml = m[LEAVES]
            if not ml:
                continue
            if stp_on and m[ACCT] == acct:
                if stp is STP_RESTING:
                    continue  # it would be canceled, providing nothing
                return False  # the incoming order (or both) would be canceled here
            n = ml if ml < need else need
            if budget is not None:
                afford = budget // price
                if afford < n:
                    return False
                budget -= price * n
            need -= n
            if not need:
                return True
    return False
