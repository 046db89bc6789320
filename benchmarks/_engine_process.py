"""Entry point of a benchmark engine: the local engine served from its own process.

Started by :class:`benchmarks._engine.EngineProcess` as
``python -m benchmarks._engine_process '<json settings>'``. The engine lives in a process of its
own so that the client being measured never competes with the server for the same interpreter
lock; the real API is on another machine, after all.

Two additions to the engine as shipped, both outside its ASGI app:

- every ``/v1/...`` request is timed (arrival, first body byte sent, last byte sent) on the
  system-wide monotonic clock, so the parent process can tell when a batch's generation phase
  began and ended whatever client sent it. ``GET /_bench/timings`` returns the records,
  ``POST /_bench/timings/reset`` clears them;
- the listening socket is created with ``IPPROTO_TCP`` so asyncio turns Nagle's algorithm off
  on accepted connections, as it does for servers that bind their own port (``local serve``).

Once the engine answers, one JSON line ``{"base_url": ...}`` is printed; the process serves
until its standard input is closed.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn

from prefect_elevenlabs.local.app import create_app
from prefect_elevenlabs.local.config import EngineConfig
from prefect_elevenlabs.local.state import EngineState, StoredVoice

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FAST_VOICE_ID = "benchFastEspeakVoice"
"""A stored voice spoken by espeak-ng with no pitch shift: the cheapest synthesis there is."""

_STARTUP_TIMEOUT_S = 60.0


class TimedApp:
    """Wraps an ASGI app and records when each API request arrived and was answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.records: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_bench/"):
            await self._control(scope, send)
            return
        if not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        record: dict[str, Any] = {
            "method": scope["method"],
            "path": path,
            "status": None,
            "start": time.monotonic(),
            "first_byte": None,
            "end": None,
        }
        self.records.append(record)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            elif message["type"] == "http.response.body":
                # Stamp before handing the bytes over: that is when the server let them go.
                now = time.monotonic()
                if message.get("body") and record["first_byte"] is None:
                    record["first_byte"] = now
                if not message.get("more_body", False):
                    record["end"] = now
            await send(message)

        await self.app(scope, receive, timed_send)

    async def _control(self, scope: Scope, send: Send) -> None:
        if scope["path"] == "/_bench/timings" and scope["method"] == "GET":
            body = json.dumps(self.records).encode()
        elif scope["path"] == "/_bench/timings/reset" and scope["method"] == "POST":
            self.records = []
            body = b"[]"
        else:
            await _respond(send, 404, b'{"detail": "unknown benchmark route"}')
            return
        await _respond(send, 200, body)


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_fast_voice(state: EngineState) -> None:
    """Stores :data:`FAST_VOICE_ID` in the engine's voice library."""
    state.add_voice(
        StoredVoice.plain_espeak(FAST_VOICE_ID, "Benchmark voice", use_case="benchmarks")
    )


def _serve(settings: dict[str, Any]) -> None:
    fast_voice = bool(settings.pop("fast_voice", True))
    config = EngineConfig(**settings, host="127.0.0.1", port=0)
    app = create_app(config)
    if fast_voice:
        install_fast_voice(app.state.engine_state)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            TimedApp(app), log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("the benchmark engine did not start")
        time.sleep(0.02)
    print(json.dumps({"base_url": f"http://127.0.0.1:{port}"}), flush=True)
    sys.stdin.read()  # returns when the parent closes the pipe (or exits)
    server.should_exit = True
    thread.join(10)


def main(argv: list[str] | None = None) -> None:
    """Serves an engine configured by the JSON object in ``argv[0]`` (EngineConfig fields)."""
    args = sys.argv[1:] if argv is None else argv
    settings = json.loads(args[0]) if args else {}
    settings["data_dir"] = Path(settings["data_dir"])
    _serve(settings)


if __name__ == "__main__":
    main()
