"""Portfolio analytics: equity curve, trading stats and the leaderboard (formulas in docs/market.md).

The formulas are pure functions over fills and equity points (integer cents in, Decimal out). The query
functions below them take a session, never commit, and read each figure with one indexed query:
  - daily curve: equity_snapshots (account_id, day) range scan;
  - intraday curve: the account's ledger (cash and share deltas) replayed against the symbols' trades;
  - leaderboard: one statement over accounts, users, positions and the (day, account_id) snapshot index.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from schema.calendar import MarketCalendar, trading_day_of
from schema.models import Account, EquitySnapshot, Instrument, LedgerEntry, Position, Trade, User
from schema.money import cents_str

PERIODS = ("1D", "1W", "1M", "all")
TIMEFRAMES = {"1Min": 60, "5Min": 300, "15Min": 900, "1H": 3600, "1D": 86400}
DEFAULT_TIMEFRAME = {"1D": "5Min", "1W": "1H", "1M": "1D", "all": "1D"}
PERIOD_DAYS = {"1D": 1, "1W": 7, "1M": 30}
MAX_POINTS = 2_000
TRADING_DAYS_PER_YEAR = 252
PCT = Decimal("0.0001")  # ratios are reported with 4 decimals (0.0123 = 1.23%)


class AnalyticsError(ValueError):
    """A bad period/timeframe combination (the API answers 422 VALIDATION_ERROR)."""


# ---------------------------------------------------------------------------------------------- formulas


@dataclass(frozen=True, slots=True)
class Fill:
    executed_at: datetime
    symbol: str
    side: str  # buy | sell
    price: int  # cents
    qty: int


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One sell fill closing FIFO lots: pnl = sum((sell price - lot price) * matched qty)."""

    symbol: str
    closed_at: datetime
    qty: int
    pnl: int  # cents


@dataclass(slots=True)
class Lot:
    qty: int
    price: int


def fifo_round_trips(fills: Iterable[Fill]) -> tuple[list[RoundTrip], dict[str, deque[Lot]]]:
    """Match each sell against the oldest open buy lots of its symbol. Returns the closed round trips
    and the open lots. Sell quantity with no lot (shares owned before the fills given) is ignored."""
    lots: dict[str, deque[Lot]] = defaultdict(deque)
    trips: list[RoundTrip] = []
    for fill in sorted(fills, key=lambda f: f.executed_at):
        book = lots[fill.symbol]
        if fill.side == "buy":
            book.append(Lot(fill.qty, fill.price))
            continue
        remaining, matched, pnl = fill.qty, 0, 0
        while remaining and book:
            lot = book[0]
            take = min(remaining, lot.qty)
            pnl += (fill.price - lot.price) * take
            matched += take
            remaining -= take
            lot.qty -= take
            if lot.qty == 0:
                book.popleft()
        if matched:
            trips.append(RoundTrip(fill.symbol, fill.executed_at, matched, pnl))
    return trips, {s: b for s, b in lots.items() if b}


def unrealized_pl(open_lots: dict[str, deque[Lot]], marks: dict[str, int]) -> int:
    return sum(
        (marks[s] - lot.price) * lot.qty for s, book in open_lots.items() for lot in book if s in marks
    )


def ratio(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(PCT)


def daily_returns(curve: Sequence[int]) -> list[Decimal]:
    """r_i = E_i / E_(i-1) - 1 over consecutive points of the daily curve (points after a zero skipped)."""
    return [Decimal(b) / Decimal(a) - 1 for a, b in zip(curve, curve[1:], strict=False) if a > 0]


def max_drawdown(curve: Sequence[int]) -> tuple[Decimal, int]:
    """Largest fall from a running peak: (fraction of the peak, cents). (0, 0) for a rising curve."""
    peak, worst_pct, worst_amount = None, Decimal(0), 0
    for equity in curve:
        peak = equity if peak is None or equity > peak else peak
        if peak > 0:
            fall = peak - equity
            pct = Decimal(fall) / Decimal(peak)
            if pct > worst_pct:
                worst_pct, worst_amount = pct, fall
    return worst_pct.quantize(PCT), worst_amount


def sharpe(returns: Sequence[Decimal]) -> Decimal | None:
    """mean / sample stdev * sqrt(252), risk-free 0. None with fewer than 2 returns or no variation."""
    if len(returns) < 2:
        return None
    stdev = statistics.stdev(returns)
    if stdev == 0:
        return None
    value = statistics.fmean(float(r) for r in returns) / float(stdev) * math.sqrt(TRADING_DAYS_PER_YEAR)
    return Decimal(str(value)).quantize(PCT)


def stats(
    fills: Sequence[Fill],
    curve: Sequence[int],
    marks: dict[str, int],
    equity_now: int,
    previous_close_equity: int,
) -> dict[str, Any]:
    """Every figure of GET /account/stats (docs/market.md). `curve` is the daily equity curve ending with
    the current equity; `previous_close_equity` the equity at the last close (or the starting cash)."""
    trips, open_lots = fifo_round_trips(fills)
    wins = [t.pnl for t in trips if t.pnl > 0]
    losses = [t.pnl for t in trips if t.pnl <= 0]
    dd_pct, dd_amount = max_drawdown(curve)
    notional = sum(f.price * f.qty for f in fills)
    average_equity = Decimal(sum(curve)) / len(curve) if curve else Decimal(0)
    day_change = equity_now - previous_close_equity
    return {
        "realized_pl": cents_str(sum(t.pnl for t in trips)),
        "unrealized_pl": cents_str(unrealized_pl(open_lots, marks)),
        "day_change": cents_str(day_change),
        "day_change_pct": _str(ratio(day_change, previous_close_equity)),
        "round_trips": len(trips),
        "wins": len(wins),
        "losses": len(losses),
        "win_rate": _str(ratio(len(wins), len(trips))),
        "avg_win": None if not wins else cents_str(round(Decimal(sum(wins)) / len(wins))),
        "avg_loss": None if not losses else cents_str(round(Decimal(sum(losses)) / len(losses))),
        "max_drawdown": str(dd_pct),
        "max_drawdown_amount": cents_str(dd_amount),
        "sharpe": _str(sharpe(daily_returns(curve))),
        "traded_notional": cents_str(notional),
        "turnover": _str(ratio(notional, average_equity)),
        "equity": cents_str(equity_now),
    }


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def history_doc(timestamps: Sequence[int], equity: Sequence[int], base_value: int, timeframe: str) -> dict:
    """Alpaca's portfolio-history shape: parallel arrays, profit_loss against base_value."""
    return {
        "timestamp": list(timestamps),
        "equity": [cents_str(e) for e in equity],
        "profit_loss": [cents_str(e - base_value) for e in equity],
        "profit_loss_pct": [_str(ratio(e - base_value, base_value)) or "0" for e in equity],
        "base_value": cents_str(base_value),
        "timeframe": timeframe,
    }


@dataclass(frozen=True, slots=True)
class LedgerMove:
    at: datetime
    cash_delta: int  # available + held
    symbol: str | None
    qty_delta: int


def equity_at(
    cash: int,
    qty: dict[str, int],
    marks: dict[str, int],
    moves: Sequence[LedgerMove],
    prices: dict[str, Sequence[tuple[datetime, int]]],
    bucket_ends: Sequence[datetime],
) -> list[int]:
    """Replay the account's cash and share moves and mark shares at the last trade <= each bucket end.
    `cash`, `qty` and `marks` are the state at the start; moves and prices sorted by time."""
    qty, marks = dict(qty), dict(marks)
    out, m = [], 0
    cursor = {s: 0 for s in prices}
    for end in bucket_ends:
        while m < len(moves) and moves[m].at <= end:
            move = moves[m]
            cash += move.cash_delta
            if move.symbol is not None and move.qty_delta:
                qty[move.symbol] = qty.get(move.symbol, 0) + move.qty_delta
            m += 1
        for symbol, series in prices.items():
            i = cursor[symbol]
            while i < len(series) and series[i][0] <= end:
                marks[symbol] = series[i][1]
                i += 1
            cursor[symbol] = i
        out.append(cash + sum(q * marks.get(s, 0) for s, q in qty.items()))
    return out


# ---------------------------------------------------------------------------------------------- queries


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def current_marks(session: Session, symbols: Iterable[str] | None = None) -> dict[str, int]:
    """Last trade price per symbol (index ix_trades_symbol_ts), else the reference price."""
    query = select(Instrument.symbol, Instrument.reference_price)
    if symbols is not None:
        query = query.where(Instrument.symbol.in_(list(symbols)))
    marks = {}
    for symbol, reference in session.execute(query):
        last = session.scalar(
            select(Trade.price)
            .where(Trade.symbol == symbol)
            .order_by(Trade.executed_at.desc(), Trade.seq.desc())
            .limit(1)
        )
        marks[symbol] = reference if last is None else last
    return marks


def account_equity(session: Session, account_id: int, marks: dict[str, int]) -> tuple[int, int]:
    """(cash, positions_value) now, in cents."""
    account = session.get(Account, account_id)
    if account is None:
        raise LookupError(f"account {account_id} not found")
    positions = session.execute(
        select(Position.symbol, Position.qty).where(Position.account_id == account_id, Position.qty != 0)
    )
    value = sum(qty * marks.get(symbol, 0) for symbol, qty in positions)
    return account.cash_available + account.cash_held, value


def _reset_day(account: Account, calendar: MarketCalendar) -> date | None:
    return None if account.reset_at is None else trading_day_of(_utc(account.reset_at), calendar)


def _close_epoch(day: date, calendar: MarketCalendar) -> int:
    return int(calendar.session_bounds(day)[1].timestamp())


def daily_curve(
    session: Session, account: Account, since: date | None, calendar: MarketCalendar
) -> list[tuple[date, int]]:
    """(day, equity) snapshots after the account's last reset, from `since` (inclusive) on."""
    query = select(EquitySnapshot.day, EquitySnapshot.equity).where(EquitySnapshot.account_id == account.id)
    reset_day = _reset_day(account, calendar)
    floor = max((d for d in (since, reset_day) if d is not None), default=None)
    if floor is not None:
        query = query.where(EquitySnapshot.day >= floor)
    return [(d, e) for d, e in session.execute(query.order_by(EquitySnapshot.day))]


def _base(
    session: Session, account: Account, period: str, today: date, calendar: MarketCalendar
) -> tuple[date | None, int]:
    """The period's base: the last snapshot on or before the cutoff day (and after any reset), else the
    starting cash. 1D: before today; 1W/1M: 7/30 days back; all: the starting cash."""
    if period == "all":
        return None, account.starting_cash
    cutoff = today - timedelta(days=PERIOD_DAYS[period])
    row = session.execute(
        select(EquitySnapshot.day, EquitySnapshot.equity)
        .where(EquitySnapshot.account_id == account.id, EquitySnapshot.day <= cutoff)
        .order_by(EquitySnapshot.day.desc())
        .limit(1)
    ).first()
    reset_day = _reset_day(account, calendar)
    if row is None or (reset_day is not None and row[0] < reset_day):
        return None, account.starting_cash
    return row[0], row[1]


def _check(period: str, timeframe: str | None) -> str:
    if period not in PERIODS:
        raise AnalyticsError(f"period must be one of {', '.join(PERIODS)}")
    timeframe = timeframe or DEFAULT_TIMEFRAME[period]
    if timeframe not in TIMEFRAMES:
        raise AnalyticsError(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
    return timeframe


def portfolio_history(
    session: Session,
    account_id: int,
    now: datetime,
    calendar: MarketCalendar,
    period: str = "1M",
    timeframe: str | None = None,
    marks: dict[str, int] | None = None,
) -> dict:
    timeframe = _check(period, timeframe)
    account = session.get(Account, account_id)
    if account is None:
        raise LookupError(f"account {account_id} not found")
    now = _utc(now)
    today = trading_day_of(now, calendar)
    base_day, base_value = _base(session, account, period, today, calendar)
    if timeframe == "1D":
        marks = current_marks(session) if marks is None else marks
        cash, value = account_equity(session, account_id, marks)
        since = None if period == "all" else today - timedelta(days=PERIOD_DAYS[period]) + timedelta(days=1)
        points = [(_close_epoch(d, calendar), e) for d, e in daily_curve(session, account, since, calendar)]
        start = (
            _close_epoch(base_day, calendar)
            if base_day
            else int(_utc(account.reset_at or account.created_at).timestamp())
        )
        points = [(start, base_value)] + [p for p in points if p[0] > start and p[0] < now.timestamp()]
        points.append((int(now.timestamp()), cash + value))
        return history_doc([t for t, _ in points], [e for _, e in points], base_value, timeframe)
    return _intraday_history(session, account, now, period, timeframe, base_value)


def _intraday_history(
    session: Session, account: Account, now: datetime, period: str, timeframe: str, base_value: int
) -> dict:
    step = TIMEFRAMES[timeframe]
    start = now - timedelta(days=PERIOD_DAYS.get(period, 30))
    floor = _utc(account.reset_at) if account.reset_at is not None else None
    if floor is not None and floor > start:
        start = floor
    first = (int(start.timestamp()) // step + 1) * step
    ends = [datetime.fromtimestamp(t, UTC) for t in range(first, int(now.timestamp()) + 1, step)]
    if len(ends) > MAX_POINTS:
        raise AnalyticsError(
            f"{period} at {timeframe} is more than {MAX_POINTS} points: use a larger timeframe"
        )
    # State at `start`: the ledger's sums (cash is available + held; qty includes held shares).
    cash = session.scalar(
        select(
            func.coalesce(func.sum(LedgerEntry.cash_available_delta + LedgerEntry.cash_held_delta), 0)
        ).where(LedgerEntry.account_id == account.id, LedgerEntry.created_at <= start)
    )
    qty = dict(
        session.execute(
            select(LedgerEntry.symbol, func.sum(LedgerEntry.qty_delta))
            .where(
                LedgerEntry.account_id == account.id,
                LedgerEntry.created_at <= start,
                LedgerEntry.symbol.is_not(None),
            )
            .group_by(LedgerEntry.symbol)
        ).all()
    )
    moves = [
        LedgerMove(_utc(at), cash_delta, symbol, qty_delta)
        for at, cash_delta, symbol, qty_delta in session.execute(
            select(
                LedgerEntry.created_at,
                LedgerEntry.cash_available_delta + LedgerEntry.cash_held_delta,
                LedgerEntry.symbol,
                LedgerEntry.qty_delta,
            )
            .where(
                LedgerEntry.account_id == account.id,
                LedgerEntry.created_at > start,
                or_(
                    LedgerEntry.qty_delta != 0,
                    LedgerEntry.cash_available_delta + LedgerEntry.cash_held_delta != 0,
                ),
            )
            .order_by(LedgerEntry.id)
        )
    ]
    symbols = {s for s, q in qty.items() if q} | {m.symbol for m in moves if m.symbol is not None}
    marks, prices = {}, {}
    for symbol in symbols:
        before = session.scalar(
            select(Trade.price)
            .where(Trade.symbol == symbol, Trade.executed_at <= start)
            .order_by(Trade.executed_at.desc(), Trade.seq.desc())
            .limit(1)
        )
        marks[symbol] = before if before is not None else session.get(Instrument, symbol).reference_price  # type: ignore[union-attr]
        prices[symbol] = [
            (_utc(at), price)
            for at, price in session.execute(
                select(Trade.executed_at, Trade.price)
                .where(Trade.symbol == symbol, Trade.executed_at > start)
                .order_by(Trade.executed_at, Trade.seq)
            )
        ]
    equity = equity_at(int(cash), {s: int(q) for s, q in qty.items()}, marks, moves, prices, ends)
    return history_doc([int(e.timestamp()) for e in ends], equity, base_value, timeframe)


def account_fills(session: Session, account_id: int, since: datetime | None) -> list[Fill]:
    query = select(Trade).where(
        or_(Trade.buyer_account_id == account_id, Trade.seller_account_id == account_id)
    )
    if since is not None:
        query = query.where(Trade.executed_at >= since)
    fills = []
    for trade in session.scalars(query.order_by(Trade.executed_at, Trade.id)):
        at = _utc(trade.executed_at)
        if trade.buyer_account_id == account_id:
            fills.append(Fill(at, trade.symbol, "buy", trade.price, trade.qty))
        if trade.seller_account_id == account_id:
            fills.append(Fill(at, trade.symbol, "sell", trade.price, trade.qty))
    return fills


def account_stats(
    session: Session,
    account_id: int,
    now: datetime,
    calendar: MarketCalendar,
    marks: dict[str, int] | None = None,
) -> dict:
    account = session.get(Account, account_id)
    if account is None:
        raise LookupError(f"account {account_id} not found")
    now = _utc(now)
    today = trading_day_of(now, calendar)
    marks = current_marks(session) if marks is None else marks
    cash, value = account_equity(session, account_id, marks)
    equity_now = cash + value
    snapshots = [(d, e) for d, e in daily_curve(session, account, None, calendar) if d < today]
    previous_close = snapshots[-1][1] if snapshots else account.starting_cash
    # The curve starts at the starting cash (the day before the first snapshot) and ends now.
    curve = [account.starting_cash] + [e for _, e in snapshots] + [equity_now]
    since = _utc(account.reset_at) if account.reset_at is not None else None
    return stats(account_fills(session, account_id, since), curve, marks, equity_now, previous_close)


_LEADERBOARD_SQL = """
WITH marks(symbol, price) AS (VALUES {marks}),
values_now AS (
    SELECT p.account_id, SUM(p.qty * m.price) AS value
    FROM positions p JOIN marks m ON m.symbol = p.symbol
    WHERE p.qty <> 0
    GROUP BY p.account_id
),
ranked AS (
    SELECT u.display_name,
           a.cash_available + a.cash_held + COALESCE(v.value, 0) AS equity,
           CASE WHEN s.equity IS NULL OR (a.reset_at IS NOT NULL AND a.reset_at > :base_close)
                THEN a.starting_cash ELSE s.equity END AS base
    FROM users u
    JOIN accounts a ON a.user_id = u.id
    LEFT JOIN values_now v ON v.account_id = a.id
    LEFT JOIN equity_snapshots s ON s.account_id = a.id AND s.day = :base_day
    WHERE u.leaderboard_opt_in AND NOT u.is_agent AND u.display_name IS NOT NULL
)
SELECT display_name, equity, base FROM ranked
ORDER BY (equity - base) * 1.0 / NULLIF(base, 0) DESC NULLS LAST, equity DESC, display_name
LIMIT :limit
"""


def leaderboard(
    session: Session,
    now: datetime,
    calendar: MarketCalendar,
    period: str = "1D",
    limit: int = 100,
    marks: dict[str, int] | None = None,
) -> dict:
    """Opted-in people ranked by return % over the period: (equity now - base) / base, where base is each
    account's snapshot on the period's base day (the latest snapshot day <= the cutoff), or its starting cash
    if it has none there or was reset since."""
    if period not in PERIODS:
        raise AnalyticsError(f"period must be one of {', '.join(PERIODS)}")
    now = _utc(now)
    today = trading_day_of(now, calendar)
    base_day: date | None = None
    if period != "all":
        cutoff = today - timedelta(days=PERIOD_DAYS[period])
        base_day = session.scalar(select(func.max(EquitySnapshot.day)).where(EquitySnapshot.day <= cutoff))
    marks = current_marks(session) if marks is None else marks
    params: dict[str, Any] = {"limit": limit, "base_day": base_day}
    params["base_close"] = (
        calendar.session_bounds(base_day)[1] if base_day else datetime(1970, 1, 1, tzinfo=UTC)
    )
    marks_sql = ", ".join(f"(:s{i}, CAST(:p{i} AS BIGINT))" for i in range(len(marks))) or "(NULL, NULL)"
    for i, (symbol, price) in enumerate(marks.items()):
        params[f"s{i}"], params[f"p{i}"] = symbol, price
    rows = session.execute(text(_LEADERBOARD_SQL.format(marks=marks_sql)), params).all()
    entries = []
    for rank, (name, equity, base) in enumerate(rows, start=1):
        entries.append(
            {
                "rank": rank,
                "display_name": name,
                "return_pct": _str(ratio(int(equity) - int(base), int(base))),
                "equity": cents_str(int(equity)),
            }
        )
    return {"period": period, "entries": entries}


def set_profile(session: Session, user_id: int, display_name: str | None, opt_in: bool | None) -> User:
    """PATCH /account/profile (flushes; the caller commits and maps an IntegrityError to 409)."""
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"user {user_id} not found")
    if display_name is not None:
        user.display_name = display_name
    if opt_in is not None:
        if opt_in and user.display_name is None:
            raise AnalyticsError("choose a display_name before opting in to the leaderboard")
        user.leaderboard_opt_in = opt_in
    session.flush()
    return user


class TtlCache:
    """A value per key, recomputed at most every `ttl_s`; once a value exists, a stale one is served while
    one background thread recomputes it (so readers never wait for the slow query after the first)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._values: dict[Any, tuple[float, Any]] = {}
        self._refreshing: set[Any] = set()
        self._lock = threading.Lock()

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._values.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
            stale = hit is not None and key not in self._refreshing
            if stale:
                self._refreshing.add(key)
        if hit is None:
            value = compute()
            with self._lock:
                self._values[key] = (self.clock(), value)
            return value
        if stale:
            threading.Thread(target=self._refresh, args=(key, compute), daemon=True).start()
        return hit[1]

    def _refresh(self, key: Any, compute: Callable[[], Any]) -> None:
        try:
            value = compute()
            with self._lock:
                self._values[key] = (self.clock(), value)
        finally:
            with self._lock:
                self._refreshing.discard(key)
