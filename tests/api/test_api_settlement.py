"""End to end over HTTP with the real matcher in-process: orders cross, settle in SQL, and balances,
positions, holds, fills and the audit are exact to the cent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from api_harness import Harness, User, harness
from sqlalchemy.orm import Session

from schema.audit import audit
from schema.models import Order
from workers.matcher import Matcher
from workers.publisher import RecordingPublisher
from workers.reconciler import reconcile, resend_cancels, resend_replaces


class Market:
    def __init__(self, ex: Harness) -> None:
        self.ex = ex
        self.publisher = RecordingPublisher()
        self.matcher = Matcher(
            ex.session_factory,
            ex.bus,
            ["AAPL", "MSFT"],
            settings=ex.settings,
            publisher=self.publisher,
            market_data=ex.services.marketdata,
            clock=ex.clock,
        )
        self.matcher.start()

    def settle(self) -> None:
        self.matcher.drain()

    def order(self, user: User, **body: Any) -> dict[str, Any]:
        r = self.ex.post_order(user, **body)
        assert r.status_code == 201, r.text
        self.settle()
        got = self.ex.client.get(f"/api/v1/orders/{r.json()['id']}", headers=user.headers)
        return got.json()

    def audit_clean(self) -> None:
        with Session(self.ex.session_factory.kw["bind"]) as s:
            assert audit(s) == []


@pytest.fixture
def market(db_url: str) -> Iterator[Market]:
    with harness(db_url) as ex:
        m = Market(ex)
        yield m
        m.matcher.close()


@contextmanager
def stream_down(ex: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Redis gone between the API's commit and its XADD: requests are answered, nothing is published."""

    def lost(*_args: Any, **_kwargs: Any) -> Any:
        raise ConnectionError("redis is down")

    with monkeypatch.context() as patch:
        patch.setattr(ex.bus, "publish", lost)
        patch.setattr(ex.bus, "publish_many", lost)
        yield


def resting_buy(market: Market) -> tuple[User, dict[str, Any]]:
    """A new user's GTC buy of 10 AAPL @ 210.00, settled and resting (2,100.00 held)."""
    u = market.ex.register()
    body = {"symbol": "AAPL", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": "10"}
    return u, market.order(u, **body, limit_price="210.00")


def cash(ex: Harness, u: User) -> tuple[str, str]:
    a = ex.account(u)
    return a["cash_available"], a["cash_held"]


def test_two_users_cross_and_settle_exactly(market: Market) -> None:
    ex = market.ex
    alice, bob = ex.register(), ex.register()
    ex.grant_shares(bob, "AAPL", 10, 200_00)
    bid = market.order(
        alice, symbol="AAPL", side="buy", type="limit", time_in_force="gtc", qty="10", limit_price="230.00"
    )
    assert bid["status"] == "new" and bid["hold"] == "2300.00"
    ask = market.order(
        bob, symbol="AAPL", side="sell", type="limit", time_in_force="gtc", qty="6", limit_price="229.50"
    )
    # The trade is at the resting (maker) order's price.
    assert (ask["status"], ask["filled_qty"], ask["filled_avg_price"], ask["hold"]) == (
        "filled",
        "6",
        "230.0000",
        "0",
    )
    bid = ex.client.get(f"/api/v1/orders/{bid['id']}", headers=alice.headers).json()
    assert (bid["status"], bid["filled_qty"], bid["leaves_qty"], bid["hold"]) == (
        "partially_filled",
        "6",
        "4",
        "920.00",
    )
    assert cash(ex, alice) == ("97700.00", "920.00")  # paid 1380.00, 920.00 still held for 4 more
    assert cash(ex, bob) == ("101380.00", "0.00")
    [apos] = ex.client.get("/api/v1/positions", headers=alice.headers).json()
    assert (
        apos["qty"],
        apos["avg_entry_price"],
        apos["cost_basis"],
        apos["current_price"],
        apos["market_value"],
        apos["unrealized_pl"],
    ) == ("6", "230.0000", "1380.00", "230.00", "1380.00", "0.00")
    [bpos] = ex.client.get("/api/v1/positions", headers=bob.headers).json()
    assert (bpos["qty"], bpos["held_qty"], bpos["realized_pl"], bpos["cost_basis"]) == (
        "4",
        "0",
        "180.00",
        "800.00",
    )
    fills = ex.client.get("/api/v1/account/fills", headers=alice.headers).json()["fills"]
    assert [(f["side"], f["price"], f["qty"], f["liquidity"]) for f in fills] == [
        ("buy", "230.00", "6", "maker")
    ]
    bfills = ex.client.get("/api/v1/account/fills", headers=bob.headers).json()["fills"]
    assert [(f["side"], f["liquidity"]) for f in bfills] == [("sell", "taker")]
    tape = ex.client.get("/api/v1/markets/AAPL/trades").json()["trades"]
    assert [(t["price"], t["qty"], t["aggressor"]) for t in tape] == [("230.00", "6", "sell")]
    depth = ex.client.get("/api/v1/markets/AAPL/depth").json()
    assert depth["bids"] == [{"price": "230.00", "qty": "4", "orders": 1}] and depth["asks"] == []
    acct = ex.account(alice)
    assert (acct["cash"], acct["positions_value"], acct["equity"]) == ("98620.00", "1380.00", "100000.00")

    # Cancel the rest: the 920.00 comes back exactly once.
    assert ex.client.delete(f"/api/v1/orders/{bid['id']}", headers=alice.headers).status_code == 202
    market.settle()
    bid = ex.client.get(f"/api/v1/orders/{bid['id']}", headers=alice.headers).json()
    assert (bid["status"], bid["canceled_qty"], bid["hold"]) == ("canceled", "4", "0.00")
    assert cash(ex, alice) == ("98620.00", "0.00")
    # The user room got its own events, and only its own.
    rooms = {room for _e, _d, room in market.publisher.events if room.startswith("user:")}
    assert rooms == {f"user:{alice.account_id}", f"user:{bob.account_id}"}
    market.audit_clean()


def test_buy_filled_below_its_limit_gets_the_difference_back(market: Market) -> None:
    ex = market.ex
    carol, dave = ex.register(), ex.register()
    ex.grant_shares(carol, "MSFT", 5, 400_00)
    market.order(
        carol, symbol="MSFT", side="sell", type="limit", time_in_force="gtc", qty="5", limit_price="410.00"
    )
    buy = market.order(
        dave, symbol="MSFT", side="buy", type="limit", time_in_force="ioc", qty="5", limit_price="415.00"
    )
    assert (buy["status"], buy["filled_avg_price"], buy["hold"]) == ("filled", "410.0000", "0.00")
    assert cash(ex, dave) == ("97950.00", "0.00")  # 5 * 410.00, not 5 * 415.00
    market.audit_clean()


def test_market_buy_holds_the_band_top_and_releases_the_rest(market: Market) -> None:
    ex = market.ex
    seller, buyer = ex.register(), ex.register()
    ex.grant_shares(seller, "AAPL", 3, 200_00)
    market.order(
        seller, symbol="AAPL", side="sell", type="limit", time_in_force="gtc", qty="3", limit_price="231.00"
    )
    buy = market.order(buyer, symbol="AAPL", side="buy", type="market", time_in_force="ioc", qty="5")
    assert (buy["status"], buy["filled_qty"], buy["canceled_qty"], buy["hold"]) == (
        "canceled",
        "3",
        "2",
        "0.00",
    )
    assert cash(ex, buyer) == ("99307.00", "0.00")
    market.audit_clean()


def test_replace_up_and_partial_fill_settle_exactly(market: Market) -> None:
    ex = market.ex
    alice, bob = ex.register(), ex.register()
    ex.grant_shares(bob, "AAPL", 20, 200_00)
    bid = market.order(
        alice, symbol="AAPL", side="buy", type="limit", time_in_force="gtc", qty="5", limit_price="228.00"
    )
    r = ex.client.patch(
        f"/api/v1/orders/{bid['id']}", json={"qty": "8", "limit_price": "229.00"}, headers=alice.headers
    )
    assert r.status_code == 202
    market.settle()
    bid = ex.client.get(f"/api/v1/orders/{bid['id']}", headers=alice.headers).json()
    assert (bid["qty"], bid["limit_price"], bid["hold"]) == ("8", "229.00", "1832.00")
    with ex.session_factory() as s:
        assert s.get(Order, bid["id"]).pending_hold == 0
    market.order(bob, symbol="AAPL", side="sell", type="market", time_in_force="ioc", qty="3")
    assert cash(ex, alice) == ("98168.00", "1145.00")  # paid 687.00, 5 * 229.00 still held
    r = ex.client.patch(f"/api/v1/orders/{bid['id']}", json={"qty": "4"}, headers=alice.headers)
    market.settle()
    assert cash(ex, alice) == ("99084.00", "229.00")  # reduced to 4: one left, 229.00 held
    market.audit_clean()


def test_reset_cancels_open_orders_then_restores_starting_cash(market: Market) -> None:
    ex = market.ex
    alice, bob = ex.register(), ex.register()
    ex.grant_shares(bob, "AAPL", 5, 200_00)
    market.order(
        bob, symbol="AAPL", side="sell", type="limit", time_in_force="gtc", qty="5", limit_price="230.00"
    )
    market.order(
        alice, symbol="AAPL", side="buy", type="limit", time_in_force="gtc", qty="2", limit_price="230.00"
    )
    market.order(
        alice, symbol="MSFT", side="buy", type="limit", time_in_force="gtc", qty="1", limit_price="400.00"
    )
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: [market.matcher.step(block_ms=10) for _ in iter(stop.is_set, True)]
    )
    thread.start()
    try:
        r = ex.client.post("/api/v1/account/reset", json={"starting_cash": "50000.00"}, headers=alice.headers)
    finally:
        stop.set()
        thread.join()
    assert r.status_code == 200, r.text
    acct = r.json()
    assert (acct["cash_available"], acct["cash_held"], acct["starting_cash"], acct["equity"]) == (
        "50000.00",
        "0.00",
        "50000.00",
        "50000.00",
    )
    assert ex.client.get("/api/v1/positions", headers=alice.headers).json() == []
    assert ex.client.get("/api/v1/orders", headers=alice.headers).json()["orders"] == []
    kinds = [
        a["kind"] for a in ex.client.get("/api/v1/activities", headers=alice.headers).json()["activities"]
    ]
    assert kinds[:2] == ["reset", "reset"]
    market.audit_clean()


def test_a_cancel_the_stream_lost_is_sent_again_by_the_reconciler(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = market.ex
    u, resting = resting_buy(market)
    assert resting["status"] == "new"
    assert cash(ex, u) == ("97900.00", "2100.00")

    # Redis goes away between the cancel's commit and its XADD: the request is answered, nothing is sent.
    with stream_down(ex, monkeypatch):
        r = ex.client.delete(f"/api/v1/orders/{resting['id']}", headers=u.headers)
    assert r.status_code == 202, r.text
    market.settle()
    assert ex.client.get(f"/api/v1/orders/{resting['id']}", headers=u.headers).json()["status"] == "new"

    # Too recent: the cancel may still be on its way.
    assert resend_cancels(ex.session_factory, ex.bus, symbols=["AAPL"], now=ex.clock()) == 0
    ex.clock.advance(seconds=4)
    assert reconcile(ex.session_factory, ex.bus, symbols=["AAPL"], now=ex.clock()) == 0  # no lost NewOrder
    market.settle()
    order = ex.client.get(f"/api/v1/orders/{resting['id']}", headers=u.headers).json()
    assert (order["status"], order["canceled_qty"]) == ("canceled", "10")
    assert cash(ex, u) == ("100000.00", "0.00")  # the hold went back once
    # The order is final: nothing more is sent.
    ex.clock.advance(seconds=10)
    assert resend_cancels(ex.session_factory, ex.bus, symbols=["AAPL"], now=ex.clock()) == 0
    market.audit_clean()


def test_a_replace_the_stream_lost_is_sent_again_and_applied_once(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = market.ex
    u, resting = resting_buy(market)
    oid = resting["id"]

    # Redis goes away between the replace's commit (its extra hold) and its XADD.
    with stream_down(ex, monkeypatch):
        r = ex.client.patch(
            f"/api/v1/orders/{oid}", json={"qty": "12", "limit_price": "220.00"}, headers=u.headers
        )
    assert r.status_code == 202, r.text
    market.settle()
    order = ex.client.get(f"/api/v1/orders/{oid}", headers=u.headers).json()
    assert (order["qty"], order["limit_price"]) == ("10", "210.00")  # the book never saw it
    assert cash(ex, u) == ("97360.00", "2640.00")  # 12 * 220.00 reserved: 2100.00 + 540.00 pending
    # Until it settles, the order takes no other replace.
    again = ex.client.patch(f"/api/v1/orders/{oid}", json={"qty": "5"}, headers=u.headers)
    assert again.status_code == 409 and again.json()["code"] == "REPLACE_PENDING"

    # Too recent: the Replace may still be on its way.
    assert resend_replaces(ex.session_factory, ex.bus, symbols=["AAPL"], now=ex.clock()) == 0
    market.settle()
    assert ex.client.get(f"/api/v1/orders/{oid}", headers=u.headers).json()["qty"] == "10"
    ex.clock.advance(seconds=4)
    assert reconcile(ex.session_factory, ex.bus, symbols=["AAPL"], now=ex.clock()) == 0  # no lost NewOrder
    # A copy of it arrives too (a reconciler pass that raced the first re-send): skipped, not applied twice.
    assert resend_replaces(ex.session_factory, ex.bus, symbols=["AAPL"], now=ex.clock()) == 1
    market.settle()
    order = ex.client.get(f"/api/v1/orders/{oid}", headers=u.headers).json()
    assert (order["qty"], order["limit_price"], order["hold"]) == ("12", "220.00", "2640.00")
    assert cash(ex, u) == ("97360.00", "2640.00")
    with ex.session_factory() as s:
        row = s.get(Order, oid)
        assert row is not None and (row.pending_hold, row.replace_ts) == (0, None)
    assert market.matcher.stats["skipped"] >= 1
    # Settled: nothing more is sent, and the order takes a new replace.
    ex.clock.advance(seconds=10)
    assert resend_replaces(ex.session_factory, ex.bus, symbols=["AAPL"], now=ex.clock()) == 0
    r = ex.client.patch(f"/api/v1/orders/{oid}", json={"qty": "5"}, headers=u.headers)
    assert r.status_code == 202, r.text
    market.settle()
    assert cash(ex, u) == ("98900.00", "1100.00")  # reduced to 5 @ 220.00
    market.audit_clean()


def test_a_lost_replace_of_an_order_that_ended_gives_its_hold_back_once(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = market.ex
    u, resting = resting_buy(market)
    oid = resting["id"]

    with stream_down(ex, monkeypatch):
        r = ex.client.patch(f"/api/v1/orders/{oid}", json={"qty": "12"}, headers=u.headers)
    assert r.status_code == 202, r.text
    assert ex.client.delete(f"/api/v1/orders/{oid}", headers=u.headers).status_code == 202
    market.settle()
    assert cash(ex, u) == ("99580.00", "420.00")  # canceled; the lost replace's 2 * 210.00 still pending
    ex.clock.advance(seconds=4)
    assert resend_replaces(ex.session_factory, ex.bus, symbols=["AAPL"], now=ex.clock()) == 1  # rejected
    market.settle()
    assert cash(ex, u) == ("100000.00", "0.00")
    with ex.session_factory() as s:
        row = s.get(Order, oid)
        assert row is not None and (row.status, row.pending_hold, row.replace_ts) == ("canceled", 0, None)
    ex.clock.advance(seconds=10)
    assert resend_replaces(ex.session_factory, ex.bus, symbols=["AAPL"], now=ex.clock()) == 0
    market.audit_clean()
