"""Group-commit intake: the new orders and cancels that one API process receives together share one
PostgreSQL transaction and one XADD script call.

Why: a request-per-transaction intake spent most of the API's CPU around four statements and a commit
per order (SQLAlchemy, psycopg, the thread-pool hop), which capped one process near 200 orders/s. Here
the event loop does the CPU-only checks and queues the order; while a batch is in PostgreSQL the next
requests queue, so batches grow with the load and a quiet API still answers one order in one round trip.
Each order's semantics are place_order's (docs/backbone.md).

The batches run on the event loop itself, over an asyncio psycopg connection, not in a thread: a thread
had to win the GIL back from the busy loop after every round trip (up to the 5 ms switch interval each
time), and at saturation it spent most of each batch waiting for it, idle neither in PostgreSQL nor in
Python (docs/backbone.md, "Group-commit intake").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from sqlalchemy import Engine

from api.errors import ApiError
from engine.commands import Cancel, Command
from schema import intake
from schema.calendar import Admission
from schema.intake_batch import (
    NewOrderRow,
    Outcome,
    created_order,
    place_orders_and_request_cancels_async,
    place_orders_async,
    request_cancels_async,
)
from schema.views import View, order_view

if TYPE_CHECKING:
    from api.deps import Services

log = logging.getLogger("bourse.intake")

# Deadlock and serialization failure: the whole statement rolled back and is simply run again.
_RETRYABLE_SQLSTATES = ("40P01", "40001")
_ATTEMPTS = 3


@dataclass(slots=True)
class _Job:
    future: asyncio.Future[Any]
    account_id: int
    new: NewOrderRow | None = None
    admit: Admission = Admission.ACCEPT
    cancel_id: int | None = None


_T = TypeVar("_T")
_Conn = psycopg.AsyncConnection[Any]
# A second batch goes to PostgreSQL while one is there only when this many requests wait: under load the
# two overlap (one in PostgreSQL while the loop answers the other's requests); a quiet API keeps one.
_SECOND_LANE_FROM = 32
_LANES = 2


@dataclass(slots=True)
class _Lane:
    """One batch at a time on one connection."""

    conn: _Conn | None = None


class IntakeBatcher:
    def __init__(self, services: Services, conninfo: str, max_batch: int) -> None:
        self._services = services
        self._conninfo = conninfo
        self._max_batch = max_batch
        self._jobs: list[_Job] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._spare: list[_Conn] = []  # connections of lanes that finished, for the next lane
        self.batches = 0  # counters for tests and the bench's report
        self.jobs_done = 0

    async def place(self, row: NewOrderRow, admit: Admission) -> tuple[int, View]:
        """(201, view) for a new order, (200, original's view) for a retried client_order_id; raises
        IntakeError (insufficient funds or shares, a different order under that client_order_id)."""
        return await self._submit(_Job(_new_future(), row.account_id, row, admit))

    async def cancel(self, account_id: int, order_id: int) -> View:
        """The order's view as of the cancel request, with the Cancel published; raises IntakeError."""
        return await self._submit(_Job(_new_future(), account_id, cancel_id=order_id))

    async def aclose(self) -> None:
        """Close the connections (the app's shutdown); a later request opens a new one."""
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        spare, self._spare = self._spare, []
        for conn in spare:
            await _close(conn)

    def _submit(self, job: _Job) -> asyncio.Future[Any]:
        loop = job.future.get_loop()
        if loop is not self._loop:
            # First use, or another event loop (a test app run on several): a connection and a task belong
            # to the loop they were made on.
            self._forget_loop()
            self._loop = loop
        self._jobs.append(job)
        self._start_lanes(loop)
        return job.future

    def _start_lanes(self, loop: asyncio.AbstractEventLoop) -> None:
        running = len(self._tasks)
        if self._jobs and (running == 0 or (running < _LANES and len(self._jobs) >= _SECOND_LANE_FROM)):
            task = loop.create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        """Batches until none is waiting: what arrives while one is in PostgreSQL makes the next."""
        lane = _Lane(self._spare.pop() if self._spare else None)
        try:
            while self._jobs:
                jobs = self._jobs[: self._max_batch]
                del self._jobs[: self._max_batch]
                self._start_lanes(asyncio.get_running_loop())
                try:
                    answers = await self._process(lane, jobs)
                except Exception as exc:  # noqa: BLE001 - a bug here must not leave requests waiting
                    log.exception("intake batch of %d failed", len(jobs))
                    answers = [(job, False, exc) for job in jobs]
                except BaseException:
                    for job in jobs:  # canceled (shutdown): nobody is left to answer them
                        job.future.cancel()
                    raise
                _resolve(answers)
        finally:
            # Here, not in a done callback: that runs an iteration later, and a request arriving in between
            # would find this lane still counted and wait for the next request to start one.
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
            if lane.conn is not None:
                if self._loop is asyncio.get_running_loop():
                    self._spare.append(lane.conn)
                else:  # the batcher has moved to another event loop since
                    await _close(lane.conn)

    async def _process(self, lane: _Lane, jobs: list[_Job]) -> list[tuple[_Job, bool, Any]]:
        try:
            outcomes, rows = await self._commit(lane, jobs)
        except Exception as exc:  # noqa: BLE001 - handed to the requests, which map it (503, ...)
            if len(jobs) == 1:
                return [(jobs[0], False, exc)]
            # One bad order must not fail the others: run each alone, which isolates it.
            log.warning("intake batch of %d failed (%s); retrying one by one", len(jobs), exc)
            return [answer for job in jobs for answer in await self._process(lane, [job])]
        return await self._finish(jobs, outcomes, rows)

    async def _commit(
        self, lane: _Lane, jobs: list[_Job]
    ) -> tuple[list[tuple[Outcome, int | None]], dict[int, Any]]:
        """The new orders in one statement and the cancels in another, sent together in one round trip
        and committed together (schema.intake_batch.place_orders_and_request_cancels_async); a batch of
        only one kind runs its statement alone. No row lock is held across a round trip. If the batch
        fails, nothing of it was committed and _process runs its requests one by one."""
        await self._connection(lane)  # no database: the whole batch fails here, and nothing is counted
        news = [j.new for j in jobs if j.new is not None]
        asks = [(j.cancel_id, j.account_id) for j in jobs if j.cancel_id is not None]
        now = self._services.clock()
        outcomes: list[tuple[Outcome, int | None]] = []
        rows: dict[int, Any] = {}
        if news and asks:
            outcomes, rows = await self._statement(
                lane, lambda conn: place_orders_and_request_cancels_async(conn, news, asks, now)
            )
        elif news:
            outcomes = await self._statement(lane, lambda conn: place_orders_async(conn, news))
        elif asks:
            rows = await self._statement(lane, lambda conn: request_cancels_async(conn, asks, now))
        self.batches += 1
        return outcomes, rows

    async def _statement(self, lane: _Lane, run: Callable[[_Conn], Awaitable[_T]]) -> _T:
        """One statement in its own transaction. A deadlock or serialization failure is run again, and so
        is a statement whose connection was lost (PostgreSQL restarted, the backend was terminated), on a
        new one: both statements may be repeated. A repeated `bourse_place_orders` finds the orders it
        may have committed by their client_order_id (the API makes one up when the client sent none) and
        answers them as retries, unpublished, for the reconciler to send; a repeated cancel request finds
        its orders already asked. A database that cannot be reached fails at once (503)."""
        for attempt in range(1, _ATTEMPTS + 1):
            conn = await self._connection(lane)
            try:
                return await run(conn)
            except psycopg.Error as exc:
                lost = conn.broken or conn.closed
                if lost or exc.sqlstate not in _RETRYABLE_SQLSTATES:
                    lane.conn = None
                    await _close(conn)
                if attempt == _ATTEMPTS or not (lost or exc.sqlstate in _RETRYABLE_SQLSTATES):
                    raise
                log.warning("intake statement failed (%s); running it again", exc)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _finish(
        self, jobs: list[_Job], outcomes: list[tuple[Outcome, int | None]], rows: dict[int, Any]
    ) -> list[tuple[_Job, bool, Any]]:
        services = self._services
        ts = services.now_ms()
        answers: list[tuple[_Job, bool, Any]] = []
        commands: dict[str, list[Command]] = {}
        placed = iter(outcomes)
        for job in jobs:
            try:
                if job.new is not None:
                    outcome, order_id = next(placed)
                    answers.append((job, True, await self._placed(job, outcome, order_id, ts, commands)))
                else:
                    assert job.cancel_id is not None
                    row = rows.get(job.cancel_id)
                    intake.check_owned(row, job.account_id, job.cancel_id)
                    commands.setdefault(row.symbol, []).append(Cancel(row.id, job.account_id, row.symbol, ts))
                    answers.append((job, True, order_view(row)))
            except Exception as exc:  # noqa: BLE001 - each request gets its own error; the batch goes on
                answers.append((job, False, exc))
        if commands:
            try:
                await services.bus.publish_batches_async(commands)
            except Exception:  # noqa: BLE001 - committed orders are re-sent by the reconciler from SQL
                log.exception("publish of %s failed; the reconciler will retry", sorted(commands))
        self.jobs_done += len(jobs)
        return answers

    async def _placed(
        self, job: _Job, outcome: Outcome, order_id: int | None, ts: int, commands: dict[str, list[Command]]
    ) -> tuple[int, View]:
        new = job.new
        assert new is not None
        spec = new.spec
        if outcome == Outcome.INSUFFICIENT:
            raise intake.insufficient(spec, new.hold)
        if outcome == Outcome.DUPLICATE:
            # A retried client_order_id (rare): the original is read in a thread, off the event loop.
            existing = await asyncio.to_thread(self._existing, new.account_id, new.client_order_id)
            if existing is None:  # pragma: no cover - the row it collided with was committed
                raise ApiError(503, "SERVICE_UNAVAILABLE", "a backing service is unavailable; retry shortly")
            return 200, order_view(intake.original_order(existing, spec))
        assert order_id is not None
        order = created_order(new, order_id)
        if job.admit == Admission.ACCEPT:
            command = intake.new_order_command(order, new.hold, ts)
            commands.setdefault(spec.symbol, []).append(command)
        return 201, order_view(order)

    def _existing(self, account_id: int, client_order_id: str) -> Any:
        with self._services.session_factory() as session:
            return intake.find_by_client_order_id(session, account_id, client_order_id)

    async def _connection(self, lane: _Lane) -> _Conn:
        # Connections kept by the batcher: a pool checkout would add a pre-ping per batch.
        if lane.conn is None or lane.conn.closed:
            # Autocommit: each statement is its own transaction (see _commit). Every intake statement finds
            # its rows by key, and psycopg prepares them: a plan made while the orders table was small was a
            # sequential scan, kept as the table grew (schema.db, key_lookups_only).
            lane.conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, options="-c enable_seqscan=off", connect_timeout=10
            )
        return lane.conn

    def _forget_loop(self) -> None:
        """Leave what belongs to the previous event loop: its connections (closed at the socket: the loop
        may be gone) and its tasks; the jobs it left are canceled."""
        spare, self._spare, self._tasks = self._spare, [], set()
        for conn in spare:
            if not conn.closed:
                with contextlib.suppress(Exception):
                    conn.pgconn.finish()
        stale, self._jobs = self._jobs, []
        for job in stale:
            if not job.future.done():
                job.future.get_loop().call_soon_threadsafe(job.future.cancel)


async def _close(conn: _Conn) -> None:
    with contextlib.suppress(Exception):  # a broken connection is being thrown away anyway
        await conn.close()


def _new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


def _resolve(answers: list[tuple[_Job, bool, Any]]) -> None:
    for job, ok, value in answers:
        future = job.future
        if future.done():  # the client went away and its request was canceled
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def intake_conninfo(engine: Engine) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL engine, for the batcher's own connection."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def build_batcher(services: Services) -> IntakeBatcher | None:
    """A batcher when intake batching is on and the database is PostgreSQL; None keeps the per-request
    path (SQLite: one writer, and the embedded default's loads are small)."""
    engine = services.session_factory.kw.get("bind")
    max_batch = services.settings.intake_batch_max
    if max_batch <= 0 or not isinstance(engine, Engine) or engine.dialect.name != "postgresql":
        return None
    return IntakeBatcher(services, intake_conninfo(engine), max_batch)
