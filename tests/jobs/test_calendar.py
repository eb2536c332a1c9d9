"""Calendar edges: open inclusive, close exclusive, weekends, holidays, DST, always-open."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from schema.calendar import (
    ALWAYS_OPEN,
    Admission,
    MarketCalendar,
    admission,
    calendar_from_dict,
    day_order_expiry,
    last_close_at_or_before,
    session_at,
    trading_day_of,
)

NYSE = MarketCalendar()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_open_is_inclusive_and_close_exclusive() -> None:
    # 2025-06-02 is a Monday; New York is UTC-4 in June.
    assert session_at(utc(2025, 6, 2, 13, 29, 59), NYSE).is_open is False
    at_open = session_at(utc(2025, 6, 2, 13, 30), NYSE)
    assert at_open == (True, utc(2025, 6, 3, 13, 30), utc(2025, 6, 2, 20, 0))
    at_close = session_at(utc(2025, 6, 2, 20, 0), NYSE)
    assert at_close == (False, utc(2025, 6, 3, 13, 30), utc(2025, 6, 3, 20, 0))


def test_friday_close_next_open_is_monday() -> None:
    friday_evening = utc(2025, 6, 6, 21, 0)
    session = session_at(friday_evening, NYSE)
    assert session.is_open is False
    assert session.next_open == utc(2025, 6, 9, 13, 30)
    assert session.next_close == utc(2025, 6, 9, 20, 0)
    # open on Friday: the next open after the close is Monday's
    assert session_at(utc(2025, 6, 6, 15, 0), NYSE).next_open == utc(2025, 6, 9, 13, 30)


def test_holiday_is_skipped() -> None:
    cal = MarketCalendar(holidays=frozenset({date(2025, 7, 4)}))  # a Friday
    session = session_at(utc(2025, 7, 4, 15, 0), cal)
    assert session == (False, utc(2025, 7, 7, 13, 30), utc(2025, 7, 7, 20, 0))


def test_daylight_saving_moves_the_utc_open() -> None:
    # New York is UTC-5 in January: 09:30 local is 14:30 UTC.
    assert session_at(utc(2025, 1, 6, 14, 29), NYSE).next_open == utc(2025, 1, 6, 14, 30)
    assert session_at(utc(2025, 1, 6, 14, 30), NYSE).is_open


def test_always_open_has_no_next_open_or_close_and_accepts() -> None:
    assert session_at(utc(2025, 6, 7, 3, 0), ALWAYS_OPEN) == (True, None, None)
    assert ALWAYS_OPEN.status(utc(2025, 6, 7, 3, 0))["next_close"] == "2025-06-08T00:00:00Z"
    assert admission(utc(2025, 6, 7, 3, 0), ALWAYS_OPEN) is Admission.ACCEPT
    # DAY orders expire at the end of the (UTC) day
    assert day_order_expiry(utc(2025, 6, 7, 3, 0), ALWAYS_OPEN) == utc(2025, 6, 8)


def test_admission_rejects_or_queues_outside_the_session() -> None:
    saturday = utc(2025, 6, 7, 15, 0)
    assert admission(saturday, NYSE) is Admission.REJECT
    assert admission(saturday, MarketCalendar(outside_session="queue")) is Admission.QUEUE
    assert admission(utc(2025, 6, 2, 15, 0), NYSE) is Admission.ACCEPT


def test_day_order_expiry_is_the_session_close_or_the_next_one_when_closed() -> None:
    assert day_order_expiry(utc(2025, 6, 2, 15, 0), NYSE) == utc(2025, 6, 2, 20, 0)
    assert day_order_expiry(utc(2025, 6, 7, 15, 0), NYSE) == utc(2025, 6, 9, 20, 0)


def test_trading_day_and_last_close() -> None:
    # 01:00 UTC on Tuesday is still Monday evening in New York
    assert trading_day_of(utc(2025, 6, 3, 1, 0), NYSE) == date(2025, 6, 2)
    assert last_close_at_or_before(utc(2025, 6, 2, 19, 59), NYSE) == utc(2025, 5, 30, 20, 0)
    assert last_close_at_or_before(utc(2025, 6, 2, 20, 0), NYSE) == utc(2025, 6, 2, 20, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        session_at(datetime(2025, 6, 2, 15, 0), NYSE)


def test_calendar_from_config_table() -> None:
    cal = calendar_from_dict(
        {
            "timezone": "Europe/Paris",
            "open": "09:00",
            "close": "17:30",
            "trading_days": [0, 1, 2, 3, 4],
            "holidays": ["2025-12-25"],
            "outside_session": "queue",
        }
    )
    assert cal.open_time == time(9, 0) and cal.close_time == time(17, 30)
    assert session_at(utc(2025, 6, 2, 7, 0), cal).is_open  # 09:00 Paris (UTC+2)
    assert not session_at(utc(2025, 12, 25, 10, 0), cal).is_open
    with pytest.raises(ValueError):
        MarketCalendar(open_time=time(16), close_time=time(9))
