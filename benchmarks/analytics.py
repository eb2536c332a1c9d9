"""Leaderboard and portfolio-history latency with 10,000 accounts and a year of daily equity snapshots.

Seeds (before timing) a fresh PostgreSQL database: the demo instruments, 10,000 opted-in users with an
account and two positions each, 365 daily snapshots per account (3.65 M rows) and a tape per symbol. Then
times, through HTTP (FastAPI TestClient, so routing, auth and JSON are included), each request N times:
GET /leaderboard?period=1D|1W|1M|all, GET /account/portfolio/history (1M/1D and all/1D) and GET
/account/stats for random accounts. Prints p50/p99 (ms) and writes benchmarks/out/analytics_<ts>.json.

    .venv/bin/python -m benchmarks.analytics [--accounts 10000] [--days 365] [--requests 300]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from benchmarks.meta import metadata

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)  # a Tuesday, 13:00 New York


def _copy(conn: psycopg.Connection, table: str, columns: str, rows) -> None:  # type: ignore[no-untyped-def]
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buf.seek(0)
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        while chunk := buf.read(1 << 20):
            copy.write(chunk)


def seed(url: str, accounts: int, days: int) -> None:
    from schema.db import make_engine, make_session_factory
    from schema.migrate import upgrade
    from schema.seed import DEMO_INSTRUMENTS, seed_demo

    upgrade(url)
    with make_session_factory(make_engine(url, pool_size=1))() as s:
        seed_demo(s)
        s.commit()
    rng = random.Random(7)
    symbols = [(sym, ref) for sym, _, ref in DEMO_INSTRUMENTS]
    created = NOW - timedelta(days=days + 5)
    with psycopg.connect(url) as conn:
        _copy(
            conn,
            "users",
            "id, email, password_hash, display_name, leaderboard_opt_in, is_agent, created_at",
            ((i, f"u{i}@bench", "x", f"trader{i}", "t", "f", created) for i in range(1, accounts + 1)),
        )
        _copy(
            conn,
            "accounts",
            "id, user_id, starting_cash, cash_available, cash_held, created_at",
            (
                (i, i, 10_000_000, rng.randint(1_000_000, 9_000_000), 0, created)
                for i in range(1, accounts + 1)
            ),
        )
        _copy(
            conn,
            "positions",
            "account_id, symbol, qty, held_qty, cost_basis, realized_pnl",
            (
                (i, sym, q, 0, q * ref, 0)
                for i in range(1, accounts + 1)
                for sym, ref in rng.sample(symbols, 2)
                for q in [rng.randint(1, 100)]
            ),
        )
        first = NOW.date() - timedelta(days=days)

        def snapshots():  # type: ignore[no-untyped-def]
            for i in range(1, accounts + 1):
                equity = 10_000_000
                for d in range(days):
                    equity = max(1, int(equity * (1 + rng.gauss(0.0003, 0.01))))
                    yield (i, first + timedelta(days=d), equity, equity // 2, equity - equity // 2, created)

        _copy(
            conn,
            "equity_snapshots",
            "account_id, day, equity, cash, positions_value, created_at",
            snapshots(),
        )
        # a tape: one resting pair of orders and 200 trades per symbol (the marks come from the last trade)
        oid = 0
        for sym, ref in symbols:
            oid += 2
            for o, side in ((oid - 1, "buy"), (oid, "sell")):
                conn.execute(
                    "INSERT INTO orders (id, account_id, client_order_id, symbol, side, type, time_in_force,"
                    " qty, limit_price, post_only, stp, status, filled_qty, filled_notional, canceled_qty,"
                    " hold_cash, hold_qty, pending_hold, triggered, created_at, updated_at)"
                    " VALUES (%s, 1, %s, %s, %s, 'limit', 'gtc', 200, %s, false, 'none', 'filled', 200, 0, 0,"
                    " 0, 0, 0, false, %s, %s)",
                    (o, f"b{o}", sym, side, ref, created, created),
                )
            _copy(
                conn,
                "trades",
                "symbol, seq, price, qty, aggressor, buy_order_id, sell_order_id,"
                " buyer_account_id, seller_account_id, executed_at",
                (
                    (
                        sym,
                        n,
                        ref + rng.randint(-50, 50),
                        1,
                        "buy",
                        oid - 1,
                        oid,
                        1,
                        2,
                        NOW - timedelta(minutes=200 - n),
                    )
                    for n in range(1, 201)
                ),
            )
        for table in ("users", "accounts", "orders", "trades", "equity_snapshots"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        conn.execute("ANALYZE")
        conn.commit()


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(ordered[-1], 2),
        "n": len(samples),
    }


def measure(url: str, accounts: int, requests: int) -> dict[str, dict[str, float]]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import InstrumentCache, Services
    from api.security import Principal, create_access_token
    from schema.calendar import MarketCalendar
    from schema.db import make_engine, make_session_factory
    from schema.marketdata import MemoryMarketData
    from schema.settings import Settings
    from schema.transport import InProcessBus

    factory = make_session_factory(make_engine(url))
    settings = Settings(_env_file=None, database_url=url, env="test")  # type: ignore[call-arg]
    services = Services(
        settings=settings,
        session_factory=factory,
        bus=InProcessBus(),
        marketdata=MemoryMarketData(),
        instruments=InstrumentCache(factory),
        clock=lambda: NOW,
        calendar=MarketCalendar(),
    )
    rng = random.Random(11)
    results: dict[str, dict[str, float]] = {}
    with TestClient(create_app(settings, services)) as client:

        def headers() -> dict[str, str]:
            i = rng.randint(1, accounts)
            token = create_access_token(Principal(i, i), settings.secret_key, NOW, timedelta(minutes=15))
            return {"Authorization": f"Bearer {token}"}

        cases = [
            (f"leaderboard {p}", f"/api/v1/leaderboard?period={p}", False) for p in ("1D", "1W", "1M", "all")
        ]
        cases += [
            ("history 1M/1D", "/api/v1/account/portfolio/history?period=1M&timeframe=1D", True),
            ("history all/1D", "/api/v1/account/portfolio/history?period=all&timeframe=1D", True),
            ("stats", "/api/v1/account/stats", True),
        ]
        for name, path, auth in cases:
            for _ in range(5):  # warm up
                client.get(path, headers=headers() if auth else None)
            samples = []
            for _ in range(requests):
                h = headers() if auth else None
                t0 = time.perf_counter()
                r = client.get(path, headers=h)
                samples.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
            results[name] = _percentiles(samples)
            print(f"{name:18s} p50 {results[name]['p50_ms']:7.2f} ms   p99 {results[name]['p99_ms']:7.2f} ms")
    # What a cache refresh costs: the leaderboard computed from scratch (one SQL statement + marks).
    from schema.analytics import current_marks, leaderboard

    for period in ("1D", "all"):
        samples = []
        for _ in range(max(10, requests // 10)):
            with factory() as session:
                t0 = time.perf_counter()
                leaderboard(session, NOW, MarketCalendar(), period, 100, current_marks(session))
                samples.append((time.perf_counter() - t0) * 1000)
        name = f"leaderboard {period} recompute"
        results[name] = _percentiles(samples)
        print(f"{name:18s} p50 {results[name]['p50_ms']:7.2f} ms   p99 {results[name]['p99_ms']:7.2f} ms")
    factory.kw["bind"].dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    name = f"bourse_bench_analytics_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        t0 = time.perf_counter()
        seed(url, args.accounts, args.days)
        print(f"seeded {args.accounts} accounts x {args.days} days in {time.perf_counter() - t0:.1f} s")
        results = measure(url, args.accounts, args.requests)
    finally:
        if not args.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    params = {"accounts": args.accounts, "days": args.days, "requests": args.requests}
    doc = {"meta": metadata("analytics", settings=params), "results": results}
    out = (
        Path(__file__).resolve().parent
        / "out"
        / f"analytics_{date.today():%Y%m%d}_{uuid.uuid4().hex[:6]}.json"
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
