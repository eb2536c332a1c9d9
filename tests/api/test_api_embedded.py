"""`bourse serve`'s composition end to end: SQLite, in-process queues, the matcher thread started by the
app's lifespan. Two users cross over HTTP and the trade settles exactly without any manual driving."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from bourse.compose import build_embedded
from schema.audit import audit_database
from schema.db import make_engine
from schema.models import LedgerEntry, Position
from schema.settings import Settings


def _wait_for(client: TestClient, url: str, headers: dict[str, str], pred: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        doc = client.get(url, headers=headers).json()
        if pred(doc) or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


def test_embedded_serve_matches_and_settles_over_http(sqlite_url: str) -> None:
    settings = Settings(
        _env_file=None,
        database_url=sqlite_url,
        env="test",
        market_hours="always",  # type: ignore[call-arg]
        agents=False,
    )
    embedded = build_embedded(settings, agents=False)
    with TestClient(embedded.app) as client:

        def register(email: str) -> dict[str, Any]:
            r = client.post("/api/v1/auth/register", json={"email": email, "password": "long password"})
            return r.json()

        buyer, seller = register("buyer@example.com"), register("seller@example.com")
        engine = make_engine(sqlite_url)
        with engine.begin() as conn:
            conn.execute(
                insert(Position).values(
                    account_id=seller["account_id"],
                    symbol="TSLA",
                    qty=10,
                    held_qty=0,
                    cost_basis=10 * 240_00,
                    realized_pnl=0,
                )
            )
            conn.execute(
                insert(LedgerEntry).values(
                    account_id=seller["account_id"],
                    kind="deposit",
                    symbol="TSLA",
                    qty_delta=10,
                    created_at=datetime.now(UTC),
                )
            )
        engine.dispose()
        bh = {"Authorization": f"Bearer {buyer['access_token']}"}
        sh = {"Authorization": f"Bearer {seller['access_token']}"}
        sell = client.post(
            "/api/v1/orders",
            headers=sh,
            json={
                "symbol": "TSLA",
                "side": "sell",
                "type": "limit",
                "time_in_force": "gtc",
                "qty": "10",
                "limit_price": "250.00",
            },
        ).json()
        buy = client.post(
            "/api/v1/orders",
            headers=bh,
            json={
                "symbol": "TSLA",
                "side": "buy",
                "type": "limit",
                "time_in_force": "day",
                "qty": "4",
                "limit_price": "251.00",
            },
        ).json()
        buy = _wait_for(client, f"/api/v1/orders/{buy['id']}", bh, lambda o: o["status"] == "filled")
        assert (buy["status"], buy["filled_avg_price"], buy["hold"]) == ("filled", "250.0000", "0.00")
        sell = _wait_for(client, f"/api/v1/orders/{sell['id']}", sh, lambda o: o["filled_qty"] == "4")
        assert (sell["status"], sell["leaves_qty"], sell["hold"]) == ("partially_filled", "6", "6")
        b = client.get("/api/v1/account", headers=bh).json()
        s = client.get("/api/v1/account", headers=sh).json()
        assert (b["cash_available"], b["cash_held"]) == ("99000.00", "0.00")
        assert (s["cash_available"], s["cash_held"]) == ("101000.00", "0.00")
        depth = _wait_for(client, "/api/v1/markets/TSLA/depth", {}, lambda d: d["asks"])
        assert depth["asks"] == [{"price": "250.00", "qty": "6", "orders": 1}]
        tickers = {m["symbol"]: m for m in client.get("/api/v1/markets").json()}
        assert tickers["TSLA"]["last"] == "250.00"
    assert audit_database(sqlite_url) == []
