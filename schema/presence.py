"""Which accounts have a Socket.IO connection open, so a matcher builds and sends only their pushes.

Why: every order event, fill, cash and position change of a settled batch is a push to its account's
room. The matcher built each one (views, JSON), published it to Redis, and every API process dropped it
when nobody of that account was connected (api.local_rooms): in the service bench 200 of 10,000 accounts
listen, and agents and other programs never do. The API processes count each account's connections in
one Redis hash; after a batch commits the matcher asks it about the batch's accounts (one HMGET) and
skips the rest.

Correctness: the API counts a connection before its connect handler returns, so before the client can
read its state over REST; the matcher asks after commit. A push is skipped only for an account with no
connection at that moment, whose next REST read already sees the batch. An API process that dies leaves
its counts behind: the matcher then builds pushes nobody receives, which costs CPU, never an update.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

LISTENERS_KEY = "bourse:listeners"  # hash: account id -> open Socket.IO connections, over all API processes


class Listeners(Protocol):
    def among(self, accounts: Collection[int]) -> set[int]:
        """The accounts of `accounts` with at least one connection open now."""
        ...


class EveryoneListens:
    """Build every push (the default: tests and publishers that record everything)."""

    def among(self, accounts: Collection[int]) -> set[int]:
        return set(accounts)


class RedisListeners:
    """The matcher's side of the count the API processes keep in Redis (scaled out)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def among(self, accounts: Collection[int]) -> set[int]:
        ids = sorted(set(accounts))
        if not ids:
            return set()
        counts = self._client.hmget(LISTENERS_KEY, ids)
        return {a for a, n in zip(ids, counts, strict=True) if n is not None and int(n) > 0}


async def count_connection(async_client: Any, account_id: int, delta: int) -> None:
    """+1 when an account's connection opens, -1 when it closes (a count, not a set: one account may have
    several tabs open, on several API processes). Zeros stay in the hash; they read as absent."""
    await async_client.hincrby(LISTENERS_KEY, str(account_id), delta)
