"""`bourse bench depth` (wrk against the depth endpoint and a bare FastAPI app) and `bourse bench fanout`
(Socket.IO clients in separate processes) at a tiny scale, each against a launched PostgreSQL + Redis
deployment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import depth_http, fanout, meta

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8000/bare
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  300.00us   5.00ms   90.00%
    Req/Sec     6.10k   200.00     6.40k    80.00%
  Latency Distribution
     50%    1.10ms
     75%  850.00us
     90%    1.50ms
     99%    2.10s
  6100 requests in 1.00s, 1.00MB read
Requests/sec:   6093.21
Transfer/sec:      1.00MB
"""


def test_wrk_output_is_parsed(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class Done:
        stdout = WRK_OUTPUT

    monkeypatch.setattr(depth_http.subprocess, "run", lambda *a, **k: Done())
    got = depth_http.run_wrk("http://x", 1, 1, 8)
    assert got["rps"] == 6093.21
    assert got["latency_ms"] == {"p50": 1.1, "p75": 0.85, "p90": 1.5, "p99": 2100.0}


def test_depth_bench_compares_with_bare_fastapi(tmp_path: Path) -> None:
    assert (
        depth_http.main(["--seconds", "1", "--rounds", "1", "--connections", "8", "--out", str(tmp_path)])
        == 0
    )
    [path] = tmp_path.glob("depth-*.json")
    result = json.loads(path.read_text())
    assert meta.missing_metadata(result) == []
    s = result["summary"]
    assert s["depth_rps_median"] > 0 and s["bare_fastapi_rps_median"] > 0 and s["ratio_of_medians"] > 0
    assert result["meta"]["flow"]["resting_orders_placed"] == 40


@pytest.mark.parametrize(
    "extra",
    [[], ["--client", "socketio", "--api-procs", "2"]],
    ids=["raw-client-1-api", "python-socketio-client-2-apis"],
)
def test_fanout_bench_delivers_every_trade_to_every_client(tmp_path: Path, extra: list[str]) -> None:
    code = fanout.main(
        [
            "--clients",
            "12",
            "--procs",
            "2",
            "--trades",
            "5",
            "--interval",
            "0.2",
            "--out",
            str(tmp_path),
            *extra,
        ]
    )
    assert code == 0
    [path] = tmp_path.glob("fanout-*.json")
    result = json.loads(path.read_text())
    assert meta.missing_metadata(result) == []
    s = result["summary"]
    assert s["clients_connected"] == 12 and s["trades_published"] == 5 and s["client_errors"] == 0
    assert s["events_received"] == s["events_expected"] == 60
    assert result["latency_ms"]["settled_to_client_event"]["p99"] >= 0
    # every event is also timed from sending the order that traded, which comes before its publish
    from_order = result["latency_ms"]["order_sent_to_client_event"]
    assert from_order["n"] == 60
    assert from_order["p50"] > result["latency_ms"]["settled_to_client_event"]["p50"]
    settings = result["meta"]["settings"]
    assert settings["client"] == ("socketio" if extra else "raw")
    assert settings["api_procs"] == (2 if extra else 1)
