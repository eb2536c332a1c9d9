"""`bourse bench service` end to end at a tiny scale: real PostgreSQL and Redis, one `bourse api` process
and one matcher launched as subprocesses; the counts must reconcile with SQL.

The database is the `pg_url` fixture's. Redis is a private redis-server the bench starts (its default for
`--launch pg`), not the shared test db 15: other test sessions on this machine run matchers against db 15
at the same time, and a matcher there can hold the AAPL lease ("leases held elsewhere": nothing settles),
or a fixture can flush the stream mid-run. The private server is just as real and fails, never skips, if
redis-server is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import meta, service
from benchmarks.generator import FlowParams


def _options(tmp_path: Path, **kw: Any) -> service.ServiceOptions:
    base: dict[str, Any] = dict(
        accounts=12, rates=(150.0,), flow=FlowParams(n=240, seed=5), out_dir=tmp_path, progress=False,
        plot=True, drain_seconds=30.0, max_seconds=60.0, clients=2, connections=8,
    )  # fmt: skip
    base.update(kw)
    return service.ServiceOptions(**base)


def _assert_reconciled(result: dict[str, Any]) -> None:
    s, rec = result["summary"], result["reconcile"]
    # orders sent = accepted + rejected (nothing lost in transport)
    assert s["new_orders_sent"] == s["accepted"] + s["rejected"] + s["transport_errors"]
    assert s["transport_errors"] == 0 and s["accepted"] > 0
    assert rec["ok_sent"] and rec["posts_sent"] == s["new_orders_sent"]
    # every accepted order is in SQL, and settled (sequenced) by the matcher
    assert rec["ok_orders_in_sql"], rec
    assert s["unsettled_at_end"] == 0 and s["settled_orders_per_s"] > 0
    # fills heard over Socket.IO = the listened accounts' fills in SQL's trades (all accounts listen here)
    assert rec["sql_trades"] > 0
    assert rec["ok_fills"] and rec["fill_events_heard_so_far"] == rec["sql_fills_of_listened_accounts"], rec
    assert rec["sql_fills_of_listened_accounts"] == 2 * rec["sql_trades"]
    # every listened order produced an order event: POST-settled is measured for all of them
    assert s["listened_orders_without_event"] == 0
    assert result["latency_ms"]["post_settled"]["n"] == s["accepted"]
    assert result["latency_ms"]["post_fill_event"]["n"] > 0
    assert meta.missing_metadata(result) == []
    assert Path(result["path"]).exists() and Path(result["path"]).with_suffix(".png").exists()


def test_service_bench_on_postgres_and_redis_reconciles(pg_url: str, tmp_path: Path) -> None:
    [result] = service.run_service(
        _options(tmp_path, launch="pg", database_url=pg_url, api_procs=1, matchers=1)
    )
    _assert_reconciled(result)
    settings = result["meta"]["settings"]
    assert settings["database"] == "postgresql" and settings["api_procs"] == 1 and settings["matchers"] == 1
    assert result["meta"]["flow"]["p_cancel"] == 0.35
    assert {"api", "matcher-0", "postgres (this database's backends)"} == result["server_cpu_s"].keys()
    assert result["reconcile"]["fill_events_foreign_ignored"] == 0  # its own Redis: no other deployment


def test_service_bench_flat_out_and_two_symbols(pg_url: str, tmp_path: Path) -> None:
    [result] = service.run_service(
        _options(
            tmp_path, launch="pg", database_url=pg_url, rates=(None,),
            flow=FlowParams(n=200, seed=9, symbols=("AAPL", "MSFT")),
        )
    )  # fmt: skip
    _assert_reconciled(result)
    assert result["meta"]["flow"]["stats"]["per_symbol"].keys() == {"AAPL", "MSFT"}


def test_service_bench_on_the_embedded_default(tmp_path: Path) -> None:
    # aiohttp: the open loop's task per message (the raw client's callbacks run in the PostgreSQL test)
    opts = _options(tmp_path, launch="embedded", flow=FlowParams(n=150, seed=2), http="aiohttp")
    [result] = service.run_service(opts)
    _assert_reconciled(result)
    assert result["meta"]["settings"]["database"] == "sqlite"
    assert result["meta"]["settings"]["http"] == "aiohttp"
