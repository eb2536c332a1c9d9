"""Group-commit intake: the new orders and cancels that one API process receives together share one
PostgreSQL transaction and one XADD pipeline.

Why: a request-per-transaction intake spent most of the API's CPU around four statements and a commit
per order (SQLAlchemy, psycopg, the thread-pool hop), which capped one process near 200 orders/s. Here
the event loop does the CPU-only checks and hands the order to one intake thread; while that thread
has a batch in PostgreSQL the next requests queue, so batches grow with the load and a quiet API still
answers one order in one round trip. Each order's semantics are place_order's (docs/backbone.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from api.errors import ApiError
from engine.commands import Cancel, Command
from schema import intake
from schema.calendar import Admission
from schema.intake_batch import NewOrderRow, Outcome, place_orders, request_cancels
from schema.views import View, order_view

if TYPE_CHECKING:
    from api.deps import Services

log = logging.getLogger("bourse.intake")

# Deadlock and serialization failure: the whole batch rolled back and is simply run again.
_RETRYABLE_SQLSTATES = ("40P01", "40001")
_ATTEMPTS = 3


@dataclass(slots=True)
class _Job:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    account_id: int
    new: NewOrderRow | None = None
    admit: Admission = Admission.ACCEPT
    cancel_id: int | None = None


_T = TypeVar("_T")
_Answer = tuple[asyncio.Future[Any], bool, Any]  # (future, ok, result or exception)


class IntakeBatcher:
    def __init__(self, services: Services, engine: Engine, max_batch: int, idle_exit_s: float = 5.0) -> None:
        self._services = services
        self._engine = engine
        self._max_batch = max_batch
        self._idle_exit_s = idle_exit_s
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._local = threading.local()  # the intake thread's connection
        self.batches = 0  # counters for tests and the bench's report
        self.jobs_done = 0

    async def place(self, row: NewOrderRow, admit: Admission) -> tuple[int, View]:
        """(201, view) for a new order, (200, original's view) for a retried client_order_id; raises
        IntakeError (insufficient funds or shares, a different order under that client_order_id)."""
        return await self._submit(_Job(asyncio.get_running_loop(), _new_future(), row.account_id, row, admit))

    async def cancel(self, account_id: int, order_id: int) -> View:
        """The order's view as of the cancel request, with the Cancel published; raises IntakeError."""
        job = _Job(asyncio.get_running_loop(), _new_future(), account_id, cancel_id=order_id)
        return await self._submit(job)

    def close(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._jobs.put(None)

    def _submit(self, job: _Job) -> asyncio.Future[Any]:
        self._jobs.put(job)
        with self._lock:
            if self._thread is None:
                # Started on first use and stopped when idle: a test app that never runs its lifespan
                # leaves no thread or connection behind.
                self._thread = threading.Thread(target=self._run, name="bourse-intake", daemon=True)
                self._thread.start()
        return job.future

    def _run(self) -> None:
        try:
            while True:
                try:
                    first = self._jobs.get(timeout=self._idle_exit_s)
                except queue.Empty:
                    with self._lock:
                        if self._jobs.empty():
                            self._thread = None
                            return
                    continue
                if first is None:
                    with self._lock:
                        self._thread = None
                    return
                jobs = [first]
                while len(jobs) < self._max_batch:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._jobs.put(None)  # stop after this batch
                        break
                    jobs.append(more)
                try:
                    answers = self._process(jobs)
                except Exception as exc:  # noqa: BLE001 - a bug here must not leave requests waiting
                    log.exception("intake batch of %d failed", len(jobs))
                    answers = [(job, False, exc) for job in jobs]
                self._answer(answers)
        finally:
            self._drop_connection()
            with self._lock:  # however the loop ended, the next request starts a new thread
                if self._thread is threading.current_thread():
                    self._thread = None

    def _process(self, jobs: list[_Job]) -> list[tuple[_Job, bool, Any]]:
        try:
            outcomes, rows = self._commit(jobs)
        except Exception as exc:  # noqa: BLE001 - handed to the requests, which map it (503, ...)
            if len(jobs) == 1:
                return [(jobs[0], False, exc)]
            # One bad order must not fail the others: run each alone, which isolates it.
            log.warning("intake batch of %d failed (%s); retrying one by one", len(jobs), exc)
            return [answer for job in jobs for answer in self._process([job])]
        return self._finish(jobs, outcomes, rows)

    def _commit(
        self, jobs: list[_Job]
    ) -> tuple[list[tuple[Outcome, int | None]], dict[int, Any] | Exception]:
        """The new orders in one statement, then the cancels: each its own transaction (autocommit), so
        no row lock is held across a round trip. New orders that committed stay committed if the cancels
        then fail: those requests get the error, and nothing is run twice."""
        conn = self._connection()
        news = [j.new for j in jobs if j.new is not None]
        outcomes = self._statement(lambda: place_orders(conn, news)) if news else []
        asks = [(j.cancel_id, j.account_id) for j in jobs if j.cancel_id is not None]
        rows: dict[int, Any] | Exception = {}
        if asks:
            try:
                rows = self._statement(lambda: request_cancels(conn, asks, self._services.clock()))
            except Exception as exc:  # noqa: BLE001 - handed to the cancel requests (503, ...)
                rows = exc
        self.batches += 1
        return outcomes, rows

    def _statement(self, run: Callable[[], _T]) -> _T:
        """One statement in its own transaction; a deadlock or serialization failure is run again."""
        conn = self._connection()
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                result = run()
                conn.commit()  # ends SQLAlchemy's transaction; the statement is already committed
                return result
            except DBAPIError as exc:
                with contextlib.suppress(Exception):
                    conn.rollback()
                if exc.connection_invalidated or not _retryable(exc) or attempt == _ATTEMPTS:
                    self._drop_connection()
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _finish(
        self, jobs: list[_Job], outcomes: list[tuple[Outcome, int | None]], rows: dict[int, Any] | Exception
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
                    answers.append((job, True, self._placed(job, outcome, order_id, ts, commands)))
                else:
                    assert job.cancel_id is not None
                    if isinstance(rows, Exception):
                        raise rows
                    row = rows.get(job.cancel_id)
                    intake.check_owned(row, job.account_id, job.cancel_id)
                    commands.setdefault(row.symbol, []).append(Cancel(row.id, job.account_id, row.symbol, ts))
                    answers.append((job, True, order_view(row)))
            except Exception as exc:  # noqa: BLE001 - each request gets its own error; the batch goes on
                answers.append((job, False, exc))
        for symbol, batch in commands.items():
            try:
                services.bus.publish_many(symbol, batch)
            except Exception:  # noqa: BLE001 - committed orders are re-sent by the reconciler from SQL
                log.exception(
                    "publish of %d commands to %s failed; the reconciler will retry", len(batch), symbol
                )
        self.jobs_done += len(jobs)
        return answers

    def _placed(
        self, job: _Job, outcome: Outcome, order_id: int | None, ts: int, commands: dict[str, list[Command]]
    ) -> tuple[int, View]:
        new = job.new
        assert new is not None
        spec = new.spec
        if outcome == Outcome.INSUFFICIENT:
            raise intake.insufficient(spec, new.hold)
        if outcome == Outcome.DUPLICATE:
            with self._services.session_factory() as session:
                existing = intake.find_by_client_order_id(session, new.account_id, new.client_order_id)
            if existing is None:  # pragma: no cover - the row it collided with was committed
                raise ApiError(503, "SERVICE_UNAVAILABLE", "a backing service is unavailable; retry shortly")
            return 200, order_view(intake.original_order(existing, spec))
        values = intake.order_values(
            new.account_id, spec, new.client_order_id, new.hold, new.now, new.expire_at
        )
        # A plain namespace: an ORM instance's attribute instrumentation was ~5% of the API's CPU per order.
        order = SimpleNamespace(id=order_id, **values)
        if job.admit == Admission.ACCEPT:
            command = intake.new_order_command(order, new.hold, ts)  # type: ignore[arg-type]
            commands.setdefault(spec.symbol, []).append(command)
        return 201, order_view(order)  # type: ignore[arg-type]

    def _answer(self, answers: list[tuple[_Job, bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
        for job, ok, value in answers:
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, batch in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(_resolve, batch)

    def _connection(self) -> Connection:
        # One connection kept by the intake thread: a pool checkout would add a pre-ping per batch.
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit: each statement is its own transaction (see _commit).
            conn = self._local.conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # Every intake statement finds its rows by key, and psycopg prepares them: a plan made while
            # the orders table was small was a sequential scan, kept as the table grew (schema.db,
            # key_lookups_only). Reset when the connection goes back to the shared pool.
            conn.exec_driver_sql("SET enable_seqscan = off")
        return conn

    def _drop_connection(self) -> None:
        conn: Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.exec_driver_sql("RESET enable_seqscan")
            except Exception:  # noqa: BLE001 - broken: never hand it back to the pool
                with contextlib.suppress(Exception):
                    conn.invalidate()
            with contextlib.suppress(Exception):  # a broken connection is being thrown away anyway
                conn.close()


def _new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


def _retryable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


def _resolve(answers: list[_Answer]) -> None:
    for future, ok, value in answers:
        if future.done():  # the client went away and its request was canceled
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def build_batcher(services: Services) -> IntakeBatcher | None:
    """A batcher when intake batching is on and the database is PostgreSQL; None keeps the per-request
    path (SQLite: one writer, and the embedded default's loads are small)."""
    engine = services.session_factory.kw.get("bind")
    max_batch = services.settings.intake_batch_max
    if max_batch <= 0 or not isinstance(engine, Engine) or engine.dialect.name != "postgresql":
        return None
    return IntakeBatcher(services, engine, max_batch)
