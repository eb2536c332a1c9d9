"""A private Redis server for the recovery tests.

Those tests run a matcher against streams for minutes and restart Redis on purpose; on a machine where
other test sessions share Redis db 15 (and flush it at every test), a private server keeps them honest.
Where no redis-server binary exists they fall back to the shared `redis_url` fixture.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis


class RedisServer:
    """A throwaway redis-server that keeps nothing on disk, so a restart loses every key."""

    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None  # type: ignore[type-arg]
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", *args, "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        """What a Redis crash without persistence does: everything is gone, the server is back."""
        self.stop()
        self.start()


@pytest.fixture
def private_redis(tmp_path: Path, request) -> Iterator[RedisServer | None]:  # type: ignore[no-untyped-def]
    if shutil.which("redis-server") is None:
        yield None
        return
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def isolated_redis_url(private_redis: RedisServer | None, request) -> str:  # type: ignore[no-untyped-def]
    if private_redis is None:
        return request.getfixturevalue("redis_url")
    return private_redis.url
