"""Engine commands on the wire: one compact JSON document per stream entry."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from engine.commands import Cancel, Command, Expire, MassCancel, NewOrder, Replace, SetReference
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


def encode(command: Command) -> str:
    cls = type(command)
    doc: dict[str, Any] = {"k": _KIND_OF[cls]}
    for name in _FIELDS[cls]:
        value = getattr(command, name)
        if value is not None:
            doc[name] = value
    return json.dumps(doc, separators=(",", ":"))


def decode(text: str | bytes) -> Command:
    doc = json.loads(text)
    cls = _CLASS_OF[doc.pop("k")]
    for name, enum in _ENUMS.items():
        if name in doc:
            doc[name] = enum(doc[name])
    return cls(**doc)
