"""The agents' I/O: read an agent's state from SQL, ask its pure decision function, send the orders.

Orders go through schema.intake exactly as the API's POST /orders does (hold + insert in one transaction,
then the NewOrder on the symbol's stream), and cancels as the API's DELETE does (a Cancel on the stream).
That is the whole order path minus HTTP: holds, matcher, settlement and `bourse audit` all cover agents.
Against a scaled-out deployment `bourse agents` runs this in its own process with the same database and
Redis; embedded, `bourse serve` runs it as a thread next to the in-process matcher.

Agents are ordinary users (users.is_agent = True, never on the leaderboard). On first start each gets its
cash as a ledger deposit and its shares as a ledger issuance (kind "deposit", qty_delta), so the cash and
share invariants hold from the first row.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.commands import Cancel, Command
from engine.types import OrderType, Side, StpMode, TimeInForce
from schema import balances
from schema.calendar import Admission, MarketCalendar, admission
from schema.intake import (
    IntakeError,
    OrderSpec,
    Rules,
    hold_for,
    insufficient,
    new_order_command,
    place_order,
)
from schema.intake_batch import NewOrderRow, Outcome, created_order, place_orders
from schema.models import Account, Instrument, Order, Position, User
from schema.transport import CommandBus
from workers.agents import marketmaker, noise
from workers.agents.config import AgentsConfig, AgentSpec
from workers.agents.fairvalue import FairValue
from workers.agents.orders import Action, CancelOrder, OpenOrder, Place

log = logging.getLogger(__name__)
OPEN = ("new", "partially_filled")


def _now() -> datetime:
    return datetime.now(UTC)


def agent_email(name: str) -> str:
    return f"agent-{name}@agents.bourse.invalid"


def ensure_agent(session: Session, spec: AgentSpec, now: datetime) -> int:
    """The agent's account id, creating the user, cash and shares the first time (committed here)."""
    email = agent_email(spec.name)
    account_id = session.scalar(
        select(Account.id).join(User, User.id == Account.user_id).where(User.email == email)
    )
    if account_id is not None:
        return account_id
    user = User(
        email=email, password_hash="!agent", display_name=None, leaderboard_opt_in=False, is_agent=True
    )
    session.add(user)
    session.flush()
    account = Account(user_id=user.id, starting_cash=spec.cash, cash_available=0, cash_held=0)
    session.add(account)
    session.flush()
    balances.deposit(session, account.id, spec.cash, now)
    for symbol in spec.symbols:
        reference = session.scalar(select(Instrument.reference_price).where(Instrument.symbol == symbol))
        if reference is None:
            raise LookupError(f"agent {spec.name}: unknown symbol {symbol}")
        session.add(
            Position(
                account_id=account.id,
                symbol=symbol,
                qty=spec.shares,
                held_qty=0,
                cost_basis=spec.shares * reference,
                realized_pnl=0,
            )  # fmt: skip
        )
        balances.record(session, account.id, "deposit", now, symbol=symbol, qty_delta=spec.shares)
    session.commit()
    return account.id


@dataclass(frozen=True, slots=True)
class AgentState:
    inventory: int  # shares owned (held ones included)
    shares_available: int
    open_orders: list[OpenOrder]


def agent_states(
    session: Session, account_ids: Collection[int], symbols: Collection[str]
) -> dict[tuple[int, str], AgentState]:
    """Every agent's inventory and open orders on every symbol, by (account id, symbol): two queries per
    round for all agents together. Two per agent and symbol (18 pairs in the demo set, four rounds a
    second) were part of the 0.34–0.37 ms of CPU per people's order the agents' process took at saturation
    (benchmarks/RESULTS.md, agent overhead)."""
    held = {
        (account_id, symbol): (qty, held_qty)
        for account_id, symbol, qty, held_qty in session.execute(
            select(Position.account_id, Position.symbol, Position.qty, Position.held_qty).where(
                Position.account_id.in_(account_ids), Position.symbol.in_(symbols)
            )
        )
    }
    open_orders: dict[tuple[int, str], list[OpenOrder]] = {}
    rows = session.execute(
        select(
            Order.account_id,
            Order.symbol,
            Order.id,
            Order.side,
            Order.limit_price,
            Order.qty - Order.filled_qty - Order.canceled_qty,
        )
        .where(Order.account_id.in_(account_ids), Order.symbol.in_(symbols), Order.status.in_(OPEN))
        .order_by(Order.id)
    )
    for account_id, symbol, oid, side, price, leaves in rows:
        open_orders.setdefault((account_id, symbol), []).append(
            OpenOrder(oid, Side(side), price, int(leaves))
        )
    out: dict[tuple[int, str], AgentState] = {}
    for key in {(a, s) for a in account_ids for s in symbols}:
        qty, held_qty = held.get(key, (0, 0))
        out[key] = AgentState(qty, qty - held_qty, open_orders.get(key, []))
    return out


def _spec(rules: Rules, action: Place, stp: StpMode) -> OrderSpec:
    market = action.price is None
    return OrderSpec(
        symbol=rules.symbol,
        side=action.side,
        type=OrderType.MARKET if market else OrderType.LIMIT,
        tif=TimeInForce(action.tif if not market else "ioc"),
        qty=action.qty,
        limit_price=action.price,
        stp=stp,
    )


class OrderGateway:
    """Places and cancels for agents through schema.intake and the command bus (the API's order path)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        bus: CommandBus,
        clock: Callable[[], datetime] = _now,
        calendar: MarketCalendar | None = None,
    ) -> None:
        self.sessions = session_factory
        self.bus = bus
        self.clock = clock
        # The API's admission rule applies to agents too: nothing is sent while the market is closed.
        self.calendar = calendar
        self.rejects: dict[str, int] = {}

    def rules(self, symbol: str) -> Rules:
        with self.sessions() as session:
            inst = session.get(Instrument, symbol)
            if inst is None:
                raise LookupError(symbol)
            return Rules.of(inst)

    def place(
        self, account_id: int, rules: Rules, action: Place, stp: StpMode = StpMode.CANCEL_RESTING
    ) -> int | None:
        now = self.clock()
        if not self._admitted(now, 1):
            return None
        spec = _spec(rules, action, stp)
        with self.sessions() as session:
            try:
                placed = place_order(session, account_id, spec, rules, now, None)
            except IntakeError as exc:  # e.g. funds spent by fills not yet seen: skip this one
                self._reject(exc.code)
                return None
        self.bus.publish(
            rules.symbol, new_order_command(placed.order, placed.hold, int(now.timestamp() * 1000))
        )
        return placed.order.id

    def place_all(self, orders: Sequence[tuple[int, Rules, Place]]) -> int:
        """A round's new orders, each with the outcome `place` would give it, and how many were placed.
        On PostgreSQL they are held and inserted by one `bourse_place_orders` call, the API's group-commit
        function: one at a time through the ORM they were most of the 0.26–0.30 ms of CPU per people's
        order the agents' process still took at saturation after the state read was batched (0.05 now)."""
        if not orders:
            return 0
        now = self.clock()
        if not self._admitted(now, len(orders)):
            return 0
        with self.sessions() as session:
            if session.get_bind().dialect.name != "postgresql":
                session.close()
                return sum(self.place(a, r, p) is not None for a, r, p in orders)
            rows = []
            for account_id, rules, action in orders:
                spec = _spec(rules, action, StpMode.CANCEL_RESTING)
                rows.append(NewOrderRow(account_id, spec, uuid.uuid4().hex, hold_for(spec, rules), now, None))
            outcomes = place_orders(session.connection(), rows)
            session.commit()
        ts = int(now.timestamp() * 1000)
        commands: dict[str, list[Command]] = {}
        for row, (outcome, order_id) in zip(rows, outcomes, strict=True):
            if outcome is Outcome.CREATED and order_id is not None:
                commands.setdefault(row.spec.symbol, []).append(
                    new_order_command(created_order(row, order_id), row.hold, ts)
                )
            elif outcome is Outcome.INSUFFICIENT:
                self._reject(insufficient(row.spec, row.hold).code)
            else:  # pragma: no cover - a fresh uuid4 client_order_id is never taken
                self._reject("DUPLICATE_CLIENT_ORDER_ID")
        for symbol, batch in commands.items():
            self.bus.publish_many(symbol, batch)
        return sum(len(batch) for batch in commands.values())

    def _admitted(self, now: datetime, n: int) -> bool:
        if self.calendar is not None and admission(now, self.calendar) is not Admission.ACCEPT:
            self.rejects["MARKET_CLOSED"] = self.rejects.get("MARKET_CLOSED", 0) + n
            return False
        return True

    def _reject(self, code: str) -> None:
        self.rejects[code] = self.rejects.get(code, 0) + 1

    def cancel(self, account_id: int, symbol: str, order_id: int) -> None:
        self.bus.publish(symbol, Cancel(order_id, account_id, symbol, int(self.clock().timestamp() * 1000)))


class AgentRunner:
    """Runs every agent of a config: one decision round per interval (call `round()` or `run(stop)`)."""

    def __init__(
        self,
        config: AgentsConfig,
        gateway: OrderGateway,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.clock = clock
        self.accounts: dict[str, int] = {}
        self.fair: dict[str, FairValue] = {}
        self.rules: dict[str, Rules] = {}
        self.rngs: dict[str, random.Random] = {}
        self.pending_cancels: dict[str, set[int]] = {}
        self._last = clock()
        self.placed = 0
        self.canceled = 0

    def setup(self) -> None:
        symbols = sorted({s for a in self.config.agents for s in a.symbols})
        with self.gateway.sessions() as session:
            for spec in self.config.agents:
                self.accounts[spec.name] = ensure_agent(session, spec, self.gateway.clock())
        for i, symbol in enumerate(symbols):
            self.rules[symbol] = self.gateway.rules(symbol)
            model = self.config.model(symbol)
            cfg = model.fair_value(self.rules[symbol].reference_price, self.config.time_scale)
            self.fair[symbol] = FairValue(cfg, seed=self.config.seed * 1_000 + i)
        for j, spec in enumerate(self.config.agents):
            self.rngs[spec.name] = random.Random(self.config.seed * 7_919 + j)
            self.pending_cancels[spec.name] = set()

    def round(self) -> None:
        now = self.clock()
        dt, self._last = now - self._last, now
        for fair in self.fair.values():
            fair.step(dt)
        try:
            with self.gateway.sessions() as session:
                states = agent_states(session, list(self.accounts.values()), list(self.fair))
        except Exception:  # the database is away: this round is skipped, the next one tries again
            log.exception("agents could not read their state")
            return
        to_place: list[tuple[int, Rules, Place]] = []
        for spec in self.config.agents:
            for symbol in spec.symbols:
                try:
                    to_place += self._act(spec, symbol, dt, states[self.accounts[spec.name], symbol])
                except Exception:  # one agent's failure must not stop the market
                    log.exception("agent %s on %s failed", spec.name, symbol)
        try:
            self.placed += self.gateway.place_all(to_place)
        except Exception:  # the database is away: these orders are dropped, the next round decides again
            log.exception("agents could not place %d orders", len(to_place))

    def _act(
        self, spec: AgentSpec, symbol: str, dt: float, state: AgentState
    ) -> list[tuple[int, Rules, Place]]:
        """Send the agent's cancels on `symbol`; return the orders it wants placed."""
        account_id = self.accounts[spec.name]
        rules = self.rules[symbol]
        band = (rules.band_low, rules.band_high)
        # A cancel already sent is not sent again while the order is still open in SQL.
        pending = self.pending_cancels[spec.name]
        pending &= {o.order_id for o in state.open_orders}
        fair = self.fair[symbol].value
        actions: list[Action]
        if spec.market_maker is not None:
            desired = marketmaker.desired_quotes(
                spec.market_maker, fair, state.inventory, rules.tick, band, rules.lot
            )
            mm = spec.market_maker
            actions = marketmaker.plan(mm, desired, state.open_orders, state.inventory, rules.tick, rules.lot)
        else:
            assert spec.noise is not None
            actions = noise.decide(self.rngs[spec.name], spec.noise, fair, dt, state.open_orders,
                                   state.shares_available, rules.tick, band, rules.lot)  # fmt: skip
        places: list[tuple[int, Rules, Place]] = []
        for action in actions:
            if isinstance(action, CancelOrder):
                if action.order_id not in pending:
                    self.gateway.cancel(account_id, symbol, action.order_id)
                    pending.add(action.order_id)
                    self.canceled += 1
            else:
                places.append((account_id, rules, action))
        return places

    def refresh_rules(self) -> None:
        """Reference prices (and bands) move at the end of day."""
        for symbol in self.rules:
            self.rules[symbol] = self.gateway.rules(symbol)

    def run(self, stop: threading.Event) -> None:
        next_refresh = self.clock() + 60
        while not stop.is_set():
            self.round()
            if self.clock() >= next_refresh:
                self.refresh_rules()
                next_refresh = self.clock() + 60
            stop.wait(self.config.interval_s)


def start_thread(runner: AgentRunner, stop: threading.Event) -> threading.Thread:
    """For `bourse serve`: set up the agents, then run them in a daemon thread until `stop`."""
    runner.setup()
    thread = threading.Thread(target=runner.run, args=(stop,), name="bourse-agents", daemon=True)
    thread.start()
    return thread
