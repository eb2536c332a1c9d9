"""Noise trader decisions: random limit and market orders around fair value at a configured rate."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from engine.types import Side
from workers.agents.fairvalue import to_tick
from workers.agents.orders import Action, CancelOrder, OpenOrder, Place


@dataclass(frozen=True, slots=True)
class NoiseTraderConfig:
    rate: float = 0.5  # orders per second (Poisson)
    market_fraction: float = 0.3  # share of market orders; the rest are limit orders
    min_qty: int = 1
    max_qty: int = 50
    max_offset_ticks: int = 20  # a limit price is fair +- up to this many ticks (crossing ones take)
    max_open_orders: int = 10  # beyond this, the oldest open orders are canceled


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; the means here are small (rate * a fraction of a second)."""
    if mean <= 0:
        return 0
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def decide(
    rng: random.Random,
    config: NoiseTraderConfig,
    fair: float,
    dt_seconds: float,
    open_orders: list[OpenOrder],
    shares_available: int,
    tick: int,
    band: tuple[int | None, int | None] = (None, None),
    lot: int = 1,
) -> list[Action]:
    actions: list[Action] = []
    low, high = band
    for _ in range(poisson(rng, config.rate * dt_seconds)):
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        qty = max(lot, rng.randint(config.min_qty, config.max_qty) // lot * lot)
        if side is Side.SELL:
            if shares_available < qty:
                side = Side.BUY  # nothing to sell: buy instead (agents never go short)
            else:
                shares_available -= qty
        if rng.random() < config.market_fraction:
            actions.append(Place(side, qty, None, "ioc"))
            continue
        price = to_tick(fair, tick) + rng.randint(-config.max_offset_ticks, config.max_offset_ticks) * tick
        if low is not None:
            price = max(price, low)
        if high is not None:
            price = min(price, high)
        actions.append(Place(side, qty, max(price, tick), "day"))
    excess = len(open_orders) + sum(isinstance(a, Place) and a.price is not None for a in actions)
    excess -= config.max_open_orders
    for order in sorted(open_orders, key=lambda o: o.order_id)[: max(0, excess)]:
        actions.append(CancelOrder(order.order_id))
    return actions
