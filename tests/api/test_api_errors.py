"""One error body everywhere, never a 500, and nothing written on a refusal (fuzzed with hypothesis)."""

from __future__ import annotations

import json
from typing import Any

from api_harness import Harness, harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError

from api.intake_batcher import IntakeBatcher

FIELDS = [
    "symbol",
    "side",
    "type",
    "time_in_force",
    "qty",
    "limit_price",
    "stop_price",
    "expire_at",
    "client_order_id",
    "post_only",
    "stp",
]
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.none()),
)
plausible = {
    "symbol": st.sampled_from(["AAPL", "aapl", "MSFT", "ZZZZ", "", "A" * 20]),
    "side": st.sampled_from(["buy", "sell", "BUY", "x"]),
    "type": st.sampled_from(["limit", "market", "stop", "stop_limit", "iceberg"]),
    "time_in_force": st.sampled_from(["day", "gtc", "gtd", "ioc", "fok", "opg"]),
    "qty": st.one_of(
        st.sampled_from(["1", "10", "0", "-1", "1.5", "1e9", "99999999999999999999"]), st.integers(-5, 10**20)
    ),
    "limit_price": st.sampled_from(["230.00", "229.87", "0.01", "230.001", "1000", "-1", "abc", "NaN"]),
    "stop_price": st.sampled_from(["220.00", "0", "1.1"]),
    "expire_at": st.sampled_from(
        ["2099-01-01T00:00:00Z", "2000-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "not a date", "0"]
    ),
    "client_order_id": st.one_of(st.text(max_size=70), st.sampled_from(["dup", "dup2"])),
    "post_only": st.one_of(st.booleans(), st.just("true")),
    "stp": st.sampled_from(["none", "cancel_both", "bogus"]),
}
body_strategy = st.fixed_dictionaries({}, optional={f: st.one_of(plausible[f], junk) for f in FIELDS})


def test_fuzzed_order_bodies_never_500_and_refusals_write_nothing(sqlite_url: str) -> None:
    with harness(sqlite_url) as ex:
        user = ex.register()
        ex.grant_shares(user, "AAPL", 50, 20000)

        @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=body_strategy)
        def check(body: dict[str, Any]) -> None:
            before = ex.snapshot()
            # json.dumps, not httpx's encoder: NaN and Infinity go over the wire too (the server parses them).
            headers = user.headers | {"Content-Type": "application/json"}
            r = ex.client.post("/api/v1/orders", content=json.dumps(body), headers=headers)
            assert r.status_code != 500, (body, r.text)
            if r.status_code >= 400:
                doc = r.json()
                assert set(doc) == {"code", "message"} and isinstance(doc["message"], str), doc
                assert ex.snapshot() == before, body
            else:
                assert r.status_code in (200, 201)

        check()


def test_malformed_json_and_non_object_bodies(ex: Harness) -> None:
    u = ex.register()
    h = u.headers | {"Content-Type": "application/json"}
    r = ex.client.post("/api/v1/orders", content=b'{"symbol": "AAPL",', headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "MALFORMED_JSON")
    for content in (b"[]", b'"x"', b"null", b"1" * 5000, b""):
        r = ex.client.post("/api/v1/orders", content=content, headers=h)
        assert r.status_code in (400, 422), (content[:10], r.text)
        assert set(r.json()) == {"code", "message"}
    r = ex.client.post(
        "/api/v1/auth/login", content=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert r.status_code in (400, 422) and set(r.json()) == {"code", "message"}


def test_unknown_routes_and_methods_use_the_error_body(ex: Harness) -> None:
    r = ex.client.get("/api/v1/nope")
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = ex.client.put("/api/v1/orders")
    assert (r.status_code, r.json()["code"]) == (405, "METHOD_NOT_ALLOWED")
    r = ex.client.get("/api/v1/orders/abc", headers=ex.register().headers)
    assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_ERROR")
    r = ex.client.get(f"/api/v1/orders/{2**70}", headers=ex.register().headers)
    assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_ERROR")


def test_database_down_is_503(ex: Harness) -> None:
    u = ex.register()

    class Down:
        def __call__(self) -> Any:
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    ex.services.session_factory = Down()  # type: ignore[assignment]
    if ex.services.batcher is not None:
        # PostgreSQL's group-commit intake has its own connection: point it at a port nobody listens on.
        ex.services.batcher = IntakeBatcher(
            ex.services, "postgresql://bourse@127.0.0.1:1/bourse", max_batch=8
        )
    r = ex.client.get("/api/v1/account", headers=u.headers)
    assert (r.status_code, r.json()["code"]) == (503, "SERVICE_UNAVAILABLE")
    # The async order routes open their session inside their one thread-pool call: same answer.
    order = {"symbol": "AAPL", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": "1"}
    r = ex.post_order(u, **order, limit_price="230.00")
    assert (r.status_code, r.json()["code"]) == (503, "SERVICE_UNAVAILABLE")
    r = ex.client.delete("/api/v1/orders/1", headers=u.headers)
    assert (r.status_code, r.json()["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert ex.bus.last_id("AAPL") is None  # nothing published
    if ex.services.batcher is not None:
        assert ex.services.batcher.jobs_done == 0 and ex.services.batcher.batches == 0


def test_openapi_docs_are_served(ex: Harness) -> None:
    assert ex.client.get("/docs").status_code == 200
    paths = ex.client.get("/openapi.json").json()["paths"]
    assert "/api/v1/orders" in paths and "/api/v1/markets/{symbol}/depth" in paths
    assert json.dumps(paths)
    # Routes answer with prebuilt wire dicts (no response validation) but still document a JSON object.
    for path, method, status in (
        ("/api/v1/orders", "post", "201"),
        ("/api/v1/orders/{order_id}", "delete", "202"),
        ("/api/v1/account", "get", "200"),
    ):
        schema = paths[path][method]["responses"][status]["content"]["application/json"]["schema"]
        assert schema["type"] == "object", (path, schema)


def test_fuzzed_replace_bodies_never_500_and_refusals_write_nothing(sqlite_url: str) -> None:
    with harness(sqlite_url) as ex:
        user = ex.register()
        r = ex.post_order(
            user, symbol="AAPL", side="buy", type="limit", time_in_force="gtc", qty="5", limit_price="230.00"
        )
        oid = r.json()["id"]
        fields = {f: st.one_of(plausible[f], junk) for f in ("qty", "limit_price", "stop_price")}

        @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=st.fixed_dictionaries({}, optional=fields))
        def check(body: dict[str, Any]) -> None:
            before = ex.snapshot()
            headers = user.headers | {"Content-Type": "application/json"}
            r = ex.client.patch(f"/api/v1/orders/{oid}", content=json.dumps(body), headers=headers)
            assert r.status_code != 500, (body, r.text)
            if r.status_code >= 400:
                assert set(r.json()) == {"code", "message"}
                assert ex.snapshot() == before, body

        check()


def test_every_engine_reject_reason_has_an_api_code() -> None:
    from api.errors import REJECT_CODES, status_of
    from engine.types import RejectReason

    assert set(REJECT_CODES) == set(RejectReason)
    for code, status in REJECT_CODES.values():
        assert 400 <= status < 500 and status_of(code) == status


def test_order_routes_read_the_bearer_token_like_every_route(ex: Harness) -> None:
    """On PostgreSQL POST and DELETE /orders are plain fast routes: same 401s as the FastAPI routes."""
    u = ex.register()
    order = {"symbol": "AAPL", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": "1"}
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer x.y.z"},
    ):
        r = ex.client.post("/api/v1/orders", json=order | {"limit_price": "230.00"}, headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "UNAUTHORIZED"), headers
        r = ex.client.delete("/api/v1/orders/1", headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "UNAUTHORIZED"), headers
    lower = {"Authorization": f"bearer {u.access_token}"}
    r = ex.client.post("/api/v1/orders", json=order | {"limit_price": "230.00"}, headers=lower)
    assert r.status_code == 201, r.text
    r = ex.client.delete(f"/api/v1/orders/{2**63}", headers=lower)
    assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_ERROR")
    second = ex.post_order(u, **order, limit_price="230.00").json()["id"]
    r = ex.client.delete(f"/api/v1/orders/{second}", headers=lower)
    assert r.status_code == 202, r.text
    assert ex.snapshot()["orders"] == 2


def test_hot_order_path_answers_as_the_fastapi_routes(ex: Harness) -> None:
    """On PostgreSQL POST and DELETE /orders skip the FastAPI stack (api.hot_path); on SQLite they go
    through it. Both backends must give the same statuses, codes and headers for the same requests."""
    u = ex.register()
    auth = {"Authorization": f"Bearer {u.access_token}"}
    r = ex.client.post("/api/v1/orders", content=b'{"symbol": "AAPL",', headers=auth | _JSON)
    assert (r.status_code, r.json()["code"]) == (400, "MALFORMED_JSON")
    r = ex.client.post("/api/v1/orders", json={"symbol": "AAPL", "side": "buy"}, headers=auth)
    assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_ERROR")
    assert "qty" in r.json()["message"] or "type" in r.json()["message"]
    r = ex.client.post("/api/v1/orders", json={"symbol": "AAPL"})
    assert (r.status_code, r.headers.get("www-authenticate")) == (401, "Bearer")
    assert r.headers["content-type"].startswith("application/json")
    huge = b'{"symbol": "' + b"A" * 70_000 + b'"}'
    r = ex.client.post("/api/v1/orders", content=huge, headers=auth | _JSON)
    # The hot path refuses the size before parsing; FastAPI parses it and refuses the symbol's length.
    assert r.status_code == (413 if ex.services.batcher else 422), r.text
    r = ex.client.delete("/api/v1/orders/abc", headers=auth)
    assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_ERROR")  # not numeric: FastAPI's route
    r = ex.client.delete("/api/v1/orders/999999", headers=auth)
    assert (r.status_code, r.json()["code"]) == (404, "ORDER_NOT_FOUND")
    placed = ex.post_order(u, symbol="AAPL", side="buy", type="limit", time_in_force="gtc", qty="3",
                           limit_price="230.00")  # fmt: skip
    assert placed.status_code == 201
    body = placed.json()
    assert int(placed.headers["content-length"]) == len(placed.content)
    assert (body["qty"], body["limit_price"], body["status"], body["hold"]) == (
        "3",
        "230.00",
        "new",
        "690.00",
    )
    # The answer is built without reading the row back; it must equal what SQL holds (no matcher runs here).
    assert ex.client.get(f"/api/v1/orders/{body['id']}", headers=auth).json() == body
    r = ex.client.delete(f"/api/v1/orders/{body['id']}", headers=auth)
    assert r.status_code == 202 and r.json()["id"] == body["id"]
    assert ex.snapshot()["orders"] == 1  # none of the refused requests wrote anything


_JSON = {"Content-Type": "application/json"}
