"""Fixtures for the engine tests."""

from __future__ import annotations

import pytest
from engine_kit import plain

from engine.book import OrderBook
from engine.exchange import Exchange
from engine.symbols import Instrument


@pytest.fixture
def book() -> OrderBook:
    return OrderBook(plain())


@pytest.fixture
def ex() -> Exchange:
    return Exchange([plain(), Instrument("OTHER")])
