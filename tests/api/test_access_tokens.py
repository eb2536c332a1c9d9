"""Access-token verification: the fast path for tokens this service mints agrees with PyJWT on every
token, and nothing PyJWT would reject gets through it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import security
from api.security import Principal, TokenError, create_access_token, verify_access_token

SECRET = "s" * 40
# Minted "now": PyJWT checks iat against the wall clock.
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
TTL = timedelta(minutes=15)


def _pyjwt_only(token: str, secret: str, now: datetime) -> tuple[Principal, int] | str:
    """What verify_access_token answered before the fast path: PyJWT alone."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"verify_exp": False, "require": ["exp", "sub"]}
        )
        if claims.get("typ") != "access" or int(claims["exp"]) <= now.timestamp():
            return "rejected"
        return Principal(int(claims["sub"]), int(claims["acct"])), int(claims["exp"])
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return "rejected"


def _ours(token: str, secret: str, now: datetime) -> tuple[Principal, int] | str:
    try:
        return verify_access_token(token, secret, now)
    except TokenError:
        return "rejected"


def test_a_minted_token_takes_the_fast_path_and_gives_its_principal() -> None:
    token = create_access_token(Principal(7, 11), SECRET, NOW, TTL)
    assert security._minted_claims(token, SECRET) is not None
    assert verify_access_token(token, SECRET, NOW) == (Principal(7, 11), int((NOW + TTL).timestamp()))


def test_the_fast_path_refuses_a_wrong_secret_another_algorithm_and_none() -> None:
    claims = {"sub": "7", "acct": 11, "typ": "access", "exp": int((NOW + TTL).timestamp())}
    wrong_secret = jwt.encode(claims, "t" * 40, algorithm="HS256")
    hs512 = jwt.encode(claims, SECRET, algorithm="HS512")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (wrong_secret, hs512, unsigned):
        assert security._minted_claims(token, SECRET) is None
        with pytest.raises(TokenError):
            verify_access_token(token, SECRET, NOW)


def test_expiry_and_type_are_checked_after_the_fast_path() -> None:
    token = create_access_token(Principal(7, 11), SECRET, NOW, TTL)
    with pytest.raises(TokenError, match="expired"):
        verify_access_token(token, SECRET, NOW + TTL)
    refresh_like = jwt.encode({"sub": "7", "acct": 11, "typ": "refresh", "exp": 2_000_000_000}, SECRET)
    with pytest.raises(TokenError, match="not an access token"):
        verify_access_token(refresh_like, SECRET, NOW)


def test_claims_pyjwt_would_check_take_its_path() -> None:
    exp = int((NOW + TTL).timestamp())
    base = {"sub": "7", "acct": 11, "typ": "access", "exp": exp}
    future_iat = jwt.encode({**base, "iat": int(NOW.timestamp()) + 3600}, SECRET, algorithm="HS256")
    with_aud = jwt.encode({**base, "aud": "elsewhere"}, SECRET, algorithm="HS256")
    for token in (future_iat, with_aud):
        assert security._minted_claims(token, SECRET) is None
        with pytest.raises(TokenError):
            verify_access_token(token, SECRET, NOW)


def test_a_re_signed_payload_without_exp_is_refused_by_both_paths() -> None:
    header = security._MINTED_HEADER
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "7", "acct": 11}).encode()).rstrip(b"=").decode()
    token = jwt.api_jws.PyJWS().encode(
        json.dumps({"sub": "7", "acct": 11}).encode(), SECRET, algorithm="HS256"
    )
    assert token.startswith(header + "." + payload)
    assert security._minted_claims(token, SECRET) is None
    with pytest.raises(TokenError):
        verify_access_token(token, SECRET, NOW)


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=400),
    replacement=st.characters(codec="ascii") | st.sampled_from(["=", ".", "é", "-", "_", "+", "/"]),
    cut=st.booleans(),
)
def test_any_altered_token_is_judged_as_pyjwt_judges_it(position: int, replacement: str, cut: bool) -> None:
    token = create_access_token(Principal(7, 11), SECRET, NOW, TTL)
    i = position % len(token)
    altered = token[:i] if cut else token[:i] + replacement + token[i + 1 :]
    assert _ours(altered, SECRET, NOW) == _pyjwt_only(altered, SECRET, NOW)
