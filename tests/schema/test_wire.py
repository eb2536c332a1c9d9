"""schema.wire: every engine command survives the stream unchanged (types, enums, None fields)."""

from __future__ import annotations

import json

import pytest

from engine.commands import Cancel, Expire, MassCancel, NewOrder, Replace, SetReference, Withdraw
from engine.types import OrderType, Side, StpMode, TimeInForce
from schema import wire

NEW = NewOrder(
    order_id=7, account=3, symbol="AAPL", side=Side.SELL, type=OrderType.STOP_LIMIT, qty=10, price=23_000,
    stop_price=22_900, tif=TimeInForce.GTD, expire_at=1_800_000_000_000, post_only=False,
    stp=StpMode.CANCEL_BOTH, hold=10, ts=5,
)  # fmt: skip


@pytest.mark.parametrize(
    "command",
    [
        NEW,
        NewOrder(order_id=8, account=3, symbol="MSFT", side=Side.BUY, type=OrderType.MARKET, qty=1),
        Cancel(7, 3, "AAPL", 9),
        MassCancel(3, "AAPL", 9),
        Replace(order_id=7, account=3, symbol="AAPL", qty=5, price=None, stop_price=None, extra_hold=0, ts=9),
        Expire("AAPL", 1_800_000_000_000),
        SetReference("AAPL", 23_100, 9),
        Withdraw(NEW),
    ],
)
def test_round_trip(command: object) -> None:
    decoded = wire.decode(wire.encode(command))  # type: ignore[arg-type]
    assert decoded == command and type(decoded) is type(command)


def test_a_withdraw_is_its_new_orders_fields_under_its_own_kind() -> None:
    doc = json.loads(wire.encode(Withdraw(NEW)))
    assert doc.pop("k") == "withdraw"
    assert doc == {k: v for k, v in json.loads(wire.encode(NEW)).items() if k != "k"}
    assert isinstance(wire.decode(wire.encode(Withdraw(NEW))).order.side, Side)  # type: ignore[union-attr]
