"""`bourse bench fanout`: with 1,000 Socket.IO clients connected, how long from a fill being settled to the
event reaching each client (target: p99 < 50 ms).

It launches a Bourse (PostgreSQL + Redis, one `bourse api` process, one matcher), starts `--procs` client
processes that each connect `--clients / --procs` python-socketio clients (websocket transport) and join
the symbol's market room, then a probe pair of accounts trades every `--interval` seconds (a resting sell,
then a crossing buy: one trade each time).

"Settled" is the moment the matcher publishes the trade on Redis, which it does only after the
settlement transaction commits: a plain Redis subscriber in this process timestamps each `trade` message
on the Socket.IO channel. Each client timestamps the `trade` event it receives. Both use CLOCK_MONOTONIC,
which is system-wide on Linux, so the difference is the fan-out time through Redis pub/sub, the API's
Socket.IO server and the websocket, plus the client's own event loop. That last part is real cost on this
machine: the clients run on the same 2 cores as the server, so the figure is an upper bound.

Left out: the time from POST to commit (see `bourse bench service`), user-room events (one client each),
and clients on other machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import meta, report, service


# ------------------------------------------------------------------------------------- client process
async def _child(url: str, symbol: str, n: int, ready: Path, stop: Path, out: Path) -> None:
    import socketio

    received: list[tuple[int, float]] = []
    clients: list[Any] = []
    errors = 0
    sem = asyncio.Semaphore(25)

    async def one() -> None:
        nonlocal errors
        client = socketio.AsyncClient(reconnection=False)

        async def on_trade(data: dict[str, Any]) -> None:
            received.append((int(data["id"]), time.monotonic()))

        client.on("trade", on_trade)
        async with sem:
            try:
                await client.connect(url, transports=["websocket"], wait_timeout=60)
                await client.call("subscribe", {"symbol": symbol}, timeout=60)
            except Exception:  # noqa: BLE001 - counted
                errors += 1
                return
        clients.append(client)

    await asyncio.gather(*(one() for _ in range(n)))
    ready.write_text(json.dumps({"connected": len(clients), "errors": errors}))
    deadline = time.monotonic() + 3600
    while not stop.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    out.write_text(json.dumps({"connected": len(clients), "errors": errors, "received": received}))
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


# ---------------------------------------------------------------------------------------------- parent
class PublishClock:
    """Timestamps every `trade` the matchers publish on the Socket.IO Redis channel."""

    def __init__(self, redis_url: str, channel: str = "socketio") -> None:
        import redis

        self._pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self.at: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._pubsub.get_message(timeout=0.05)
            if msg is None:
                continue
            t = time.monotonic()
            try:
                data = json.loads(msg["data"])
            except (ValueError, TypeError):
                continue
            if data.get("event") != "trade":
                continue
            payload = data.get("data")
            if isinstance(payload, list | tuple):  # python-socketio packs the emit's arguments in a list
                payload = payload[0] if payload else None
            if isinstance(payload, dict) and "id" in payload:
                self.at.setdefault(int(payload["id"]), t)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._pubsub.close()


async def _probe(dep: service.Deployment, symbol: str, trades: int, interval: float) -> int:
    assert dep.database_url is not None and dep.secret_key is not None
    rows = await asyncio.to_thread(service.seed_accounts, dep.database_url, "fanout", 2, [symbol])
    buyer, seller = service.mint_tokens(rows, dep.secret_key)
    ref = (await asyncio.to_thread(service.reference_prices, dep.database_url, [symbol]))[symbol][0]
    price = f"{ref // 100}.{ref % 100:02d}"
    pool = service.HttpPool(dep.url, 1, 4)
    ok = 0
    try:
        for _ in range(trades):  # bounded in count; one trade per interval
            started = time.monotonic()
            for acct, side in ((seller, "sell"), (buyer, "buy")):
                body = {"symbol": symbol, "side": side, "type": "limit", "time_in_force": "gtc", "qty": "1",
                        "limit_price": price}  # fmt: skip
                status, _ = await pool.request(0, "POST", f"{service.API}/orders", acct.token, body)
                ok += status == 201
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        await pool.close()
    return ok // 2


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bourse bench fanout", description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4, help="client processes (default 4)")
    ap.add_argument("--trades", type=int, default=60)
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between probe trades")
    ap.add_argument("--symbol", default="AAPL")
    ap.add_argument("--out", default=str(service.OUT_DIR))
    ap.add_argument("--child", nargs=4, metavar=("URL", "N", "DIR", "INDEX"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    service.quiet_client_logs()
    if a.child:
        url, n, d, i = a.child
        base = Path(d)
        asyncio.run(_child(url, a.symbol, int(n), base / f"ready-{i}", base / "stop", base / f"out-{i}.json"))
        return 0

    out_dir = Path(a.out)
    stamp = meta.now_iso().replace(":", "")
    work = out_dir / f"fanout-{stamp}-work"
    work.mkdir(parents=True, exist_ok=True)
    dep = service.launch("pg", symbols=[a.symbol], log_dir=out_dir / f"logs-fanout-{stamp}")
    children: list[subprocess.Popen[bytes]] = []
    clock: PublishClock | None = None
    try:
        assert dep.redis_url is not None
        per = [a.clients // a.procs + (1 if i < a.clients % a.procs else 0) for i in range(a.procs)]
        t = time.monotonic()
        for i, n in enumerate(per):
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.fanout",
                        "--symbol",
                        a.symbol,
                        "--child",
                        dep.url,
                        str(n),
                        str(work),
                        str(i),
                    ],  # fmt: skip
                    cwd=service.REPO,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 300
        while not all((work / f"ready-{i}").exists() for i in range(a.procs)):
            if time.monotonic() > deadline or any(c.poll() is not None for c in children):
                raise RuntimeError("client processes did not connect")
            time.sleep(0.2)
        connect_s = time.monotonic() - t
        ready = [json.loads((work / f"ready-{i}").read_text()) for i in range(a.procs)]
        connected = sum(r["connected"] for r in ready)
        print(f"{connected:,} clients connected in {connect_s:.1f}s", file=sys.stderr)
        clock = PublishClock(dep.redis_url)
        load0 = meta.load_average()
        trades = asyncio.run(_probe(dep, a.symbol, a.trades, a.interval))
        time.sleep(3.0)  # the last events
        (work / "stop").write_text("stop")
        for c in children:
            c.wait(120)
        published = dict(clock.at)
    finally:
        if clock is not None:
            clock.close()
        for c in children:
            service._stop_process(c)
        dep.close()
    lat: list[float] = []
    for i in range(a.procs):
        got = json.loads((work / f"out-{i}.json").read_text())
        for tid, t in got["received"]:
            if tid in published:
                lat.append((t - published[tid]) * 1000)
    expected = len(published) * connected
    result = {
        "meta": meta.metadata(
            "fanout",
            settings={
                "clients": a.clients,
                "client_procs": a.procs,
                "api_procs": 1,
                "matchers": 1,
                "symbol": a.symbol,
                "transport": "websocket",
            },  # fmt: skip
            flow={"probe_trades": a.trades, "interval_s": a.interval},
        ),
        "summary": {
            "clients_connected": connected,
            "connect_seconds": round(connect_s, 1),
            "trades_published": len(published),
            "probe_trades_placed": trades,
            "events_expected": expected,
            "events_received": len(lat),
            "target_p99_ms": 50.0,
            "load_average_before_probe": " ".join(map(str, load0 or [])),
            "load_average_end": " ".join(map(str, meta.load_average() or [])),
        },
        "latency_ms": {"settled_to_client_event": report.summarize(lat)},
        "samples_ms": {"settled→client trade event": [round(x, 3) for x in lat]},
    }
    path = report.write_json(result, out_dir / f"fanout-{stamp}.json")
    report.print_table(result)
    png = report.plot(result, path.with_suffix(".png"))
    print(f"result: {path}" + (f"\nplot:   {png}" if png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
