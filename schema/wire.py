"""Engine commands on the wire: one compact JSON document per stream entry. orjson, because the API
encodes every command it publishes and the matcher decodes every one it reads: a NewOrder encodes in
1.8 us against 7-12 with the stdlib's json, and decodes in 8.5 against 11-15 (the rest of a decode is
building the dataclass)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import orjson

from engine.commands import Cancel, Command, Expire, MassCancel, NewOrder, Replace, SetReference, Withdraw
from engine.types import OrderType, Side, StpMode, TimeInForce

_KIND_OF: dict[type, str] = {
    NewOrder: "new",
    Cancel: "cancel",
    MassCancel: "mass_cancel",
    Replace: "replace",
    Expire: "expire",
    SetReference: "set_reference",
}
_CLASS_OF = {kind: cls for cls, kind in _KIND_OF.items()}
_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in _KIND_OF}
_ENUMS: dict[str, Any] = {"side": Side, "type": OrderType, "tif": TimeInForce, "stp": StpMode}


# A Withdraw travels as its NewOrder's fields under its own kind (the reconciler sends it, see
# workers.reconciler).
_WITHDRAW = "withdraw"


def encode(command: Command) -> bytes:
    kind = None
    if isinstance(command, Withdraw):
        command, kind = command.order, _WITHDRAW
    cls = type(command)
    doc: dict[str, Any] = {"k": kind or _KIND_OF[cls]}
    for name in _FIELDS[cls]:
        value = getattr(command, name)
        if value is not None:
            doc[name] = value
    return orjson.dumps(doc)


def decode(text: str | bytes) -> Command:
    doc = orjson.loads(text)
    kind = doc.pop("k")
    for name, enum in _ENUMS.items():
        if name in doc:
            doc[name] = enum(doc[name])
    if kind == _WITHDRAW:
        return Withdraw(NewOrder(**doc))
    return _CLASS_OF[kind](**doc)
