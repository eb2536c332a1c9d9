"""Market maker decisions: a two-sided ladder around fair value, skewed by inventory, capped hard.

`desired_quotes` says where the ladder should be; `plan` turns the open orders into cancels and new orders.
The inventory limit is hard: a new buy is only placed while inventory + every open buy's leaves (including
orders being canceled, which may still fill before the cancel lands) + its qty stays <= max_inventory, and a
sell likewise against min_inventory. So no sequence of fills can take inventory outside the limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import Side
from workers.agents.fairvalue import to_tick
from workers.agents.orders import Action, CancelOrder, OpenOrder, Place


@dataclass(frozen=True, slots=True)
class MarketMakerConfig:
    half_spread_ticks: int = 5  # best bid = fair - half spread (before skew)
    levels: int = 3
    level_step_ticks: int = 2
    size: int = 100  # shares per level
    min_inventory: int = 0  # agents cannot sell short: sells are held against shares owned
    max_inventory: int = 2_000
    target_inventory: int | None = None  # None: the middle of [min, max]
    skew_ticks: int = 4  # ladder shift (ticks) at a full inventory deviation
    requote_ticks: int = 1  # keep a resting quote within this many ticks of where it should be

    def __post_init__(self) -> None:
        if self.half_spread_ticks < 1 or self.levels < 1 or self.level_step_ticks < 1 or self.size < 1:
            raise ValueError("spread, levels, step and size must be >= 1")
        if not 0 <= self.min_inventory < self.max_inventory:
            raise ValueError("need 0 <= min_inventory < max_inventory")

    @property
    def target(self) -> int:
        if self.target_inventory is not None:
            return self.target_inventory
        return (self.min_inventory + self.max_inventory) // 2


@dataclass(frozen=True, slots=True)
class Quote:
    side: Side
    price: int
    qty: int


def skew_ticks(config: MarketMakerConfig, inventory: int) -> int:
    """Ticks to shift the whole ladder: negative when long (sell cheaper, buy lower), positive when short."""
    half_range = max(1, (config.max_inventory - config.min_inventory) // 2)
    deviation = max(-1.0, min(1.0, (inventory - config.target) / half_range))
    return -round(deviation * config.skew_ticks)


def desired_quotes(
    config: MarketMakerConfig,
    fair: float,
    inventory: int,
    tick: int,
    band: tuple[int | None, int | None] = (None, None),
    lot: int = 1,
) -> list[Quote]:
    """The ladder, best first per side, ignoring open orders. Prices outside the band are dropped."""
    low, high = band
    centre = to_tick(fair, tick) + skew_ticks(config, inventory) * tick
    size = max(lot, config.size // lot * lot)
    quotes: list[Quote] = []
    for level in range(config.levels):
        offset = (config.half_spread_ticks + level * config.level_step_ticks) * tick
        for side, price in ((Side.BUY, centre - offset), (Side.SELL, centre + offset)):
            if price < tick or (low is not None and price < low) or (high is not None and price > high):
                continue
            quotes.append(Quote(side, price, size))
    return quotes


def plan(
    config: MarketMakerConfig,
    desired: list[Quote],
    open_orders: list[OpenOrder],
    inventory: int,
    tick: int,
    lot: int = 1,
) -> list[Action]:
    """Cancels for quotes that drifted, then new quotes within the hard inventory room."""
    actions: list[Action] = []
    tolerance = config.requote_ticks * tick
    buy_room = config.max_inventory - inventory - sum(o.leaves for o in open_orders if o.side is Side.BUY)
    sell_room = inventory - config.min_inventory - sum(o.leaves for o in open_orders if o.side is Side.SELL)
    for side in (Side.BUY, Side.SELL):
        wanted = [q for q in desired if q.side is side]
        resting = [o for o in open_orders if o.side is side]
        kept: set[int] = set()
        missing: list[Quote] = []
        for quote in wanted:
            match = next(
                (
                    o
                    for o in resting
                    if o.order_id not in kept
                    and o.price is not None
                    and abs(o.price - quote.price) <= tolerance
                ),
                None,
            )
            if match is None:
                missing.append(quote)
            else:
                kept.add(match.order_id)
        actions.extend(CancelOrder(o.order_id) for o in resting if o.order_id not in kept)
        for quote in missing:
            room = buy_room if side is Side.BUY else sell_room
            qty = min(quote.qty, room) // lot * lot
            if qty <= 0:
                break
            actions.append(Place(side, qty, quote.price))
            if side is Side.BUY:
                buy_room -= qty
            else:
                sell_room -= qty
    return actions
