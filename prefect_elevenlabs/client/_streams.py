"""Streamed responses as objects that are both async context managers and async iterators.

``async with client.text_to_speech.stream(...) as audio`` gives access to ``audio.meta`` (the
response headers) before the first byte is read; ``async for chunk in client.text_to_speech
.stream(...)`` is the short form. Either way the connection and the concurrency slot are held
only while the body is being read.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx

from ..errors import ConnectionFailedError, ServerError
from ._common import Destination
from ._transport import Multipart, QueryParams, ResponseMeta, StreamedResponse, Transport
from .models import AudioDownload, TimestampChunk

ItemT = TypeVar("ItemT")

DEFAULT_CHUNK_SIZE = 16 * 1024


class _Stream(Generic[ItemT]):
    """Opens the request on enter (retrying until headers arrive) and closes it on exit."""

    def __init__(
        self,
        transport: Transport,
        method: str,
        path: str,
        *,
        endpoint: str,
        params: QueryParams | None = None,
        json: Any = None,
        multipart: Multipart | None = None,
    ) -> None:
        self._transport = transport
        self._request: dict[str, Any] = {
            "params": params,
            "json": json,
            "multipart": multipart,
            "endpoint": endpoint,
        }
        self._method = method
        self._path = path
        self._stack: contextlib.AsyncExitStack | None = None
        self._response: StreamedResponse | None = None
        self.endpoint = endpoint
        self.meta: ResponseMeta | None = None
        """The response headers' facts; set once the stream is open."""

    def __repr__(self) -> str:
        state = "open" if self._response is not None else "not open"
        return f"{type(self).__name__}({self.endpoint!r}, {state})"

    @property
    def headers(self) -> httpx.Headers:
        """The raw response headers (the stream must be open)."""
        return self._open_response().headers

    async def __aenter__(self) -> Self:
        if self._response is not None:
            raise RuntimeError(f"{self!r} is already open")
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            self._response = await stack.enter_async_context(
                self._transport.stream(self._method, self._path, **self._request)
            )
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self.meta = self._response.meta
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the response and frees the connection and concurrency slot."""
        stack, self._stack, self._response = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    def _open_response(self) -> StreamedResponse:
        if self._response is None:
            raise RuntimeError(
                f"{self!r}: use it as `async with ... as stream:` or iterate it with `async for`"
            )
        return self._response

    def __aiter__(self) -> AsyncIterator[ItemT]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ItemT]:
        if self._response is not None:
            async for item in self._items():
                yield item
            return
        async with self:
            async for item in self._items():
                yield item

    def _items(self) -> AsyncIterator[ItemT]:
        raise NotImplementedError


class AudioStream(_Stream[bytes]):
    """A streamed audio response; iterate it for the audio bytes as they arrive.

    Example:
        ```python
        async with client.text_to_speech.stream(voice_id, text="Hi") as audio:
            print(audio.meta.request_id)
            async for chunk in audio.iter_bytes():
                player.feed(chunk)
        ```
    """

    def __init__(self, *args: Any, chunk_size: int = DEFAULT_CHUNK_SIZE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chunk_size = chunk_size

    def iter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes (the stream must be open)."""
        return self._open_response().iter_bytes(chunk_size or self.chunk_size)

    def _items(self) -> AsyncIterator[bytes]:
        return self.iter_bytes()


class TimestampStream(_Stream[TimestampChunk]):
    """A streamed text-to-speech response with timings: one :class:`TimestampChunk` per line.

    Blank lines are skipped. A line that is not JSON is an error, not something to drop
    silently: losing a line would lose audio and shift every later timing.
    """

    async def _items(self) -> AsyncIterator[TimestampChunk]:
        response = self._open_response()
        meta = response.meta
        pending: str | None = None
        async for line in response.iter_lines():
            if pending is not None:
                yield _chunk(pending, meta, complete=True)
            pending = line if line.strip() else None
        if pending is not None:
            # iter_lines hands over a final unterminated piece as-is: maybe the body was cut short.
            yield _chunk(pending, meta, complete=False)


def _chunk(line: str, meta: ResponseMeta, *, complete: bool) -> TimestampChunk:
    try:
        data = json.loads(line)
    except ValueError as exc:
        excerpt = line.strip()[:80]
        if not complete:
            raise ConnectionFailedError(
                f"{meta.endpoint}: the stream ended in the middle of a line ({excerpt!r}); "
                "the response was cut short",
                request_id=meta.request_id,
            ) from exc
        raise ServerError(
            f"{meta.endpoint}: the stream sent a line that is not JSON ({excerpt!r}); "
            "expected one JSON object per line",
            status_code=meta.status_code,
            request_id=meta.request_id,
        ) from exc
    if not isinstance(data, dict):
        raise ServerError(
            f"{meta.endpoint}: expected a JSON object per line, got {type(data).__name__}",
            status_code=meta.status_code,
            request_id=meta.request_id,
        )
    return TimestampChunk.model_validate(data)


async def download_audio(
    transport: Transport,
    method: str,
    path: str,
    dest: Destination,
    *,
    endpoint: str,
    params: QueryParams | None = None,
    json: Any = None,
    multipart: Multipart | None = None,
) -> AudioDownload:
    """Streams an audio response to ``dest`` with whole-transfer retries; never held in memory."""
    written, meta = await transport.download(
        method, path, dest, params=params, json=json, multipart=multipart, endpoint=endpoint
    )
    return AudioDownload(
        path=Path(dest) if isinstance(dest, (str, os.PathLike)) else None,
        bytes_written=written,
        content_type=meta.content_type,
        meta=meta,
    )
