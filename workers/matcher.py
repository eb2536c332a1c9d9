"""The matcher: the single writer of its symbols' books. Read a batch, apply, settle in one SQL
transaction with the checkpoint, commit, then (in one Redis pipeline when scaled out) trim the stream
every TRIM_EVERY entries, store depth and ticker, and publish.

Recovery is the start path: claim the symbol (new fencing token), rebuild the book from SQL's open orders
in engine-seq order at the checkpoint's seq, and read the stream after the checkpoint's stream id. The
engine is deterministic, so replaying the unsettled entries gives the same events as the lost run.

Duplicates: the reconciler may publish a NewOrder again (Redis lost it, or the API crashed between its
commit and XADD). Before applying a batch the matcher asks SQL, in one query, which of the batch's orders
the engine has already seen (seq set or status no longer new) and skips those NewOrders; the same order
twice in one batch is skipped by id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from engine.book import OrderBook
from engine.commands import Command, NewOrder, Replace, SetReference, Withdraw
from engine.events import Event
from engine.exchange import Exchange
from engine.types import Side
from schema.marketdata import MarketDataStore
from schema.models import Instrument, Trade
from schema.money import cents_str
from schema.orderbook_load import instrument_spec, load_book_state
from schema.presence import EveryoneListens, Listeners
from schema.settings import Settings
from schema.transport import CommandBus, _id_tuple
from schema.views import (
    account_cash_view,
    fills_for_account,
    market_view,
    order_view,
    position_view,
    trade_view,
)
from workers.lease import Lease, LocalLease
from workers.publisher import Publisher, market_room, user_room
from workers.settlement import FencingLost, Settled, claim_symbol, order_refs, settle_batch

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_S = 1.0
# Settled entries are trimmed from the stream once this many have piled up (an XTRIM per small batch was a
# few percent of the matcher's CPU), on the once-a-second idle pass, and at the end of drain().
TRIM_EVERY = 1000
IDLE_BLOCK_MS = 50
# The matcher waits for more commands (batch_max_ms) only after a read of at least this many: load, not
# a lone order and the one it trades with.
LINGER_FROM_COMMANDS = 4
# ... and only while the read brought fewer than this many: a bigger read is a backlog, whose batch already
# spreads the fixed cost, and waiting would only lengthen the queue the matcher is working off.
LINGER_UNTIL_COMMANDS = 16
_RETRIES = 3
_INSTRUMENT_FIELDS = (
    "symbol",
    "name",
    "tick",
    "lot",
    "min_qty",
    "max_qty",
    "max_notional",
    "band_bps",
    "reference_price",
    "status",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class DayStats:
    """Today's last/high/low/volume for the ticker (UTC day), seeded from SQL trades at start."""

    day: date
    last: int | None = None
    high: int | None = None
    low: int | None = None
    volume: int = 0

    def add(self, price: int, qty: int, when: datetime) -> None:
        if when.date() != self.day:
            self.day, self.high, self.low, self.volume = when.date(), None, None, 0
        self.last = price
        self.high = price if self.high is None else max(self.high, price)
        self.low = price if self.low is None else min(self.low, price)
        self.volume += qty


class _Symbol:
    """One owned symbol: its book and where its stream and checkpoint are."""

    def __init__(self, symbol: str, instrument: SimpleNamespace, exchange: Exchange, cursor: str, token: int):
        self.symbol = symbol
        self.instrument = instrument
        self.exchange = exchange
        self.book: OrderBook = exchange.book(symbol)
        self.cursor = cursor
        self.token = token
        self.stats = DayStats(utcnow().date())
        self.published_seq = self.book.seq  # the last seq a depth message covered
        self.snapshot_at = 0.0
        self.untrimmed = 0  # settled entries still in the stream (at or before the cursor)


def _levels(rows: Sequence[tuple[int, int, int]]) -> list[dict[str, Any]]:
    return [{"price": cents_str(p), "qty": str(q), "orders": c} for p, q, c in rows]


def worth_lingering(last_read: int, read: int) -> bool:
    """Wait for more commands after a read of `read`, the previous one having brought `last_read`?"""
    return last_read >= LINGER_FROM_COMMANDS and 0 < read < LINGER_UNTIL_COMMANDS


class Matcher:
    """Owns `symbols` (those whose lease it gets). Drive it with `start()` then `step()` or `run(stop)`."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        bus: CommandBus,
        symbols: Sequence[str],
        *,
        settings: Settings | None = None,
        lease: Lease | None = None,
        publisher: Publisher | None = None,
        market_data: MarketDataStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        redis_pipeline: Callable[[], Any] | None = None,
        listeners: Listeners | None = None,
    ) -> None:
        """`redis_pipeline`: makes a non-transactional Redis pipeline on which the bus, market-data store
        and publisher queue a batch's post-commit commands (trim, depth/ticker, pushes) as one round trip;
        all three must accept `pipe=`. None: each sends its own. `listeners`: who has a connection open,
        whose account pushes alone are built (schema.presence); None: every account's."""
        self.settings = settings or Settings()
        self.sessions = session_factory
        self.bus = bus
        self.symbols = list(symbols)
        self.lease = lease or LocalLease()
        self.publisher = publisher
        self.market_data = market_data
        self.clock = clock
        self.redis_pipeline = redis_pipeline
        self.listeners: Listeners = listeners or EveryoneListens()
        self.books: dict[str, _Symbol] = {}
        self._next_lease_check = 0.0
        self._next_idle_check = 0.0
        self._poison: set[str] = set()
        self._last_read = 0  # commands the last step read (see _linger)
        self.stats = {"batches": 0, "commands": 0, "skipped": 0, "rebuilds": 0, "fencing_lost": 0}

    # ------------------------------------------------------------------ ownership
    def start(self) -> list[str]:
        """Acquire what leases are free and rebuild those books. Returns the symbols owned."""
        for symbol in self.symbols:
            if symbol not in self.books and self.lease.acquire(symbol):
                self._open(symbol)
        self._next_lease_check = time.monotonic() + self._lease_period()
        return sorted(self.books)

    def close(self) -> None:
        for symbol in list(self.books):
            self.lease.release(symbol)
        self.books.clear()

    def _lease_period(self) -> float:
        return self.settings.lease_ttl_ms / 3000

    def _open(self, symbol: str) -> None:
        """Claim (fencing token), rebuild from SQL at the checkpoint, and set the stream cursor."""
        now = self.clock()
        with self.sessions() as session:
            token = claim_symbol(session, symbol, now)
            session.commit()
        with self.sessions() as session:
            row = session.get(Instrument, symbol)
            if row is None:
                raise LookupError(f"unknown instrument {symbol}")
            instrument = SimpleNamespace(**{f: getattr(row, f) for f in _INSTRUMENT_FIELDS})
            spec = instrument_spec(row)
            state = load_book_state(session, symbol)
            day_start = datetime.combine(now.date(), datetime.min.time(), UTC)
            high, low, volume = session.execute(
                select(
                    func.max(Trade.price), func.min(Trade.price), func.coalesce(func.sum(Trade.qty), 0)
                ).where(Trade.symbol == symbol, Trade.executed_at >= day_start)
            ).one()
            session.rollback()
        exchange = Exchange([spec])
        exchange.book(symbol).load_resting(state.orders, seq=state.seq, last_price=state.last_price)
        st = _Symbol(symbol, instrument, exchange, self._checked_cursor(symbol, state.stream_id), token)
        st.stats = DayStats(now.date(), state.last_price, high, low, int(volume))
        self.books[symbol] = st
        self._store_market_data(st)
        log.info("%s: rebuilt %d open orders at seq %d, stream after %s, token %d",
                 symbol, len(state.orders), state.seq, st.cursor, token)  # fmt: skip

    def _checked_cursor(self, symbol: str, cursor: str) -> str:
        """Redis ids are "<ms>-<n>" and only grow while the stream exists. After Redis restarts empty the
        stream is recreated and ids restart from the clock; normally still above our checkpoint, but if
        the newest id ever handed out is below it, entries after the restart would be invisible to
        `XREAD after cursor`: then everything in the (new) stream is unread, so read it from the start."""
        last = self.bus.last_id(symbol)
        if last is not None and _id_tuple(last) < _id_tuple(cursor):
            log.warning(
                "%s: stream restarted below checkpoint %s (last id %s): reading from 0-0",
                symbol,
                cursor,
                last,
            )
            return "0-0"
        return cursor

    def _drop(self, symbol: str) -> None:
        self.books.pop(symbol, None)

    def _check_leases(self) -> None:
        for symbol in list(self.books):
            try:
                ok = self.lease.renew(symbol)
            except Exception:  # Redis down: keep going, SQL fencing still guards settlement
                log.exception("%s: lease renewal failed", symbol)
                continue
            if not ok:
                log.warning("%s: lease lost, stop matching it", symbol)
                self._drop(symbol)
        for symbol in self.symbols:
            if symbol not in self.books:
                try:
                    if self.lease.acquire(symbol):
                        self._open(symbol)
                except Exception:
                    log.exception("%s: could not take the symbol", symbol)

    # ------------------------------------------------------------------ loop
    def run(self, stop: threading.Event) -> None:
        if not self.books:
            self.start()
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # keep the worker alive; the failed symbol was rebuilt or dropped
                log.exception("matcher step failed")
                time.sleep(0.5)
        self.close()

    def step(self, block_ms: int | None = None) -> int:
        """One read of every owned stream and one settlement per symbol that had entries. Returns the
        number of stream entries processed."""
        now_m = time.monotonic()
        if now_m >= self._next_lease_check:
            self._next_lease_check = now_m + self._lease_period()
            self._check_leases()
        if not self.books:
            time.sleep((block_ms if block_ms is not None else IDLE_BLOCK_MS) / 1000)
            return 0
        afters = {s: st.cursor for s, st in self.books.items()}
        batches = self.bus.read_many(
            afters, self.settings.batch_max_commands, IDLE_BLOCK_MS if block_ms is None else block_ms
        )
        batches = self._linger(afters, batches)
        done = 0
        for symbol, entries in batches.items():
            st = self.books.get(symbol)
            if st is not None and entries:
                done += self._process(st, entries)
        now_m = time.monotonic()
        if now_m >= self._next_idle_check:
            self._next_idle_check = now_m + SNAPSHOT_EVERY_S
            for st in list(self.books.values()):
                if st.symbol not in batches:
                    # idle: did the stream restart below our cursor? and refresh the stored depth and
                    # ticker (a Redis restart drops them; GET /depth must not go empty on a quiet symbol)
                    st.cursor = self._checked_cursor(st.symbol, st.cursor)
                    self._store_market_data(st)
                    self._trim(st)
                if self.publisher is not None:
                    st.snapshot_at = now_m
                    self.publisher.emit("depth_snapshot", self._depth_doc(st), market_room(st.symbol))
            if self.publisher is not None:
                self.publisher.flush()
        return done

    def _linger(
        self, afters: dict[str, str], batches: dict[str, list[tuple[str, Command]]]
    ) -> dict[str, list[tuple[str, Command]]]:
        """Under load, wait up to settings.batch_max_ms for more commands before settling. A batch costs
        about 2 ms of CPU in the matcher and PostgreSQL whatever its size (round trips, statements, the
        commit), so when the last step found several commands, the commands that arrive in the next few ms
        settle with these. A quiet market (a command or an order and its counterparty at a time) never
        waits, nor does a backlog (a read of LINGER_UNTIL_COMMANDS or more)."""
        n = sum(len(entries) for entries in batches.values())
        last, self._last_read = self._last_read, n
        wait_ms, room = self.settings.batch_max_ms, self.settings.batch_max_commands - n
        if not (wait_ms and room > 0 and worth_lingering(last, n)):
            return batches
        time.sleep(wait_ms / 1000)
        cursors = {s: (batches[s][-1][0] if batches.get(s) else cursor) for s, cursor in afters.items()}
        for symbol, entries in self.bus.read_many(cursors, room, 0).items():
            if entries:
                batches.setdefault(symbol, []).extend(entries)
        self._last_read = sum(len(entries) for entries in batches.values())
        return batches

    def drain(self, timeout_s: float = 10.0) -> int:
        """Step until no stream has anything left (tests and benchmarks)."""
        total = 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            n = self.step(block_ms=0)
            total += n
            if n == 0:
                for st in list(self.books.values()):
                    self._trim(st)
                return total
        raise TimeoutError("the streams did not drain")

    # ------------------------------------------------------------------ one batch
    def _process(self, st: _Symbol, entries: list[tuple[str, Command]]) -> int:
        # Refs are needed for the duplicate check (NewOrder) and by settlement for Replace (side, account);
        # Cancel, MassCancel and Expire settle from the engine's events alone.
        ids = {c.order_id for _, c in entries if c.__class__ is NewOrder or c.__class__ is Replace}  # type: ignore[attr-defined]
        ids.update(c.order.order_id for _, c in entries if c.__class__ is Withdraw)  # type: ignore[attr-defined]
        session = self.sessions()
        try:
            for attempt in range(1, _RETRIES + 1):
                try:
                    refs = order_refs(session, ids)
                    break
                except OperationalError:
                    # The matcher's engine has no pre-ping (workers.runner): a connection that died while
                    # pooled fails here first (or its prepared statements were dropped). Nothing is
                    # applied yet, so read again in a fresh transaction.
                    if attempt == _RETRIES:
                        raise
                    session.close()
                    session = self.sessions()
            if session.get_bind().dialect.name != "postgresql":
                # SQLite: a short read; it must not hold a read snapshot into the write below. PostgreSQL
                # (read committed) keeps the connection and transaction for the settlement: one pool
                # checkout, one BEGIN per batch. The read takes no lock; the fence is still the first write.
                session.rollback()
            return self._apply_and_settle(st, entries, refs, session)
        finally:
            session.close()

    def _apply_and_settle(
        self, st: _Symbol, entries: list[tuple[str, Command]], refs: dict, session: Session
    ) -> int:
        steps: list[tuple[Command, list[Event]]] = []
        seen: set[int] = set()
        replaced: set[tuple[int, int]] = set()
        apply = st.exchange.apply
        for entry_id, command in entries:
            if entry_id in self._poison:
                continue  # an entry the engine failed on: skipped, the checkpoint moves past it
            if command.__class__ is NewOrder:
                ref = refs.get(command.order_id)  # type: ignore[union-attr]
                if ref is None or ref.sequenced or command.order_id in seen:  # type: ignore[union-attr]
                    self.stats["skipped"] += 1
                    continue
                seen.add(command.order_id)  # type: ignore[union-attr]
            elif command.__class__ is Withdraw:
                # The reconciler's copy of a NewOrder canceled before any book saw it: skipped like a
                # NewOrder if the engine has seen the order (then the user's Cancel does the work).
                oid = command.order.order_id  # type: ignore[union-attr]
                ref = refs.get(oid)
                if ref is None or ref.sequenced or oid in seen:
                    self.stats["skipped"] += 1
                    continue
                seen.add(oid)
            elif command.__class__ is Replace:
                # Applied only while it is the order's pending request: a copy the reconciler re-sent
                # after the original settled (or twice in one batch) is skipped, never applied twice.
                ref = refs.get(command.order_id)  # type: ignore[union-attr]
                key = (command.order_id, command.ts)  # type: ignore[union-attr]
                if ref is None or ref.replace_ts != command.ts or key in replaced:  # type: ignore[union-attr]
                    self.stats["skipped"] += 1
                    continue
                replaced.add(key)
            elif command.__class__ is SetReference:
                st.instrument.reference_price = command.price  # type: ignore[union-attr]
            try:
                steps.append((command, apply(command)))
            except Exception:
                # An engine bug must not half-apply a batch: remember the entry, throw the book away and
                # rebuild it from SQL; the replay then skips this entry (deterministically, each restart).
                log.exception("%s: engine failed on entry %s %r; skipping it", st.symbol, entry_id, command)
                session.rollback()
                self._poison.add(entry_id)
                self._rebuild(st.symbol)
                return len(entries)
        last_id = entries[-1][0]
        settled = self._settle(st, steps, refs, last_id, session)
        if settled is None:
            return len(entries)
        st.cursor = last_id
        log.debug(
            "%s: settled %d entries %s..%s, seq %d",
            st.symbol,
            len(entries),
            entries[0][0],
            last_id,
            st.book.seq,
        )
        self.stats["batches"] += 1
        self.stats["commands"] += len(entries)
        st.untrimmed += len(entries)
        for t in settled.trades:
            st.stats.add(t["price"], t["qty"], t["executed_at"])
        self._after_commit(st, settled)
        return len(entries)

    def _settle(
        self,
        st: _Symbol,
        steps: list[tuple[Command, list[Event]]],
        refs: dict,
        last_id: str,
        first: Session | None = None,
    ) -> Settled | None:
        """Settle in `first` (the session the refs were read in), retries in fresh sessions."""
        views = self.publisher is not None
        for attempt in range(1, _RETRIES + 1):
            session = first if attempt == 1 and first is not None else self.sessions()
            try:
                settled = settle_batch(
                    session, st.symbol, steps, refs=refs, stream_id=last_id, seq=st.book.seq, token=st.token,
                    now=self.clock(), views=views, commit=True,
                )  # fmt: skip
                session.commit()  # PostgreSQL committed with the writes (commit=True); SQLite commits here
                return settled
            except FencingLost:
                session.rollback()
                log.warning("%s: fenced off by a newer matcher; dropping the symbol", st.symbol)
                self.stats["fencing_lost"] += 1
                self._drop(st.symbol)
                return None
            except OperationalError:
                session.rollback()
                if attempt < _RETRIES:  # deadlock / lock timeout: the same writes are safe to retry
                    log.warning(
                        "%s: settlement attempt %d failed, retrying", st.symbol, attempt, exc_info=True
                    )
                    time.sleep(0.01 * attempt)
                    continue
                self._rebuild(st.symbol)
                return None
            except Exception:
                session.rollback()
                log.exception("%s: settlement failed; rebuilding the book from SQL", st.symbol)
                self._rebuild(st.symbol)
                return None
            finally:
                session.close()
        return None

    def _rebuild(self, symbol: str) -> None:
        """The book ran ahead of SQL: forget it and start again from the checkpoint (same as a restart)."""
        self.stats["rebuilds"] += 1
        self._drop(symbol)
        try:
            self._open(symbol)
        except Exception:
            log.exception("%s: rebuild failed; will retry", symbol)

    # ------------------------------------------------------------------ market data and push
    def _depth_doc(self, st: _Symbol) -> dict[str, Any]:
        snap = st.book.depth(self.settings.depth_levels_published)
        return {"symbol": st.symbol, "seq": snap.seq, "bids": _levels(snap.bids), "asks": _levels(snap.asks)}

    def _ticker_doc(self, st: _Symbol) -> dict[str, Any]:
        s, book, ref = st.stats, st.book, st.instrument.reference_price
        change = None if s.last is None else s.last - ref
        live = {
            "last": None if s.last is None else cents_str(s.last),
            "bid": None if book.best_bid is None else cents_str(book.best_bid),
            "ask": None if book.best_ask is None else cents_str(book.best_ask),
            "change": None if change is None else cents_str(change),
            # percentage points, 2 decimals, rounded half away from zero in integer math
            "change_pct": None if change is None or not ref else _pct(change, ref),
            "volume": str(s.volume),
            "high": None if s.high is None else cents_str(s.high),
            "low": None if s.low is None else cents_str(s.low),
        }
        return market_view(st.instrument, live)

    def _trim(self, st: _Symbol, pipe: Any = None) -> None:
        """Drop the settled entries (at or before the cursor: never one the checkpoint does not cover)."""
        if not st.untrimmed:
            return
        st.untrimmed = 0
        try:
            if pipe is None:
                self.bus.trim(st.symbol, st.cursor)
            else:
                self.bus.trim(st.symbol, st.cursor, pipe)
        except Exception:  # trimming is housekeeping; the checkpoint already says where we are
            log.exception("%s: trim failed", st.symbol)

    def _store_market_data(self, st: _Symbol, pipe: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        depth, ticker = self._depth_doc(st), self._ticker_doc(st)
        if self.market_data is not None:
            try:
                if pipe is None:
                    self.market_data.put(st.symbol, depth, ticker)
                else:
                    self.market_data.put(st.symbol, depth, ticker, pipe)
            except Exception:
                log.exception("%s: market data store write failed", st.symbol)
        return depth, ticker

    def _after_commit(self, st: _Symbol, settled: Settled) -> None:
        """Trim (when due), store depth and ticker, push: all after the commit, and with
        `redis_pipeline` in one Redis round trip, in that order."""
        pipe = self.redis_pipeline() if self.redis_pipeline is not None else None
        if st.untrimmed >= TRIM_EVERY:
            self._trim(st, pipe)
        self._publish_batch(st, settled, pipe)
        if pipe is not None:
            try:
                pipe.execute()
            except Exception:  # housekeeping and pushes: the batch is committed whatever happens here
                log.exception("%s: post-commit Redis pipeline failed", st.symbol)

    def _publish_batch(self, st: _Symbol, settled: Settled, pipe: Any) -> None:
        changes = st.book.take_changes()
        _, ticker = self._store_market_data(st, pipe)
        pub = self.publisher
        if pub is None:
            st.published_seq = st.book.seq
            return
        room = market_room(st.symbol)
        for t in settled.trades:
            pub.emit("trade", trade_view(SimpleNamespace(**t)), room)
        if changes:
            bids = [(p, q, c) for side, p, q, c in reversed(changes) if side is Side.BUY]
            asks = [(p, q, c) for side, p, q, c in changes if side is Side.SELL]
            pub.emit(
                "depth",
                {"symbol": st.symbol, "first_seq": st.published_seq + 1, "last_seq": st.book.seq,
                 "bids": _levels(bids), "asks": _levels(asks)},
                room,
            )  # fmt: skip
            st.published_seq = st.book.seq
        if changes or settled.trades:
            pub.emit("ticker", ticker, room)
        if settled.order_events or settled.accounts or settled.positions:
            self._push_accounts(st, settled, pub)
        if pipe is None:
            pub.flush()
        else:
            pub.flush(pipe)

    def _push_accounts(self, st: _Symbol, settled: Settled, pub: Publisher) -> None:
        """User pushes from the rows settlement returned (state after the batch, no read after commit),
        for the accounts with a connection open now (schema.presence): asked after the commit."""
        # A trade's parties are among `accounts` (their cash moved), as are the account rows' ids.
        involved = settled.accounts | settled.positions | {account for account, _, _ in settled.order_events}
        try:
            listening = self.listeners.among(involved)
        except Exception:  # noqa: BLE001 - not knowing who listens must not cost anyone an update
            log.warning("%s: could not tell who listens; pushing to every account", st.symbol, exc_info=True)
            listening = involved
        if not listening:
            return
        price = st.stats.last if st.stats.last is not None else st.instrument.reference_price
        orders = settled.order_rows
        views: dict[int, dict[str, Any]] = {}  # an order's view once per batch (its state after the batch)
        for account, oid, event in settled.order_events:
            row = orders.get(oid) if account in listening else None
            if row is not None:
                view = views.get(oid)
                if view is None:
                    view = views[oid] = order_view(row)
                pub.emit("order", {"event": event, "order": view}, user_room(account))
        for t in settled.trades:
            parties = {t["buyer_account_id"], t["seller_account_id"]} & listening
            if parties:
                trade = SimpleNamespace(**t)
                for account in parties:
                    for fill in fills_for_account(trade, account):
                        pub.emit("fill", fill, user_room(account))
        for a in settled.account_rows:
            if a.id in listening:
                pub.emit("account", account_cash_view(a), user_room(a.id))
        for p in settled.position_rows:
            if p.account_id in listening:
                pub.emit("position", position_view(p, price), user_room(p.account_id))

    # ------------------------------------------------------------------ inspection
    def book(self, symbol: str) -> OrderBook:
        return self.books[symbol].book

    def state_hash(self, symbol: str) -> str:
        return self.books[symbol].book.state_hash()


def _pct(change: int, ref: int) -> str:
    scaled = abs(change) * 10_000
    q, r = divmod(scaled, ref)
    if 2 * r >= ref:
        q += 1
    sign = "-" if change < 0 and q else ""
    return f"{sign}{q // 100}.{q % 100:02d}"
