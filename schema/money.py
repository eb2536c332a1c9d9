"""Conversions at the edge: decimal strings <-> integer cents and shares. Never a float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

CENTS = 100


class AmountError(ValueError):
    """A decimal string that is not a valid amount (too many decimals, not a number, ...)."""


def parse_decimal(text: str | int | Decimal) -> Decimal:
    if isinstance(text, float):  # floats are refused on purpose: they cannot carry exact cents
        raise AmountError("amounts must be decimal strings, not floats")
    try:
        value = Decimal(str(text))
    except InvalidOperation as exc:
        raise AmountError(f"{text!r} is not a decimal number") from exc
    if not value.is_finite():
        raise AmountError(f"{text!r} is not a finite number")
    return value


def to_cents(text: str | int | Decimal) -> int:
    """'101.25' -> 10125. More than two decimals is an error, never rounded."""
    scaled = parse_decimal(text) * CENTS
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{text} has more than two decimals")
    return int(scaled)


def to_shares(text: str | int | Decimal) -> int:
    value = parse_decimal(text)
    if value != value.to_integral_value():
        raise AmountError(f"{text} is not a whole number of shares")
    return int(value)


def cents_str(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), CENTS)
    return f"{sign}{whole}.{frac:02d}"


def cents_str_or_none(cents: int | None) -> str | None:
    return None if cents is None else cents_str(cents)


def avg_price_str(notional_cents: int, qty: int) -> str | None:
    """Average price with 4 decimals (an average of cent prices needs more than two)."""
    if qty == 0:
        return None
    # Integer math (hot in the publisher): notional * 100 / qty in 1/10000ths, rounded half to even,
    # exactly what Decimal(...).quantize(Decimal("0.0001")) gives.
    q, r = divmod(abs(notional_cents) * 100, qty)
    if 2 * r > qty or (2 * r == qty and q % 2):
        q += 1
    sign = "-" if notional_cents < 0 and q else ""
    whole, frac = divmod(q, 10_000)
    return f"{sign}{whole}.{frac:04d}"
