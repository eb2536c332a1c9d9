"""The market calendar: when the market is open, and what happens to an order sent while it is closed.

Pure functions of a `MarketCalendar` and an aware `datetime` (UTC in, UTC out). The API's intake asks
`admission(now, calendar)` (or `calendar.is_open(now)`) before it holds funds; the jobs ask `session_at`
for the next close (DAY expiry, end of day); `/market/status` is `calendar.status(now)`.

Modes: "calendar" (default: weekdays 09:30-16:00 America/New_York, optional holidays) and "always" (tests,
demos: never closes; its trading day ends at 00:00 UTC, when DAY orders expire and end of day runs).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

EXCHANGE_TZ = "America/New_York"
OPEN_AT = time(9, 30)
CLOSE_AT = time(16, 0)
_MAX_LOOKAHEAD_DAYS = 370  # a calendar with no trading day in a year is a configuration error


class Admission(StrEnum):
    """What intake does with an order sent at a given moment."""

    ACCEPT = "accept"  # the session is open: hold, insert, publish
    REJECT = "reject"  # closed: refuse with MARKET_CLOSED
    QUEUE = "queue"  # closed: hold and insert now, publish at the next open (workers.jobs.open_session)


class MarketSession(NamedTuple):
    is_open: bool
    next_open: datetime | None  # None while always open
    next_close: datetime | None  # the close of the current session when open, else of the next one


@dataclass(frozen=True, slots=True)
class MarketCalendar:
    mode: str = "calendar"  # "calendar" | "always"
    tz: str = EXCHANGE_TZ
    open_time: time = OPEN_AT
    close_time: time = CLOSE_AT
    trading_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    holidays: frozenset[date] = field(default_factory=frozenset)
    # What an order sent outside the session gets: "reject" (MARKET_CLOSED) or "queue" (sent at the open).
    outside_session: str = "reject"

    def __post_init__(self) -> None:
        if self.mode not in ("calendar", "always"):
            raise ValueError("mode must be 'calendar' or 'always'")
        if self.mode == "calendar" and self.close_time <= self.open_time:
            raise ValueError("close_time must be after open_time (sessions do not cross midnight)")
        if self.outside_session not in ("reject", "queue"):
            raise ValueError("outside_session must be 'reject' or 'queue'")
        if self.mode == "calendar" and not self.trading_days:
            raise ValueError("a calendar needs at least one trading day")

    @property
    def always_open(self) -> bool:
        return self.mode == "always"

    @property
    def timezone(self) -> str:
        return "UTC" if self.always_open else self.tz

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_trading_day(self, day: date) -> bool:
        return self.always_open or (day.weekday() in self.trading_days and day not in self.holidays)

    def session_bounds(self, day: date) -> tuple[datetime, datetime]:
        """(open, close) of `day`'s session in UTC. Always-open: local midnight to the next midnight."""
        zone = self.zone
        if self.always_open:
            start = datetime.combine(day, time(0), zone).astimezone(UTC)
            return start, datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
        return (
            datetime.combine(day, self.open_time, zone).astimezone(UTC),
            datetime.combine(day, self.close_time, zone).astimezone(UTC),
        )

    # The small interface the API uses.
    def is_open(self, now: datetime) -> bool:
        return session_at(now, self).is_open

    def next_open(self, now: datetime) -> datetime | None:
        """The next session open strictly after `now` (None when always open)."""
        return session_at(now, self).next_open

    def next_close(self, now: datetime) -> datetime:
        """The close of the session in progress, or of the next session. DAY orders expire then."""
        return day_order_expiry(now, self)

    def status(self, now: datetime) -> dict[str, object]:
        """GET /market/status."""
        nxt_open = self.next_open(now)
        return {
            "open": self.is_open(now),
            "now": _iso(now, milliseconds=True),
            "next_open": None if nxt_open is None else _iso(nxt_open),
            "next_close": _iso(self.next_close(now)),
            "timezone": self.timezone,
        }


ALWAYS_OPEN = MarketCalendar(mode="always")


def _iso(moment: datetime, milliseconds: bool = False) -> str:
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds" if milliseconds else "auto")
    return text.replace("+00:00", "Z")


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def session_at(now: datetime, calendar: MarketCalendar = MarketCalendar()) -> MarketSession:
    """Is the market open at `now`, and when does it next open and close?

    The open is inclusive and the close exclusive."""
    now = _aware(now)
    if calendar.always_open:
        return MarketSession(True, None, None)
    local_day = now.astimezone(calendar.zone).date()
    for offset in range(_MAX_LOOKAHEAD_DAYS):
        day = local_day + timedelta(days=offset)
        if not calendar.is_trading_day(day):
            continue
        opens, closes = calendar.session_bounds(day)
        if now < opens:
            return MarketSession(False, opens, closes)
        if now < closes:
            return MarketSession(True, _next_open_after(closes, calendar), closes)
    raise ValueError("the calendar has no trading day in the coming year")


def session_open_at_or_before(now: datetime, calendar: MarketCalendar = MarketCalendar()) -> datetime | None:
    """The open of the session in progress at `now`; None while closed, or always open (no sessions)."""
    now = _aware(now)
    if calendar.always_open or not session_at(now, calendar).is_open:
        return None
    # Sessions do not cross midnight: the session in progress is the local day's.
    return calendar.session_bounds(now.astimezone(calendar.zone).date())[0]


def _next_open_after(moment: datetime, calendar: MarketCalendar) -> datetime:
    local_day = moment.astimezone(calendar.zone).date()
    for offset in range(_MAX_LOOKAHEAD_DAYS):
        day = local_day + timedelta(days=offset)
        if calendar.is_trading_day(day):
            opens, _ = calendar.session_bounds(day)
            if opens > moment:
                return opens
    raise ValueError("the calendar has no trading day in the coming year")


def admission(now: datetime, calendar: MarketCalendar = MarketCalendar()) -> Admission:
    if session_at(now, calendar).is_open:
        return Admission.ACCEPT
    return Admission.QUEUE if calendar.outside_session == "queue" else Admission.REJECT


def day_order_expiry(now: datetime, calendar: MarketCalendar = MarketCalendar()) -> datetime:
    """When a DAY order sent at `now` expires: the close of the session it trades in (the current one, or
    the next one for an order queued while closed). Always-open: the end of the UTC day."""
    now = _aware(now)
    if calendar.always_open:
        return calendar.session_bounds(now.astimezone(calendar.zone).date())[1]
    close = session_at(now, calendar).next_close
    assert close is not None
    return close


def trading_day_of(moment: datetime, calendar: MarketCalendar = MarketCalendar()) -> date:
    """The local calendar day a moment belongs to (the key of daily closes and equity snapshots)."""
    return _aware(moment).astimezone(calendar.zone).date()


def last_close_at_or_before(now: datetime, calendar: MarketCalendar = MarketCalendar()) -> datetime | None:
    """The most recent session close <= now (None if there is none in the past year)."""
    now = _aware(now)
    local_day = now.astimezone(calendar.zone).date()
    for offset in range(_MAX_LOOKAHEAD_DAYS):
        day = local_day - timedelta(days=offset)
        if calendar.is_trading_day(day):
            close = calendar.session_bounds(day)[1]
            if close <= now:
                return close
    return None


def _parse_time(text: str) -> time:
    hours, _, minutes = text.partition(":")
    return time(int(hours), int(minutes or 0))


def calendar_from_dict(doc: dict[str, Any]) -> MarketCalendar:
    """From a config table: {mode, timezone, open = "09:30", close = "16:00", trading_days = [0..4],
    holidays = ["2025-12-25"], outside_session = "reject"|"queue"}."""
    return MarketCalendar(
        mode=doc.get("mode", "calendar"),
        tz=doc.get("timezone", EXCHANGE_TZ),
        open_time=_parse_time(doc["open"]) if "open" in doc else OPEN_AT,
        close_time=_parse_time(doc["close"]) if "close" in doc else CLOSE_AT,
        trading_days=frozenset(doc.get("trading_days", (0, 1, 2, 3, 4))),
        holidays=frozenset(date.fromisoformat(d) for d in doc.get("holidays", ())),
        outside_session=doc.get("outside_session", "reject"),
    )


def calendar_from_settings(settings: Any, path: str | Path | None = None) -> MarketCalendar:
    """`settings.market_hours == "always"` -> always open; otherwise the default calendar, or the
    `[calendar]` table of a TOML file when one is given."""
    if getattr(settings, "market_hours", "calendar") == "always":
        return ALWAYS_OPEN
    if path is not None:
        with open(path, "rb") as fh:
            return calendar_from_dict(tomllib.load(fh).get("calendar", {}))
    return MarketCalendar()
