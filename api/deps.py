"""The services the routers use, built by the entry points (bourse/) and handed to create_app.

Nothing here is created at import time; tests build Services with their own clock, bus and database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.datastructures import Default, DefaultPlaceholder
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.errors import ApiError
from api.security import MemoryThrottle, Principal, Throttle, TokenCache, TokenError
from schema.calendar import MarketCalendar, calendar_from_settings
from schema.intake import Rules
from schema.marketdata import MarketDataStore
from schema.models import Instrument
from schema.settings import Settings
from schema.transport import CommandBus

if TYPE_CHECKING:
    from api.intake_batcher import IntakeBatcher


def utc_now() -> datetime:
    return datetime.now(UTC)


class InstrumentCache:
    """Trading rules per symbol, reloaded from SQL at most every `ttl_s` (reference prices move daily)."""

    def __init__(self, session_factory: sessionmaker[Session], ttl_s: float = 30.0) -> None:
        self._session_factory = session_factory
        self._ttl = ttl_s
        self._rules: dict[str, Rules] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def reload(self) -> dict[str, Rules]:
        with self._session_factory() as session:
            rules = {i.symbol: Rules.of(i) for i in session.scalars(select(Instrument))}
        with self._lock:
            self._rules, self._loaded_at = rules, time.monotonic()
        return rules

    def all(self) -> dict[str, Rules]:
        if time.monotonic() - self._loaded_at > self._ttl:
            return self.reload()
        return self._rules

    def peek(self, symbol: str) -> Rules | None:
        """No SQL once loaded (for async handlers: the depth fast path and Socket.IO): the symbol set
        changes rarely and the sync routes' get() keeps the cache fresh."""
        if self._loaded_at == float("-inf"):
            self.reload()
        return self._rules.get(symbol)

    def get(self, symbol: str) -> Rules | None:
        rules = self.all().get(symbol)
        if rules is None and time.monotonic() - self._loaded_at > 1.0:
            rules = self.reload().get(symbol)  # a symbol listed since the last load
        return rules


@dataclass
class Services:
    settings: Settings
    session_factory: sessionmaker[Session]
    bus: CommandBus
    marketdata: MarketDataStore
    instruments: InstrumentCache
    clock: Callable[[], datetime] = utc_now
    calendar: MarketCalendar | None = None
    throttle: Throttle | None = None
    sio: Any = None  # socketio.AsyncServer; built by api.realtime when None
    redis: Any = None  # sync client (scale-out)
    async_redis: Any = None  # redis.asyncio client for the depth fast path (scale-out)
    tokens: TokenCache = field(default_factory=TokenCache)
    # Group-commit intake (api.intake_batcher); create_app builds it on PostgreSQL unless turned off.
    batcher: IntakeBatcher | None = None
    # How long POST /account/reset waits for the matcher to cancel open orders.
    reset_wait_s: float = 10.0
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.calendar is None:
            self.calendar = calendar_from_settings(self.settings)
        if self.throttle is None:
            self.throttle = MemoryThrottle(self.settings.login_attempts_per_minute)

    def now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)


# The dependencies below that do no I/O are async: FastAPI runs a sync dependency in anyio's thread pool,
# and each such hop cost more CPU than the work itself (a JWT decode, an attribute read).


async def get_services(request: Request) -> Services:
    return request.app.state.services


def get_session(services: Services = Depends(get_services)) -> Iterator[Session]:
    """A session for a sync route. Its exit runs in the pool without a thread-pool token (FastAPI gives
    the exit its own limiter), so a finished request never waits for a token while holding a connection,
    provided the route has no second hop after the endpoint: see WireRouter."""
    session = services.session_factory()
    try:
        yield session
    finally:
        session.close()


class WireRouter(APIRouter):
    """An APIRouter whose routes return dicts already in the wire shape (schema.views), so FastAPI does not
    validate the return value against its annotation (response_model=None); the annotation still
    documents the response in OpenAPI (as `responses={status: {"model": ...}}`).

    Why: for a sync endpoint FastAPI validates the return value in the thread pool, a second hop taken
    after the endpoint returned and while the request's session (get_session) still held its
    connection. With as many requests in flight as connections + tokens, the new ones held every token
    waiting for a connection, and the finished ones waited for a token to validate: a deadlock until
    pool_timeout (503). Without the second hop a request never needs a token while holding a connection.
    """

    def add_api_route(  # type: ignore[override]
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        response_model: Any = Default(None),
        responses: dict[int | str, dict[str, Any]] | None = None,
        status_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(response_model, DefaultPlaceholder):
            response_model = None
            annotation = get_typed_return_annotation(endpoint)
            if annotation is not None and not (
                isinstance(annotation, type) and issubclass(annotation, Response)
            ):
                responses = dict(responses or {})
                code = status_code or 200
                responses[code] = {"model": annotation, **responses.get(code, {})}
        super().add_api_route(
            path,
            endpoint,
            response_model=response_model,
            responses=responses,
            status_code=status_code,
            **kwargs,
        )


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    services: Services = Depends(get_services),
) -> Principal:
    token = None if credentials is None or credentials.scheme.lower() != "bearer" else credentials.credentials
    return token_principal(services, token)


def token_principal(services: Services, token: str | None) -> Principal:
    """The principal of a bearer token, or 401 UNAUTHORIZED."""
    if not token:
        raise ApiError(401, "UNAUTHORIZED", "missing bearer token")
    try:
        return services.tokens.principal(token, services.settings.secret_key, services.clock())
    except TokenError as exc:
        raise ApiError(401, "UNAUTHORIZED", f"invalid or expired token: {exc}") from exc


def header_principal(services: Services, authorization: str | None) -> Principal:
    """`token_principal` from an Authorization header, read as FastAPI's HTTPBearer reads it (for the
    plain ASGI order routes of api.hot_path, which skip dependency solving)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token_principal(services, token if scheme.lower() == "bearer" else None)
