"""Order intake over HTTP: holds, every refusal code (with nothing written), idempotency, replace, cancel."""

from __future__ import annotations

from typing import Any

import pytest
from api_harness import Harness
from sqlalchemy import select, update

from engine.commands import Cancel, MassCancel, NewOrder, Replace
from schema.models import Account, LedgerEntry, Order

LIMIT_BUY = {
    "symbol": "AAPL",
    "side": "buy",
    "type": "limit",
    "time_in_force": "gtc",
    "qty": "10",
    "limit_price": "230.00",
}


def published(ex: Harness, symbol: str) -> list[Any]:
    return [c for _id, c in ex.bus.read(symbol, "0-0", 10_000, 0)]


def test_limit_buy_holds_qty_times_price_and_publishes_new_order(ex: Harness) -> None:
    alice = ex.register()
    r = ex.post_order(alice, **LIMIT_BUY, client_order_id="a-1")
    assert r.status_code == 201
    order = r.json()
    assert order | {"id": 0, "created_at": "", "updated_at": ""} == {
        "id": 0,
        "client_order_id": "a-1",
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "qty": "10",
        "filled_qty": "0",
        "leaves_qty": "10",
        "canceled_qty": "0",
        "filled_avg_price": None,
        "limit_price": "230.00",
        "stop_price": None,
        "expire_at": None,
        "post_only": False,
        "stp": "cancel_resting",
        "status": "new",
        "reason": None,
        "hold": "2300.00",
        "created_at": "",
        "updated_at": "",
    }
    acct = ex.account(alice)
    assert (acct["cash_available"], acct["cash_held"], acct["cash"]) == ("97700.00", "2300.00", "100000.00")
    [cmd] = published(ex, "AAPL")
    assert isinstance(cmd, NewOrder)
    assert (cmd.order_id, cmd.account, cmd.qty, cmd.price, cmd.hold) == (
        order["id"],
        alice.account_id,
        10,
        23000,
        230000,
    )
    with ex.session_factory() as s:
        kinds = [
            e.kind for e in s.scalars(select(LedgerEntry).where(LedgerEntry.account_id == alice.account_id))
        ]
    assert kinds == ["deposit", "hold"]


def test_market_buy_holds_qty_times_band_high(ex: Harness) -> None:
    alice = ex.register()
    r = ex.post_order(alice, symbol="AAPL", side="buy", type="market", time_in_force="ioc", qty="3")
    assert r.status_code == 201, r.text
    # AAPL reference 229.87, band +-10%: high = floor(229.87 * 1.1) = 252.85
    assert r.json()["hold"] == "758.55"
    markets = {m["symbol"]: m for m in ex.client.get("/api/v1/markets").json()}
    assert markets["AAPL"]["band_high"] == "252.85"
    day = ex.post_order(alice, symbol="AAPL", side="buy", type="market", time_in_force="day", qty="1")
    assert (day.status_code, day.json()["time_in_force"]) == (201, "ioc")


def test_sell_holds_shares_and_refuses_more_than_owned(ex: Harness) -> None:
    bob = ex.register()
    ex.grant_shares(bob, "MSFT", 5, 40000)
    before = ex.snapshot()
    r = ex.post_order(
        bob, symbol="MSFT", side="sell", type="limit", time_in_force="day", qty="6", limit_price="415.00"
    )
    assert (r.status_code, r.json()["code"]) == (422, "INSUFFICIENT_SHARES")
    assert ex.snapshot() == before
    r = ex.post_order(
        bob, symbol="MSFT", side="sell", type="limit", time_in_force="day", qty="5", limit_price="415.00"
    )
    assert r.status_code == 201
    assert r.json()["hold"] == "5"
    assert r.json()["expire_at"] is not None  # DAY: the session close
    [pos] = ex.client.get("/api/v1/positions", headers=bob.headers).json()
    assert (pos["qty"], pos["held_qty"], pos["qty_available"]) == ("5", "5", "0")


def test_insufficient_funds_writes_nothing(ex: Harness) -> None:
    alice = ex.register()
    before = ex.snapshot()
    r = ex.post_order(alice, **(LIMIT_BUY | {"qty": "1000"}))
    assert r.status_code == 422
    assert r.json()["code"] == "INSUFFICIENT_FUNDS"
    assert ex.snapshot() == before
    assert published(ex, "AAPL") == []


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"symbol": "NOPE"}, 422, "UNKNOWN_SYMBOL"),
        ({"limit_price": "230.001"}, 422, "OFF_TICK"),
        ({"qty": "1.5"}, 422, "OFF_LOT"),
        ({"qty": "0"}, 422, "INVALID_QTY"),
        ({"qty": "2000000"}, 422, "INVALID_QTY"),
        ({"limit_price": "300.00"}, 422, "OUTSIDE_BAND"),
        ({"limit_price": "0"}, 422, "INVALID_PRICE"),
        ({"limit_price": None}, 422, "INVALID_PRICE"),
        ({"stop_price": "200.00"}, 422, "INVALID_PRICE"),
        ({"qty": "500000", "limit_price": "230.00"}, 422, "MAX_NOTIONAL"),
        ({"type": "market", "limit_price": None, "time_in_force": "gtc"}, 422, "INVALID_TIF"),
        ({"time_in_force": "gtd"}, 422, "INVALID_TIF"),
        ({"expire_at": "2030-01-01T00:00:00Z"}, 422, "INVALID_TIF"),
        ({"post_only": True, "time_in_force": "ioc"}, 422, "INVALID_TIF"),
        ({"qty": 10.0}, 422, "VALIDATION_ERROR"),
        ({"limit_price": 230.5}, 422, "VALIDATION_ERROR"),
        ({"side": "hold"}, 422, "VALIDATION_ERROR"),
        ({"qty": "1e3"}, 422, "VALIDATION_ERROR"),
        ({"qty": "-5"}, 422, "VALIDATION_ERROR"),
    ],
)
def test_refused_orders_return_the_code_and_change_nothing(
    ex: Harness, change: dict[str, Any], status: int, code: str
) -> None:
    alice = ex.register()
    before = ex.snapshot()
    r = ex.post_order(alice, **(LIMIT_BUY | change))
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message"} and body["code"] == code and body["message"]
    assert ex.snapshot() == before
    assert published(ex, "AAPL") == []


def test_validation_message_names_the_field(ex: Harness) -> None:
    alice = ex.register()
    r = ex.post_order(alice, **(LIMIT_BUY | {"qty": 1.5}))
    assert "qty" in r.json()["message"]


def test_market_closed_refuses_orders(db_url: str) -> None:
    from datetime import UTC, datetime

    from api_harness import Clock, harness

    saturday = Clock(datetime(2026, 3, 7, 15, 0, tzinfo=UTC))
    with harness(db_url, clock=saturday, market_hours="calendar") as ex:
        alice = ex.register()
        before = ex.snapshot()
        r = ex.post_order(alice, **LIMIT_BUY)
        assert (r.status_code, r.json()["code"]) == (422, "MARKET_CLOSED")
        assert ex.snapshot() == before
        status = ex.client.get("/api/v1/market/status").json()
        assert (
            status["open"] is False and status["next_open"] == "2026-03-09T13:30:00Z"
        )  # DST began on the 8th


def test_idempotent_retry_returns_the_original(ex: Harness) -> None:
    alice = ex.register()
    first = ex.post_order(alice, **LIMIT_BUY, client_order_id="retry-me")
    again = ex.post_order(alice, **LIMIT_BUY, client_order_id="retry-me")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert ex.account(alice)["cash_held"] == "2300.00"
    assert len(published(ex, "AAPL")) == 1
    differs = ex.post_order(alice, **(LIMIT_BUY | {"qty": "11"}), client_order_id="retry-me")
    assert (differs.status_code, differs.json()["code"]) == (409, "DUPLICATE_CLIENT_ORDER_ID")
    # Another account may use the same client_order_id.
    bob = ex.register()
    assert ex.post_order(bob, **LIMIT_BUY, client_order_id="retry-me").status_code == 201
    got = ex.client.get(
        "/api/v1/orders:by_client_order_id", params={"client_order_id": "retry-me"}, headers=alice.headers
    )
    assert got.json()["id"] == first.json()["id"]


def test_other_accounts_orders_are_not_found(ex: Harness) -> None:
    alice, mallory = ex.register(), ex.register()
    oid = ex.post_order(alice, **LIMIT_BUY).json()["id"]
    for method in ("GET", "DELETE"):
        r = ex.client.request(method, f"/api/v1/orders/{oid}", headers=mallory.headers)
        assert (r.status_code, r.json()["code"]) == (404, "ORDER_NOT_FOUND")
    r = ex.client.patch(f"/api/v1/orders/{oid}", json={"qty": "5"}, headers=mallory.headers)
    assert (r.status_code, r.json()["code"]) == (404, "ORDER_NOT_FOUND")
    r = ex.client.get("/api/v1/orders/999999", headers=alice.headers)
    assert (r.status_code, r.json()["code"]) == (404, "ORDER_NOT_FOUND")
    assert len(published(ex, "AAPL")) == 1


def test_cancel_publishes_and_final_orders_are_refused(ex: Harness) -> None:
    alice = ex.register()
    oid = ex.post_order(alice, **LIMIT_BUY).json()["id"]
    r = ex.client.delete(f"/api/v1/orders/{oid}", headers=alice.headers)
    assert r.status_code == 202
    assert isinstance(published(ex, "AAPL")[-1], Cancel)
    with ex.session_factory() as s:
        s.get(Order, oid).status = "canceled"  # as settlement would
        s.commit()
    r = ex.client.delete(f"/api/v1/orders/{oid}", headers=alice.headers)
    assert (r.status_code, r.json()["code"]) == (409, "ORDER_FINAL")
    r = ex.client.patch(f"/api/v1/orders/{oid}", json={"qty": "5"}, headers=alice.headers)
    assert (r.status_code, r.json()["code"]) == (409, "ORDER_FINAL")


def test_cancel_all_publishes_one_mass_cancel_per_symbol(ex: Harness) -> None:
    alice = ex.register()
    a = ex.post_order(alice, **LIMIT_BUY).json()["id"]
    b = ex.post_order(alice, **(LIMIT_BUY | {"symbol": "MSFT", "limit_price": "400.00"})).json()["id"]
    r = ex.client.delete("/api/v1/orders", headers=alice.headers)
    assert r.status_code == 202 and sorted(r.json()["canceled"]) == sorted([a, b])
    assert isinstance(published(ex, "AAPL")[-1], MassCancel)
    assert isinstance(published(ex, "MSFT")[-1], MassCancel)


def test_replace_holds_the_extra_into_pending_hold(ex: Harness) -> None:
    alice = ex.register()
    oid = ex.post_order(alice, **LIMIT_BUY).json()["id"]
    r = ex.client.patch(
        f"/api/v1/orders/{oid}", json={"qty": "12", "limit_price": "231.00"}, headers=alice.headers
    )
    assert r.status_code == 202, r.text
    assert r.json()["hold"] == "2772.00"  # 12 * 231.00 = 2300.00 + 472.00 extra
    cmd = published(ex, "AAPL")[-1]
    assert isinstance(cmd, Replace) and (cmd.qty, cmd.price, cmd.extra_hold) == (12, 23100, 47200)
    acct = ex.account(alice)
    assert (acct["cash_available"], acct["cash_held"]) == ("97228.00", "2772.00")
    with ex.session_factory() as s:
        assert s.get(Order, oid).pending_hold == 47200

    # Nothing settles here, so the replace stays pending: another one is refused and changes nothing.
    def request() -> tuple[Any, ...]:
        with ex.session_factory() as s:
            o = s.get(Order, oid)
            assert o is not None
            return (o.pending_hold, o.replace_ts, o.replace_qty, o.replace_limit_price, o.replace_stop_price)

    before, pending = ex.snapshot(), request()
    assert pending == (47200, cmd.ts, 12, 23100, None)
    r = ex.client.patch(f"/api/v1/orders/{oid}", json={"qty": "4"}, headers=alice.headers)
    assert r.status_code == 409 and r.json()["code"] == "REPLACE_PENDING", r.text
    assert (ex.snapshot(), request()) == (before, pending) and published(ex, "AAPL")[-1] == cmd
    with ex.session_factory() as s:  # as if the matcher had settled it (its settlement clears the request)
        s.execute(update(Order).where(Order.id == oid).values(replace_ts=None))
        s.commit()
    # A reduce needs no extra hold.
    r = ex.client.patch(f"/api/v1/orders/{oid}", json={"qty": "4"}, headers=alice.headers)
    assert r.status_code == 202 and published(ex, "AAPL")[-1].extra_hold == 0
    with ex.session_factory() as s:
        s.execute(update(Order).where(Order.id == oid).values(replace_ts=None))
        s.commit()
    before = ex.snapshot()
    for body, code in [
        ({}, "VALIDATION_ERROR"),
        ({"qty": "0"}, "INVALID_QTY"),
        ({"limit_price": "999.00"}, "OUTSIDE_BAND"),
        ({"stop_price": "1.00"}, "INVALID_PRICE"),
        ({"qty": "100000"}, "INSUFFICIENT_FUNDS"),
        ({"qty": 3.0}, "VALIDATION_ERROR"),
    ]:
        r = ex.client.patch(f"/api/v1/orders/{oid}", json=body, headers=alice.headers)
        assert r.status_code in (409, 422) and r.json()["code"] == code, (body, r.text)
    assert ex.snapshot() == before


def test_list_orders_filters_and_paginates_newest_first(ex: Harness) -> None:
    alice = ex.register()
    ids = [ex.post_order(alice, **LIMIT_BUY).json()["id"] for _ in range(5)]
    ids.append(ex.post_order(alice, **(LIMIT_BUY | {"symbol": "MSFT", "limit_price": "400.00"})).json()["id"])
    page = ex.client.get("/api/v1/orders", params={"limit": 4}, headers=alice.headers).json()
    assert [o["id"] for o in page["orders"]] == ids[::-1][:4]
    page2 = ex.client.get(
        "/api/v1/orders", params={"limit": 4, "cursor": page["next_cursor"]}, headers=alice.headers
    ).json()
    assert [o["id"] for o in page2["orders"]] == ids[::-1][4:] and page2["next_cursor"] is None
    msft = ex.client.get("/api/v1/orders", params={"symbol": "MSFT"}, headers=alice.headers).json()
    assert [o["id"] for o in msft["orders"]] == [ids[-1]]
    closed = ex.client.get("/api/v1/orders", params={"status": "closed"}, headers=alice.headers).json()
    assert closed["orders"] == []
    bad = ex.client.get("/api/v1/orders", params={"status": "nope"}, headers=alice.headers)
    assert (bad.status_code, bad.json()["code"]) == (422, "VALIDATION_ERROR")


def test_account_activities_record_every_move(ex: Harness) -> None:
    alice = ex.register()
    ex.post_order(alice, **LIMIT_BUY)
    acts = ex.client.get("/api/v1/activities", headers=alice.headers).json()["activities"]
    assert [(a["kind"], a["cash_available_delta"], a["cash_held_delta"]) for a in acts] == [
        ("hold", "-2300.00", "2300.00"),
        ("deposit", "100000.00", "0.00"),
    ]
    with ex.session_factory() as s:
        acct = s.get(Account, alice.account_id)
        assert (acct.cash_available, acct.cash_held) == (9_770_000, 230_000)


def test_reset_without_a_matcher_is_503_and_resets_nothing(ex: Harness) -> None:
    alice = ex.register()
    ex.post_order(alice, **LIMIT_BUY)
    ex.services.reset_wait_s = 0.3
    before = ex.snapshot()
    r = ex.client.post("/api/v1/account/reset", json={}, headers=alice.headers)
    assert (r.status_code, r.json()["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert ex.snapshot() == before
    assert isinstance(published(ex, "AAPL")[-1], MassCancel)  # the cancel was asked for
    bad = ex.client.post("/api/v1/account/reset", json={"starting_cash": "0"}, headers=alice.headers)
    assert (bad.status_code, bad.json()["code"]) == (422, "VALIDATION_ERROR")
