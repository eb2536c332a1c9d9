"""The vocabulary between agent decisions and the runner: what an agent wants, and what it has."""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import Side


@dataclass(frozen=True, slots=True)
class OpenOrder:
    order_id: int
    side: Side
    price: int | None  # cents; None for a market order in flight
    leaves: int


@dataclass(frozen=True, slots=True)
class Place:
    side: Side
    qty: int
    price: int | None = None  # None: market order
    tif: str = "gtc"  # limit quotes rest; market orders are sent as ioc


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: int


Action = Place | CancelOrder
