"""One scripted trading history, its hand-calculated figures, shared by the pure and the SQL tests.

Starting cash 10,000.00. XYZ fills (cents):
  day 1  buy 10 @ 100.00, buy 10 @ 110.00           close 105.00 -> cash 7,900 + 20 * 105 = 10,000.00
  day 2  sell 15 @ 120.00                            close 118.00 -> cash 9,700 + 5 * 118 = 10,290.00
  day 3  sell 5 @ 105.00, buy 10 @ 100.00            now mark 102.00 -> cash 9,225 + 10 * 102 = 10,245.00
FIFO: the day-2 sell closes 10 @ 100 (+200.00) and 5 @ 110 (+50.00): one round trip of +250.00 (a win).
The day-3 sell closes 5 @ 110 at 105: -25.00 (a loss). Open: 10 @ 100.00, marked 102.00: +20.00.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

START_CASH = 1_000_000
DAY1, DAY2, DAY3 = date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 4)  # Mon..Wed
NOW = datetime(2025, 6, 4, 18, 0, tzinfo=UTC)  # day 3, 14:00 New York: the session is open
FILLS = [  # (executed_at, side, price, qty)
    (datetime(2025, 6, 2, 14, 0, tzinfo=UTC), "buy", 10_000, 10),
    (datetime(2025, 6, 2, 15, 0, tzinfo=UTC), "buy", 11_000, 10),
    (datetime(2025, 6, 3, 15, 0, tzinfo=UTC), "sell", 12_000, 15),
    (datetime(2025, 6, 4, 14, 0, tzinfo=UTC), "sell", 10_500, 5),
    (datetime(2025, 6, 4, 15, 0, tzinfo=UTC), "buy", 10_000, 10),
]
MARK = 10_200
SNAPSHOTS = [(DAY1, 1_000_000, 790_000, 210_000), (DAY2, 1_029_000, 970_000, 59_000)]
EQUITY_NOW = 922_500 + 10 * MARK

# The daily curve: starting cash, the two closes, and now.
CURVE = [1_000_000, 1_000_000, 1_029_000, 1_024_500]
RETURNS = [0.0, 1_029_000 / 1_000_000 - 1, 1_024_500 / 1_029_000 - 1]
_MEAN = sum(RETURNS) / 3
_STDEV = math.sqrt(sum((r - _MEAN) ** 2 for r in RETURNS) / 2)
SHARPE = f"{_MEAN / _STDEV * math.sqrt(252):.4f}"
TURNOVER = f"{542_500 / ((1_000_000 + 1_000_000 + 1_029_000 + 1_024_500) / 4):.4f}"

EXPECTED_STATS = {
    "realized_pl": "225.00",
    "unrealized_pl": "20.00",
    "day_change": "-45.00",
    "day_change_pct": "-0.0044",  # -45 / 10,290
    "round_trips": 2,
    "wins": 1,
    "losses": 1,
    "win_rate": "0.5000",
    "avg_win": "250.00",
    "avg_loss": "-25.00",
    "max_drawdown": "0.0044",  # (10,290 - 10,245) / 10,290
    "max_drawdown_amount": "45.00",
    "sharpe": SHARPE,
    "traded_notional": "5425.00",
    "turnover": TURNOVER,  # 5,425 / average of the curve (10,133.75) = 0.5353
    "equity": "10245.00",
}
