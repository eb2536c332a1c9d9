"""Agent overhead: people's order throughput with the default agent set on vs off (issue 4, "How fast").

Each round starts a fresh Bourse with the demo agents on or off, waits `--warmup` seconds, drives it with
the service bench (`benchmarks.service.run_service` against its URL: the same code as `bourse bench
service --url ...`), then stops it. Two deployments (`--launch`):

- `pg` (default; the backbone's throughput target is defined on it): `benchmarks.service.launch("pg")`
  with every demo symbol, so the matchers own everything the agents trade — a fresh PostgreSQL database,
  a private redis-server, `bourse seed-demo`, `--matchers` `bourse worker` processes and one `bourse api
  --workers N`. The "on" arm adds a `bourse agents` process (the default demo set) on the same database
  and Redis, stopped and reaped with the deployment's other processes, its log next to theirs.
- `embedded`: `bourse serve` (SQLite in the round's directory) with BOURSE_AGENTS=true or false.

Rounds alternate off/on/off/on on the same machine in the same run, so the load other processes put on the
machine falls on both arms alike. People's flow: the bench's own namespaced accounts (`bench-<run id>-*`)
on `--symbols` (AAPL), closed loop (`--rate max`) or a fixed rate, the same settings for both arms.
Reported per round: settled orders/s (the bench accounts' accepted orders / time until none is left
unsequenced in SQL: the agents' orders are not counted), POST→settled p50/p99, the load average, and
from SQL the agents' orders placed while the bench's orders arrived (proof the agents traded); per arm
the medians, the ratio on/off of the medians and the range of the per-pair ratios.

    python -m benchmarks.agents --rounds 3 --n 20000              # pg, closed loop
    python -m benchmarks.agents --launch embedded --rounds 3 --n 1000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import meta, service
from benchmarks.generator import FlowParams
from schema.seed import DEMO_INSTRUMENTS

DEMO_SYMBOLS = tuple(symbol for symbol, _name, _ref in DEMO_INSTRUMENTS)
DEFAULT_N = {"pg": 20_000, "embedded": 1_000}  # pg settles ~10x faster: a round must last long enough


def _serve(agents: bool, workdir: Path) -> service.Deployment:
    """`bourse serve` with BOURSE_AGENTS on or off (the embedded agents run in the serve process)."""
    port = service.free_port()
    secret = secrets.token_urlsafe(32)
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOURSE_")}
    env.update(
        BOURSE_SECRET_KEY=secret,
        BOURSE_MARKET_HOURS="always",
        BOURSE_AGENTS="true" if agents else "false",
        BOURSE_ENV="dev",
        BOURSE_HOST="127.0.0.1",
        BOURSE_PORT=str(port),
        BOURSE_DATABASE_URL=database_url,
        PYTHONUNBUFFERED="1",
    )
    url = f"http://127.0.0.1:{port}"
    dep = service.Deployment(url, database_url, None, secret, "embedded", log_dir=workdir)
    dep.procs["serve"] = service._spawn(
        "serve", service._bourse("serve", "--log-level", "warning"), env, workdir
    )
    try:
        service._wait_http(url, dep.procs)
    except BaseException:
        dep.close()
        raise
    return dep


def _spawn_agents(dep: service.Deployment) -> None:
    """`bourse agents` (the demo set on every instrument) against the deployment's database and Redis;
    registered in dep.procs so dep.close() stops and reaps it (first: it was started last)."""
    assert dep.database_url and dep.redis_url and dep.secret_key and dep.log_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOURSE_")}
    # the deployment's own settings: the agents must see the market open and write where the API does
    env.update(
        BOURSE_SECRET_KEY=dep.secret_key,
        BOURSE_MARKET_HOURS="always",
        BOURSE_ENV="dev",
        BOURSE_DATABASE_URL=dep.database_url,
        BOURSE_REDIS_URL=dep.redis_url,
        PYTHONUNBUFFERED="1",
    )
    dep.procs["agents"] = service._spawn("agents", service._bourse("agents"), env, dep.log_dir)


@contextlib.contextmanager
def market(
    agents: bool, args: argparse.Namespace, log_dir: Path, database_url: str | None = None
) -> Iterator[service.Deployment]:
    """A fresh deployment for one round, agents on or off; every process it started is stopped at exit
    (and the database it created dropped)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    if args.launch == "embedded":
        dep = _serve(agents, log_dir)
    else:
        dep = service.launch(
            "pg", symbols=DEMO_SYMBOLS, api_procs=args.api_procs, matchers=args.matchers,
            database_url=database_url, pg_admin_url=args.pg_admin_url, log_dir=log_dir,
        )  # fmt: skip
    try:
        if agents and args.launch == "pg":
            _spawn_agents(dep)
        yield dep
    finally:
        dep.close()


# ---------------------------------------------------------------------------------------------- SQL
def _engine(database_url: str) -> Any:
    from schema.db import make_engine

    return make_engine(database_url, pool_size=1)


def agent_orders(database_url: str) -> int:
    """Orders placed by agent users so far."""
    from sqlalchemy import func, select

    from schema.models import Account, Order, User

    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(Order)
                    .join(Account, Order.account_id == Account.id)
                    .join(User, Account.user_id == User.id)
                    .where(User.is_agent.is_(True))
                )
                or 0
            )
    finally:
        engine.dispose()


def wait_for_agents(dep: service.Deployment, timeout: float = 60.0) -> float:
    """Seconds until the first agent order is in SQL (the agents funded themselves and quote)."""
    assert dep.database_url is not None
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for name, proc in dep.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} (logs in {dep.log_dir})")
        if agent_orders(dep.database_url) > 0:
            return round(time.monotonic() - t0, 1)
        time.sleep(0.25)
    raise TimeoutError(f"no agent order in SQL after {timeout:.0f}s (logs in {dep.log_dir})")


def window_counts(database_url: str, run_id: str) -> dict[str, Any]:
    """Who placed orders while the bench's orders arrived (from the first to the last bench order's
    created_at): the bench's accounts, the agents, anyone else (must be none); the agents' trades in the
    window; and the agents' orders of the window still unsequenced at the end."""
    from sqlalchemy import func, or_, select

    from schema.models import Account, Order, Trade, User

    def by_owner(what: Any) -> Any:
        return select(what).select_from(Order).join(Account, Order.account_id == Account.id).join(
            User, Account.user_id == User.id
        )  # fmt: skip

    bench, agent = User.email.like(f"bench-{run_id}-%"), User.is_agent.is_(True)
    lo = by_owner(func.min(Order.created_at)).where(bench).scalar_subquery()
    hi = by_owner(func.max(Order.created_at)).where(bench).scalar_subquery()
    in_window = Order.created_at.between(lo, hi)
    agent_ids = select(Account.id).join(User, Account.user_id == User.id).where(agent)
    agent_trade = or_(Trade.buyer_account_id.in_(agent_ids), Trade.seller_account_id.in_(agent_ids))
    trades = select(func.count()).select_from(Trade)
    queries = {
        "bench_orders": by_owner(func.count()).where(bench),
        "agent_orders_total": by_owner(func.count()).where(agent),
        "agent_orders_in_window": by_owner(func.count()).where(agent, in_window),
        "agent_orders_in_window_unsequenced": by_owner(func.count()).where(
            agent, in_window, Order.status == "new", Order.seq.is_(None)
        ),
        "other_orders_in_window": by_owner(func.count()).where(~agent, ~bench, in_window),
        "agent_trades_total": trades.where(agent_trade),
        "agent_trades_in_window": trades.where(agent_trade, Trade.executed_at.between(lo, hi)),
    }
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            first, last = conn.execute(select(lo, hi)).one()
            out: dict[str, Any] = {k: int(conn.scalar(q) or 0) for k, q in queries.items()}
    finally:
        engine.dispose()
    window_s = (last - first).total_seconds() if first is not None and last is not None else None
    out["window_s"] = None if window_s is None else round(window_s, 3)
    out["agent_orders_per_s_in_window"] = (
        round(out["agent_orders_in_window"] / window_s, 1) if window_s else None
    )
    return out


def _cpu(dep: service.Deployment) -> dict[str, float]:
    """CPU seconds so far of each process of the deployment and of its PostgreSQL backends."""
    cpu = {name: service._proc_cpu_s(pid) for name, pid in dep.pids().items()}
    if dep.database_url and dep.database_url.startswith("postgresql"):
        cpu["postgres"] = sum(service._postgres_cpu_s(dep.database_url).values())
    return cpu


# ---------------------------------------------------------------------------------------------- rounds
def one_round(
    index: int,
    agents: bool,
    args: argparse.Namespace,
    out_dir: Path,
    database_url: str | None = None,
    quiet_gc: bool = False,
) -> dict[str, Any]:
    arm = "on" if agents else "off"
    log_dir = out_dir / f"logs-agents-{args.stamp}" / f"round-{index + 1}-{arm}"
    load_before = meta.load_average()
    rate = None if args.rate == "max" else float(args.rate)
    run_id = f"{args.stamp}-r{index + 1}{arm}-{secrets.token_hex(2)}"
    with market(agents, args, log_dir, database_url) as dep:
        assert dep.database_url is not None
        first_agent_order_s = wait_for_agents(dep) if agents else None
        time.sleep(args.warmup)
        opts = service.ServiceOptions(
            url=dep.url, database_url=dep.database_url, redis_url=dep.redis_url, secret_key=dep.secret_key,
            accounts=args.accounts, listeners=args.listeners, clients=args.clients,
            connections=args.connections, http=args.http, rates=(rate,),
            duration_s=None if rate is None else args.n / rate,
            flow=FlowParams(n=args.n, seed=args.seed, symbols=tuple(args.symbols.split(","))),
            out_dir=out_dir, progress=False, plot=False, max_seconds=args.max_seconds,
            drain_seconds=args.drain_seconds, run_id=run_id, quiet_gc=quiet_gc,
        )  # fmt: skip
        cpu0 = _cpu(dep)
        result = service.run_service(opts)[0]
        cpu = {name: v - cpu0.get(name, 0.0) for name, v in _cpu(dep).items()}
        dead = {name: p.returncode for name, p in dep.procs.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"{dead} exited during the round (logs in {log_dir})")
        sql = window_counts(dep.database_url, run_id)
    s, lat, rec = result["summary"], result["latency_ms"], result["reconcile"]
    return {
        "round": index + 1,
        "agents": agents,
        "launch": args.launch,
        "settled_orders_per_s": s["settled_orders_per_s"],
        "acked_orders_per_s": s["acked_orders_per_s"],
        "post_settled_p50_ms": lat["post_settled"]["p50"],
        "post_settled_p99_ms": lat["post_settled"]["p99"],
        "post_settled_n": lat["post_settled"].get("n"),
        "people_orders_accepted": s["accepted"],
        "unsettled_at_end": s["unsettled_at_end"],
        "reconciled": bool(rec["ok_sent"] and rec["ok_orders_in_sql"] and rec["ok_fills"]),
        "sql": sql,
        "first_agent_order_after_s": first_agent_order_s,
        # CPU per people's order is steadier than a rate on a shared machine; it spans the bench's whole
        # run (seeding and listener set-up included), so compare it between arms, not with other benches
        "cpu_ms_per_people_order": {k: round(1000 * v / max(1, s["accepted"]), 3) for k, v in cpu.items()},
        "load_before": load_before,
        "load_end": meta.load_average(),
        "logs": str(log_dir),
        "result": result.get("path"),
    }


def _median(rounds: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rounds if r[key] is not None]
    return round(statistics.median(values), 1) if values else None


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    off = [r for r in rounds if not r["agents"]]
    on = [r for r in rounds if r["agents"]]
    doc: dict[str, Any] = {}
    for key in ("settled_orders_per_s", "post_settled_p50_ms", "post_settled_p99_ms"):
        a, b = _median(off, key), _median(on, key)
        pairs = [y[key] / x[key] for x, y in zip(off, on, strict=False) if x[key] and y[key] is not None]
        doc[key] = {
            "off_median": a,
            "on_median": b,
            "ratio_on_off": None if not a or b is None else round(b / a, 3),
            "pair_ratio_range": [round(min(pairs), 3), round(max(pairs), 3)] if pairs else None,
            "off_all": [r[key] for r in off],
            "on_all": [r[key] for r in on],
        }
    return doc


def ok(rounds: list[dict[str, Any]]) -> bool:
    """Every people's order settled and reconciled, nobody else's order in the window, and the agents
    really placed orders in every "on" round (and none in an "off" one)."""
    return all(
        not r["unsettled_at_end"]
        and r["reconciled"]
        and r["sql"]["other_orders_in_window"] == 0
        and r["sql"]["bench_orders"] == r["people_orders_accepted"]
        and (r["sql"]["agent_orders_in_window"] > 0) == r["agents"]
        for r in rounds
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.agents", description=__doc__.split("\n")[0])
    p.add_argument(
        "--launch", choices=("pg", "embedded"), default="pg",
        help="pg: PostgreSQL + Redis, `bourse api` + matchers (+ `bourse agents`), the backbone's "
        "deployment (default); embedded: `bourse serve` on SQLite",
    )  # fmt: skip
    p.add_argument("--rounds", type=int, default=3, help="rounds per arm (alternating off, on, ...)")
    p.add_argument("--n", type=int, help="messages per round (default 20,000 pg, 1,000 embedded)")
    p.add_argument("--rate", default="max", help="offered msgs/s, or 'max' (closed loop: capacity)")
    p.add_argument("--accounts", type=int, default=100)
    p.add_argument("--listeners", type=int, help="accounts with a Socket.IO listener (default: all)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--http", default="raw", choices=service.HTTP_KINDS)
    p.add_argument("--symbols", default="AAPL", help="the people's flow (the agents trade every symbol)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--api-procs", type=int, default=1, help="pg: uvicorn worker processes")
    p.add_argument("--matchers", type=int, default=1, help="pg: matcher processes over the demo symbols")
    p.add_argument(
        "--pg-admin-url", default=service.PG_ADMIN_URL, help="pg: where each round's database is made"
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds before the load (with agents: after their first order)",
    )
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--drain-seconds", type=float, default=60.0)
    p.add_argument("--out", default=str(service.OUT_DIR))
    return p


def run(
    args: argparse.Namespace,
    database_urls: Callable[[], str] | None = None,
    command: str = "",
    quiet_gc: bool = False,
) -> dict[str, Any]:
    """All rounds; `database_urls` (pg only) gives each round an empty database instead of creating one.
    `quiet_gc`: see service.ServiceOptions (True from the command line)."""
    if args.n is None:
        args.n = DEFAULT_N[args.launch]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    args.stamp = f"{started:%Y%m%d%H%M%S}"
    rounds: list[dict[str, Any]] = []
    for i in range(2 * args.rounds):
        agents = i % 2 == 1
        db = database_urls() if database_urls is not None and args.launch == "pg" else None
        r = one_round(i, agents, args, out_dir, db, quiet_gc)
        rounds.append(r)
        print(
            f"round {i + 1}: agents {'on ' if agents else 'off'} settled {r['settled_orders_per_s']}/s "
            f"p50 {r['post_settled_p50_ms']} ms p99 {r['post_settled_p99_ms']} ms "
            f"agent orders {r['sql']['agent_orders_in_window']} "
            f"({r['sql']['agent_orders_per_s_in_window']}/s) "
            f"load {r['load_before']} -> {r['load_end']}",
            file=sys.stderr,
        )
    settings = {k: v for k, v in vars(args).items() if k != "stamp"}
    doc = {
        "meta": meta.metadata("agents", settings={**settings, "demo_symbols": list(DEMO_SYMBOLS)}),
        "command": command,
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "rounds": rounds,
        "summary": summarize(rounds),
        "ok": ok(rounds),
    }
    path = out_dir / f"agents-{args.stamp}.json"
    path.write_text(json.dumps(doc, indent=2, default=str))
    doc["path"] = str(path)
    return doc


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    service.quiet_client_logs()
    # SIGTERM unwinds like ^C: the round's processes are stopped and its database dropped
    signal.signal(signal.SIGTERM, service._raise_interrupt)
    command = "python -m benchmarks.agents " + " ".join(argv if argv is not None else sys.argv[1:])
    doc = run(args, command=command, quiet_gc=True)
    print(json.dumps(doc["summary"], indent=2))
    print(f"result: {doc['path']}", file=sys.stderr)
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
