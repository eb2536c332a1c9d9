"""Real-data background liquidity: replay a LOBSTER message file (one Nasdaq day) into a symbol.

Parsing and planning are pure (`read_messages`, `plan_replay`); `LobsterReplay` sends the steps through the
ordinary order path as one agent account, time-scaled (speed 10: ten seconds of the day per second):
  type 1 (add)               -> a GTC limit order at the rescaled price
  type 2 (partial cancel)    -> a replace to the smaller qty (a reduce keeps its queue place)
  type 3 (delete)            -> a cancel
  type 4 (visible execution) -> an IOC limit on the other side at that price: it trades with the book as it
                                is now, people's orders included (self-trade prevention off: it may meet
                                the replay's own resting order, as the real aggressor met the real one)
  type 5/6/7 (hidden, cross, halt) -> skipped (nothing visible to reproduce)
Prices are rescaled by reference / first add price, so the real day's shape sits around the symbol's
reference price (and inside its band). The zip archives are unpacked to a temporary directory at run time.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from engine.commands import Cancel
from engine.types import Side, StpMode
from schema.intake import IntakeError, replace_order
from schema.models import Order
from workers.agents.config import AgentSpec
from workers.agents.orders import Place
from workers.agents.runner import OrderGateway, ensure_agent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    time: Decimal  # seconds after midnight
    type: int
    order_id: int
    size: int
    price: int  # dollars * 10000
    direction: int  # 1 buy order, -1 sell order


@dataclass(frozen=True, slots=True)
class Step:
    at: float  # seconds after the first message, before time scaling
    kind: str  # add | reduce | cancel | take
    ref: int  # LOBSTER order id (add/reduce/cancel)
    side: Side
    price: int  # cents, rescaled, on the tick
    qty: int


def read_messages(lines: Iterable[str]) -> Iterator[Message]:
    for line in lines:
        line = line.strip()
        if not line:
            continue
        t, kind, oid, size, price, direction = line.split(",")[:6]
        yield Message(Decimal(t), int(kind), int(oid), int(size), int(price), int(direction))


def message_file(path: str | Path, workdir: str | Path | None = None) -> Path:
    """A message CSV as is, or the message CSV extracted from a LOBSTER zip into a temporary directory."""
    path = Path(path)
    if path.suffix != ".zip":
        return path
    target = Path(workdir or tempfile.mkdtemp(prefix="bourse-lobster-"))
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if "_message_" in n)
        archive.extract(name, target)
    return target / name


def price_factor(messages: Iterable[Message], reference_cents: int) -> Decimal:
    """reference / first visible add price (both in cents)."""
    first = next(m for m in messages if m.type == 1)
    return Decimal(reference_cents) / (Decimal(first.price) / 100)


def _cents(price: int, factor: Decimal, tick: int) -> int:
    value = Decimal(price) / 100 * factor
    return max(tick, int((value / tick).to_integral_value()) * tick)


def plan_replay(messages: Iterable[Message], factor: Decimal, tick: int = 1) -> Iterator[Step]:
    start: Decimal | None = None
    for m in messages:
        start = m.time if start is None else start
        at = float(m.time - start)
        side = Side.BUY if m.direction == 1 else Side.SELL
        if m.type == 1:
            yield Step(at, "add", m.order_id, side, _cents(m.price, factor, tick), m.size)
        elif m.type == 2:
            yield Step(at, "reduce", m.order_id, side, _cents(m.price, factor, tick), m.size)
        elif m.type == 3:
            yield Step(at, "cancel", m.order_id, side, _cents(m.price, factor, tick), m.size)
        elif m.type == 4:
            other = Side.SELL if side is Side.BUY else Side.BUY  # the aggressor was on the other side
            yield Step(at, "take", m.order_id, other, _cents(m.price, factor, tick), m.size)


class LobsterReplay:
    """Sends the steps of one symbol's day as the agent `lobster-<symbol>`."""

    def __init__(
        self,
        gateway: OrderGateway,
        symbol: str,
        path: str | Path,
        speed: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self.symbol = symbol
        self.path = message_file(path)
        self.speed = speed
        self.sleep = sleep
        self.clock = clock
        self.live: dict[int, tuple[int, int]] = {}  # LOBSTER id -> (our order id, qty)
        self.counts = {"add": 0, "reduce": 0, "cancel": 0, "take": 0, "rejected": 0, "skipped": 0}

    def run(self, stop: threading.Event | None = None, limit: int | None = None) -> dict[str, int]:
        rules = self.gateway.rules(self.symbol)
        spec = AgentSpec(
            f"lobster-{self.symbol.lower()}", "replay", (self.symbol,), 10_000_000_000, 1_000_000
        )
        with self.gateway.sessions() as session:
            account = ensure_agent(session, spec, self.gateway.clock())
        with open(self.path) as fh:
            factor = price_factor(read_messages(fh), rules.reference_price)
        started = self.clock()
        with open(self.path) as fh:
            for n, step in enumerate(plan_replay(read_messages(fh), factor, rules.tick)):
                if (stop is not None and stop.is_set()) or (limit is not None and n >= limit):
                    break
                wait = step.at / self.speed - (self.clock() - started)
                if wait > 0:
                    self.sleep(wait)
                self._apply(account, rules, step)
        return self.counts

    def _apply(self, account: int, rules, step: Step) -> None:  # type: ignore[no-untyped-def]
        if step.kind in ("add", "take"):
            tif = "gtc" if step.kind == "add" else "ioc"
            order_id = self.gateway.place(
                account, rules, Place(step.side, step.qty, step.price, tif), StpMode.NONE
            )
            if order_id is None:
                self.counts["rejected"] += 1
                return
            if step.kind == "add":
                self.live[step.ref] = (order_id, step.qty)
            self.counts[step.kind] += 1
            return
        known = self.live.get(step.ref)
        if known is None:  # added before the file starts, or its add was rejected
            self.counts["skipped"] += 1
            return
        order_id, qty = known
        if step.kind == "cancel" or step.qty >= qty:
            self.gateway.bus.publish(self.symbol, Cancel(order_id, account, self.symbol, self._ms()))
            del self.live[step.ref]
            self.counts["cancel"] += 1
            return
        command = None
        with self.gateway.sessions() as session:
            order = session.get(Order, order_id)
            new_qty = None if order is None else order.qty - step.qty
            if order is not None and new_qty is not None and new_qty > order.filled_qty:
                try:
                    _, command = replace_order(session, account, order_id, rules, self.gateway.clock(),
                                               qty=new_qty, limit_price=None, stop_price=None,
                                               ts_ms=self._ms())  # fmt: skip
                except IntakeError:  # already done (filled by someone): nothing to reduce
                    command = None
        if command is None:
            self.counts["skipped"] += 1
            return
        self.gateway.bus.publish(self.symbol, command)
        self.live[step.ref] = (order_id, qty - step.qty)
        self.counts["reduce"] += 1

    def _ms(self) -> int:
        return int(self.gateway.clock().timestamp() * 1000)
