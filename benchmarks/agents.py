"""Agent overhead: people's order throughput with the default agent set on vs off (issue 4, "How fast").

Each round starts a fresh embedded Bourse (`bourse serve`, SQLite in a temporary directory,
BOURSE_MARKET_HOURS=always) with BOURSE_AGENTS=true or false, waits `--warmup` seconds (the agents fund
their accounts and start quoting), then drives it with the service bench (`benchmarks.service.run_service`
against `--url`, the same code as `bourse bench service --url ...`), and stops it. Rounds alternate
off/on/off/on on the same machine in the same run, so the load other processes put on the machine falls on
both arms alike. Reported: settled orders/s (people's orders: the bench's accounts only) and POST→settled
p50/p99 per round, the medians per arm, the ratio on/off of the medians and the range of the per-pair
ratios, the load average before each round.

    python -m benchmarks.agents --rounds 3 --n 1000 --rate max
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import meta, service
from benchmarks.generator import FlowParams


def _serve(agents: bool, workdir: Path) -> tuple[str, str, str, Any]:
    """Start `bourse serve` with agents on or off; returns (url, database_url, secret, process)."""
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
    proc = service._spawn("serve", service._bourse("serve", "--log-level", "warning"), env, workdir)
    service._wait_http(url, {"serve": proc})
    return url, database_url, secret, proc


def one_round(agents: bool, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bourse-agents-{'on' if agents else 'off'}-"))
    load_before = meta.load_average()
    url, database_url, secret, proc = _serve(agents, workdir)
    try:
        time.sleep(args.warmup)
        rate = None if args.rate == "max" else float(args.rate)
        opts = service.ServiceOptions(
            url=url, database_url=database_url, secret_key=secret, accounts=args.accounts,
            http=args.http, connections=args.connections, rates=(rate,),
            duration_s=None if rate is None else args.n / rate,
            flow=FlowParams(n=args.n, seed=args.seed, symbols=tuple(args.symbols.split(","))),
            out_dir=out_dir, progress=False, plot=False, max_seconds=args.max_seconds,
        )  # fmt: skip
        result = service.run_service(opts)[0]
        if proc.poll() is not None:
            raise RuntimeError(f"bourse serve exited during the round (logs in {workdir})")
    finally:
        service._stop_process(proc)
    s, lat = result["summary"], result["latency_ms"]
    return {
        "agents": agents,
        "settled_orders_per_s": s["settled_orders_per_s"],
        "acked_orders_per_s": s["acked_orders_per_s"],
        "post_settled_p50_ms": lat["post_settled"]["p50"],
        "post_settled_p99_ms": lat["post_settled"]["p99"],
        "post_settled_n": lat["post_settled"].get("n"),
        "unsettled_at_end": s["unsettled_at_end"],
        "load_before": load_before,
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.agents", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds per arm (alternating off, on, ...)")
    p.add_argument("--n", type=int, default=1000, help="messages per round (the bench's default flow)")
    p.add_argument("--rate", default="max", help="offered msgs/s, or 'max' (closed loop: capacity)")
    p.add_argument("--accounts", type=int, default=100)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--http", default="aiohttp", choices=("httpx", "aiohttp"))
    p.add_argument("--symbols", default="AAPL")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--warmup", type=float, default=5.0, help="seconds between start and load")
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--out", default=str(service.OUT_DIR))
    args = p.parse_args(argv)
    service.quiet_client_logs()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    rounds: list[dict[str, Any]] = []
    for i in range(2 * args.rounds):
        agents = i % 2 == 1
        r = one_round(agents, args, out_dir)
        rounds.append(r)
        print(
            f"round {i + 1}: agents {'on ' if agents else 'off'} settled {r['settled_orders_per_s']}/s "
            f"p50 {r['post_settled_p50_ms']} ms p99 {r['post_settled_p99_ms']} ms load {r['load_before']}",
            file=sys.stderr,
        )
    doc = {
        "benchmark": "agents",
        "command": "python -m benchmarks.agents " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": started.isoformat(),
        "machine": meta.machine(),
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "rounds": rounds,
        "summary": summarize(rounds),
    }
    path = out_dir / f"agents-{started:%Y%m%d%H%M%S}.json"
    path.write_text(json.dumps(doc, indent=2, default=str))
    print(json.dumps(doc["summary"], indent=2))
    print(f"result: {path}", file=sys.stderr)
    return 1 if any(r["unsettled_at_end"] for r in rounds) else 0


if __name__ == "__main__":
    raise SystemExit(main())
