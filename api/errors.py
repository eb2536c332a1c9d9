"""One error body everywhere: {"code": ..., "message": ...}, with stable codes and the right status.

`REJECT_CODES` is the one table from the engine's reject reasons to API codes and HTTP statuses; the
intake checks up front use the same codes, so a client sees the same error whichever layer refused.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import InterfaceError as PsycopgInterfaceError
from psycopg import OperationalError as PsycopgOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.types import RejectReason

log = logging.getLogger("bourse.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# Engine reject reason -> (API code, HTTP status).
REJECT_CODES: dict[RejectReason, tuple[str, int]] = {
    RejectReason.UNKNOWN_SYMBOL: ("UNKNOWN_SYMBOL", 422),
    RejectReason.INVALID_QTY: ("INVALID_QTY", 422),
    RejectReason.OFF_LOT: ("OFF_LOT", 422),
    RejectReason.OFF_TICK: ("OFF_TICK", 422),
    RejectReason.INVALID_PRICE: ("INVALID_PRICE", 422),
    RejectReason.OUTSIDE_BAND: ("OUTSIDE_BAND", 422),
    RejectReason.MAX_NOTIONAL: ("MAX_NOTIONAL", 422),
    RejectReason.INVALID_TIF: ("INVALID_TIF", 422),
    RejectReason.POST_ONLY_WOULD_TAKE: ("POST_ONLY_WOULD_TAKE", 422),
    RejectReason.INSUFFICIENT_HOLD: ("INSUFFICIENT_FUNDS", 422),
    RejectReason.DUPLICATE_ORDER_ID: ("DUPLICATE_CLIENT_ORDER_ID", 409),
    RejectReason.UNKNOWN_ORDER: ("ORDER_NOT_FOUND", 404),
    RejectReason.NOT_OWNER: ("ORDER_NOT_FOUND", 404),  # never reveal that another account's order exists
    RejectReason.INVALID_REPLACE: ("INVALID_QTY", 422),
    RejectReason.INVALID_SIDE: ("VALIDATION_ERROR", 422),
    RejectReason.INVALID_TYPE: ("VALIDATION_ERROR", 422),
    RejectReason.INVALID_STP: ("VALIDATION_ERROR", 422),
}

# Codes raised by the intake checks (schema.intake.IntakeError) that are not engine reasons.
INTAKE_STATUS: dict[str, int] = {
    "INSUFFICIENT_FUNDS": 422,
    "INSUFFICIENT_SHARES": 422,
    "MARKET_CLOSED": 422,
    "ORDER_NOT_FOUND": 404,
    "ORDER_FINAL": 409,
    "REPLACE_PENDING": 409,
    "DUPLICATE_CLIENT_ORDER_ID": 409,
    "VALIDATION_ERROR": 422,
}
for _code, _status in REJECT_CODES.values():
    INTAKE_STATUS.setdefault(_code, _status)

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_ATTEMPTS",
}


def status_of(code: str) -> int:
    return INTAKE_STATUS.get(code, 422)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            return 400, "MALFORMED_JSON", "the request body is not valid JSON"
    parts = []
    for err in errors[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return 422, "VALIDATION_ERROR", "; ".join(parts) or "invalid request"


# psycopg's own errors: the group-commit intake's asyncio connection is not SQLAlchemy's (api.intake_batcher).
_UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    PsycopgOperationalError,
    PsycopgInterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
)
ErrorParts = tuple[int, str, str, dict[str, str] | None]


def describe(exc: Exception) -> ErrorParts:
    """(status, code, message, headers) of the error body any exception is answered with: the one
    mapping for the FastAPI handlers below and the plain ASGI hot path (api.hot_path)."""
    if isinstance(exc, ApiError):
        challenge = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return exc.status, exc.code, exc.message, challenge
    if isinstance(exc, RequestValidationError):
        return (*validation_message(exc), None)
    if isinstance(exc, StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.lower().replace("_", " ")
        return exc.status_code, code, message, getattr(exc, "headers", None)
    if isinstance(exc, _UNAVAILABLE):
        log.warning("backing service unavailable: %s", exc)
        return 503, "SERVICE_UNAVAILABLE", "a backing service is unavailable; retry shortly", None
    log.exception("unhandled error", exc_info=exc)
    return 500, "INTERNAL_ERROR", "internal error", None


def install(app: FastAPI) -> None:
    async def _handle(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(*describe(exc))

    # Exception last: the last resort, still one shape.
    for exc_type in (ApiError, RequestValidationError, StarletteHTTPException, *_UNAVAILABLE, Exception):
        app.add_exception_handler(exc_type, _handle)
