"""Price band integer math: the low bound rounds up to the tick, the high bound rounds down."""

from __future__ import annotations

from engine.symbols import Instrument, price_band


def test_band_bounds_round_inward_to_the_tick():
    # 1003 * 0.9 = 902.7 -> 905 (up); 1003 * 1.1 = 1103.3 -> 1100 (down)
    assert price_band(1003, 1000, 5) == (905, 1100)
    # exact multiples stay: 10000 +- 10% with tick 5
    assert price_band(10_000, 1000, 5) == (9_000, 11_000)
    assert price_band(10_000, 1, 1) == (9_999, 10_001)


def test_no_band_without_bps_or_reference():
    assert price_band(10_000, None, 1) == (None, None)
    assert price_band(10_000, 0, 1) == (None, None)
    assert price_band(None, 1000, 1) == (None, None)


def test_low_bound_never_below_one_tick():
    assert price_band(3, 10_000, 1) == (1, 6)  # +-100%: low would be 0
    assert Instrument("X", tick=5, reference_price=10_000, band_bps=1000).band() == (9_000, 11_000)
    assert Instrument("X", tick=5, reference_price=10_000, band_bps=1000).band(20_000) == (18_000, 22_000)
