"""Operating modes for tests, demos and benchmarks, applied to every generation request.

A generation route calls :meth:`EngineModes.admit` before doing any work. In order, admission:

1. counts the request and draws at most one injected fault (seeded, at the configured rates):
   429 ``system_busy`` with ``Retry-After``, 500, 503, a connection dropped before any header,
   or a body truncated mid-stream (the last one is carried out when the response is sent);
2. refuses the request with 401 ``quota_exceeded`` when the key's characters would exceed
   ``character_quota`` (characters of requests still in flight are reserved, so parallel
   requests cannot overspend);
3. refuses it with 429 ``too_many_concurrent_requests`` when ``max_concurrency`` generations
   are already in flight;
4. sleeps ``latency_ms`` (asynchronously, holding the concurrency slot like real work would).

The returned :class:`Generation` holds the slot until :meth:`Generation.finish`, which bills the
characters when the generation was delivered. Counters are served at ``GET /local/stats``.

Example::

    generation = await request.app.state.modes.admit(request, context, characters=len(text))
    try:
        audio = await run_blocking(synthesize, text)
    except BaseException:
        await generation.finish(success=False)
        raise
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from .config import EngineConfig
from .state import EngineState
from .wire import RAW_SEND_KEY, RequestContext, api_error

__all__ = [
    "FAULT_KINDS",
    "EngineModes",
    "Generation",
    "drop_connection",
]

logger = logging.getLogger(__name__)

FAULT_KINDS = ("429", "500", "503", "drop", "truncate")
_REJECTIONS = ("too_many_concurrent_requests", "quota_exceeded")


async def drop_connection(scope: MutableMapping[str, Any]) -> bool:
    """Close the client's TCP connection at once, whatever has been sent so far.

    ASGI has no way to abort a connection, so this reaches into uvicorn: the ``send`` callable
    uvicorn hands to the app is a bound method of its per-request ``RequestResponseCycle``,
    whose ``transport`` attribute is the connection's asyncio transport. ``abort()`` closes the
    socket without flushing; the pause lets uvicorn's ``connection_lost`` run, after which it
    discards whatever the app still sends. Returns False (nothing dropped) under another server.
    """
    send = scope.get(RAW_SEND_KEY)
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if not isinstance(transport, asyncio.Transport):
        logger.warning("cannot drop the connection: the server is not uvicorn")
        return False
    transport.abort()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return True


@dataclass
class _Counters:
    requests: int = 0
    completed: int = 0
    characters_billed: int = 0
    peak_concurrency: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_REJECTIONS, 0))


class Generation:
    """One admitted generation request.

    Holds its concurrency slot and its reservation of characters until :meth:`finish`.
    ``fault`` is ``"truncate"`` when the response body must be cut off, else None.
    """

    def __init__(
        self,
        modes: EngineModes,
        context: RequestContext,
        characters: int,
        *,
        fault: str | None,
        concurrent: int,
        scope: MutableMapping[str, Any],
    ) -> None:
        self.modes = modes
        self.context = context
        self.characters = characters
        self.fault = fault
        self.concurrent = concurrent
        self.scope = scope
        self.finished = False

    @property
    def headers(self) -> dict[str, str]:
        """Concurrency headers for the response (``maximum-...`` only when a cap is set)."""
        headers = {"current-concurrent-requests": str(self.concurrent)}
        cap = self.modes.config.max_concurrency
        if cap is not None:
            headers["maximum-concurrent-requests"] = str(cap)
        return headers

    @property
    def ttfb_seconds(self) -> float:
        """Delay to wait before sending the first byte of the body."""
        return self.modes.config.ttfb_ms / 1000.0

    async def finish(self, *, success: bool) -> None:
        """Release the slot; bill the characters if the generation was delivered. Idempotent."""
        if self.finished:
            return
        self.finished = True
        self.modes._release(self, success=success)


class EngineModes:
    """Concurrency gate, per-key quota, simulated latency and fault injection for one app."""

    def __init__(self, config: EngineConfig, state: EngineState) -> None:
        self.config = config
        self.state = state
        self._rng = random.Random(config.fault_seed)
        self._counters = _Counters()
        self._in_flight = 0
        self._reserved: dict[str, int] = {}

    @property
    def in_flight(self) -> int:
        """Generation requests currently admitted and not finished."""
        return self._in_flight

    async def admit(
        self,
        scope: MutableMapping[str, Any],
        context: RequestContext,
        *,
        characters: int = 0,
    ) -> Generation:
        """Admit a generation request costing ``characters``, or raise the error to answer.

        ``scope`` is the request's ASGI scope (``request.scope``), needed to drop connections.
        """
        self._counters.requests += 1
        fault = self._draw_fault()
        if fault is not None:
            self._counters.faults[fault] += 1
            if fault != "truncate":
                await self._inject(fault, scope)
        self._check_quota(context, characters)
        cap = self.config.max_concurrency
        if cap is not None and self._in_flight >= cap:
            self._counters.rejected["too_many_concurrent_requests"] += 1
            raise api_error(
                429,
                "too_many_concurrent_requests",
                f"Too many concurrent requests: {self._in_flight} of {cap} allowed are already "
                "in flight. Wait for one to finish, then retry.",
                headers={
                    "current-concurrent-requests": str(self._in_flight),
                    "maximum-concurrent-requests": str(cap),
                },
            )
        self._in_flight += 1
        self._counters.peak_concurrency = max(self._counters.peak_concurrency, self._in_flight)
        self._reserved[context.key_id] = self._reserved.get(context.key_id, 0) + characters
        generation = Generation(
            self,
            context,
            characters,
            fault=fault,
            concurrent=self._in_flight,
            scope=scope,
        )
        if self.config.latency_ms > 0:
            try:
                await asyncio.sleep(self.config.latency_ms / 1000.0)
            except BaseException:
                await generation.finish(success=False)
                raise
        return generation

    def stats(self) -> dict[str, Any]:
        """Counters since start or the last reset (served at ``GET /local/stats``)."""
        counters = self._counters
        return {
            "requests": counters.requests,
            "completed": counters.completed,
            "faults": dict(counters.faults),
            "faults_total": sum(counters.faults.values()),
            "rejected": dict(counters.rejected),
            "characters_billed": counters.characters_billed,
            "peak_concurrency": counters.peak_concurrency,
            "in_flight": self._in_flight,
            "max_concurrency": self.config.max_concurrency,
        }

    def reset_stats(self) -> None:
        """Zero the counters and restart the fault sequence from its seed."""
        self._counters = _Counters(peak_concurrency=self._in_flight)
        self._rng = random.Random(self.config.fault_seed)

    def _draw_fault(self) -> str | None:
        rates = self.config.fault_rates
        if not any(rates.values()):
            return None
        draw = self._rng.random()
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += rates[kind]
            if draw < edge:
                return kind
        return None

    async def _inject(self, fault: str, scope: MutableMapping[str, Any]) -> None:
        wait = self.config.fault_retry_after
        retry_headers = {
            # Whole seconds for RFC 9110 clients (the official SDK only reads integers) and the
            # exact value in milliseconds for clients that read ``retry-after-ms``.
            "retry-after": str(math.ceil(wait)),
            "retry-after-ms": str(round(wait * 1000)),
        }
        if fault == "429":
            raise api_error(
                429,
                "system_busy",
                "The system is experiencing heavy traffic, please try again later "
                "(fault injected by the local engine).",
                headers=retry_headers,
            )
        if fault == "500":
            raise api_error(
                500,
                "internal_server_error",
                "The server had an error while processing the request "
                "(fault injected by the local engine).",
            )
        if fault == "503":
            raise api_error(
                503,
                "service_unavailable",
                "The service is temporarily unavailable (fault injected by the local engine).",
                headers=retry_headers,
            )
        dropped = await drop_connection(scope)
        # Nobody will read this answer when the connection is gone; it only matters when the
        # server could not be made to drop it.
        raise api_error(
            500 if dropped else 502,
            "connection_dropped",
            "The connection was dropped (fault injected by the local engine).",
        )

    def _check_quota(self, context: RequestContext, characters: int) -> None:
        quota = self.config.character_quota
        if quota is None:
            return
        used = self.state.characters_used(context.key_id)
        reserved = self._reserved.get(context.key_id, 0)
        remaining = max(0, quota - used - reserved)
        if characters > remaining:
            self._counters.rejected["quota_exceeded"] += 1
            raise api_error(
                401,
                "quota_exceeded",
                f"This request exceeds your quota of {quota}. You have {remaining} credits "
                f"remaining, while {characters} credits are required for this request.",
                extra={"character_used": used, "character_limit": quota},
            )

    def _release(self, generation: Generation, *, success: bool) -> None:
        self._in_flight -= 1
        key = generation.context.key_id
        left = self._reserved.get(key, 0) - generation.characters
        if left > 0:
            self._reserved[key] = left
        else:
            self._reserved.pop(key, None)
        if success:
            self._counters.completed += 1
            if generation.characters:
                self.state.add_characters(key, generation.characters)
                self._counters.characters_billed += generation.characters
