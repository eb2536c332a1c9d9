"""The embedded default's scheduler: the same plan and job functions as rq, run from one thread.

`tick()` does one pass (plan, then run every job whose time has come, with rq-like retries), so tests drive
it with a controllable clock and no thread; `start()` runs tick() every poll_s in a daemon thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workers import jobs
from workers.jobs import JobContext, JobSpec

log = logging.getLogger(__name__)


@dataclass
class JobRecord:
    spec: JobSpec
    status: str = "scheduled"  # scheduled | finished | failed
    attempts: int = 0
    not_before: datetime | None = None
    error: str | None = None
    result: Any = None


@dataclass
class InProcessScheduler:
    ctx: JobContext
    poll_s: float = 1.0
    horizon: timedelta = timedelta(hours=1)
    records: dict[str, JobRecord] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _call(self, spec: JobSpec) -> Any:
        # The job functions' rq entry points read the module context; call the context-taking ones directly.
        if spec.func is jobs.expire_orders:
            return jobs.run_expire(self.ctx, *spec.args)
        if spec.func is jobs.open_session:
            return jobs.run_open_session(self.ctx, *spec.args)
        if spec.func is jobs.end_of_day:
            return jobs.run_end_of_day(self.ctx, datetime.fromisoformat(spec.args[0]).date())
        return spec.func(*spec.args)

    def tick(self) -> int:
        """Plan, then run what is due. Returns the number of jobs that ran (successfully or not)."""
        now = self.ctx.clock()
        with self.ctx.session_factory() as session:
            for spec in jobs.plan(session, now, self.ctx.calendar, self.horizon):
                self.records.setdefault(spec.id, JobRecord(spec))
        ran = 0
        for record in sorted(self.records.values(), key=lambda r: (r.spec.at, r.spec.id)):
            due = record.not_before or record.spec.at
            if record.status != "scheduled" or due > now:
                continue
            ran += 1
            record.attempts += 1
            try:
                record.result = self._call(record.spec)
                record.status = "finished"
            except Exception as exc:  # retried like rq's Retry, then left visible as failed
                log.exception("job %s failed (attempt %d)", record.spec.id, record.attempts)
                record.error = f"{type(exc).__name__}: {exc}"
                if record.attempts > len(jobs.RETRY_INTERVALS):
                    record.status = "failed"
                else:
                    record.not_before = now + timedelta(seconds=jobs.RETRY_INTERVALS[record.attempts - 1])
        return ran

    def status(self) -> dict[str, Any]:
        by = {
            s: [r for r in self.records.values() if r.status == s]
            for s in ("scheduled", "finished", "failed")
        }
        return {
            "scheduled": [{"id": r.spec.id, "at": r.spec.at.isoformat()} for r in by["scheduled"]],
            "finished": len(by["finished"]),
            "failed": [{"id": r.spec.id, "attempts": r.attempts, "error": r.error} for r in by["failed"]],
        }

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("scheduler tick failed")
                self._stop.wait(self.poll_s)

        self._thread = threading.Thread(target=loop, name="bourse-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
