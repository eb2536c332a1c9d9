"""Matcher micro-benchmark on PostgreSQL: the per-command cost of `Matcher.step()` (read a batch from the
Redis stream, dedupe against SQL, apply, settle in one transaction, trim, store depth/ticker, build and
publish the Socket.IO pushes), with no API in front of it.

    .venv/bin/python -m benchmarks.matcher --accounts 1000 --commands 20000 --batch 500,20 --runs 3

Per run and batch size: a fresh database (`bourse_mbench_<id>`, dropped at the end), `schema.migrate`,
one instrument (AAPL), `--accounts` accounts funded in SQL with a ledger deposit of cash and shares, then
the seeded flow of `benchmarks/generator.py` (55% limit / 35% cancel / 10% market by default) turned into
orders the way the API's intake leaves them (status new, seq NULL, hold taken, ledger "hold" rows) and
published as NewOrder / Cancel commands into a private redis-server's stream in one pipeline. Only then
does the clock start: `Matcher.step(block_ms=0)` until the stream is drained, wired as
`workers.runner.build_matcher` wires a scaled-out matcher: its engine (`matcher_engine`), the real Redis
stream bus, Redis market-data store and Socket.IO Redis publisher, whose post-commit commands (trim when
due, depth/ticker, pushes) share one Redis pipeline per batch. Reported: commands/s settled, ms per batch
(median and p90 over batches), matcher CPU ms per command, batches; the median of `--runs` runs, with the
load average before and after.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SYMBOL = "AAPL"
REF = 100_00  # reference price, cents
DEFAULT_PG_ADMIN = os.environ.get("BOURSE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _db_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


def _ledger_row(**kw: Any) -> dict[str, Any]:
    row = {"symbol": None, "order_id": None, "cash_available_delta": 0, "cash_held_delta": 0, "qty_delta": 0,
           "held_qty_delta": 0}  # fmt: skip
    row.update(kw)
    return row


def seed(database_url: str, n_accounts: int, n_commands: int, seed_: int) -> list[Any]:
    """Instrument, funded accounts, and the flow's orders as intake leaves them. Returns the commands."""
    from sqlalchemy import insert, select, update

    from benchmarks.generator import CANCEL, LIMIT, FlowParams, generate
    from engine.commands import Cancel, NewOrder
    from engine.types import OrderType, Side, StpMode, TimeInForce
    from schema.db import make_engine
    from schema.models import Account, Instrument, LedgerEntry, Order, Position, User
    from schema.orderbook_load import to_epoch_ms

    now = datetime.now(UTC)
    ts = to_epoch_ms(now)
    cash, shares = 1_000_000_00, 1_000_000
    band = 1000  # bps
    lo, hi = REF * (10_000 - band) // 10_000, REF * (10_000 + band) // 10_000
    flow = generate(FlowParams(n=n_commands, seed=seed_, symbols=(SYMBOL,)))
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(Instrument),
                [{"symbol": SYMBOL, "name": SYMBOL, "tick": 1, "lot": 1, "min_qty": 1, "max_qty": 1_000_000,
                  "max_notional": 10_000_000_000_00, "band_bps": band, "reference_price": REF,
                  "status": "active"}],
            )  # fmt: skip
            emails = [f"mbench-{i}@bench.invalid" for i in range(n_accounts)]
            conn.execute(
                insert(User),
                [{"email": e, "password_hash": "x", "display_name": None, "leaderboard_opt_in": False,
                  "is_agent": False, "created_at": now} for e in emails],
            )  # fmt: skip
            users = dict(conn.execute(select(User.email, User.id)).all())
            conn.execute(
                insert(Account),
                [{"user_id": users[e], "starting_cash": cash, "cash_available": cash, "cash_held": 0,
                  "created_at": now} for e in emails],
            )  # fmt: skip
            accounts = sorted(conn.execute(select(Account.id)).scalars())
            conn.execute(
                insert(Position),
                [{"account_id": a, "symbol": SYMBOL, "qty": shares, "held_qty": 0, "cost_basis": 0,
                  "realized_pnl": 0} for a in accounts],
            )  # fmt: skip
            ledger: list[dict[str, Any]] = []
            for a in accounts:
                ledger.append(
                    _ledger_row(account_id=a, kind="deposit", cash_available_delta=cash, created_at=now)
                )
                ledger.append(
                    _ledger_row(account_id=a, kind="deposit", symbol=SYMBOL, qty_delta=shares, created_at=now)
                )
            conn.execute(insert(LedgerEntry), ledger)

            # orders (intake's state: new, unsequenced, hold taken), ids in flow order
            rows: list[dict[str, Any]] = []
            owner: dict[int, int] = {}
            for m in flow:
                if m.kind == CANCEL:
                    continue
                account = accounts[(m.order_id * 2654435761) % len(accounts)]
                owner[m.order_id] = account
                side = "buy" if m.side == "B" else "sell"
                price = None if m.kind != LIMIT else min(hi, max(lo, REF + m.price - 100_000))
                hold = m.qty if side == "sell" else m.qty * (price if price is not None else hi)
                rows.append(
                    {"account_id": account, "client_order_id": f"m{m.order_id}", "symbol": SYMBOL,
                     "side": side, "type": "limit" if m.kind == LIMIT else "market",
                     "time_in_force": "gtc" if m.kind == LIMIT else "ioc", "qty": m.qty, "limit_price": price,
                     "stop_price": None, "expire_at": None, "post_only": False, "stp": "cancel_resting",
                     "status": "new", "filled_qty": 0, "filled_notional": 0, "canceled_qty": 0,
                     "hold_cash": hold if side == "buy" else 0, "hold_qty": hold if side == "sell" else 0,
                     "pending_hold": 0, "triggered": False, "seq": None, "created_at": now, "updated_at": now}
                )  # fmt: skip
            conn.execute(insert(Order), rows)
            ids = dict(conn.execute(select(Order.client_order_id, Order.id)).all())
            held_cash: dict[int, int] = {}
            held_qty: dict[int, int] = {}
            holds: list[dict[str, Any]] = []
            for r in rows:
                oid, a = ids[r["client_order_id"]], r["account_id"]
                if r["side"] == "buy":
                    held_cash[a] = held_cash.get(a, 0) + r["hold_cash"]
                    holds.append(
                        _ledger_row(
                            account_id=a,
                            kind="hold",
                            order_id=oid,
                            cash_available_delta=-r["hold_cash"],
                            cash_held_delta=r["hold_cash"],
                            created_at=now,
                        )
                    )
                else:
                    held_qty[a] = held_qty.get(a, 0) + r["hold_qty"]
                    holds.append(
                        _ledger_row(
                            account_id=a,
                            kind="hold",
                            symbol=SYMBOL,
                            order_id=oid,
                            held_qty_delta=r["hold_qty"],
                            created_at=now,
                        )
                    )
            conn.execute(insert(LedgerEntry), holds)
            acc = Account.__table__
            for a, h in held_cash.items():
                conn.execute(
                    update(acc).where(acc.c.id == a)
                    .values(cash_available=acc.c.cash_available - h, cash_held=acc.c.cash_held + h)
                )  # fmt: skip
            pos = Position.__table__
            for a, h in held_qty.items():
                conn.execute(
                    update(pos).where(pos.c.account_id == a, pos.c.symbol == SYMBOL)
                    .values(held_qty=pos.c.held_qty + h)
                )  # fmt: skip
    finally:
        engine.dispose()

    commands: list[Any] = []
    for m in flow:
        oid = ids[f"m{m.order_id}"]
        if m.kind == CANCEL:
            commands.append(Cancel(order_id=oid, account=owner[m.order_id], symbol=SYMBOL, ts=ts))
            continue
        side = Side.BUY if m.side == "B" else Side.SELL
        limit = m.kind == LIMIT
        price = min(hi, max(lo, REF + m.price - 100_000)) if limit else None
        hold = m.qty if side is Side.SELL else m.qty * (price if price is not None else hi)
        commands.append(
            NewOrder(order_id=oid, account=owner[m.order_id], symbol=SYMBOL, side=side,
                     type=OrderType.LIMIT if limit else OrderType.MARKET, qty=m.qty, price=price,
                     stop_price=None, tif=TimeInForce.GTC if limit else TimeInForce.IOC, expire_at=None,
                     stp=StpMode.CANCEL_RESTING, hold=hold, ts=ts)
        )  # fmt: skip
    return commands


class _Counting:
    """The real publisher, counting what it is asked to push (the same flow must push the same events)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.counts: dict[str, int] = {}

    def emit(self, event: str, data: dict[str, Any], room: str) -> None:
        self.counts[event] = self.counts.get(event, 0) + 1
        self.inner.emit(event, data, room)

    def flush(self, pipe: Any = None) -> None:
        self.inner.flush(pipe)


def one_run(admin_url: str, redis_url: str, args: argparse.Namespace, batch: int) -> dict[str, Any]:
    import psycopg
    import redis

    from schema.audit import audit_database
    from schema.db import make_session_factory
    from schema.marketdata import RedisMarketData
    from schema.migrate import upgrade
    from schema.presence import LISTENERS_KEY, RedisListeners
    from schema.settings import Settings
    from schema.transport import RedisStreamBus
    from workers.matcher import Matcher
    from workers.publisher import SocketIORedisPublisher
    from workers.runner import matcher_engine

    name = f"bourse_mbench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = _db_url(admin_url, name)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    engine = None
    try:
        upgrade(url)
        commands = seed(url, args.accounts, args.commands, args.seed)
        bus = RedisStreamBus(client)
        for lo in range(0, len(commands), 5000):
            bus.publish_many(SYMBOL, commands[lo : lo + 5000])
        engine = matcher_engine(url)
        settings = Settings(database_url=url, redis_url=redis_url, batch_max_commands=batch)
        # wired as workers.runner.build_matcher wires a scaled-out matcher
        publisher = _Counting(SocketIORedisPublisher(redis_url, client=client))
        listeners = None  # --listening 100: every account's pushes, as before presence
        if args.listening < 100:
            with psycopg.connect(url) as conn:
                ids = [r[0] for r in conn.execute("SELECT id FROM accounts ORDER BY id")]
            shown = ids[: round(len(ids) * args.listening / 100)]
            if shown:  # as API processes count their Socket.IO connections
                client.hset(LISTENERS_KEY, mapping={str(a): 1 for a in shown})
            listeners = RedisListeners(client)
        matcher = Matcher(
            make_session_factory(engine), bus, [SYMBOL], settings=settings,
            publisher=publisher, market_data=RedisMarketData(client),
            redis_pipeline=functools.partial(client.pipeline, transaction=False), listeners=listeners,
        )  # fmt: skip
        matcher.start()
        load_before = os.getloadavg()
        profiler = None
        if args.profile is not None:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu0, t0 = time.process_time(), time.perf_counter()
        per_batch: list[float] = []
        done = 0
        while True:
            s = time.perf_counter()
            n = matcher.step(block_ms=0)
            if n == 0:
                break
            per_batch.append(time.perf_counter() - s)
            done += n
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{args.profile}.{batch}")
        load_after = os.getloadavg()
        stats = dict(matcher.stats)
        matcher.close()
        violations = audit_database(url) if args.audit else []
        per_batch.sort()
        return {
            "batch_max_commands": batch,
            "listening_pct": args.listening,
            "commands": done,
            "seconds": round(elapsed, 3),
            "commands_per_s": round(done / elapsed, 1),
            "matcher_cpu_ms_per_command": round(cpu * 1000 / done, 4),
            "batches": len(per_batch),
            "ms_per_batch_p50": round(statistics.median(per_batch) * 1000, 3),
            "ms_per_batch_p90": round(per_batch[int(0.9 * (len(per_batch) - 1))] * 1000, 3),
            "matcher_stats": stats,
            "pushed": dict(sorted(publisher.counts.items())),
            "audit_violations": len(violations),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after],
        }
    finally:
        if engine is not None:
            engine.dispose()
        client.flushdb()
        client.close()
        if not args.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.matcher", description=__doc__.split("\n")[0])
    p.add_argument("--accounts", type=int, default=1000)
    p.add_argument("--commands", type=int, default=20_000, help="flow messages (limits, cancels, markets)")
    p.add_argument("--batch", default="500", help="batch_max_commands values, comma separated")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--listening", type=float, default=100.0,
        help="percent of accounts with a Socket.IO connection (schema.presence); 100: push to all",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN)
    p.add_argument("--redis-url", default=None, help="default: a private redis-server")
    p.add_argument("--keep", action="store_true", help="keep the databases")
    p.add_argument("--no-audit", dest="audit", action="store_false", help="skip `bourse audit` after a run")
    p.add_argument("--profile", default=None, help="cProfile the timed loop into PROFILE.<batch>")
    p.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    args = p.parse_args(argv)

    from benchmarks.meta import machine

    proc = None
    redis_url = args.redis_url
    tmp = tempfile.TemporaryDirectory(prefix="mbench-")
    if redis_url is None:
        from benchmarks.service import _stop_process, start_private_redis

        redis_url, proc = start_private_redis(Path(tmp.name))
    results: dict[str, Any] = {
        "meta": machine(),
        "params": vars(args) | {"out": str(args.out)},
        "batches": {},
    }
    try:
        for batch in [int(b) for b in args.batch.split(",")]:
            runs = [one_run(args.pg_admin_url, redis_url, args, batch) for _ in range(args.runs)]
            med = sorted(runs, key=lambda r: r["commands_per_s"])[len(runs) // 2]
            results["batches"][str(batch)] = {"median_run": med, "runs": runs}
            print(
                f"batch_max_commands={batch}: {med['commands_per_s']:.0f} commands/s (median of "
                f"{len(runs)}: {', '.join(str(r['commands_per_s']) for r in runs)}), "
                f"{med['batches']} batches, ms/batch p50 {med['ms_per_batch_p50']} p90 "
                f"{med['ms_per_batch_p90']}, matcher CPU {med['matcher_cpu_ms_per_command']} ms/command, "
                f"load {med['load_before'][0]} -> {med['load_after'][0]}, audit violations "
                f"{med['audit_violations']}, pushed {med['pushed']}",
                flush=True,
            )
    finally:
        if proc is not None:
            _stop_process(proc)
        tmp.cleanup()
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
