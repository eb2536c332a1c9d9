"""Settings shared by every process: environment variables (BOURSE_*), a .env file, then flags.

Built by the entry points and passed down; nothing reads them at import time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Only good for development; production refuses to start with it.
DEV_SECRET = "dev-only-insecure-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOURSE_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "production"] = "dev"
    database_url: str = "sqlite:///./bourse.db"
    # None: the embedded default (in-process queues, depth store and push); set it to scale out.
    redis_url: str | None = None
    secret_key: str = DEV_SECRET
    access_token_minutes: int = Field(15, gt=0)
    refresh_token_days: int = Field(30, gt=0)
    starting_cash_cents: int = Field(100_000_00, gt=0)
    login_attempts_per_minute: int = Field(10, gt=0)
    # Matcher batching: settle up to this many commands; under load (the last read found several),
    # also what arrives within this many ms of a read (workers.matcher.Matcher._linger). 0: never wait.
    batch_max_commands: int = Field(500, gt=0)
    batch_max_ms: int = Field(2, ge=0)
    lease_ttl_ms: int = Field(5000, gt=0)
    # API intake on PostgreSQL: new orders and cancels that arrive together share one transaction of at
    # most this many (group commit); 0 turns it off (one transaction per request, as on SQLite).
    intake_batch_max: int = Field(256, ge=0)
    depth_levels_published: int = Field(100, gt=0)
    # Browser origins allowed to open Socket.IO besides the page's own (always allowed), e.g.
    # ["http://localhost:5173"] for `npm run dev`; ["*"] allows any. Empty: same origin only.
    socketio_cors_origins: list[str] = Field(default_factory=list)
    market_hours: Literal["calendar", "always"] = "calendar"
    agents: bool = True
    host: str = "127.0.0.1"
    port: int = 8000

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.env == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("BOURSE_SECRET_KEY must be set to a real secret when BOURSE_ENV=production")
        return self

    @property
    def embedded(self) -> bool:
        return self.redis_url is None
