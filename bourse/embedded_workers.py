"""The workers of `bourse serve`, run as threads next to the API (one process, in-process queues)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from schema.marketdata import MemoryMarketData
from schema.settings import Settings
from schema.transport import InProcessBus

log = logging.getLogger("bourse")


def start(
    settings: Settings,
    session_factory: Any,
    bus: InProcessBus,
    marketdata: MemoryMarketData,
    emit: Callable[[str, dict[str, Any], str], None],
    stop: threading.Event,
    *,
    agents: bool,
) -> list[threading.Thread]:
    """Start the matcher for every symbol (and the demo agents). Returns the started threads."""
    try:
        from workers.matcher import Matcher  # noqa: F401
    except ImportError:
        log.warning("workers.matcher is not available yet: orders are accepted but not matched")
        return []
    raise NotImplementedError("wire the matcher")
