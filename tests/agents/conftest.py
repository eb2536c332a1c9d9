from __future__ import annotations

import pytest
from market_kit import Market, make_market


@pytest.fixture
def market(pg_url: str) -> Market:
    return make_market(pg_url)
