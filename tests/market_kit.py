"""A real market for job and agent tests: migrated PostgreSQL, the demo instruments, the in-process bus, a
controllable clock and the backbone's matcher."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from engine.types import OrderType, Side, TimeInForce
from schema import balances
from schema.db import make_engine, make_session_factory
from schema.intake import OrderSpec, Rules, new_order_command, place_order
from schema.migrate import upgrade
from schema.models import Account, Instrument, Order, Position, User
from schema.seed import seed_demo
from schema.settings import Settings
from schema.transport import InProcessBus

_n = itertools.count(1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Market:
    url: str
    sessions: sessionmaker[Session]
    bus: InProcessBus
    clock: Clock

    def user(self, cash: int = 1_000_000, *, agent: bool = False, name: str | None = None) -> int:
        with self.sessions() as s:
            user = User(email=f"u{next(_n)}@example.com", password_hash="x", display_name=name,
                        leaderboard_opt_in=name is not None, is_agent=agent)  # fmt: skip
            s.add(user)
            s.flush()
            account = Account(user_id=user.id, starting_cash=cash, cash_available=0, cash_held=0,
                              created_at=self.clock() - timedelta(days=400))  # fmt: skip
            s.add(account)
            s.flush()
            balances.deposit(s, account.id, cash, self.clock())
            s.commit()
            return account.id

    def grant_shares(self, account_id: int, symbol: str, qty: int, cost_basis: int = 0) -> None:
        """Shares the account owns from before (an issuance), with the ledger row that accounts for them."""
        with self.sessions() as s:
            s.add(Position(account_id=account_id, symbol=symbol, qty=qty, held_qty=0, cost_basis=cost_basis,
                           realized_pnl=0))  # fmt: skip
            balances.record(s, account_id, "deposit", self.clock(), symbol=symbol, qty_delta=qty)
            s.commit()

    def rules(self, symbol: str) -> Rules:
        with self.sessions() as s:
            inst = s.get(Instrument, symbol)
            assert inst is not None
            return Rules.of(inst)

    def place(self, account_id: int, symbol: str, side: str, qty: int, price: int | None = None,
              tif: str = "gtc", expire_at: datetime | None = None) -> int:  # fmt: skip
        kind = OrderType.LIMIT if price else OrderType.MARKET
        gtd_at = expire_at if tif == "gtd" else None
        spec = OrderSpec(symbol, Side(side), kind, TimeInForce(tif), qty, limit_price=price, expire_at=gtd_at)
        now = self.clock()
        with self.sessions() as s:
            placed = place_order(s, account_id, spec, self.rules(symbol), now, expire_at)
        self.bus.publish(symbol, new_order_command(placed.order, placed.hold, int(now.timestamp() * 1000)))
        return placed.order.id

    def order(self, order_id: int) -> Order:
        with self.sessions() as s:
            order = s.get(Order, order_id)
            assert order is not None
            return order

    def account(self, account_id: int) -> Account:
        with self.sessions() as s:
            account = s.get(Account, account_id)
            assert account is not None
            return account

    def matcher(self, symbols: list[str]):  # type: ignore[no-untyped-def]
        from workers.matcher import Matcher

        settings = Settings(database_url=self.url, market_hours="always")
        m = Matcher(self.sessions, self.bus, symbols, settings=settings, clock=self.clock)
        m.start()
        return m


def make_market(url: str, now: datetime | None = None) -> Market:
    upgrade(url)
    sessions = make_session_factory(make_engine(url, pool_size=5))
    with sessions() as s:
        seed_demo(s)
        s.commit()
    return Market(url, sessions, InProcessBus(), Clock(now or datetime(2025, 6, 3, 15, 0, tzinfo=UTC)))
