"""Real concurrency on PostgreSQL: 100 orders at once on one account never overspend or oversell, and
concurrent duplicates of one client_order_id make exactly one order."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from api_harness import Harness, harness
from sqlalchemy import func, select

from api.intake_batcher import _Lane
from schema.models import Account, LedgerEntry, Order, Position


@pytest.fixture(params=[256, 0], ids=["group-commit", "per-request"])
def pg_ex(pg_url: str, request: pytest.FixtureRequest) -> Any:
    # Both intake paths on PostgreSQL: batches of concurrent orders (the default) and one transaction
    # per request (BOURSE_INTAKE_BATCH_MAX=0, and the path a batch falls back to).
    with harness(pg_url, intake_batch_max=request.param) as h:
        assert (h.services.batcher is not None) == (request.param > 0)
        yield h


def _all_at_once(n: int, fn: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def _ledger_matches_balances(ex: Harness, account_id: int) -> None:
    with ex.session_factory() as s:
        acct = s.get(Account, account_id)
        sums = s.execute(
            select(func.sum(LedgerEntry.cash_available_delta), func.sum(LedgerEntry.cash_held_delta)).where(
                LedgerEntry.account_id == account_id
            )
        ).one()
        assert (acct.cash_available, acct.cash_held) == tuple(sums)


def test_100_concurrent_buys_never_overspend_cash(pg_ex: Harness) -> None:
    ex = pg_ex
    user = ex.register()
    body = {
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "qty": "10",
        "limit_price": "230.00",
    }
    results = _all_at_once(100, lambda i: ex.post_order(user, **body))
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 43, 422: 57}, codes  # 43 * 2300.00 = 98900.00 <= 100000.00 < 44 * 2300.00
    assert {r.json()["code"] for r in results if r.status_code == 422} == {"INSUFFICIENT_FUNDS"}
    if ex.services.batcher is not None:  # the orders really shared transactions
        assert ex.services.batcher.jobs_done == 100
        assert ex.services.batcher.batches < 100
    acct = ex.account(user)
    assert (acct["cash_available"], acct["cash_held"]) == ("1100.00", "98900.00")
    with ex.session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 43
        assert s.scalar(select(func.sum(Order.hold_cash))) == 98_900_00
    _ledger_matches_balances(ex, user.account_id)


def test_100_concurrent_sells_never_oversell_shares(pg_ex: Harness) -> None:
    ex = pg_ex
    user = ex.register()
    ex.grant_shares(user, "MSFT", 50, 40000)
    body = {
        "symbol": "MSFT",
        "side": "sell",
        "type": "limit",
        "time_in_force": "gtc",
        "qty": "3",
        "limit_price": "420.00",
    }
    results = _all_at_once(100, lambda i: ex.post_order(user, **body))
    assert Counter(r.status_code for r in results) == {201: 16, 422: 84}
    with ex.session_factory() as s:
        pos = s.get(Position, (user.account_id, "MSFT"))
        assert (pos.qty, pos.held_qty) == (50, 48)
        held = s.scalar(
            select(func.sum(LedgerEntry.held_qty_delta)).where(LedgerEntry.account_id == user.account_id)
        )
        assert held == 48


def test_concurrent_duplicates_make_exactly_one_order(pg_ex: Harness) -> None:
    ex = pg_ex
    user = ex.register()
    body = {
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "qty": "1",
        "limit_price": "230.00",
        "client_order_id": "same-one",
    }
    results = _all_at_once(30, lambda i: ex.post_order(user, **body))
    assert sorted(Counter(r.status_code for r in results).items()) == [(200, 29), (201, 1)]
    assert len({r.json()["id"] for r in results}) == 1
    assert ex.account(user)["cash_held"] == "230.00"
    assert len(ex.bus.read("AAPL", "0-0", 100, 0)) == 1
    _ledger_matches_balances(ex, user.account_id)


def test_concurrent_replaces_never_overspend(pg_ex: Harness) -> None:
    ex = pg_ex
    user = ex.register()
    body = {
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "qty": "1",
        "limit_price": "230.00",
    }
    oid = ex.post_order(user, **body).json()["id"]
    # Replacing to 400 shares needs 399 * 230.00 = 91770.00 more and 99770.00 is available: it is held
    # once. One replace of an order is pending at a time (nothing settles it here): racers that read the
    # order before the winner committed lose the conditional hold (422) or the conditional record of the
    # request (409); later ones see the request pending (409).
    results = _all_at_once(
        50, lambda i: ex.client.patch(f"/api/v1/orders/{oid}", json={"qty": "400"}, headers=user.headers)
    )
    assert Counter(r.status_code for r in results)[202] == 1
    assert {r.status_code for r in results} <= {202, 409, 422}
    assert {r.json()["code"] for r in results if r.status_code != 202} <= {
        "INSUFFICIENT_FUNDS",
        "REPLACE_PENDING",
    }
    extras = [c.extra_hold for _id, c in ex.bus.read("AAPL", "0-0", 100, 0) if hasattr(c, "extra_hold")]
    assert extras == [91_770_00]
    acct = ex.account(user)
    assert (acct["cash_available"], acct["cash_held"]) == ("8000.00", "92000.00")
    with ex.session_factory() as s:
        assert s.get(Order, oid).pending_hold == 91_770_00
    _ledger_matches_balances(ex, user.account_id)
    # Settled by the real matcher: the order is 400 shares, fully covered, nothing held twice.
    from schema.audit import audit
    from workers.matcher import Matcher

    matcher = Matcher(
        ex.session_factory, ex.bus, ["AAPL"], settings=ex.settings, market_data=ex.services.marketdata
    )
    matcher.start()
    matcher.drain()
    matcher.close()
    order = ex.client.get(f"/api/v1/orders/{oid}", headers=user.headers).json()
    assert (order["qty"], order["hold"]) == ("400", "92000.00")
    acct = ex.account(user)
    assert (acct["cash_available"], acct["cash_held"]) == ("8000.00", "92000.00")
    with ex.session_factory() as s:
        assert s.get(Order, oid).pending_hold == 0
        assert audit(s) == []


def test_the_intake_connection_plans_index_scans(pg_url: str) -> None:
    """The intake's statements are prepared by psycopg; made on a near-empty orders table, their plan was
    a sequential scan kept as the table grew (tests/workers/test_query_plans.py for the matcher). The
    intake's own connection runs with enable_seqscan off, and autocommit (each statement its own
    transaction, so no row lock outlives its round trip)."""
    with harness(pg_url) as ex:
        batcher = ex.services.batcher
        assert batcher is not None

        async def settings() -> tuple[str, bool]:
            conn = await batcher._connection(_Lane())
            try:
                cur = await conn.execute("SHOW enable_seqscan")
                row = await cur.fetchone()
                assert row is not None
                return row[0], conn.autocommit
            finally:
                await conn.close()

        assert asyncio.run(settings()) == ("off", True)


def test_two_batches_overlap_under_load_and_every_order_is_placed_once(pg_url: str) -> None:
    """With many requests waiting while a batch is in PostgreSQL, a second batch runs at once on its own
    connection (api.intake_batcher's lanes); each order is still placed exactly once, with its hold."""
    with harness(pg_url, intake_batch_max=8) as ex:
        batcher = ex.services.batcher
        assert batcher is not None
        lanes_seen: list[int] = []
        process = batcher._process

        async def counted(lane: Any, jobs: list[Any]) -> Any:
            lanes_seen.append(len(batcher._tasks))
            return await process(lane, jobs)

        batcher._process = counted  # type: ignore[method-assign]
        user = ex.register()
        body = {"symbol": "AAPL", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": "1"}
        results = _all_at_once(96, lambda i: ex.post_order(user, **body, limit_price="230.00"))
        assert Counter(r.status_code for r in results) == {201: 96}
        assert len({r.json()["id"] for r in results}) == 96
        assert max(lanes_seen) == 2 and batcher.jobs_done == 96
        acct = ex.account(user)
        assert (acct["cash_available"], acct["cash_held"]) == ("77920.00", "22080.00")
        _ledger_matches_balances(ex, user.account_id)


def test_the_intake_survives_its_connection_being_killed(pg_url: str) -> None:
    """PostgreSQL ends the intake's connection (a restart, an administrator): the next order and cancel
    run again on a new connection instead of failing, and each is written once."""
    import psycopg

    with harness(pg_url) as ex:
        batcher = ex.services.batcher
        assert batcher is not None
        user = ex.register()
        body = {"symbol": "AAPL", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": "1"}

        def kill_intake_connections() -> int:
            pids = [c.info.backend_pid for c in batcher._spare]
            with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as admin:
                for pid in pids:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            return len(pids)

        first = ex.post_order(user, **body, limit_price="220.00")
        assert first.status_code == 201, first.text
        assert kill_intake_connections() >= 1
        second = ex.post_order(user, **body, limit_price="221.00")
        assert second.status_code == 201, second.text
        assert kill_intake_connections() >= 1
        canceled = ex.client.delete(f"/api/v1/orders/{first.json()['id']}", headers=user.headers)
        assert canceled.status_code == 202, canceled.text
        with ex.session_factory() as s:
            assert s.scalar(select(func.count()).select_from(Order)) == 2
            assert s.get(Order, first.json()["id"]).cancel_requested_at is not None
        acct = ex.account(user)
        assert acct["cash_held"] == "441.00"
        _ledger_matches_balances(ex, user.account_id)


def test_a_request_right_after_a_batch_ends_starts_a_new_one(pg_url: str) -> None:
    """The lane that just answered is no longer counted when its caller's next request arrives: that
    request starts a batch of its own instead of waiting for another one to come along."""
    from api.intake_batcher import IntakeBatcher, intake_conninfo
    from schema.intake import IntakeError

    with harness(pg_url) as ex:
        engine = ex.services.session_factory.kw["bind"]

        async def two_in_a_row() -> list[str]:
            batcher = IntakeBatcher(ex.services, intake_conninfo(engine), max_batch=8)
            codes = []
            try:
                for order_id in (10**12, 10**12 + 1):  # no such orders: answered ORDER_NOT_FOUND
                    try:
                        await batcher.cancel(1, order_id)  # awaited directly, as the hot path does
                    except IntakeError as exc:
                        codes.append(exc.code)
            finally:
                await batcher.aclose()
            return codes

        assert asyncio.run(asyncio.wait_for(two_in_a_row(), timeout=10)) == ["ORDER_NOT_FOUND"] * 2
