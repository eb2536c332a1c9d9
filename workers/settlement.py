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
- Any settled Replace clears its pending request (orders.replace_ts), so the reconciler stops sending it.
Every move writes ledger rows, so per account the ledger sums equal the balances.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
import psycopg.errors
from psycopg.rows import namedtuple_row
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
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
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
    replace_ts: int | None  # the pending replace request's identity (its Replace's ts), if any

    @property
    def sequenced(self) -> bool:
        """The engine has seen this order already (a re-enqueued NewOrder for it is a duplicate)."""
        return self.seq is not None or self.status != _NEW


_NEW = OrderStatus.NEW.value
_REF_COLUMNS = (
    _orders.c.id, _orders.c.account_id, _orders.c.side, _orders.c.status, _orders.c.seq, _orders.c.replace_ts
)  # fmt: skip


def order_refs(session: Session, order_ids: Iterable[int]) -> dict[int, OrderRef]:
    """The refs of `order_ids` that exist in SQL, in one query."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rows = _pg_order_refs(conn, ids)
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
    replace_settled: int | None = None  # the ts of this batch's Replace: its pending request is cleared


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
        elif command.__class__ is Replace and command.order_id in self.refs:  # type: ignore[union-attr]
            # Settled, whatever the engine said: the pending request is done (cleared only if it is still
            # this one, see _UPDATE_ORDER), and the reconciler stops sending it.
            self.order(command.order_id).replace_settled = command.ts  # type: ignore[union-attr]
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
        replace_ts=case((_o.replace_ts == cast(bindparam("o_rts"), BigInteger), None), else_=_o.replace_ts),
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
                 "o_rts": c.replace_settled, "o_now": now}
                for oid, c in orders
            ],
        )  # fmt: skip
    if trades:
        conn.execute(insert(_trades), trades)
    if ledger:
        conn.execute(insert(_ledger), ledger)


# PostgreSQL: psycopg directly, on the session's own connection and transaction. The statements are
# prepared once per connection (SQL PREPARE, `_PG_STATEMENTS`) and a round trip is one simple-protocol
# query of `EXECUTE name(literals); ...` (psycopg's ClientCursor binds the literals): one send, one wait
# and one parse of short EXECUTE texts, against plans the server already has. A batch costs four round
# trips: BEGIN (psycopg's) and the refs (order_refs); the fence and the traders' positions (read before
# the events are walked: realized P&L needs the running cost basis); then every write, the pushed rows'
# state and (commit=True) the COMMIT. Why not psycopg's pipeline mode: its per-statement bookkeeping cost
# the matcher more CPU than the round trips it saved. One statement per table, the batch passed as
# arrays joined with unnest(); the arrays go as PostgreSQL array literals built here (`_ints`, `_texts`,
# ...): psycopg's list dumper inspects every element to choose the array's type.
#
# name -> (parameter types, statement with $n parameters)
_PG_STATEMENTS: dict[str, tuple[str, str]] = {
    "bourse_settle_refs": (
        "bigint[]",
        "SELECT id, account_id, side, status, seq, replace_ts FROM orders WHERE id = ANY($1)",
    ),
    "bourse_settle_fence": (
        "text, bigint, timestamptz, text, bigint",
        """UPDATE checkpoints SET stream_id = $1, seq = $2, updated_at = $3
        WHERE symbol = $4 AND fencing_token = $5""",
    ),
    "bourse_settle_holdings": (
        "text, bigint[]",
        "SELECT account_id, qty, cost_basis FROM positions WHERE symbol = $1 AND account_id = ANY($2)",
    ),
    # Rows are locked by statements of their own, accounts by id and then positions by account, the order
    # of the API's intake function (bourse_place_orders): the order in which an UPDATE ... FROM unnest()
    # reaches its rows is the plan's choice. FOR NO KEY UPDATE, the lock the UPDATEs take anyway: FOR
    # UPDATE would also block the FOR KEY SHARE of the intake's foreign-key checks (a deadlock).
    "bourse_settle_lock_accounts": (
        "bigint[]",
        """SELECT count(*) FROM (SELECT 1 FROM accounts WHERE id = ANY($1)
        ORDER BY id FOR NO KEY UPDATE) AS locked""",
    ),
    "bourse_settle_accounts": (
        "bigint[], bigint[], bigint[]",
        """UPDATE accounts AS a SET cash_available = a.cash_available + d.av, cash_held = a.cash_held + d.he
        FROM unnest($1, $2, $3) AS d(id, av, he)
        WHERE a.id = d.id RETURNING a.id, a.cash_available, a.cash_held""",
    ),
    "bourse_settle_new_positions": (
        "text, bigint[]",
        """INSERT INTO positions (account_id, symbol, qty, held_qty, cost_basis, realized_pnl)
        SELECT a, $1, 0, 0, 0, 0 FROM unnest($2) AS a ON CONFLICT (account_id, symbol) DO NOTHING""",
    ),
    "bourse_settle_lock_positions": (
        "text, bigint[]",
        """SELECT count(*) FROM (SELECT 1 FROM positions WHERE symbol = $1 AND account_id = ANY($2)
        ORDER BY account_id FOR NO KEY UPDATE) AS locked""",
    ),
    "bourse_settle_positions": (
        "text, bigint[], bigint[], bigint[], bigint[], bigint[]",
        """UPDATE positions AS p SET qty = p.qty + d.dq, held_qty = p.held_qty + d.dh,
            cost_basis = p.cost_basis + d.dc, realized_pnl = p.realized_pnl + d.dr
        FROM unnest($2, $3, $4, $5, $6) AS d(acct, dq, dh, dc, dr)
        WHERE p.symbol = $1 AND p.account_id = d.acct
        RETURNING p.account_id, p.symbol, p.qty, p.held_qty, p.cost_basis, p.realized_pnl""",
    ),
    "bourse_settle_orders": (
        "timestamptz, bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], varchar[],"
        " bigint[], bigint[], varchar[], boolean[], boolean[], bigint[], bigint[], bigint[]",
        """UPDATE orders AS o SET
            filled_qty = o.filled_qty + d.fq, filled_notional = o.filled_notional + d.fn,
            canceled_qty = o.canceled_qty + d.cq, hold_cash = o.hold_cash + d.hc,
            hold_qty = o.hold_qty + d.hq,
            pending_hold = o.pending_hold + d.ph, status = COALESCE(d.status, o.status),
            seq = COALESCE(d.seq, o.seq),
            qty = COALESCE(d.qty, o.qty), reason = COALESCE(d.reason, o.reason),
            triggered = COALESCE(d.trig, o.triggered),
            limit_price = CASE WHEN d.setp THEN d.lp ELSE o.limit_price END,
            stop_price = CASE WHEN d.setp THEN d.sp ELSE o.stop_price END,
            replace_ts = CASE WHEN o.replace_ts = d.rts THEN NULL ELSE o.replace_ts END,
            updated_at = $1
        FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
            AS d(id, fq, fn, cq, hc, hq, ph, status, seq, qty, reason, trig, setp, lp, sp, rts)
        WHERE o.id = d.id
        RETURNING o.id, o.client_order_id, o.symbol, o.side, o.type, o.time_in_force, o.qty, o.filled_qty,
            o.canceled_qty, o.filled_notional, o.limit_price, o.stop_price, o.expire_at, o.post_only, o.stp,
            o.status, o.reason, o.hold_cash, o.hold_qty, o.pending_hold, o.created_at, o.updated_at""",
    ),
    # Trades and their ledger rows in one statement: the trades' ids come from the column's default and
    # the ledger rows find theirs by the trade's seq (unique within the symbol); it returns (id, seq) for
    # the pushes. Ledger rows keep the batch's order (WITH ORDINALITY), whatever join the plan picks.
    "bourse_settle_trades_ledger": (
        "text, timestamptz, bigint[], bigint[], bigint[], varchar[], bigint[], bigint[], bigint[], bigint[],"
        " timestamptz[], bigint[], varchar[], varchar[], bigint[], bigint[], bigint[], bigint[], bigint[],"
        " bigint[]",
        """WITH t AS (
            INSERT INTO trades (symbol, seq, price, qty, aggressor, buy_order_id, sell_order_id,
                                buyer_account_id, seller_account_id, executed_at)
            SELECT $1, * FROM unnest($3, $4, $5, $6, $7, $8, $9, $10, $11)
            RETURNING id, seq
        ), l AS (
            INSERT INTO ledger (account_id, kind, symbol, cash_available_delta, cash_held_delta, qty_delta,
                                held_qty_delta, order_id, trade_id, created_at)
            SELECT d.acct, d.kind, d.symbol, d.ca, d.ch, d.q, d.hq, d.oid, t.id, $2
            FROM unnest($12, $13, $14, $15, $16, $17, $18, $19, $20)
                WITH ORDINALITY AS d(acct, kind, symbol, ca, ch, q, hq, oid, tseq, ord)
            LEFT JOIN t ON t.seq = d.tseq
            ORDER BY d.ord
        )
        SELECT id, seq FROM t""",
    ),
    "bourse_settle_reference": (
        "bigint, text",
        "UPDATE instruments SET reference_price = $1 WHERE symbol = $2",
    ),
    "bourse_settle_order_views": (
        "bigint[]",
        """SELECT id, client_order_id, symbol, side, type, time_in_force, qty, filled_qty, canceled_qty,
            filled_notional, limit_price, stop_price, expire_at, post_only, stp, status, reason, hold_cash,
            hold_qty, pending_hold, created_at, updated_at FROM orders WHERE id = ANY($1)""",
    ),
    "bourse_settle_position_views": (
        "text, bigint[]",
        """SELECT account_id, symbol, qty, held_qty, cost_basis, realized_pnl FROM positions
        WHERE symbol = $1 AND account_id = ANY($2)""",
    ),
    "bourse_settle_account_views": (
        "bigint[]",
        "SELECT id, cash_available, cash_held FROM accounts WHERE id = ANY($1)",
    ),
}
_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK
_PREPARED_KEY = "bourse_settle_prepared"  # in the pooled DBAPI connection's info: PREPAREs were sent

# What schema.views.order_view / position_view read; the pushes are built from rows with these columns.
ORDER_VIEW_COLUMNS = (
    "id", "client_order_id", "symbol", "side", "type", "time_in_force", "qty", "filled_qty", "canceled_qty",
    "filled_notional", "limit_price", "stop_price", "expire_at", "post_only", "stp", "status", "reason",
    "hold_cash", "hold_qty", "pending_hold", "created_at", "updated_at",
)  # fmt: skip
POSITION_VIEW_COLUMNS = ("account_id", "symbol", "qty", "held_qty", "cost_basis", "realized_pnl")


def _ints(values: Iterable[int | None]) -> str:
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def _dense_ints(values: Iterable[int]) -> str:
    """`_ints` for values that are never None (most columns): the map is several times faster."""
    return "{" + ",".join(map(str, values)) + "}"


def _texts(values: Iterable[str | None]) -> str:
    # Quoted: an element could be empty or hold a comma, brace or quote.
    return (
        "{"
        + ",".join(
            "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values
        )
        + "}"
    )


def _bools(values: Iterable[bool | None]) -> str:
    return "{" + ",".join("NULL" if v is None else ("t" if v else "f") for v in values) + "}"


def _times(values: Iterable[datetime]) -> str:
    # isoformat keeps the offset of an aware datetime; a naive one is read in the session's time zone,
    # as psycopg's own dumper would have it.
    return "{" + ",".join('"' + v.isoformat() + '"' for v in values) + "}"


def _driver(conn: Connection) -> Any:
    """The psycopg connection under `conn`: the same connection, in the same transaction."""
    return conn.connection.driver_connection


@contextmanager
def _pg_errors(conn: Connection) -> Iterator[None]:
    """psycopg's errors as SQLAlchemy's, as if SQLAlchemy had run the statements (the matcher retries an
    OperationalError and the tests expect an IntegrityError), and a broken connection invalidated so the
    pool never hands it out again (the matcher's engine has no pre-ping)."""
    try:
        yield
    except psycopg.errors.InvalidSqlStatementName as exc:
        # Someone deallocated our prepared statements (DEALLOCATE ALL): prepared again on the next try,
        # so an OperationalError, which the matcher retries on a fresh transaction.
        conn.info.pop(_PREPARED_KEY, None)
        raise OperationalError(None, None, exc) from exc
    except psycopg.Error as exc:
        driver = _driver(conn)
        broken = driver is None or driver.closed or bool(getattr(driver, "broken", False))
        if broken:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=broken, dialect=conn.dialect
        ) from exc


_Call = tuple[str, Sequence[Any]]  # (prepared statement name, its parameters)


@functools.cache
def _pg_sql(name: str, index: int) -> str:
    """Statement `name` as plain SQL for call `index` of a query: each $n a cast named placeholder."""
    types, sql = _PG_STATEMENTS[name]
    kinds = [t.strip() for t in types.split(",")]
    return re.sub(r"\$(\d+)", lambda m: f"CAST(%(c{index}_{m[1]})s AS {kinds[int(m[1]) - 1]})", sql)


def _pg_run(conn: Connection, calls: Sequence[_Call], tail: str = "") -> list[Any]:
    """Run `calls` (then the literal SQL `tail`, e.g. "; COMMIT") as one query: one round trip. Returns
    per call its rows (namedtuples) or, for a statement returning none, its row count.

    The statements are EXECUTEd from SQL-level prepared statements on connections where psycopg prepares
    nothing itself (prepare_threshold None: the matcher's engine, workers.runner.matcher_engine): psycopg
    answers a rollback with DEALLOCATE ALL when it holds prepared statements of its own, which would
    drop ours. Elsewhere (tests, other engines) each call is sent as plain SQL, planned every time."""
    pg = _driver(conn)
    with _pg_errors(conn):
        if pg.prepare_threshold is None:
            info = conn.info
            if not info.get(_PREPARED_KEY):
                # Once per connection. A PREPARE outlives a rollback of the transaction it ran in. The
                # DEALLOCATE ALL first (psycopg holds none here) clears what is left if only some of ours
                # were dropped, which would make a PREPARE fail with "already exists".
                prepares = (f"PREPARE {n}({types}) AS {sql}" for n, (types, sql) in _PG_STATEMENTS.items())
                psycopg.ClientCursor(pg).execute("DEALLOCATE ALL; " + "; ".join(prepares))
                info[_PREPARED_KEY] = True
            query = "; ".join(f"EXECUTE {name}({', '.join(['%s'] * len(args))})" for name, args in calls)
            params: Any = [arg for _, args in calls for arg in args]
        else:
            query = "; ".join(_pg_sql(name, i) for i, (name, _) in enumerate(calls))
            params = {f"c{i}_{n}": arg for i, (_, args) in enumerate(calls) for n, arg in enumerate(args, 1)}
        cur = psycopg.ClientCursor(pg, row_factory=namedtuple_row)
        cur.execute(query + tail, params)
        out: list[Any] = []
        for _ in calls:
            # the result's status, not cur.description, which builds a Column per field
            rows = cur.pgresult is not None and cur.pgresult.status == _TUPLES_OK
            out.append(cur.fetchall() if rows else cur.rowcount)
            cur.nextset()
        return out


def _pg_order_refs(conn: Connection, ids: list[int]) -> list[Any]:
    return _pg_run(conn, [("bourse_settle_refs", (_dense_ints(ids),))])[0]  # type: ignore[no-any-return]


def _pg_fence(
    conn: Connection, symbol: str, token: int, stream_id: str, seq: int, now: datetime, traders: set[int]
) -> list[Any]:
    """The fenced checkpoint update and the traders' positions (account_id, qty, cost_basis): one round
    trip. Raises FencingLost if the token is stale."""
    calls: list[_Call] = [("bourse_settle_fence", (stream_id, seq, now, symbol, token))]
    if traders:
        calls.append(("bourse_settle_holdings", (symbol, _dense_ints(sorted(traders)))))
    got = _pg_run(conn, calls)
    if got[0] != 1:
        raise FencingLost(f"{symbol}: fencing token {token} is stale")
    return got[1] if traders else []  # type: ignore[no-any-return]


def _pg_write(
    conn: Connection,
    batch: _Batch,
    cash: list[tuple[int, int, int]],
    new_positions: list[int],
    moved: list[tuple[int, _Holding]],
    orders: list[tuple[int, _OrderChange]],
    *,
    views: bool,
    commit: bool,
) -> None:
    """Every write of the batch in one round trip, with the COMMIT if `commit` (if a statement fails the
    server skips the rest, the COMMIT included, and the caller rolls back); with `views`, the pushed rows'
    state after the batch into batch.out (RETURNING, and a SELECT for the few pushed rows no statement
    wrote)."""
    symbol, now, out, trades, ledger = batch.symbol, batch.now, batch.out, batch.trades, batch.ledger
    calls: list[_Call] = []
    at: dict[str, int] = {}  # call name -> its index in calls

    def call(name: str, *args: Any) -> None:
        at[name] = len(calls)
        calls.append((name, args))

    if cash:  # accounts first, in id order: the lock order the API uses too (account, then position)
        ids = _dense_ints(a for a, _, _ in cash)
        call("bourse_settle_lock_accounts", ids)
        call(
            "bourse_settle_accounts",
            ids,
            _dense_ints(av for _, av, _ in cash),
            _dense_ints(h for _, _, h in cash),
        )
    if new_positions:
        call("bourse_settle_new_positions", symbol, _dense_ints(new_positions))
    if moved:
        accounts = _dense_ints(a for a, _ in moved)
        call("bourse_settle_lock_positions", symbol, accounts)
        call(
            "bourse_settle_positions", symbol, accounts, _dense_ints(h.d_qty for _, h in moved),
            _dense_ints(h.d_held for _, h in moved), _dense_ints(h.d_cost for _, h in moved),
            _dense_ints(h.d_realized for _, h in moved),
        )  # fmt: skip
    if orders:
        cs = [c for _, c in orders]
        call(
            "bourse_settle_orders", now, _dense_ints(oid for oid, _ in orders),
            _dense_ints(c.filled_qty for c in cs), _dense_ints(c.filled_notional for c in cs),
            _dense_ints(c.canceled_qty for c in cs), _dense_ints(c.hold_cash for c in cs),
            _dense_ints(c.hold_qty for c in cs), _dense_ints(c.pending_hold for c in cs),
            _texts(c.status for c in cs), _ints(c.seq for c in cs), _ints(c.qty for c in cs),
            _texts(c.reason for c in cs), _bools(c.triggered for c in cs), _bools(c.set_prices for c in cs),
            _ints(c.limit_price for c in cs), _ints(c.stop_price for c in cs),
            _ints(c.replace_settled for c in cs),
        )  # fmt: skip
    if ledger:  # every trade writes ledger rows, so no ledger rows means no trades either
        seq_of = [t["seq"] for t in trades]
        call(
            "bourse_settle_trades_ledger", symbol, now, _dense_ints(seq_of),
            _dense_ints(t["price"] for t in trades), _dense_ints(t["qty"] for t in trades),
            _texts(t["aggressor"] for t in trades), _dense_ints(t["buy_order_id"] for t in trades),
            _dense_ints(t["sell_order_id"] for t in trades),
            _dense_ints(t["buyer_account_id"] for t in trades),
            _dense_ints(t["seller_account_id"] for t in trades), _times(t["executed_at"] for t in trades),
            _dense_ints(r["account_id"] for r in ledger), _texts(r["kind"] for r in ledger),
            _texts(r["symbol"] for r in ledger), _dense_ints(r["cash_available_delta"] for r in ledger),
            _dense_ints(r["cash_held_delta"] for r in ledger), _dense_ints(r["qty_delta"] for r in ledger),
            _dense_ints(r["held_qty_delta"] for r in ledger), _ints(r["order_id"] for r in ledger),
            _ints(None if r["_trade"] is None else seq_of[r["_trade"]] for r in ledger),
        )  # fmt: skip
    if batch.reference_price is not None:
        call("bourse_settle_reference", batch.reference_price, symbol)
    missing_orders: set[int] = set()
    missing_positions: set[int] = set()
    missing_accounts: set[int] = set()
    if views:
        # Pushed rows no statement above returns (known before sending): an order whose only event is a
        # rejected replace, an account or position whose deltas summed to zero.
        missing_orders = {oid for _, oid, _ in out.order_events}.difference(batch.orders)
        if missing_orders:
            call("bourse_settle_order_views", _dense_ints(sorted(missing_orders)))
        missing_positions = out.positions.difference(a for a, _ in moved)
        if missing_positions:
            call("bourse_settle_position_views", symbol, _dense_ints(sorted(missing_positions)))
        missing_accounts = out.accounts.difference(a for a, _, _ in cash)
        if missing_accounts:
            call("bourse_settle_account_views", _dense_ints(sorted(missing_accounts)))
    if not calls:
        if commit:
            _pg_run(conn, [], "COMMIT")
        return
    got = _pg_run(conn, calls, "; COMMIT" if commit else "")
    if ledger:
        id_of_seq = {r.seq: r.id for r in got[at["bourse_settle_trades_ledger"]]}
        for t in trades:
            t["id"] = id_of_seq[t["seq"]]
    if not views:
        return
    if out.order_events:
        want = {oid for _, oid, _ in out.order_events}
        rows = {r.id: r for r in got[at["bourse_settle_orders"]] if r.id in want} if orders else {}
        if missing_orders:
            rows.update((r.id, r) for r in got[at["bourse_settle_order_views"]])
        out.order_rows = rows
    if out.accounts:
        account_rows = list(got[at["bourse_settle_accounts"]]) if cash else []
        if missing_accounts:
            account_rows.extend(got[at["bourse_settle_account_views"]])
        out.account_rows = account_rows
    if out.positions:
        position_rows = (
            [r for r in got[at["bourse_settle_positions"]] if r.account_id in out.positions] if moved else []
        )
        if missing_positions:
            position_rows.extend(got[at["bourse_settle_position_views"]])
        out.position_rows = position_rows


_ORDER_VIEW_SELECT = tuple(_orders.c[c] for c in ORDER_VIEW_COLUMNS)
_POSITION_VIEW_SELECT = tuple(_positions.c[c] for c in POSITION_VIEW_COLUMNS)


def _view_rows(session: Session, conn: Connection, out: Settled) -> None:
    """SQLite: fill out.order_rows / account_rows / position_rows with the state after the batch (in the
    settlement transaction, after its writes), one SELECT per table. PostgreSQL gets them from its
    writes' RETURNING (_pg_write)."""
    want = {oid for _, oid, _ in out.order_events}
    if want:
        out.order_rows = {
            r.id: r
            for r in conn.execute(select(*_ORDER_VIEW_SELECT).where(among(session, _orders.c.id, want)))
        }
    if out.accounts:
        out.account_rows = conn.execute(
            select(_accounts.c.id, _accounts.c.cash_available, _accounts.c.cash_held).where(
                among(session, _accounts.c.id, out.accounts)
            )
        ).all()
    if out.positions:
        out.position_rows = conn.execute(
            select(*_POSITION_VIEW_SELECT).where(
                _positions.c.symbol == out.symbol, among(session, _positions.c.account_id, out.positions)
            )
        ).all()


def _set_trade_ids(trades: list[dict], ledger: list[dict], ids: Sequence[int]) -> None:
    """Give the batch's trades their ids and point the ledger rows at them (drops the "_trade" index)."""
    for row, trade_id in zip(trades, ids, strict=True):
        row["id"] = trade_id
    for row in ledger:
        index = row.pop("_trade")
        if index is not None:
            row["trade_id"] = ids[index]


def _trade_ids(session: Session, n: int) -> list[int]:
    """SQLite: ids for `n` new trades, taken before the insert so the ledger rows can point at them.
    Settlement holds the database's write lock (the checkpoint update came first), so no other
    transaction can insert a trade between this read and the insert."""
    top = session.connection().execute(select(func.coalesce(func.max(_trades.c.id), 0))).scalar_one()
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
    commit: bool = False,
) -> Settled:
    """Write one batch's effects and the checkpoint (stream id, book seq) in the caller's transaction.

    Raises FencingLost (caller rolls back) if another matcher claimed the symbol, and IntegrityError
    if a trade of this (symbol, seq) was already settled: a repeated settlement fails, it never doubles.

    With `views`, the returned Settled also carries the pushed rows' state after the batch
    (order_rows, account_rows, position_rows), so the publisher needs no read after commit.

    With `commit`, PostgreSQL commits in the round trip of the writes; the caller still calls
    `session.commit()` (a no-op there, the commit on SQLite).
    """
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    traders: set[int] = set()
    for _command, events in steps:
        for ev in events:
            if ev.__class__ is Trade:
                traders.add(ev.maker_account)  # type: ignore[union-attr]
                traders.add(ev.taker_account)  # type: ignore[union-attr]
    if pg:
        held = _pg_fence(conn, symbol, token, stream_id, seq, now, traders)
    else:
        result = conn.execute(
            _UPDATE_CHECKPOINT,
            {"c_symbol": symbol, "c_token": token, "c_stream_id": stream_id, "c_seq": seq, "c_now": now},
        )
        if result.rowcount != 1:
            raise FencingLost(f"{symbol}: fencing token {token} is stale")
        held = (
            conn.execute(
                select(_positions.c.account_id, _positions.c.qty, _positions.c.cost_basis).where(
                    _positions.c.symbol == symbol, among(session, _positions.c.account_id, traders)
                )
            ).all()
            if traders
            else []
        )
    batch = _Batch(symbol, refs, now)
    for account_id, qty, cost_basis in held:
        batch.holdings[account_id] = _Holding(qty, cost_basis)
    new_positions = sorted(traders.difference(batch.holdings))
    if new_positions and not pg:  # PostgreSQL: in the writes' round trip, before the positions update
        _insert_missing_positions(session, symbol, new_positions)
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
    moved = [
        (a, h) for a, h in sorted(batch.holdings.items()) if h.d_qty or h.d_held or h.d_cost or h.d_realized
    ]
    orders = sorted(batch.orders.items())
    batch.out.trades = batch.trades
    if pg:
        _pg_write(conn, batch, cash, new_positions, moved, orders, views=views, commit=commit)
        return batch.out
    if cash:  # accounts first, in id order: the lock order the API uses too (account, then order)
        conn.execute(_UPDATE_ACCOUNT, [{"a_id": a, "a_avail": av, "a_held": he} for a, av, he in cash])
    if batch.trades:
        _set_trade_ids(batch.trades, batch.ledger, _trade_ids(session, len(batch.trades)))
    for row in batch.ledger:
        row.pop("_trade", None)  # already gone where trades got their ids
    _write_rows(conn, symbol, moved, orders, batch.trades, batch.ledger, now)
    if batch.reference_price is not None:
        conn.execute(
            update(Instrument.__table__)
            .where(Instrument.__table__.c.symbol == symbol)
            .values(reference_price=batch.reference_price)
        )
    if views:
        _view_rows(session, conn, batch.out)
    return batch.out
