"""Realtime speech to text over a WebSocket (``/v1/speech-to-text/realtime``).

Audio goes up as base64 PCM (or mu-law) chunks; transcripts come back as typed events: a
``session_started`` first, ``partial_transcript`` while speech is in progress, and a
``committed_transcript`` (plus ``committed_transcript_with_timestamps`` when asked) for each
commit. The socket URL comes from the HTTP base URL (``http`` -> ``ws``, ``https`` -> ``wss``),
so the same code reaches the real API, a regional host or a local engine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import os
import wave
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    ElevenLabsError,
    InvalidRequestError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    error_from_response,
)
from ..errors import TimeoutError as ElevenLabsTimeoutError
from ._common import REALTIME_INPUT_FORMATS, invalid
from ._retry import RetryPolicy, is_retryable, parse_retry_after
from ._transport import Sleep
from .models import TranscriptWord

if TYPE_CHECKING:
    from .client import ElevenLabsClient

log = logging.getLogger("prefect_elevenlabs.client.realtime")

REALTIME_PATH = "/v1/speech-to-text/realtime"
_ENDPOINT = "WS /v1/speech-to-text/realtime"
API_KEY_ENV = "ELEVENLABS_API_KEY"


# --------------------------------------------------------------------------------------------
# Events


class RealtimeEvent(BaseModel):
    """A message from the server; subclasses cover the types this client knows."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    message_type: str


class SessionStarted(RealtimeEvent):
    """The first message: the session id and the configuration the server applied."""

    message_type: Literal["session_started"] = "session_started"
    session_id: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class PartialTranscript(RealtimeEvent):
    """Interim text for the speech since the last commit; it may still change."""

    message_type: Literal["partial_transcript"] = "partial_transcript"
    text: str = ""


class CommittedTranscript(RealtimeEvent):
    """Final text of one committed segment."""

    message_type: Literal["committed_transcript"] = "committed_transcript"
    text: str = ""


class CommittedTranscriptWithTimestamps(RealtimeEvent):
    """Final text of one committed segment with word timings (``include_timestamps=True``)."""

    message_type: Literal["committed_transcript_with_timestamps"] = (
        "committed_transcript_with_timestamps"
    )
    text: str = ""
    language_code: str | None = None
    words: list[TranscriptWord] = Field(default_factory=list)


_ERROR_CLASSES: dict[str, type[ElevenLabsError]] = {
    "auth_error": AuthenticationError,
    "quota_exceeded": QuotaExceededError,
    "rate_limited": RateLimitError,
    "queue_overflow": RateLimitError,
    "resource_exhausted": RateLimitError,
    "commit_throttled": RateLimitError,
    "unaccepted_terms": PermissionDeniedError,
    "input_error": InvalidRequestError,
    "invalid_request": InvalidRequestError,
    "chunk_size_exceeded": InvalidRequestError,
    "insufficient_audio_activity": InvalidRequestError,
    "session_time_limit_exceeded": InvalidRequestError,
    "transcriber_error": ServerError,
    "error": ServerError,
}
ERROR_TYPES = frozenset(_ERROR_CLASSES)


class RealtimeError(RealtimeEvent):
    """An error the server reported on the socket; ``exception`` is it as a typed error."""

    error: str = ""

    @property
    def exception(self) -> ElevenLabsError:
        """The error as the matching typed exception (quota, auth, rate limit...)."""
        cls = _ERROR_CLASSES.get(self.message_type, ServerError)
        return cls(
            f"{_ENDPOINT}: {self.message_type}: {self.error or 'no detail given'}",
            status=self.message_type,
            body=self.model_dump(),
        )


_EVENT_TYPES: dict[str, type[RealtimeEvent]] = {
    "session_started": SessionStarted,
    "partial_transcript": PartialTranscript,
    "committed_transcript": CommittedTranscript,
    "committed_transcript_with_timestamps": CommittedTranscriptWithTimestamps,
}


def parse_event(data: dict[str, Any]) -> RealtimeEvent:
    """Turns one server message into its event type (unknown types stay generic)."""
    kind = str(data.get("message_type", ""))
    if kind in ERROR_TYPES or (kind.endswith("error") and "error" in data):
        return RealtimeError.model_validate({**data, "message_type": kind})
    return _EVENT_TYPES.get(kind, RealtimeEvent).model_validate({**data, "message_type": kind})


# --------------------------------------------------------------------------------------------
# URL and connection


def realtime_url(base_url: str, params: Sequence[tuple[str, str]]) -> str:
    """The socket URL for an HTTP origin: same host and path prefix, ``ws``/``wss`` scheme."""
    url = httpx.URL(base_url)
    schemes = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    if url.scheme not in schemes or not url.host:
        raise ConfigurationError(
            f"base_url {base_url!r} must be an http(s) origin such as https://api.elevenlabs.io",
            status="invalid_base_url",
        )
    origin = str(url.copy_with(scheme=schemes[url.scheme], query=None, fragment=None)).rstrip("/")
    return f"{origin}{REALTIME_PATH}?{urlencode(list(params))}"


def sample_rate_of(audio_format: str) -> int:
    """The sample rate an input format implies (``pcm_16000`` -> 16000)."""
    return int(audio_format.rsplit("_", 1)[1])


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _redacted(url: str) -> str:
    parsed = httpx.URL(url)
    if "token" not in parsed.params:
        return url
    return str(parsed.copy_set_param("token", "***"))


class RealtimeTranscriber:
    """An open realtime transcription session; use :func:`connect_realtime` to make one.

    It is an async context manager (connects on enter, closes on exit) and an async iterator
    of events. With ``raise_on_error=True`` (the default) an error message from the server is
    raised as the matching typed error; with ``False`` it is yielded as :class:`RealtimeError`.

    Example:
        ```python
        async with connect_realtime(client, audio_format="pcm_16000") as session:
            await session.send_audio(pcm_chunk)
            await session.commit()
            async for event in session:
                if isinstance(event, CommittedTranscript):
                    print(event.text)
                    break
        ```
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        audio_format: str,
        raise_on_error: bool = True,
        open_timeout: float = 15.0,
        retry_policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.url = url
        self._headers = {"xi-api-key": api_key} if api_key else {}
        self.audio_format = audio_format
        self.sample_rate = sample_rate_of(audio_format)
        self.raise_on_error = raise_on_error
        self.open_timeout = open_timeout
        self._retry = retry_policy or RetryPolicy(max_retries=2)
        self.sleep = sleep
        self._ws: ClientConnection | None = None
        self._chunks_sent = 0
        self.session: SessionStarted | None = None
        """The ``session_started`` event, once it has been received."""

    def __repr__(self) -> str:
        state = "open" if self._ws is not None else "closed"
        return f"RealtimeTranscriber({_redacted(self.url)!r}, {state})"

    # -- connection ----------------------------------------------------------------------------

    async def __aenter__(self) -> RealtimeTranscriber:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connects, retrying rate limits, server faults and refused connections (bounded)."""
        attempt = 0
        while True:
            try:
                self._ws = await self._connect_once()
                log.debug("%s connected (attempt %d)", _redacted(self.url), attempt + 1)
                return
            except ElevenLabsError as error:
                if not is_retryable(error) or attempt >= self._retry.max_retries:
                    raise
                wait = self._retry.delay(attempt, getattr(error, "retry_after", None))
                log.warning("%s; reconnecting in %.2fs", error, wait)
                attempt += 1
                await self.sleep(wait)

    async def _connect_once(self) -> ClientConnection:
        host = httpx.URL(self.url).host
        try:
            return await connect(
                self.url,
                additional_headers=self._headers,
                open_timeout=self.open_timeout,
                max_size=16 * 1024 * 1024,
                # Loopback engines are never behind a proxy; elsewhere honour the environment.
                proxy=None if host in ("127.0.0.1", "localhost", "::1") else True,
            )
        except InvalidStatus as exc:
            response = exc.response
            headers = {k.lower(): v for k, v in response.headers.raw_items()}
            raise error_from_response(
                response.status_code,
                bytes(response.body or b""),
                request_id=headers.get("request-id"),
                retry_after=parse_retry_after(headers),
                endpoint=_ENDPOINT,
            ) from None
        except InvalidURI as exc:
            raise ConfigurationError(
                f"{_ENDPOINT}: invalid socket URL {_redacted(self.url)!r}: {exc}",
                status="invalid_base_url",
            ) from None
        except (InvalidHandshake, OSError) as exc:
            raise ConnectionFailedError(
                f"{_ENDPOINT}: could not open the socket at {_redacted(self.url)} "
                f"({type(exc).__name__}: {exc})"
            ) from None
        except TimeoutError:
            raise ElevenLabsTimeoutError(
                f"{_ENDPOINT}: no handshake within {self.open_timeout}s from {_redacted(self.url)}"
            ) from None

    async def close(self) -> None:
        """Closes the socket normally (code 1000)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.close()

    def _socket(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError(
                "the realtime session is not open: use `async with connect_realtime(...)`"
            )
        return self._ws

    # -- sending -------------------------------------------------------------------------------

    async def send_audio(
        self, pcm_bytes: bytes, *, commit: bool = False, previous_text: str | None = None
    ) -> None:
        """Sends one chunk of audio in the session's ``audio_format``; ``commit`` ends a segment.

        ``previous_text`` (context from before this audio) is accepted on the first chunk only.
        """
        if previous_text is not None and self._chunks_sent:
            raise invalid(
                "previous_text is only accepted with the first audio chunk of a session",
                param="previous_text",
            )
        if self.audio_format.startswith("pcm_") and len(pcm_bytes) % 2:
            raise invalid(
                f"{self.audio_format} is 16-bit audio: a chunk must hold whole samples "
                f"(an even number of bytes), got {len(pcm_bytes)}",
                param="audio_base_64",
            )
        await self._send(
            {
                "message_type": "input_audio_chunk",
                "audio_base_64": base64.b64encode(pcm_bytes).decode("ascii"),
                "commit": commit,
                "sample_rate": self.sample_rate,
                "previous_text": previous_text,
            }
        )
        self._chunks_sent += 1

    async def commit(self) -> None:
        """Asks the server to finalise the audio sent since the last commit."""
        await self._send(
            {
                "message_type": "input_audio_chunk",
                "audio_base_64": "",
                "commit": True,
                "sample_rate": self.sample_rate,
                "previous_text": None,
            }
        )

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self._socket().send(json.dumps(message))
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from None

    # -- receiving -----------------------------------------------------------------------------

    async def recv(self) -> RealtimeEvent | None:
        """The next event, or None once the server has closed the session normally."""
        ws = self._socket()
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosedOK:
                return None
            except ConnectionClosed as exc:
                raise self._closed_error(exc) from None
            try:
                data = json.loads(raw)
            except ValueError:
                log.warning("%s: ignoring a message that is not JSON", _ENDPOINT)
                continue
            if not isinstance(data, dict):
                continue
            event = parse_event(data)
            if isinstance(event, SessionStarted):
                self.session = event
            if isinstance(event, RealtimeError) and self.raise_on_error:
                raise event.exception
            return event

    def __aiter__(self) -> AsyncIterator[RealtimeEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[RealtimeEvent]:
        while (event := await self.recv()) is not None:
            yield event

    def _closed_error(self, exc: ConnectionClosed) -> ElevenLabsError:
        close = exc.rcvd or exc.sent
        code = close.code if close else None
        reason = close.reason if close else ""
        detail = f"code {code}" + (f": {reason}" if reason else "")
        if code == 1008:
            # Policy violation: the server refused the session (bad key, bad input...).
            lowered = reason.lower()
            if "quota" in lowered:
                return QuotaExceededError(f"{_ENDPOINT}: closed by the server ({detail})")
            if "auth" in lowered or "api key" in lowered or "api_key" in lowered:
                return AuthenticationError(f"{_ENDPOINT}: closed by the server ({detail})")
            return InvalidRequestError(f"{_ENDPOINT}: closed by the server ({detail})")
        return ConnectionFailedError(f"{_ENDPOINT}: the socket closed unexpectedly ({detail})")


def connect_realtime(
    client_or_base_url: ElevenLabsClient | str,
    api_key: str | None = None,
    *,
    model_id: str = "scribe_v2_realtime",
    audio_format: str = "pcm_16000",
    commit_strategy: str = "manual",
    language_code: str | None = None,
    include_timestamps: bool = False,
    include_language_detection: bool | None = None,
    vad_silence_threshold_secs: float | None = None,
    vad_threshold: float | None = None,
    min_speech_duration_ms: int | None = None,
    min_silence_duration_ms: int | None = None,
    secondary_languages: Sequence[str] | None = None,
    keyterms: Sequence[str] | None = None,
    no_verbatim: bool | None = None,
    filter_background_audio: bool | None = None,
    enable_logging: bool | None = None,
    entity_detection: Sequence[str] | None = None,
    entity_redaction: Sequence[str] | None = None,
    entity_redaction_mode: str | None = None,
    transcript_edit: str | None = None,
    token: str | None = None,
    raise_on_error: bool = True,
    open_timeout: float = 15.0,
    retry_policy: RetryPolicy | None = None,
) -> RealtimeTranscriber:
    """A realtime transcription session (connect with ``async with``).

    ``client_or_base_url`` is an :class:`ElevenLabsClient` (its origin and key are used) or an
    HTTP origin such as ``https://api.elevenlabs.io``. The key goes in the ``xi-api-key``
    handshake header; with a single-use ``token`` it goes in the query instead and no key is sent.
    A refused handshake (429, 5xx, connection refused) is retried under ``retry_policy``, else
    the client's policy, else two retries.

    Example:
        ```python
        async with connect_realtime("http://127.0.0.1:8011", "key") as session:
            ...
        ```
    """
    from .client import ElevenLabsClient

    retry: RetryPolicy | None = None
    sleep: Sleep = asyncio.sleep
    if isinstance(client_or_base_url, ElevenLabsClient):
        base_url = client_or_base_url.base_url
        key = api_key if api_key is not None else client_or_base_url._api_key.get()
        retry = client_or_base_url.transport.retry
        sleep = client_or_base_url.transport.sleep
    else:
        base_url = client_or_base_url
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if audio_format not in REALTIME_INPUT_FORMATS:
        raise invalid(
            f"audio_format {audio_format!r} is not accepted by the realtime socket; use one of: "
            f"{', '.join(sorted(REALTIME_INPUT_FORMATS))}",
            param="audio_format",
        )
    if commit_strategy not in ("manual", "vad", "turn_prediction"):
        raise invalid(
            "commit_strategy must be 'manual', 'vad' or 'turn_prediction', "
            f"got {commit_strategy!r}",
            param="commit_strategy",
        )
    params: list[tuple[str, str]] = [
        ("model_id", model_id),
        ("audio_format", audio_format),
        ("commit_strategy", commit_strategy),
    ]
    for name, value in (
        ("vad_silence_threshold_secs", vad_silence_threshold_secs),
        ("vad_threshold", vad_threshold),
        ("min_speech_duration_ms", min_speech_duration_ms),
        ("min_silence_duration_ms", min_silence_duration_ms),
        ("language_code", language_code),
    ):
        if value is not None:
            params.append((name, str(value)))
    params.extend(("secondary_languages", lang) for lang in secondary_languages or ())
    params.append(("include_timestamps", _flag(include_timestamps)))
    if include_language_detection is not None:
        params.append(("include_language_detection", _flag(include_language_detection)))
    params.extend(("keyterms", term) for term in keyterms or ())
    for name, flag in (
        ("no_verbatim", no_verbatim),
        ("filter_background_audio", filter_background_audio),
        ("enable_logging", enable_logging),
    ):
        if flag is not None:
            params.append((name, _flag(flag)))
    params.extend(("entity_detection", item) for item in entity_detection or ())
    params.extend(("entity_redaction", item) for item in entity_redaction or ())
    if entity_redaction_mode is not None:
        params.append(("entity_redaction_mode", entity_redaction_mode))
    if transcript_edit is not None:
        params.append(("transcript_edit", transcript_edit))
    if token is not None:
        params.append(("token", token))
    return RealtimeTranscriber(
        realtime_url(base_url, params),
        api_key=None if token is not None else key,
        audio_format=audio_format,
        raise_on_error=raise_on_error,
        open_timeout=open_timeout,
        retry_policy=retry_policy or retry,
        sleep=sleep,
    )


# --------------------------------------------------------------------------------------------
# Whole-file convenience


AudioSource = str | os.PathLike[str] | bytes


def _pcm_chunks(source: AudioSource, audio_format: str, chunk_bytes: int) -> Iterator[bytes]:
    """Raw audio from bytes, a raw file, or a WAV file (checked against ``audio_format``)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if data[:4] == b"RIFF":
            raise invalid(
                "give WAV audio as a file path (its header is checked), or raw PCM as bytes",
                param="source",
            )
        for start in range(0, len(data), chunk_bytes):
            yield data[start : start + chunk_bytes]
        return
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    with path.open("rb") as handle:
        is_wav = handle.read(4) == b"RIFF"
    if not is_wav:
        with path.open("rb") as handle:
            while chunk := handle.read(chunk_bytes):
                yield chunk
        return
    try:
        reader = wave.open(str(path), "rb")  # noqa: SIM115 - closed by the `with` below
    except (wave.Error, EOFError) as exc:
        raise invalid(f"{path} is not a readable PCM WAV file: {exc}", param="source") from None
    with reader:
        rate, channels, width = reader.getframerate(), reader.getnchannels(), reader.getsampwidth()
        expected = sample_rate_of(audio_format)
        if not audio_format.startswith("pcm_") or (rate, channels, width) != (expected, 1, 2):
            raise invalid(
                f"{path} is {rate} Hz, {channels} channel(s), {8 * width}-bit; audio_format "
                f"{audio_format} needs 16-bit mono PCM at {expected} Hz: convert it first "
                f"(e.g. ffmpeg -i in.wav -ac 1 -ar {expected} -c:a pcm_s16le out.wav)",
                param="audio_format",
            )
        while frames := reader.readframes(chunk_bytes // 2):
            yield frames


async def transcribe_stream(
    source: AudioSource,
    client_or_base_url: ElevenLabsClient | str,
    api_key: str | None = None,
    *,
    audio_format: str = "pcm_16000",
    chunk_seconds: float = 0.25,
    commit_every_seconds: float | None = 30.0,
    response_timeout: float = 120.0,
    **options: Any,
) -> str:
    """Sends a whole recording through the realtime socket and returns the committed text.

    ``source`` is raw audio in ``audio_format`` (bytes or a file) or a 16-bit mono WAV file at
    the format's rate. The audio is sent in ``chunk_seconds`` pieces, committed every
    ``commit_every_seconds`` and at the end; the committed segments are joined with spaces.
    Other keyword arguments go to :func:`connect_realtime` (``model_id``, ``language_code``...).

    Example:
        ```python
        text = await transcribe_stream("call.wav", client, language_code="en")
        ```
    """
    if chunk_seconds <= 0:
        raise invalid("chunk_seconds must be positive", param="chunk_seconds")
    if options.get("commit_strategy", "manual") != "manual":
        raise invalid("transcribe_stream commits by itself: leave commit_strategy as manual")
    options.pop("commit_strategy", None)
    rate = sample_rate_of(audio_format) if audio_format in REALTIME_INPUT_FORMATS else 16000
    bytes_per_second = rate * (1 if audio_format == "ulaw_8000" else 2)
    chunk_bytes = max(2, int(bytes_per_second * chunk_seconds) // 2 * 2)
    commit_bytes = int(bytes_per_second * commit_every_seconds) if commit_every_seconds else None
    session = connect_realtime(
        client_or_base_url,
        api_key,
        audio_format=audio_format,
        commit_strategy="manual",
        raise_on_error=False,
        **options,
    )
    # Read the first chunk before connecting, so a missing or unsuitable file fails at once.
    source_chunks = _pcm_chunks(source, audio_format, chunk_bytes)
    first = next(source_chunks, None)
    chunks = itertools.chain([first] if first else [], source_chunks)
    texts: list[str] = []
    answered = 0
    commits = 0
    changed = asyncio.Event()
    failure: list[BaseException] = []
    throttled = asyncio.Event()

    async def read() -> None:
        nonlocal answered
        try:
            async for event in session:
                if isinstance(event, CommittedTranscript):
                    texts.append(event.text)
                    answered += 1
                elif isinstance(event, RealtimeError):
                    if event.message_type == "insufficient_audio_activity":
                        answered += 1  # a commit of silence: nothing to transcribe
                    elif event.message_type == "commit_throttled":
                        throttled.set()
                    else:
                        failure.append(event.exception)
                        return
                changed.set()
        except Exception as exc:  # surfaced to the caller below
            failure.append(exc)
        finally:
            changed.set()

    async with session:
        reader = asyncio.create_task(read())
        try:
            pending = 0
            for chunk in chunks:
                if failure:
                    break
                await session.send_audio(chunk)
                pending += len(chunk)
                if commit_bytes and pending >= commit_bytes:
                    await session.commit()
                    commits += 1
                    pending = 0
            if pending and not failure:
                await session.commit()
                commits += 1
            loop = asyncio.get_running_loop()
            deadline = loop.time() + response_timeout
            while not failure and answered < commits and not reader.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ElevenLabsTimeoutError(
                        f"{_ENDPOINT}: {commits - answered} of {commits} commit(s) got no "
                        f"transcript within {response_timeout}s"
                    )
                changed.clear()
                if throttled.is_set():
                    throttled.clear()
                    await session.commit()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(remaining, 1.0))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
    if failure:
        raise failure[0]
    if answered < commits:
        raise ConnectionFailedError(
            f"{_ENDPOINT}: the session ended before every commit was answered "
            f"({answered} of {commits})"
        )
    return " ".join(text.strip() for text in texts if text.strip())
