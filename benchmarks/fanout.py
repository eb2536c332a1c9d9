"""`bourse bench fanout`: with 1,000 Socket.IO clients connected, how long from a fill being settled to the
event reaching each client (target: p99 < 50 ms).

It launches a Bourse (PostgreSQL + Redis, `--api-procs` `bourse api` processes, one matcher), starts
`--procs` client processes that each connect `--clients / --procs` clients (websocket transport; the kernel
spreads the connections over the API processes, which fan out through Redis) and join the symbol's market
room, then a probe pair of accounts trades every `--interval` seconds (a resting sell, then a crossing buy:
one trade each time, and five market-room events: depth and ticker for the sell, trade, depth and ticker
for the buy).

"Settled" is the moment the matcher publishes the trade on Redis, which it does only after the
settlement transaction commits: a plain Redis subscriber in this process timestamps each `trade` message
on the Socket.IO channel. Each client timestamps the `trade` event it receives. Both use CLOCK_MONOTONIC,
which is system-wide on Linux, so the difference is the fan-out time through Redis pub/sub, the API's
Socket.IO server and the websocket, plus the client's own event loop. Every client records every trade;
`events_received` must equal trades x clients.

Clients (`--client`): `raw` (default) is a minimal client on uvloop (RawSocketIOClient below): websocket
handshake and framing, Engine.IO open/ping, Socket.IO connect and subscribe with its ack, and a JSON decode
of every event frame, timestamped when the bytes are read. `socketio` is python-socketio's AsyncClient
(aiohttp), which costs several times the CPU per event; on this 2-core machine its 4 processes took CPU
from the server being measured. Either way the clients share the 2 cores with the server, so the figure
is an upper bound for clients on other machines.

Left out: the time from POST to commit (see `bourse bench service`), user-room events (one client each),
and clients on other machines.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import meta, report, service
from schema.push_wire import batch_lines


# ------------------------------------------------------------------------------------- light client
class RawSocketIOClient(asyncio.Protocol):
    """One Socket.IO client over a plain websocket, speaking just enough of the protocols (RFC 6455,
    Engine.IO 4, Socket.IO 5) to connect, join the market room and time every event.

    It does what a real client must per frame: unframe it, answer pings, decode the Socket.IO packet and
    the event's JSON. What it skips is the python-socketio client's machinery (a task per event, aiohttp's
    reader, handler dispatch), which on this 2-core machine took CPU from the server being measured."""

    def __init__(self, host: str, port: int, symbol: str, received: list[tuple[int, float]]) -> None:
        self.host, self.port, self.symbol, self.received = host, port, symbol, received
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.handshaken = False
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.events = 0

    # -- websocket
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is no asyncio.Transport subclass
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
             f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        )  # fmt: skip

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError("websocket closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    def fail(self, exc: Exception) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def send_text(self, text: str) -> None:
        self.send_frame(0x1, text.encode())

    def send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode]) + (
            bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        )
        mask = os.urandom(4)  # client frames are masked (RFC 6455 5.3)
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        body = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big") if n else b""
        assert self.transport is not None
        self.transport.write(head + mask + body)

    def data_received(self, data: bytes) -> None:
        t = time.monotonic()  # every frame completed by this read arrived now
        buf = self.buf
        buf += data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.fail(ConnectionError(bytes(buf[: buf.find(b"\r\n")]).decode(errors="replace")))
                return
            del buf[: end + 4]
            self.handshaken = True
        while len(buf) >= 2:
            opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, at = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + n:
                return
            payload = bytes(buf[at : at + n])
            del buf[: at + n]
            if opcode == 0x1:
                self.on_message(payload.decode(), t)
            elif opcode == 0x9:  # websocket ping
                self.send_frame(0xA, payload)
            elif opcode == 0x8:
                assert self.transport is not None
                self.transport.close()

    # -- Engine.IO / Socket.IO
    def on_message(self, text: str, t: float) -> None:
        kind = text[:2]
        if kind == "42":  # event
            name, data = json.loads(text[2:])
            self.events += 1
            if name == "trade":
                self.received.append((int(data["id"]), t))
        elif text[0] == "2":  # Engine.IO ping
            self.send_text("3")
        elif text[0] == "0":  # Engine.IO open: connect to the default namespace
            self.send_text("40")
        elif kind == "40":  # namespace connected: join the room, asking for an ack
            self.send_text("421" + json.dumps(["subscribe", {"symbol": self.symbol}]))
        elif kind == "43":  # the subscribe ack
            ack = json.loads(text[3:])
            if not self.subscribed.done():
                if ack and ack[0].get("ok"):
                    self.subscribed.set_result(None)
                else:
                    self.fail(ConnectionError(f"subscribe refused: {ack}"))
        elif kind == "44":
            self.fail(ConnectionError(f"connect refused: {text}"))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.send_frame(0x8, b"")
            self.transport.close()


async def _child_raw(url: str, symbol: str, n: int, ready: Path, stop: Path, out: Path) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    received: list[tuple[int, float]] = []
    clients: list[RawSocketIOClient] = []
    errors = 0
    sem = asyncio.Semaphore(25)

    async def one() -> None:
        nonlocal errors
        async with sem:
            try:
                _, client = await loop.create_connection(
                    lambda: RawSocketIOClient(host, port, symbol, received), host, port
                )
                await asyncio.wait_for(client.subscribed, 60)
            except Exception:  # noqa: BLE001 - counted
                errors += 1
                return
        clients.append(client)

    await asyncio.gather(*(one() for _ in range(n)))
    await _connected_until_stopped(ready, stop, len(clients), errors)
    lost = sum(c.closed.done() for c in clients)  # a client the server dropped mid-run
    out.write_text(json.dumps({"connected": len(clients), "errors": errors + lost, "received": received}))
    for c in clients:
        c.close()


async def _connected_until_stopped(ready: Path, stop: Path, connected: int, errors: int) -> None:
    """Tell the parent how many clients are connected, then hold them until it creates `stop` (1 h max)."""
    ready.write_text(json.dumps({"connected": connected, "errors": errors}))
    deadline = time.monotonic() + 3600
    while not stop.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


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
    await _connected_until_stopped(ready, stop, len(clients), errors)
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
            raw = msg["data"]
            # A matcher sends a settled batch's pushes as one message of lines (schema.push_wire).
            lines = batch_lines(raw) if isinstance(raw, bytes) else None
            for line in [raw] if lines is None else lines:
                self._stamp(line, t)

    def _stamp(self, line: Any, t: float) -> None:
        try:
            data = json.loads(line)
        except (ValueError, TypeError):
            return
        if not isinstance(data, dict) or data.get("event") != "trade":
            return
        payload = data.get("data")
        if isinstance(payload, list | tuple):  # python-socketio packs the emit's arguments in a list
            payload = payload[0] if payload else None
        if isinstance(payload, dict) and "id" in payload:
            self.at.setdefault(int(payload["id"]), t)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._pubsub.close()


async def _probe(
    dep: service.Deployment, symbol: str, trades: int, interval: float, sent: list[float]
) -> int:
    """Place `trades` crossing pairs, one pair per interval; `sent` gets the monotonic time each pair's
    second order (the one that trades) was sent, for those answered 201, in order."""
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
                at = time.monotonic()
                status, _ = await pool.request(0, "POST", f"{service.API}/orders", acct.token, body)
                ok += status == 201
                if side == "buy" and status == 201:
                    sent.append(at)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        await pool.close()
    return ok // 2


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bourse bench fanout", description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4, help="client processes (default 4)")
    ap.add_argument(
        "--client",
        choices=("raw", "socketio"),
        default="raw",
        help="raw: a minimal websocket Socket.IO client (default); socketio: python-socketio's AsyncClient",
    )
    ap.add_argument(
        "--api-procs", type=int, default=1, help="`bourse api --workers N`: clients spread over them"
    )
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
        args = (url, a.symbol, int(n), base / f"ready-{i}", base / "stop", base / f"out-{i}.json")
        if a.client == "raw":
            import uvloop

            uvloop.run(_child_raw(*args))
        else:
            asyncio.run(_child(*args))
        return 0

    out_dir = Path(a.out)
    stamp = meta.now_iso().replace(":", "")
    work = out_dir / f"fanout-{stamp}-work"
    work.mkdir(parents=True, exist_ok=True)
    dep = service.launch(
        "pg", symbols=[a.symbol], api_procs=a.api_procs, log_dir=out_dir / f"logs-fanout-{stamp}"
    )
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
                        "--client",
                        a.client,
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
        sent: list[float] = []
        trades = asyncio.run(_probe(dep, a.symbol, a.trades, a.interval, sent))
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
    # The probe's pairs trade one at a time, so the n-th trade (by id) is the n-th buy. From sending the
    # order that trades to the client: the span a trader sees. The span from Redis leaves out how soon
    # the matcher published, and a sooner publish can meet the API still answering that order
    # (benchmarks/RESULTS.md).
    sent_at = dict(zip(sorted(published), sent, strict=True)) if len(sent) == len(published) else {}
    from_order: list[float] = []
    client_errors = 0
    for i in range(a.procs):
        got = json.loads((work / f"out-{i}.json").read_text())
        client_errors += got["errors"]
        for tid, t in got["received"]:
            if tid in published:
                lat.append((t - published[tid]) * 1000)
            if tid in sent_at:
                from_order.append((t - sent_at[tid]) * 1000)
    expected = len(published) * connected
    result = {
        "meta": meta.metadata(
            "fanout",
            settings={
                "clients": a.clients,
                "client_procs": a.procs,
                "api_procs": a.api_procs,
                "client": a.client,
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
            "client_errors": client_errors,
            "target_p99_ms": 50.0,
            "load_average_before_probe": " ".join(map(str, load0 or [])),
            "load_average_end": " ".join(map(str, meta.load_average() or [])),
        },
        "latency_ms": {
            "settled_to_client_event": report.summarize(lat),
            "order_sent_to_client_event": report.summarize(from_order),
        },
        "samples_ms": {"settled→client trade event": [round(x, 3) for x in lat]},
    }
    path = report.write_json(result, out_dir / f"fanout-{stamp}.json")
    report.print_table(result)
    png = report.plot(result, path.with_suffix(".png"))
    print(f"result: {path}" + (f"\nplot:   {png}" if png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
