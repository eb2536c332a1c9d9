"""The stats formulas against the hand calculation in scenario.py, plus edge cases."""

from __future__ import annotations

from decimal import Decimal

from analytics_scenario import CURVE, EQUITY_NOW, EXPECTED_STATS, FILLS, MARK, SHARPE

from schema.analytics import (
    Fill,
    LedgerMove,
    daily_returns,
    equity_at,
    fifo_round_trips,
    history_doc,
    max_drawdown,
    sharpe,
    stats,
)


def _fills() -> list[Fill]:
    return [Fill(at, "XYZ", side, price, qty) for at, side, price, qty in FILLS]


def test_stats_equal_the_hand_calculation() -> None:
    assert EQUITY_NOW == 1_024_500
    # mean 0.0082089, sample stdev 0.0181379: 0.45258 * sqrt(252) = 7.1846
    assert SHARPE == "7.1846"
    assert stats(_fills(), CURVE, {"XYZ": MARK}, EQUITY_NOW, 1_029_000) == EXPECTED_STATS


def test_fifo_round_trip_closes_the_oldest_lots_first() -> None:
    trips, lots = fifo_round_trips(_fills())
    assert [(t.qty, t.pnl) for t in trips] == [(15, 25_000), (5, -2_500)]
    assert [(lot.qty, lot.price) for lot in lots["XYZ"]] == [(10, 10_000)]


def test_a_sell_without_lots_is_not_a_round_trip() -> None:
    fills = [Fill(FILLS[0][0], "XYZ", "sell", 100, 5)]
    assert fifo_round_trips(fills) == ([], {})


def test_drawdown_sharpe_and_returns_edges() -> None:
    assert max_drawdown([100, 120, 90, 130, 65]) == (Decimal("0.5000"), 65)
    assert max_drawdown([1, 2, 3]) == (Decimal("0.0000"), 0)
    assert sharpe(daily_returns([100, 110])) is None  # one return
    assert sharpe(daily_returns([100, 100, 100])) is None  # no variation
    assert daily_returns([100, 110, 99]) == [Decimal("0.1"), Decimal("-0.1")]


def test_stats_with_no_trades() -> None:
    doc = stats([], [1_000_000, 1_000_000], {}, 1_000_000, 1_000_000)
    assert doc["win_rate"] is None and doc["avg_win"] is None and doc["sharpe"] is None
    assert doc["realized_pl"] == "0.00" and doc["turnover"] == "0.0000"


def test_history_doc_is_alpaca_shaped() -> None:
    doc = history_doc([1, 2], [1_000_000, 1_024_500], 1_000_000, "1D")
    assert doc == {
        "timestamp": [1, 2],
        "equity": ["10000.00", "10245.00"],
        "profit_loss": ["0.00", "245.00"],
        "profit_loss_pct": ["0.0000", "0.0245"],
        "base_value": "10000.00",
        "timeframe": "1D",
    }


def test_intraday_equity_replays_moves_and_marks_at_the_last_trade() -> None:
    (t1, _, _, _), (t2, _, _, _) = FILLS[0], FILLS[1]
    moves = [LedgerMove(t1, -100_000, "XYZ", 10)]
    prices = {"XYZ": [(t1, 10_000), (t2, 11_000)]}
    ends = [t1.replace(minute=0), t1.replace(minute=30), t2.replace(minute=30)]
    assert equity_at(1_000_000, {}, {}, moves, prices, ends) == [1_000_000, 1_000_000, 1_010_000]
