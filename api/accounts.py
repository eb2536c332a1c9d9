"""Users, accounts and refresh tokens in SQL: registration, login, token rotation and account reset.

Functions take a session and commit where the docstring says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.security import (
    Principal,
    create_access_token,
    hash_password,
    new_refresh_token,
    refresh_token_hash,
    verify_password,
)
from schema import balances
from schema.intake import OPEN_STATUSES
from schema.models import Account, Order, Position, RefreshToken, User
from schema.settings import Settings


@dataclass(frozen=True, slots=True)
class TokenPair:
    principal: Principal
    access_token: str
    refresh_token: str
    expires_in: int

    def view(self) -> dict[str, object]:
        return {
            "user_id": self.principal.user_id,
            "account_id": self.principal.account_id,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


def issue_tokens(session: Session, principal: Principal, settings: Settings, now: datetime) -> TokenPair:
    """A new access token and a new refresh token (stored hashed). Does not commit."""
    ttl = timedelta(minutes=settings.access_token_minutes)
    refresh = new_refresh_token()
    session.add(
        RefreshToken(
            user_id=principal.user_id,
            token_hash=refresh_token_hash(refresh),
            expires_at=now + timedelta(days=settings.refresh_token_days),
            created_at=now,
        )
    )
    access = create_access_token(principal, settings.secret_key, now, ttl)
    return TokenPair(principal, access, refresh, int(ttl.total_seconds()))


def register(
    session: Session, email: str, password: str, display_name: str | None, settings: Settings, now: datetime
) -> TokenPair:
    """Create user + account + starting-cash deposit (ledger) and log in. Commits."""
    password_hash = hash_password(password)
    user = User(email=email, password_hash=password_hash, display_name=display_name, created_at=now)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        taken_email = session.scalar(select(User.id).where(User.email == email)) is not None
        if taken_email:
            raise ApiError(409, "EMAIL_TAKEN", "an account with this email already exists") from exc
        raise ApiError(409, "DISPLAY_NAME_TAKEN", "this display name is taken") from exc
    account = Account(
        user_id=user.id,
        starting_cash=settings.starting_cash_cents,
        cash_available=0,
        cash_held=0,
        created_at=now,
    )
    session.add(account)
    session.flush()
    balances.deposit(session, account.id, settings.starting_cash_cents, now)
    pair = issue_tokens(session, Principal(user.id, account.id), settings, now)
    session.commit()
    return pair


def principal_of(session: Session, user: User) -> Principal:
    account_id = session.scalar(select(Account.id).where(Account.user_id == user.id))
    assert account_id is not None
    return Principal(user.id, account_id)


def login(session: Session, email: str, password: str, settings: Settings, now: datetime) -> TokenPair | None:
    """Tokens if the password matches (commits), else None."""
    user = session.scalar(select(User).where(User.email == email))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        return None
    pair = issue_tokens(session, principal_of(session, user), settings, now)
    session.commit()
    return pair


def rotate(session: Session, token: str, settings: Settings, now: datetime) -> TokenPair:
    """Revoke `token` and issue a new pair (commits). A reused (already revoked) token revokes every token
    of its user: someone holds a stolen copy."""
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == refresh_token_hash(token)))
    if row is None or _naive(row.expires_at) <= _naive(now):
        raise ApiError(401, "UNAUTHORIZED", "invalid or expired refresh token")
    revoked = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if revoked.rowcount != 1:
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == row.user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        session.commit()
        raise ApiError(401, "UNAUTHORIZED", "refresh token already used; log in again")
    user = session.get(User, row.user_id)
    assert user is not None
    pair = issue_tokens(session, principal_of(session, user), settings, now)
    session.commit()
    return pair


def revoke(session: Session, token: str, now: datetime) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == refresh_token_hash(token), RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.commit()


def _naive(ts: datetime) -> datetime:
    """Compare in naive UTC: SQLite returns naive datetimes, PostgreSQL aware ones."""
    return ts.replace(tzinfo=None) if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)


def open_order_symbols(session: Session, account_id: int) -> list[str]:
    return list(
        session.scalars(
            select(Order.symbol)
            .where(Order.account_id == account_id, Order.status.in_(OPEN_STATUSES))
            .distinct()
            .order_by(Order.symbol)
        )
    )


def try_reset(session: Session, account_id: int, starting_cash: int, now: datetime) -> bool:
    """Reset cash to `starting_cash` and close every position, if the account has no open order and
    nothing held (the matcher has released everything). Commits on success; returns False with nothing
    written while orders are still open, or when a concurrent hold or fill changed the balances.

    Every update is conditional on the values read (optimistic, so it holds on SQLite too, where
    FOR UPDATE is a no-op): a hold that slips in between the check and the write makes it fail and
    roll back, so the "reset" ledger entries always bring the ledger sums exactly to the new balances."""
    account = session.scalar(select(Account).where(Account.id == account_id).with_for_update())
    assert account is not None
    positions = session.scalars(select(Position).where(Position.account_id == account_id)).all()
    if account.cash_held or any(p.held_qty for p in positions) or open_order_symbols(session, account_id):
        session.rollback()
        return False
    seen = account.cash_available
    changed = session.execute(
        update(Account)
        .where(Account.id == account_id, Account.cash_available == seen, Account.cash_held == 0)
        .values(cash_available=starting_cash, starting_cash=starting_cash, reset_at=now)
    )
    if changed.rowcount != 1:
        session.rollback()
        return False
    balances.record(session, account_id, "reset", now, cash_available_delta=starting_cash - seen)
    # Plain values first: an ORM UPDATE synchronizes the loaded objects (pos.qty would read 0 after it).
    for symbol, qty, cost, pnl in [(p.symbol, p.qty, p.cost_basis, p.realized_pnl) for p in positions]:
        if not (qty or cost or pnl):
            continue
        changed = session.execute(
            update(Position)
            .where(
                Position.account_id == account_id,
                Position.symbol == symbol,
                Position.qty == qty,
                Position.held_qty == 0,
            )
            .values(qty=0, held_qty=0, cost_basis=0, realized_pnl=0)
        )
        if changed.rowcount != 1:
            session.rollback()
            return False
        balances.record(session, account_id, "reset", now, symbol=symbol, qty_delta=-qty)
    session.commit()
    return True
