"""Scheduled jobs (not the hot path): order expiry and end of day. rq runs them when Redis is configured;
the embedded default runs the same functions from workers.scheduler's thread.

- `expire_orders(symbol, at_ms)`: publishes engine.commands.Expire(symbol, at_ms) down the symbol's stream,
  so the matcher expires, in stream order, every order whose expire_at <= at; settlement releases holds.
  One job per distinct (symbol, expire_at) of open DAY/GTD orders: DAY orders carry the session close.
- `end_of_day(day)`: records each instrument's close (the session's last trade, else the reference price),
  makes it the next session's reference price (SQL, and SetReference down the stream so the engine's band
  moves), and snapshots every account's equity.
- `open_session(open_ms)`: at a session's open, publishes the orders queued while the market was closed
  (`Admission.QUEUE`: held and inserted, `new` with no seq) down their streams, for every symbol
  (`workers.reconciler.reconcile` with age 0; it publishes nothing while the market is closed).

Idempotent: expiry of nothing publishes nothing; closes and snapshots are insert-if-absent (unique keys) and
a repeated SetReference to the same price changes no book. `plan` lists what must be scheduled from SQL, so
a restarted scheduler finds the same jobs under the same deterministic ids and rq refuses duplicates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from engine.commands import Expire, SetReference
from schema.calendar import (
    MarketCalendar,
    calendar_from_settings,
    last_close_at_or_before,
    session_at,
    session_open_at_or_before,
)
from schema.db import make_engine, make_session_factory
from schema.models import Instrument, InstrumentClose, Order, Trade
from schema.transport import CommandBus
from workers.reconciler import reconcile

log = logging.getLogger(__name__)

QUEUE_NAME = "bourse-jobs"
RETRY_INTERVALS = [1, 5, 30]  # seconds between rq retries
OPEN_STATUSES = ("new", "partially_filled")
EOD_DELAY = timedelta(seconds=1)  # run end of day just after the close, once the expiries are in the stream


def _utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class JobContext:
    session_factory: sessionmaker[Session]
    bus: CommandBus
    calendar: MarketCalendar
    clock: Callable[[], datetime] = _utc


_context: JobContext | None = None
_context_pid = 0


def use_context(context: JobContext | None) -> None:
    """Set by the entry point (embedded scheduler, tests); rq workers build it from Settings on first use."""
    global _context, _context_pid
    _context, _context_pid = context, os.getpid()


def context() -> JobContext:
    global _context, _context_pid
    if _context is not None and _context_pid != os.getpid():
        # rq forks a work horse per job: never reuse the parent's pooled connections in the child.
        bind = _context.session_factory.kw.get("bind")
        if bind is not None:
            bind.dispose(close=False)
        _context_pid = os.getpid()
    if _context is None:  # an rq worker process: build from the environment, once
        import redis

        from schema.settings import Settings
        from schema.transport import RedisStreamBus

        settings = Settings()
        if settings.redis_url is None:
            raise RuntimeError("rq jobs need BOURSE_REDIS_URL")
        _context = JobContext(
            make_session_factory(make_engine(settings.database_url, pool_size=2)),
            RedisStreamBus(redis.Redis.from_url(settings.redis_url)),
            calendar_from_settings(settings),
        )
    return _context


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _ms(ts: datetime) -> int:
    return int(_aware(ts).timestamp() * 1000)


# ------------------------------------------------------------------------------------------------ jobs


def run_expire(ctx: JobContext, symbol: str, at_ms: int) -> int:
    """Publish Expire(symbol, at) if an open order of the symbol has expire_at <= at. Returns how many."""
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    with ctx.session_factory() as session:
        due = session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.symbol == symbol, Order.status.in_(OPEN_STATUSES), Order.expire_at <= at)
        )
    if due:
        ctx.bus.publish(symbol, Expire(symbol, at_ms))
    return int(due or 0)


def expire_orders(symbol: str, at_ms: int) -> int:
    """rq entry point."""
    return run_expire(context(), symbol, at_ms)


def run_open_session(ctx: JobContext, open_ms: int) -> int:
    """Publish every order still `new` with no seq (queued while closed) if the market is open now.
    Returns how many. Run twice, the second run finds only what the matcher has not sequenced yet (a
    duplicate it skips); run while closed (a late retry past the close), it publishes nothing."""
    sent = reconcile(ctx.session_factory, ctx.bus, age_s=0, now=ctx.clock(), calendar=ctx.calendar)
    log.info("open of %s: %d queued orders published", datetime.fromtimestamp(open_ms / 1000, UTC), sent)
    return sent


def open_session(open_ms: int) -> int:
    """rq entry point."""
    return run_open_session(context(), open_ms)


@dataclass
class EndOfDay:
    day: date
    closes: dict[str, int] = field(default_factory=dict)
    closes_recorded: int = 0
    snapshots_recorded: int = 0


_SNAPSHOT_SQL = """
INSERT INTO equity_snapshots (account_id, day, equity, cash, positions_value, created_at)
SELECT a.id, :day, a.cash_available + a.cash_held + COALESCE(v.value, 0), a.cash_available + a.cash_held,
       COALESCE(v.value, 0), :now
FROM accounts a
LEFT JOIN (
    SELECT p.account_id, SUM(p.qty * c.close) AS value
    FROM positions p JOIN instrument_closes c ON c.symbol = p.symbol AND c.day = :day
    WHERE p.qty <> 0
    GROUP BY p.account_id
) v ON v.account_id = a.id
WHERE a.created_at < :close
ON CONFLICT (account_id, day) DO NOTHING
"""


def run_end_of_day(ctx: JobContext, day: date) -> EndOfDay:
    result = EndOfDay(day)
    opens, closes = ctx.calendar.session_bounds(day)
    now = ctx.clock()
    with ctx.session_factory() as session:
        recorded = dict(
            session.execute(
                select(InstrumentClose.symbol, InstrumentClose.close).where(InstrumentClose.day == day)
            ).all()
        )
        for inst in session.scalars(select(Instrument).order_by(Instrument.symbol)):
            close = recorded.get(inst.symbol)
            if close is None:
                in_session = (
                    Trade.symbol == inst.symbol,
                    Trade.executed_at >= opens,
                    Trade.executed_at < closes,
                )
                last = session.scalar(
                    select(Trade.price)
                    .where(*in_session)
                    .order_by(Trade.executed_at.desc(), Trade.seq.desc())
                    .limit(1)
                )
                volume = session.scalar(select(func.coalesce(func.sum(Trade.qty), 0)).where(*in_session))
                close = inst.reference_price if last is None else last
                session.add(
                    InstrumentClose(
                        symbol=inst.symbol,
                        day=day,
                        close=close,
                        source="reference" if last is None else "trade",
                        volume=int(volume or 0),
                        created_at=now,
                    )
                )
                result.closes_recorded += 1
            result.closes[inst.symbol] = close
        session.flush()
        # Only the latest day's close sets the reference (a late re-run of an older day must not rewind it).
        latest = dict(
            session.execute(
                select(InstrumentClose.symbol, func.max(InstrumentClose.day)).group_by(InstrumentClose.symbol)
            ).all()
        )
        move = {s: c for s, c in result.closes.items() if latest.get(s) == day}
        for symbol, close in move.items():
            session.execute(
                update(Instrument).where(Instrument.symbol == symbol).values(reference_price=close)
            )
        params = {"day": day, "now": now, "close": closes}
        result.snapshots_recorded = session.execute(text(_SNAPSHOT_SQL), params).rowcount or 0
        session.commit()
    # After the commit: the engine learns the new reference (idempotent, so always sent; a crash between
    # the commit and here is healed by the re-run).
    for symbol, close in move.items():
        ctx.bus.publish(symbol, SetReference(symbol, close, _ms(now)))
    log.info("end of day %s: %d closes, %d snapshots", day, result.closes_recorded, result.snapshots_recorded)
    return result


def end_of_day(day_iso: str) -> dict[str, Any]:
    """rq entry point."""
    result = run_end_of_day(context(), date.fromisoformat(day_iso))
    return {"day": day_iso, "closes_recorded": result.closes_recorded, "snapshots": result.snapshots_recorded}


# ------------------------------------------------------------------------------------------------ plan


@dataclass(frozen=True, slots=True)
class JobSpec:
    id: str  # deterministic: the same job planned twice has the same id
    at: datetime
    func: Callable[..., Any]
    args: tuple[Any, ...]


def _session_day(close: datetime, calendar: MarketCalendar) -> date:
    """The trading day a session close belongs to (an always-open midnight close ends the day before)."""
    return (close - timedelta(microseconds=1)).astimezone(calendar.zone).date()


def plan(session: Session, now: datetime, calendar: MarketCalendar, horizon: timedelta) -> list[JobSpec]:
    """Every job due before now + horizon: expiries of open orders, and end of day for the last close (if its
    closes are not recorded yet) and the next one."""
    now = _aware(now)
    specs: list[JobSpec] = []
    rows = session.execute(
        select(Order.symbol, Order.expire_at)
        .where(
            Order.status.in_(OPEN_STATUSES), Order.expire_at.is_not(None), Order.expire_at <= now + horizon
        )
        .distinct()
    )
    for symbol, expire_at in rows:
        at_ms = _ms(expire_at)
        specs.append(JobSpec(f"expire-{symbol}-{at_ms}", _aware(expire_at), expire_orders, (symbol, at_ms)))
    closes: list[datetime] = []
    last = last_close_at_or_before(now, calendar)
    if (
        last is not None
        and session.scalar(
            select(func.count())
            .select_from(InstrumentClose)
            .where(InstrumentClose.day == _session_day(last, calendar))
        )
        == 0
        and session.scalar(select(func.count()).select_from(Instrument))
    ):
        closes.append(last)
    upcoming = session_at(now, calendar).next_close if not calendar.always_open else None
    if calendar.always_open:
        upcoming = calendar.session_bounds(now.astimezone(calendar.zone).date())[1]
    if upcoming is not None and upcoming <= now + horizon:
        closes.append(upcoming)
    for close in closes:
        day = _session_day(close, calendar)
        specs.append(JobSpec(f"eod-{day.isoformat()}", close + EOD_DELAY, end_of_day, (day.isoformat(),)))
    specs.extend(_open_specs(session, now, calendar, horizon))
    return specs


def _open_specs(
    session: Session, now: datetime, calendar: MarketCalendar, horizon: timedelta
) -> list[JobSpec]:
    """The open-session jobs: the next open when orders may be queued, and (catch-up after downtime) the
    open of the session in progress while orders from before it are still unsequenced."""
    if calendar.always_open:
        return []
    opens: list[datetime] = []
    opened = session_open_at_or_before(now, calendar)
    if opened is not None and session.scalar(
        select(Order.id).where(Order.status == "new", Order.seq.is_(None), Order.created_at < opened).limit(1)
    ):
        opens.append(opened)
    upcoming = session_at(now, calendar).next_open
    if calendar.outside_session == "queue" and upcoming is not None and upcoming <= now + horizon:
        opens.append(upcoming)
    return [JobSpec(f"open-{_ms(at)}", at, open_session, (_ms(at),)) for at in opens]


# ------------------------------------------------------------------------------------------------ rq


def rq_queue(redis_client: Any, name: str = QUEUE_NAME) -> Any:
    from rq import Queue

    return Queue(name, connection=redis_client)


def schedule_rq(queue: Any, specs: list[JobSpec], retry_intervals: list[int] = RETRY_INTERVALS) -> int:
    """enqueue_at each spec under its deterministic id with retries; an id rq already knows is skipped.
    Returns how many were newly scheduled."""
    from rq import Retry
    from rq.exceptions import DuplicateJobError
    from rq.job import Job

    added = 0
    for spec in specs:
        if Job.exists(spec.id, connection=queue.connection):
            continue
        try:
            queue.enqueue_at(
                spec.at,
                spec.func,
                *spec.args,
                job_id=spec.id,
                retry=Retry(max=len(retry_intervals), interval=retry_intervals),
                result_ttl=7 * 86400,  # keep finished ids a week: they are the "already done" marks
                failure_ttl=30 * 86400,
                unique=True,
            )
            added += 1
        except DuplicateJobError:
            continue
    return added


def jobs_status(redis_client: Any, limit: int = 20, queue_name: str = QUEUE_NAME) -> dict[str, Any]:
    """What `bourse jobs status` prints: scheduled, queued, running, finished and failed jobs."""
    from rq.job import Job
    from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    queue = rq_queue(redis_client, queue_name)
    scheduled = ScheduledJobRegistry(queue=queue)
    failed = FailedJobRegistry(queue=queue)

    def describe(job_id: str) -> dict[str, Any]:
        job = Job.fetch(job_id, connection=redis_client)
        status = job.get_status()
        doc: dict[str, Any] = {"id": job_id, "status": getattr(status, "value", str(status))}
        doc["retries_left"] = job.retries_left
        result = job.latest_result()
        if result is not None and result.exc_string:
            doc["error"] = result.exc_string.strip().splitlines()[-1]
        return doc

    return {
        "queue": queue_name,
        "queued": queue.count,
        "scheduled": [
            {"id": i, "at": scheduled.get_scheduled_time(i).isoformat()}
            for i in scheduled.get_job_ids(0, limit - 1)
        ],
        "started": StartedJobRegistry(queue=queue).get_job_ids(),
        "finished": len(FinishedJobRegistry(queue=queue)),
        "failed": [describe(i) for i in failed.get_job_ids(0, limit - 1)],
    }


def run_rq(
    redis_client: Any, ctx: JobContext, poll_s: float = 1.0, horizon: timedelta = timedelta(hours=1)
) -> None:
    """`bourse jobs run`: plan into rq every poll_s (a thread) and work the queue with rq's scheduler."""
    import threading

    from rq import Worker

    queue = rq_queue(redis_client)
    stop = threading.Event()

    def planner() -> None:
        while not stop.is_set():
            try:
                with ctx.session_factory() as session:
                    schedule_rq(queue, plan(session, ctx.clock(), ctx.calendar, horizon))
            except Exception:  # keep planning; the failure is logged
                log.exception("planning jobs failed")
            stop.wait(poll_s)

    thread = threading.Thread(target=planner, name="bourse-job-planner", daemon=True)
    thread.start()
    try:
        Worker([queue], connection=redis_client).work(with_scheduler=True)
    finally:
        stop.set()
