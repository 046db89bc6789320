"""Helpers shared by the engine's routes: app objects, blocking work, voices, audio responses.

A generation route typically does::

    @router.post("/v1/some-generation")
    async def generate(request: Request, context: RequestContext = Depends(authenticate)):
        fmt = output_format(request, raw_format, allowed=CONVERT_FORMATS)
        generation = await admit(request, context, characters=len(text))
        try:
            audio = await run_blocking(render, text, fmt)
            history_id = await record_history(request, context, ...)
        except BaseException:
            await generation.finish(success=False)
            raise
        return GenerationResponse(audio, generation=generation, media_type=fmt.media_type,
                                  headers=generation_headers(generation, character_cost=...))

:class:`GenerationResponse` applies the time-to-first-byte delay and truncation faults, bills
the characters once the audio is delivered, and releases the concurrency slot whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..config import EngineConfig
from ..modes import EngineModes, Generation, drop_connection
from ..state import EngineState, HistoryItem, StoredVoice, new_id
from ..wire import RequestContext, api_error

__all__ = [
    "DEFAULT_VOICE_SETTINGS",
    "GenerationResponse",
    "VoiceRecord",
    "admit",
    "engine_config",
    "engine_modes",
    "engine_state",
    "generation_headers",
    "iterate_blocking",
    "lookup_voice",
    "output_format",
    "premade_voices",
    "record_history",
    "run_blocking",
    "voice_settings_for",
]

T = TypeVar("T")

DEFAULT_VOICE_SETTINGS: dict[str, Any] = {
    "stability": 0.5,
    "similarity_boost": 0.75,
    "style": 0.0,
    "use_speaker_boost": True,
    "speed": 1.0,
}
"""Settings of a voice nobody has edited (``GET /v1/voices/settings/default``)."""


# -- app objects ------------------------------------------------------------------------------


def engine_config(request: Request) -> EngineConfig:
    """The :class:`EngineConfig` of the app serving ``request``."""
    config: EngineConfig = request.app.state.config
    return config


def engine_state(request: Request) -> EngineState:
    """The :class:`EngineState` of the app serving ``request``."""
    state: EngineState = request.app.state.engine_state
    return state


def engine_modes(request: Request) -> EngineModes:
    """The :class:`EngineModes` of the app serving ``request``."""
    modes: EngineModes = request.app.state.modes
    return modes


async def admit(request: Request, context: RequestContext, *, characters: int = 0) -> Generation:
    """Admit a generation request through the engine's modes (faults, quota, concurrency)."""
    return await engine_modes(request).admit(request.scope, context, characters=characters)


# -- blocking work ----------------------------------------------------------------------------


async def run_blocking(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``func(*args, **kwargs)`` in a worker thread so the event loop keeps serving."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))


async def iterate_blocking(iterator: Iterator[T]) -> AsyncIterator[T]:
    """Pull items from a blocking iterator in worker threads, one at a time.

    The iterator is closed (in a thread) when iteration stops early, so generators can release
    subprocesses or files in their ``finally`` blocks.
    """
    sentinel = object()

    def step() -> Any:
        return next(iterator, sentinel)

    try:
        while True:
            item = await anyio.to_thread.run_sync(step)
            if item is sentinel:
                return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close)


# -- request parameters -----------------------------------------------------------------------


def output_format(value: str | None, *, allowed: Any, default: str = "mp3_44100_128") -> Any:
    """Parse the ``output_format`` query parameter against ``allowed`` (422 when not allowed).

    Returns the audio module's ``OutputFormat``.
    """
    from ..audio import UnsupportedFormatError, parse_output_format

    try:
        return parse_output_format(value, allowed=allowed, default=default)
    except UnsupportedFormatError as exc:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "output_format"),
                    "msg": str(exc),
                    "type": "enum",
                    "input": value,
                }
            ]
        ) from exc


# -- voices -----------------------------------------------------------------------------------


@dataclass
class VoiceRecord:
    """A voice the engine can speak with: premade, cloned or generated.

    ``profile`` is the TTS engine's ``VoiceProfile``.
    """

    voice_id: str
    name: str
    category: str
    profile: Any
    description: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    created_at: int | None = None


def _premade_field(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def premade_voices() -> list[VoiceRecord]:
    """The built-in voice catalogue (ElevenLabs' well-known premade ids and names)."""
    from ..engines.voices import PREMADE_VOICES

    items = PREMADE_VOICES.values() if isinstance(PREMADE_VOICES, Mapping) else PREMADE_VOICES
    records = []
    for item in items:
        labels = {
            key: str(value)
            for key in ("accent", "description", "age", "gender", "use_case")
            if (value := _premade_field(item, key))
        }
        records.append(
            VoiceRecord(
                voice_id=_premade_field(item, "voice_id"),
                name=_premade_field(item, "name"),
                category="premade",
                profile=_premade_field(item, "profile"),
                description=_premade_field(item, "description"),
                labels=labels,
            )
        )
    return records


def _from_stored(voice: StoredVoice) -> VoiceRecord:
    from ..engines.tts import VoiceProfile

    return VoiceRecord(
        voice_id=voice.voice_id,
        name=voice.name,
        category=voice.category,
        profile=VoiceProfile.from_dict(voice.profile),
        description=voice.description,
        labels=dict(voice.labels),
        samples=list(voice.samples),
        created_at=voice.created_at,
    )


def find_voice(state: EngineState, voice_id: str) -> VoiceRecord | None:
    """A premade or stored voice by id, or None."""
    for voice in premade_voices():
        if voice.voice_id == voice_id:
            return voice
    stored = state.get_voice(voice_id)
    return _from_stored(stored) if stored else None


def all_voices(state: EngineState) -> list[VoiceRecord]:
    """Every voice: stored ones (newest first), then the premade catalogue."""
    return [_from_stored(voice) for voice in state.list_voices()] + premade_voices()


def lookup_voice(state: EngineState, voice_id: str) -> VoiceRecord:
    """A voice by id, or the API's 404 ``voice_not_found`` error."""
    voice = find_voice(state, voice_id)
    if voice is None:
        raise api_error(
            404,
            "voice_not_found",
            f"A voice with the voice_id {voice_id} was not found.",
            param="voice_id",
        )
    return voice


def voice_settings_for(state: EngineState, voice_id: str) -> dict[str, Any]:
    """The voice's saved settings over the defaults."""
    return {**DEFAULT_VOICE_SETTINGS, **(state.get_voice_settings(voice_id) or {})}


# -- history ----------------------------------------------------------------------------------


async def record_history(
    request: Request,
    context: RequestContext,
    *,
    voice: VoiceRecord,
    model_id: str,
    text: str,
    audio: bytes,
    content_type: str,
    output_format: str,
    settings: Mapping[str, Any] | None = None,
    source: str = "TTS",
    history_item_id: str | None = None,
) -> str:
    """Store the audio and a history item for a generation; return the history item id.

    ``character_count_change_from``/``_to`` are the key's usage before and after this request.
    """
    state = engine_state(request)
    item_id = history_item_id or new_id()
    used = state.characters_used(context.key_id)
    item = HistoryItem(
        history_item_id=item_id,
        request_id=context.request_id,
        voice_id=voice.voice_id,
        voice_name=voice.name,
        voice_category=voice.category,
        model_id=model_id,
        text=text,
        character_count_change_from=used,
        character_count_change_to=used + len(text),
        content_type=content_type,
        output_format=output_format,
        settings=dict(settings) if settings is not None else None,
        source=source,
    )

    def store() -> None:
        state.write_file("history", item_id, audio)
        state.add_history(item)

    await run_blocking(store)
    return item_id


# -- responses --------------------------------------------------------------------------------


def generation_headers(
    generation: Generation,
    *,
    character_cost: int | None = None,
    history_item_id: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The standard headers of a generation response.

    ``request-id``, ``character-cost``, ``history-item-id`` and the concurrency headers.
    """
    headers = {"request-id": generation.context.request_id, **generation.headers}
    if character_cost is not None:
        headers["character-cost"] = str(character_cost)
    if history_item_id is not None:
        headers["history-item-id"] = history_item_id
    headers.update(extra or {})
    return headers


class GenerationResponse(Response):
    """The response of an admitted generation: bytes, or an async stream of chunks.

    It waits ``ttfb_ms`` before the first byte of the body, carries out a truncation fault
    (``Content-Length`` sent, half the body, connection closed), bills the characters before
    the client can see the end of the body, and always releases the concurrency slot.
    """

    def __init__(
        self,
        content: bytes | AsyncIterable[bytes],
        *,
        generation: Generation,
        media_type: str,
        headers: Mapping[str, str] | None = None,
        status_code: int = 200,
    ) -> None:
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.generation = generation
        if isinstance(content, bytes | bytearray | memoryview):
            self.body = bytes(content)
            self._stream: AsyncIterable[bytes] | None = None
        else:
            self._stream = content
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        generation = self.generation
        delivered = False
        try:
            if generation.fault == "truncate":
                await self._send_truncated(scope, send)
            elif self._stream is None:
                # Bill first: once the client has the whole body it may ask for its usage.
                await generation.finish(success=True)
                delivered = True
                await send(self._start())
                await self._wait_ttfb()
                await send({"type": "http.response.body", "body": self.body})
            else:
                delivered = await self._send_stream(receive, send)
        finally:
            await generation.finish(success=delivered)
            if self._stream is not None:
                await _aclose(self._stream)

    def _start(self, content_length: int | None = None) -> dict[str, Any]:
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        if content_length is not None:
            headers.append((b"content-length", str(content_length).encode()))
        elif self._stream is None:
            headers.append((b"content-length", str(len(self.body)).encode()))
        return {"type": "http.response.start", "status": self.status_code, "headers": headers}

    async def _wait_ttfb(self) -> None:
        if self.generation.ttfb_seconds > 0:
            await asyncio.sleep(self.generation.ttfb_seconds)

    async def _send_stream(self, receive: Receive, send: Send) -> bool:
        assert self._stream is not None
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, disconnected))
        try:
            await send(self._start())
            first = True
            async for chunk in self._stream:
                if disconnected.is_set():
                    return False
                if not chunk:
                    continue
                if first:
                    await self._wait_ttfb()
                    first = False
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if disconnected.is_set():
                return False
            await self.generation.finish(success=True)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return True
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _send_truncated(self, scope: Scope, send: Send) -> None:
        if self._stream is None:
            body = self.body
        else:
            body = b"".join([chunk async for chunk in self._stream])
        await send(self._start(content_length=len(body)))
        await self._wait_ttfb()
        half = body[: len(body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        if not await drop_connection(scope):
            raise RuntimeError("truncation fault: the server could not drop the connection")


async def _watch_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()
            return


async def _aclose(stream: AsyncIterable[bytes]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            result = close()
            if inspect.isawaitable(result):
                await result
