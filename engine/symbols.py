"""Instrument specs: tick, lot, size limits and the price band around a reference price."""

from __future__ import annotations

from dataclasses import dataclass

BPS = 10_000


@dataclass(frozen=True, slots=True)
class Instrument:
    """Trading rules of one symbol. All prices in ticks' units (int), quantities in shares (int).

    `band_bps` = 1000 means +-10% around `reference_price`; None or 0 disables the band (LOBSTER, benches).
    """

    symbol: str
    tick: int = 1  # a price must be a multiple of tick
    lot: int = 1  # a quantity must be a multiple of lot
    min_qty: int = 1
    max_qty: int | None = None
    max_notional: int | None = None  # price * qty of a limit order
    reference_price: int | None = None
    band_bps: int | None = None

    def band(self, reference: int | None = None) -> tuple[int | None, int | None]:
        return price_band(self.reference_price if reference is None else reference, self.band_bps, self.tick)


def price_band(reference: int | None, band_bps: int | None, tick: int) -> tuple[int | None, int | None]:
    """(low, high) allowed prices, both inclusive, or (None, None) without a band.

    Integer math only. The low bound rounds UP to the tick and the high bound rounds DOWN, so the band
    never admits a price outside reference * (1 +- bps/10000).
    """
    if not band_bps or reference is None:
        return None, None
    unit = BPS * tick
    low = -(-(reference * (BPS - band_bps)) // unit) * tick
    high = (reference * (BPS + band_bps)) // unit * tick
    return max(low, tick), high
