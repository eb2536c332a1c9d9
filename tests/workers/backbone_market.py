"""A tiny intake for backbone tests: what the API does for an order (hold + insert in one transaction,
then publish), written against schema.balances directly so these tests do not depend on the HTTP layer."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.commands import Cancel, Expire, MassCancel, NewOrder, Replace
from engine.types import OrderType, Side, StpMode, TimeInForce
from schema import balances
from schema.db import make_engine, make_session_factory
from schema.migrate import upgrade
from schema.models import Account, Instrument, LedgerEntry, Order, Position, User
from schema.orderbook_load import to_epoch_ms
from schema.transport import CommandBus
from schema.views import band_prices


def now() -> datetime:
    return datetime.now(UTC)


class Market:
    def __init__(self, url: str, bus: CommandBus, *, migrate: bool = True) -> None:
        if migrate:
            upgrade(url)
        self.url = url
        self.engine = make_engine(url, pool_size=4)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.bus = bus
        self._users = 0

    def close(self) -> None:
        self.engine.dispose()

    def add_instrument(self, symbol: str, ref: int = 100_00, band_bps: int = 1000) -> None:
        with self.sessions() as s:
            s.add(Instrument(symbol=symbol, name=symbol, tick=1, lot=1, min_qty=1, max_qty=1_000_000,
                             max_notional=100_000_000_00, band_bps=band_bps, reference_price=ref,
                             status="active"))  # fmt: skip
            s.commit()

    def add_account(self, cash: int = 100_000_00, shares: dict[str, int] | None = None) -> int:
        t = now()
        with self.sessions() as s:
            self._users += 1
            user = User(email=f"u{self._users}-{time.time_ns()}@x.test", password_hash="x")
            s.add(user)
            s.flush()
            account = Account(user_id=user.id, starting_cash=cash, cash_available=0, cash_held=0)
            s.add(account)
            s.flush()
            balances.deposit(s, account.id, cash, t)
            for symbol, qty in (shares or {}).items():
                s.add(Position(account_id=account.id, symbol=symbol, qty=qty, held_qty=0, cost_basis=0,
                               realized_pnl=0))  # fmt: skip
                s.add(LedgerEntry(account_id=account.id, kind="deposit", symbol=symbol, qty_delta=qty,
                                  created_at=t))  # fmt: skip
            s.commit()
            return account.id

    def place(
        self,
        account: int,
        symbol: str,
        side: str,
        qty: int,
        price: int | None = None,
        *,
        type: str = "limit",
        tif: str = "gtc",
        stop: int | None = None,
        stp: str = "cancel_resting",
        expire_at: datetime | None = None,
        publish: bool = True,
    ) -> NewOrder | None:
        """Hold and insert (one transaction), then publish. None if the hold is refused."""
        t = now()
        with self.sessions() as s:
            inst = s.get(Instrument, symbol)
            assert inst is not None
            hold = qty if side == "sell" else qty * (price if price is not None else band_prices(inst)[1])
            order = Order(
                account_id=account, client_order_id=f"c{time.time_ns()}", symbol=symbol, side=side, type=type,
                time_in_force=tif, qty=qty, limit_price=price, stop_price=stop, expire_at=expire_at,
                post_only=False, stp=stp, status="new", filled_qty=0, filled_notional=0, canceled_qty=0,
                hold_cash=hold if side == "buy" else 0, hold_qty=hold if side == "sell" else 0,
                pending_hold=0, triggered=False, seq=None, created_at=t, updated_at=t,
            )  # fmt: skip
            s.add(order)
            s.flush()
            if side == "buy":
                ok = balances.hold_cash(s, account, hold, t, order.id)
            else:
                ok = balances.hold_shares(s, account, symbol, hold, t, order.id)
            if not ok:
                s.rollback()
                return None
            s.commit()
            command = NewOrder(
                order_id=order.id, account=account, symbol=symbol, side=Side(side), type=OrderType(type),
                qty=qty, price=price, stop_price=stop, tif=TimeInForce(tif),
                expire_at=None if expire_at is None else to_epoch_ms(expire_at), stp=StpMode(stp), hold=hold,
                ts=to_epoch_ms(t),
            )  # fmt: skip
        if publish:
            self.bus.publish(symbol, command)
        return command

    def cancel(self, account: int, order_id: int, symbol: str) -> Cancel:
        command = Cancel(order_id=order_id, account=account, symbol=symbol, ts=to_epoch_ms(now()))
        self.bus.publish(symbol, command)
        return command

    def mass_cancel(self, account: int, symbol: str) -> None:
        self.bus.publish(symbol, MassCancel(account=account, symbol=symbol, ts=to_epoch_ms(now())))

    def expire(self, symbol: str, at: datetime) -> None:
        self.bus.publish(symbol, Expire(symbol=symbol, now=to_epoch_ms(at)))

    def replace(
        self, account: int, order_id: int, *, qty: int | None = None, price: int | None = None
    ) -> Replace | None:
        """Like the API: hold what the new terms need beyond the current hold into pending_hold and record
        the request; None if the hold fails or the order has a replace pending."""
        t = now()
        with self.sessions() as s:
            o = s.get(Order, order_id)
            assert o is not None
            new_qty = o.qty if qty is None else qty
            new_price = o.limit_price if price is None else price
            leaves = new_qty - o.filled_qty
            if o.side == "buy":
                extra = max(0, leaves * new_price - o.hold_cash - o.pending_hold)
                ok = balances.hold_cash(s, account, extra, t, o.id)
            else:
                extra = max(0, leaves - o.hold_qty - o.pending_hold)
                ok = balances.hold_shares(s, account, o.symbol, extra, t, o.id)
            if not ok:
                s.rollback()
                return None
            ts = to_epoch_ms(t)
            # Recorded as the pending request, one at a time per order, as schema.intake.replace_order does.
            recorded = s.execute(
                update(Order)
                .where(Order.id == o.id, Order.replace_ts.is_(None))
                .values(pending_hold=Order.pending_hold + extra, replace_ts=ts, replace_qty=qty,
                        replace_limit_price=price, replace_stop_price=None)
            )  # fmt: skip
            if recorded.rowcount != 1:
                s.rollback()
                return None
            s.commit()
            command = Replace(order_id=o.id, account=account, symbol=o.symbol, qty=qty, price=price,
                              extra_hold=extra, ts=ts)  # fmt: skip
        self.bus.publish(command.symbol, command)
        return command

    # ---------------------------------------------------------------- reads
    def order(self, order_id: int) -> Order:
        with self.sessions() as s:
            o = s.get(Order, order_id)
            assert o is not None
            return o

    def account(self, account_id: int) -> Account:
        with self.sessions() as s:
            a = s.get(Account, account_id)
            assert a is not None
            return a

    def position(self, account_id: int, symbol: str) -> Position | None:
        with self.sessions() as s:
            return s.get(Position, (account_id, symbol))

    def trades(self, symbol: str) -> list:
        from schema.models import Trade

        with self.sessions() as s:
            return list(s.scalars(select(Trade).where(Trade.symbol == symbol).order_by(Trade.seq)))
