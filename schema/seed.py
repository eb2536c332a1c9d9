"""The demo market: a few well-known symbols with realistic reference prices. Idempotent."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import Instrument

# symbol, name, reference price (cents): the previous close the +-10% band is centred on.
DEMO_INSTRUMENTS: tuple[tuple[str, str, int], ...] = (
    ("AAPL", "Apple Inc.", 229_87),
    ("MSFT", "Microsoft Corporation", 415_32),
    ("GOOG", "Alphabet Inc. Class C", 167_45),
    ("AMZN", "Amazon.com, Inc.", 186_90),
    ("TSLA", "Tesla, Inc.", 248_50),
    ("NVDA", "NVIDIA Corporation", 121_44),
)


def seed_demo(session: Session) -> list[str]:
    """Insert the demo instruments that are missing. Returns the symbols added.

    Existing rows are left alone: their reference price moves with end-of-day marks."""
    existing = set(session.scalars(select(Instrument.symbol)))
    added = []
    for symbol, name, ref in DEMO_INSTRUMENTS:
        if symbol not in existing:
            session.add(
                Instrument(
                    symbol=symbol,
                    name=name,
                    tick=1,
                    lot=1,
                    min_qty=1,
                    max_qty=1_000_000,
                    max_notional=100_000_000_00,
                    band_bps=1000,
                    reference_price=ref,
                    status="active",
                )
            )
            added.append(symbol)
    session.flush()
    return added
