"""Vocabulary of the engine. Prices are int ticks, quantities int shares, cash int minor units.

Cash in the engine is always `price * qty` in the instrument's integer price units; the schema maps those
to money (for the listed instruments one price unit is one cent, so the product is exact in cents).
"""

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    GTD = "gtd"
    IOC = "ioc"
    FOK = "fok"


class StpMode(StrEnum):
    """What happens when an incoming order would trade with a resting order of the same account."""

    CANCEL_RESTING = "cancel_resting"  # the default
    CANCEL_INCOMING = "cancel_incoming"
    CANCEL_BOTH = "cancel_both"
    NONE = "none"


class OrderStatus(StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


class RejectReason(StrEnum):
    """Stable reason codes; the API maps each to an error code and HTTP status."""

    UNKNOWN_SYMBOL = "unknown_symbol"
    INVALID_SIDE = "invalid_side"  # added: side is not buy/sell
    INVALID_QTY = "invalid_qty"  # qty <= 0, below the minimum, or above the maximum
    OFF_LOT = "off_lot"
    OFF_TICK = "off_tick"
    INVALID_PRICE = "invalid_price"  # missing, non-positive or not allowed for the order type
    OUTSIDE_BAND = "outside_band"
    MAX_NOTIONAL = "max_notional"
    INVALID_TIF = "invalid_tif"  # e.g. GTD without expire_at, market GTC
    INVALID_TYPE = "invalid_type"  # added: not a known order type
    INVALID_STP = "invalid_stp"  # added: not a known STP mode
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    INSUFFICIENT_HOLD = "insufficient_hold"  # the cash held for a buy does not cover its limit cost
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    UNKNOWN_ORDER = "unknown_order"  # never seen, or already finished
    NOT_OWNER = "not_owner"
    INVALID_REPLACE = "invalid_replace"  # new qty <= filled, nothing changed, or type cannot be replaced


class CancelReason(StrEnum):
    USER = "user"
    MASS_CANCEL = "mass_cancel"
    IOC_REMAINDER = "ioc_remainder"  # IOC / market order rest after matching (incl. empty book)
    FOK_UNFILLED = "fok_unfilled"
    SELF_TRADE_RESTING = "self_trade_resting"  # STP cancel_resting: the resting order was canceled
    SELF_TRADE_INCOMING = "self_trade_incoming"  # STP cancel_incoming: the incoming order was canceled
    SELF_TRADE_BOTH = "self_trade_both"  # STP cancel_both: both were canceled
    EXPIRED = "expired"
    BAND = "band"  # market order rest: the next price was beyond the band
    BUDGET = "budget"  # buy rest: the cash held (or the notional budget) is spent
