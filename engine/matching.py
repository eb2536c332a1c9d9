"""The match loop: an incoming (taker) order against the opposite side, in price-then-time priority.

Written as one flat function with everything bound to locals: it is the hot path of the engine. Fills
always happen at the maker's price. Holds are settled per fill (see docs/engine.md, "Hold accounting").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.events import Canceled, Trade
from engine.fastevents import CanceledT, TradeT
from engine.order import Order
from engine.types import CancelReason, OrderStatus, Side, StpMode, TimeInForce

if TYPE_CHECKING:
    from engine.book import OrderBook

BUY = Side.BUY
FILLED = OrderStatus.FILLED
PARTIAL = OrderStatus.PARTIALLY_FILLED
CANCELED = OrderStatus.CANCELED
GTC = TimeInForce.GTC
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
    """Trade `o` while the opposite best price is within `limit` (None: any price).

    Mutates `o` (leaves, filled, hold, status) and the book, appends events. Returns why matching stopped
    early and the rest must be canceled (band, budget, self-trade), or None if it simply ran out of
    quantity or of acceptable liquidity.
    """
    is_buy = o.side is BUY
    if is_buy:
        levels, prices, changed, idx = book.asks, book.ask_prices, book.changed_asks, 0
    else:
        levels, prices, changed, idx = book.bids, book.bid_prices, book.changed_bids, -1
    orders = book.orders
    sym = book.symbol
    seq = book.seq
    append = events.append
    tid = o.order_id
    tacct = o.account
    stp = o.stp
    stp_on = stp is not STP_NONE
    leaves = o.leaves
    filled = o.filled
    hold = o.hold
    tprice = o.price  # None: market (or fired stop), priced by `limit` only
    budget = is_buy and hold is not None and tprice is None
    aggressor = o.side
    reason = None
    last = None

    while leaves and prices:
        best = prices[idx]
        if limit is not None and (best > limit if is_buy else best < limit):
            if tprice is None:
                reason = R_BAND  # a market order stopped by price protection, not by an empty book
            break
        level = levels[best]
        q = level.orders
        lqty = level.qty
        while q:
            m = q[0]
            ml = m.leaves
            if not ml:  # lazily deleted (canceled / replaced) entry
                q.popleft()
                level.dead -= 1
                continue
            if stp_on and m.account == tacct:
                if stp is STP_INCOMING:
                    reason = R_ST_INCOMING
                    break
                r = R_ST_RESTING if stp is STP_RESTING else R_ST_BOTH
                q.popleft()
                level.count -= 1
                lqty -= ml
                del orders[m.order_id]
                if m.tif is not GTC:
                    book.expirable.pop(m.order_id, None)
                mh = m.hold
                m.leaves = 0
                m.hold = 0 if mh is not None else None
                m.status = CANCELED
                seq += 1
                ev = CanceledT(
                    seq,
                    sym,
                    m.order_id,
                    m.account,
                    m.side,
                    r,
                    ml,
                    m.filled,
                    mh or 0 if not is_buy else 0,
                    mh or 0 if is_buy else 0,
                    ts,
                )
                ev.__class__ = Canceled
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
            filled += n
            ml -= n
            m.leaves = ml
            m.filled += n
            lqty -= n
            bre = sre = 0
            mh = m.hold
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
                    m.hold = mh
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
                    m.hold = mh
            if ml:
                mstatus = m.status = PARTIAL
            else:
                mstatus = m.status = FILLED
                q.popleft()
                level.count -= 1
                del orders[m.order_id]
                if m.tif is not GTC:
                    book.expirable.pop(m.order_id, None)
            seq += 1
            ev = TradeT(
                seq,
                sym,
                best,
                n,
                aggressor,
                m.order_id,
                tid,
                m.account,
                tacct,
                bre,
                mstatus,
                PARTIAL if leaves else FILLED,
                ml,
                leaves,
                ts,
                sre,
            )
            ev.__class__ = Trade
            append(ev)
            last = best
            if not leaves:
                break
        level.qty = lqty
        changed.add(best)
        if not level.count:
            del levels[best]
            prices.remove(best)
        if reason is not None:
            break

    book.seq = seq
    if last is not None:
        book.last_price = last
    o.leaves = leaves
    o.filled = filled
    o.hold = hold
    if filled:
        o.status = PARTIAL if leaves else FILLED
    return reason


def fillable(book: OrderBook, o: Order, limit: int | None) -> bool:
    """FOK check: could `o` fill completely right now (price, STP and budget respected)? Read-only."""
    is_buy = o.side is BUY
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
    need = o.leaves
    acct = o.account
    stp = o.stp
    stp_on = stp is not STP_NONE
    budget = o.hold if (is_buy and o.hold is not None and o.price is None) else None
    for price in walk:
        for m in levels[price].orders:
            ml = m.leaves
            if not ml:
                continue
            if stp_on and m.account == acct:
                if stp is STP_RESTING:
                    continue  # it would be canceled, providing nothing
                return False  # incoming (or both) would be canceled here
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
