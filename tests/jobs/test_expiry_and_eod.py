"""Time-controlled jobs on a real market (PostgreSQL, the matcher): DAY orders expire at the close and GTD
orders at their time with holds released; end of day run twice changes nothing the second time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from market_kit import Market
from sqlalchemy import select

from schema.calendar import MarketCalendar, day_order_expiry
from schema.models import EquitySnapshot, Instrument, InstrumentClose
from workers.jobs import JobContext, plan, run_end_of_day
from workers.scheduler import InProcessScheduler

NYSE = MarketCalendar()


def _scheduler(market: Market) -> InProcessScheduler:
    return InProcessScheduler(
        JobContext(market.sessions, market.bus, NYSE, market.clock), horizon=timedelta(days=1)
    )


def test_day_orders_expire_at_the_close_and_gtd_at_their_time_with_holds_released(market: Market) -> None:
    now = market.clock()  # Tuesday 2025-06-03 11:00 New York
    close = day_order_expiry(now, NYSE)
    assert close == datetime(2025, 6, 3, 20, 0, tzinfo=UTC)
    gtd_at = datetime(2025, 6, 3, 16, 0, tzinfo=UTC)
    buyer = market.user(1_000_000)
    day_id = market.place(buyer, "AAPL", "buy", 10, 210_00, "day", expire_at=close)
    gtd_id = market.place(buyer, "AAPL", "buy", 5, 211_00, "gtd", expire_at=gtd_at)
    gtc_id = market.place(buyer, "AAPL", "buy", 1, 209_00, "gtc")
    matcher = market.matcher(["AAPL"])
    matcher.drain()
    assert market.account(buyer).cash_held == 10 * 210_00 + 5 * 211_00 + 209_00
    scheduler = _scheduler(market)

    # Nothing is due yet but the catch-up of Monday's missed end of day; both expiries (none for the GTC)
    # and tonight's end of day are planned.
    assert scheduler.tick() == 1
    assert scheduler.records["eod-2025-06-02"].status == "finished"
    planned = {s["id"] for s in scheduler.status()["scheduled"]}
    assert "eod-2025-06-03" in planned
    assert {j for j in planned if j.startswith("expire-")} == {
        f"expire-AAPL-{int(gtd_at.timestamp() * 1000)}",
        f"expire-AAPL-{int(close.timestamp() * 1000)}",
    }

    market.clock.now = gtd_at - timedelta(seconds=1)
    assert scheduler.tick() == 0
    market.clock.now = gtd_at
    assert scheduler.tick() == 1
    matcher.drain()
    assert market.order(gtd_id).status == "expired"
    assert market.order(day_id).status == "new"
    assert market.account(buyer).cash_held == 10 * 210_00 + 209_00

    market.clock.now = close
    scheduler.tick()
    matcher.drain()
    assert market.order(day_id).status == "expired"
    assert market.order(gtc_id).status == "new"
    account = market.account(buyer)
    assert (account.cash_held, account.cash_available) == (209_00, 1_000_000 - 209_00)
    assert scheduler.status()["failed"] == []
    # the end-of-day job runs just after the close
    market.clock.now = close.replace(second=1)
    assert scheduler.tick() == 1
    with market.sessions() as s:
        days = s.scalars(select(InstrumentClose.day).where(InstrumentClose.symbol == "AAPL")).all()
    assert sorted(days) == [date(2025, 6, 2), date(2025, 6, 3)]
    matcher.close()


def _state(market: Market) -> tuple[list, list, list]:
    with market.sessions() as s:
        closes = [(c.symbol, c.day, c.close, c.source, c.volume) for c in s.scalars(select(InstrumentClose))]
        refs = list(
            s.execute(select(Instrument.symbol, Instrument.reference_price).order_by(Instrument.symbol))
        )
        snaps = [
            (e.account_id, e.day, e.equity, e.cash, e.positions_value)
            for e in s.scalars(select(EquitySnapshot))
        ]
    return sorted(closes), refs, sorted(snaps)


def test_end_of_day_records_closes_moves_the_reference_and_twice_is_once(market: Market) -> None:
    seller, buyer = market.user(0), market.user(1_000_000)
    matcher = market.matcher(["AAPL"])
    market.grant_shares(seller, "AAPL", 10, cost_basis=10 * 220_00)  # bought at 220.00
    market.place(seller, "AAPL", "sell", 10, 231_50)
    market.place(buyer, "AAPL", "buy", 10, 231_50)
    matcher.drain()
    ctx = JobContext(market.sessions, market.bus, NYSE, market.clock)
    market.clock.now = datetime(2025, 6, 3, 20, 0, 1, tzinfo=UTC)
    first = run_end_of_day(ctx, date(2025, 6, 3))
    assert first.closes["AAPL"] == 231_50 and first.closes["MSFT"] == 415_32  # a trade; else the reference
    assert first.closes_recorded == 6 and first.snapshots_recorded == 2
    once = _state(market)
    second = run_end_of_day(ctx, date(2025, 6, 3))
    assert (second.closes_recorded, second.snapshots_recorded) == (0, 0)
    assert _state(market) == once
    closes, refs, snaps = once
    assert ("AAPL", date(2025, 6, 3), 231_50, "trade", 10) in closes
    assert ("AAPL", 231_50) in refs
    assert (buyer, date(2025, 6, 3), 1_000_000, 1_000_000 - 231_500, 231_500) in snaps
    # the engine learned the new reference: its band is now centred on 231.50
    matcher.drain()
    book = matcher.book("AAPL")
    assert (book.reference_price, book.band_low, book.band_high) == (231_50, 208_35, 254_65)
    # nothing left to plan for that close
    with market.sessions() as s:
        assert [j.id for j in plan(s, market.clock(), NYSE, timedelta(0))] == []
    matcher.close()
