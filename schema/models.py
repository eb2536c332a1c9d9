"""SQLAlchemy 2 models: the source of truth for money, shares and orders.

Every amount is an integer: cash and prices in cents (minor units), quantities in shares. The engine's
price unit is the cent, so an engine notional (price * qty) is already cents.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    leaderboard_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    is_agent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Account(Base):
    """One trading account per user. Cash: available + held is the account's cash."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    starting_cash: Mapped[int] = mapped_column(BigInteger)
    cash_available: Mapped[int] = mapped_column(BigInteger, default=0)
    cash_held: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reset_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Position(Base):
    """Shares of one symbol in one account. qty includes held_qty (shares reserved by open sells)."""

    __tablename__ = "positions"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(ForeignKey("instruments.symbol"), primary_key=True)
    qty: Mapped[int] = mapped_column(BigInteger, default=0)
    held_qty: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_basis: Mapped[int] = mapped_column(BigInteger, default=0)  # cents paid for the qty held now
    realized_pnl: Mapped[int] = mapped_column(BigInteger, default=0)  # cents


class Instrument(Base):
    __tablename__ = "instruments"

    symbol: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    tick: Mapped[int] = mapped_column(Integer, default=1)  # cents
    lot: Mapped[int] = mapped_column(Integer, default=1)
    min_qty: Mapped[int] = mapped_column(Integer, default=1)
    max_qty: Mapped[int] = mapped_column(BigInteger, default=1_000_000)
    max_notional: Mapped[int] = mapped_column(BigInteger, default=100_000_000_00)  # cents
    band_bps: Mapped[int] = mapped_column(Integer, default=1000)  # +-10% around reference_price
    reference_price: Mapped[int] = mapped_column(BigInteger)  # cents; previous close
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | halted


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("account_id", "client_order_id", name="uq_orders_account_client_order_id"),
        Index("ix_orders_account_status", "account_id", "status"),
        Index("ix_orders_symbol_status_seq", "symbol", "status", "seq"),
        # The reconciler's scans of pending replaces and replace holds: partial, so they stay as small as
        # the few orders concerned instead of growing with every order ever filled (migration 0007).
        Index(
            "ix_orders_replace_pending",
            "symbol",
            postgresql_where=text("replace_ts IS NOT NULL"),
            sqlite_where=text("replace_ts IS NOT NULL"),
        ),
        Index(
            "ix_orders_pending_hold",
            "symbol",
            postgresql_where=text("pending_hold > 0"),
            sqlite_where=text("pending_hold > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No foreign keys on the three append-heavy tables (orders, trades, ledger): migration 0008.
    account_id: Mapped[int] = mapped_column(BigId)
    client_order_id: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(12))
    side: Mapped[str] = mapped_column(String(4))  # engine.types.Side values
    type: Mapped[str] = mapped_column(String(10))  # engine.types.OrderType values
    time_in_force: Mapped[str] = mapped_column(String(3))
    qty: Mapped[int] = mapped_column(BigInteger)
    limit_price: Mapped[int | None] = mapped_column(BigInteger, default=None)
    stop_price: Mapped[int | None] = mapped_column(BigInteger, default=None)
    expire_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    post_only: Mapped[bool] = mapped_column(Boolean, default=False)
    stp: Mapped[str] = mapped_column(String(16), default="cancel_resting")
    status: Mapped[str] = mapped_column(String(16), default="new")
    filled_qty: Mapped[int] = mapped_column(BigInteger, default=0)
    filled_notional: Mapped[int] = mapped_column(BigInteger, default=0)  # cents; avg = notional / qty
    canceled_qty: Mapped[int] = mapped_column(BigInteger, default=0)
    # What the order still reserves: cash for a buy, shares for a sell. Zero once the order is final.
    hold_cash: Mapped[int] = mapped_column(BigInteger, default=0)
    hold_qty: Mapped[int] = mapped_column(BigInteger, default=0)
    # Reserved by the API for a replace the matcher has not applied yet (cash for a buy, shares for a
    # sell). Kept apart from hold_* so a rebuilt book plus the replayed Replace counts it once.
    pending_hold: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str | None] = mapped_column(String(32), default=None)  # reject or cancel reason
    triggered: Mapped[bool] = mapped_column(Boolean, default=False)
    # Engine sequence of the event that gave the order its queue priority; NULL until sequenced.
    seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the owner asked to cancel (a 202 was answered): the reconciler sends the Cancel again while the
    # order is still open, so a cancel the stream lost is not lost (workers.reconciler).
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The replace the owner asked for (a 202 was answered) that the matcher has not settled yet: its
    # Replace command's ts (epoch ms, the request's identity) and new terms (NULL keeps the term). One at a
    # time per order; the reconciler sends it again while it is pending (workers.reconciler).
    replace_ts: Mapped[int | None] = mapped_column(BigInteger, default=None)
    replace_qty: Mapped[int | None] = mapped_column(BigInteger, default=None)
    replace_limit_price: Mapped[int | None] = mapped_column(BigInteger, default=None)
    replace_stop_price: Mapped[int | None] = mapped_column(BigInteger, default=None)

    @property
    def leaves_qty(self) -> int:
        return self.qty - self.filled_qty - self.canceled_qty


class Trade(Base):
    __tablename__ = "trades"
    # A repeated settlement hits this key and fails loudly instead of doubling money.
    __table_args__ = (
        UniqueConstraint("symbol", "seq", name="uq_trades_symbol_seq"),
        Index("ix_trades_symbol_ts", "symbol", "executed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(12))
    seq: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[int] = mapped_column(BigInteger)
    qty: Mapped[int] = mapped_column(BigInteger)
    aggressor: Mapped[str] = mapped_column(String(4))
    buy_order_id: Mapped[int] = mapped_column(BigId)
    sell_order_id: Mapped[int] = mapped_column(BigId)
    buyer_account_id: Mapped[int] = mapped_column(BigId, index=True)
    seller_account_id: Mapped[int] = mapped_column(BigId, index=True)
    executed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerEntry(Base):
    """One movement of cash or shares. Per account, the sums of the deltas equal the balances:
    sum(cash_available_delta) = cash_available, sum(cash_held_delta) = cash_held, and per symbol
    sum(qty_delta) = position qty, sum(held_qty_delta) = held_qty."""

    __tablename__ = "ledger"
    __table_args__ = (Index("ix_ledger_account_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(12))  # deposit | hold | release | trade | fee | reset
    symbol: Mapped[str | None] = mapped_column(String(12), default=None)
    cash_available_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    cash_held_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    qty_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    held_qty_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    order_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    trade_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Checkpoint(Base):
    """Where a symbol's matcher is: written in the same transaction as the settlement it covers."""

    __tablename__ = "checkpoints"

    symbol: Mapped[str] = mapped_column(ForeignKey("instruments.symbol"), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(40), default="0-0")
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Fencing: settlement only commits while the row's token equals the matcher's lease token.
    fencing_token: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the token
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EquitySnapshot(Base):
    """An account's equity at a session's close, written once by the end-of-day job.

    (account_id, day) is the history's range scan; (day, account_id) INCLUDE equity serves the leaderboard's
    "every account's equity on one day" in one index-only scan.
    """

    __tablename__ = "equity_snapshots"
    __table_args__ = (
        UniqueConstraint("account_id", "day", name="uq_equity_snapshots_account_day"),
        Index("ix_equity_snapshots_day_account", "day", "account_id", postgresql_include=["equity"]),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    day: Mapped[date] = mapped_column(Date)
    equity: Mapped[int] = mapped_column(BigInteger)  # cents: cash + positions_value
    cash: Mapped[int] = mapped_column(BigInteger)  # cents: available + held
    positions_value: Mapped[int] = mapped_column(BigInteger)  # cents, marked at the day's closes
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InstrumentClose(Base):
    """A symbol's close for one trading day: the last trade of the session, or the reference price."""

    __tablename__ = "instrument_closes"
    __table_args__ = (UniqueConstraint("symbol", "day", name="uq_instrument_closes_symbol_day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(ForeignKey("instruments.symbol"))
    day: Mapped[date] = mapped_column(Date)
    close: Mapped[int] = mapped_column(BigInteger)  # cents; the next session's reference price
    source: Mapped[str] = mapped_column(String(10))  # trade | reference
    volume: Mapped[int] = mapped_column(BigInteger, default=0)  # shares traded in the session
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
