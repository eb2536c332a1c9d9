from __future__ import annotations

from api_harness import Harness


def test_register_place_and_read_back(ex: Harness) -> None:
    alice = ex.register()
    acct = ex.account(alice)
    assert acct["cash_available"] == "100000.00"
    r = ex.post_order(
        alice, symbol="AAPL", side="buy", type="limit", time_in_force="gtc", qty="10", limit_price="230.00"
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["hold"] == "2300.00"
    assert ex.account(alice)["cash_held"] == "2300.00"
