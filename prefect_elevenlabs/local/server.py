"""Running the local engine: standalone (``serve``) or embedded in this process.

Example::

    from prefect_elevenlabs.local.server import start_embedded
    base_url = start_embedded()          # e.g. "http://127.0.0.1:41237"
    # point any ElevenLabs client at base_url

    handle = start_in_thread(EngineConfig(data_dir=tmp, max_concurrency=2))
    ...
    handle.stop()
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import uvicorn

from .app import create_app
from .config import EngineConfig, is_loopback_host

__all__ = ["EngineHandle", "EngineStartError", "serve", "start_embedded", "start_in_thread"]

logger = logging.getLogger(__name__)

_STARTUP_TIMEOUT = 60.0


class EngineStartError(RuntimeError):
    """The engine's server did not come up (port taken, bad data dir...)."""


def serve(config: EngineConfig | None = None, *, log_level: str = "info") -> None:
    """Serve the engine in the foreground until interrupted (``prefect-elevenlabs local serve``).

    Binds ``config.host`` (loopback by default) and warns when a non-loopback interface is
    exposed without API keys.
    """
    config = config or EngineConfig()
    if not is_loopback_host(config.host) and not config.api_keys:
        logger.warning(
            "The local engine is listening on %s with no API keys: anyone who can reach this "
            "machine can use it. Pass --api-key (or ELEVENLABS_LOCAL_API_KEYS) to require one.",
            config.host,
        )
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level=log_level,
        timeout_graceful_shutdown=5,
    )


@dataclass
class EngineHandle:
    """A running engine: its base URL, config, and how to stop it."""

    base_url: str
    config: EngineConfig
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def app(self) -> object:
        """The ASGI app being served (its ``state`` holds config, store and modes)."""
        return self._server.config.app

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)


def start_in_thread(
    config: EngineConfig | None = None, *, log_level: str = "warning"
) -> EngineHandle:
    """Start an engine for ``config`` in a daemon thread and wait until ``/health`` answers.

    ``config.port`` 0 (the usual choice here) picks a free port; the returned handle's
    ``base_url`` says which. Raises :class:`EngineStartError` if it does not come up.
    """
    config = config or EngineConfig(port=0)
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and without it keep-alive responses wait ~40 ms on Nagle's algorithm and delayed ACKs.
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Set on the listener too: Linux copies it to accepted connections whoever accepts them.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        raise EngineStartError(
            f"cannot bind the local engine to {config.host}:{config.port}: {exc}"
        ) from exc
    host, port = sock.getsockname()[:2]
    host_part = f"[{host}]" if ":" in host else host
    base_url = f"http://{host_part}:{port}"

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level=log_level,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name=f"elevenlabs-local-engine-{port}",
        daemon=True,
    )
    thread.start()
    handle = EngineHandle(base_url=base_url, config=config, _server=server, _thread=thread)
    _wait_until_healthy(handle)
    return handle


def _wait_until_healthy(handle: EngineHandle) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not handle._thread.is_alive():
            raise EngineStartError(f"the local engine at {handle.base_url} exited during startup")
        try:
            response = httpx.get(f"{handle.base_url}/health", timeout=2.0)
            if response.status_code == 200:
                return
        except httpx.HTTPError as exc:
            last_error = exc
        time.sleep(0.02)
    handle.stop()
    raise EngineStartError(
        f"the local engine at {handle.base_url} did not answer /health within "
        f"{_STARTUP_TIMEOUT:.0f} s (last error: {last_error})"
    )


_embedded_lock = threading.Lock()
_embedded: EngineHandle | None = None


def start_embedded(config: EngineConfig | None = None) -> str:
    """Start the in-process engine once per process and return its base URL.

    Later calls return the same URL (their ``config`` is ignored). The server listens on an
    ephemeral loopback port in a daemon thread; models load on first use.
    """
    global _embedded
    with _embedded_lock:
        if _embedded is None or not _embedded._thread.is_alive():
            base = config or EngineConfig()
            _embedded = start_in_thread(base.model_copy(update={"host": "127.0.0.1", "port": 0}))
        return _embedded.base_url
