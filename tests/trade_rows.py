"""Test fixture rows: a filled buy/sell order pair and their trade, written straight into SQL for tests
that read the tape, candles or analytics and do not need the matcher."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from schema.models import Order, Trade


def insert_filled_trade(
    s: Session, *, symbol: str, seq: int, buyer: int, seller: int, price: int, qty: int, at: datetime
) -> Trade:
    """Two filled limit orders (buyer's, seller's) and the trade between them; flushed, not committed."""
    ids = []
    for acct, side in ((buyer, "buy"), (seller, "sell")):
        o = Order(
            account_id=acct,
            client_order_id=f"t{symbol}{seq}{side}",
            symbol=symbol,
            side=side,
            type="limit",
            time_in_force="gtc",
            qty=qty,
            limit_price=price,
            status="filled",
            filled_qty=qty,
            filled_notional=price * qty,
            created_at=at,
            updated_at=at,
        )
        s.add(o)
        s.flush()
        ids.append(o.id)
    trade = Trade(
        symbol=symbol,
        seq=seq,
        price=price,
        qty=qty,
        aggressor="buy",
        buy_order_id=ids[0],
        sell_order_id=ids[1],
        buyer_account_id=buyer,
        seller_account_id=seller,
        executed_at=at,
    )
    s.add(trade)
    s.flush()
    return trade
