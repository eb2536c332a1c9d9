"""Pure agent logic: fair value determinism, market-maker skew and hard inventory limits, noise traders."""

from __future__ import annotations

import random

import pytest

from engine.types import Side
from workers.agents.fairvalue import FairValue, FairValueConfig, path
from workers.agents.marketmaker import MarketMakerConfig, desired_quotes, plan, skew_ticks
from workers.agents.noise import NoiseTraderConfig, decide
from workers.agents.orders import CancelOrder, OpenOrder, Place

TICK = 1


def test_fair_value_is_deterministic_given_a_seed() -> None:
    cfg = FairValueConfig(start=10_000, vol=0.4, jump_rate=2.0, time_scale=60)
    assert path(cfg, 7, 500, 0.1) == path(cfg, 7, 500, 0.1)
    assert path(cfg, 7, 500, 0.1) != path(cfg, 8, 500, 0.1)


def test_fair_value_moves_but_stays_positive_and_quotes_on_the_tick() -> None:
    fair = FairValue(FairValueConfig(start=10_000, vol=0.5, time_scale=600), seed=1)
    values = [fair.step(1.0) for _ in range(1_000)]
    assert min(values) > 0 and len({round(v) for v in values}) > 10
    assert fair.quote_price(5) % 5 == 0


def test_fair_value_with_zero_vol_and_drift_is_constant() -> None:
    fair = FairValue(FairValueConfig(start=12_345, vol=0.0), seed=3)
    assert [fair.step(1.0) for _ in range(10)] == [12_345.0] * 10


def test_quotes_are_two_sided_around_fair_value_when_flat() -> None:
    cfg = MarketMakerConfig(half_spread_ticks=5, levels=2, level_step_ticks=2, size=100, max_inventory=1_000)
    quotes = desired_quotes(cfg, 10_000.2, inventory=cfg.target, tick=TICK)
    assert [(q.side, q.price) for q in quotes] == [
        (Side.BUY, 9_995), (Side.SELL, 10_005), (Side.BUY, 9_993), (Side.SELL, 10_007),
    ]  # fmt: skip


def test_skew_lowers_quotes_when_long_and_raises_them_when_short() -> None:
    cfg = MarketMakerConfig(min_inventory=0, max_inventory=1_000, skew_ticks=4)
    assert skew_ticks(cfg, 500) == 0
    assert skew_ticks(cfg, 1_000) == -4  # long: sell cheaper, buy lower
    assert skew_ticks(cfg, 0) == 4  # short of target: buy higher
    long_quotes = desired_quotes(cfg, 10_000, inventory=900, tick=TICK)
    flat_quotes = desired_quotes(cfg, 10_000, inventory=500, tick=TICK)
    assert all(lq.price < fq.price for lq, fq in zip(long_quotes, flat_quotes, strict=True))


def test_quotes_outside_the_band_are_dropped() -> None:
    cfg = MarketMakerConfig(half_spread_ticks=5, levels=3, level_step_ticks=5)
    quotes = desired_quotes(cfg, 10_000, inventory=cfg.target, tick=TICK, band=(9_990, 10_012))
    assert {q.price for q in quotes} == {9_995, 9_990, 10_005, 10_010}


def test_plan_keeps_quotes_within_tolerance_and_replaces_the_rest() -> None:
    cfg = MarketMakerConfig(half_spread_ticks=5, levels=1, size=100, requote_ticks=1, max_inventory=10_000)
    desired = desired_quotes(cfg, 10_000, inventory=cfg.target, tick=TICK)  # bid 9995, ask 10005
    open_orders = [OpenOrder(1, Side.BUY, 9_996, 100), OpenOrder(2, Side.SELL, 10_010, 100)]
    actions = plan(cfg, desired, open_orders, inventory=cfg.target, tick=TICK)
    assert actions == [CancelOrder(2), Place(Side.SELL, 100, 10_005)]


def test_plan_never_exceeds_the_inventory_room_counting_open_orders() -> None:
    cfg = MarketMakerConfig(half_spread_ticks=1, levels=3, size=100, min_inventory=0, max_inventory=1_000)
    desired = desired_quotes(cfg, 10_000, inventory=850, tick=TICK)
    # 850 owned + 100 already bid (even though we cancel it) leaves room for 50 more bought
    actions = plan(cfg, desired, [OpenOrder(9, Side.BUY, 9_000, 100)], inventory=850, tick=TICK)
    buys = [a for a in actions if isinstance(a, Place) and a.side is Side.BUY]
    assert CancelOrder(9) in actions and sum(b.qty for b in buys) == 50


def _simulate(seconds: float, dt: float, seed: int) -> tuple[int, int, int]:
    """Market maker vs a random flow: cancels land one step late (orders can fill meanwhile), fills are
    random partials of any open order, with takers biased towards orders mispriced against fair value."""
    rng = random.Random(seed)
    cfg = MarketMakerConfig(half_spread_ticks=2, levels=3, level_step_ticks=1, size=120, min_inventory=100,
                            max_inventory=1_500, skew_ticks=6)  # fmt: skip
    fair = FairValue(FairValueConfig(start=5_000, vol=0.8, jump_rate=20, jump_std=0.01, time_scale=300), seed)
    inventory, next_id = 800, 1
    open_orders: dict[int, OpenOrder] = {}
    pending_cancels: list[int] = []
    low = high = inventory
    fills = 0
    for _ in range(int(seconds / dt)):
        value = fair.step(dt)
        # fills first: orders being canceled are still live
        for oid, order in list(open_orders.items()):
            assert order.price is not None
            mispriced = (order.side is Side.BUY and order.price >= value) or (
                order.side is Side.SELL and order.price <= value
            )
            if rng.random() < (0.6 if mispriced else 0.05):
                qty = rng.randint(1, order.leaves)
                inventory += qty if order.side is Side.BUY else -qty
                fills += 1
                if qty == order.leaves:
                    del open_orders[oid]
                else:
                    open_orders[oid] = OpenOrder(oid, order.side, order.price, order.leaves - qty)
            low, high = min(low, inventory), max(high, inventory)
            assert cfg.min_inventory <= inventory <= cfg.max_inventory
        for oid in pending_cancels:
            open_orders.pop(oid, None)
        pending_cancels = []
        desired = desired_quotes(cfg, value, inventory, TICK)
        for action in plan(cfg, desired, list(open_orders.values()), inventory, TICK):
            if isinstance(action, CancelOrder):
                pending_cancels.append(action.order_id)
            else:
                open_orders[next_id] = OpenOrder(next_id, action.side, action.price, action.qty)
                next_id += 1
        # the hard limit, counting every open order
        buys = sum(o.leaves for o in open_orders.values() if o.side is Side.BUY)
        sells = sum(o.leaves for o in open_orders.values() if o.side is Side.SELL)
        assert inventory + buys <= cfg.max_inventory and inventory - sells >= cfg.min_inventory
    return low, high, fills


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_inventory_limits_hold_over_a_ten_minute_simulated_run(seed: int) -> None:
    low, high, fills = _simulate(seconds=600, dt=0.1, seed=seed)
    assert fills > 1_000  # the run did trade a lot
    assert low >= 100 and high <= 1_500


def test_noise_trader_rate_mix_and_no_short_sales() -> None:
    rng = random.Random(42)
    cfg = NoiseTraderConfig(rate=5.0, market_fraction=0.25, min_qty=1, max_qty=10, max_open_orders=1_000_000)
    places: list[Place] = []
    for _ in range(2_000):  # 200 seconds
        actions = decide(rng, cfg, 10_000, 0.1, [], shares_available=5, tick=TICK, band=(9_000, 11_000))
        places += [a for a in actions if isinstance(a, Place)]
    assert 900 <= len(places) <= 1_100  # Poisson(5/s) over 200 s
    market = sum(p.price is None for p in places) / len(places)
    assert 0.2 < market < 0.3
    assert all(p.qty <= 5 for p in places if p.side is Side.SELL)
    assert all(9_980 <= p.price <= 10_020 for p in places if p.price is not None)


def test_noise_trader_cancels_its_oldest_orders_beyond_the_cap() -> None:
    cfg = NoiseTraderConfig(rate=0.0, max_open_orders=2)
    open_orders = [OpenOrder(i, Side.BUY, 9_990, 1) for i in (5, 3, 9)]
    assert decide(random.Random(0), cfg, 10_000, 1.0, open_orders, 0, TICK) == [CancelOrder(3)]
