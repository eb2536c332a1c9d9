"""GET /account/portfolio/history, GET /account/stats, GET /leaderboard, PATCH /account/profile.

Thin: the figures come from schema.analytics (formulas in docs/market.md)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import Services, WireRouter, current_principal, get_services, get_session
from api.errors import ApiError
from api.security import Principal
from schema import analytics

router = WireRouter(tags=["portfolio"])


class ProfileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, min_length=3, max_length=40, pattern=r"^[A-Za-z0-9_.\- ]+$")
    leaderboard_opt_in: bool | None = None


# Marks (last trade per symbol) are shared by every request for a second; the leaderboard is one ranking
# of everyone, refreshed in the background at most every 2 s (see docs/market.md).
MARKS_TTL_S = 1.0
LEADERBOARD_TTL_S = 2.0


def _caches(services: Services) -> tuple[analytics.TtlCache, analytics.TtlCache]:
    caches = services.extras.get("analytics_caches")
    if caches is None:
        caches = services.extras.setdefault(
            "analytics_caches", (analytics.TtlCache(MARKS_TTL_S), analytics.TtlCache(LEADERBOARD_TTL_S))
        )
    return caches


def _marks(services: Services) -> dict[str, int]:
    def compute() -> dict[str, int]:
        with services.session_factory() as session:  # its own: a background refresh outlives requests
            return analytics.current_marks(session)

    return _caches(services)[0].get("marks", compute)


def _invalid(exc: analytics.AnalyticsError) -> ApiError:
    return ApiError(422, "VALIDATION_ERROR", str(exc))


@router.get("/account/portfolio/history")
def portfolio_history(
    period: str = Query("1M"),
    timeframe: str | None = Query(None),
    principal: Principal = Depends(current_principal),
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    assert services.calendar is not None
    try:
        return analytics.portfolio_history(
            session,
            principal.account_id,
            services.clock(),
            services.calendar,
            period,
            timeframe,
            _marks(services),
        )
    except analytics.AnalyticsError as exc:
        raise _invalid(exc) from exc


@router.get("/account/stats")
def account_stats(
    principal: Principal = Depends(current_principal),
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    assert services.calendar is not None
    marks = _marks(services)
    return analytics.account_stats(session, principal.account_id, services.clock(), services.calendar, marks)


@router.get("/leaderboard")
def leaderboard(
    period: str = Query("1D"),
    limit: int = Query(100, ge=1, le=500),
    services: Services = Depends(get_services),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    calendar = services.calendar
    assert calendar is not None
    if period not in analytics.PERIODS:
        raise _invalid(analytics.AnalyticsError(f"period must be one of {', '.join(analytics.PERIODS)}"))

    def compute() -> dict[str, Any]:
        # Its own session: a background refresh outlives this request's session.
        with services.session_factory() as own:
            return analytics.leaderboard(own, services.clock(), calendar, period, limit, _marks(services))

    return _caches(services)[1].get((period, limit), compute)


@router.patch("/account/profile")
def update_profile(
    body: ProfileRequest,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    try:
        user = analytics.set_profile(session, principal.user_id, body.display_name, body.leaderboard_opt_in)
        session.commit()
    except analytics.AnalyticsError as exc:
        session.rollback()
        raise _invalid(exc) from exc
    except IntegrityError as exc:
        session.rollback()
        raise ApiError(409, "DISPLAY_NAME_TAKEN", "that display name is taken") from exc
    return {"display_name": user.display_name, "leaderboard_opt_in": user.leaderboard_opt_in}
