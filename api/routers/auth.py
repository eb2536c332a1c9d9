"""POST /auth/register, /auth/login, /auth/refresh, /auth/logout."""

from __future__ import annotations

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from api import accounts
from api.deps import Services, WireRouter, get_services, get_session
from api.errors import ApiError
from api.models import LoginRequest, RefreshRequest, RegisterRequest

router = WireRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=201)
def register(
    body: RegisterRequest, services: Services = Depends(get_services), session: Session = Depends(get_session)
) -> dict[str, object]:
    pair = accounts.register(
        session, body.email, body.password, body.display_name, services.settings, services.clock()
    )
    return pair.view()


@router.post("/login")
def login(
    body: LoginRequest,
    request: Request,
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> dict[str, object]:
    throttle = services.throttle
    assert throttle is not None
    ip_key = f"ip:{request.client.host if request.client else 'unknown'}"
    account_key = f"email:{body.email}"
    if throttle.blocked(account_key) or throttle.blocked(ip_key):
        raise ApiError(429, "TOO_MANY_ATTEMPTS", "too many failed logins; wait a minute and retry")
    pair = accounts.login(session, body.email, body.password, services.settings, services.clock())
    if pair is None:
        throttle.hit(account_key)
        throttle.hit(ip_key)
        raise ApiError(401, "INVALID_CREDENTIALS", "wrong email or password")
    throttle.clear(account_key)
    return pair.view()


@router.post("/refresh")
def refresh(
    body: RefreshRequest, services: Services = Depends(get_services), session: Session = Depends(get_session)
) -> dict[str, object]:
    return accounts.rotate(session, body.refresh_token, services.settings, services.clock()).view()


@router.post("/logout", status_code=204)
def logout(
    body: RefreshRequest, services: Services = Depends(get_services), session: Session = Depends(get_session)
) -> Response:
    accounts.revoke(session, body.refresh_token, services.clock())
    return Response(status_code=204)
