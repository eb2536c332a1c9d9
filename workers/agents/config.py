"""Agent configuration: a TOML file per market (see config/agents/demo.toml), or the built-in demo set."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from schema.money import to_cents
from workers.agents.fairvalue import FairValueConfig
from workers.agents.marketmaker import MarketMakerConfig
from workers.agents.noise import NoiseTraderConfig


@dataclass(frozen=True, slots=True)
class InstrumentModel:
    symbol: str
    vol: float = 0.3
    drift: float = 0.0
    jump_rate: float = 0.0
    jump_std: float = 0.02
    start: int | None = None  # cents; None: the instrument's reference price

    def fair_value(self, reference: int, time_scale: float) -> FairValueConfig:
        return FairValueConfig(
            start=self.start or reference,
            vol=self.vol,
            drift=self.drift,
            jump_rate=self.jump_rate,
            jump_std=self.jump_std,
            time_scale=time_scale,
        )


@dataclass(frozen=True, slots=True)
class AgentSpec:
    name: str  # also the agent user's email local part: agent-<name>@agents.bourse.invalid
    kind: str  # market_maker | noise
    symbols: tuple[str, ...]
    cash: int  # cents deposited when the agent is created
    shares: int  # shares of each symbol issued to it when created
    market_maker: MarketMakerConfig | None = None
    noise: NoiseTraderConfig | None = None


@dataclass(frozen=True, slots=True)
class AgentsConfig:
    seed: int = 42
    interval_s: float = 0.25  # how often each agent decides
    time_scale: float = 60.0  # fair-value clock speed-up: one trading day of moves in 6.5 minutes
    instruments: tuple[InstrumentModel, ...] = ()
    agents: tuple[AgentSpec, ...] = field(default_factory=tuple)

    def model(self, symbol: str) -> InstrumentModel:
        return next((m for m in self.instruments if m.symbol == symbol), InstrumentModel(symbol))


def _pick(cls: type, doc: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in doc.items() if k in names})


def _symbols(doc: dict[str, Any]) -> tuple[str, ...]:
    if "symbols" in doc:
        return tuple(doc["symbols"])
    return (doc["symbol"],)


def config_from_dict(doc: dict[str, Any]) -> AgentsConfig:
    market = doc.get("market", {})
    agents: list[AgentSpec] = []
    for mm in doc.get("market_makers", []):
        agents.append(
            AgentSpec(
                mm["name"],
                "market_maker",
                _symbols(mm),
                to_cents(str(mm.get("cash", "1000000"))),
                int(mm.get("shares", 5_000)),
                market_maker=_pick(MarketMakerConfig, mm),
            )  # fmt: skip
        )
    for nt in doc.get("noise_traders", []):
        agents.append(
            AgentSpec(
                nt["name"],
                "noise",
                _symbols(nt),
                to_cents(str(nt.get("cash", "250000"))),
                int(nt.get("shares", 500)),
                noise=_pick(NoiseTraderConfig, nt),
            )  # fmt: skip
        )
    return AgentsConfig(
        seed=int(market.get("seed", 42)),
        interval_s=float(market.get("interval_s", 0.25)),
        time_scale=float(market.get("time_scale", 60.0)),
        instruments=tuple(_pick(InstrumentModel, m) for m in doc.get("instruments", [])),
        agents=tuple(agents),
    )


def load_config(path: str | Path) -> AgentsConfig:
    with open(path, "rb") as fh:
        return config_from_dict(tomllib.load(fh))


def demo_config(symbols: list[str]) -> AgentsConfig:
    """`bourse serve`'s default set: one market maker per symbol and two noise traders over all of them."""
    doc: dict[str, Any] = {
        "market": {"seed": 42, "interval_s": 0.25, "time_scale": 60},
        "instruments": [{"symbol": s, "vol": 0.3, "jump_rate": 0.5, "jump_std": 0.01} for s in symbols],
        "market_makers": [
            {
                "name": f"mm-{s.lower()}",
                "symbol": s,
                "cash": "2000000",
                "shares": 10_000,
                "half_spread_ticks": 3,
                "levels": 5,
                "level_step_ticks": 2,
                "size": 100,
                "max_inventory": 20_000,
                "min_inventory": 0,
                "skew_ticks": 4,
                "requote_ticks": 2,
            }  # fmt: skip
            for s in symbols
        ],
        "noise_traders": [
            {
                "name": f"noise-{i}",
                "symbols": symbols,
                "cash": "500000",
                "shares": 500,
                "rate": 0.4,
                "market_fraction": 0.3,
                "max_qty": 20,
                "max_offset_ticks": 15,
                "max_open_orders": 20,
            }  # fmt: skip
            for i in (1, 2)
        ],
    }
    return config_from_dict(doc)
