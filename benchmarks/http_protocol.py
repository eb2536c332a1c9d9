"""`python -m benchmarks.http_protocol`: uvicorn's httptools protocol against api.http_protocol's, alone.

One uvicorn process (uvloop, no access log) serves a fixed 201 answer the size of a placed order's JSON
from a bare ASGI app, once with `http="httptools"` (a response's head and body in two writes) and once
with `api.http_protocol.HTTP_PROTOCOL` (one write); wrk loads each for `--seconds`, alternated for
`--rounds` rounds. Reported per arm: requests/s and the server's CPU per request (user and system, from
/proc), medians and min-max. It isolates the per-response cost the protocol changes; the service bench
measures the whole path, where this is a few microseconds of ~0.4 ms per message.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from benchmarks import meta, report
from benchmarks.depth_http import run_wrk

ARMS = {"httptools": "httptools", "one-write": "api.http_protocol:OneWriteHttpToolsProtocol"}
_BODY = b'{"id":5554,"client_order_id":"' + b"c" * 30 + b'","symbol":"AAPL","pad":"' + b"x" * 330 + b'"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


async def fixed_answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 201, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_ticks(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def run_arm(protocol: str, seconds: float, connections: int) -> dict[str, Any]:
    port = _free_port()
    code = (
        f"import uvicorn; uvicorn.run('benchmarks.http_protocol:fixed_answer', port={port},"
        f" log_level='warning', access_log=False, loop='uvloop', http={protocol!r})"
    )
    server = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        user0, sys0 = _cpu_ticks(server.pid)
        got = run_wrk(f"http://127.0.0.1:{port}/", seconds, 1, connections)
        user1, sys1 = _cpu_ticks(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    requests = max(got["rps"] * int(seconds), 1.0)
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    return {
        "rps": got["rps"],
        "server_user_us_per_request": round(1000 * (user1 - user0) * tick_ms / requests, 2),
        "server_system_us_per_request": round(1000 * (sys1 - sys0) * tick_ms / requests, 2),
        "errors": got["errors"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.http_protocol", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    a = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is missing: this benchmark needs it (apt-get install -y wrk). Nothing was measured.")
        return 2
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ARMS}
    for _ in range(a.rounds):
        for name, protocol in ARMS.items():
            runs[name].append(run_arm(protocol, a.seconds, a.connections))
    print(f"machine: {meta.machine()}  date: {meta.now_iso()}")
    report.print_arms(runs, ("rps", "server_user_us_per_request", "server_system_us_per_request"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
