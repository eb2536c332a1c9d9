"""`bourse bench depth`: GET /api/v1/markets/{symbol}/depth?levels=20 against a bare FastAPI endpoint, with
wrk, in the same run.

It launches a Bourse (PostgreSQL + Redis with one `bourse api` process, or the embedded `bourse serve`),
fills the symbol's book with resting orders over HTTP (so the snapshot has 20 levels a side), and starts
a bare FastAPI app (one uvicorn process, a GET that returns a small constant dict: FastAPI's own floor on
this machine). wrk then loads the two alternately, A B A B ..., for `--rounds` rounds of `--seconds` each,
with the same threads and connections, so a change of machine load hits both alike. The figure is the
ratio of the median requests/s (target: depth >= 0.8 x bare).

Left out: TLS, a proxy, HTTP/2, and Socket.IO traffic at the same time. wrk runs on the same 2 cores as
the server it loads, as does everything else on the machine: read the ratio, not the absolute rates.
If wrk is missing the bench says so and exits 2 (`apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import meta, report, service

BARE_BODY = {"symbol": "AAPL", "seq": 0, "ok": True}


def bare_app() -> Any:
    """uvicorn factory: the bare FastAPI baseline (no middleware, no dependencies, no database)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, Any]:
        return BARE_BODY

    return app


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_LAT = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_ERR = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)|Socket errors: (.*)")


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, seconds: float, threads: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--latency", url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    rps = _RPS.search(out)
    lat = {f"p{p}": _ms(v, u) for p, v, u in _LAT.findall(out)}
    errors = [m.group(0) for m in _ERR.finditer(out)]
    return {"rps": float(rps.group(1)) if rps else 0.0, "latency_ms": lat, "errors": errors}


async def _fill_book(dep: service.Deployment, symbol: str, levels: int) -> int:
    """Resting buys and sells at `levels` prices a side around the reference (two accounts, over HTTP)."""
    assert dep.database_url is not None and dep.secret_key is not None
    rows = await asyncio.to_thread(service.seed_accounts, dep.database_url, "depth", 2, [symbol])
    buyer, seller = service.mint_tokens(rows, dep.secret_key)
    ref, _lo, _hi = (await asyncio.to_thread(service.reference_prices, dep.database_url, [symbol]))[symbol]
    pool = service.HttpPool(dep.url, 1, 8)
    try:
        jobs = []
        for i in range(1, levels + 1):
            for acct, side, price in ((buyer, "buy", ref - i), (seller, "sell", ref + i)):
                body = {"symbol": symbol, "side": side, "type": "limit", "time_in_force": "gtc", "qty": "10",
                        "limit_price": f"{price // 100}.{price % 100:02d}"}  # fmt: skip
                jobs.append(pool.request(0, "POST", f"{service.API}/orders", acct.token, body))
        statuses = [s for s, _ in await asyncio.gather(*jobs)]
    finally:
        await pool.close()
    return sum(1 for s in statuses if s == 201)


def _wait_depth(url: str, symbol: str, levels: int, timeout: float = 60.0) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        doc = httpx.get(f"{url}/api/v1/markets/{symbol}/depth?levels={levels}", timeout=5).json()
        if len(doc.get("bids", [])) >= levels and len(doc.get("asks", [])) >= levels:
            return doc
        time.sleep(0.2)
    raise TimeoutError(f"depth never reached {levels} levels: {doc}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bourse bench depth", description=__doc__.split("\n")[0])
    ap.add_argument("--launch", choices=("pg", "embedded"), default="pg")
    ap.add_argument("--symbol", default="AAPL")
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0, help="per wrk run (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="A/B rounds (default 3)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--out", default=str(service.OUT_DIR))
    a = ap.parse_args(argv)
    service.quiet_client_logs()
    if shutil.which("wrk") is None:
        print("wrk is missing: this benchmark needs it (apt-get install -y wrk). Nothing was measured.")
        return 2
    out_dir = Path(a.out)
    dep = service.launch(a.launch, symbols=[a.symbol], log_dir=out_dir / f"logs-depth-{int(time.time())}")
    bare: subprocess.Popen[bytes] | None = None
    try:
        placed = asyncio.run(_fill_book(dep, a.symbol, a.levels))
        doc = _wait_depth(dep.url, a.symbol, a.levels)
        port = service.free_port()
        assert dep.log_dir is not None
        bare = service._spawn(
            "bare-fastapi",
            [sys.executable, "-m", "uvicorn", "benchmarks.depth_http:bare_app", "--factory", "--host",
             "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
            dict(os.environ), dep.log_dir,
        )  # fmt: skip
        bare_url = f"http://127.0.0.1:{port}"
        _wait_bare(bare_url, bare)
        depth_url = f"{dep.url}/api/v1/markets/{a.symbol}/depth?levels={a.levels}"
        runs: dict[str, list[dict[str, Any]]] = {"depth": [], "bare": []}
        loads: list[list[float] | None] = []
        for _ in range(a.rounds):
            for name, url in (("depth", depth_url), ("bare", f"{bare_url}/bare")):
                runs[name].append(run_wrk(url, a.seconds, a.threads, a.connections))
                loads.append(meta.load_average())
    finally:
        if bare is not None:
            service._stop_process(bare)
        dep.close()
    med = {k: statistics.median(r["rps"] for r in v) for k, v in runs.items()}
    ratios = [d["rps"] / b["rps"] for d, b in zip(runs["depth"], runs["bare"], strict=True) if b["rps"]]
    result = {
        "meta": meta.metadata(
            "depth",
            settings={
                "launch": a.launch,
                "api_procs": 1,
                "symbol": a.symbol,
                "levels": a.levels,
                "wrk": {"threads": a.threads, "connections": a.connections, "seconds": a.seconds},
                "rounds": a.rounds,
            },  # fmt: skip
            flow={"resting_orders_placed": placed, "depth_seq": doc.get("seq")},
        ),
        "summary": {
            "depth_rps_median": round(med["depth"], 1),
            "bare_fastapi_rps_median": round(med["bare"], 1),
            "ratio_of_medians": round(med["depth"] / med["bare"], 3) if med["bare"] else None,
            "ratio_per_round_min": round(min(ratios), 3) if ratios else None,
            "ratio_per_round_max": round(max(ratios), 3) if ratios else None,
            "target_ratio": 0.8,
            "depth_p99_ms_median": statistics.median(r["latency_ms"].get("p99", 0.0) for r in runs["depth"]),
            "bare_p99_ms_median": statistics.median(r["latency_ms"].get("p99", 0.0) for r in runs["bare"]),
            "load_average_end": " ".join(map(str, meta.load_average() or [])),
        },
        "runs": runs,
        "load_average_per_run": loads,
    }
    path = report.write_json(result, out_dir / f"depth-{meta.now_iso().replace(':', '')}.json")
    report.print_table(result)
    print(f"result: {path}")
    return 0


def _wait_bare(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the bare FastAPI app exited")
        try:
            if httpx.get(f"{url}/bare", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("bare FastAPI app did not start")


if __name__ == "__main__":
    raise SystemExit(main())
