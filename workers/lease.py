"""Who may match a symbol: a Redis lease per symbol, so two live matchers do not fight over it.

The lease only keeps matchers apart in the common case; money is protected by the fencing token in the
SQL checkpoint (workers.settlement.claim_symbol / FencingLost), which holds even when a lease expires
under a paused process or Redis forgets every key.
"""

from __future__ import annotations

import time
from typing import Protocol

_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not v then
  if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lease_key(symbol: str) -> str:
    return f"lease:{symbol}"


class Lease(Protocol):
    def acquire(self, symbol: str) -> bool: ...

    def renew(self, symbol: str) -> bool:
        """Keep the lease; False when another worker holds it now (stop matching the symbol)."""
        ...

    def release(self, symbol: str) -> None: ...


class LocalLease:
    """Embedded mode: one process, so every symbol is ours."""

    def acquire(self, symbol: str) -> bool:
        return True

    def renew(self, symbol: str) -> bool:
        return True

    def release(self, symbol: str) -> None:
        return None


class RedisLease:
    """`SET lease:{symbol} <worker id> NX PX ttl`, renewed by compare-and-expire. If the key vanished
    (expired, or Redis restarted empty) renew takes it again, since SQL fencing still guards settlement."""

    def __init__(self, redis_client, worker_id: str, ttl_ms: int) -> None:  # type: ignore[no-untyped-def]
        self._redis = redis_client
        self.worker_id = worker_id
        self.ttl_ms = ttl_ms
        self._renew = redis_client.register_script(_RENEW)
        self._release = redis_client.register_script(_RELEASE)

    def acquire(self, symbol: str) -> bool:
        return bool(self._redis.set(lease_key(symbol), self.worker_id, nx=True, px=self.ttl_ms)) or (
            self.holder(symbol) == self.worker_id
        )

    def renew(self, symbol: str) -> bool:
        return bool(self._renew(keys=[lease_key(symbol)], args=[self.worker_id, self.ttl_ms]))

    def release(self, symbol: str) -> None:
        self._release(keys=[lease_key(symbol)], args=[self.worker_id])

    def holder(self, symbol: str) -> str | None:
        v = self._redis.get(lease_key(symbol))
        return v.decode() if isinstance(v, bytes) else v

    def wait_acquire(self, symbol: str, timeout_s: float) -> bool:
        """Acquire, retrying until a crashed holder's lease expires (restart after kill -9)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.acquire(symbol):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
