"""Fair value: a seeded geometric Brownian motion per instrument, optionally with jumps.

Pure and deterministic: the same config and seed give the same path. Floats live only here; prices leave
as integer cents on the tick grid (`quote_price`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# Volatility and drift are annualised over trading time: 252 sessions of 6.5 hours.
TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600


@dataclass(frozen=True, slots=True)
class FairValueConfig:
    start: int  # cents
    vol: float = 0.30  # annualised volatility
    drift: float = 0.0  # annualised drift (mu)
    jump_rate: float = 0.0  # expected jumps per trading day
    jump_std: float = 0.02  # stdev of the log jump size
    # Demo markets run time faster than the clock (e.g. 60: a day's moves in 6.5 minutes).
    time_scale: float = 1.0


class FairValue:
    """S(t+dt) = S(t) exp((mu-sigma^2/2)dt + sigma sqrt(dt) Z) exp(J); J ~ N(0, jump_std) w.p. lambda*dt."""

    def __init__(self, config: FairValueConfig, seed: int) -> None:
        if config.start <= 0:
            raise ValueError("start must be a positive price in cents")
        self.config = config
        self._rng = random.Random(seed)
        self._value = float(config.start)

    @property
    def value(self) -> float:
        return self._value

    def step(self, dt_seconds: float) -> float:
        cfg = self.config
        dt = dt_seconds * cfg.time_scale / TRADING_SECONDS_PER_YEAR
        if dt <= 0:
            return self._value
        z = self._rng.gauss(0.0, 1.0)
        log_move = (cfg.drift - 0.5 * cfg.vol**2) * dt + cfg.vol * math.sqrt(dt) * z
        if cfg.jump_rate > 0:
            jump_probability = cfg.jump_rate * dt * 252  # jump_rate is per trading day
            if self._rng.random() < jump_probability:
                log_move += self._rng.gauss(0.0, cfg.jump_std)
        self._value *= math.exp(log_move)
        return self._value

    def quote_price(self, tick: int) -> int:
        return to_tick(self._value, tick)


def to_tick(value: float, tick: int) -> int:
    """Nearest multiple of tick, never below one tick."""
    return max(tick, int(round(value / tick)) * tick)


def path(config: FairValueConfig, seed: int, steps: int, dt_seconds: float) -> list[float]:
    """The first `steps` values after the start (handy for tests and plots)."""
    fair = FairValue(config, seed)
    return [fair.step(dt_seconds) for _ in range(steps)]
