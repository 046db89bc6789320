"""The local engine's FastAPI application.

Example::

    import uvicorn
    from prefect_elevenlabs.local.app import create_app
    from prefect_elevenlabs.local.config import EngineConfig

    uvicorn.run(create_app(EngineConfig(port=8011)), host="127.0.0.1", port=8011)

Routes live one module per capability under ``routes/``; each exposes ``router``. Adding a
capability is one line in :data:`ROUTE_MODULES`. Every router is mounted behind the
``xi-api-key`` check (:func:`~prefect_elevenlabs.local.wire.authenticate`).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from .._version import __version__
from .config import EngineConfig
from .modes import EngineModes
from .state import EngineState, InvalidIdError
from .wire import (
    Receive,
    Scope,
    Send,
    api_error,
    authenticate,
    install_error_handlers,
    request_id_of,
    wire_entry,
)

__all__ = ["ROUTE_MODULES", "EngineApp", "create_app"]

ROUTE_MODULES: tuple[str, ...] = (
    "account",
    "tts",
    "voices",
    "design",
    "stt",
    "realtime",
    "sound",
    "music",
    "dubbing",
    "voice_changer",
    "alignment",
    "convai",
    "extensions",
)
"""Modules under ``prefect_elevenlabs.local.routes`` whose ``router`` the app serves."""


class EngineApp(FastAPI):
    """FastAPI with the engine's wire layer outermost (request ids, body limit, raw send)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config: EngineConfig = self.state.config
        await wire_entry(
            scope,
            receive,
            send,
            app=super().__call__,
            max_body_bytes=config.max_upload_bytes,
        )


def create_app(config: EngineConfig | None = None) -> FastAPI:
    """Build the engine app for ``config`` (read from ``ELEVENLABS_LOCAL_*`` when None).

    The app keeps ``config``, its :class:`EngineState` and :class:`EngineModes` on
    ``app.state`` (``config``, ``engine_state``, ``modes``). Models load on first use.
    """
    config = config or EngineConfig()
    state = EngineState(config.data_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = EngineApp(
        title="prefect-elevenlabs local engine",
        version=__version__,
        description=(
            "An offline server speaking the ElevenLabs HTTP API, built on open-source engines. "
            "Routes under /local are this engine's own extensions."
        ),
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.engine_state = state
    app.state.modes = EngineModes(config, state)
    install_error_handlers(app)
    app.add_exception_handler(InvalidIdError, _invalid_id_handler)

    app.include_router(_service_router())
    for name in ROUTE_MODULES:
        module = importlib.import_module(f"{__package__}.routes.{name}")
        app.include_router(module.router, dependencies=[Depends(authenticate)])
    return app


async def _invalid_id_handler(request: Request, exc: Exception) -> JSONResponse:
    error = api_error(400, "invalid_parameters", str(exc))
    return JSONResponse(error.body(request_id_of(request)), status_code=400)


def _service_router() -> APIRouter:
    router = APIRouter()

    @router.get("/health", tags=["local"], summary="Liveness check")
    async def health(request: Request) -> dict[str, Any]:
        """Answer without authentication: ``{"status": "ok", "version": ...}``."""
        return {"status": "ok", "version": __version__, "engine": "prefect-elevenlabs-local"}

    @router.get(
        "/local/stats",
        tags=["local"],
        summary="Counters of the test modes",
        dependencies=[Depends(authenticate)],
    )
    async def stats(request: Request) -> dict[str, Any]:
        """Generation requests, injected faults by kind, rejections, characters billed, peak
        concurrency, since start or the last reset."""
        modes: EngineModes = request.app.state.modes
        return modes.stats()

    @router.post(
        "/local/stats/reset",
        tags=["local"],
        summary="Reset the counters",
        dependencies=[Depends(authenticate)],
    )
    async def reset_stats(request: Request, include_usage: bool = False) -> dict[str, Any]:
        """Zero the counters and restart the fault sequence; ``include_usage=true`` also
        forgets every key's billed characters."""
        modes: EngineModes = request.app.state.modes
        modes.reset_stats()
        if include_usage:
            state: EngineState = request.app.state.engine_state
            state.reset_usage()
        return modes.stats()

    return router
