"""`bourse bench service`: the end-to-end load generator.

It replays a flow (benchmarks.generator, or a flow file) through many concurrent async HTTP clients spread
over many accounts, against a running Bourse (`--url`) or one it launches itself (`--launch embedded` runs
`bourse serve`; `--launch pg` runs PostgreSQL + Redis with N `bourse api` processes and M `bourse worker`
matchers, through the real CLI). Socket.IO clients (websocket transport, JWT auth) listen to the `user:`
rooms of a sample of the accounts and timestamp the `order` and `fill` events.

Measured, all from the *scheduled* send time (open loop: a slow response never delays the next send, so
queueing is not hidden):
- POST-ack: the HTTP response of POST /orders (the hold and insert are committed in SQL);
- POST-settled: the first `order` event of the order (new, fill, partial_fill, canceled or rejected: the
  matcher has sequenced it and committed its settlement) as received by the listening client;
- POST-fill-event: the taker's `fill` event of an order that traded on arrival;
- cancel-ack and cancel-settled (the `canceled` event) for DELETE /orders/{id}.
Sustained settled orders/s comes from SQL: accepted orders / (time from the first send until no order of
the run is left unsequenced in SQL).

Accounts live in their own namespace: emails `bench-<run id>-<i>@bench.invalid`. They are created directly
in SQL by `seed_accounts` (the documented seed path): a user, an account whose cash is a ledger deposit,
and for each symbol a position whose shares are a ledger issuance (kind "deposit" with qty_delta), exactly
as the demo agents are funded, so `bourse audit` holds. Access tokens are minted with the deployment's
secret (or obtained by logging in over HTTP when the secret is not given). Nothing is deleted: with
`--launch pg` the whole database is dropped at the end (unless --keep); against `--url` the accounts stay,
namespaced by run id.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import orjson

from benchmarks import generator, meta, report
from benchmarks.gc_pauses import GcPauses
from benchmarks.generator import CANCEL, LIMIT, FlowParams, Message

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "benchmarks" / "out"
PG_ADMIN_URL = os.environ.get("BOURSE_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_PASSWORD = "bench-password-not-secret"  # noqa: S105 - bench accounts in a throwaway namespace
API = "/api/v1"
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------- launch
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_database(admin_url: str) -> str:
    """A fresh, uniquely named PostgreSQL database for one bench run; its name (see `_pg_url`)."""
    import psycopg

    name = f"bourse_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_url(admin_url: str, dbname: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{dbname}"


@dataclass
class Deployment:
    """A Bourse to load: its URL and, when known, its database, Redis and secret. Launched processes are
    stopped (by pid) and launched resources dropped by close()."""

    url: str
    database_url: str | None
    redis_url: str | None = None
    secret_key: str | None = None
    mode: str = "url"
    api_procs: int = 1
    matchers: int = 1
    symbols: tuple[str, ...] = ()
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_dir: Path | None = None
    created_db: tuple[str, str] | None = None  # (admin url, name) to drop
    private_redis: subprocess.Popen[bytes] | None = None
    keep: bool = False

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def close(self) -> None:
        for _name, proc in reversed(list(self.procs.items())):
            _stop_process(proc)
        self.procs.clear()
        if self.private_redis is not None:
            _stop_process(self.private_redis)
            self.private_redis = None
        if self.created_db is not None and not self.keep:
            drop_database(*self.created_db)
            self.created_db = None


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    # Own process group, so stopping it also stops uvicorn's worker processes (and nothing else).
    return subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _bourse(*args: str) -> list[str]:
    return [sys.executable, "-m", "bourse.cli", *args]


def _wait_http(url: str, procs: dict[str, subprocess.Popen[bytes]], timeout: float = 90.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} during start-up (see its log)")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not become healthy in {timeout:.0f}s")


def _wait_matchers(redis_url: str, symbols: Sequence[str], timeout: float = 60.0) -> None:
    """A matcher that owns a symbol has rebuilt its book and written the depth snapshot to Redis."""
    import redis

    from schema.marketdata import depth_key

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if all(client.exists(depth_key(s)) for s in symbols):
                return
            time.sleep(0.2)
    finally:
        client.close()
    raise TimeoutError(f"no matcher took {', '.join(symbols)} in {timeout:.0f}s")


def start_private_redis(log_dir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """A redis-server of our own on a free port: Socket.IO's pub/sub channel is server-wide (not per
    database), so a bench sharing a Redis with other running deployments would hear their events."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not found; pass --redis-url")
    port = free_port()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = _spawn("redis", argv, dict(os.environ), log_dir)
    import redis

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_connect_timeout=0.5).ping():
                return f"redis://127.0.0.1:{port}/0", proc
        except redis.RedisError:
            time.sleep(0.1)
    _stop_process(proc)
    raise TimeoutError("private redis-server did not start")


def launch(
    mode: Literal["embedded", "pg"],
    *,
    symbols: Sequence[str],
    api_procs: int = 1,
    matchers: int = 1,
    database_url: str | None = None,
    redis_url: str | None = None,
    pg_admin_url: str = PG_ADMIN_URL,
    log_dir: Path | None = None,
    keep: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Deployment:
    """Start a Bourse through the real CLI and wait until it serves and its matchers own `symbols`."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="bourse-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOURSE_")}
    env.update(
        BOURSE_SECRET_KEY=secret,
        BOURSE_MARKET_HOURS="always",
        BOURSE_AGENTS="false",
        BOURSE_ENV="dev",
        BOURSE_HOST="127.0.0.1",
        BOURSE_PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    dep = Deployment(
        url, None, None, secret, mode, api_procs, matchers, tuple(symbols), log_dir=log_dir, keep=keep
    )
    try:
        if mode == "embedded":
            dep.database_url = database_url or f"sqlite:///{log_dir / 'bench.db'}"
            env["BOURSE_DATABASE_URL"] = dep.database_url
            dep.procs["serve"] = _spawn(
                "serve", _bourse("serve", "--no-agents", "--log-level", "warning"), env, log_dir
            )
            _wait_http(url, dep.procs)
            return dep
        if database_url is None:
            name = create_database(pg_admin_url)
            dep.created_db = (pg_admin_url, name)
            database_url = _pg_url(pg_admin_url, name)
        dep.database_url = database_url
        if redis_url is None:
            redis_url, dep.private_redis = start_private_redis(log_dir)
        dep.redis_url = redis_url
        env["BOURSE_DATABASE_URL"] = database_url
        env["BOURSE_REDIS_URL"] = redis_url
        subprocess.run(_bourse("seed-demo"), cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
        for i in range(matchers):
            mine = [s for j, s in enumerate(symbols) if j % matchers == i]
            if not mine:
                continue
            dep.procs[f"matcher-{i}"] = _spawn(
                f"matcher-{i}", _bourse("worker", "--symbols", ",".join(mine)), env, log_dir
            )
        dep.procs["api"] = _spawn(
            "api", _bourse("api", "--workers", str(api_procs), "--log-level", "warning"), env, log_dir
        )
        _wait_http(url, dep.procs)
        _wait_matchers(redis_url, symbols)
        return dep
    except BaseException:
        dep.close()
        raise


# ---------------------------------------------------------------------------------------------- accounts
@dataclass(frozen=True, slots=True)
class BenchAccount:
    index: int
    account_id: int
    user_id: int
    email: str
    token: str


def seed_accounts(
    database_url: str,
    run_id: str,
    n: int,
    symbols: Sequence[str],
    *,
    cash_cents: int = 1_000_000_00,
    shares: int = 100_000,
) -> list[tuple[int, int, str]]:
    """Create n namespaced accounts in SQL with `cash_cents` of cash and `shares` of each symbol, every
    amount recorded in the ledger (deposit). Returns [(user_id, account_id, email)] in index order."""
    from sqlalchemy import insert, select

    from api.security import hash_password
    from schema.db import make_engine
    from schema.models import Account, Instrument, LedgerEntry, Position, User

    now = datetime.now(UTC)
    password_hash = hash_password(BENCH_PASSWORD)  # one argon2 hash shared by the namespace
    emails = [f"bench-{run_id}-{i}@bench.invalid" for i in range(n)]
    engine = make_engine(database_url, pool_size=1)
    chunk = 2_000
    try:
        with engine.begin() as conn:
            refs = dict(
                conn.execute(
                    select(Instrument.symbol, Instrument.reference_price).where(
                        Instrument.symbol.in_(symbols)
                    )
                ).all()
            )
            missing = [s for s in symbols if s not in refs]
            if missing:
                raise LookupError(f"unknown symbols: {', '.join(missing)}")
            for lo in range(0, n, chunk):
                conn.execute(
                    insert(User),
                    [
                        {"email": e, "password_hash": password_hash, "display_name": None,
                         "leaderboard_opt_in": False, "is_agent": False, "created_at": now}
                        for e in emails[lo : lo + chunk]
                    ],
                )  # fmt: skip
            users = dict(conn.execute(select(User.email, User.id).where(User.email.in_(emails))).all())
            user_ids = [users[e] for e in emails]
            for lo in range(0, n, chunk):
                conn.execute(
                    insert(Account),
                    [
                        {"user_id": u, "starting_cash": cash_cents, "cash_available": cash_cents,
                         "cash_held": 0, "created_at": now}
                        for u in user_ids[lo : lo + chunk]
                    ],
                )  # fmt: skip
            accounts = dict(
                conn.execute(select(Account.user_id, Account.id).where(Account.user_id.in_(user_ids))).all()
            )
            account_ids = [accounts[u] for u in user_ids]
            for lo in range(0, n, chunk):
                part = account_ids[lo : lo + chunk]
                ledger: list[dict[str, Any]] = [
                    {"account_id": a, "kind": "deposit", "symbol": None, "cash_available_delta": cash_cents,
                     "cash_held_delta": 0, "qty_delta": 0, "held_qty_delta": 0, "created_at": now}
                    for a in part
                ]  # fmt: skip
                positions: list[dict[str, Any]] = []
                for sym in symbols:
                    positions += [
                        {"account_id": a, "symbol": sym, "qty": shares, "held_qty": 0,
                         "cost_basis": shares * refs[sym], "realized_pnl": 0}
                        for a in part
                    ]  # fmt: skip
                    ledger += [
                        {"account_id": a, "kind": "deposit", "symbol": sym, "cash_available_delta": 0,
                         "cash_held_delta": 0, "qty_delta": shares, "held_qty_delta": 0, "created_at": now}
                        for a in part
                    ]  # fmt: skip
                if shares:
                    conn.execute(insert(Position), positions)
                conn.execute(insert(LedgerEntry), ledger)
    finally:
        engine.dispose()
    return [(u, a, e) for u, a, e in zip(user_ids, account_ids, emails, strict=True)]


def mint_tokens(rows: Sequence[tuple[int, int, str]], secret: str, hours: float = 6.0) -> list[BenchAccount]:
    from api.security import Principal, create_access_token

    now = datetime.now(UTC)
    ttl = timedelta(hours=hours)
    return [
        BenchAccount(i, a, u, e, create_access_token(Principal(u, a), secret, now, ttl))
        for i, (u, a, e) in enumerate(rows)
    ]


async def login_tokens(
    url: str, rows: Sequence[tuple[int, int, str]], concurrency: int = 4
) -> list[BenchAccount]:
    """Without the secret: log every account in over HTTP (argon2 verify on the server: slow)."""
    import httpx

    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one(i: int, row: tuple[int, int, str]) -> BenchAccount:
            async with sem:
                r = await client.post(f"{API}/auth/login", json={"email": row[2], "password": BENCH_PASSWORD})
                r.raise_for_status()
                return BenchAccount(i, row[1], row[0], row[2], r.json()["access_token"])

        return list(await asyncio.gather(*(one(i, row) for i, row in enumerate(rows))))


def reference_prices(database_url: str, symbols: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """symbol -> (reference, band low, band high) in cents."""
    from sqlalchemy import select

    from schema.db import make_engine
    from schema.intake import Rules
    from schema.models import Instrument

    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Instrument).where(Instrument.symbol.in_(symbols))).all()
    finally:
        engine.dispose()
    out = {}
    for row in rows:
        rules = Rules.of(row)  # type: ignore[arg-type]
        out[row.symbol] = (row.reference_price, rules.band_low, rules.band_high)
    return out


# ---------------------------------------------------------------------------------------------- HTTP
class ServerDisconnectedError(ConnectionError):
    """The server closed the connection before the whole response arrived."""


_Result = tuple[int, bytes, bool] | BaseException  # (status, body, keep-alive), or what failed
_Answer = tuple[int, Any] | BaseException  # (status, parsed JSON body or None), or what failed
_Job = tuple[bytes, float, Callable[[_Answer], None]]  # (request bytes, time.monotonic() deadline, callback)


class _Conn(asyncio.Protocol):
    """One keep-alive connection as an asyncio Protocol: the response is parsed in data_received and its
    callback gets (status, body, keep-alive) at once. A StreamReader costs a coroutine resumption and a
    future per readuntil and per readexactly, and the generator's CPU is taken from the server it loads."""

    __slots__ = ("transport", "idle_since", "deadline", "closed", "lost", "_buf", "_done")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.deadline = 0.0  # time.monotonic() by which the exchange in flight must be answered
        self.closed = False  # the server closed it, or it failed
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._done: Callable[[_Result], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._done is not None:
            self._parse(eof=False)

    def eof_received(self) -> bool:
        self.closed = True
        if self._done is not None:
            self._parse(eof=True)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is not None:
            self._parse(eof=True)
        if not self.lost.done():
            self.lost.set_result(None)

    def send(self, msg: bytes, deadline: float, done: Callable[[_Result], None]) -> None:
        """Send one request; `done` is called once, with (status, body, keep-alive) or the exception."""
        if self._buf:  # bytes nobody asked for: the connection's state is unknown
            done(ServerDisconnectedError(f"unexpected bytes before a request: {self._buf[:40]!r}"))
            return
        assert self.transport is not None
        self._done, self.deadline = done, deadline
        # no drain: one small request per connection, so the write buffer never nears its high-water mark
        self.transport.write(msg)

    def fail(self, exc: BaseException) -> None:
        """Give up on the exchange in flight (a timeout): the connection is closed, never reused."""
        done, self._done = self._done, None
        self.close()
        if done is not None:
            done(exc)

    def _parse(self, *, eof: bool) -> None:
        done = self._done
        assert done is not None
        try:
            response = self._response(eof=eof)
        except ServerDisconnectedError as exc:
            self._done = None
            done(exc)
            return
        if response is None:  # more bytes to come, unless the server has closed
            if eof:
                self._done = None
                done(ServerDisconnectedError("the server closed the connection mid-response"))
            return
        status, data, keep, rest = response
        del self._buf[:rest]
        self._done = None
        done((status, data, keep))

    def _response(self, *, eof: bool) -> tuple[int, bytes, bool, int] | None:
        """(status, body, keep-alive, where it ends in the buffer), or None while part of it is missing."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head, start = bytes(buf[: end + 4]), end + 4
        if not head.startswith(b"HTTP/1."):
            raise ServerDisconnectedError(f"not an HTTP/1.x response: {head[:40]!r}")
        status = int(head[9:12])
        lower = head.lower()
        keep = head[7] == 0x31 and b"\r\nconnection: close" not in lower  # HTTP/1.1 and no close
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            n = int(lower[at + 17 : lower.find(b"\r\n", at + 17)])
            if len(buf) - start < n:
                return None
            return status, bytes(buf[start : start + n]), keep, start + n
        if b"\r\ntransfer-encoding: chunked" in lower:
            parsed = _parse_chunked(buf, start)
            return None if parsed is None else (status, parsed[0], keep, parsed[1])
        if status < 200 or status in (204, 304):
            return status, b"", keep, start
        # the body ends when the server closes
        return (status, bytes(buf[start:]), False, len(buf)) if eof else None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _parse_chunked(buf: bytearray, at: int) -> tuple[bytes, int] | None:
    """A whole chunked body from buf[at:] and where it ends, or None while part of it has yet to arrive."""
    parts = []
    while True:
        eol = buf.find(b"\r\n", at)
        if eol < 0:
            return None
        size = int(bytes(buf[at:eol]).split(b";", 1)[0], 16)
        at = eol + 2
        if size == 0:
            while True:  # trailers, up to the empty line
                eol = buf.find(b"\r\n", at)
                if eol < 0:
                    return None
                line_empty, at = eol == at, eol + 2
                if line_empty:
                    return b"".join(parts), at
        if len(buf) < at + size + 2:
            return None
        parts.append(bytes(buf[at : at + size]))
        at += size + 2


class RawHttpPool:
    """`--http raw`: a minimal HTTP/1.1 keep-alive client on asyncio Protocols, because the generator shares
    the cores with the server it loads and must cost it as little CPU as possible (`python -m
    benchmarks.client_cpu` measures it against aiohttp and httpx).

    `connections` connections shared by every caller, one request in flight on each (no pipelining): a
    request takes an idle connection, opens one while under the limit, or queues for the next one released.
    It sends one pre-assembled buffer (request line, Host, Authorization, JSON body) and parses only the
    status line, Content-Length (chunked and read-to-close as fallbacks) and Connection: close. A failed
    exchange closes its connection and fails (the caller counts a transport error); the next request opens
    a new one. Idle connections the server has closed, or idle longer than `idle_s` (below uvicorn's 5 s
    keep-alive timeout, so a request never races the server's close of an idle connection), are replaced
    silently, as the aiohttp and httpx pools do. `timeout` bounds the whole request, the wait for a
    connection included (aiohttp's `total`), checked every `_SWEEP_S`.

    `send` takes a callback and is what the service bench's open loop uses: no task, future or timeout
    context per request (`python -m benchmarks.client_cpu --kinds raw,raw-await`: a third less CPU per
    request). `request` is the same exchange awaited."""

    _SWEEP_S = 0.05

    def __init__(self, url: str, connections: int, timeout: float = 60.0, idle_s: float = 4.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--http raw speaks plain http:// only, not {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.timeout, self.idle_s = timeout, idle_s
        self.max = max(1, connections)
        self.opened = 0  # connections opened so far (reconnects included)
        self._prefix = parts.path.rstrip("/")  # like base_url in httpx/aiohttp
        self._host = f"Host: {parts.netloc}\r\n".encode()
        self._auth: dict[str, bytes] = {}  # token -> its encoded Authorization line
        self._idle: list[_Conn] = []  # LIFO: the most recently used connection is the warmest
        self._busy: set[_Conn] = set()
        self._waiters: deque[_Job] = deque()  # requests queued for a connection, oldest first
        self._open = 0  # connections open or being opened, idle or in use
        self._connecting: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def _message(self, method: str, path: str, token: str, payload: bytes) -> bytes:
        auth = self._auth.get(token)
        if auth is None:
            auth = self._auth[token] = b"Authorization: Bearer " + token.encode() + b"\r\n"
        start = f"{method} {self._prefix}{path} HTTP/1.1\r\n".encode()
        if not payload:
            return b"".join((start, self._host, auth, b"\r\n"))
        length = b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
        return b"".join((start, self._host, auth, length, payload))

    def send(self, method: str, path: str, token: str, body: Any, done: Callable[[_Answer], None]) -> None:
        """Send a request; `done` is called once, with (status, parsed JSON body or None) or the exception
        (a transport error, TimeoutError)."""
        payload = b"" if body is None else orjson.dumps(body)
        job = (self._message(method, path, token, payload), time.monotonic() + self.timeout, done)
        conn = self._idle_conn()
        if conn is not None:
            self._exchange(conn, job)
        elif self._open < self.max:
            self._open += 1
            self._connect(job)
        else:
            self._waiters.append(job)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self._SWEEP_S, self._sweep)

    async def request(self, i: int, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        """(status, parsed JSON body or None), the shape of HttpPool.request; `i` is unused (one pool)."""
        fut: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()

        def done(answer: _Answer) -> None:
            if fut.done():  # the caller was canceled; the exchange itself completed normally
                return
            if isinstance(answer, BaseException):
                fut.set_exception(answer)
            else:
                fut.set_result(answer)

        self.send(method, path, token, body, done)
        return await fut

    def _idle_conn(self) -> _Conn | None:
        idle = self._idle
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if now - conn.idle_since < self.idle_s and not conn.closed:
                    return conn
                conn.close()  # closed (EOF or reset) by the server while idle, or about to be
                self._open -= 1
        return None

    def _exchange(self, conn: _Conn, job: _Job) -> None:
        msg, deadline, done = job
        self._busy.add(conn)
        conn.send(msg, deadline, functools.partial(self._finished, conn, done))

    def _finished(self, conn: _Conn, done: Callable[[_Answer], None], result: _Result) -> None:
        self._busy.discard(conn)
        if isinstance(result, BaseException):
            conn.close()  # its state is unknown (half a response may be in flight): never reuse it
            self._release(None)
            done(result)
            return
        status, data, keep = result
        if keep and not conn.closed:
            self._release(conn)
        else:
            conn.close()
            self._release(None)
        try:
            done((status, orjson.loads(data) if data else None))
        except orjson.JSONDecodeError:
            done((status, None))

    def _release(self, conn: _Conn | None) -> None:
        """A finished connection, or (None) the slot of one that was closed, to the oldest queued request."""
        if self._waiters:
            job = self._waiters.popleft()
            if conn is None:
                self._connect(job)
            else:
                self._exchange(conn, job)
        elif conn is None:
            self._open -= 1
        else:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)

    def _connect(self, job: _Job) -> None:
        """Open a connection for `job` in the slot already counted in `_open`."""
        task = asyncio.get_running_loop().create_task(self._open_for(job))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _open_for(self, job: _Job) -> None:
        try:
            async with asyncio.timeout(max(0.0, job[1] - time.monotonic())):
                _, conn = await asyncio.get_running_loop().create_connection(_Conn, self.host, self.port)
        except Exception as exc:  # noqa: BLE001 - refused or timed out: the request fails with it
            self._release(None)
            job[2](exc)
            return
        except BaseException:
            self._release(None)
            raise
        self.opened += 1
        self._exchange(conn, job)

    def _sweep(self) -> None:
        """Fail what is past its deadline: an exchange (its connection is closed, its slot passed on) or a
        request still queued for a connection."""
        self._sweeper = None
        now = time.monotonic()
        for conn in [c for c in self._busy if c.deadline <= now]:
            conn.fail(TimeoutError())
        waiters = self._waiters
        while waiters and waiters[0][1] <= now:  # deadlines are in send order (one timeout for all)
            waiters.popleft()[2](TimeoutError())
        if self._busy or waiters or self._connecting:
            self._sweeper = asyncio.get_running_loop().call_later(self._SWEEP_S, self._sweep)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        for conn in idle:
            await conn.lost
        self._open -= len(idle)


class HttpPool:
    """C async HTTP clients of a library (`--http httpx|aiohttp`) sharing `connections` connections."""

    def __init__(self, url: str, clients: int, connections: int, kind: str = "httpx") -> None:
        if kind not in ("httpx", "aiohttp"):
            raise ValueError(f"HttpPool is httpx or aiohttp, not {kind!r} (http_pool() makes every kind)")
        self.url, self.kind = url, kind
        self.n = max(1, clients)
        per = max(1, connections // self.n)
        if kind == "httpx":
            import httpx

            limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
            self._clients: list[Any] = [
                httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(60.0))
                for _ in range(self.n)
            ]
        else:
            import aiohttp

            self._clients = [
                aiohttp.ClientSession(
                    base_url=url,
                    connector=aiohttp.TCPConnector(limit=per),
                    timeout=aiohttp.ClientTimeout(total=60),
                )
                for _ in range(self.n)
            ]

    async def request(self, i: int, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        client = self._clients[i % self.n]
        headers = {"Authorization": f"Bearer {token}"}
        if self.kind == "httpx":
            r = await client.request(method, path, json=body, headers=headers)
            try:
                return r.status_code, r.json()
            except ValueError:
                return r.status_code, None
        async with client.request(method, path, json=body, headers=headers) as resp:
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:
                return resp.status, None

    async def close(self) -> None:
        for c in self._clients:
            if self.kind == "httpx":
                await c.aclose()
            else:
                await c.close()


HTTP_KINDS = ("raw", "aiohttp", "httpx")
LOOPS = ("uvloop", "asyncio")


def run_loop(coro: Coroutine[Any, Any, T], loop: str = "uvloop") -> T:
    """Run the generator on uvloop (default: its C event loop costs less CPU per request than asyncio's,
    and the generator shares the cores with the server) or on asyncio's own loop."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    if loop != "asyncio":
        raise ValueError(f"loop is uvloop or asyncio, not {loop!r}")
    return asyncio.run(coro)


def http_pool(url: str, clients: int, connections: int, kind: str = "raw") -> HttpPool | RawHttpPool:
    """The bench's HTTP client of a kind; all have request(i, method, path, token, body) and close()."""
    if kind == "raw":
        return RawHttpPool(url, connections)  # one shared pool: `clients` only splits the library pools
    return HttpPool(url, clients, connections, kind)


# ---------------------------------------------------------------------------------------------- listeners
class Listeners:
    """Socket.IO clients in the user rooms of the sampled accounts; they timestamp order and fill events."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        self.clients: list[Any] = []
        self.first_event: dict[int, tuple[float, str]] = {}  # order id -> (time, event)
        self.canceled_at: dict[int, float] = {}
        self.fills: dict[tuple[int, int], tuple[float, str, int]] = {}  # (trade, order) -> (t, liq, account)
        self.events: Counter[str] = Counter()
        self.foreign = 0  # events of other runs (a shared Redis) that were ignored
        self.connect_errors: Counter[str] = Counter()

    async def connect(self, accounts: Sequence[BenchAccount], concurrency: int = 25) -> None:
        import socketio

        sem = asyncio.Semaphore(concurrency)

        async def one(acct: BenchAccount) -> None:
            client = socketio.AsyncClient(reconnection=False)
            self._wire(client, acct.account_id)
            async with sem:
                try:
                    await client.connect(
                        self.url, transports=["websocket"], auth={"token": acct.token}, wait_timeout=30
                    )
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    self.connect_errors[type(exc).__name__] += 1
                    return
            self.clients.append(client)

        await asyncio.gather(*(one(a) for a in accounts))

    def _wire(self, client: Any, account_id: int) -> None:
        perf = time.perf_counter
        prefix = self.prefix

        async def on_order(data: dict[str, Any]) -> None:
            t = perf()
            order = data.get("order") or {}
            if not str(order.get("client_order_id", "")).startswith(prefix):
                self.foreign += 1
                return
            oid, event = int(order["id"]), str(data.get("event"))
            self.events[event] += 1
            if oid not in self.first_event:
                self.first_event[oid] = (t, event)
            if event == "canceled" and oid not in self.canceled_at:
                self.canceled_at[oid] = t

        async def on_fill(data: dict[str, Any]) -> None:
            t = perf()
            key = (int(data["trade_id"]), int(data["order_id"]))
            self.events["fill-event"] += 1
            self.fills.setdefault(key, (t, str(data.get("liquidity")), account_id))

        client.on("order", on_order)
        client.on("fill", on_fill)

    async def close(self) -> None:
        await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)
        self.clients.clear()


# ---------------------------------------------------------------------------------------------- load
@dataclass
class Segment:
    """What one offered rate produced (times are perf_counter seconds)."""

    rate: float | None
    t0: float = 0.0
    t_last_send: float = 0.0
    t_drained: float | None = None
    sends: list[float] = field(default_factory=list)  # scheduled - t0
    posts: int = 0
    accepted: int = 0
    rejected: int = 0
    transport_errors: int = 0
    cancels: int = 0
    cancels_accepted: int = 0
    cancels_skipped: int = 0  # the order they target was never accepted
    errors: Counter[str] = field(default_factory=Counter)
    ack_ms: list[float] = field(default_factory=list)
    ack_at: list[float] = field(default_factory=list)  # response time - t0
    cancel_ack_ms: list[float] = field(default_factory=list)
    send_lag_ms: list[float] = field(default_factory=list)  # actual send - scheduled
    order_ids: list[int] = field(default_factory=list)
    throttled_s: float = 0.0
    truncated: bool = False


class LoadRun:
    """Runs segments (one per offered rate) over one deployment, accounts and listener set."""

    def __init__(
        self,
        dep: Deployment,
        accounts: Sequence[BenchAccount],
        listened: set[int],
        prices: dict[str, tuple[int, int, int]],
        pool: HttpPool | RawHttpPool,
        listeners: Listeners | None,
        run_id: str,
        start_mid: int,
        max_inflight: int = 4000,
    ) -> None:
        self.dep, self.accounts, self.listened = dep, list(accounts), listened
        self.prices, self.pool, self.listeners = prices, pool, listeners
        self.run_id, self.start_mid, self.max_inflight = run_id, start_mid, max_inflight
        self.placed: dict[int, asyncio.Future[int | None]] = {}  # flow order id -> server order id
        self.owner: dict[int, BenchAccount] = {}  # flow order id -> account
        self.sched_of: dict[int, float] = {}  # server order id -> scheduled send (perf_counter)
        self.cancel_sched: dict[int, float] = {}
        self.account_of_order: dict[int, int] = {}  # server order id -> account id
        self._inflight: set[asyncio.Task[None]] = set()
        self._pending = 0  # messages sent through callbacks (`_dispatch`) and not answered yet
        self._drained: asyncio.Future[None] | None = None

    def _account(self, flow_oid: int) -> BenchAccount:
        acct = self.accounts[(flow_oid * 2654435761) % len(self.accounts)]  # spread, deterministic
        return acct

    def _body(self, m: Message) -> dict[str, Any]:
        ref, lo, hi = self.prices[m.symbol]
        side = "buy" if m.side == "B" else "sell"
        body: dict[str, Any] = {"symbol": m.symbol, "side": side, "qty": str(m.qty),
                                "client_order_id": f"{self.run_id}-{m.order_id}"}  # fmt: skip
        if m.kind == LIMIT:
            price = min(hi, max(lo, ref + (m.price - self.start_mid)))
            body.update(type="limit", time_in_force="gtc", limit_price=f"{price // 100}.{price % 100:02d}")
        else:
            body.update(type="market", time_in_force="ioc")
        return body

    async def _place(self, seg: Segment, m: Message, sched: float) -> None:
        acct = self.owner[m.order_id]
        seg.send_lag_ms.append((time.perf_counter() - sched) * 1000)
        try:
            answer: _Answer = await self.pool.request(
                acct.index, "POST", f"{API}/orders", acct.token, self._body(m)
            )
        except Exception as exc:  # noqa: BLE001 - counted by type
            answer = exc
        except BaseException:
            self._placed_as(m.order_id, None)
            raise
        self._placed_answer(seg, m, sched, acct, answer)

    def _send_place(self, seg: Segment, m: Message, sched: float) -> None:
        """`_place` for a pool that takes callbacks (RawHttpPool.send): no task per message."""
        assert isinstance(self.pool, RawHttpPool)
        acct = self.owner[m.order_id]
        seg.send_lag_ms.append((time.perf_counter() - sched) * 1000)
        self._pending += 1

        def done(answer: _Answer) -> None:
            self._placed_answer(seg, m, sched, acct, answer)
            self._pending_done()

        self.pool.send("POST", f"{API}/orders", acct.token, self._body(m), done)

    def _placed_answer(
        self, seg: Segment, m: Message, sched: float, acct: BenchAccount, answer: _Answer
    ) -> None:
        server_id: int | None = None
        if isinstance(answer, BaseException):
            seg.transport_errors += 1
            seg.errors[f"transport:{type(answer).__name__}"] += 1
        else:
            status, body = answer
            now = time.perf_counter()
            seg.ack_ms.append((now - sched) * 1000)
            seg.ack_at.append(now - seg.t0)
            if status in (200, 201) and isinstance(body, dict) and "id" in body:
                seg.accepted += 1
                server_id = int(body["id"])
                seg.order_ids.append(server_id)
                self.sched_of[server_id] = sched
                self.account_of_order[server_id] = acct.account_id
            else:
                seg.rejected += 1
                code = body.get("code") if isinstance(body, dict) else None
                seg.errors[str(code or f"HTTP_{status}")] += 1
        self._placed_as(m.order_id, server_id)

    def _placed_as(self, flow_oid: int, server_id: int | None) -> None:
        fut = self.placed[flow_oid]
        if not fut.done():
            fut.set_result(server_id)

    async def _cancel(self, seg: Segment, m: Message, sched: float) -> None:
        fut = self.placed.get(m.order_id)
        server_id = None if fut is None else await fut
        if server_id is None:
            seg.cancels_skipped += 1
            return
        acct = self.owner[m.order_id]
        path = self._cancel_sent(seg, server_id, sched)
        try:
            answer: _Answer = await self.pool.request(acct.index, "DELETE", path, acct.token)
        except Exception as exc:  # noqa: BLE001 - counted by type
            answer = exc
        self._cancel_answer(seg, sched, answer)

    def _send_cancel(self, seg: Segment, m: Message, sched: float) -> None:
        """`_cancel` for a pool that takes callbacks: sent when its order is answered (now, if it is)."""
        fut = self.placed.get(m.order_id)
        if fut is None:
            seg.cancels_skipped += 1
            return
        self._pending += 1  # from now: the segment waits for a cancel whose order is still in flight

        def send(fut: asyncio.Future[int | None]) -> None:
            server_id = fut.result()
            if server_id is None:
                seg.cancels_skipped += 1
                self._pending_done()
                return
            assert isinstance(self.pool, RawHttpPool)

            def done(answer: _Answer) -> None:
                self._cancel_answer(seg, sched, answer)
                self._pending_done()

            path = self._cancel_sent(seg, server_id, sched)
            self.pool.send("DELETE", path, self.owner[m.order_id].token, None, done)

        if fut.done():
            send(fut)
        else:
            fut.add_done_callback(send)

    def _cancel_sent(self, seg: Segment, server_id: int, sched: float) -> str:
        seg.cancels += 1
        self.cancel_sched[server_id] = sched
        return f"{API}/orders/{server_id}"

    def _cancel_answer(self, seg: Segment, sched: float, answer: _Answer) -> None:
        if isinstance(answer, BaseException):
            seg.errors[f"transport:{type(answer).__name__}"] += 1
            return
        status, body = answer
        seg.cancel_ack_ms.append((time.perf_counter() - sched) * 1000)
        if status == 202:
            seg.cancels_accepted += 1
        else:
            code = body.get("code") if isinstance(body, dict) else None
            seg.errors[f"cancel:{code or f'HTTP_{status}'}"] += 1

    def _new_order(self, seg: Segment, m: Message) -> None:
        seg.posts += 1
        self.placed[m.order_id] = asyncio.get_running_loop().create_future()

    def _handler(self, seg: Segment, m: Message, sched: float) -> Any:
        if m.kind == CANCEL:
            return self._cancel(seg, m, sched)
        self._new_order(seg, m)
        return self._place(seg, m, sched)

    def _dispatch(self, seg: Segment, m: Message, sched: float) -> None:
        """`_handler` for a pool that takes callbacks."""
        if m.kind == CANCEL:
            self._send_cancel(seg, m, sched)
        else:
            self._new_order(seg, m)
            self._send_place(seg, m, sched)

    @property
    def inflight(self) -> int:
        return len(self._inflight) + self._pending

    def _pending_done(self) -> None:
        self._pending -= 1
        if self._pending == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def run_segment(
        self, messages: Sequence[Message], rate: float | None, max_seconds: float, progress: Any = None,
        flat_workers: int = 64,
    ) -> Segment:  # fmt: skip
        seg = Segment(rate)
        # cancels need their target's owner even if the target was placed in an earlier segment
        for m in messages:
            if m.kind != CANCEL and m.order_id not in self.owner:
                self.owner[m.order_id] = self._account(m.order_id)
        seg.t0 = time.perf_counter() + 0.05
        deadline = seg.t0 + max_seconds
        if rate is None:
            await self._flat_out(seg, messages, deadline, flat_workers, progress)
        elif isinstance(self.pool, RawHttpPool):
            await self._timed_sends(seg, messages, deadline, progress)
        else:
            await self._open_loop(seg, messages, deadline, progress)
        seg.t_last_send = time.perf_counter()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._pending:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained
            self._drained = None
        return seg

    def _spawn(self, seg: Segment, m: Message, sched: float) -> None:
        task = asyncio.create_task(self._handler(seg, m, sched))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _timed_sends(
        self, seg: Segment, messages: Sequence[Message], deadline: float, progress: Any
    ) -> None:
        """The open loop on a pool that takes callbacks: each message is sent by a timer callback at its
        scheduled time, with no task, sleep or future of its own (the generator's CPU is the server's)."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()
        perf = time.perf_counter
        t0, to_loop = seg.t0, loop.time() - perf()
        todo = iter(enumerate(messages))

        def fire(i: int, m: Message, throttled_since: float | None = None) -> None:
            try:
                now = perf()
                if now > deadline:
                    seg.truncated = True
                    finished.set_result(None)
                    return
                if self.inflight >= self.max_inflight:  # safety valve; reported, never silent
                    loop.call_later(0.001, fire, i, m, throttled_since or now)
                    return
                if throttled_since is not None:
                    seg.throttled_s += now - throttled_since
                seg.sends.append(m.t)
                self._dispatch(seg, m, t0 + m.t)
                if progress is not None and i % 64 == 0:
                    progress(i + 1, seg)
                following = next(todo, None)
                if following is None:
                    finished.set_result(None)
                else:
                    loop.call_at(t0 + following[1].t + to_loop, fire, *following)
            except BaseException as exc:  # a bug here must end the segment, not hang it
                if not finished.done():
                    finished.set_exception(exc)
                raise

        first = next(todo, None)
        if first is not None:
            loop.call_at(t0 + first[1].t + to_loop, fire, *first)
            await finished
        if progress is not None:
            progress(len(seg.sends), seg)

    async def _open_loop(
        self, seg: Segment, messages: Sequence[Message], deadline: float, progress: Any
    ) -> None:
        perf = time.perf_counter
        t0 = seg.t0
        for i, m in enumerate(messages):
            target = t0 + m.t
            delay = target - perf()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            if perf() > deadline:
                seg.truncated = True
                break
            while self.inflight >= self.max_inflight:  # safety valve; reported, never silent
                t = perf()
                await asyncio.sleep(0.001)
                seg.throttled_s += perf() - t
            seg.sends.append(target - t0)
            self._spawn(seg, m, target)
            if progress is not None and i % 64 == 0:
                progress(i + 1, seg)
        if progress is not None:
            progress(len(seg.sends), seg)

    async def _flat_out(
        self, seg: Segment, messages: Sequence[Message], deadline: float, workers: int, progress: Any
    ) -> None:
        it = iter(enumerate(messages))
        perf = time.perf_counter

        async def worker() -> None:
            for i, m in it:
                if perf() > deadline:
                    seg.truncated = True
                    return
                now = perf()
                seg.sends.append(now - seg.t0)
                if m.kind != CANCEL:
                    self._new_order(seg, m)
                    await self._place(seg, m, now)
                else:
                    await self._cancel(seg, m, now)
                if progress is not None and i % 64 == 0:
                    progress(i + 1, seg)

        await asyncio.gather(*(worker() for _ in range(workers)))


# ---------------------------------------------------------------------------------------------- SQL checks
def unsettled_count(database_url: str, order_ids: Sequence[int]) -> int:
    """Orders of the run that SQL still holds as new and unsequenced (the matcher has not settled them)."""
    from sqlalchemy import func, select

    from schema.db import make_engine
    from schema.models import Order

    if not order_ids:
        return 0
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            total = 0
            ids = list(order_ids)
            for lo in range(0, len(ids), 20_000):
                total += (
                    conn.scalar(
                        select(func.count())
                        .select_from(Order)
                        .where(
                            Order.id.in_(ids[lo : lo + 20_000]), Order.status == "new", Order.seq.is_(None)
                        )
                    )
                    or 0
                )
            return int(total)
    finally:
        engine.dispose()


def sql_reconcile(
    database_url: str, account_ids: Sequence[int], listened: set[int]
) -> tuple[dict[str, int], set[tuple[int, int]]]:
    """Orders by status and trades of the run's accounts; and the (trade id, order id) of every fill the
    listened accounts got, i.e. the fill events their listeners must have heard."""
    from sqlalchemy import func, or_, select

    from schema.db import make_engine
    from schema.models import Order, Trade

    engine = make_engine(database_url, pool_size=1)
    ids = list(account_ids)
    lst = list(listened)
    try:
        with engine.connect() as conn:
            by_status = dict(
                conn.execute(
                    select(Order.status, func.count()).where(Order.account_id.in_(ids)).group_by(Order.status)
                ).all()
            )
            trades = conn.scalar(
                select(func.count())
                .select_from(Trade)
                .where(or_(Trade.buyer_account_id.in_(ids), Trade.seller_account_id.in_(ids)))
            )
            fills = {(int(t), int(o)) for t, o in conn.execute(
                select(Trade.id, Trade.buy_order_id).where(Trade.buyer_account_id.in_(lst)))}  # fmt: skip
            fills |= {(int(t), int(o)) for t, o in conn.execute(
                select(Trade.id, Trade.sell_order_id).where(Trade.seller_account_id.in_(lst)))}  # fmt: skip
    finally:
        engine.dispose()
    out = {f"sql_orders_{k}": int(v) for k, v in sorted(by_status.items())}
    out["sql_orders"] = int(sum(by_status.values()))
    out["sql_trades"] = int(trades or 0)
    out["sql_fills_of_listened_accounts"] = len(fills)
    return out, fills


def _postgres_cpu_s(database_url: str | None) -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL backend connected to this database (Linux /proc)."""
    if not database_url or not database_url.startswith("postgresql"):
        return {}
    name = database_url.rsplit("/", 1)[-1].split("?")[0]
    out: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("postgres:") and f" {name} " in cmd:
            out[int(entry)] = _proc_cpu_s(int(entry))
    return out


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a process and its descendants (Linux /proc), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    stack = [pid]
    seen: set[int] = set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


# ---------------------------------------------------------------------------------------------- orchestration
@dataclass
class ServiceOptions:
    url: str | None = None
    launch: Literal["embedded", "pg"] | None = None
    api_procs: int = 1
    matchers: int = 1
    database_url: str | None = None
    redis_url: str | None = None
    pg_admin_url: str = PG_ADMIN_URL
    secret_key: str | None = None
    accounts: int = 100
    listeners: int | None = None  # None: every account
    cash_cents: int = 1_000_000_00
    shares: int = 100_000
    clients: int = 8
    connections: int = 128
    http: str = "raw"
    loop: str = "uvloop"
    rates: tuple[float | None, ...] = (None,)
    duration_s: float | None = None  # per rate: n = rate * duration
    flow: FlowParams = field(default_factory=FlowParams)
    flow_file: str | None = None
    max_seconds: float = 120.0
    drain_seconds: float = 30.0
    out_dir: Path = OUT_DIR
    keep: bool = False
    progress: bool = True
    plot: bool = True
    max_inflight: int = 4000
    run_id: str = ""
    # BOURSE_* settings for the launched servers (e.g. BOURSE_INTAKE_BATCH_MAX=0 for an A/B in one run).
    server_env: dict[str, str] = field(default_factory=dict)
    # The generator's cyclic GC kept out of the measurement (benchmarks.gc_pauses): the set-up heap frozen
    # before the load, and no collection during a segment. For a bench process of its own, not a test
    # process, whose later reference cycles a freeze would keep.
    quiet_gc: bool = False


def _build_flow(opts: ServiceOptions) -> tuple[list[list[Message]], dict[str, Any]]:
    """One flow split into one segment per offered rate, each retimed at its rate."""
    counts: list[int] = []
    for rate in opts.rates:
        if rate is not None and opts.duration_s is not None:
            counts.append(max(1, int(rate * opts.duration_s)))
        else:
            counts.append(opts.flow.n)
    total = sum(counts)
    if opts.flow_file:
        msgs = generator.load_csv(opts.flow_file, opts.flow.symbols[0], limit=total)
        flow_meta: dict[str, Any] = {"file": opts.flow_file, "messages": len(msgs)}
    else:
        params = FlowParams(**{**opts.flow.__dict__, "n": total, "rate": None})
        msgs = generator.generate(params)
        flow_meta = params.as_dict()
    flow_meta["stats"] = generator.stats(msgs)
    segments, lo = [], 0
    for rate, count in zip(opts.rates, counts, strict=True):
        part = msgs[lo : lo + count]
        lo += count
        segments.append(generator.retime(part, rate, opts.flow.arrivals, opts.flow.seed))
    return segments, flow_meta


def run_service(opts: ServiceOptions) -> list[dict[str, Any]]:
    """Launch (or attach), seed, run every offered rate, reconcile with SQL; one result per rate."""
    run_id = opts.run_id or f"{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
    opts.run_id = run_id
    out_dir = Path(opts.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    segments, flow_meta = _build_flow(opts)
    symbols = tuple(opts.flow.symbols)
    if opts.launch is not None:
        dep = launch(
            opts.launch, symbols=symbols, api_procs=opts.api_procs, matchers=opts.matchers,
            database_url=opts.database_url, redis_url=opts.redis_url, pg_admin_url=opts.pg_admin_url,
            log_dir=out_dir / f"logs-{run_id}", keep=opts.keep, extra_env=opts.server_env,
        )  # fmt: skip
    else:
        if opts.url is None or opts.database_url is None:
            raise SystemExit("--url needs --database-url (accounts are seeded and results reconciled in SQL)")
        dep = Deployment(opts.url.rstrip("/"), opts.database_url, opts.redis_url, opts.secret_key, "url")
    try:
        results = run_loop(_run(opts, dep, segments, flow_meta, run_id), opts.loop)
    finally:
        dep.close()
    if opts.plot:  # after the load: matplotlib's import alone would stall the listeners' event loop
        for result in results:
            png = report.plot(result, Path(result["path"]).with_suffix(".png"))
            if png is not None:
                print(f"plot: {png}", file=sys.stderr)
    return results


async def _run(
    opts: ServiceOptions,
    dep: Deployment,
    segments: list[list[Message]],
    flow_meta: dict[str, Any],
    run_id: str,
) -> list[dict[str, Any]]:
    from rich.console import Console

    console = Console(stderr=True)
    assert dep.database_url is not None
    symbols = tuple(opts.flow.symbols)
    t = time.perf_counter()
    rows = await asyncio.to_thread(
        seed_accounts, dep.database_url, run_id, opts.accounts, symbols,
        cash_cents=opts.cash_cents, shares=opts.shares,
    )  # fmt: skip
    accounts = mint_tokens(rows, dep.secret_key) if dep.secret_key else await login_tokens(dep.url, rows)
    console.print(f"seeded {len(accounts):,} accounts in {time.perf_counter() - t:.1f}s (run {run_id})")
    n_listen = len(accounts) if opts.listeners is None else min(opts.listeners, len(accounts))
    listened_accounts = accounts[:n_listen]
    listened = {a.account_id for a in listened_accounts}
    listeners = Listeners(dep.url, f"{run_id}-") if n_listen else None
    if listeners is not None:
        t = time.perf_counter()
        await listeners.connect(listened_accounts)
        console.print(
            f"{len(listeners.clients):,} Socket.IO listeners connected in {time.perf_counter() - t:.1f}s"
            + (f" (errors: {dict(listeners.connect_errors)})" if listeners.connect_errors else "")
        )
    prices = await asyncio.to_thread(reference_prices, dep.database_url, symbols)
    pool = http_pool(dep.url, opts.clients, opts.connections, opts.http)
    # warm-up (not measured): open every connection and touch the authenticated path once per client
    warm = [
        pool.request(i, "GET", f"{API}/account", accounts[i % len(accounts)].token)
        for i in range(opts.connections)
    ]
    await asyncio.gather(*warm, return_exceptions=True)
    # The set-up heap (flow, accounts, tokens) out of the generator's full collections, as the servers do
    # theirs: one paused the generator ~110 ms mid-run, and every request in flight measured it.
    if opts.quiet_gc:
        from schema.gc_tuning import freeze_startup_heap

        freeze_startup_heap()
    runner = LoadRun(
        dep, accounts, listened, prices, pool, listeners, run_id, opts.flow.start_mid, opts.max_inflight
    )
    results: list[dict[str, Any]] = []
    try:
        for rate, msgs in zip(opts.rates, segments, strict=True):
            result = await _one_rate(opts, dep, runner, rate, msgs, flow_meta, run_id, console)
            results.append(result)
    finally:
        await pool.close()
        if listeners is not None:
            await listeners.close()
    return results


async def _one_rate(
    opts: ServiceOptions,
    dep: Deployment,
    runner: LoadRun,
    rate: float | None,
    msgs: list[Message],
    flow_meta: dict[str, Any],
    run_id: str,
    console: Any,
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    assert dep.database_url is not None
    label = "flat out" if rate is None else f"{rate:,.0f}/s offered"
    settings = {
        "mode": dep.mode, "url": dep.url, "api_procs": dep.api_procs, "matchers": dep.matchers,
        "symbols": list(opts.flow.symbols), "accounts": len(runner.accounts),
        "listened_accounts": len(runner.listened),
        "offered_rate": rate, "clients": opts.clients, "connections": opts.connections, "http": opts.http,
        "loop": opts.loop,
        "database": "postgresql" if dep.database_url.startswith("postgresql") else "sqlite",
        "cash_per_account": opts.cash_cents / 100, "shares_per_symbol": opts.shares, "run_id": run_id,
        "server_env": opts.server_env,
    }  # fmt: skip
    seg_meta = meta.metadata("service", settings=settings, flow=flow_meta)
    # quiet: with the set-up heap frozen alone, a young collection still took up to 9 ms, an older one 31
    gc_pauses = GcPauses(quiet=opts.quiet_gc)
    gc_pauses.start()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu0 = {name: _proc_cpu_s(pid) for name, pid in dep.pids().items()}
    pg0 = _postgres_cpu_s(dep.database_url)
    wall0 = time.perf_counter()
    listeners = runner.listeners
    with Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), console=console, disable=not opts.progress, transient=False,
    ) as bar:  # fmt: skip
        task = bar.add_task("", total=len(msgs))

        def progress(done: int, seg: Segment) -> None:
            settled = len(listeners.first_event) if listeners else 0
            bar.update(task, completed=done, description=(
                f"ack {seg.accepted:,} rej {seg.rejected:,} err {seg.transport_errors:,} "
                f"settled(listened) {settled:,} inflight {runner.inflight:,}"))  # fmt: skip

        seg = await runner.run_segment(msgs, rate, opts.max_seconds, progress)
    # drain: until SQL holds no unsequenced order of this segment, and the listeners heard every order
    deadline = time.perf_counter() + opts.drain_seconds
    while time.perf_counter() < deadline:
        left = await asyncio.to_thread(unsettled_count, dep.database_url, seg.order_ids)
        if left == 0:
            seg.t_drained = time.perf_counter()
            break
        await asyncio.sleep(0.05)
    unsettled_at_end = 0 if seg.t_drained is not None else left
    if listeners is not None:
        want = [o for o in seg.order_ids if runner.account_of_order.get(o) in runner.listened]
        while time.perf_counter() < deadline and any(o not in listeners.first_event for o in want):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the fill events of the last batch
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    gc_pauses.stop()
    wall = time.perf_counter() - wall0
    server_cpu = {
        name: round(_proc_cpu_s(pid) - server_cpu0.get(name, 0.0), 2) for name, pid in dep.pids().items()
    }
    if dep.database_url.startswith("postgresql"):
        pg1 = _postgres_cpu_s(dep.database_url)
        server_cpu["postgres (this database's backends)"] = round(
            sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()), 2
        )
    result = _assemble(seg, runner, seg_meta, unsettled_at_end)
    # Fills keep coming after the drain when others trade (the agents bench): a resting order of a listened
    # account can fill just before SQL is counted, its event a few ms behind. Count again until every
    # fill in SQL was heard, for up to 3 s; a fill never heard still fails the check.
    recount_until = time.perf_counter() + 3.0
    while True:
        result["reconcile"] = await asyncio.to_thread(_reconcile, runner, seg, dep.database_url)
        if result["reconcile"]["ok_fills"] or time.perf_counter() > recount_until:
            break
        await asyncio.sleep(0.2)
    client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    result["summary"]["client_cpu_pct_of_one_core"] = round(100 * client_cpu / wall, 1) if wall else None
    result["summary"]["load_average_end"] = " ".join(map(str, meta.load_average() or []))
    result["client_gc_pauses"] = gc_pauses.summary()
    result["summary"]["client_gc_max_pause_ms"] = max(gc_pauses.max_ms)
    result["server_cpu_s"] = server_cpu
    if server_cpu:
        result["server_cpu_pct_of_one_core"] = {k: round(100 * v / wall, 1) for k, v in server_cpu.items()}
        # CPU time per request is what a shared machine does not distort much: capacity = 1 core / cost
        requests = max(1, seg.posts + seg.cancels)
        result["server_cpu_ms_per_request"] = {
            k: round(1000 * v / requests, 3) for k, v in server_cpu.items()
        }
        for k, v in result["server_cpu_ms_per_request"].items():
            result["summary"][f"cpu_ms_per_request {k}"] = v
        result["summary"]["server_cpu_ms_per_request_total"] = round(
            1000 * sum(server_cpu.values()) / requests, 3
        )
        result["summary"]["client_cpu_ms_per_request"] = round(1000 * client_cpu / requests, 3)
    tag = "flat" if rate is None else f"{int(rate)}"
    path = report.write_json(result, Path(opts.out_dir) / f"service-{run_id}-{tag}.json")
    report.print_table(result, console)
    console.print(f"result: {path}")
    result["path"] = str(path)
    return result


def _assemble(seg: Segment, runner: LoadRun, seg_meta: dict[str, Any], unsettled: int) -> dict[str, Any]:
    listeners = runner.listeners
    t0 = seg.t0
    settled_ms: list[float] = []
    fill_ms: list[float] = []
    cancel_settled_ms: list[float] = []
    settled_at: list[float] = []
    ids = set(seg.order_ids)
    listened_orders = [o for o in seg.order_ids if runner.account_of_order.get(o) in runner.listened]
    if listeners is not None:
        for oid in listened_orders:
            got = listeners.first_event.get(oid)
            if got is not None:
                settled_ms.append((got[0] - runner.sched_of[oid]) * 1000)
                settled_at.append(got[0] - t0)
        for (_trade, oid), (t, liq, _acct) in listeners.fills.items():
            if oid in ids and liq == "taker":
                fill_ms.append((t - runner.sched_of[oid]) * 1000)
        for oid, t in listeners.canceled_at.items():
            sched = runner.cancel_sched.get(oid)
            if sched is not None and oid in runner.sched_of and t >= sched and sched >= t0:
                cancel_settled_ms.append((t - sched) * 1000)
    span_ack = (max(seg.ack_at) if seg.ack_at else 0.0) or 1e-9
    first_send = min(seg.sends) if seg.sends else 0.0
    drained = None if seg.t_drained is None else seg.t_drained - t0
    sending_s = (max(seg.sends) - first_send) if seg.sends else 0.0
    new_orders = seg.posts
    summary: dict[str, Any] = {
        "offered_rate_msgs_per_s": seg.rate,
        "messages_sent": len(seg.sends),
        "sending_s": round(sending_s, 3),
        "new_orders_sent": new_orders,
        "accepted": seg.accepted,
        "rejected": seg.rejected,
        "transport_errors": seg.transport_errors,
        "cancels_sent": seg.cancels,
        "cancels_accepted": seg.cancels_accepted,
        "cancels_skipped_target_not_accepted": seg.cancels_skipped,
        "acked_msgs_per_s": round((len(seg.ack_ms) + len(seg.cancel_ack_ms)) / span_ack, 1),
        "acked_orders_per_s": round(len(seg.ack_ms) / span_ack, 1),
        "settled_orders_per_s": None if drained is None else round(seg.accepted / max(drained, 1e-9), 1),
        "drain_after_last_send_s": None if drained is None else round(drained - sending_s, 3),
        "unsettled_at_end": unsettled,
        "listened_orders": len(listened_orders),
        "listened_orders_without_event": len(listened_orders) - len(settled_ms),
        "generator_throttled_s": round(seg.throttled_s, 3),
        "truncated_by_max_seconds": seg.truncated,
    }
    latency = {
        "post_ack": report.summarize(seg.ack_ms),
        "post_settled": report.summarize(settled_ms),
        "post_fill_event": report.summarize(fill_ms),
        "cancel_ack": report.summarize(seg.cancel_ack_ms),
        "cancel_settled": report.summarize(cancel_settled_ms),
        "send_lag": report.summarize(seg.send_lag_ms),
    }
    length = int(max([*seg.sends, *seg.ack_at, *settled_at, drained or 0.0, 0.0])) + 1
    timeline = {
        "bucket_s": 1.0,
        "offered (scheduled sends)": report.buckets(seg.sends, 1.0, length),
        "POST acknowledged": report.buckets(seg.ack_at, 1.0, length),
        "settled (listened accounts' orders)": report.buckets(settled_at, 1.0, length),
    }
    return {
        "meta": seg_meta,
        "summary": summary,
        "latency_ms": latency,
        "errors": dict(seg.errors),
        "timeline": timeline,
        "samples_ms": {
            "POST-ack": [round(x, 3) for x in seg.ack_ms],
            "POST-settled": [round(x, 3) for x in settled_ms],
            "POST-fill-event": [round(x, 3) for x in fill_ms],
        },
        "events_seen": dict(listeners.events) if listeners else {},
        "order_ids": {
            "count": len(seg.order_ids),
            "min": min(ids, default=None),
            "max": max(ids, default=None),
        },
    }


def _reconcile(runner: LoadRun, seg: Segment, database_url: str) -> dict[str, Any]:
    """Counts that must agree: POSTs sent = accepted + rejected (+ transport errors); accepted orders (over
    the whole run so far) = the run's orders in SQL; fill events heard = fills of the listened accounts in
    SQL's trades. A fill event that matches no trade of ours (another deployment on the same Redis: the
    Socket.IO channel is server-wide) is counted as foreign and left out."""
    sql, expected = sql_reconcile(database_url, [a.account_id for a in runner.accounts], runner.listened)
    heard_keys = set(runner.listeners.fills) if runner.listeners else set()
    heard = len(heard_keys & expected)
    out: dict[str, Any] = {
        "posts_sent": seg.posts,
        "posts_accepted_plus_rejected_plus_transport_errors": (
            seg.accepted + seg.rejected + seg.transport_errors
        ),
        "accepted_so_far_in_run": len(runner.account_of_order),
        **sql,
        "fill_events_heard_so_far": heard,
        "fill_events_foreign_ignored": len(heard_keys - expected),
        "order_events_foreign_ignored": runner.listeners.foreign if runner.listeners else 0,
    }
    out["ok_sent"] = out["posts_sent"] == out["posts_accepted_plus_rejected_plus_transport_errors"]
    out["ok_orders_in_sql"] = out["accepted_so_far_in_run"] == out["sql_orders"]
    out["ok_fills"] = heard == out["sql_fills_of_listened_accounts"]
    return out


# ---------------------------------------------------------------------------------------------- CLI
def _rates(text: str | None) -> tuple[float | None, ...]:
    if not text or text == "max":
        return (None,)
    return tuple(None if r in ("max", "flat") else float(r) for r in text.split(","))


def build_parser(prog: str = "bourse bench service") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running Bourse (needs --database-url for seeding and checks)")
    where.add_argument("--launch", choices=("embedded", "pg"), help="start one through the real CLI")
    p.add_argument(
        "--api-procs", type=int, default=1, help="--launch pg: uvicorn worker processes (default 1)"
    )
    p.add_argument("--matchers", type=int, default=1, help="--launch pg: matcher processes (default 1)")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="BOURSE_NAME=VALUE",
        help="a setting for the launched servers (repeatable), e.g. BOURSE_INTAKE_BATCH_MAX=0",
    )
    p.add_argument(
        "--database-url", help="with --url: its database; with --launch pg: use it (default: a fresh one)"
    )
    p.add_argument("--redis-url", help="with --launch pg: use it (default: a private redis-server)")
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="where --launch pg creates its database")
    p.add_argument("--secret-key", default=os.environ.get("BOURSE_SECRET_KEY"),
                   help="with --url: mint tokens (else every account logs in over HTTP)")  # fmt: skip
    p.add_argument("--accounts", type=int, default=100)
    p.add_argument("--listeners", type=int, help="accounts with a Socket.IO listener (default: all)")
    p.add_argument("--cash", type=float, default=1_000_000.0, help="cash per account (default 1,000,000)")
    p.add_argument("--shares", type=int, default=100_000, help="shares per account and symbol")
    p.add_argument(
        "--rate", help="offered messages/s, or a list (250,500,1000,2000) run in order; 'max': flat out"
    )
    p.add_argument("--duration", type=float, help="seconds per rate (n = rate x duration)")
    p.add_argument("--clients", type=int, default=8, help="HTTP clients (default 8)")
    p.add_argument("--connections", type=int, default=128, help="connections over all clients (default 128)")
    p.add_argument(
        "--http", choices=HTTP_KINDS, default="raw",
        help="HTTP client: raw (asyncio Protocols, the cheapest on CPU; default), aiohttp or httpx",
    )  # fmt: skip
    p.add_argument(
        "--loop", choices=LOOPS, default="uvloop", help="the generator's event loop (default uvloop)"
    )
    p.add_argument("--flow-file", help="a flow CSV (../shared/flow format) instead of the generator")
    generator.add_flow_arguments(p)
    p.add_argument("--max-seconds", type=float, default=120.0, help="stop sending after this long (per rate)")
    p.add_argument(
        "--drain-seconds", type=float, default=30.0, help="wait this long for settlement after sending"
    )
    p.add_argument("--max-inflight", type=int, default=4000)
    p.add_argument("--out", default=str(OUT_DIR), help="result directory (default benchmarks/out)")
    p.add_argument("--keep", action="store_true", help="--launch pg: keep the database it created")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-plot", action="store_true")
    return p


def options_from_args(a: argparse.Namespace) -> ServiceOptions:
    flow = generator.params_from_args(argparse.Namespace(**{**vars(a), "rate": None}))
    return ServiceOptions(
        url=a.url, launch=a.launch, api_procs=a.api_procs, matchers=a.matchers, database_url=a.database_url,
        redis_url=a.redis_url, pg_admin_url=a.pg_admin_url, secret_key=a.secret_key, accounts=a.accounts,
        listeners=a.listeners, cash_cents=round(a.cash * 100), shares=a.shares, clients=a.clients,
        connections=a.connections, http=a.http, rates=_rates(a.rate), duration_s=a.duration, flow=flow,
        flow_file=a.flow_file, max_seconds=a.max_seconds, drain_seconds=a.drain_seconds,
        out_dir=Path(a.out), keep=a.keep, progress=not a.no_progress, plot=not a.no_plot,
        max_inflight=a.max_inflight, loop=a.loop, server_env=_server_env(a.server_env), quiet_gc=True,
    )  # fmt: skip


def _server_env(items: Sequence[str]) -> dict[str, str]:
    env = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("BOURSE_"):
            raise SystemExit(f"--server-env wants BOURSE_NAME=VALUE, got {item!r}")
        env[name] = value
    return env


def _raise_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def quiet_client_logs() -> None:
    """`bourse` logs at INFO; httpx would log every request the load generator sends."""
    import logging

    for name in ("httpx", "httpcore", "socketio", "engineio", "aiohttp"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_client_logs()
    signal.signal(signal.SIGTERM, _raise_interrupt)  # stop launched processes and drop the database
    results = run_service(options_from_args(args))
    if len(results) > 1:
        _print_sweep(results)
    bad = [r for r in results if r["summary"]["unsettled_at_end"]]
    return 1 if bad else 0


def _print_sweep(results: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="offered rate sweep (one deployment)")
    for col in ("offered/s", "acked orders/s", "settled orders/s", "ack p50", "ack p99", "settled p50",
                "settled p99", "settled p99.9", "fill-event p99", "errors"):  # fmt: skip
        table.add_column(col, justify="right")
    for r in results:
        s, lat = r["summary"], r["latency_ms"]
        table.add_row(
            str(s["offered_rate_msgs_per_s"] or "max"), str(s["acked_orders_per_s"]),
            str(s["settled_orders_per_s"]), str(lat["post_ack"]["p50"]), str(lat["post_ack"]["p99"]),
            str(lat["post_settled"]["p50"]), str(lat["post_settled"]["p99"]),
            str(lat["post_settled"]["p99_9"]), str(lat["post_fill_event"]["p99"]),
            str(sum(r["errors"].values())),
        )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    raise SystemExit(main())
