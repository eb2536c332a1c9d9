"""Engine events -> SQL, one transaction per batch (the caller commits).

`settle_batch` folds a batch's (command, events) pairs into per-order, per-account and per-position deltas,
then writes them with a handful of executemany statements:

    checkpoint (fenced) -> accounts -> positions -> orders -> trades -> ledger

Accounts are locked before orders, in account-id order, the same order as the API's intake (hold, then
order), so a matcher and the API, or two matchers of different symbols, never deadlock each other.

Money moves (all integers: cents and shares):
- Accepted: order seq (its time priority); the order stays `new`.
- Rejected new order: status rejected + reason; its hold goes back to available.
- Rejected replace: the replace's extra hold (orders.pending_hold) goes back; the order is unchanged.
- Trade q @ p: buyer cash_held -= p*q (+ buyer_released goes back to available), position qty += q,
  cost_basis += p*q; seller held_qty and qty -= q (+ seller_released back to available shares),
  cash_available += p*q, realized_pnl += p*q - removed where removed = cost_basis * q // qty (floor:
  the rounding cent stays in the remaining cost basis, and selling the last share removes all of it).
- Canceled / expired: canceled_qty += leaves; the engine's remaining hold goes back.
- Reduced / Replaced: the replace's extra hold moves from pending_hold into the order's hold, then what
  the engine says the new terms do not need goes back.
Every move writes ledger rows, so per account the ledger sums equal the balances.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    String,
    any_,
    bindparam,
    case,
    cast,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.commands import Command, NewOrder, Replace, SetReference
from engine.events import Accepted, Canceled, Event, Reduced, Rejected, Replaced, Trade, Triggered
from engine.types import OrderStatus, RejectReason, Side
from schema.models import Account, Checkpoint, Instrument, LedgerEntry, Order, Position
from schema.models import Trade as TradeRow
from schema.orderbook_load import from_epoch_ms

Step = tuple[Command, Sequence[Event]]

_accounts = Account.__table__
_positions = Position.__table__
_orders = Order.__table__
_trades = TradeRow.__table__
_ledger = LedgerEntry.__table__
_checkpoints = Checkpoint.__table__


def among(session: Session, column, values: Iterable[int]):  # type: ignore[no-untyped-def]
    """`column IN values`. On PostgreSQL `= ANY(:array)`: one bound parameter, so the statement text is
    the same for every batch (an expanded IN list is new SQL for the server and psycopg to parse)."""
    ids = sorted(set(values))
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(f"{column.key}_any", ids, type_=ARRAY(BigInteger)))
    return column.in_(ids)


class FencingLost(Exception):
    """The checkpoint's fencing token moved on: another matcher owns the symbol now. Roll back, stop."""


class OrderRef(NamedTuple):
    """What settlement and the duplicate check need to know about an order before the batch runs.

    A NamedTuple: built once per looked-up order per batch, and a tuple is cheaper to make than a frozen
    dataclass (whose __init__ goes through object.__setattr__ per field)."""

    id: int
    account_id: int
    side: str
    status: str
    seq: int | None

    @property
    def sequenced(self) -> bool:
        """The engine has seen this order already (a re-enqueued NewOrder for it is a duplicate)."""
        return self.seq is not None or self.status != _NEW


_NEW = OrderStatus.NEW.value
# PostgreSQL: one prepared statement text for every batch (the ids are one array parameter).
_PG_ORDER_REFS = text(
    "SELECT id, account_id, side, status, seq FROM orders WHERE id = ANY(CAST(:ids AS BIGINT[]))"
)
_REF_COLUMNS = (_orders.c.id, _orders.c.account_id, _orders.c.side, _orders.c.status, _orders.c.seq)


def order_refs(session: Session, order_ids: Iterable[int]) -> dict[int, OrderRef]:
    """The refs of `order_ids` that exist in SQL, in one query."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rows = conn.execute(_PG_ORDER_REFS, {"ids": ids}).all()
    else:
        rows = conn.execute(select(*_REF_COLUMNS).where(_orders.c.id.in_(ids))).all()
    make = OrderRef._make
    return {r[0]: make(r) for r in rows}


@dataclass(slots=True)
class _OrderChange:
    filled_qty: int = 0
    filled_notional: int = 0
    canceled_qty: int = 0
    hold_cash: int = 0
    hold_qty: int = 0
    pending_hold: int = 0
    status: str | None = None
    seq: int | None = None
    qty: int | None = None
    set_prices: bool = False
    limit_price: int | None = None
    stop_price: int | None = None
    reason: str | None = None
    triggered: bool | None = None


@dataclass(slots=True)
class _Holding:
    """A position's qty and cost basis as settlement walks the batch (realized P&L needs the running cost)."""

    qty: int
    cost: int
    d_qty: int = 0
    d_held: int = 0
    d_cost: int = 0
    d_realized: int = 0


@dataclass(slots=True)
class Settled:
    """What one batch changed, for the publisher (read after commit)."""

    symbol: str
    trades: list[dict] = field(default_factory=list)  # trade rows as inserted, with "id"
    order_events: list[tuple[int, int, str]] = field(default_factory=list)  # (account, order id, event)
    accounts: set[int] = field(default_factory=set)  # accounts whose cash moved
    positions: set[int] = field(default_factory=set)  # accounts whose position in `symbol` moved
    last_price: int | None = None
    # The state after the batch of what the pushes show, taken inside the settlement transaction
    # (settle_batch(views=True)): PostgreSQL from the UPDATEs' RETURNING, else one SELECT per table.
    order_rows: dict[int, Any] = field(default_factory=dict)  # order id -> row with ORDER_VIEW_COLUMNS
    account_rows: list[Any] = field(default_factory=list)  # (id, cash_available, cash_held)
    position_rows: list[Any] = field(default_factory=list)  # rows with POSITION_VIEW_COLUMNS


_EVENT_OF_STATUS = {OrderStatus.FILLED: "fill", OrderStatus.PARTIALLY_FILLED: "partial_fill"}


class _Batch:
    def __init__(self, symbol: str, refs: dict[int, OrderRef], now: datetime) -> None:
        self.symbol = symbol
        self.refs = refs
        self.now = now
        self.orders: dict[int, _OrderChange] = {}
        self.cash: dict[int, list[int]] = {}  # account -> [d_available, d_held]
        self.holdings: dict[int, _Holding] = {}
        self.trades: list[dict] = []
        self.ledger: list[dict] = []  # "_trade" holds the index of its trade until ids are known
        self.out = Settled(symbol)
        self.reference_price: int | None = None
        self.pending_releases: list[tuple[OrderRef, int]] = []

    # -------------------------------------------------------------- deltas
    def order(self, order_id: int) -> _OrderChange:
        change = self.orders.get(order_id)
        if change is None:
            change = self.orders[order_id] = _OrderChange()
        return change

    def move_cash(self, account: int, d_available: int, d_held: int) -> None:
        entry = self.cash.get(account)
        if entry is None:
            self.cash[account] = [d_available, d_held]
        else:
            entry[0] += d_available
            entry[1] += d_held
        self.out.accounts.add(account)

    def holding(self, account: int) -> _Holding:
        # Filled in by settle_batch before the events are walked (every account that trades is loaded).
        h = self.holdings.get(account)
        if h is None:
            h = self.holdings[account] = _Holding(0, 0)
        self.out.positions.add(account)
        return h

    def book(
        self, account: int, kind: str, order_id: int | None, trade: int | None = None, **deltas: int
    ) -> None:
        row = {
            "account_id": account,
            "kind": kind,
            "symbol": self.symbol,
            "cash_available_delta": deltas.get("cash_available_delta", 0),
            "cash_held_delta": deltas.get("cash_held_delta", 0),
            "qty_delta": deltas.get("qty_delta", 0),
            "held_qty_delta": deltas.get("held_qty_delta", 0),
            "order_id": order_id,
            "trade_id": None,
            "created_at": self.now,
            "_trade": trade,
        }
        self.ledger.append(row)

    def release(self, account: int, side: str, amount: int, order_id: int) -> None:
        """Return `amount` of a hold (cash for a buy, shares for a sell) to available."""
        if not amount:
            return
        if side == Side.BUY.value:
            self.move_cash(account, amount, -amount)
            self.book(account, "release", order_id, cash_available_delta=amount, cash_held_delta=-amount)
        else:
            self.holding(account).d_held -= amount
            self.book(account, "release", order_id, held_qty_delta=-amount)

    def notify(self, account: int, order_id: int, event: str) -> None:
        self.out.order_events.append((account, order_id, event))

    # -------------------------------------------------------------- events
    def apply(self, command: Command, events: Sequence[Event]) -> None:
        if isinstance(command, SetReference):
            self.reference_price = command.price
        for ev in events:
            cls = ev.__class__
            if cls is Trade:
                self.trade(ev)  # type: ignore[arg-type]
            elif cls is Accepted:
                self.order(ev.order_id).seq = ev.seq
                self.notify(ev.account, ev.order_id, "new")
            elif cls is Canceled:
                self.canceled(ev)  # type: ignore[arg-type]
            elif cls is Rejected:
                self.rejected(command, ev)  # type: ignore[arg-type]
            elif cls is Reduced or cls is Replaced:
                self.changed(command, ev)  # type: ignore[arg-type]
            elif cls is Triggered:
                change = self.order(ev.order_id)
                change.seq = ev.seq  # a fired stop rests with the Triggered event's priority
                change.triggered = True
                self.notify(ev.account, ev.order_id, "triggered")

    def trade(self, ev: Trade) -> None:
        q, price = ev.qty, ev.price
        notional = price * q
        buy_is_taker = ev.aggressor == Side.BUY
        buy_id, sell_id = ev.buy_order_id, ev.sell_order_id
        buyer = ev.taker_account if buy_is_taker else ev.maker_account
        seller = ev.maker_account if buy_is_taker else ev.taker_account
        buy_status = ev.taker_status if buy_is_taker else ev.maker_status
        sell_status = ev.maker_status if buy_is_taker else ev.taker_status
        index = len(self.trades)
        self.trades.append(
            {
                "symbol": self.symbol,
                "seq": ev.seq,
                "price": price,
                "qty": q,
                "aggressor": str(ev.aggressor),
                "buy_order_id": buy_id,
                "sell_order_id": sell_id,
                "buyer_account_id": buyer,
                "seller_account_id": seller,
                "executed_at": from_epoch_ms(ev.ts) if ev.ts else self.now,
            }
        )
        self.out.last_price = price
        # buyer: the held cash pays the seller; what the order no longer needs goes back at once
        released = ev.buyer_released
        b = self.order(buy_id)
        b.filled_qty += q
        b.filled_notional += notional
        b.hold_cash -= notional + released
        b.status = buy_status.value
        self.move_cash(buyer, released, -notional - released)
        hb = self.holding(buyer)
        hb.qty += q
        hb.cost += notional
        hb.d_qty += q
        hb.d_cost += notional
        self.book(buyer, "trade", buy_id, index, cash_held_delta=-notional, qty_delta=q)
        if released:
            self.book(buyer, "release", buy_id, cash_available_delta=released, cash_held_delta=-released)
        # seller: held shares leave, cash arrives; cost basis leaves pro rata (floor, see module doc)
        s_released = ev.seller_released
        s = self.order(sell_id)
        s.filled_qty += q
        s.filled_notional += notional
        s.hold_qty -= q + s_released
        s.status = sell_status.value
        self.move_cash(seller, notional, 0)
        hs = self.holding(seller)
        removed = hs.cost * q // hs.qty if hs.qty > 0 else 0
        hs.qty -= q
        hs.cost -= removed
        hs.d_qty -= q
        hs.d_held -= q + s_released
        hs.d_cost -= removed
        hs.d_realized += notional - removed
        self.book(
            seller, "trade", sell_id, index, cash_available_delta=notional, qty_delta=-q, held_qty_delta=-q
        )
        if s_released:
            self.book(seller, "release", sell_id, held_qty_delta=-s_released)
        self.notify(buyer, buy_id, _EVENT_OF_STATUS[buy_status])
        self.notify(seller, sell_id, _EVENT_OF_STATUS[sell_status])

    def canceled(self, ev: Canceled) -> None:
        change = self.order(ev.order_id)
        status = ev.status
        change.status = status.value
        change.canceled_qty += ev.canceled_qty
        change.reason = ev.reason.value
        side = ev.side.value
        amount = ev.released_cash if side == Side.BUY.value else ev.released_qty
        if side == Side.BUY.value:
            change.hold_cash -= amount
        else:
            change.hold_qty -= amount
        self.release(ev.account, side, amount, ev.order_id)
        self.notify(ev.account, ev.order_id, "expired" if status is OrderStatus.EXPIRED else "canceled")

    def rejected(self, command: Command, ev: Rejected) -> None:
        if ev.order_id is None:
            return  # a mass cancel with nothing to cancel
        amount = ev.released_cash + ev.released_qty  # for an unknown order the engine cannot tell which
        if isinstance(command, NewOrder):
            if ev.reason is RejectReason.DUPLICATE_ORDER_ID:
                return  # the original is live in the book; this copy changes nothing (and holds nothing)
            change = self.order(ev.order_id)
            change.status = OrderStatus.REJECTED.value
            change.reason = ev.reason.value
            change.canceled_qty += command.qty  # leaves 0: qty = filled + leaves + canceled holds
            side = command.side.value
            if side == Side.BUY.value:
                change.hold_cash -= amount
            else:
                change.hold_qty -= amount
            self.release(ev.account, side, amount, ev.order_id)
            self.notify(ev.account, ev.order_id, "rejected")
        elif isinstance(command, Replace):
            ref = self.refs.get(ev.order_id)
            if ref is None or not amount:
                return
            # Released by settle_batch with a conditional update: the reconciler may already have given a
            # stranded pending hold back (release_stranded_holds), and a hold goes back exactly once.
            self.pending_releases.append((ref, amount))
            self.notify(ref.account_id, ev.order_id, "rejected")
        # a rejected Cancel changes nothing: the order is already final or not this account's

    def changed(self, command: Command, ev: Reduced | Replaced) -> None:
        ref = self.refs[ev.order_id]
        change = self.order(ev.order_id)
        change.qty = ev.qty
        extra = command.extra_hold if isinstance(command, Replace) else 0
        amount = ev.released_cash + ev.released_qty
        change.pending_hold -= extra
        if ref.side == Side.BUY.value:
            change.hold_cash += extra - amount
        else:
            change.hold_qty += extra - amount
        if ev.__class__ is Replaced:
            change.seq = ev.seq
            change.set_prices = True
            change.limit_price = ev.price  # type: ignore[union-attr]
            change.stop_price = ev.stop_price  # type: ignore[union-attr]
            self.notify(ev.account, ev.order_id, "replaced")
        else:
            self.notify(ev.account, ev.order_id, "reduced")
        self.release(ev.account, ref.side, amount, ev.order_id)


def _insert_missing_positions(session: Session, symbol: str, accounts: Iterable[int]) -> None:
    rows = [
        {"account_id": a, "symbol": symbol, "qty": 0, "held_qty": 0, "cost_basis": 0, "realized_pnl": 0}
        for a in sorted(accounts)
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(_positions) if dialect == "postgresql" else sqlite.insert(_positions)
    session.connection().execute(ins.on_conflict_do_nothing(index_elements=["account_id", "symbol"]), rows)


_UPDATE_CHECKPOINT = (
    update(_checkpoints)
    .where(
        _checkpoints.c.symbol == bindparam("c_symbol"), _checkpoints.c.fencing_token == bindparam("c_token")
    )
    .values(stream_id=bindparam("c_stream_id"), seq=bindparam("c_seq"), updated_at=bindparam("c_now"))
)
_UPDATE_ACCOUNT = (
    update(_accounts)
    .where(_accounts.c.id == bindparam("a_id"))
    .values(
        cash_available=_accounts.c.cash_available + bindparam("a_avail"),
        cash_held=_accounts.c.cash_held + bindparam("a_held"),
    )
)
_UPDATE_POSITION = (
    update(_positions)
    .where(_positions.c.account_id == bindparam("p_account"), _positions.c.symbol == bindparam("p_symbol"))
    .values(
        qty=_positions.c.qty + bindparam("p_qty"),
        held_qty=_positions.c.held_qty + bindparam("p_held"),
        cost_basis=_positions.c.cost_basis + bindparam("p_cost"),
        realized_pnl=_positions.c.realized_pnl + bindparam("p_realized"),
    )
)
_o = _orders.c
_UPDATE_ORDER = (
    update(_orders)
    .where(_o.id == bindparam("o_id"))
    .values(
        filled_qty=_o.filled_qty + bindparam("o_fq"),
        filled_notional=_o.filled_notional + bindparam("o_fn"),
        canceled_qty=_o.canceled_qty + bindparam("o_cq"),
        hold_cash=_o.hold_cash + bindparam("o_hc"),
        hold_qty=_o.hold_qty + bindparam("o_hq"),
        pending_hold=_o.pending_hold + bindparam("o_ph"),
        status=func.coalesce(cast(bindparam("o_status"), String), _o.status),
        seq=func.coalesce(cast(bindparam("o_seq"), BigInteger), _o.seq),
        qty=func.coalesce(cast(bindparam("o_qty"), BigInteger), _o.qty),
        reason=func.coalesce(cast(bindparam("o_reason"), String), _o.reason),
        triggered=func.coalesce(cast(bindparam("o_trig"), Boolean), _o.triggered),
        limit_price=case(
            (cast(bindparam("o_setp"), Boolean), cast(bindparam("o_lp"), BigInteger)), else_=_o.limit_price
        ),
        stop_price=case(
            (cast(bindparam("o_setp2"), Boolean), cast(bindparam("o_sp"), BigInteger)), else_=_o.stop_price
        ),
        updated_at=bindparam("o_now"),
    )
)


def _write_rows(
    conn: Connection,
    symbol: str,
    moved: list[tuple[int, _Holding]],
    orders: list[tuple[int, _OrderChange]],
    trades: list[dict],
    ledger: list[dict],
    now: datetime,
) -> None:
    """Portable path (SQLite): one executemany per table."""
    if moved:
        conn.execute(
            _UPDATE_POSITION,
            [
                {"p_account": a, "p_symbol": symbol, "p_qty": h.d_qty, "p_held": h.d_held, "p_cost": h.d_cost,
                 "p_realized": h.d_realized}
                for a, h in moved
            ],
        )  # fmt: skip
    if orders:
        conn.execute(
            _UPDATE_ORDER,
            [
                {"o_id": oid, "o_fq": c.filled_qty, "o_fn": c.filled_notional, "o_cq": c.canceled_qty,
                 "o_hc": c.hold_cash, "o_hq": c.hold_qty, "o_ph": c.pending_hold, "o_status": c.status,
                 "o_seq": c.seq, "o_qty": c.qty, "o_reason": c.reason, "o_trig": c.triggered,
                 "o_setp": c.set_prices, "o_lp": c.limit_price, "o_setp2": c.set_prices, "o_sp": c.stop_price,
                 "o_now": now}
                for oid, c in orders
            ],
        )  # fmt: skip
    if trades:
        conn.execute(insert(_trades), trades)
    if ledger:
        conn.execute(insert(_ledger), ledger)


# PostgreSQL: one statement per table, the batch passed as arrays and joined with unnest(). A few hundred
# rows cost one round trip and one prepared statement instead of per-row parameter handling.
_PG_POSITIONS = text("""
    UPDATE positions AS p SET qty = p.qty + d.dq, held_qty = p.held_qty + d.dh,
        cost_basis = p.cost_basis + d.dc, realized_pnl = p.realized_pnl + d.dr
    FROM unnest(CAST(:acct AS BIGINT[]), CAST(:dq AS BIGINT[]), CAST(:dh AS BIGINT[]), CAST(:dc AS BIGINT[]),
                CAST(:dr AS BIGINT[])) AS d(acct, dq, dh, dc, dr)
    WHERE p.symbol = :symbol AND p.account_id = d.acct""")
_PG_ORDERS = text("""
    UPDATE orders AS o SET
        filled_qty = o.filled_qty + d.fq, filled_notional = o.filled_notional + d.fn,
        canceled_qty = o.canceled_qty + d.cq, hold_cash = o.hold_cash + d.hc, hold_qty = o.hold_qty + d.hq,
        pending_hold = o.pending_hold + d.ph, status = COALESCE(d.status, o.status),
        seq = COALESCE(d.seq, o.seq),
        qty = COALESCE(d.qty, o.qty), reason = COALESCE(d.reason, o.reason),
        triggered = COALESCE(d.trig, o.triggered),
        limit_price = CASE WHEN d.setp THEN d.lp ELSE o.limit_price END,
        stop_price = CASE WHEN d.setp THEN d.sp ELSE o.stop_price END,
        updated_at = :now
    FROM unnest(CAST(:id AS BIGINT[]), CAST(:fq AS BIGINT[]), CAST(:fn AS BIGINT[]), CAST(:cq AS BIGINT[]),
                CAST(:hc AS BIGINT[]), CAST(:hq AS BIGINT[]), CAST(:ph AS BIGINT[]),
                CAST(:status AS VARCHAR[]), CAST(:seq AS BIGINT[]), CAST(:qty AS BIGINT[]),
                CAST(:reason AS VARCHAR[]), CAST(:trig AS BOOLEAN[]), CAST(:setp AS BOOLEAN[]),
                CAST(:lp AS BIGINT[]), CAST(:sp AS BIGINT[]))
        AS d(id, fq, fn, cq, hc, hq, ph, status, seq, qty, reason, trig, setp, lp, sp)
    WHERE o.id = d.id""")
# The ids come from the column's default (the trades sequence) and are returned with each row's seq
# (unique within the symbol), so the ledger rows can point at them without a nextval round trip first.
_PG_TRADES = text("""
    INSERT INTO trades (symbol, seq, price, qty, aggressor, buy_order_id, sell_order_id, buyer_account_id,
                        seller_account_id, executed_at)
    SELECT * FROM unnest(CAST(:symbol AS VARCHAR[]), CAST(:seq AS BIGINT[]),
        CAST(:price AS BIGINT[]), CAST(:qty AS BIGINT[]), CAST(:aggressor AS VARCHAR[]),
        CAST(:buy AS BIGINT[]), CAST(:sell AS BIGINT[]), CAST(:buyer AS BIGINT[]), CAST(:seller AS BIGINT[]),
        CAST(:at AS TIMESTAMPTZ[]))
    RETURNING id, seq""")
_PG_LEDGER = text("""
    INSERT INTO ledger (account_id, kind, symbol, cash_available_delta, cash_held_delta, qty_delta,
                        held_qty_delta, order_id, trade_id, created_at)
    SELECT d.*, CAST(:now AS TIMESTAMPTZ) FROM unnest(CAST(:acct AS BIGINT[]), CAST(:kind AS VARCHAR[]),
        CAST(:symbol AS VARCHAR[]), CAST(:ca AS BIGINT[]), CAST(:ch AS BIGINT[]), CAST(:q AS BIGINT[]),
        CAST(:hq AS BIGINT[]), CAST(:oid AS BIGINT[]), CAST(:tid AS BIGINT[]))
        AS d(acct, kind, symbol, ca, ch, q, hq, oid, tid)""")


# What schema.views.order_view / position_view read; the pushes are built from rows with these columns.
ORDER_VIEW_COLUMNS = (
    "id", "client_order_id", "symbol", "side", "type", "time_in_force", "qty", "filled_qty", "canceled_qty",
    "filled_notional", "limit_price", "stop_price", "expire_at", "post_only", "stp", "status", "reason",
    "hold_cash", "hold_qty", "pending_hold", "created_at", "updated_at",
)  # fmt: skip
POSITION_VIEW_COLUMNS = ("account_id", "symbol", "qty", "held_qty", "cost_basis", "realized_pnl")
_PG_POSITIONS_RETURNING = text(
    _PG_POSITIONS.text + " RETURNING " + ", ".join(f"p.{c}" for c in POSITION_VIEW_COLUMNS)
)
_PG_ORDERS_RETURNING = text(_PG_ORDERS.text + " RETURNING " + ", ".join(f"o.{c}" for c in ORDER_VIEW_COLUMNS))


def _write_arrays(
    conn: Connection,
    symbol: str,
    moved: list[tuple[int, _Holding]],
    orders: list[tuple[int, _OrderChange]],
    trades: list[dict],
    ledger: list[dict],
    now: datetime,
    returning: bool = False,
) -> tuple[list[Any], list[Any]]:
    """Write the batch; with `returning`, also return the updated (positions, orders) rows: the state after
    the batch, for the pushes, at no extra round trip."""
    position_rows: list[Any] = []
    order_rows: list[Any] = []
    if moved:
        result = conn.execute(
            _PG_POSITIONS_RETURNING if returning else _PG_POSITIONS,
            {"symbol": symbol, "acct": [a for a, _ in moved], "dq": [h.d_qty for _, h in moved],
             "dh": [h.d_held for _, h in moved], "dc": [h.d_cost for _, h in moved],
             "dr": [h.d_realized for _, h in moved]},
        )  # fmt: skip
        if returning:
            position_rows = result.all()
    if orders:
        cs = [c for _, c in orders]
        result = conn.execute(
            _PG_ORDERS_RETURNING if returning else _PG_ORDERS,
            {"now": now, "id": [oid for oid, _ in orders], "fq": [c.filled_qty for c in cs],
             "fn": [c.filled_notional for c in cs], "cq": [c.canceled_qty for c in cs],
             "hc": [c.hold_cash for c in cs], "hq": [c.hold_qty for c in cs],
             "ph": [c.pending_hold for c in cs],
             "status": [c.status for c in cs], "seq": [c.seq for c in cs], "qty": [c.qty for c in cs],
             "reason": [c.reason for c in cs], "trig": [c.triggered for c in cs],
             "setp": [c.set_prices for c in cs], "lp": [c.limit_price for c in cs],
             "sp": [c.stop_price for c in cs]},
        )  # fmt: skip
        if returning:
            order_rows = result.all()
    if trades:
        returned = conn.execute(
            _PG_TRADES,
            {"symbol": [t["symbol"] for t in trades],
             "seq": [t["seq"] for t in trades], "price": [t["price"] for t in trades],
             "qty": [t["qty"] for t in trades], "aggressor": [t["aggressor"] for t in trades],
             "buy": [t["buy_order_id"] for t in trades], "sell": [t["sell_order_id"] for t in trades],
             "buyer": [t["buyer_account_id"] for t in trades],
             "seller": [t["seller_account_id"] for t in trades],
             "at": [t["executed_at"] for t in trades]},
        )  # fmt: skip
        id_of_seq = {r.seq: r.id for r in returned}
        _set_trade_ids(trades, ledger, [id_of_seq[t["seq"]] for t in trades])
    else:
        for row in ledger:
            del row["_trade"]
    if ledger:
        conn.execute(
            _PG_LEDGER,
            {"now": now, "acct": [r["account_id"] for r in ledger], "kind": [r["kind"] for r in ledger],
             "symbol": [r["symbol"] for r in ledger], "ca": [r["cash_available_delta"] for r in ledger],
             "ch": [r["cash_held_delta"] for r in ledger], "q": [r["qty_delta"] for r in ledger],
             "hq": [r["held_qty_delta"] for r in ledger], "oid": [r["order_id"] for r in ledger],
             "tid": [r["trade_id"] for r in ledger]},
        )  # fmt: skip
    return position_rows, order_rows


_ORDER_VIEW_SELECT = tuple(_orders.c[c] for c in ORDER_VIEW_COLUMNS)
_POSITION_VIEW_SELECT = tuple(_positions.c[c] for c in POSITION_VIEW_COLUMNS)


def _view_rows(
    session: Session, conn: Connection, out: Settled, order_rows: list[Any], position_rows: list[Any]
) -> None:
    """Fill out.order_rows / account_rows / position_rows with the state after the batch (in the settlement
    transaction, after its writes): what RETURNING gave, plus one SELECT per table for the rest (every row
    on SQLite; on PostgreSQL the accounts, whose UPDATE is a per-row executemany kept in id order for the
    lock order, and the rare order or position with an event but no UPDATE of its own)."""
    want = {oid for _, oid, _ in out.order_events}
    if want:
        rows = {r.id: r for r in order_rows if r.id in want}
        missing = want.difference(rows)
        if missing:
            for r in conn.execute(select(*_ORDER_VIEW_SELECT).where(among(session, _orders.c.id, missing))):
                rows[r.id] = r
        out.order_rows = rows
    if out.accounts:
        out.account_rows = conn.execute(
            select(_accounts.c.id, _accounts.c.cash_available, _accounts.c.cash_held).where(
                among(session, _accounts.c.id, out.accounts)
            )
        ).all()
    if out.positions:
        got = [r for r in position_rows if r.account_id in out.positions]
        missing = out.positions.difference(r.account_id for r in got)
        if missing:
            got.extend(
                conn.execute(
                    select(*_POSITION_VIEW_SELECT).where(
                        _positions.c.symbol == out.symbol, among(session, _positions.c.account_id, missing)
                    )
                ).all()
            )
        out.position_rows = got


def _set_trade_ids(trades: list[dict], ledger: list[dict], ids: Sequence[int]) -> None:
    """Give the batch's trades their ids and point the ledger rows at them (drops the "_trade" index)."""
    for row, trade_id in zip(trades, ids, strict=True):
        row["id"] = trade_id
    for row in ledger:
        index = row.pop("_trade")
        if index is not None:
            row["trade_id"] = ids[index]


def _trade_ids(session: Session, n: int) -> list[int]:
    """Ids for `n` new trades, taken before the insert so the ledger rows can point at them and the insert
    is a plain pipelined executemany (RETURNING over many rows costs a large, never-cached statement)."""
    conn = session.connection()
    if session.get_bind().dialect.name == "postgresql":
        return list(
            conn.execute(
                text("SELECT nextval(pg_get_serial_sequence('trades', 'id')) FROM generate_series(1, :n)"),
                {"n": n},
            ).scalars()
        )
    # SQLite: settlement holds the database's write lock (the checkpoint update came first), so no other
    # transaction can insert a trade between this read and the insert.
    top = conn.execute(select(func.coalesce(func.max(_trades.c.id), 0))).scalar_one()
    return list(range(top + 1, top + 1 + n))


def claim_symbol(session: Session, symbol: str, now: datetime) -> int:
    """Take over `symbol`'s settlement: bump the checkpoint's fencing token and return it (the caller
    commits). From then on a matcher holding an older token fails its next settlement (FencingLost).

    The token lives in SQL, not in a Redis INCR, so a Redis flush cannot hand out a token lower than one
    already used."""
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(_checkpoints) if dialect == "postgresql" else sqlite.insert(_checkpoints)
    session.execute(
        ins.values(
            symbol=symbol, stream_id="0-0", seq=0, fencing_token=0, updated_at=now
        ).on_conflict_do_nothing(index_elements=["symbol"])
    )
    session.execute(
        update(_checkpoints)
        .where(_checkpoints.c.symbol == symbol)
        .values(fencing_token=_checkpoints.c.fencing_token + 1, updated_at=now)
    )
    return session.scalar(select(Checkpoint.fencing_token).where(Checkpoint.symbol == symbol))  # type: ignore[return-value]


def settle_batch(
    session: Session,
    symbol: str,
    steps: Sequence[Step],
    *,
    refs: dict[int, OrderRef],
    stream_id: str,
    seq: int,
    token: int,
    now: datetime,
    views: bool = True,
) -> Settled:
    """Write one batch's effects and the checkpoint (stream id, book seq) in the caller's transaction.

    Raises FencingLost (caller rolls back) if another matcher claimed the symbol, and IntegrityError
    if a trade of this (symbol, seq) was already settled: a repeated settlement fails, it never doubles.

    With `views`, the returned Settled also carries the pushed rows' state after the batch
    (order_rows, account_rows, position_rows), so the publisher needs no read after commit.
    """
    conn = session.connection()
    result = conn.execute(
        _UPDATE_CHECKPOINT,
        {"c_symbol": symbol, "c_token": token, "c_stream_id": stream_id, "c_seq": seq, "c_now": now},
    )
    if result.rowcount != 1:
        raise FencingLost(f"{symbol}: fencing token {token} is stale")

    batch = _Batch(symbol, refs, now)
    traders: set[int] = set()
    share_movers: set[int] = set()
    for command, events in steps:
        for ev in events:
            cls = ev.__class__
            if cls is Trade:
                traders.add(ev.maker_account)  # type: ignore[union-attr]
                traders.add(ev.taker_account)  # type: ignore[union-attr]
            elif ev.released_qty if cls in (Canceled, Rejected, Reduced, Replaced) else False:  # type: ignore[union-attr]
                share_movers.add(ev.account)  # type: ignore[union-attr]
        if isinstance(command, Replace):
            share_movers.add(command.account)
    if traders:
        rows = conn.execute(
            select(_positions.c.account_id, _positions.c.qty, _positions.c.cost_basis).where(
                _positions.c.symbol == symbol, among(session, _positions.c.account_id, traders)
            )
        ).all()
        for r in rows:
            batch.holdings[r.account_id] = _Holding(r.qty, r.cost_basis)
        _insert_missing_positions(session, symbol, traders - {r.account_id for r in rows})
    for command, events in steps:
        batch.apply(command, events)
    for ref, amount in batch.pending_releases:
        released = conn.execute(
            update(_orders)
            .where(_orders.c.id == ref.id, _orders.c.pending_hold >= amount)
            .values(pending_hold=_orders.c.pending_hold - amount)
        )
        if released.rowcount == 1:
            batch.release(ref.account_id, ref.side, amount, ref.id)

    cash = [(a, d[0], d[1]) for a, d in sorted(batch.cash.items()) if d[0] or d[1]]
    if cash:  # accounts first, in id order: the lock order the API uses too (account, then order)
        conn.execute(_UPDATE_ACCOUNT, [{"a_id": a, "a_avail": av, "a_held": he} for a, av, he in cash])
    pg = conn.dialect.name == "postgresql"
    if batch.trades and not pg:  # PostgreSQL: the trades INSERT returns the ids (_write_arrays)
        _set_trade_ids(batch.trades, batch.ledger, _trade_ids(session, len(batch.trades)))
    moved = [
        (a, h) for a, h in sorted(batch.holdings.items()) if h.d_qty or h.d_held or h.d_cost or h.d_realized
    ]
    orders = sorted(batch.orders.items())
    returned_positions: list[Any] = []
    returned_orders: list[Any] = []
    if pg:
        returned_positions, returned_orders = _write_arrays(
            conn, symbol, moved, orders, batch.trades, batch.ledger, now, returning=views
        )
    else:
        for row in batch.ledger:
            row.pop("_trade", None)  # already gone where trades got their ids
        _write_rows(conn, symbol, moved, orders, batch.trades, batch.ledger, now)
    if batch.reference_price is not None:
        conn.execute(
            update(Instrument.__table__)
            .where(Instrument.__table__.c.symbol == symbol)
            .values(reference_price=batch.reference_price)
        )
    batch.out.trades = batch.trades
    if views:
        _view_rows(session, conn, batch.out, returned_orders, returned_positions)
    return batch.out
