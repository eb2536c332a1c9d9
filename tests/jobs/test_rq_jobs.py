"""The same jobs through rq on a real Redis: enqueue_at under deterministic ids (a second plan adds nothing),
rq's scheduler moves due jobs to the queue, a SimpleWorker in burst mode runs them; failures are retried and
then visible in `jobs_status`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import redis
from market_kit import Market
from rq import SimpleWorker

from schema.calendar import MarketCalendar, day_order_expiry
from workers import jobs
from workers.jobs import JobContext, JobSpec, jobs_status, plan, rq_queue, schedule_rq

NYSE = MarketCalendar()
# Our own queue name: rq's scheduler lock is per queue, and other test runs may share this Redis.
QUEUE = f"bourse-jobs-test-{uuid.uuid4().hex[:8]}"


def failing_job() -> None:
    raise RuntimeError("the database is on fire")


def test_rq_runs_planned_expiry_and_end_of_day_once(market: Market, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    queue = rq_queue(client, QUEUE)
    jobs.use_context(JobContext(market.sessions, market.bus, NYSE, market.clock))
    try:
        buyer = market.user()
        close = day_order_expiry(market.clock(), NYSE)
        day_id = market.place(buyer, "AAPL", "buy", 3, 215_00, "day", expire_at=close)
        matcher = market.matcher(["AAPL"])
        matcher.drain()
        market.clock.now = close + timedelta(seconds=5)  # the close has passed: expiry and end of day are due
        with market.sessions() as s:
            specs = plan(s, market.clock(), NYSE, timedelta(hours=1))
        ids = {spec.id for spec in specs}
        assert f"expire-AAPL-{int(close.timestamp() * 1000)}" in ids and "eod-2025-06-03" in ids
        assert schedule_rq(queue, specs) == len(specs)
        assert schedule_rq(queue, specs) == 0  # deterministic ids: planning again schedules nothing
        assert {j["id"] for j in jobs_status(client, queue_name=QUEUE)["scheduled"]} == ids

        SimpleWorker([queue], connection=client).work(burst=True, with_scheduler=True)
        status = jobs_status(client, queue_name=QUEUE)
        assert status["scheduled"] == [] and status["failed"] == [] and status["finished"] == len(specs)
        matcher.drain()
        assert market.order(day_id).status == "expired"
        assert market.account(buyer).cash_held == 0
        # done: nothing left to plan for this close
        with market.sessions() as s:
            assert plan(s, market.clock(), NYSE, timedelta(hours=1)) == []
        matcher.close()
    finally:
        jobs.use_context(None)


def test_a_failing_job_is_retried_then_listed_as_failed(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    queue = rq_queue(client, QUEUE)
    spec = JobSpec("boom-1", datetime(2025, 1, 1, tzinfo=UTC), failing_job, ())
    assert schedule_rq(queue, [spec], retry_intervals=[0]) == 1
    SimpleWorker([queue], connection=client).work(burst=True, with_scheduler=True)
    failed = jobs_status(client, queue_name=QUEUE)["failed"]
    assert failed == [
        {
            "id": "boom-1",
            "status": "failed",
            "retries_left": 0,
            "error": "RuntimeError: the database is on fire",
        }
    ]
