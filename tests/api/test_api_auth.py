"""Auth: register, login, refresh rotation, logout revocation, reuse detection, throttling, expiry."""

from __future__ import annotations

import pytest
from api_harness import Harness, harness

from api.security import RedisThrottle


def test_register_gives_starting_cash_and_tokens(ex: Harness) -> None:
    r = ex.client.post("/api/v1/auth/register", json={"email": "Ann@Example.com", "password": "long enough"})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"user_id", "account_id", "access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    acct = ex.client.get(
        "/api/v1/account", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert acct["email"] == "ann@example.com"
    assert (acct["cash"], acct["starting_cash"], acct["equity"]) == ("100000.00", "100000.00", "100000.00")
    again = ex.client.post(
        "/api/v1/auth/register", json={"email": "ann@example.com", "password": "long enough"}
    )
    assert (again.status_code, again.json()["code"]) == (409, "EMAIL_TAKEN")
    named = {"email": "n1@example.com", "password": "long enough", "display_name": "Ann"}
    assert ex.client.post("/api/v1/auth/register", json=named).status_code == 201
    dup = ex.client.post("/api/v1/auth/register", json=named | {"email": "n2@example.com"})
    assert (dup.status_code, dup.json()["code"]) == (409, "DISPLAY_NAME_TAKEN")
    short = ex.client.post("/api/v1/auth/register", json={"email": "b@example.com", "password": "short"})
    assert (short.status_code, short.json()["code"]) == (422, "VALIDATION_ERROR")
    assert "password" in short.json()["message"]


def test_login_wrong_password_is_invalid_credentials(ex: Harness) -> None:
    u = ex.register()
    ok = ex.client.post("/api/v1/auth/login", json={"email": u.email, "password": u.password})
    assert ok.status_code == 200 and ok.json()["account_id"] == u.account_id
    bad = ex.client.post("/api/v1/auth/login", json={"email": u.email, "password": "wrong password"})
    assert (bad.status_code, bad.json()["code"]) == (401, "INVALID_CREDENTIALS")
    nobody = ex.client.post("/api/v1/auth/login", json={"email": "no@body.com", "password": "whatever1"})
    assert (nobody.status_code, nobody.json()["code"]) == (401, "INVALID_CREDENTIALS")


def test_refresh_rotates_and_a_reused_token_revokes_the_family(ex: Harness) -> None:
    u = ex.register()
    r1 = ex.client.post("/api/v1/auth/refresh", json={"refresh_token": u.refresh_token})
    assert r1.status_code == 200
    new = r1.json()["refresh_token"]
    assert new != u.refresh_token
    assert ex.client.get(
        "/api/v1/account", headers={"Authorization": f"Bearer {r1.json()['access_token']}"}
    ).is_success
    reused = ex.client.post("/api/v1/auth/refresh", json={"refresh_token": u.refresh_token})
    assert (reused.status_code, reused.json()["code"]) == (401, "UNAUTHORIZED")
    # Reuse means theft: the rotated token is revoked too.
    after = ex.client.post("/api/v1/auth/refresh", json={"refresh_token": new})
    assert after.status_code == 401


def test_logout_revokes_the_refresh_token(ex: Harness) -> None:
    u = ex.register()
    assert ex.client.post("/api/v1/auth/logout", json={"refresh_token": u.refresh_token}).status_code == 204
    r = ex.client.post("/api/v1/auth/refresh", json={"refresh_token": u.refresh_token})
    assert (r.status_code, r.json()["code"]) == (401, "UNAUTHORIZED")
    junk = ex.client.post("/api/v1/auth/refresh", json={"refresh_token": "not-a-token"})
    assert junk.status_code == 401


def test_expired_forged_and_missing_access_tokens_are_401(ex: Harness) -> None:
    u = ex.register()
    assert ex.client.get("/api/v1/account", headers=u.headers).status_code == 200
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": f"Bearer {u.access_token[:-3]}xyz"},
    ):
        r = ex.client.get("/api/v1/account", headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "UNAUTHORIZED"), headers
    ex.clock.advance(minutes=16)
    r = ex.client.get("/api/v1/account", headers=u.headers)
    assert (r.status_code, r.json()["code"]) == (401, "UNAUTHORIZED")
    assert "expired" in r.json()["message"]
    # Refresh tokens outlive access tokens.
    assert ex.client.post("/api/v1/auth/refresh", json={"refresh_token": u.refresh_token}).status_code == 200
    ex.clock.advance(days=31)
    assert ex.client.post("/api/v1/auth/refresh", json={"refresh_token": u.refresh_token}).status_code == 401


def _fail_logins(ex: Harness, email: str, n: int) -> list[int]:
    return [
        ex.client.post("/api/v1/auth/login", json={"email": email, "password": "wrong pass"}).status_code
        for _ in range(n)
    ]


def test_login_is_throttled_per_account(ex: Harness) -> None:
    u = ex.register()
    assert _fail_logins(ex, u.email, 10) == [401] * 10
    r = ex.client.post("/api/v1/auth/login", json={"email": u.email, "password": u.password})
    assert (r.status_code, r.json()["code"]) == (429, "TOO_MANY_ATTEMPTS")


def test_login_is_throttled_per_client_address(sqlite_url: str) -> None:
    with harness(sqlite_url, login_attempts_per_minute=3) as ex:
        users = [ex.register() for _ in range(4)]
        codes = [_fail_logins(ex, u.email, 1)[0] for u in users]
        assert codes == [401, 401, 401, 429]  # the fourth account is refused: same address


@pytest.mark.usefixtures("redis_url")
def test_redis_throttle_is_a_shared_sliding_window(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    a, b = RedisThrottle(client, limit=2), RedisThrottle(client, limit=2)  # two API processes
    assert not a.blocked("email:x")
    a.hit("email:x")
    b.hit("email:x")
    assert a.blocked("email:x") and b.blocked("email:x")
    a.clear("email:x")
    assert not b.blocked("email:x")
