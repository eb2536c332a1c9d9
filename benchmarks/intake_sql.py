"""`python -m benchmarks.intake_sql`: the intake's two statements sent apart against pipelined, alone.

A fresh PostgreSQL database (migrated, the demo market seeded, `--accounts` bench accounts) and one
asyncio psycopg connection in autocommit, as the API's intake has. Each batch is `--orders` new limit buys
(below the market: they rest) and `--cancels` cancel requests of orders placed earlier, run either as two
statements one after the other (`place_orders_async`, then `request_cancels_async`: two round trips, two
transactions) or pipelined (`place_orders_and_request_cancels_async`: one round trip, one transaction).
Arms alternate for `--rounds` rounds of `--batches` batches; reported per arm: this process's CPU per
batch (user + system), its PostgreSQL backend's, and the wall time per batch, medians and min-max.
PostgreSQL runs on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from benchmarks import meta, report, service
from engine.types import OrderType, Side, TimeInForce
from schema.intake import OrderSpec, Rules, hold_for
from schema.intake_batch import (
    NewOrderRow,
    place_orders_and_request_cancels_async,
    place_orders_async,
    request_cancels_async,
)

SYMBOL = "AAPL"


class Flow:
    def __init__(self, accounts: list[int], rules: Rules) -> None:
        self.accounts, self.rules, self.n = accounts, rules, 0
        self.resting: list[tuple[int, int]] = []  # (order id, account id), to cancel later
        self.now = datetime.now(UTC)

    def orders(self, k: int) -> list[NewOrderRow]:
        out = []
        for _ in range(k):
            self.n += 1
            spec = OrderSpec(
                SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 1, self.rules.reference_price - 100,
                client_order_id=f"i{self.n}",
            )  # fmt: skip
            account = self.accounts[self.n % len(self.accounts)]
            out.append(NewOrderRow(account, spec, f"i{self.n}", hold_for(spec, self.rules), self.now, None))
        return out

    def placed(self, rows: list[NewOrderRow], outcomes: list[Any]) -> None:
        self.resting.extend((oid, r.account_id) for r, (_, oid) in zip(rows, outcomes, strict=True) if oid)


def _backend_cpu_s(conn: psycopg.AsyncConnection[Any]) -> float:
    """The connection's PostgreSQL backend's CPU time (same machine)."""
    return service._proc_cpu_s(conn.info.backend_pid)


async def run_arm(
    conn: psycopg.AsyncConnection[Any], flow: Flow, arm: str, batches: int, a: Any
) -> dict[str, float]:
    cpu0, wall0, pg0 = time.process_time(), time.perf_counter(), _backend_cpu_s(conn)
    for _ in range(batches):
        news = flow.orders(a.orders)
        asks = [flow.resting.pop() for _ in range(a.cancels)]
        if arm == "pipelined":
            outcomes, _ = await place_orders_and_request_cancels_async(conn, news, asks, flow.now)
        else:
            outcomes = await place_orders_async(conn, news)
            await request_cancels_async(conn, asks, flow.now)
        flow.placed(news, outcomes)
    return {
        "cpu_us_per_batch": 1e6 * (time.process_time() - cpu0) / batches,
        "wall_us_per_batch": 1e6 * (time.perf_counter() - wall0) / batches,
        "postgres_cpu_us_per_batch": 1e6 * (_backend_cpu_s(conn) - pg0) / batches,
    }


async def measure(database_url: str, accounts: list[int], a: Any) -> dict[str, list[dict[str, float]]]:
    from schema.db import make_engine, make_session_factory
    from schema.models import Instrument

    engine = make_engine(database_url, pool_size=1)
    with make_session_factory(engine)() as s:
        inst = s.get(Instrument, SYMBOL)
        assert inst is not None
        rules = Rules.of(inst)
    engine.dispose()
    flow = Flow(accounts, rules)
    options = "-c enable_seqscan=off"  # as the API's intake connection (api.intake_batcher)
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True, options=options)
    try:
        need = a.cancels * a.batches * a.rounds * 2
        while len(flow.resting) < need:  # orders to cancel, placed up front (and a warm-up)
            rows = flow.orders(200)
            flow.placed(rows, await place_orders_async(conn, rows))
        runs: dict[str, list[dict[str, float]]] = {"apart": [], "pipelined": []}
        for _ in range(a.rounds):
            for arm in runs:
                runs[arm].append(await run_arm(conn, flow, arm, a.batches, a))
        return runs
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.intake_sql", description=__doc__.split("\n")[0])
    ap.add_argument("--pg-admin-url", default=service.PG_ADMIN_URL)
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--orders", type=int, default=10, help="new orders per batch (default 10)")
    ap.add_argument("--cancels", type=int, default=5, help="cancel requests per batch (default 5)")
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--setup-sql", action="append", default=[],
        help="SQL run on the fresh database before measuring (repeatable), for what-if runs",
    )  # fmt: skip
    a = ap.parse_args(argv)
    name = service.create_database(a.pg_admin_url)
    try:
        database_url = service._pg_url(a.pg_admin_url, name)  # libpq's form: psycopg and schema.db read it
        env = {**service.os.environ, "BOURSE_DATABASE_URL": database_url}
        subprocess.run(
            service._bourse("seed-demo"), cwd=service.REPO, env=env, check=True, capture_output=True
        )
        rows = service.seed_accounts(database_url, "intake", a.accounts, [SYMBOL])
        if a.setup_sql:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for statement in a.setup_sql:
                    conn.execute(statement)
        runs = asyncio.run(measure(database_url, [acct for _, acct, _ in rows], a))
    finally:
        service.drop_database(a.pg_admin_url, name)
    print(f"machine: {meta.machine()}  date: {meta.now_iso()}")
    print(f"batch: {a.orders} new orders + {a.cancels} cancels, {a.batches} batches x {a.rounds} rounds")
    report.print_arms(runs, ("cpu_us_per_batch", "postgres_cpu_us_per_batch", "wall_us_per_batch"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
