"""`bourse`: serve (embedded), api and worker (scaled out), migrate, audit, seed-demo."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from schema.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    """Environment (BOURSE_*) and .env, overridden by the flags that were given."""
    overrides = {}
    for name in ("database_url", "redis_url", "host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "no_agents", False):
        overrides["agents"] = False
    return Settings(**overrides)


# No permessage-deflate on the Socket.IO websockets: a room push would be compressed once per client (the
# fan-out writes one shared frame to every socket), and the events are small JSON.
WS_DEFLATE = False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.http_protocol import HTTP_PROTOCOL
    from bourse.compose import build_embedded

    settings = _settings(args)
    if settings.redis_url is not None:
        logging.getLogger("bourse").warning("serve is the embedded mode: ignoring BOURSE_REDIS_URL")
        settings = settings.model_copy(update={"redis_url": None})
    embedded = build_embedded(settings, freeze_heap=True)  # schema.gc_tuning
    print(f"Bourse: http://{settings.host}:{settings.port}/ (docs: /docs, db: {settings.database_url})")
    uvicorn.run(
        embedded.app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        http=HTTP_PROTOCOL,
        ws="websockets",
        ws_per_message_deflate=WS_DEFLATE,
    )
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from api.http_protocol import HTTP_PROTOCOL

    settings = _settings(args)
    if settings.redis_url is None:
        print("bourse api needs BOURSE_REDIS_URL (scaled-out mode); use `bourse serve` for one process")
        return 2
    # Flags become env so each uvicorn worker process builds the same Settings.
    for name in ("database_url", "redis_url"):
        os.environ[f"BOURSE_{name.upper()}"] = str(getattr(settings, name))
    uvicorn.run(
        "bourse.compose:scaleout_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level=args.log_level,
        http=HTTP_PROTOCOL,
        # Above info the access lines are dropped anyway, but uvicorn would still format each one's
        # client address and quoted path per request.
        access_log=args.log_level in ("trace", "debug", "info"),
        ws_per_message_deflate=WS_DEFLATE,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.__main__ import main as worker_main

    return int(worker_main(list(args.worker_args)) or 0)


def cmd_jobs(args: argparse.Namespace) -> int:
    """The rq worker for the jobs off the hot path (expiry, end of day), with its planner."""
    import redis

    from schema.calendar import calendar_from_settings
    from schema.db import make_engine, make_session_factory
    from schema.transport import RedisStreamBus
    from workers.jobs import JobContext, run_rq, use_context

    settings = _settings(args)
    if settings.redis_url is None:
        print("bourse jobs needs BOURSE_REDIS_URL (embedded `bourse serve` runs its jobs in-process)")
        return 2
    client = redis.Redis.from_url(settings.redis_url)
    if args.action == "status":
        import json

        from workers.jobs import jobs_status

        print(json.dumps(jobs_status(client), indent=2))
        return 0
    ctx = JobContext(
        make_session_factory(make_engine(settings.database_url, pool_size=2)),
        RedisStreamBus(client),
        calendar_from_settings(settings),
    )
    use_context(ctx)
    run_rq(client, ctx)
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    from workers.agents.cli import main as agents_main

    return int(agents_main(list(args.agents_args)) or 0)


def cmd_migrate(args: argparse.Namespace) -> int:
    from schema.migrate import upgrade

    settings = _settings(args)
    upgrade(settings.database_url)
    print(f"database at the newest schema: {settings.database_url}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from bourse.compose import prepare_database

    prepare_database(_settings(args), seed=True)
    print("demo market ready")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from schema.audit import audit_database, format_report

    violations = audit_database(_settings(args).database_url)
    print(format_report(violations))
    return 1 if violations else 0


# `bourse bench NAME ...`: module whose main(argv) runs it (benchmarks/README.md says what each measures).
BENCHES = {
    "engine": "benchmarks.engine",
    "replay": "benchmarks.report:replay_main",
    "service": "benchmarks.service",
    "compare": "benchmarks.compare",
    "report": "benchmarks.report",
    "depth": "benchmarks.depth_http",
    "fanout": "benchmarks.fanout",
}


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    argv = list(args.bench_args)
    if not argv or argv[0] not in BENCHES:
        print("usage: bourse bench {" + ",".join(BENCHES) + "} [options]  (each takes --help)")
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    module, _, func = BENCHES[argv[0]].partition(":")
    return int(getattr(importlib.import_module(module), func or "main")(argv[1:]) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bourse", description="Bourse, a practice stock exchange.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--database-url", dest="database_url", help="SQLAlchemy URL (env BOURSE_DATABASE_URL)")
        p.add_argument("--redis-url", dest="redis_url", help="Redis URL (env BOURSE_REDIS_URL)")

    def server(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="bind address (env BOURSE_HOST, default 127.0.0.1)")
        p.add_argument("--port", type=int, help="port (env BOURSE_PORT, default 8000)")
        p.add_argument("--log-level", default="info")

    p = sub.add_parser("serve", help="run everything in one process (SQLite, in-process queues, demo market)")
    common(p)
    server(p)
    p.add_argument("--no-agents", action="store_true", help="no demo market makers and noise traders")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("api", help="run a scaled-out API process (PostgreSQL + Redis)")
    common(p)
    server(p)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.set_defaults(func=cmd_api)

    p = sub.add_parser(
        "worker", help="run matchers: --symbols AAPL,MSFT | --all | --shard I/N", add_help=False
    )
    p.add_argument("worker_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("jobs", help="run the rq worker for expiry and end-of-day jobs (scaled out)")
    common(p)
    p.add_argument("action", nargs="?", choices=["run", "status"], default="run",
                   help="run the worker (default) or list scheduled and failed jobs")  # fmt: skip
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser(
        "agents", help="run agents: --config FILE | --replay FILE --symbol S --speed 10", add_help=False
    )
    p.add_argument("agents_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_agents)

    p = sub.add_parser("migrate", help="bring the database to the newest schema")
    common(p)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("seed-demo", help="migrate and add the demo instruments")
    common(p)
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("audit", help="check the invariants on a live database; exit 1 on violations")
    common(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("bench", help="benchmarks: engine|replay|service|compare|report|depth|fanout")
    p.add_argument(
        "bench_args", nargs=argparse.REMAINDER, help="NAME [options]: one of " + ", ".join(BENCHES)
    )
    p.set_defaults(func=cmd_bench)
    return parser


# Commands that hand their arguments to another entry point. argparse's REMAINDER refuses a first
# argument that looks like a flag (`bourse worker --all`), so these are split off before parsing.
_PASSTHROUGH = {"worker": "worker_args", "agents": "agents_args", "bench": "bench_args"}


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in _PASSTHROUGH:
        args = parser.parse_args(argv[:1])
        setattr(args, _PASSTHROUGH[argv[0]], argv[1:])
    else:
        args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
