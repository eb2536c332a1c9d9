"""create_app(settings, services): FastAPI routers wrapped in socketio.ASGIApp (and, on PostgreSQL, the
hot order path of api.hot_path). Builds nothing global."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import socketio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import errors, realtime
from api.deps import Services
from api.hot_path import ASGIApp, OrderHotPath
from api.intake_batcher import build_batcher
from api.routers import account, auth, markets, orders, portfolio
from schema.settings import Settings

API_PREFIX = "/api/v1"
STATIC_DIR = Path(__file__).parent / "static"


def create_fastapi(settings: Settings, services: Services, static_dir: Path | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Load the instrument rules before serving, so async handlers (depth, Socket.IO) never wait on SQL.
        await asyncio.to_thread(services.instruments.reload)
        emitter = services.extras.get("emitter")
        if isinstance(emitter, realtime.LoopEmitter):
            emitter.bind(asyncio.get_running_loop())
        for hook in services.extras.get("on_startup", ()):
            hook()
        try:
            yield
        finally:
            for hook in services.extras.get("on_shutdown", ()):
                hook()
            if services.batcher is not None:
                await services.batcher.aclose()
            if isinstance(emitter, realtime.LoopEmitter):
                emitter.bind(None)

    app = FastAPI(
        title="Bourse",
        version="1.0",
        description="A practice stock exchange. Contract: docs/api.md.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        lifespan=lifespan,
        # No OpenTelemetry here: with it on, FastAPI asks the global OTel providers on every request
        # (about 5% of the API's CPU per order under load).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    app.state.settings = settings
    errors.install(app)
    for router in (auth.router, orders.router, account.router, markets.router, portfolio.router):
        app.include_router(router, prefix=API_PREFIX)
    markets.install_fast_routes(app, API_PREFIX)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    static = static_dir or STATIC_DIR
    if (static / "index.html").is_file():
        # The page (built by web/ with Vite). Mounted last so /api, /docs and /socket.io win.
        app.mount("/", StaticFiles(directory=static, html=True), name="web")
    return app


def create_app(settings: Settings, services: Services, static_dir: Path | None = None) -> ASGIApp:
    if services.sio is None:
        services.sio = realtime.build_server(settings)
    realtime.register(services.sio, services)
    if services.batcher is None:
        services.batcher = build_batcher(services)
    fastapi_app = create_fastapi(settings, services, static_dir)
    # The group-commit intake (PostgreSQL): its two hot routes skip FastAPI's stack (api.hot_path). Inside
    # the Socket.IO wrapper, so the websockets never pass through it.
    http_app = fastapi_app if services.batcher is None else OrderHotPath(fastapi_app, services, API_PREFIX)
    return socketio.ASGIApp(services.sio, other_asgi_app=http_app, socketio_path="socket.io")
