"""The engine against the naive oracle (oracle.py), step by step, with the invariants checked after each."""

from __future__ import annotations

import os
from collections import defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from oracle import OracleBook

from engine.book import OrderBook
from engine.commands import Cancel, Expire, MassCancel, NewOrder, Replace, SetReference
from engine.events import Accepted, Canceled, Reduced, Rejected, Replaced, Trade
from engine.symbols import Instrument
from engine.types import OrderType, Side, StpMode, TimeInForce

SYM = "HYP"
INS = Instrument(SYM, tick=1, lot=1, max_qty=50, reference_price=100, band_bps=1000)  # band [90, 110]
BUY, SELL = Side.BUY, Side.SELL

sides = st.sampled_from([BUY, SELL])
prices = st.integers(86, 114)
qtys = st.integers(1, 12)
accounts = st.integers(1, 3)
types = st.sampled_from(
    [OrderType.LIMIT] * 6 + [OrderType.MARKET] * 2 + [OrderType.STOP, OrderType.STOP_LIMIT]
)
tifs = st.sampled_from(
    [TimeInForce.GTC] * 4 + [TimeInForce.DAY, TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK]
)
stps = st.sampled_from(
    [StpMode.CANCEL_RESTING] * 3 + [StpMode.CANCEL_INCOMING, StpMode.CANCEL_BOTH, StpMode.NONE]
)
hold_modes = st.sampled_from(["none", "none", "exact", "extra", "short"])


class EngineVsOracle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook(INS)
        self.oracle = OracleBook(INS)
        self.next_id = 1
        self.ts = 0
        # per order id: the accounting the invariants need, rebuilt from events only
        self.side: dict[int, Side] = {}
        self.qty: dict[int, int] = {}
        self.hold: dict[int, int | None] = {}
        self.filled: dict[int, int] = defaultdict(int)
        self.canceled: dict[int, int] = defaultdict(int)
        self.spent: dict[int, int] = defaultdict(int)
        self.released: dict[int, int] = defaultdict(int)
        self.closed: set[int] = set()

    # ------------------------------------------------------------ driving both books
    def step(self, cmd) -> None:
        self.ts += 1
        before_open = {oid: self.book.get_order(oid) for oid in self.book.orders}
        got = self.book.apply(cmd)
        want = self.oracle.apply(cmd)
        assert got == want, f"{cmd}\nengine: {got}\noracle: {want}"
        self.account(cmd, got, before_open)

    def account(self, cmd, events, before_open) -> None:
        for e in events:
            if isinstance(e, Accepted):
                self.side[e.order_id] = e.side
                self.qty[e.order_id] = e.qty
                self.hold[e.order_id] = cmd.hold
            elif isinstance(e, Trade):
                maker = before_open.get(e.maker_order_id)
                if maker is not None:  # fills at the maker's own limit price
                    assert e.price == maker.price
                buy_id, sell_id = e.buy_order_id, e.sell_order_id
                self.spent[buy_id] += e.notional
                self.released[buy_id] += e.buyer_released
                self.released[sell_id] += e.seller_released
                self.filled[e.maker_order_id] += e.qty
                self.filled[e.taker_order_id] += e.qty
                for oid in (e.maker_order_id, e.taker_order_id):
                    if self.filled[oid] == self.qty[oid] - self.canceled[oid]:
                        self.closed.add(oid)
            elif isinstance(e, Canceled):
                self.canceled[e.order_id] += e.canceled_qty
                self.released[e.order_id] += e.released_cash + e.released_qty
                self.closed.add(e.order_id)
            elif isinstance(e, Reduced | Replaced):
                self.qty[e.order_id] = e.qty
                if self.hold.get(e.order_id) is not None:
                    self.hold[e.order_id] += cmd.extra_hold
                    self.released[e.order_id] += e.released_cash + e.released_qty
            elif isinstance(e, Rejected) and isinstance(cmd, Replace):
                assert e.released_cash + e.released_qty == cmd.extra_hold

    # ------------------------------------------------------------ rules
    @rule(
        side=sides,
        typ=types,
        tif=tifs,
        price=prices,
        stop=prices,
        qty=qtys,
        acct=accounts,
        stp=stps,
        hold_mode=hold_modes,
        post_only=st.booleans(),
    )
    def new_order(self, side, typ, tif, price, stop, qty, acct, stp, hold_mode, post_only) -> None:
        limit = price if typ in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
        stop_price = stop if typ in (OrderType.STOP, OrderType.STOP_LIMIT) else None
        if typ == OrderType.MARKET:
            tif = TimeInForce.IOC if tif not in (TimeInForce.IOC, TimeInForce.FOK) else tif
        elif typ != OrderType.LIMIT and tif in (TimeInForce.IOC, TimeInForce.FOK):
            tif = TimeInForce.GTC
        expire_at = self.ts + 5 if tif == TimeInForce.GTD else None
        if hold_mode == "none":
            hold = None
        elif side == SELL:
            hold = {"exact": qty, "extra": qty + 3, "short": qty - 1}[hold_mode]
        else:
            cost = (limit or 100) * qty
            hold = {"exact": cost, "extra": cost + 50, "short": cost - 1}[hold_mode]
        oid = self.next_id
        self.next_id += 1
        self.step(
            NewOrder(
                oid,
                acct,
                SYM,
                side,
                typ,
                qty,
                limit,
                stop_price,
                tif,
                expire_at,
                post_only and typ == OrderType.LIMIT and tif not in (TimeInForce.IOC, TimeInForce.FOK),
                stp,
                hold,
                self.ts,
            )  # fmt: skip
        )

    @rule(pick=st.integers(0, 40), acct=accounts, own=st.booleans())
    def cancel(self, pick, acct, own) -> None:
        oid = pick % self.next_id + 1
        o = self.book.orders.get(oid)
        if own and o is not None:
            acct = o[1]
        self.step(Cancel(oid, acct, SYM, self.ts))

    @rule(
        pick=st.integers(0, 40),
        qty=st.none() | st.integers(1, 15),
        price=st.none() | prices,
        stop=st.none() | prices,
        extra=st.sampled_from([0, 0, 5, 200, 2000]),
        own=st.booleans(),
    )
    def replace(self, pick, qty, price, stop, extra, own) -> None:
        oid = pick % self.next_id + 1
        o = self.book.orders.get(oid)
        acct = o[1] if (own and o is not None) else 1
        self.step(Replace(oid, acct, SYM, qty, price, stop, extra, self.ts))

    @rule(acct=accounts)
    def mass_cancel(self, acct) -> None:
        self.step(MassCancel(acct, SYM, self.ts))

    @rule(dt=st.integers(0, 8))
    def expire(self, dt) -> None:
        self.step(Expire(SYM, self.ts + dt))

    @rule(ref=st.integers(95, 105))
    def set_reference(self, ref) -> None:
        self.step(SetReference(SYM, ref, self.ts))

    # ------------------------------------------------------------ invariants
    @invariant()
    def book_is_never_crossed_and_matches_oracle_depth(self) -> None:
        b = self.book
        if b.best_bid is not None and b.best_ask is not None:
            assert b.best_bid < b.best_ask
        d = b.depth(1000)
        assert list(d.bids) == self.oracle.depth(BUY)
        assert list(d.asks) == self.oracle.depth(SELL)
        assert b.best_bid == (d.bids[0][0] if d.bids else None)
        assert b.best_ask == (d.asks[0][0] if d.asks else None)

    @invariant()
    def level_totals_equal_their_orders(self) -> None:
        for levels in (self.book.bids, self.book.asks):
            for price, level in levels.items():
                live = level.live()
                assert live and level.count == len(live)
                assert level.qty == sum(o[5] for o in live)
                assert all(o[3] == price for o in live)
                seqs = [o[7] for o in live]
                assert seqs == sorted(seqs)  # time priority

    @invariant()
    def qty_is_filled_plus_leaves_plus_canceled(self) -> None:
        for oid, qty in self.qty.items():
            o = self.book.get_order(oid)
            leaves = o.leaves if o is not None else 0
            assert qty == self.filled[oid] + leaves + self.canceled[oid], oid
            if o is not None:
                assert o.filled == self.filled[oid]

    @invariant()
    def holds_are_spent_or_released_exactly_once(self) -> None:
        for oid, hold in self.hold.items():
            if hold is None:
                continue
            o = self.book.get_order(oid)
            remaining = o.hold_remaining if o is not None else 0
            if self.side[oid] == BUY:
                assert self.spent[oid] <= hold  # no buy costs more than its hold
                assert self.spent[oid] + self.released[oid] + remaining == hold, oid
            else:
                assert self.filled[oid] + self.released[oid] + remaining == hold, oid

    @invariant()
    def state_survives_snapshot_and_rebuild(self) -> None:
        h = self.book.state_hash()
        rebuilt = OrderBook(INS)
        rebuilt.set_reference(SetReference(SYM, self.book.reference_price))
        rebuilt.load_resting(self.book.open_orders(), seq=self.book.seq, last_price=self.book.last_price)
        assert rebuilt.state_hash() == h


EngineVsOracle.TestCase.settings = settings(
    max_examples=int(os.environ.get("ENGINE_HYPOTHESIS_EXAMPLES", "150")),
    stateful_step_count=int(os.environ.get("ENGINE_HYPOTHESIS_STEPS", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_engine_matches_oracle = EngineVsOracle.TestCase
