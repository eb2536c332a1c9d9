"""OrderBook: one symbol's bids, asks and waiting stops; turns commands into events.

Layout: per side a dict price -> Level plus a SortedList of the occupied prices (best ask = first,
best bid = last). `orders` indexes every open order (book and stops) by id. Matching is in
engine.matching, stop bookkeeping in engine.stops, depth views in engine.depth, state in engine.snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sortedcontainers import SortedList

from engine.commands import Cancel, Expire, MassCancel, NewOrder, Replace, SetReference
from engine.events import Accepted, Canceled, Event, Reduced, Rejected, Replaced, Triggered
from engine.fastevents import AcceptedT, CanceledT, RejectedT, make
from engine.level import Level
from engine.matching import fillable, match
from engine.order import Order, RestingOrder
from engine.stops import StopBook
from engine.symbols import Instrument, price_band
from engine.types import CancelReason, OrderStatus, OrderType, RejectReason, Side, StpMode, TimeInForce

BUY = Side.BUY
SELL = Side.SELL
LIMIT = OrderType.LIMIT
MARKET = OrderType.MARKET
STOP = OrderType.STOP
STOP_LIMIT = OrderType.STOP_LIMIT
GTC = TimeInForce.GTC
DAY = TimeInForce.DAY
GTD = TimeInForce.GTD
IOC = TimeInForce.IOC
FOK = TimeInForce.FOK
NEW = OrderStatus.NEW
CANCELED = OrderStatus.CANCELED
EXPIRED = OrderStatus.EXPIRED
R = RejectReason
C = CancelReason
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
        self.orders: dict[int, Order] = {}  # every open order, resting or waiting stop
        self.stops = StopBook()
        self.expirable: dict[int, Order] = {}  # open DAY / GTD orders
        self.changed_bids: set[int] = set()  # prices whose L2 level changed since take_changes()
        self.changed_asks: set[int] = set()
        self.reference_price = instrument.reference_price
        self.band_low, self.band_high = price_band(self.reference_price, instrument.band_bps, instrument.tick)
        self._dispatch: dict[type, Callable[..., list[Event]]] = {
            NewOrder: self.new_order,
            Cancel: self.cancel,
            MassCancel: self.mass_cancel,
            Replace: self.replace,
            Expire: self.expire,
            SetReference: self.set_reference,
        }

    # ------------------------------------------------------------------ commands
    def apply(self, cmd: object) -> list[Event]:
        handler = self._dispatch.get(cmd.__class__)
        if handler is None:
            raise TypeError(f"not an engine command: {cmd!r}")
        return handler(cmd)

    def _reject(self, c: NewOrder, reason: RejectReason) -> list[Event]:
        """Reject a new order; its whole hold goes back (cash for a buy, shares for a sell)."""
        self.seq += 1
        h = c.hold if c.hold.__class__ is _INT else 0
        buy = c.side is BUY
        ev = RejectedT(
            self.seq, self.symbol, c.order_id, c.account, reason, h if buy else 0, 0 if buy else h, c.ts
        )
        ev.__class__ = Rejected
        return [ev]

    def _check_new(self, c: NewOrder) -> RejectReason | None:
        """Every reason a new order is refused before it touches the book; None when it is valid."""
        ins = self.instrument
        qty = c.qty
        typ = c.type
        tif = c.tif
        price = c.price
        stop = c.stop_price
        if qty.__class__ is not _INT or qty <= 0 or qty < ins.min_qty:
            return R.INVALID_QTY
        if ins.max_qty is not None and qty > ins.max_qty:
            return R.INVALID_QTY
        if qty % ins.lot:
            return R.OFF_LOT
        if c.side is not BUY and c.side is not SELL:
            return R.INVALID_SIDE
        if typ is LIMIT or typ is STOP_LIMIT:
            if price.__class__ is not _INT or price <= 0:
                return R.INVALID_PRICE
            if price % ins.tick:
                return R.OFF_TICK
            lo = self.band_low
            if lo is not None and (price < lo or price > self.band_high):
                return R.OUTSIDE_BAND
            if ins.max_notional is not None and price * qty > ins.max_notional:
                return R.MAX_NOTIONAL
        elif typ is MARKET or typ is STOP:
            if price is not None:
                return R.INVALID_PRICE
        else:
            return R.INVALID_TYPE
        if typ is STOP or typ is STOP_LIMIT:
            if stop.__class__ is not _INT or stop <= 0:
                return R.INVALID_PRICE
            if stop % ins.tick:
                return R.OFF_TICK
            if tif not in _RESTING_TIFS:
                return R.INVALID_TIF
        elif stop is not None:
            return R.INVALID_PRICE
        if typ is MARKET and tif is not IOC and tif is not FOK:
            return R.INVALID_TIF
        if tif is GTD and c.expire_at is None:
            return R.INVALID_TIF
        if tif not in _RESTING_TIFS and tif is not IOC and tif is not FOK:
            return R.INVALID_TIF
        if c.post_only and (typ is not LIMIT or tif is IOC or tif is FOK):
            return R.INVALID_TIF
        if c.stp not in _STP_MODES:
            return R.INVALID_STP
        if c.order_id in self.orders:
            return R.DUPLICATE_ORDER_ID
        hold = c.hold
        if hold is not None:
            if c.side is BUY:
                if price is not None:
                    if hold < price * qty:
                        return R.INSUFFICIENT_HOLD
                elif hold <= 0:
                    return R.INSUFFICIENT_HOLD
            elif hold < qty:
                return R.INSUFFICIENT_HOLD
        return None

    def new_order(self, c: NewOrder) -> list[Event]:
        reason = self._check_new(c)
        if reason is not None:
            return self._reject(c, reason)
        side = c.side
        typ = c.type
        price = c.price
        is_buy = side is BUY
        if c.post_only and self._crosses(is_buy, price):
            return self._reject(c, R.POST_ONLY_WOULD_TAKE)
        ts = c.ts
        seq = self.seq = self.seq + 1  # the Accepted event's seq: the order's time priority
        o = Order(
            c.order_id,
            c.account,
            side,
            typ,
            c.tif,
            price,
            c.stop_price,
            c.qty,
            0,
            c.qty,
            c.hold,
            seq,
            c.expire_at,
            c.stp,
            c.post_only,
            NEW,
        )
        events: list = [None]  # Accepted goes first but says whether the order rested: filled in last
        if typ is STOP or typ is STOP_LIMIT:
            self.stops.add(o)
            self.orders[o.order_id] = o
            if o.tif is not GTC:
                self.expirable[o.order_id] = o
            events[0] = self._accepted(o, True, ts)
            if self.last_price is not None:
                self._run_stops(events, ts)
            return events
        rested = self._execute(o, events, ts)
        events[0] = self._accepted(o, rested, ts)
        return events

    def _accepted(self, o: Order, resting: bool, ts: int) -> Accepted:
        ev = AcceptedT(
            o.seq, self.symbol, o.order_id, o.account, o.side, o.type, o.tif, o.qty, o.price, o.stop_price,
            resting, ts,
        )  # fmt: skip
        ev.__class__ = Accepted
        return ev

    def _execute(self, o: Order, events: list, ts: int) -> bool:
        """Match a new, fired or replaced order; rest or cancel its remainder. True if it rests."""
        is_buy = o.side is BUY
        price = o.price
        limit = (self.band_high if is_buy else self.band_low) if price is None else price
        if o.tif is FOK and not fillable(self, o, limit):
            self._cancel(o, C.FOK_UNFILLED, events, ts)
            return False
        reason = None
        traded = False
        if is_buy:
            if self.ask_prices and (limit is None or self.ask_prices[0] <= limit):
                reason = match(self, o, limit, events, ts)
                traded = True
        elif self.bid_prices and (limit is None or self.bid_prices[-1] >= limit):
            reason = match(self, o, limit, events, ts)
            traded = True
        rested = False
        if o.leaves:
            if reason is not None:
                self._cancel(o, reason, events, ts)
            elif price is None or o.tif is IOC or o.tif is FOK:
                self._cancel(o, C.IOC_REMAINDER, events, ts)
            else:
                self._rest(o)
                rested = True
        if traded and self.stops.by_id:
            self._run_stops(events, ts)
        return rested

    def _crosses(self, is_buy: bool, price: int) -> bool:
        if is_buy:
            return bool(self.ask_prices) and self.ask_prices[0] <= price
        return bool(self.bid_prices) and self.bid_prices[-1] >= price

    def _rest(self, o: Order) -> None:
        price = o.price
        if o.side is BUY:
            levels, prices, changed = self.bids, self.bid_prices, self.changed_bids
        else:
            levels, prices, changed = self.asks, self.ask_prices, self.changed_asks
        level = levels.get(price)
        if level is None:
            level = levels[price] = Level(price)
            prices.add(price)
        else:
            o.price = level.price  # share one int object per price level (memory)
        level.orders.append(o)
        level.qty += o.leaves
        level.count += 1
        changed.add(price)
        self.orders[o.order_id] = o
        if o.tif is not GTC:
            self.expirable[o.order_id] = o

    def _unrest(self, o: Order) -> None:
        """Take a resting order off its level (lazily: its queue entry dies when leaves is zeroed)."""
        price = o.price
        if o.side is BUY:
            levels, prices, changed = self.bids, self.bid_prices, self.changed_bids
        else:
            levels, prices, changed = self.asks, self.ask_prices, self.changed_asks
        level = levels[price]
        level.qty -= o.leaves
        level.count -= 1
        changed.add(price)
        if not level.count:
            del levels[price]
            prices.remove(price)
        else:
            level.dead += 1
            if level.dead > 16 and level.dead > level.count:
                o.leaves = 0
                level.compact()

    def _close(self, o: Order) -> None:
        """Remove an open order from every index (book level or stop list)."""
        oid = o.order_id
        if oid in self.stops.by_id:
            self.stops.remove(o)
        elif oid in self.orders:
            self._unrest(o)
        self.orders.pop(oid, None)
        if o.tif is not GTC:
            self.expirable.pop(oid, None)

    def _cancel(self, o: Order, reason: CancelReason, events: list, ts: int) -> None:
        """Emit Canceled for the rest of `o` (already off the book) and release its hold."""
        leaves = o.leaves
        h = o.hold or 0
        o.leaves = 0
        if o.hold is not None:
            o.hold = 0
        o.status = EXPIRED if reason is C.EXPIRED else CANCELED
        self.seq += 1
        buy = o.side is BUY
        ev = CanceledT(
            self.seq, self.symbol, o.order_id, o.account, o.side, reason, leaves, o.filled,
            h if buy else 0, 0 if buy else h, ts,
        )  # fmt: skip
        ev.__class__ = Canceled
        events.append(ev)

    def cancel(self, c: Cancel) -> list[Event]:
        o = self.orders.get(c.order_id)
        if o is None:
            return self._reject_change(c.order_id, c.account, R.UNKNOWN_ORDER, 0, None, c.ts)
        if o.account != c.account:
            return self._reject_change(c.order_id, c.account, R.NOT_OWNER, 0, None, c.ts)
        # fast path for a plain resting order: inline _close + _cancel
        oid = o.order_id
        price = o.price
        leaves = o.leaves
        stops = self.stops.by_id
        if stops and oid in stops:
            self.stops.remove(o)
        else:
            if o.side is BUY:
                levels, prices, changed = self.bids, self.bid_prices, self.changed_bids
            else:
                levels, prices, changed = self.asks, self.ask_prices, self.changed_asks
            level = levels[price]
            level.qty -= leaves
            level.count -= 1
            changed.add(price)
            if not level.count:
                del levels[price]
                prices.remove(price)
            else:
                level.dead += 1
                if level.dead > 16 and level.dead > level.count:
                    o.leaves = 0
                    level.compact()
        del self.orders[oid]
        if o.tif is not GTC:
            self.expirable.pop(oid, None)
        h = o.hold
        o.leaves = 0
        o.status = CANCELED
        seq = self.seq = self.seq + 1
        if h is None:
            ev = CanceledT(seq, self.symbol, oid, o.account, o.side, C.USER, leaves, o.filled, 0, 0, c.ts)
        else:
            o.hold = 0
            buy = o.side is BUY
            ev = CanceledT(
                seq, self.symbol, oid, o.account, o.side, C.USER, leaves, o.filled,
                h if buy else 0, 0 if buy else h, c.ts,
            )  # fmt: skip
        ev.__class__ = Canceled
        return [ev]

    def _reject_change(
        self, oid: int | None, account: int, reason: RejectReason, extra: int, o: Order | None, ts: int
    ) -> list[Event]:
        self.seq += 1
        buy = o is not None and o.side is BUY
        return [make(Rejected, self.seq, self.symbol, oid, account, reason, extra if buy else 0,
                     0 if buy else extra, ts)]  # fmt: skip

    def mass_cancel(self, c: MassCancel) -> list[Event]:
        events = self.cancel_account(c.account, c.ts)
        if not events:
            return self._reject_change(None, c.account, R.UNKNOWN_ORDER, 0, None, c.ts)
        return events

    def cancel_account(self, account: int, ts: int) -> list[Event]:
        """Cancel every open order (stops included) of `account`, in priority (seq) order."""
        mine = sorted((o for o in self.orders.values() if o.account == account), key=_by_seq)
        events: list = []
        for o in mine:
            self._close(o)
            self._cancel(o, C.MASS_CANCEL, events, ts)
        return events

    def expire(self, c: Expire) -> list[Event]:
        now = c.now
        due = sorted(
            (
                o
                for o in self.expirable.values()
                if (o.expire_at is None and o.tif is DAY) or (o.expire_at is not None and o.expire_at <= now)
            ),
            key=_by_seq,
        )
        events: list = []
        for o in due:
            self._close(o)
            self._cancel(o, C.EXPIRED, events, now)
        return events

    def set_reference(self, c: SetReference) -> list[Event]:
        """New reference price, new band. No event: the band is configuration, not book state."""
        self.reference_price = c.price
        self.band_low, self.band_high = price_band(c.price, self.instrument.band_bps, self.instrument.tick)
        return []

    def replace(self, c: Replace) -> list[Event]:
        extra = c.extra_hold
        o = self.orders.get(c.order_id)
        if o is None:
            return self._reject_change(c.order_id, c.account, R.UNKNOWN_ORDER, extra, None, c.ts)
        if o.account != c.account:
            return self._reject_change(c.order_id, c.account, R.NOT_OWNER, extra, o, c.ts)

        def reject(reason: RejectReason) -> list[Event]:
            return self._reject_change(c.order_id, c.account, reason, extra, o, c.ts)

        ins = self.instrument
        waiting = o.order_id in self.stops.by_id
        qty = o.qty if c.qty is None else c.qty
        price = o.price if c.price is None else c.price
        stop = o.stop_price if c.stop_price is None else c.stop_price
        if (c.price is not None and o.price is None) or (c.stop_price is not None and not waiting):
            return reject(R.INVALID_REPLACE)
        if extra.__class__ is not _INT or extra < 0:
            return reject(R.INVALID_REPLACE)
        if qty.__class__ is not _INT or qty <= 0 or qty < ins.min_qty:
            return reject(R.INVALID_QTY)
        if ins.max_qty is not None and qty > ins.max_qty:
            return reject(R.INVALID_QTY)
        if qty % ins.lot:
            return reject(R.OFF_LOT)
        if qty <= o.filled:
            return reject(R.INVALID_REPLACE)
        if price is not None and price is not o.price:
            if price.__class__ is not _INT or price <= 0:
                return reject(R.INVALID_PRICE)
            if price % ins.tick:
                return reject(R.OFF_TICK)
            lo, hi = self.band_low, self.band_high
            if lo is not None and price != o.price and not lo <= price <= hi:
                return reject(R.OUTSIDE_BAND)
        if price is not None and ins.max_notional is not None and price * qty > ins.max_notional:
            return reject(R.MAX_NOTIONAL)
        if stop is not o.stop_price:
            if stop.__class__ is not _INT or stop <= 0:
                return reject(R.INVALID_PRICE)
            if stop % ins.tick:
                return reject(R.OFF_TICK)
        if qty == o.qty and price == o.price and stop == o.stop_price:
            return reject(R.INVALID_REPLACE)
        leaves = qty - o.filled
        buy = o.side is BUY
        released = 0
        hold = o.hold
        if hold is not None:
            avail = hold + extra
            if buy:
                need = price * leaves if price is not None else avail
                if price is None and avail <= 0:
                    return reject(R.INSUFFICIENT_HOLD)
            else:
                need = leaves
            if avail < need:
                return reject(R.INSUFFICIENT_HOLD)
            released = avail - need
            hold = need
        else:
            released = extra
        ts = c.ts
        if price == o.price and stop == o.stop_price and qty < o.qty:
            # reduce: keeps its place in the queue
            delta = o.leaves - leaves
            if not waiting:
                level = (self.bids if buy else self.asks)[o.price]
                level.qty -= delta
                (self.changed_bids if buy else self.changed_asks).add(o.price)
            o.qty = qty
            o.leaves = leaves
            o.hold = hold
            self.seq += 1
            return [make(Reduced, self.seq, self.symbol, o.order_id, o.account, qty, leaves,
                         released if buy else 0, 0 if buy else released, ts)]  # fmt: skip
        if o.post_only and not waiting and self._crosses(buy, price):
            return reject(R.POST_ONLY_WOULD_TAKE)
        # replace: loses priority; a fresh Order object so the old queue entry simply dies
        n = o.copy()
        self._close(o)
        o.leaves = 0
        n.qty = qty
        n.leaves = leaves
        n.price = price
        n.stop_price = stop
        n.hold = hold
        self.seq += 1
        n.seq = self.seq
        events: list = [
            make(Replaced, n.seq, self.symbol, n.order_id, n.account, qty, price, stop, leaves,
                 released if buy else 0, 0 if buy else released, ts)
        ]  # fmt: skip
        if waiting:
            self.stops.add(n)
            self.orders[n.order_id] = n
            if n.tif is not GTC:
                self.expirable[n.order_id] = n
            if self.last_price is not None:
                self._run_stops(events, ts)
        else:
            self._execute(n, events, ts)
        return events

    # ------------------------------------------------------------------ stops
    def _run_stops(self, events: list, ts: int) -> None:
        """Fire every stop the last price has reached, earliest seq first; each may trade and fire more."""
        stops = self.stops
        while stops.by_id and self.last_price is not None:
            o = stops.next_fired(self.last_price)
            if o is None:
                return
            stops.remove(o)
            del self.orders[o.order_id]
            if o.tif is not GTC:
                self.expirable.pop(o.order_id, None)
            self.seq += 1
            o.seq = self.seq  # a fired stop-limit that rests has the Triggered event's priority
            events.append(make(Triggered, self.seq, self.symbol, o.order_id, o.account, self.last_price, ts))
            self._execute(o, events, ts)

    # ------------------------------------------------------------------ inspection
    @property
    def best_bid(self) -> int | None:
        return self.bid_prices[-1] if self.bid_prices else None

    @property
    def best_ask(self) -> int | None:
        return self.ask_prices[0] if self.ask_prices else None

    def get_order(self, order_id: int) -> RestingOrder | None:
        """A copy of an open order's state (filled, leaves, hold_remaining, status), None if not open."""
        o = self.orders.get(order_id)
        if o is None:
            return None
        return RestingOrder.of(o, self._is_fired(o))

    def _is_fired(self, o: Order) -> bool:
        return o.type is STOP_LIMIT and o.order_id not in self.stops.by_id

    def open_orders(self) -> list[RestingOrder]:
        """Every open order in engine-seq order: what settlement keeps and a rebuild loads."""
        return [RestingOrder.of(o, self._is_fired(o)) for o in sorted(self.orders.values(), key=_by_seq)]

    def level_orders(self, side: Side, price: int) -> list[Order]:
        """Live orders at one price, in queue order (tests and debugging)."""
        level = (self.bids if side is BUY else self.asks).get(price)
        return [] if level is None else level.live()

    def take_changes(self) -> list[tuple[Side, int, int, int]]:
        """L2 levels changed since the last call: (side, price, total qty, order count), absolute sizes,
        0/0 for a removed level; bids then asks, by price. The book's seq stamps them."""
        out: list[tuple[Side, int, int, int]] = []
        sides = ((BUY, self.changed_bids, self.bids), (SELL, self.changed_asks, self.asks))
        for side, changed, levels in sides:
            for price in sorted(changed):
                level = levels.get(price)
                out.append((side, price, level.qty, level.count) if level else (side, price, 0, 0))
            changed.clear()
        return out

    def depth(self, n: int = 10):  # -> DepthSnapshot
        from engine.depth import depth_snapshot

        return depth_snapshot(self, n)

    # ------------------------------------------------------------------ state
    def load_resting(self, orders: Iterable[RestingOrder], seq: int | None = None,
                     last_price: int | None = None) -> None:  # fmt: skip
        """Rebuild: load open orders (any order; sorted by their engine seq here) into this empty book.
        Each keeps its seq, filled, leaves and hold, so the state hash matches the live book's."""
        if self.orders:
            raise ValueError("load_resting needs an empty book")
        rest = self._rest
        add_stop = self.stops.add
        expirable = self.expirable
        all_orders = self.orders
        top = 0
        for r in sorted(orders, key=_by_seq):
            o = r.to_order()
            if o.seq > top:
                top = o.seq
            if (o.type is STOP or o.type is STOP_LIMIT) and not r.triggered:
                add_stop(o)
                all_orders[o.order_id] = o
                if o.tif is not GTC:
                    expirable[o.order_id] = o
            else:
                rest(o)
        self.seq = max(self.seq, top) if seq is None else seq
        if last_price is not None:
            self.last_price = last_price
        self.changed_bids.clear()
        self.changed_asks.clear()

    def state_hash(self) -> str:
        from engine.snapshot import state_hash

        return state_hash(self)


def _by_seq(o: Order | RestingOrder) -> int:
    return o.seq
