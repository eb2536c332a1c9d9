"""OrderBook: one symbol's bids, asks and waiting stops; turns commands into events.

Layout: per side a dict price -> Level plus a SortedList of the occupied prices, with the best price
of each side cached (`best_bid`, `best_ask`). `orders` indexes every open order (book and stops) by id.
Matching is in engine.matching, stop bookkeeping in engine.stops, depth views in engine.depth, whole-
book state in engine.snapshot. Orders are lists indexed by the engine.order constants (see there why).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from operator import attrgetter

from sortedcontainers import SortedList

from engine.commands import Cancel, Expire, MassCancel, NewOrder, Replace, SetReference, Withdraw
from engine.depth import DepthSnapshot, depth_snapshot
from engine.events import Accepted, Canceled, Event, Reduced, Rejected, Replaced, Triggered
from engine.level import Level
from engine.matching import fillable, match
from engine.order import (
    ACCT,
    HOLD,
    LEAVES,
    OID,
    PRICE,
    QTY,
    SEQ,
    SIDE,
    TERMS,
    Order,
    RestingOrder,
    Terms,
    terms,
)
from engine.stops import StopBook
from engine.symbols import Instrument, price_band
from engine.types import CancelReason, OrderType, RejectReason, Side, StpMode, TimeInForce

BUY = Side.BUY
SELL = Side.SELL
LIMIT = OrderType.LIMIT
MARKET = OrderType.MARKET
STOP_MARKET = OrderType.STOP
STOP_LIMIT = OrderType.STOP_LIMIT
GTC = TimeInForce.GTC
DAY = TimeInForce.DAY
GTD = TimeInForce.GTD
IOC = TimeInForce.IOC
FOK = TimeInForce.FOK
R = RejectReason
C = CancelReason
C_USER = CancelReason.USER
_RESTING_TIFS = (GTC, DAY, GTD)
_STP_MODES = frozenset(StpMode)
_INT = int


class OrderBook:
    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.seq = 0  # last event seq; settable by a rebuild
        self.last_price: int | None = None
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        self.bid_prices: SortedList = SortedList()
        self.ask_prices: SortedList = SortedList()
        self.best_bid: int | None = None  # cached ends of bid_prices / ask_prices (hot path)
        self.best_ask: int | None = None
        self.orders: dict[int, Order] = {}  # every open order, resting or waiting stop
        self.stops = StopBook()
        # side tables for the two rarely set attributes, kept from acceptance until the order ends
        self.expiry: dict[int, int | None] = {}  # open DAY / GTD order id -> expire_at (None: next Expire)
        self.stop_prices: dict[int, int] = {}  # open stop / stop-limit order id -> stop price
        self.changed_bids: set[int] = set()  # prices whose L2 level changed since take_changes()
        self.changed_asks: set[int] = set()
        self.reference_price = instrument.reference_price
        self.band_low, self.band_high = price_band(self.reference_price, instrument.band_bps, instrument.tick)
        self._set_limits()
        self._dispatch: dict[type, Callable[..., list[Event]]] = {
            NewOrder: self.new_order,
            Cancel: self.cancel,
            MassCancel: self.mass_cancel,
            Replace: self.replace,
            Expire: self.expire,
            SetReference: self.set_reference,
            Withdraw: self.withdraw,
        }

    def apply(self, cmd: object) -> list[Event]:
        handler = self._dispatch.get(cmd.__class__)
        if handler is None:
            raise TypeError(f"not an engine command: {cmd!r}")
        return handler(cmd)

    def _set_limits(self) -> None:
        """Integer bounds for the new-order fast path: its checks become chained comparisons."""
        ins = self.instrument
        big = 1 << 62
        self._trivial = (
            ins.min_qty <= 1
            and ins.max_qty is None
            and ins.lot == 1
            and ins.tick == 1
            and ins.max_notional is None
            and self.band_low is None
        )
        self._limits = (
            max(1, ins.min_qty),
            big if ins.max_qty is None else ins.max_qty,
            ins.lot,
            max(1, self.band_low or 1),
            big if self.band_high is None else self.band_high,
            ins.tick,
            big * big if ins.max_notional is None else ins.max_notional,
        )

    # ------------------------------------------------------------------ new orders
    def new_order(self, c: NewOrder) -> list[Event]:
        # Fast paths for the plain orders that make up real flow: limit GTC/IOC and market IOC without
        # hold, post-only or stop price. Their checks are the general ones as chained comparisons (on a
        # "trivial" instrument — tick 1, lot 1, no limits, no band — only the ones that can fail). Any
        # failed check, and every other order, goes through _new_general, which re-checks everything.
        if c.hold is None and not c.post_only and c.stop_price is None:
            typ = c.type
            qty = c.qty
            price = c.price
            if self._trivial:
                if qty.__class__ is not _INT or qty <= 0 or c.order_id in self.orders:
                    return self._new_general(c)
                if typ is LIMIT and (price.__class__ is not _INT or price <= 0):
                    return self._new_general(c)
            else:
                minq, maxq, lot, lo, hi, tick, maxnot = self._limits
                if (
                    qty.__class__ is not _INT
                    or not minq <= qty <= maxq
                    or qty % lot
                    or c.order_id in self.orders
                ):
                    return self._new_general(c)
                if typ is LIMIT and (
                    price.__class__ is not _INT
                    or not lo <= price <= hi
                    or price % tick
                    or price * qty > maxnot
                ):
                    return self._new_general(c)
            if typ is LIMIT:
                tif = c.tif
                if tif is GTC:
                    stp = c.stp
                    t = _DEFAULT_GTC if stp is STP_DEFAULT else _PLAIN_GTC.get(stp)
                    side = c.side
                    if t is None:
                        return self._new_general(c)
                    if side is BUY:
                        best = self.best_ask
                        if best is not None and price >= best:
                            return self._new_plain(c, t)
                        level = self.bids.get(price)
                        if level is None:
                            level = self.bids[price] = Level(price)
                            self.bid_prices.add(price)
                            if self.best_bid is None or price > self.best_bid:
                                self.best_bid = price
                        else:
                            price = level.price  # one shared int object per level (memory)
                        self.changed_bids.add(price)
                    elif side is SELL:
                        best = self.best_bid
                        if best is not None and price <= best:
                            return self._new_plain(c, t)
                        level = self.asks.get(price)
                        if level is None:
                            level = self.asks[price] = Level(price)
                            self.ask_prices.add(price)
                            if self.best_ask is None or price < self.best_ask:
                                self.best_ask = price
                        else:
                            price = level.price
                        self.changed_asks.add(price)
                    else:
                        return self._new_general(c)
                    # a passive order: straight onto its level
                    seq = self.seq = self.seq + 1
                    oid = c.order_id
                    acct = c.account
                    o = [oid, acct, side, price, qty, qty, None, seq, t]
                    level.orders.append(o)
                    level.qty += qty
                    level.count += 1
                    self.orders[oid] = o
                    return [
                        Accepted(seq, self.symbol, oid, acct, side, LIMIT, GTC, qty, price, None, True, c.ts)
                    ]
                if tif is IOC:
                    t = _PLAIN_IOC.get(c.stp)
                    if t is not None and (c.side is BUY or c.side is SELL):
                        return self._new_plain(c, t)
            elif typ is MARKET and c.tif is IOC and price is None:
                t = _MARKET_IOC.get(c.stp)
                if t is not None and (c.side is BUY or c.side is SELL):
                    return self._new_plain(c, t)
        return self._new_general(c)

    def _new_plain(self, c: NewOrder, t: Terms) -> list[Event]:
        """A valid plain order that may trade: no side tables, no stop, no FOK."""
        seq = self.seq = self.seq + 1
        o = [c.order_id, c.account, c.side, c.price, c.qty, c.qty, None, seq, t]
        events: list = [None]
        ts = c.ts
        rested = self._execute(o, events, ts)
        ev = Accepted(seq, self.symbol, c.order_id, c.account, c.side, t.type, t.tif, c.qty, c.price, None,
                       rested, ts)  # fmt: skip
        events[0] = ev
        return events

    def _check_new(self, c: NewOrder) -> RejectReason | None:
        """Every reason a new order is refused before it touches the book; None when it is valid."""
        ins = self.instrument
        qty = c.qty
        typ = c.type
        tif = c.tif
        price = c.price
        stop = c.stop_price
        if c.side is not BUY and c.side is not SELL:
            return R.INVALID_SIDE
        if qty.__class__ is not _INT or qty <= 0 or qty < ins.min_qty:
            return R.INVALID_QTY
        if ins.max_qty is not None and qty > ins.max_qty:
            return R.INVALID_QTY
        if qty % ins.lot:
            return R.OFF_LOT
        if typ is LIMIT or typ is STOP_LIMIT:
            if price.__class__ is not _INT or price <= 0:
                return R.INVALID_PRICE
            if price % ins.tick:
                return R.OFF_TICK
            lo = self.band_low
            if lo is not None and not lo <= price <= self.band_high:
                return R.OUTSIDE_BAND
            if ins.max_notional is not None and price * qty > ins.max_notional:
                return R.MAX_NOTIONAL
        elif typ is MARKET or typ is STOP_MARKET:
            if price is not None:
                return R.INVALID_PRICE
        else:
            return R.INVALID_TYPE
        if typ is STOP_MARKET or typ is STOP_LIMIT:
            if stop.__class__ is not _INT or stop <= 0:
                return R.INVALID_PRICE
            if stop % ins.tick:
                return R.OFF_TICK
            if tif not in _RESTING_TIFS:
                return R.INVALID_TIF
        elif stop is not None:
            return R.INVALID_PRICE
        if tif not in _RESTING_TIFS and tif is not IOC and tif is not FOK:
            return R.INVALID_TIF
        if typ is MARKET and tif is not IOC and tif is not FOK:
            return R.INVALID_TIF
        if tif is GTD and c.expire_at.__class__ is not _INT:
            return R.INVALID_TIF
        if c.post_only and (typ is not LIMIT or tif is IOC or tif is FOK):
            return R.INVALID_TIF
        if c.stp not in _STP_MODES:
            return R.INVALID_STP
        if c.order_id in self.orders:
            return R.DUPLICATE_ORDER_ID
        hold = c.hold
        if hold is not None:
            if hold.__class__ is not _INT:
                return R.INSUFFICIENT_HOLD
            if c.side is BUY:
                if price is not None:
                    if hold < price * qty:
                        return R.INSUFFICIENT_HOLD
                elif hold <= 0:
                    return R.INSUFFICIENT_HOLD
            elif hold < qty:
                return R.INSUFFICIENT_HOLD
        return None

    def _new_general(self, c: NewOrder) -> list[Event]:
        reason = self._check_new(c)
        if reason is None and c.post_only and self._crosses(c.side is BUY, c.price):
            reason = R.POST_ONLY_WOULD_TAKE
        if reason is not None:
            self.seq += 1
            h = c.hold if c.hold.__class__ is _INT else 0
            buy = c.side is BUY
            ev = Rejected(self.seq, self.symbol, c.order_id, c.account, reason, h if buy else 0,
                           0 if buy else h, c.ts)  # fmt: skip
            return [ev]
        ts = c.ts
        typ = c.type
        seq = self.seq = self.seq + 1  # the Accepted event's seq: the order's time priority
        t = terms(typ, c.tif, c.stp, c.post_only)
        o = [c.order_id, c.account, c.side, c.price, c.qty, c.qty, c.hold, seq, t]
        if c.tif is DAY or c.tif is GTD:
            self.expiry[c.order_id] = c.expire_at
        if c.stop_price is not None:
            self.stop_prices[c.order_id] = c.stop_price
        events: list = [None]  # Accepted goes first but says whether the order rested: filled in last
        if typ is STOP_MARKET or typ is STOP_LIMIT:
            self._park(o)
            events[0] = self._accepted(o, True, ts)
            if self.last_price is not None:
                self._run_stops(events, ts)
            return events
        rested = self._execute(o, events, ts)
        events[0] = self._accepted(o, rested, ts)
        return events

    def _accepted(self, o: Order, resting: bool, ts: int) -> Accepted:
        t: Terms = o[TERMS]
        ev = Accepted(o[SEQ], self.symbol, o[OID], o[ACCT], o[SIDE], t.type, t.tif, o[QTY], o[PRICE],
                       self.stop_prices.get(o[OID]), resting, ts)  # fmt: skip
        return ev

    def _execute(self, o: Order, events: list, ts: int) -> bool:
        """Match a new, fired or replaced order; rest or cancel its remainder. True if it rests."""
        is_buy = o[SIDE] is BUY
        price = o[PRICE]
        tif = o[TERMS].tif
        limit = (self.band_high if is_buy else self.band_low) if price is None else price
        if tif is FOK and not fillable(self, o, limit):
            self._cancel(o, C.FOK_UNFILLED, events, ts)
            return False
        reason = None
        traded = False
        best = self.best_ask if is_buy else self.best_bid
        if best is not None and (limit is None or (best <= limit if is_buy else best >= limit)):
            reason = match(self, o, limit, events, ts)
            traded = True
        elif price is None and best is not None:
            reason = C.BAND  # liquidity exists, but only beyond the band
        rested = False
        if o[LEAVES]:
            if reason is not None:
                self._cancel(o, reason, events, ts)
            elif price is None or tif is IOC or tif is FOK:
                self._cancel(o, C.IOC_REMAINDER, events, ts)
            else:
                self._rest(o)
                rested = True
        if not o[LEAVES] and (self.expiry or self.stop_prices):
            self._forget(o[OID])
        if traded and self.stops.by_id:
            self._run_stops(events, ts)
        return rested

    def _crosses(self, is_buy: bool, price: int) -> bool:
        if is_buy:
            return self.best_ask is not None and self.best_ask <= price
        return self.best_bid is not None and self.best_bid >= price

    # ------------------------------------------------------------------ book and stop placement
    def _rest(self, o: Order) -> None:
        price = o[PRICE]
        if o[SIDE] is BUY:
            levels, changed = self.bids, self.changed_bids
            level = levels.get(price)
            if level is None:
                level = levels[price] = Level(price)
                self.bid_prices.add(price)
                if self.best_bid is None or price > self.best_bid:
                    self.best_bid = price
        else:
            levels, changed = self.asks, self.changed_asks
            level = levels.get(price)
            if level is None:
                level = levels[price] = Level(price)
                self.ask_prices.add(price)
                if self.best_ask is None or price < self.best_ask:
                    self.best_ask = price
        o[PRICE] = level.price  # one shared int object per level (memory)
        level.orders.append(o)
        level.qty += o[LEAVES]
        level.count += 1
        changed.add(price)
        self.orders[o[OID]] = o

    def _park(self, o: Order) -> None:
        """A stop order waits off the book until the last trade price reaches its stop price."""
        self.stops.add(o, self.stop_prices[o[OID]])
        self.orders[o[OID]] = o

    def _forget(self, oid: int) -> None:
        """The order ended (canceled, expired or filled): drop its side-table entries."""
        if self.expiry:
            self.expiry.pop(oid, None)
        if self.stop_prices:
            self.stop_prices.pop(oid, None)

    def _drop_level(self, side: Side, price: int) -> None:
        if side is BUY:
            del self.bids[price]
            self.bid_prices.remove(price)
            if price == self.best_bid:
                self.best_bid = self.bid_prices[-1] if self.bids else None
        else:
            del self.asks[price]
            self.ask_prices.remove(price)
            if price == self.best_ask:
                self.best_ask = self.ask_prices[0] if self.asks else None

    def _unrest(self, o: Order) -> None:
        """Take a resting order off its level (lazily: the queue entry dies when LEAVES is zeroed)."""
        price = o[PRICE]
        if o[SIDE] is BUY:
            level, changed = self.bids[price], self.changed_bids
        else:
            level, changed = self.asks[price], self.changed_asks
        level.qty -= o[LEAVES]
        level.count -= 1
        changed.add(price)
        if not level.count:
            self._drop_level(o[SIDE], price)
        else:
            level.dead += 1
            if level.dead > 64 and level.dead > 2 * level.count:
                level.compact(o)

    def _close(self, o: Order) -> None:
        """Remove an open order from every index (book level or stop list). Leaves are untouched."""
        oid = o[OID]
        if oid in self.stops.by_id:
            self.stops.remove(o, self.stop_prices[oid])
        else:
            self._unrest(o)
        del self.orders[oid]

    def _cancel(self, o: Order, reason: CancelReason, events: list, ts: int) -> None:
        """Emit Canceled for the rest of `o` (already off the book) and release its hold."""
        leaves = o[LEAVES]
        h = o[HOLD]
        o[LEAVES] = 0
        if self.expiry or self.stop_prices:
            self._forget(o[OID])
        if h is not None:
            o[HOLD] = 0
        else:
            h = 0
        self.seq += 1
        buy = o[SIDE] is BUY
        ev = Canceled(self.seq, self.symbol, o[OID], o[ACCT], o[SIDE], reason, leaves, o[QTY] - leaves,
                       h if buy else 0, 0 if buy else h, ts)  # fmt: skip
        events.append(ev)

    # ------------------------------------------------------------------ cancels
    def cancel(self, c: Cancel) -> list[Event]:
        oid = c.order_id
        o = self.orders.get(oid)
        if o is None:
            return self._reject_change(c, R.UNKNOWN_ORDER, 0, None)
        if o[ACCT] != c.account:
            return self._reject_change(c, R.NOT_OWNER, 0, o)
        # inlined _close + _cancel for a resting order: a third of the reference flow is cancels
        leaves = o[LEAVES]
        side = o[SIDE]
        stops = self.stops.by_id
        if stops and oid in stops:
            self.stops.remove(o, self.stop_prices[oid])
        else:
            price = o[PRICE]
            if side is BUY:
                level = self.bids[price]
                self.changed_bids.add(price)
            else:
                level = self.asks[price]
                self.changed_asks.add(price)
            level.qty -= leaves
            level.count -= 1
            if not level.count:
                self._drop_level(side, price)
            else:
                level.dead += 1
                if level.dead > 64 and level.dead > 2 * level.count:
                    o[LEAVES] = 0
                    level.compact()
        del self.orders[oid]
        if self.expiry or self.stop_prices:
            self._forget(oid)
        o[LEAVES] = 0
        h = o[HOLD]
        seq = self.seq = self.seq + 1
        if h is None:
            ev = Canceled(seq, self.symbol, oid, o[ACCT], side, C_USER, leaves, o[QTY] - leaves, 0, 0, c.ts)
        else:
            o[HOLD] = 0
            buy = side is BUY
            ev = Canceled(seq, self.symbol, oid, o[ACCT], side, C_USER, leaves, o[QTY] - leaves,
                           h if buy else 0, 0 if buy else h, c.ts)  # fmt: skip
        return [ev]

    def withdraw(self, c: Withdraw) -> list[Event]:
        """Cancel a NewOrder in place of applying it: nothing rests, nothing trades, the hold goes back.
        If the book already has the order (its NewOrder came first), this is a plain cancel."""
        o = c.order
        if o.order_id in self.orders:
            return self.cancel(Cancel(o.order_id, o.account, o.symbol, o.ts))
        self.seq += 1
        hold = o.hold or 0
        buy = o.side is BUY
        return [Canceled(self.seq, self.symbol, o.order_id, o.account, o.side, C_USER, o.qty, 0,
                         hold if buy else 0, 0 if buy else hold, o.ts)]  # fmt: skip

    def _reject_change(self, c: Cancel | Replace | MassCancel, reason: RejectReason, extra: int,
                       o: Order | None) -> list[Event]:  # fmt: skip
        """Reject a cancel / replace / mass cancel; a replace's extra hold goes back (cash for a buy)."""
        self.seq += 1
        buy = o is not None and o[SIDE] is BUY
        oid = getattr(c, "order_id", None)
        return [Rejected(self.seq, self.symbol, oid, c.account, reason, extra if buy else 0,
                     0 if buy else extra, c.ts)]  # fmt: skip

    def mass_cancel(self, c: MassCancel) -> list[Event]:
        events = self.cancel_account(c.account, c.ts)
        return events or self._reject_change(c, R.UNKNOWN_ORDER, 0, None)

    def cancel_account(self, account: int, ts: int) -> list[Event]:
        """Cancel every open order (stops included) of `account`, in priority (seq) order."""
        return self._cancel_in_seq_order(
            (o for o in self.orders.values() if o[ACCT] == account), C.MASS_CANCEL, ts
        )

    def expire(self, c: Expire) -> list[Event]:
        """Expire GTD orders with expire_at <= now, and DAY orders (at their expire_at if they carry one,
        else at any Expire: the end-of-day job sends it at the close)."""
        now = c.now
        orders = self.orders
        due = (orders[oid] for oid, t in self.expiry.items() if t is None or t <= now)
        return self._cancel_in_seq_order(due, C.EXPIRED, now)

    def _cancel_in_seq_order(self, orders: Iterable[Order], reason: CancelReason, ts: int) -> list[Event]:
        """Take `orders` off the book and cancel them in priority (seq) order, so the events are
        deterministic whatever order the caller found them in."""
        events: list = []
        for o in sorted(orders, key=_by_seq):
            self._close(o)
            self._cancel(o, reason, events, ts)
        return events

    def set_reference(self, c: SetReference) -> list[Event]:
        """New reference price, new band. No event: the band is configuration, not book state."""
        self.reference_price = c.price
        self.band_low, self.band_high = price_band(c.price, self.instrument.band_bps, self.instrument.tick)
        self._set_limits()
        return []

    # ------------------------------------------------------------------ replace / reduce
    def replace(self, c: Replace) -> list[Event]:
        extra = c.extra_hold
        o = self.orders.get(c.order_id)
        if o is None:
            return self._reject_change(c, R.UNKNOWN_ORDER, extra, None)
        if o[ACCT] != c.account:
            return self._reject_change(c, R.NOT_OWNER, extra, o)
        reason = self._check_replace(c, o)
        if reason is not None:
            return self._reject_change(c, reason, extra, o)
        waiting = o[OID] in self.stops.by_id
        qty = o[QTY] if c.qty is None else c.qty
        price = o[PRICE] if c.price is None else c.price
        old_stop = self.stop_prices.get(o[OID])
        stop = old_stop if c.stop_price is None else c.stop_price
        leaves = qty - (o[QTY] - o[LEAVES])
        buy = o[SIDE] is BUY
        hold = o[HOLD]
        if hold is not None:
            avail = hold + extra
            # a buy needs its limit cost, a stop buy keeps it all as budget; a sell needs its shares
            need = (avail if price is None else price * leaves) if buy else leaves
            if avail < need or avail <= 0:
                return self._reject_change(c, R.INSUFFICIENT_HOLD, extra, o)
            released = avail - need
            hold = need
        else:
            released = extra
        ts = c.ts
        if price == o[PRICE] and stop == old_stop and qty < o[QTY]:
            # reduce: keeps its place in the queue
            if not waiting:
                p = o[PRICE]
                (self.bids if buy else self.asks)[p].qty -= o[LEAVES] - leaves
                (self.changed_bids if buy else self.changed_asks).add(p)
            o[QTY] = qty
            o[LEAVES] = leaves
            o[HOLD] = hold
            self.seq += 1
            return [Reduced(self.seq, self.symbol, o[OID], o[ACCT], qty, leaves,
                         released if buy else 0, 0 if buy else released, ts)]  # fmt: skip
        if o[TERMS].post_only and self._crosses(buy, price):
            return self._reject_change(c, R.POST_ONLY_WOULD_TAKE, extra, o)
        # replace: loses priority. A fresh list, so the old queue entry simply dies.
        self._close(o)
        o[LEAVES] = 0
        self.seq += 1
        n = [o[OID], o[ACCT], o[SIDE], price, qty, leaves, hold, self.seq, o[TERMS]]
        if stop is not None:
            self.stop_prices[n[OID]] = stop
        events: list = [
            Replaced(self.seq, self.symbol, n[OID], n[ACCT], qty, price, stop, leaves,
                 released if buy else 0, 0 if buy else released, ts)
        ]  # fmt: skip
        if waiting:
            self._park(n)
            if self.last_price is not None:
                self._run_stops(events, ts)
        else:
            self._execute(n, events, ts)
        return events

    def _check_replace(self, c: Replace, o: Order) -> RejectReason | None:
        ins = self.instrument
        waiting = o[OID] in self.stops.by_id
        if (c.price is not None and o[PRICE] is None) or (c.stop_price is not None and not waiting):
            return R.INVALID_REPLACE
        if c.extra_hold.__class__ is not _INT or c.extra_hold < 0:
            return R.INVALID_REPLACE
        qty = o[QTY] if c.qty is None else c.qty
        price = o[PRICE] if c.price is None else c.price
        old_stop = self.stop_prices.get(o[OID])
        stop = old_stop if c.stop_price is None else c.stop_price
        if qty.__class__ is not _INT or qty <= 0 or qty < ins.min_qty:
            return R.INVALID_QTY
        if ins.max_qty is not None and qty > ins.max_qty:
            return R.INVALID_QTY
        if qty % ins.lot:
            return R.OFF_LOT
        if qty <= o[QTY] - o[LEAVES]:
            return R.INVALID_REPLACE  # not above what is already filled
        if c.price is not None and price != o[PRICE]:
            if price.__class__ is not _INT or price <= 0:
                return R.INVALID_PRICE
            if price % ins.tick:
                return R.OFF_TICK
            if self.band_low is not None and not self.band_low <= price <= self.band_high:
                return R.OUTSIDE_BAND
        if price is not None and ins.max_notional is not None and price * qty > ins.max_notional:
            return R.MAX_NOTIONAL
        if c.stop_price is not None and stop != old_stop:
            if stop.__class__ is not _INT or stop <= 0:
                return R.INVALID_PRICE
            if stop % ins.tick:
                return R.OFF_TICK
        if qty == o[QTY] and price == o[PRICE] and stop == old_stop:
            return R.INVALID_REPLACE  # nothing changes
        return None

    # ------------------------------------------------------------------ stops
    def _run_stops(self, events: list, ts: int) -> None:
        """Fire every stop the last price has reached, earliest seq first; each may trade and fire more."""
        stops = self.stops
        while stops.by_id and self.last_price is not None:
            o = stops.next_fired(self.last_price)
            if o is None:
                return
            stops.remove(o, self.stop_prices[o[OID]])
            del self.orders[o[OID]]
            self.seq += 1
            o[SEQ] = self.seq  # a fired stop-limit that rests has the Triggered event's priority
            events.append(Triggered(self.seq, self.symbol, o[OID], o[ACCT], self.last_price, ts))
            self._execute(o, events, ts)

    # ------------------------------------------------------------------ inspection
    def get_order(self, order_id: int) -> RestingOrder | None:
        """A copy of an open order's state (filled, leaves, hold_remaining, status); None if not open."""
        o = self.orders.get(order_id)
        return None if o is None else self._resting(o)

    def _resting(self, o: Order) -> RestingOrder:
        oid = o[OID]
        stop = self.stop_prices.get(oid)
        fired = stop is not None and oid not in self.stops.by_id
        return RestingOrder.of(o, stop, self.expiry.get(oid), fired)

    def open_orders(self) -> list[RestingOrder]:
        """Every open order in engine-seq order: what settlement keeps and a rebuild loads."""
        return [self._resting(o) for o in sorted(self.orders.values(), key=_by_seq)]

    def level_orders(self, side: Side, price: int) -> list[RestingOrder]:
        """Open orders at one price, in queue order."""
        level = (self.bids if side is BUY else self.asks).get(price)
        return [] if level is None else [self._resting(o) for o in level.live()]

    def stop_orders(self) -> list[RestingOrder]:
        """Waiting stops: buys then sells, each by (stop price, seq)."""
        return [self._resting(o) for o in self.stops]

    def take_changes(self) -> list[tuple[Side, int, int, int]]:
        """L2 levels changed since the last call: (side, price, total qty, order count), absolute
        sizes, 0/0 for a removed level; bids then asks, by price. Stamp them with `self.seq`."""
        out: list[tuple[Side, int, int, int]] = []
        for side, changed, levels in (
            (BUY, self.changed_bids, self.bids),
            (SELL, self.changed_asks, self.asks),
        ):
            for price in sorted(changed):
                level = levels.get(price)
                out.append((side, price, level.qty, level.count) if level else (side, price, 0, 0))
            changed.clear()
        return out

    def depth(self, n: int = 10) -> DepthSnapshot:
        return depth_snapshot(self, n)

    # ------------------------------------------------------------------ state
    def load_resting(self, orders: Iterable[RestingOrder], seq: int | None = None,
                     last_price: int | None = None) -> None:  # fmt: skip
        """Rebuild: load open orders (in any order: sorted by engine seq here) into this empty book.
        Each keeps its seq, filled, leaves and hold, so the state hash equals the live book's.
        Inlined level building: this is the crash-recovery path, 1M orders must take seconds."""
        if self.orders:
            raise ValueError("load_resting needs an empty book")
        # a million new lists would trigger full cyclic-GC passes over the growing book (they find no
        # garbage here): pause the collector for the load, restoring its previous state
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._load(orders)
        finally:
            if was_enabled:
                gc.enable()
        top = max((o[SEQ] for o in self.orders.values()), default=0)
        self.seq = max(self.seq, top) if seq is None else seq
        if last_price is not None:
            self.last_price = last_price
        self.changed_bids.clear()
        self.changed_asks.clear()

    def _load(self, orders: Iterable[RestingOrder]) -> None:
        rows = sorted(orders, key=_seq_attr)
        all_orders = self.orders
        expiry = self.expiry
        stop_prices = self.stop_prices
        cache: dict[tuple, Terms] = {}
        sides = ((self.bids, self.bid_prices), (self.asks, self.ask_prices))
        new_levels: tuple[list[int], list[int]] = ([], [])
        for r in rows:
            key = (r.type, r.tif, r.stp, r.post_only)
            t = cache.get(key)
            if t is None:
                t = cache[key] = terms(*key)
            if r.filled != r.qty - r.leaves or r.leaves <= 0:
                raise ValueError(f"order {r.order_id}: needs leaves > 0 and filled == qty - leaves")
            oid = r.order_id
            o = [oid, r.account, r.side, r.price, r.qty, r.leaves, r.hold_remaining, r.seq, t]
            if r.tif is DAY or r.tif is GTD:
                expiry[oid] = r.expire_at
            if r.stop_price is not None:
                stop_prices[oid] = r.stop_price
                if not r.triggered:
                    self._park(o)
                    continue
            is_sell = r.side is not BUY
            levels = sides[is_sell][0]
            price = r.price
            level = levels.get(price)
            if level is None:
                level = levels[price] = Level(price)
                new_levels[is_sell].append(price)
            o[PRICE] = level.price
            level.orders.append(o)
            level.qty += o[LEAVES]
            level.count += 1
            all_orders[oid] = o
        for (_levels, prices), added in zip(sides, new_levels, strict=True):
            prices.update(added)
        self.best_bid = self.bid_prices[-1] if self.bids else None
        self.best_ask = self.ask_prices[0] if self.asks else None

    def state_hash(self) -> str:
        from engine.snapshot import state_hash

        return state_hash(self)


def _by_seq(o: Order) -> int:
    return o[SEQ]


_seq_attr = attrgetter("seq")


_PLAIN_GTC = {stp: terms(LIMIT, GTC, stp, False) for stp in StpMode}
STP_DEFAULT = StpMode.CANCEL_RESTING
_DEFAULT_GTC = _PLAIN_GTC[STP_DEFAULT]
_PLAIN_IOC = {stp: terms(LIMIT, IOC, stp, False) for stp in StpMode}
_MARKET_IOC = {stp: terms(MARKET, IOC, stp, False) for stp in StpMode}
