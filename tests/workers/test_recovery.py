"""Recovery: fencing, a real matcher process killed with SIGKILL three times, and Redis losing everything."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from backbone_flow import Flow, sql_state, uninterrupted
from backbone_market import Market
from sqlalchemy import func, select

from schema.audit import audit_database
from schema.marketdata import RedisMarketData
from schema.models import Checkpoint, Order
from schema.presence import LISTENERS_KEY
from schema.push_wire import batch_lines
from schema.settings import Settings
from schema.transport import InProcessBus, RedisStreamBus, _id_tuple
from workers.lease import RedisLease
from workers.matcher import Matcher
from workers.publisher import RecordingPublisher, SocketIORedisPublisher
from workers.runner import build_matcher, run_matcher_loop

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ["AAPL", "MSFT"]


def _market(url: str, bus, n_accounts: int = 30) -> tuple[Market, list[int]]:  # type: ignore[no-untyped-def]
    market = Market(url, bus)
    for sym in SYMBOLS:
        market.add_instrument(sym, ref=100_00)
    accounts = [
        market.add_account(cash=5_000_000_00, shares={s: 20_000 for s in SYMBOLS}) for _ in range(n_accounts)
    ]
    return market, accounts


def _wait_settled(market: Market, flow: Flow, timeout_s: float = 120.0) -> None:
    """Until every symbol's checkpoint covers the last entry the flow published."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with market.sessions() as s:
            cps = {c.symbol: c.stream_id for c in s.scalars(select(Checkpoint))}
        if all(sym in cps and _id_tuple(cps[sym]) >= _id_tuple(last) for sym, last in flow.last_ids.items()):
            return
        time.sleep(0.1)
    raise TimeoutError(f"matcher did not catch up: {cps} vs {flow.last_ids}")


def test_a_stale_matcher_cannot_commit_after_a_newer_one_claimed_the_symbol(pg_url: str) -> None:
    bus = InProcessBus()
    market, (a, b) = _market(pg_url, bus, 2)
    old = Matcher(market.sessions, bus, ["AAPL"], publisher=RecordingPublisher())
    old.start()
    new = Matcher(market.sessions, bus, ["AAPL"])
    new.start()  # claims the symbol: the fencing token moves past old's
    assert new.books["AAPL"].token > old.books["AAPL"].token
    market.place(a, "AAPL", "sell", 10, 100_00)
    market.place(b, "AAPL", "buy", 10, 100_00)
    assert old.step(block_ms=0) == 2  # it read and applied them, but its commit was refused
    assert old.stats["fencing_lost"] == 1 and "AAPL" not in old.books
    assert len(market.trades("AAPL")) == 0
    new.drain()
    assert len(market.trades("AAPL")) == 1
    assert audit_database(market.engine) == []
    market.close()


def test_redis_bus_lease_and_socketio_publisher_end_to_end(pg_url: str, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    bus = RedisStreamBus(client)
    market, (a, b) = _market(pg_url, bus, 2)
    pubsub = client.pubsub()
    pubsub.subscribe("socketio")
    settings = Settings(database_url=pg_url, redis_url=redis_url)
    matcher = build_matcher(settings, ["AAPL"], worker_id="w1")
    other = RedisLease(client, "w2", settings.lease_ttl_ms)
    assert matcher.start() == ["AAPL"]
    assert not other.acquire("AAPL")  # w1 holds the lease
    # `a` has a Socket.IO connection open, as an API process counts it; `b` has none (schema.presence).
    client.hset(LISTENERS_KEY, str(a), 1)
    market.place(a, "AAPL", "sell", 10, 100_00)
    market.place(b, "AAPL", "buy", 4, 100_00)
    matcher.drain()
    assert [t.qty for t in market.trades("AAPL")] == [4]
    assert client.xlen("bourse:commands:AAPL") == 0  # trimmed after commit
    depth = RedisMarketData(client).depth("AAPL", 5)
    assert depth and depth["asks"] == [{"price": "100.00", "qty": "6", "orders": 1}] and depth["seq"] == 3
    seen: set[str] = set()
    rooms: set[str] = set()
    deadline = time.monotonic() + 5
    wanted = {"trade", "order", "fill", "depth", "ticker", "account", "position"}
    while time.monotonic() < deadline and not wanted <= seen:
        msg = pubsub.get_message(timeout=0.2)
        if msg and msg["type"] == "message":
            lines = batch_lines(msg["data"])  # one pub/sub message per settled batch
            assert lines is not None
            emits = [json.loads(line) for line in lines]
            seen.update(e["event"] for e in emits)
            rooms.update(e["room"] for e in emits)
    assert wanted <= seen
    assert rooms == {"market:AAPL", f"user:{a}"}  # nothing built for `b`, who is not connected
    matcher.close()
    assert other.acquire("AAPL")  # released on close
    assert isinstance(matcher.publisher, SocketIORedisPublisher)
    market.close()


def _spawn(pg_url: str, redis_url: str, log_path: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    env = os.environ | {"BOURSE_DATABASE_URL": pg_url, "BOURSE_REDIS_URL": redis_url, "BOURSE_ENV": "test"}
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "workers", "--symbols", ",".join(SYMBOLS), "--worker-id", "crash-test"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def test_kill_9_three_times_loses_and_doubles_nothing(
    pg_url: str, isolated_redis_url: str, tmp_path: Path
) -> None:
    redis_url = isolated_redis_url
    client = redis.Redis.from_url(redis_url)
    market, accounts = _market(pg_url, RedisStreamBus(client))
    flow = Flow(market, SYMBOLS, accounts, seed=42)
    rng = random.Random(4242)
    kills = sorted(rng.sample(range(300, 4700), 3))
    log_path = tmp_path / "worker.log"
    proc = _spawn(pg_url, redis_url, log_path)
    try:
        for i in range(5000):
            if kills and i == kills[0]:
                kills.pop(0)
                time.sleep(rng.random() * 0.3)  # land the kill anywhere in the matcher's loop
                proc.kill()
                proc.wait()
                proc = _spawn(pg_url, redis_url, log_path)
            flow.step()
        _wait_settled(market, flow)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    log_text = log_path.read_text()
    assert log_text.count("rebuilt") >= 2 * 4, log_text[-3000:]  # 4 starts x 2 symbols
    expected = uninterrupted(market, flow)
    actual = sql_state(market, SYMBOLS)
    for sym in SYMBOLS:
        assert actual[sym][1] == expected[sym][1], f"{sym}: trades differ"  # none lost, none doubled
        assert actual[sym][0] == expected[sym][0], f"{sym}: book rebuilt from SQL differs"
    assert sum(len(expected[s][1]) for s in SYMBOLS) > 500
    assert audit_database(market.engine) == []
    market.close()


def test_redis_restart_mid_flow_loses_no_accepted_order(pg_url: str, private_redis, request) -> None:  # type: ignore[no-untyped-def]
    """Redis restarts with nothing kept (a private server killed and started again; FLUSHDB of the shared
    test db where no redis-server binary is available): streams, leases and depth are gone."""
    redis_url = private_redis.url if private_redis else request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(redis_url)
    market, accounts = _market(pg_url, RedisStreamBus(client), 20)
    flow = Flow(market, SYMBOLS, accounts, seed=7)
    settings = Settings(database_url=pg_url, redis_url=redis_url)
    matcher = build_matcher(settings, SYMBOLS, worker_id="flush-test")
    stop = threading.Event()
    loop = threading.Thread(
        target=run_matcher_loop,
        args=(matcher, stop),
        kwargs={"reconcile_every_s": 0.5, "reconcile_age_s": 1.0},
    )
    loop.start()
    try:
        for i in range(1500):
            if i == 700:
                if private_redis:
                    private_redis.restart()
                else:
                    client.flushdb()
            flow.step()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with market.sessions() as s:
                stranded = s.scalar(
                    select(func.count()).where(Order.status == "new", Order.seq.is_(None)).select_from(Order)
                )
                pending = s.scalar(
                    select(func.count())
                    .where(
                        Order.status.in_(("filled", "canceled", "expired", "rejected")),
                        Order.pending_hold > 0,
                    )
                    .select_from(Order)
                )
            if stranded == 0 and pending == 0:
                break
            time.sleep(0.2)
        assert stranded == 0, "accepted orders were never matched"
        assert pending == 0, "stranded replace holds were never released"
        time.sleep(1.0)  # idle: the last batches are settled
        live = {sym: matcher.state_hash(sym) for sym in SYMBOLS}
    finally:
        stop.set()
        loop.join(timeout=20)
    assert audit_database(market.engine) == []
    actual = sql_state(market, SYMBOLS)
    for sym in SYMBOLS:  # SQL holds exactly the books the matcher had in memory
        assert live[sym] == actual[sym][0]
    market.close()


def test_embedded_sqlite_with_concurrent_intake_settles_everything(sqlite_url: str) -> None:
    """`bourse serve`'s shape: SQLite, the in-process bus, intake threads writing while the matcher
    thread settles (SQLite has one writer: both sides wait on its lock, nothing is lost or locked out)."""
    bus = InProcessBus()
    market, accounts = _market(sqlite_url, bus, 8)
    matcher = Matcher(market.sessions, bus, SYMBOLS, publisher=RecordingPublisher())
    stop = threading.Event()
    loop = threading.Thread(target=run_matcher_loop, args=(matcher, stop), kwargs={"reconcile_every_s": 0.5})
    loop.start()
    flows = [Flow(Market(sqlite_url, bus, migrate=False), SYMBOLS, accounts, seed=s) for s in range(4)]
    errors: list[BaseException] = []

    def place(flow: Flow) -> None:
        try:
            for _ in range(150):
                flow.step()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=place, args=(f,)) for f in flows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with market.sessions() as s:
                stranded = s.scalar(
                    select(func.count()).where(Order.status == "new", Order.seq.is_(None)).select_from(Order)
                )
            caught_up = all(
                matcher.books[sym].cursor == bus.last_id(sym)
                for sym in SYMBOLS
                if bus.last_id(sym) is not None
            )
            if stranded == 0 and caught_up:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        live = {sym: matcher.state_hash(sym) for sym in SYMBOLS}
    finally:
        stop.set()
        loop.join(timeout=20)
    assert stranded == 0
    assert audit_database(market.engine) == []
    actual = sql_state(market, SYMBOLS)
    assert all(live[sym] == actual[sym][0] for sym in SYMBOLS)
    assert sum(len(actual[sym][1]) for sym in SYMBOLS) > 20
    for f in flows:
        f.market.close()
    market.close()
