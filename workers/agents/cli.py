"""`bourse agents`: run the liquidity agents (or a LOBSTER replay) against a scaled-out deployment.

Agents write to the same PostgreSQL and Redis streams as the API, through schema.intake, so this process
needs BOURSE_DATABASE_URL and BOURSE_REDIS_URL. (`bourse serve` runs the demo agents in its own process.)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from collections.abc import Sequence

log = logging.getLogger("bourse.agents")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bourse agents", description="market makers, noise traders, LOBSTER replay"
    )
    p.add_argument("--config", help="agents TOML (default: the demo set on every instrument)")
    p.add_argument("--replay", help="a LOBSTER message CSV or sample zip: replay it as background liquidity")
    p.add_argument("--symbol", help="the symbol the replay trades (required with --replay)")
    p.add_argument(
        "--speed", type=float, default=10.0, help="replay time scale (10: ten day-seconds a second)"
    )
    p.add_argument("--limit", type=int, help="stop the replay after this many messages")
    p.add_argument("--database-url", dest="database_url")
    p.add_argument("--redis-url", dest="redis_url")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import redis
    from sqlalchemy import select

    from schema.calendar import calendar_from_settings
    from schema.db import make_engine, make_session_factory
    from schema.models import Instrument
    from schema.settings import Settings
    from schema.transport import RedisStreamBus
    from workers.agents.config import demo_config, load_config
    from workers.agents.lobster import LobsterReplay
    from workers.agents.runner import AgentRunner, OrderGateway

    args = build_parser().parse_args(argv)
    overrides = {k: v for k in ("database_url", "redis_url") if (v := getattr(args, k)) is not None}
    settings = Settings(**overrides)
    if settings.redis_url is None:
        print("bourse agents needs BOURSE_REDIS_URL (embedded `bourse serve` runs the demo agents itself)")
        return 2
    sessions = make_session_factory(make_engine(settings.database_url, pool_size=4))
    bus = RedisStreamBus(redis.Redis.from_url(settings.redis_url))
    gateway = OrderGateway(sessions, bus, calendar=calendar_from_settings(settings))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.replay:
        if not args.symbol:
            print("--replay needs --symbol")
            return 2
        counts = LobsterReplay(gateway, args.symbol, args.replay, speed=args.speed).run(stop, args.limit)
        print(f"replay of {args.replay} into {args.symbol}: {counts}")
        return 0
    if args.config:
        config = load_config(args.config)
    else:
        with sessions() as session:
            config = demo_config(list(session.scalars(select(Instrument.symbol).order_by(Instrument.symbol))))
    runner = AgentRunner(config, gateway)
    runner.setup()
    log.info("%d agents running (interval %.2fs)", len(config.agents), config.interval_s)
    with contextlib.suppress(KeyboardInterrupt):
        runner.run(stop)
    print(f"placed {runner.placed}, canceled {runner.canceled}, refused {gateway.rejects}")
    return 0
