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


def test_the_built_page_is_served_at_root_and_the_api_still_wins(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from api_harness import harness
    from fastapi.testclient import TestClient

    from api.app import create_app

    (tmp_path / "index.html").write_text("<!doctype html><title>Bourse</title>")
    with harness(sqlite_url) as ex:
        client = TestClient(create_app(ex.settings, ex.services, static_dir=tmp_path))
        page = client.get("/")
        assert page.status_code == 200 and "<title>Bourse</title>" in page.text
        assert client.get("/api/v1/markets").json()[0]["symbol"] == "AAPL"
        missing = client.get("/api/v1/nope")
        assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")
        assert client.get("/healthz").json() == {"status": "ok"}
