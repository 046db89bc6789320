"""The async ElevenLabs client: one transport, one namespace per API area."""

from __future__ import annotations

import asyncio
import logging
import os
from types import TracebackType
from typing import Any

import httpx

from ..errors import ConfigurationError
from ._limiter import ConcurrencyLimiter
from ._retry import RetryPolicy
from ._transport import Sleep, Transport
from .account import Models, Users
from .alignment import ForcedAlignmentResource
from .conversations import Conversations
from .dubbing import Dubbing
from .history import History
from .music import Music
from .sound_effects import TextToSoundEffects
from .speech_to_text import SpeechToText
from .text_to_speech import TextToSpeech
from .voice_changer import AudioIsolation, SpeechToSpeech
from .voice_design import TextToVoice
from .voices import Voices

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
API_KEY_ENV = "ELEVENLABS_API_KEY"


class _Secret:
    """Holds the key so that no repr, str or log line of the client can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    def get(self) -> str | None:
        """The key itself, for the transport's header."""
        return self._value

    def __repr__(self) -> str:
        return "'**********'" if self._value else "None"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("the API key holder cannot be pickled")


def _check_base_url(base_url: str) -> str:
    try:
        url = httpx.URL(base_url)
    except Exception as exc:
        raise ConfigurationError(
            f"base_url {base_url!r} is not a valid URL: {exc}", status="invalid_base_url"
        ) from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"base_url {base_url!r} must be an http(s) origin such as {DEFAULT_BASE_URL}",
            status="invalid_base_url",
        )
    cleaned = base_url.rstrip("/")
    if cleaned.endswith("/v1") or cleaned.endswith("/v2"):
        raise ConfigurationError(
            f"base_url {base_url!r} ends with an API version: give the origin only, e.g. "
            f"{cleaned[:-3]!r}; the client adds /v1 or /v2 itself",
            status="invalid_base_url",
        )
    return cleaned


class ElevenLabsClient:
    """Async client for the ElevenLabs HTTP API (or the offline local engine).

    Every call goes through one :class:`Transport`: the ``xi-api-key`` header, bounded retries
    of rate limits, server faults and dropped connections (audio downloads and multipart
    uploads included), an in-process concurrency cap, and a log line per call.

    Args:
        api_key: The API key; defaults to ``$ELEVENLABS_API_KEY``. May be omitted for a local
            engine that does not check keys.
        base_url: The API origin without ``/v1`` (regional hosts and local engines work).
        timeout: Seconds to wait for a response before the attempt fails (and is retried).
        max_retries: Retries after the first attempt (ignored when ``retry_policy`` is given).
        max_concurrency: Most requests in flight at once (ignored when ``limiter`` is given).
        retry_policy: Backoff and retry limits.
        limiter: A cap shared with other clients (across threads and event loops).
        http_transport: An httpx transport, e.g. ``httpx.MockTransport`` in tests.
        sleep: The coroutine used to wait between retries.
        logger: Where call logs go (default ``prefect_elevenlabs.client``).

    Example:
        ```python
        async with ElevenLabsClient(api_key="...", max_concurrency=4) as client:
            voices = await client.voices.search(category="premade")
            await client.text_to_speech.convert(
                voices.voices[0].voice_id, text="Hello.", dest="hello.mp3"
            )
        ```
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 240.0,
        max_retries: int = 4,
        max_concurrency: int | None = None,
        retry_policy: RetryPolicy | None = None,
        limiter: ConcurrencyLimiter | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout}")
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be 0 or more, got {max_retries}")
        origin = _check_base_url(base_url)
        self._api_key = _Secret(api_key if api_key is not None else os.environ.get(API_KEY_ENV))
        self._shared = False
        self.transport = Transport(
            origin,
            self._api_key.get(),
            timeout=timeout,
            retry=retry_policy or RetryPolicy(max_retries=max_retries),
            limiter=limiter or ConcurrencyLimiter(max_concurrency),
            http_transport=http_transport,
            sleep=sleep,
            logger=logger,
        )
        self.text_to_speech = TextToSpeech(self.transport)
        self.speech_to_text = SpeechToText(self.transport)
        self.dubbing = Dubbing(self.transport)
        self.text_to_sound_effects = TextToSoundEffects(self.transport)
        self.music = Music(self.transport)
        self.text_to_voice = TextToVoice(self.transport)
        self.voices = Voices(self.transport)
        self.models = Models(self.transport)
        self.user = Users(self.transport)
        self.history = History(self.transport)
        self.speech_to_speech = SpeechToSpeech(self.transport)
        self.audio_isolation = AudioIsolation(self.transport)
        self.forced_alignment = ForcedAlignmentResource(self.transport)
        self.conversations = Conversations(self.transport)

    @property
    def base_url(self) -> str:
        """The API origin calls go to."""
        return self.transport.base_url

    def __repr__(self) -> str:
        limit = self.transport.limiter.limit
        return (
            f"ElevenLabsClient(base_url={self.base_url!r}, "
            f"max_retries={self.transport.retry.max_retries}, max_concurrency={limit})"
        )

    async def aclose(self) -> None:
        """Closes the connection pool."""
        await self.transport.aclose()

    async def __aenter__(self) -> ElevenLabsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A client shared per event loop (handed out by the credentials block) stays open for
        # the other callers on that loop; only a client made for this block is closed here.
        if not self._shared:
            await self.aclose()
