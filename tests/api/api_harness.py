"""A Bourse API on a real database, driven over HTTP with Starlette's TestClient (ASGI, same process)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.deps import InstrumentCache, Services
from schema.db import make_engine, make_session_factory
from schema.marketdata import MemoryMarketData
from schema.migrate import upgrade
from schema.models import Account, LedgerEntry, Order, Position
from schema.seed import seed_demo
from schema.settings import Settings
from schema.transport import InProcessBus

_emails = itertools.count(1)


class Clock:
    """A controllable clock; starts at a fixed Tuesday 15:00 UTC (10:00 New York: the market is open)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 3, 3, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class User:
    user_id: int
    account_id: int
    access_token: str
    refresh_token: str
    email: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class Harness:
    url: str
    settings: Settings
    services: Services
    client: TestClient
    clock: Clock
    bus: InProcessBus
    session_factory: sessionmaker[Session]
    published: list[Any] = field(default_factory=list)

    def register(self, email: str | None = None, password: str = "correct horse 1") -> User:
        email = email or f"trader{next(_emails)}@example.com"
        r = self.client.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        d = r.json()
        return User(d["user_id"], d["account_id"], d["access_token"], d["refresh_token"], email, password)

    def post_order(self, user: User, **body: Any) -> Any:
        return self.client.post("/api/v1/orders", json=body, headers=user.headers)

    def grant_shares(self, user: User, symbol: str, qty: int, price_cents: int) -> None:
        """Give an account shares (as if bought earlier), with the matching ledger row."""
        now = self.clock()
        with self.session_factory() as s:
            s.execute(
                insert(Position).values(
                    account_id=user.account_id,
                    symbol=symbol,
                    qty=qty,
                    held_qty=0,
                    cost_basis=qty * price_cents,
                    realized_pnl=0,
                )
            )
            s.execute(
                insert(LedgerEntry).values(
                    account_id=user.account_id, kind="deposit", symbol=symbol, qty_delta=qty, created_at=now
                )
            )
            s.commit()

    def snapshot(self) -> dict[str, Any]:
        """Everything a rejected request must leave unchanged."""
        with self.session_factory() as s:
            return {
                "accounts": s.execute(
                    select(Account.id, Account.cash_available, Account.cash_held).order_by(Account.id)
                ).all(),
                "positions": s.execute(
                    select(Position.account_id, Position.symbol, Position.qty, Position.held_qty).order_by(
                        Position.account_id, Position.symbol
                    )
                ).all(),
                "orders": s.scalar(select(func.count()).select_from(Order)),
                "ledger": s.scalar(select(func.count()).select_from(LedgerEntry)),
            }

    def account(self, user: User) -> dict[str, Any]:
        r = self.client.get("/api/v1/account", headers=user.headers)
        assert r.status_code == 200, r.text
        return r.json()


def prepare_database(url: str) -> sessionmaker[Session]:
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as s:
        seed_demo(s)
        s.commit()
    return factory


@contextmanager
def harness(url: str, *, clock: Clock | None = None, **settings_kw: Any) -> Iterator[Harness]:
    factory = prepare_database(url)
    kw: dict[str, Any] = {"database_url": url, "env": "test", "market_hours": "always"} | settings_kw
    settings = Settings(_env_file=None, **kw)  # type: ignore[call-arg]
    clock = clock or Clock()
    bus = InProcessBus()
    services = Services(
        settings=settings,
        session_factory=factory,
        bus=bus,
        marketdata=MemoryMarketData(),
        instruments=InstrumentCache(factory),
        clock=clock,
        reset_wait_s=2.0,
    )
    app = create_app(settings, services)
    with TestClient(app) as client:
        yield Harness(url, settings, services, client, clock, bus, factory)
    factory.kw["bind"].dispose()
