"""A naive, obviously correct order book: the oracle for the hypothesis state machine.

Written separately from engine/ and for clarity only: every open order sits in one plain list, and each
step sorts it to find the best price. Same semantics (docs/engine.md), none of the engine's structures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from engine.commands import Cancel, Expire, MassCancel, NewOrder, Replace, SetReference
from engine.events import Accepted, Canceled, Reduced, Rejected, Replaced, Trade, Triggered
from engine.symbols import Instrument
from engine.types import CancelReason as CR
from engine.types import OrderStatus as S
from engine.types import OrderType as OT
from engine.types import RejectReason as RR
from engine.types import Side, StpMode
from engine.types import TimeInForce as TIF

BUY, SELL = Side.BUY, Side.SELL


@dataclass
class Ord:
    id: int
    acct: int
    side: Side
    type: OT
    tif: TIF
    price: int | None
    stop: int | None
    qty: int
    leaves: int
    hold: int | None
    seq: int
    expire: int | None
    stp: StpMode
    post_only: bool
    waiting: bool  # a stop not yet fired

    @property
    def filled(self) -> int:
        return self.qty - self.leaves


class OracleBook:
    def __init__(self, ins: Instrument) -> None:
        self.ins = ins
        self.sym = ins.symbol
        self.seq = 0
        self.last: int | None = None
        self.open: list[Ord] = []  # resting orders and waiting stops, any order
        self.ref = ins.reference_price
        self.ev: list = []

    # -------------------------------------------------------------- helpers
    def band(self) -> tuple[int | None, int | None]:
        if not self.ins.band_bps or self.ref is None:
            return None, None
        t = self.ins.tick
        lo = Fraction(self.ref) * (1 - Fraction(self.ins.band_bps, 10000))
        hi = Fraction(self.ref) * (1 + Fraction(self.ins.band_bps, 10000))
        return max(math.ceil(lo / t) * t, t), math.floor(hi / t) * t

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def book_side(self, side: Side) -> list[Ord]:
        """Resting orders of one side, best first: price, then seq."""
        rows = [o for o in self.open if o.side == side and not o.waiting]
        if side == BUY:
            return sorted(rows, key=lambda o: (-o.price, o.seq))
        return sorted(rows, key=lambda o: (o.price, o.seq))

    def depth(self, side: Side) -> list[tuple[int, int, int]]:
        out: dict[int, list[int]] = {}
        for o in self.book_side(side):
            row = out.setdefault(o.price, [0, 0])
            row[0] += o.leaves
            row[1] += 1
        return [(p, q, n) for p, (q, n) in out.items()]

    def cancel_ev(self, o: Ord, reason: CR, ts: int) -> None:
        h = o.hold or 0
        leaves, filled = o.leaves, o.filled
        o.leaves = 0
        if o.hold is not None:
            o.hold = 0
        if o in self.open:
            self.open.remove(o)
        cash, shares = (h, 0) if o.side == BUY else (0, h)
        self.ev.append(Canceled(self.next_seq(), self.sym, o.id, o.acct, o.side, reason, leaves, filled,
                                cash, shares, ts))  # fmt: skip

    def reject(self, oid, acct, reason, amount, is_buy, ts) -> None:
        cash, shares = (amount, 0) if is_buy else (0, amount)
        self.ev.append(Rejected(self.next_seq(), self.sym, oid, acct, reason, cash, shares, ts))

    # -------------------------------------------------------------- commands
    def apply(self, c) -> list:
        self.ev = []
        if isinstance(c, NewOrder):
            self.new(c)
        elif isinstance(c, Cancel):
            o = self.find(c.order_id)
            if o is None:
                self.reject(c.order_id, c.account, RR.UNKNOWN_ORDER, 0, False, c.ts)
            elif o.acct != c.account:
                self.reject(c.order_id, c.account, RR.NOT_OWNER, 0, False, c.ts)
            else:
                self.cancel_ev(o, CR.USER, c.ts)
        elif isinstance(c, MassCancel):
            mine = sorted((o for o in self.open if o.acct == c.account), key=lambda o: o.seq)
            for o in mine:
                self.cancel_ev(o, CR.MASS_CANCEL, c.ts)
            if not mine:
                self.reject(None, c.account, RR.UNKNOWN_ORDER, 0, False, c.ts)
        elif isinstance(c, Expire):
            due = [
                o
                for o in self.open
                if o.tif in (TIF.DAY, TIF.GTD) and (o.expire is None or o.expire <= c.now)
            ]
            for o in sorted(due, key=lambda o: o.seq):
                self.cancel_ev(o, CR.EXPIRED, c.now)
        elif isinstance(c, Replace):
            self.replace(c)
        elif isinstance(c, SetReference):
            self.ref = c.price
        return self.ev

    def find(self, oid: int) -> Ord | None:
        for o in self.open:
            if o.id == oid:
                return o
        return None

    def check_new(self, c: NewOrder) -> RR | None:
        ins = self.ins
        lo, hi = self.band()
        if c.side not in (BUY, SELL):
            return RR.INVALID_SIDE
        if not isinstance(c.qty, int) or c.qty <= 0 or c.qty < ins.min_qty:
            return RR.INVALID_QTY
        if ins.max_qty is not None and c.qty > ins.max_qty:
            return RR.INVALID_QTY
        if c.qty % ins.lot != 0:
            return RR.OFF_LOT
        if c.type in (OT.LIMIT, OT.STOP_LIMIT):
            if not isinstance(c.price, int) or c.price <= 0:
                return RR.INVALID_PRICE
            if c.price % ins.tick != 0:
                return RR.OFF_TICK
            if lo is not None and not (lo <= c.price <= hi):
                return RR.OUTSIDE_BAND
            if ins.max_notional is not None and c.price * c.qty > ins.max_notional:
                return RR.MAX_NOTIONAL
        elif c.type in (OT.MARKET, OT.STOP):
            if c.price is not None:
                return RR.INVALID_PRICE
        else:
            return RR.INVALID_TYPE
        if c.type in (OT.STOP, OT.STOP_LIMIT):
            if not isinstance(c.stop_price, int) or c.stop_price <= 0:
                return RR.INVALID_PRICE
            if c.stop_price % ins.tick != 0:
                return RR.OFF_TICK
            if c.tif not in (TIF.GTC, TIF.DAY, TIF.GTD):
                return RR.INVALID_TIF
        elif c.stop_price is not None:
            return RR.INVALID_PRICE
        if c.type == OT.MARKET and c.tif not in (TIF.IOC, TIF.FOK):
            return RR.INVALID_TIF
        if c.tif == TIF.GTD and c.expire_at is None:
            return RR.INVALID_TIF
        if c.post_only and (c.type != OT.LIMIT or c.tif in (TIF.IOC, TIF.FOK)):
            return RR.INVALID_TIF
        if self.find(c.order_id) is not None:
            return RR.DUPLICATE_ORDER_ID
        if c.hold is not None:
            if c.side == BUY:
                if c.price is not None and c.hold < c.price * c.qty:
                    return RR.INSUFFICIENT_HOLD
                if c.price is None and c.hold <= 0:
                    return RR.INSUFFICIENT_HOLD
            elif c.hold < c.qty:
                return RR.INSUFFICIENT_HOLD
        if c.post_only and self.crosses(c.side, c.price):
            return RR.POST_ONLY_WOULD_TAKE
        return None

    def crosses(self, side: Side, price: int) -> bool:
        opp = self.book_side(SELL if side == BUY else BUY)
        if not opp:
            return False
        return opp[0].price <= price if side == BUY else opp[0].price >= price

    def new(self, c: NewOrder) -> None:
        reason = self.check_new(c)
        if reason is not None:
            self.reject(c.order_id, c.account, reason, c.hold or 0, c.side == BUY, c.ts)
            return
        seq = self.next_seq()
        expire = c.expire_at if c.tif != TIF.GTC else None
        is_stop = c.type in (OT.STOP, OT.STOP_LIMIT)
        o = Ord(c.order_id, c.account, c.side, c.type, c.tif, c.price, c.stop_price, c.qty, c.qty,
                c.hold, seq, expire, c.stp, c.post_only, is_stop)  # fmt: skip
        at = len(self.ev)
        if o.waiting:
            self.open.append(o)
            rested = True
            self.ev.append(None)
            self.fire_stops(c.ts)
        else:
            self.ev.append(None)
            rested = self.execute(o, c.ts)
        self.ev[at] = Accepted(seq, self.sym, o.id, o.acct, o.side, o.type, o.tif, o.qty, o.price, o.stop,
                               rested, c.ts)  # fmt: skip

    def limit_of(self, o: Ord) -> int | None:
        if o.price is not None:
            return o.price
        lo, hi = self.band()
        return hi if o.side == BUY else lo

    def ok_price(self, o: Ord, price: int, limit: int | None) -> bool:
        return limit is None or (price <= limit if o.side == BUY else price >= limit)

    def can_fill(self, o: Ord, limit: int | None) -> bool:
        need = o.leaves
        budget = o.hold if (o.side == BUY and o.hold is not None and o.price is None) else None
        for m in self.book_side(SELL if o.side == BUY else BUY):
            if not self.ok_price(o, m.price, limit):
                break
            if m.acct == o.acct and o.stp != StpMode.NONE:
                if o.stp == StpMode.CANCEL_RESTING:
                    continue
                return False
            n = min(need, m.leaves)
            if budget is not None:
                if budget // m.price < n:
                    return False
                budget -= m.price * n
            need -= n
            if need == 0:
                return True
        return False

    def execute(self, o: Ord, ts: int) -> bool:
        limit = self.limit_of(o)
        if o.tif == TIF.FOK and not self.can_fill(o, limit):
            self.cancel_ev(o, CR.FOK_UNFILLED, ts)
            return False
        traded_any = False
        reason = None
        while o.leaves > 0:
            opp = self.book_side(SELL if o.side == BUY else BUY)
            if not opp:
                break
            m = opp[0]
            if not self.ok_price(o, m.price, limit):
                if o.price is None:
                    reason = CR.BAND
                break
            traded_any = True
            if m.acct == o.acct and o.stp != StpMode.NONE:
                if o.stp == StpMode.CANCEL_INCOMING:
                    reason = CR.SELF_TRADE_INCOMING
                    break
                self.cancel_ev(
                    m, CR.SELF_TRADE_RESTING if o.stp == StpMode.CANCEL_RESTING else CR.SELF_TRADE_BOTH, ts
                )
                if o.stp == StpMode.CANCEL_BOTH:
                    reason = CR.SELF_TRADE_BOTH
                    break
                continue
            n = min(o.leaves, m.leaves)
            if o.side == BUY and o.hold is not None and o.price is None:
                n = min(n, o.hold // m.price)
                if n == 0:
                    reason = CR.BUDGET
                    break
            self.fill(o, m, n, ts)
        if o.leaves > 0:
            if reason is not None:
                self.cancel_ev(o, reason, ts)
            elif o.price is None or o.tif in (TIF.IOC, TIF.FOK):
                self.cancel_ev(o, CR.IOC_REMAINDER, ts)
            else:
                o.waiting = False
                self.open.append(o)
                rested = True
                if traded_any:
                    self.fire_stops(ts)
                return rested
        if traded_any:
            self.fire_stops(ts)
        return False

    def fill(self, taker: Ord, maker: Ord, n: int, ts: int) -> None:
        price = maker.price
        taker.leaves -= n
        maker.leaves -= n
        buyer, seller = (taker, maker) if taker.side == BUY else (maker, taker)
        b_rel = s_rel = 0
        if buyer.hold is not None:
            buyer.hold -= price * n
            if buyer.leaves == 0:
                b_rel, buyer.hold = buyer.hold, 0
            elif buyer.price is not None:
                b_rel = buyer.hold - buyer.price * buyer.leaves
                buyer.hold -= b_rel
        if seller.hold is not None:
            seller.hold -= n
            if seller.leaves == 0:
                s_rel, seller.hold = seller.hold, 0
        if maker.leaves == 0:
            self.open.remove(maker)
        m_st = S.FILLED if maker.leaves == 0 else S.PARTIALLY_FILLED
        t_st = S.FILLED if taker.leaves == 0 else S.PARTIALLY_FILLED
        seq = self.next_seq()
        self.ev.append(Trade(seq, self.sym, price, n, taker.side, maker.id, taker.id, maker.acct, taker.acct,
                             b_rel, m_st, t_st, maker.leaves, taker.leaves, ts, s_rel))  # fmt: skip
        self.last = price

    def fire_stops(self, ts: int) -> None:
        while self.last is not None:
            fired = [
                o
                for o in self.open
                if o.waiting
                and ((o.side == BUY and self.last >= o.stop) or (o.side == SELL and self.last <= o.stop))
            ]
            if not fired:
                return
            o = min(fired, key=lambda o: o.seq)
            self.open.remove(o)
            o.waiting = False
            o.seq = self.next_seq()
            self.ev.append(Triggered(o.seq, self.sym, o.id, o.acct, self.last, ts))
            self.execute(o, ts)

    def replace(self, c: Replace) -> None:
        o = self.find(c.order_id)
        extra = c.extra_hold
        if o is None:
            return self.reject(c.order_id, c.account, RR.UNKNOWN_ORDER, extra, False, c.ts)
        is_buy = o.side == BUY
        if o.acct != c.account:
            return self.reject(c.order_id, c.account, RR.NOT_OWNER, extra, is_buy, c.ts)
        ins = self.ins
        qty = o.qty if c.qty is None else c.qty
        price = o.price if c.price is None else c.price
        stop = o.stop if c.stop_price is None else c.stop_price
        lo, hi = self.band()
        reason = None
        if (
            (c.price is not None and o.price is None)
            or (c.stop_price is not None and not o.waiting)
            or extra < 0
        ):
            reason = RR.INVALID_REPLACE
        elif qty <= 0 or qty < ins.min_qty or (ins.max_qty is not None and qty > ins.max_qty):
            reason = RR.INVALID_QTY
        elif qty % ins.lot:
            reason = RR.OFF_LOT
        elif qty <= o.filled:
            reason = RR.INVALID_REPLACE
        elif c.price is not None and price != o.price and (price <= 0):
            reason = RR.INVALID_PRICE
        elif c.price is not None and price != o.price and price % ins.tick:
            reason = RR.OFF_TICK
        elif c.price is not None and price != o.price and lo is not None and not lo <= price <= hi:
            reason = RR.OUTSIDE_BAND
        elif price is not None and ins.max_notional is not None and price * qty > ins.max_notional:
            reason = RR.MAX_NOTIONAL
        elif c.stop_price is not None and stop != o.stop and stop <= 0:
            reason = RR.INVALID_PRICE
        elif c.stop_price is not None and stop != o.stop and stop % ins.tick:
            reason = RR.OFF_TICK
        elif (qty, price, stop) == (o.qty, o.price, o.stop):
            reason = RR.INVALID_REPLACE
        leaves = qty - o.filled
        hold = o.hold
        released = extra
        if reason is None and o.hold is not None:
            avail = o.hold + extra
            need = (avail if price is None else price * leaves) if is_buy else leaves
            if avail < need or avail <= 0:
                reason = RR.INSUFFICIENT_HOLD
            else:
                released, hold = avail - need, need
        is_reduce = price == o.price and stop == o.stop and qty < o.qty
        if reason is None and not is_reduce and o.post_only and self.crosses(o.side, price):
            reason = RR.POST_ONLY_WOULD_TAKE
        if reason is not None:
            return self.reject(c.order_id, c.account, reason, extra, is_buy, c.ts)
        cash, shares = (released, 0) if is_buy else (0, released)
        if price == o.price and stop == o.stop and qty < o.qty:
            o.qty, o.leaves, o.hold = qty, leaves, hold
            self.ev.append(Reduced(self.next_seq(), self.sym, o.id, o.acct, qty, leaves, cash, shares, c.ts))
            return None
        self.open.remove(o)
        o.qty, o.leaves, o.hold, o.price, o.stop = qty, leaves, hold, price, stop
        o.seq = self.next_seq()
        self.ev.append(Replaced(o.seq, self.sym, o.id, o.acct, qty, price, stop, leaves, cash, shares, c.ts))
        if o.waiting:
            self.open.append(o)
            self.fire_stops(c.ts)
        else:
            self.execute(o, c.ts)
        return None
