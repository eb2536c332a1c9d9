"""The two order routes that carry the load, answered as plain ASGI ahead of FastAPI.

`POST /api/v1/orders` and `DELETE /api/v1/orders/{id}` are most of what a trading client sends. Through
FastAPI a request passed five Starlette middlewares, the router and a Request/Response pair before and
after the order's own work; here it is one function: read the body, check the token, validate with the
same pydantic model, hand the order to the same intake (`api.routers.orders.place` / `cancel`), answer
with the same body and the same error shapes (`api.errors.describe`). It sits inside the Socket.IO
wrapper, so websockets never pass through it (outside it, the fan-out's p99 was ~10 ms worse). The
FastAPI routes stay: they document the API (OpenAPI) and serve anything this path does not match, such
as a non-numeric order id, which gets FastAPI's validation error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import Services, header_principal
from api.errors import ApiError, describe
from api.models import OrderRequest
from api.routers.orders import MAX_ID, cancel, place

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

# An order is a few hundred bytes; anything near this is not an order.
MAX_BODY_BYTES = 64 * 1024
_JSON = (b"content-type", b"application/json")


class OrderHotPath:
    """ASGI wrapper: the hot order routes here, every other request to `app` unchanged."""

    def __init__(self, app: ASGIApp, services: Services, prefix: str) -> None:
        self.app = app
        self.services = services
        self._orders = prefix + "/orders"
        self._order_prefix = self._orders + "/"

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if method == "POST" and path == self._orders:
                await self._answer(scope, send, self._post(scope, receive))
                return
            if method == "DELETE" and path.startswith(self._order_prefix):
                tail = path[len(self._order_prefix) :]
                if tail.isascii() and tail.isdigit():
                    await self._answer(scope, send, self._delete(scope, int(tail)))
                    return
        await self.app(scope, receive, send)

    async def _post(self, scope: dict[str, Any], receive: Receive) -> tuple[int, Any]:
        principal = header_principal(self.services, _authorization(scope))
        body = await _read_body(receive)
        try:
            order = OrderRequest.model_validate_json(body)
        except ValidationError as exc:
            # FastAPI's shape for body errors, so the message names the field as the FastAPI route does.
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None
        return await place(self.services, principal.account_id, order)

    async def _delete(self, scope: dict[str, Any], order_id: int) -> tuple[int, Any]:
        principal = header_principal(self.services, _authorization(scope))
        if not 1 <= order_id <= MAX_ID:
            raise ApiError(422, "VALIDATION_ERROR", f"order_id: must be between 1 and {MAX_ID}")
        return 202, await cancel(self.services, principal.account_id, order_id)

    @staticmethod
    async def _answer(scope: dict[str, Any], send: Send, work: Awaitable[tuple[int, Any]]) -> None:
        headers = [_JSON]
        try:
            status, view = await work
        except Exception as exc:  # noqa: BLE001 - every failure is answered in the one error shape
            status, code, message, extra = describe(exc)
            view = {"code": code, "message": message}
            headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()]
        body = orjson.dumps(view)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _authorization(scope: dict[str, Any]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "BAD_REQUEST", "the client disconnected before sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
