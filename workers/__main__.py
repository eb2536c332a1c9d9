"""`python -m workers --symbols AAPL,MSFT` or `--all [--shard I/N]`: one matcher process."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from schema.db import make_engine, make_session_factory
from schema.orderbook_load import all_symbols
from schema.settings import Settings
from workers.runner import run_matchers, shard_symbols


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description="Run a matcher process.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--symbols", help="comma-separated symbols, e.g. AAPL,MSFT")
    which.add_argument("--all", action="store_true", help="every instrument in the database")
    parser.add_argument(
        "--shard", default="0/1", help="I/N: take every N-th symbol starting at I (with --all)"
    )
    parser.add_argument("--worker-id", default=None, help="lease owner id (default host:pid)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    overrides = {k: v for k, v in (("database_url", args.database_url), ("redis_url", args.redis_url)) if v}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.redis_url is None:
        parser.error(
            "a worker process needs Redis (BOURSE_REDIS_URL or --redis-url); embedded mode runs in serve"
        )
    if args.all:
        engine = make_engine(settings.database_url, pool_size=1)
        with make_session_factory(engine)() as session:
            symbols = all_symbols(session)
        engine.dispose()
    else:
        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    index, _, count = args.shard.partition("/")
    symbols = shard_symbols(symbols, int(index), int(count or 1))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_matchers(settings, symbols, stop, worker_id=args.worker_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
