"""Request bodies, validated at the edge. Amounts are decimal strings (a JSON integer is accepted for
whole numbers); floats are refused because they cannot carry exact cents."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator

from engine.types import OrderType, Side, StpMode, TimeInForce

_DECIMAL = re.compile(r"^\s*\d{1,15}(\.\d{1,8})?\s*$")


def _decimal_text(value: Any) -> str:
    # bool is an int subclass and float cannot be exact: both refused, as is scientific notation.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('must be a decimal string such as "10.25"')
    text = str(value)
    if not _DECIMAL.match(text):
        raise ValueError('must be a non-negative decimal string such as "10.25"')
    return text.strip()


DecimalText = Annotated[str, BeforeValidator(_decimal_text)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=400)


class RegisterRequest(_Body):
    email: str = Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    password: str = Field(min_length=8, max_length=128)
    display_name: str | None = Field(None, min_length=1, max_length=40, pattern=r"^[\w .\-]+$")

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()


class LoginRequest(_Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=128)

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()


class RefreshRequest(_Body):
    refresh_token: str = Field(min_length=1, max_length=200)


class OrderRequest(_Body):
    symbol: str = Field(min_length=1, max_length=12)
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    qty: DecimalText
    limit_price: DecimalText | None = None
    stop_price: DecimalText | None = None
    expire_at: datetime | None = None
    client_order_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    post_only: StrictBool = False
    stp: StpMode = StpMode.CANCEL_RESTING

    @field_validator("symbol")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.strip().upper()

    @field_validator("expire_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return None
        try:
            return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        except OverflowError as exc:  # e.g. 9999-12-31T23:59-01:00
            raise ValueError("expire_at is out of range") from exc


class ReplaceRequest(_Body):
    qty: DecimalText | None = None
    limit_price: DecimalText | None = None
    stop_price: DecimalText | None = None


class ResetRequest(_Body):
    starting_cash: DecimalText | None = None
