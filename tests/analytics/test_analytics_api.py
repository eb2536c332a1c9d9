"""GET /account/stats, /account/portfolio/history and /leaderboard over HTTP on PostgreSQL, against the hand
calculation of analytics_scenario.py (the scripted fills are written as settlement would write them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from analytics_scenario import DAY1, DAY2, EXPECTED_STATS, FILLS, MARK, NOW, SNAPSHOTS
from fastapi.testclient import TestClient
from sqlalchemy import update
from trade_rows import insert_filled_trade

from api.app import create_app
from api.deps import InstrumentCache, Services
from schema.calendar import MarketCalendar
from schema.db import make_engine, make_session_factory
from schema.marketdata import MemoryMarketData
from schema.migrate import upgrade
from schema.models import Account, EquitySnapshot, Instrument, LedgerEntry, Position, User
from schema.settings import Settings
from schema.transport import InProcessBus


class Clock:
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def api(pg_url: str) -> Iterator[tuple[TestClient, Clock, object]]:
    upgrade(pg_url)
    factory = make_session_factory(make_engine(pg_url))
    settings = Settings(_env_file=None, database_url=pg_url, env="test")  # type: ignore[call-arg]
    clock = Clock()
    services = Services(
        settings=settings,
        session_factory=factory,
        bus=InProcessBus(),
        marketdata=MemoryMarketData(),
        instruments=InstrumentCache(factory),
        clock=clock,
        calendar=MarketCalendar(),
    )
    with TestClient(create_app(settings, services)) as client:
        yield client, clock, factory
    factory.kw["bind"].dispose()


def _register(client: TestClient, email: str) -> tuple[dict, dict]:
    r = client.post("/api/v1/auth/register", json={"email": email, "password": "correct horse 1"})
    assert r.status_code == 201, r.text
    doc = r.json()
    return doc, {"Authorization": f"Bearer {doc['access_token']}"}


def _login(client: TestClient, email: str) -> dict:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": "correct horse 1"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _script(factory, me: int, other: int, third: int) -> None:  # type: ignore[no-untyped-def]
    with factory() as s:
        s.add(
            Instrument(
                symbol="XYZ",
                name="X",
                tick=1,
                lot=1,
                min_qty=1,
                max_qty=10**6,
                max_notional=10**12,
                band_bps=1000,
                reference_price=10_000,
                status="active",
            )
        )
        s.flush()
        seq = 0

        def trade(at: datetime, buyer: int, seller: int, price: int, qty: int) -> None:
            nonlocal seq
            seq += 1
            insert_filled_trade(
                s, symbol="XYZ", seq=seq, buyer=buyer, seller=seller, price=price, qty=qty, at=at
            )
            for acct, sign in ((buyer, 1), (seller, -1)):
                s.add(
                    LedgerEntry(
                        account_id=acct,
                        kind="trade",
                        symbol="XYZ",
                        cash_available_delta=-sign * price * qty,
                        qty_delta=sign * qty,
                        created_at=at,
                    )
                )

        for at, side, price, qty in FILLS:
            buyer, seller = (me, other) if side == "buy" else (other, me)
            trade(at, buyer, seller, price, qty)
        trade(
            datetime(2025, 6, 4, 16, 0, tzinfo=UTC), third, other, MARK, 1
        )  # the mark: someone else's trade
        s.execute(update(Account).where(Account.id == me).values(cash_available=922_500))
        # every account started with 10,000.00 on June 1st
        s.execute(
            update(Account).values(
                created_at=datetime(2025, 6, 1, 12, 0, tzinfo=UTC), starting_cash=1_000_000
            )
        )
        s.execute(
            update(LedgerEntry).where(LedgerEntry.kind == "deposit").values(cash_available_delta=1_000_000)
        )
        s.execute(update(Account).where(Account.id != me).values(cash_available=1_000_000))
        s.add(
            Position(account_id=me, symbol="XYZ", qty=10, held_qty=0, cost_basis=100_000, realized_pnl=22_500)
        )
        for day, equity, cash, value in SNAPSHOTS:
            s.add(
                EquitySnapshot(
                    account_id=me,
                    day=day,
                    equity=equity,
                    cash=cash,
                    positions_value=value,
                    created_at=datetime.combine(day, datetime.min.time(), UTC),
                )
            )
        s.commit()


def test_stats_history_and_leaderboard_equal_the_hand_calculation(api) -> None:  # type: ignore[no-untyped-def]
    client, clock, factory = api
    me, headers = _register(client, "alice@example.com")
    other, _ = _register(client, "bob@example.com")
    third, _ = _register(client, "carol@example.com")
    flat, flat_headers = _register(client, "dave@example.com")
    robot, robot_headers = _register(client, "robot@example.com")
    created = int(clock.now.timestamp())
    _script(factory, me["account_id"], other["account_id"], third["account_id"])
    for h, name in ((headers, "alice"), (flat_headers, "flat"), (robot_headers, "robot")):
        r = client.patch(
            "/api/v1/account/profile", json={"display_name": name, "leaderboard_opt_in": True}, headers=h
        )
        assert r.status_code == 200, r.text
    with factory() as s:  # an agent never ranks, even opted in
        s.execute(update(User).where(User.id == robot["user_id"]).values(is_agent=True))
        s.commit()
    clock.now = NOW
    headers = _login(client, "alice@example.com")

    r = client.get("/api/v1/account/stats", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == EXPECTED_STATS

    r = client.get("/api/v1/account/portfolio/history?period=1W&timeframe=1D", headers=headers)
    assert r.json() == {
        "timestamp": [
            created,
            int(datetime(2025, 6, 2, 20, tzinfo=UTC).timestamp()),
            int(datetime(2025, 6, 3, 20, tzinfo=UTC).timestamp()),
            int(NOW.timestamp()),
        ],
        "equity": ["10000.00", "10000.00", "10290.00", "10245.00"],
        "profit_loss": ["0.00", "0.00", "290.00", "245.00"],
        "profit_loss_pct": ["0.0000", "0.0000", "0.0290", "0.0245"],
        "base_value": "10000.00",
        "timeframe": "1D",
    }
    assert (SNAPSHOTS[0][0], SNAPSHOTS[1][0]) == (DAY1, DAY2)

    # Intraday: from the ledger and the tape. At the start (June 3 18:00 UTC) cash 9,700 + 5 XYZ at the last
    # trade 120.00 = 10,300; June 4 14:00 sell 5 @ 105 -> 10,225; 15:00 buy 10 @ 100 -> 10,225 (marked at
    # 100); 16:00 someone trades at 102 -> 10,245. Base: the June 3 close, 10,290.
    r = client.get("/api/v1/account/portfolio/history?period=1D&timeframe=1H", headers=headers)
    doc = r.json()
    start = datetime(2025, 6, 3, 19, tzinfo=UTC)
    assert doc["timestamp"] == [int((start + timedelta(hours=h)).timestamp()) for h in range(24)]
    assert doc["equity"] == ["10300.00"] * 19 + ["10225.00", "10225.00"] + ["10245.00"] * 3
    assert doc["base_value"] == "10290.00" and doc["profit_loss"][-1] == "-45.00"
    assert doc["profit_loss_pct"][0] == "0.0010"  # 10 / 10,290

    r = client.get("/api/v1/leaderboard?period=1D")
    assert r.json() == {
        "period": "1D",
        "entries": [
            {"rank": 1, "display_name": "flat", "return_pct": "0.0000", "equity": "10000.00"},
            {"rank": 2, "display_name": "alice", "return_pct": "-0.0044", "equity": "10245.00"},
        ],
    }
    assert client.get("/api/v1/leaderboard?period=all").json()["entries"][0]["display_name"] == "alice"

    # validation and conflicts
    assert client.get("/api/v1/leaderboard?period=2Y").status_code == 422
    bad = client.get("/api/v1/account/portfolio/history?period=all&timeframe=1Min", headers=headers)
    assert bad.status_code == 422 and bad.json()["code"] == "VALIDATION_ERROR"
    flat_headers = _login(client, "dave@example.com")
    before = client.get("/api/v1/account", headers=flat_headers).json()
    assert (before["display_name"], before["leaderboard_opt_in"]) == ("flat", True)
    out = client.patch("/api/v1/account/profile", json={"leaderboard_opt_in": False}, headers=flat_headers)
    assert out.status_code == 200, out.text
    assert client.get("/api/v1/account", headers=flat_headers).json()["leaderboard_opt_in"] is False
    taken = client.patch("/api/v1/account/profile", json={"display_name": "alice"}, headers=flat_headers)
    assert taken.status_code == 409 and taken.json()["code"] == "DISPLAY_NAME_TAKEN"
    assert client.get("/api/v1/account/stats").status_code == 401
