"""The agent-overhead bench (`python -m benchmarks.agents --launch pg`) at a tiny scale: real PostgreSQL
(a fresh database per round from the conftest fixture), a private redis-server per round (as
`bourse bench service --launch pg`: the shared test Redis has other sessions' matchers holding leases),
one `bourse api`, one matcher over every demo symbol, and in the "on" round a `bourse agents` process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from benchmarks import agents, meta


def test_agents_bench_on_postgres_counts_only_people_orders(
    make_pg_database: Callable[[], str], tmp_path: Path
) -> None:
    args = agents.build_parser().parse_args(
        ["--launch", "pg", "--rounds", "1", "--n", "300", "--warmup", "1", "--accounts", "12",
         "--connections", "8", "--drain-seconds", "30", "--out", str(tmp_path)]
    )  # fmt: skip
    doc = agents.run(args, database_urls=make_pg_database, command="test")
    off, on = doc["rounds"]
    assert (off["agents"], on["agents"]) == (False, True)
    for r in (off, on):
        # people's orders: every accepted one settled, in SQL under the bench's accounts, reconciled
        assert r["launch"] == "pg" and r["unsettled_at_end"] == 0 and r["reconciled"]
        assert r["settled_orders_per_s"] > 0 and r["post_settled_p50_ms"] is not None
        assert r["post_settled_n"] == r["people_orders_accepted"] == r["sql"]["bench_orders"] > 0
        assert r["sql"]["other_orders_in_window"] == 0
        assert r["load_before"] and r["load_end"]
        assert Path(r["logs"], "api.log").exists() and Path(r["logs"], "matcher-0.log").exists()
    # the agents really traded in the "on" round, beside the bench's orders, and were not counted
    assert off["sql"]["agent_orders_total"] == 0 and off["first_agent_order_after_s"] is None
    assert on["sql"]["agent_orders_in_window"] > 0 and on["sql"]["agent_orders_total"] > 0
    assert on["sql"]["agent_trades_total"] > 0
    assert on["people_orders_accepted"] == on["sql"]["bench_orders"]
    assert "agents" in on["cpu_ms_per_people_order"] and "agents" not in off["cpu_ms_per_people_order"]
    # the agents process was stopped and reaped with the deployment: its summary line is in its log
    assert "placed " in Path(on["logs"], "agents.log").read_text()
    # report shape: medians, ratio and per-pair range per figure; the JSON on disk with its metadata
    s = doc["summary"]["settled_orders_per_s"]
    assert s["off_all"] == [off["settled_orders_per_s"]] and s["on_all"] == [on["settled_orders_per_s"]]
    assert s["ratio_on_off"] == round(s["on_median"] / s["off_median"], 3)
    assert s["pair_ratio_range"] is not None and len(s["pair_ratio_range"]) == 2
    assert {"post_settled_p50_ms", "post_settled_p99_ms"} <= doc["summary"].keys()
    assert doc["ok"]
    saved = json.loads(Path(doc["path"]).read_text())
    assert meta.missing_metadata(saved) == [] and saved["meta"]["settings"]["launch"] == "pg"
    assert saved["meta"]["settings"]["demo_symbols"] == list(agents.DEMO_SYMBOLS)
