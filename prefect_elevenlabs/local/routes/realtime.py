"""Realtime speech to text: ``WS /v1/speech-to-text/realtime`` and single-use tokens.

The session follows the API's protocol, so the official SDK's
``client.speech_to_text.realtime.connect(...)`` works against it:

1. The client connects with the session settings in the query (``model_id``,
   ``audio_format``, ``commit_strategy``...) and its key in the ``xi-api-key`` header, or a
   single-use ``token`` (from ``POST /v1/single-use-token/realtime_scribe``). A bad key gets an
   ``auth_error`` message and close code 1008; bad settings an ``invalid_request`` message.
2. The server answers ``session_started`` with the session id and the settings in force.
3. The client streams ``input_audio_chunk`` messages (base64 PCM or µ-law at the format's
   rate). Every second of new audio, the uncommitted audio is transcribed again in a worker
   thread and sent as a ``partial_transcript``.
4. A chunk with ``commit: true`` (or, with ``commit_strategy=vad``, enough trailing silence)
   ends the segment: ``committed_transcript`` follows, then
   ``committed_transcript_with_timestamps`` when ``include_timestamps=true`` (word times are
   seconds from the start of the session).

Voice activity detection (for ``commit_strategy=vad``) is energy based: 20 ms frames louder
than ``-60 + 50 * vad_threshold`` dBFS (-40 dBFS at the default 0.4) count as speech. A
segment that is digital silence is committed as empty text without running Whisper. Bad
input is answered with the API's error messages (``input_error``, ``chunk_size_exceeded``...)
and the session goes on. An uncommitted segment is committed on its own after 90 s so memory
stays bounded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ..config import EngineConfig
from ..modes import EngineModes
from ..wire import (
    TOKEN_TYPES,
    ApiError,
    RequestContext,
    api_error,
    authenticate,
    check_api_key,
    issue_single_use_token,
    key_id,
    redeem_single_use_token,
)
from ._common import run_blocking
from .stt import TranscriptOptions, api_words, transcribe_samples

__all__ = ["AUDIO_FORMATS", "REALTIME_MODELS", "TOKEN_TYPES", "SessionSettings", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["speech-to-text"])

REALTIME_MODELS = ("scribe_v2_realtime", "scribe_v3_live")
"""Model ids the realtime session accepts."""

AUDIO_FORMATS: dict[str, int] = {
    "pcm_8000": 8000,
    "pcm_16000": 16000,
    "pcm_22050": 22050,
    "pcm_24000": 24000,
    "pcm_44100": 44100,
    "pcm_48000": 48000,
    "ulaw_8000": 8000,
}
"""Input ``audio_format`` -> sample rate."""

_PARTIAL_EVERY_SECONDS = 1.0
_MAX_SEGMENT_SECONDS = 90.0
_MAX_CHUNK_BYTES = 1 << 20
_FRAME_SECONDS = 0.02
_IDLE_KEEP_SECONDS = 0.5
_IDLE_TRIM_SECONDS = 5.0
_AUDIBLE_PEAK = 1e-3
_MIN_COMMIT_SECONDS = 0.1
_POLICY_VIOLATION = 1008


class _SessionError(Exception):
    """A message to send as ``{"message_type": kind, "error": message}``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class SessionSettings:
    """The query parameters of a session, validated."""

    model_id: str
    audio_format: str
    commit_strategy: str = "manual"
    vad_silence_threshold_secs: float = 1.5
    vad_threshold: float = 0.4
    min_speech_duration_ms: int = 100
    min_silence_duration_ms: int = 100
    language_code: str | None = None
    include_timestamps: bool = False
    include_language_detection: bool = False
    keyterms: tuple[str, ...] = ()
    no_verbatim: bool = False
    enable_logging: bool = True

    @property
    def sample_rate(self) -> int:
        """Sample rate of the incoming audio."""
        return AUDIO_FORMATS[self.audio_format]

    def to_api(self) -> dict[str, Any]:
        """The ``config`` object of ``session_started``."""
        return {
            "sample_rate": self.sample_rate,
            "audio_format": self.audio_format,
            "language_code": self.language_code,
            "commit_strategy": self.commit_strategy,
            "vad_silence_threshold_secs": self.vad_silence_threshold_secs,
            "vad_threshold": self.vad_threshold,
            "min_speech_duration_ms": self.min_speech_duration_ms,
            "min_silence_duration_ms": self.min_silence_duration_ms,
            "model_id": self.model_id,
            "enable_logging": self.enable_logging,
            "include_timestamps": self.include_timestamps,
            "include_language_detection": self.include_language_detection,
            "keyterms": list(self.keyterms),
            "no_verbatim": self.no_verbatim,
        }


def _query_bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    value = query.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise _SessionError("invalid_request", f"{name} must be true or false, got {value!r}")


def _query_number(
    query: Mapping[str, str], name: str, default: float, low: float, high: float
) -> float:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise _SessionError("invalid_request", f"{name} must be a number, got {value!r}") from None
    if not low <= number <= high:
        raise _SessionError("invalid_request", f"{name} must be between {low} and {high}")
    return number


def parse_settings(websocket: WebSocket) -> SessionSettings:
    """Validate the session's query parameters (raises ``invalid_request`` errors)."""
    query = websocket.query_params
    model_id = query.get("model_id")
    if model_id not in REALTIME_MODELS:
        raise _SessionError(
            "invalid_request",
            f"model_id must be one of {', '.join(REALTIME_MODELS)}, got {model_id!r}",
        )
    audio_format = query.get("audio_format")
    if audio_format not in AUDIO_FORMATS:
        raise _SessionError(
            "invalid_request",
            f"audio_format must be one of {', '.join(AUDIO_FORMATS)}, got {audio_format!r}",
        )
    strategy = query.get("commit_strategy") or "manual"
    if strategy not in ("manual", "vad"):
        raise _SessionError(
            "invalid_request", f"commit_strategy must be 'manual' or 'vad', got {strategy!r}"
        )
    for name, what in (
        ("entity_detection", "entity detection"),
        ("entity_redaction", "entity redaction"),
        ("transcript_edit", "transcript editing"),
    ):
        if query.getlist(name):
            raise _SessionError("invalid_request", f"the local engine does not offer {what}")
    keyterms = tuple(term for term in query.getlist("keyterms") if term)
    if len(keyterms) > 50 or any(len(term) > 20 for term in keyterms):
        raise _SessionError(
            "invalid_request", "keyterms allows at most 50 terms of at most 20 characters"
        )
    language = query.get("language_code") or None
    if language is not None:
        from ..engines.stt import UnsupportedLanguageError, to_iso639_1

        try:
            language = to_iso639_1(language)
        except UnsupportedLanguageError as exc:
            raise _SessionError("invalid_request", str(exc)) from None
    include_timestamps = _query_bool(query, "include_timestamps", False)
    if include_timestamps and _query_bool(query, "filter_background_audio", False):
        raise _SessionError(
            "invalid_request", "filter_background_audio cannot be combined with include_timestamps"
        )
    return SessionSettings(
        model_id=model_id,
        audio_format=audio_format,
        commit_strategy=strategy,
        vad_silence_threshold_secs=_query_number(
            query, "vad_silence_threshold_secs", 1.5, 0.3, 3.0
        ),
        vad_threshold=_query_number(query, "vad_threshold", 0.4, 0.1, 0.9),
        min_speech_duration_ms=int(_query_number(query, "min_speech_duration_ms", 100, 50, 2000)),
        min_silence_duration_ms=int(_query_number(query, "min_silence_duration_ms", 100, 50, 2000)),
        language_code=language,
        include_timestamps=include_timestamps,
        include_language_detection=_query_bool(query, "include_language_detection", False),
        keyterms=keyterms,
        no_verbatim=_query_bool(query, "no_verbatim", False),
        enable_logging=_query_bool(query, "enable_logging", True),
    )


# -- single-use tokens ------------------------------------------------------------------------


@router.post("/v1/single-use-token/{token_type}", summary="Issue a single-use token")
async def single_use_token(
    request: Request,
    token_type: str,
    context: Annotated[RequestContext, Depends(authenticate)],
) -> dict[str, str]:
    """``{"token": ...}``: valid once, for 15 minutes, in place of the caller's key."""
    if token_type not in TOKEN_TYPES:
        raise api_error(
            422,
            "invalid_parameters",
            f"token_type must be one of {', '.join(TOKEN_TYPES)}, got {token_type!r}.",
            param="token_type",
        )
    return {"token": issue_single_use_token(request.app, token_type, context.api_key)}


def _authenticate(websocket: WebSocket) -> RequestContext | None:
    """The caller's context, or None when neither a key nor a token lets it in."""
    config: EngineConfig = websocket.app.state.config
    rid = str(websocket.scope.get("state", {}).get("request_id") or secrets.token_hex(16))
    token = websocket.query_params.get("token")
    if token:
        issued = redeem_single_use_token(websocket.app, token, "realtime_scribe")
        if issued is not None:
            return RequestContext(rid, issued.api_key, key_id(issued.api_key))
        if config.auth_required:
            return None
        # An engine without keys lets everyone in, whatever token they bring.
        return RequestContext(rid, None, key_id(None))
    api_key = websocket.headers.get("xi-api-key") or None
    bearer = websocket.headers.get("authorization", "")
    if api_key is None and bearer.lower().startswith("bearer "):
        api_key = bearer[7:].strip() or None
    if not check_api_key(config, api_key):
        return None
    return RequestContext(rid, api_key, key_id(api_key))


# -- the session ------------------------------------------------------------------------------


def _ulaw_to_float(data: bytes) -> np.ndarray:
    codes = ~np.frombuffer(data, dtype=np.uint8)
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    pcm = np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84)
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


@dataclass
class _Vad:
    """Energy-based voice activity over 20 ms frames."""

    rate: int
    threshold_db: float
    frame: int = 0
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    speech_seconds: float = 0.0
    trailing_silence: float = 0.0

    def __post_init__(self) -> None:
        self.frame = max(1, int(self.rate * _FRAME_SECONDS))

    def feed(self, samples: np.ndarray) -> None:
        data = np.concatenate([self.pending, samples]) if self.pending.size else samples
        count = data.size // self.frame
        frames = data[: count * self.frame].reshape(count, self.frame) if count else None
        self.pending = data[count * self.frame :].copy()
        if frames is None:
            return
        rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
        loud = 20.0 * np.log10(np.maximum(rms, 1e-9)) > self.threshold_db
        seconds = self.frame / self.rate
        for is_speech in loud:
            if is_speech:
                self.speech_seconds += seconds
                self.trailing_silence = 0.0
            else:
                self.trailing_silence += seconds

    def reset(self) -> None:
        self.speech_seconds = 0.0
        self.trailing_silence = 0.0


class _Session:
    """One realtime transcription session over an accepted WebSocket."""

    def __init__(
        self, websocket: WebSocket, settings: SessionSettings, context: RequestContext
    ) -> None:
        self.websocket = websocket
        self.settings = settings
        self.context = context
        self.session_id = secrets.token_hex(16)
        self.rate = settings.sample_rate
        self.chunks: list[np.ndarray] = []
        self.buffered = 0
        self.offset = 0
        self.since_partial = 0
        self.peak = 0.0
        self.segment = 0
        self.chunks_seen = 0
        self.previous_text: str | None = None
        self.partial_task: asyncio.Task[None] | None = None
        self.send_lock = asyncio.Lock()
        self.vad = _Vad(self.rate, -60.0 + 50.0 * settings.vad_threshold)

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            if self.websocket.application_state == WebSocketState.CONNECTED:
                await self.websocket.send_text(json.dumps(message, ensure_ascii=False))

    async def error(self, kind: str, message: str) -> None:
        await self.send({"message_type": kind, "error": message})

    async def run(self) -> None:
        await self.send(
            {
                "message_type": "session_started",
                "session_id": self.session_id,
                "config": self.settings.to_api(),
            }
        )
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self.error(
                    "input_error", "send JSON text messages, not binary frames (base64 the audio)"
                )
                continue
            try:
                await self.handle(text)
            except _SessionError as exc:
                await self.error(exc.kind, exc.message)

    async def handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _SessionError("input_error", f"the message is not valid JSON: {exc}") from None
        if not isinstance(message, dict):
            raise _SessionError("input_error", "each message must be a JSON object")
        kind = message.get("message_type")
        if kind != "input_audio_chunk":
            raise _SessionError(
                "input_error",
                f"unknown message_type {kind!r}: the client sends 'input_audio_chunk' messages",
            )
        samples = self._decode(message)
        self.chunks_seen += 1
        if samples.size:
            self.chunks.append(samples)
            self.buffered += samples.size
            self.since_partial += samples.size
            self.peak = max(self.peak, float(np.abs(samples).max()))
            self.vad.feed(samples)
        if bool(message.get("commit")):
            await self.commit()
            return
        if self._vad_commit_due() or self.buffered >= _MAX_SEGMENT_SECONDS * self.rate:
            await self.commit()
            return
        self._trim_idle()
        if (
            self.since_partial >= _PARTIAL_EVERY_SECONDS * self.rate
            and self._audible()
            and (self.partial_task is None or self.partial_task.done())
        ):
            self.since_partial = 0
            self.partial_task = asyncio.create_task(self._partial(self._snapshot(), self.segment))

    def _decode(self, message: dict[str, Any]) -> np.ndarray:
        rate = message.get("sample_rate")
        if rate is not None and rate != self.rate:
            raise _SessionError(
                "input_error",
                f"sample_rate {rate} does not match audio_format {self.settings.audio_format} "
                f"({self.rate} Hz)",
            )
        previous = message.get("previous_text")
        if previous is not None:
            if self.chunks_seen:
                raise _SessionError(
                    "input_error", "previous_text is only allowed on the first audio chunk"
                )
            if not isinstance(previous, str):
                raise _SessionError("input_error", "previous_text must be a string")
            self.previous_text = previous
        encoded = message.get("audio_base_64", "")
        if not isinstance(encoded, str):
            raise _SessionError("input_error", "audio_base_64 must be a base64 string")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _SessionError("input_error", "audio_base_64 is not valid base64") from None
        if len(data) > _MAX_CHUNK_BYTES:
            raise _SessionError(
                "chunk_size_exceeded",
                f"a chunk may carry at most {_MAX_CHUNK_BYTES} bytes of audio; send smaller chunks",
            )
        if self.settings.audio_format.startswith("ulaw"):
            return _ulaw_to_float(data)
        if len(data) % 2:
            raise _SessionError(
                "input_error", "PCM audio must be 16-bit samples: the chunk has an odd byte count"
            )
        return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)

    def _vad_commit_due(self) -> bool:
        settings = self.settings
        return (
            settings.commit_strategy == "vad"
            and self.vad.speech_seconds * 1000.0 >= settings.min_speech_duration_ms
            and self.vad.trailing_silence >= settings.vad_silence_threshold_secs
        )

    def _audible(self) -> bool:
        """Whether the segment holds anything but digital silence.

        Deliberately lower than the VAD threshold: quiet speech must still be transcribed when
        the client commits by hand; Whisper's own voice detection skips what is not speech.
        """
        return self.peak > _AUDIBLE_PEAK

    def _trim_idle(self) -> None:
        """With VAD commits, drop old silence while nobody speaks, keeping a little lead-in."""
        if (
            self.settings.commit_strategy != "vad"
            or self.vad.speech_seconds > 0
            or self.buffered < _IDLE_TRIM_SECONDS * self.rate
        ):
            return
        audio = self._snapshot()
        keep = int(_IDLE_KEEP_SECONDS * self.rate)
        self.offset += audio.size - keep
        self.chunks = [audio[-keep:]]
        self.buffered = keep
        self.since_partial = 0

    def _snapshot(self) -> np.ndarray:
        if not self.chunks:
            return np.zeros(0, dtype=np.float32)
        if len(self.chunks) > 1:
            self.chunks = [np.concatenate(self.chunks)]
        return self.chunks[0]

    def _options(self) -> TranscriptOptions:
        keyterms = list(self.settings.keyterms)
        return TranscriptOptions(
            language=self.settings.language_code,
            keyterms=keyterms,
            no_verbatim=self.settings.no_verbatim,
        )

    def _transcribe(self, audio: np.ndarray) -> Any:
        from ..audio import resample
        from .stt import STT_SAMPLE_RATE

        samples = resample(audio, self.rate, STT_SAMPLE_RATE) if self.rate != 16000 else audio
        return transcribe_samples(samples, self._options())

    async def _partial(self, audio: np.ndarray, segment: int) -> None:
        try:
            result = await run_blocking(self._transcribe, audio)
        except Exception as exc:  # a failed partial must not end the session
            logger.warning("partial transcription failed: %r", exc)
            return
        if segment == self.segment:
            await self.send({"message_type": "partial_transcript", "text": result.text})

    async def commit(self) -> None:
        if self.partial_task is not None:
            with contextlib.suppress(Exception):
                await self.partial_task
            self.partial_task = None
        modes: EngineModes = self.websocket.app.state.modes
        try:
            generation = await modes.admit(self.websocket.scope, self.context, characters=0)
        except ApiError as exc:
            kind = {429: "rate_limited", 401: "quota_exceeded"}.get(
                exc.status_code, "transcriber_error"
            )
            raise _SessionError(kind, exc.message) from None
        audio = self._snapshot()
        start = self.offset / self.rate
        self.offset += audio.size
        self.chunks, self.buffered, self.since_partial = [], 0, 0
        self.segment += 1
        audible = self._audible() and audio.size >= _MIN_COMMIT_SECONDS * self.rate
        self.peak = 0.0
        self.vad.reset()
        try:
            result = await run_blocking(self._transcribe, audio) if audible else None
        except ApiError as exc:
            await generation.finish(success=False)
            raise _SessionError("input_error", exc.message) from None
        except Exception as exc:
            await generation.finish(success=False)
            logger.warning("realtime transcription failed: %r", exc)
            raise _SessionError("transcriber_error", f"transcription failed: {exc}") from None
        await generation.finish(success=True)
        text = result.text if result is not None else ""
        await self.send({"message_type": "committed_transcript", "text": text})
        if self.settings.include_timestamps:
            await self.send(self._with_timestamps(result, text, start))

    def _with_timestamps(self, result: Any, text: str, start: float) -> dict[str, Any]:
        from ..engines.stt import to_iso639_3

        words = []
        language = self.settings.language_code
        if result is not None:
            language = result.language
            words = [
                replace(word, start=round(word.start + start, 3), end=round(word.end + start, 3))
                for word in result.words
            ]
        return {
            "message_type": "committed_transcript_with_timestamps",
            "text": text,
            "language_code": to_iso639_3(language) if language else None,
            "words": api_words(words),
        }

    async def close(self) -> None:
        if self.partial_task is not None and not self.partial_task.done():
            self.partial_task.cancel()
            with contextlib.suppress(BaseException):
                await self.partial_task


@router.websocket("/v1/speech-to-text/realtime")
async def realtime(websocket: WebSocket) -> None:
    """A realtime transcription session (see the module docstring for the protocol)."""
    await websocket.accept()
    context = _authenticate(websocket)
    if context is None:
        await websocket.send_text(
            json.dumps(
                {
                    "message_type": "auth_error",
                    "error": "Invalid API key: send your key in the xi-api-key header or a "
                    "single-use realtime_scribe token as ?token=",
                }
            )
        )
        await websocket.close(_POLICY_VIOLATION, "invalid api key")
        return
    try:
        settings = parse_settings(websocket)
    except _SessionError as exc:
        await websocket.send_text(json.dumps({"message_type": exc.kind, "error": exc.message}))
        await websocket.close(_POLICY_VIOLATION, exc.kind)
        return
    session = _Session(websocket, settings, context)
    try:
        await session.run()
    except WebSocketDisconnect:
        pass
    finally:
        await session.close()
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(1000)
