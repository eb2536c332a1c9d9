"""`python -m benchmarks.client_cpu`: the service bench's own CPU per HTTP request, by client kind.

The service bench shares the machine with the server it loads, so every millisecond of CPU its HTTP client
spends is taken from the API, the matcher or PostgreSQL. This measures that cost alone: a stub of the
order endpoints (FastAPI, one uvicorn process, no database) answers, and this process sends `--n`
requests per client kind in the bench's mix (65% POST /api/v1/orders with an order body, 35% DELETE
/api/v1/orders/{id}, Bearer tokens of 100 accounts) over `--connections` connections, reading its own
`time.process_time()` (user + system, this process only) around them. By default the requests go open
loop at `--rate` 2,000/s, as the bench sends them: kind `raw` from a timer callback per request with the
answer through a callback (RawHttpPool.send), the library clients (and `raw-await`, the raw client
awaited) from one task per request; `--rate max` is closed loop (`--workers` senders, each waiting for
its response: more requests per event-loop wake-up, so cheaper per request). Kind `none` runs the task
scheduling without HTTP: the floor the task-based clients add to. `--loop`: uvloop (the service
bench's default) or asyncio's own loop. Kinds alternate within each round (the order rotates each
round), `--rounds` rounds; reported: the median CPU ms per request, its min-max over rounds, requests/s,
and the ratio to aiohttp. httpx runs `--n-httpx` requests (it costs several times more; the figure is
per request either way).

Left out: the Socket.IO listeners and the bench's per-message bookkeeping, which every kind pays alike.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import meta, report, service

API = service.API
TOKENS = [f"eyJhbGciOiJIUzI1NiJ9.bench-token-{i:04d}.{'x' * 96}" for i in range(100)]  # JWT-sized


def stub_app() -> Any:
    """uvicorn factory: the order endpoints' shape (status codes, small JSON bodies), no database."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()
    ids = iter(range(1, 1 << 62))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True}

    @app.get(f"{API}/account")
    async def account() -> dict[str, Any]:
        return {"id": 1, "cash": "1000000.00", "buying_power": "1000000.00"}

    @app.post(f"{API}/orders")
    async def place(body: dict[str, Any]) -> JSONResponse:
        keys = ("symbol", "side", "type", "qty", "limit_price", "client_order_id")
        order = {"id": next(ids), "status": "new", "filled_qty": "0", **{k: body.get(k) for k in keys}}
        return JSONResponse(order, status_code=201)

    @app.delete(API + "/orders/{order_id}")
    async def cancel(order_id: int) -> JSONResponse:
        return JSONResponse({"id": order_id, "status": "pending_cancel"}, status_code=202)

    return app


def _order(i: int) -> dict[str, Any]:
    return {"symbol": "AAPL", "side": "buy" if i % 2 else "sell", "qty": str(1 + i % 500),
            "client_order_id": f"cpu-{i}", "type": "limit", "time_in_force": "gtc",
            "limit_price": f"{150 + i % 7}.{i % 100:02d}"}  # fmt: skip


class _NullPool:
    """`--kinds none`: the same scheduling and bookkeeping without HTTP, the floor every client adds to."""

    async def request(self, i: int, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        await asyncio.sleep(0)
        return (201 if method == "POST" else 202), {"id": i}

    async def close(self) -> None:
        return None


# `raw-await`: the raw client awaited from one task per request, as the service bench sent until it took
# RawHttpPool.send's callbacks (kind `raw`); kept to measure what that change saved.
RAW_AWAIT = "raw-await"


def _bad(i: int, status: int, body: Any) -> bool:
    if i % 20 < 13:
        return status != 201 or not isinstance(body, dict) or "id" not in body
    return status != 202 or not isinstance(body, dict)


def _call(i: int) -> tuple[str, str, str, Any]:
    """Request i of the bench's mix: (method, path, token, body)."""
    token = TOKENS[i % len(TOKENS)]
    if i % 20 < 13:
        return "POST", f"{API}/orders", token, _order(i)
    return "DELETE", f"{API}/orders/{i}", token, None


async def _timed_callbacks(pool: service.RawHttpPool, n: int, rate: float) -> int:
    """Open loop as the service bench sends with `--http raw`: a timer callback per request sends it, and
    the answer comes back through a callback (LoadRun._timed_sends). Returns the bad answers."""
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    bad, left, t0 = 0, n, loop.time()

    def answered(i: int, answer: Any) -> None:
        nonlocal bad, left
        bad += isinstance(answer, BaseException) or _bad(i, *answer)
        left -= 1
        if left == 0:
            finished.set_result(None)

    def fire(i: int) -> None:
        pool.send(*_call(i), functools.partial(answered, i))
        if i + 1 < n:
            loop.call_at(t0 + (i + 1) / rate, fire, i + 1)

    loop.call_at(t0, fire, 0)
    await finished
    return bad


async def _measure(
    url: str, kind: str, n: int, rate: float | None, workers: int, connections: int, clients: int
) -> dict[str, Any]:
    if kind == "none":
        pool: Any = _NullPool()
    else:
        pool = service.http_pool(url, clients, connections, "raw" if kind == RAW_AWAIT else kind)
    bad = 0

    async def one(i: int) -> None:
        nonlocal bad
        status, body = await pool.request(i, *_call(i))
        bad += _bad(i, status, body)

    try:
        # warm-up, not measured: open the connections (imports and first-use costs land here too)
        await asyncio.gather(
            *(pool.request(i, "GET", f"{API}/account", TOKENS[0]) for i in range(connections))
        )
        perf = time.perf_counter
        cpu0, wall0 = time.process_time(), perf()
        if rate is None:  # closed loop: `workers` senders, each waits for its response
            todo = iter(range(n))

            async def worker() -> None:
                for i in todo:
                    await one(i)

            await asyncio.gather(*(worker() for _ in range(workers)))
        elif kind == "raw":
            bad = await _timed_callbacks(pool, n, rate)
        else:  # open loop as the bench sends with the library clients: one task per request at its time
            tasks: set[asyncio.Task[None]] = set()
            for i in range(n):
                delay = wall0 + i / rate - perf()
                if delay > 0.0005:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one(i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
        cpu, wall = time.process_time() - cpu0, perf() - wall0
    finally:
        await pool.close()
    return {"kind": kind, "n": n, "cpu_s": cpu, "wall_s": wall, "cpu_ms_per_request": 1000 * cpu / n,
            "requests_per_s": n / wall, "bad_responses": bad}  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    kinds = [k for k in args.kinds.split(",") if k]
    rate = None if args.rate in ("max", "0") else float(args.rate)
    port = service.free_port()
    url = f"http://127.0.0.1:{port}"
    log_dir = Path(args.out)
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "uvicorn", "benchmarks.client_cpu:stub_app", "--factory", "--host",
            "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    server = service._spawn("client-cpu-stub", argv, dict(os.environ), log_dir)
    runs: list[dict[str, Any]] = []
    loads: list[list[float] | None] = []
    try:
        service._wait_http(url, {"stub": server}, timeout=60)
        for r in range(args.rounds):
            order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
            loads.append(meta.load_average())
            for kind in order:
                n = args.n_httpx if kind == "httpx" else args.n
                coro = _measure(url, kind, n, rate, args.workers, args.connections, args.clients)
                got = service.run_loop(coro, args.loop)
                got["round"] = r
                runs.append(got)
                line = f"round {r} {kind:8s} {got['cpu_ms_per_request']:.4f} ms CPU/request"
                print(
                    f"{line}, {got['requests_per_s']:,.0f} req/s, bad {got['bad_responses']}", file=sys.stderr
                )
    finally:
        service._stop_process(server)
    summary: dict[str, Any] = {}
    for kind in kinds:
        mine = [x for x in runs if x["kind"] == kind]
        per = [x["cpu_ms_per_request"] for x in mine]
        summary[kind] = {
            "cpu_ms_per_request_median": round(statistics.median(per), 4),
            "cpu_ms_per_request_min": round(min(per), 4),
            "cpu_ms_per_request_max": round(max(per), 4),
            "requests_per_s_median": round(statistics.median(x["requests_per_s"] for x in mine)),
            "bad_responses": sum(x["bad_responses"] for x in mine),
        }
    if "aiohttp" in summary:
        base = summary["aiohttp"]["cpu_ms_per_request_median"]
        for kind in kinds:
            summary[kind]["ratio_to_aiohttp"] = round(summary[kind]["cpu_ms_per_request_median"] / base, 3)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    return {"meta": meta.metadata("client_cpu", settings=settings), "summary": summary, "runs": runs,
            "load_average_per_round": loads}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.client_cpu", description=__doc__.split("\n")[0])
    p.add_argument(
        "--kinds",
        default=",".join(("none", *service.HTTP_KINDS)),
        help=f"default none,raw,aiohttp,httpx; {RAW_AWAIT}: the raw client awaited from a task per request",
    )
    p.add_argument("--n", type=int, default=3000, help="requests per kind and round (default 3000)")
    p.add_argument("--n-httpx", type=int, default=600, help="requests per round for httpx (default 600)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", default="2000", help="open loop at this many requests/s (default 2000), or max")
    p.add_argument("--workers", type=int, default=64, help="--rate max: concurrent senders (default 64)")
    p.add_argument("--connections", type=int, default=128, help="default 128, the service bench's")
    p.add_argument(
        "--clients", type=int, default=8, help="library client objects (aiohttp/httpx) as in the bench"
    )
    p.add_argument(
        "--loop", choices=service.LOOPS, default="uvloop", help="event loop (default: the bench's)"
    )
    p.add_argument("--out", default=str(service.OUT_DIR))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    service.quiet_client_logs()
    result = run(args)
    print(f"{'kind':8s} {'CPU ms/request (median, min-max)':34s} {'req/s':>7s} {'x aiohttp':>9s}")
    for kind, s in result["summary"].items():
        lo, hi = s["cpu_ms_per_request_min"], s["cpu_ms_per_request_max"]
        spread = f"{s['cpu_ms_per_request_median']:.4f} ({lo:.4f}-{hi:.4f})"
        print(
            f"{kind:8s} {spread:34s} {s['requests_per_s_median']:>7,} {s.get('ratio_to_aiohttp', '-')!s:>9s}"
        )
    path = report.write_json(result, Path(args.out) / f"client-cpu-{meta.now_iso().replace(':', '')}.json")
    print(f"result: {path}")
    bad = sum(s["bad_responses"] for s in result["summary"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
