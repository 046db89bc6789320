"""The one place that sends HTTP requests: auth, retries, flow control, logging, streaming.

Every endpoint method in this package goes through :class:`Transport`, so retry behaviour is the
same for JSON, multipart uploads and audio downloads (the official SDK never retries the latter).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import BaseModel, ConfigDict

from .. import __version__
from ..errors import (
    ConnectionFailedError,
    ElevenLabsError,
    TimeoutError,
    error_from_response,
)
from ._limiter import ConcurrencyLimiter
from ._retry import RetryPolicy, is_retryable, parse_retry_after

log = logging.getLogger("prefect_elevenlabs.client")

Sleep = Callable[[float], Awaitable[None]]
QueryParams = Mapping[str, Any]

_DOWNLOAD_CHUNK = 64 * 1024

# Lets a caller (a Prefect task, say) route this client's log lines to its own logger for the
# calls made inside a block, without the client importing Prefect or being rebuilt per call.
_call_logger: contextvars.ContextVar[logging.Logger | logging.LoggerAdapter[Any] | None] = (
    contextvars.ContextVar("prefect_elevenlabs_call_logger", default=None)
)


@contextlib.contextmanager
def log_calls_to(logger: logging.Logger | logging.LoggerAdapter[Any]) -> Any:
    """Sends the log lines of client calls made inside this block to ``logger``."""
    token = _call_logger.set(logger)
    try:
        yield logger
    finally:
        _call_logger.reset(token)


class ResponseMeta(BaseModel):
    """What the response headers say about a call: ids, cost and concurrency."""

    model_config = ConfigDict(frozen=True)

    endpoint: str
    status_code: int
    request_id: str | None = None
    character_cost: int | None = None
    history_item_id: str | None = None
    current_concurrent_requests: int | None = None
    maximum_concurrent_requests: int | None = None
    content_type: str | None = None
    attempts: int = 1
    latency_s: float = 0.0
    extra: dict[str, str] = {}

    @classmethod
    def from_response(
        cls, endpoint: str, response: httpx.Response, *, attempts: int, latency_s: float
    ) -> ResponseMeta:
        h = response.headers
        extra = {k: h[k] for k in ("song-id", "generated-voice-id", "tts-latency-ms") if k in h}
        return cls(
            endpoint=endpoint,
            status_code=response.status_code,
            request_id=h.get("request-id") or h.get("x-request-id"),
            character_cost=_int_header(h, "character-cost"),
            history_item_id=h.get("history-item-id"),
            current_concurrent_requests=_int_header(h, "current-concurrent-requests"),
            maximum_concurrent_requests=_int_header(h, "maximum-concurrent-requests"),
            content_type=h.get("content-type"),
            attempts=attempts,
            latency_s=latency_s,
            extra=extra,
        )


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class FileSpec:
    """One file part of a multipart upload, re-opened on every attempt so a retry sends it whole."""

    path: Path | None = None
    content: bytes | None = None
    filename: str | None = None
    content_type: str = "application/octet-stream"

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], content_type: str | None = None) -> FileSpec:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist or is not a file")
        return cls(path=p, filename=p.name, content_type=content_type or _guess_type(p))

    @classmethod
    def json_part(cls, content: str) -> FileSpec:
        """A form field sent as its own ``application/json`` part (STT ``additional_formats``)."""
        return cls(content=content.encode(), filename=None, content_type="application/json")


def _guess_type(path: Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@dataclass(frozen=True)
class Multipart:
    """Form fields (repeatable) and file parts of a multipart request."""

    fields: Sequence[tuple[str, str]] = ()
    files: Sequence[tuple[str, FileSpec]] = ()


class StreamedResponse:
    """An open streamed response: headers known, body still on the wire."""

    def __init__(self, response: httpx.Response, meta: ResponseMeta) -> None:
        self._response = response
        self.meta = meta

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers

    async def iter_bytes(self, chunk_size: int = _DOWNLOAD_CHUNK) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.TimeoutException as exc:
            raise TimeoutError(
                f"{self.meta.endpoint}: the response stopped arriving before it was "
                f"complete ({exc})",
                request_id=self.meta.request_id,
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectionFailedError(
                f"{self.meta.endpoint}: the connection dropped mid-response "
                f"({type(exc).__name__}: {exc})",
                request_id=self.meta.request_id,
            ) from exc

    async def iter_lines(self) -> AsyncIterator[str]:
        buffer = ""
        async for chunk in self.iter_bytes():
            buffer += chunk.decode("utf-8")
            *lines, buffer = buffer.split("\n")
            for line in lines:
                yield line
        if buffer:
            yield buffer


class Transport:
    """Sends requests to one API origin with one API key, one pool and one concurrency cap.

    ``sleep`` and ``rng`` are injectable so tests can run the retry schedule on a fake clock.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 240.0,
        retry: RetryPolicy | None = None,
        limiter: ConcurrencyLimiter | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        max_connections: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or ConcurrencyLimiter(None)
        self._logger = logger or log
        self.sleep = sleep
        headers = {"user-agent": f"prefect-elevenlabs/{__version__}"}
        if api_key:
            headers["xi-api-key"] = api_key
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport=http_transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=16),
            follow_redirects=True,
            verify=shared_ssl_context(),
        )

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    @property
    def logger(self) -> logging.Logger | logging.LoggerAdapter[Any]:
        return _call_logger.get() or self._logger

    async def aclose(self) -> None:
        await self._http.aclose()

    # ----------------------------------------------------------------------------------------
    # Public entry points

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: QueryParams | None = None,
        json: Any = None,
        multipart: Multipart | None = None,
        endpoint: str | None = None,
    ) -> tuple[httpx.Response, ResponseMeta]:
        """Sends a request and reads the whole (small: JSON or text) body, with retries."""
        async with self.stream(
            method, path, params=params, json=json, multipart=multipart, endpoint=endpoint
        ) as streamed:
            try:
                await streamed._response.aread()
            except httpx.TransportError as exc:
                raise ConnectionFailedError(
                    f"{streamed.meta.endpoint}: the connection dropped mid-response ({exc})",
                    request_id=streamed.meta.request_id,
                ) from exc
            return streamed._response, streamed.meta

    async def request_json(self, method: str, path: str, **kwargs: Any) -> tuple[Any, ResponseMeta]:
        """Like :meth:`request`, returning the decoded JSON body; retries a body cut short too."""
        return await self.retrying(
            kwargs.get("endpoint") or f"{method} {path}",
            lambda: self._request_json_once(method, path, **kwargs),
        )

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: QueryParams | None = None,
        json: Any = None,
        multipart: Multipart | None = None,
        endpoint: str | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        """Opens a streamed response, retrying until headers arrive with a success status.

        Failures after the body has started are raised as :class:`ConnectionFailedError` and not
        retried here, since the caller may already have consumed part of the body; use
        :meth:`download` for a retried, all-or-nothing transfer.
        """
        name = endpoint or f"{method} {path}"
        await self.limiter.acquire()
        try:
            response, meta = await self._open_with_retries(
                method, path, params=params, json=json, multipart=multipart, endpoint=name
            )
            try:
                yield StreamedResponse(response, meta)
            finally:
                await response.aclose()
        finally:
            self.limiter.release()

    async def download(
        self,
        method: str,
        path: str,
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        params: QueryParams | None = None,
        json: Any = None,
        multipart: Multipart | None = None,
        endpoint: str | None = None,
    ) -> tuple[int, ResponseMeta]:
        """Streams a response body to ``dest`` in chunks; returns (bytes written, meta).

        A path destination is written to a temporary file beside it and renamed on success, so a
        failed or retried download never leaves a partial file. A body cut short is retried as
        a whole under the same policy as any other failure.
        """
        name = endpoint or f"{method} {path}"

        async def attempt() -> tuple[int, ResponseMeta]:
            async with self.stream(
                method, path, params=params, json=json, multipart=multipart, endpoint=name
            ) as streamed:
                try:
                    if isinstance(dest, (str, os.PathLike)):
                        written = await write_atomically(Path(dest), streamed.iter_bytes())
                    else:
                        written = await write_to_handle(dest, streamed.iter_bytes())
                except (ConnectionFailedError, TimeoutError) as error:
                    if not isinstance(dest, (str, os.PathLike)) and not dest.seekable():
                        # Bytes already went where we cannot take them back: no safe retry.
                        raise ConnectionFailedError(
                            f"{name}: the download failed part-way into a non-seekable "
                            f"destination and cannot be retried safely ({error.message})",
                            request_id=error.request_id,
                        ) from error
                    raise BodyInterrupted(error, attempts=streamed.meta.attempts) from error
                return written, streamed.meta

        return await self.retrying(name, attempt)

    # ----------------------------------------------------------------------------------------
    # Retry machinery

    async def _request_json_once(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[Any, ResponseMeta]:
        async with self.stream(method, path, **kwargs) as streamed:
            response = streamed._response
            try:
                await response.aread()
            except httpx.TransportError as exc:
                raise BodyInterrupted(
                    ConnectionFailedError(
                        f"{streamed.meta.endpoint}: the connection dropped mid-response ({exc})",
                        request_id=streamed.meta.request_id,
                    ),
                    attempts=streamed.meta.attempts,
                ) from exc
            if not response.content:
                return None, streamed.meta
            try:
                return response.json(), streamed.meta
            except ValueError as exc:
                raise BodyInterrupted(
                    ConnectionFailedError(
                        f"{streamed.meta.endpoint}: the response was not valid JSON "
                        f"(cut short?): {exc}",
                        request_id=streamed.meta.request_id,
                        status_code=response.status_code,
                    ),
                    attempts=streamed.meta.attempts,
                ) from exc

    async def retrying(self, endpoint: str, attempt_fn: Callable[[], Awaitable[Any]]) -> Any:
        """Re-runs a whole attempt when its body failed mid-transfer.

        Failures before the headers arrive are retried inside :meth:`_open_with_retries` and
        reach this loop as plain errors, which it lets through.
        """
        body_retries = 0
        earlier_attempts = 0
        while True:
            try:
                result = await attempt_fn()
            except BodyInterrupted as interrupted:
                earlier_attempts += interrupted.attempts
                error = interrupted.error
                if body_retries >= self.retry.max_retries:
                    raise error from interrupted.__cause__
                wait = self.retry.delay(body_retries, None)
                self.logger.warning(
                    "%s: %s; retrying the whole transfer in %.2fs (retry %d of %d)",
                    endpoint,
                    error,
                    wait,
                    body_retries + 1,
                    self.retry.max_retries,
                )
                body_retries += 1
                await self.sleep(wait)
            else:
                return _with_earlier_attempts(result, earlier_attempts)

    async def _open_with_retries(
        self,
        method: str,
        path: str,
        *,
        params: QueryParams | None,
        json: Any,
        multipart: Multipart | None,
        endpoint: str,
    ) -> tuple[httpx.Response, ResponseMeta]:
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = await self._send(
                    method, path, params=params, json=json, multipart=multipart
                )
            except ElevenLabsError as error:
                latency = time.monotonic() - started
                if not self._should_retry(error, attempt, endpoint, latency, None):
                    raise
                await self.sleep(self.retry.delay(attempt - 1, None))
                continue
            latency = time.monotonic() - started
            request_id = response.headers.get("request-id")
            if response.is_success:
                self.logger.debug(
                    "%s -> %d in %.3fs (attempt %d, request_id=%s, character_cost=%s)",
                    endpoint,
                    response.status_code,
                    latency,
                    attempt,
                    request_id,
                    response.headers.get("character-cost"),
                )
                return response, ResponseMeta.from_response(
                    endpoint, response, attempts=attempt, latency_s=latency
                )
            try:
                content = await response.aread()
            except httpx.TransportError:
                content = b""
            finally:
                await response.aclose()
            retry_after = parse_retry_after(response.headers)
            failure = error_from_response(
                response.status_code,
                content,
                request_id=request_id,
                retry_after=retry_after,
                endpoint=endpoint,
            )
            if not self._should_retry(failure, attempt, endpoint, latency, request_id):
                raise failure
            await self.sleep(self.retry.delay(attempt - 1, retry_after))

    def _should_retry(
        self,
        error: ElevenLabsError,
        attempt: int,
        endpoint: str,
        latency: float,
        request_id: str | None,
    ) -> bool:
        retry = is_retryable(error) and attempt <= self.retry.max_retries
        level = logging.WARNING if retry else logging.ERROR
        self.logger.log(
            level,
            "%s -> %s in %.3fs (attempt %d of %d, request_id=%s)%s",
            endpoint,
            error.status_code if error.status_code is not None else type(error).__name__,
            latency,
            attempt,
            self.retry.max_retries + 1,
            request_id,
            f": {error.message}; retrying" if retry else f": {error.message}",
        )
        return retry

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: QueryParams | None,
        json: Any,
        multipart: Multipart | None,
    ) -> httpx.Response:
        files_to_close: list[IO[bytes]] = []
        try:
            kwargs: dict[str, Any] = {"params": _clean_params(params)}
            if json is not None:
                kwargs["json"] = json
            if multipart is not None:
                data, files = _build_multipart(multipart, files_to_close)
                kwargs["files"] = files
                if data:
                    kwargs["data"] = data
            request = self._http.build_request(method, path, **kwargs)
            return await self._http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise TimeoutError(
                f"{method} {path}: no response within {self._http.timeout.read}s "
                f"from {self.base_url} ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectionFailedError(
                f"{method} {path}: could not get a response from {self.base_url} "
                f"({type(exc).__name__}: {exc or 'connection closed'})"
            ) from exc
        finally:
            for handle in files_to_close:
                handle.close()


def _clean_params(params: QueryParams | None) -> dict[str, Any] | None:
    """Drops unset values and renders booleans the way the API expects (true/false)."""
    if not params:
        return None
    cleaned: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            cleaned[key] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            cleaned[key] = [("true" if v else "false") if isinstance(v, bool) else v for v in value]
        else:
            cleaned[key] = value
    return cleaned


def _build_multipart(
    multipart: Multipart, opened: list[IO[bytes]]
) -> tuple[dict[str, list[str]] | None, list[tuple[str, Any]]]:
    files: list[tuple[str, Any]] = []
    for name, spec in multipart.files:
        if spec.path is not None:
            handle = spec.path.open("rb")
            opened.append(handle)
            files.append((name, (spec.filename, handle, spec.content_type)))
        else:
            files.append((name, (spec.filename, spec.content or b"", spec.content_type)))
    if files:
        data: dict[str, list[str]] = {}
        for name, value in multipart.fields:
            data.setdefault(name, []).append(value)
        return data, files
    # httpx sends a form without files url-encoded; the API wants multipart, so send each field
    # as a part with neither filename nor content type, which is exactly a plain form field.
    return None, [(name, (None, value.encode(), None)) for name, value in multipart.fields]


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (httpx's defaults) for every client of the process.

    Building one loads the CA bundle, about 27 ms of CPU; Prefect runs each async task of a
    sync flow on a fresh event loop, and each loop needs its own client, so a context per
    client made big batches CPU-bound. SSLContext is safe to share between threads.
    """
    return httpx.create_ssl_context()


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file in this process: 0o666 less the umask.

    ``mkstemp`` creates files readable by their owner only; a download renamed into place must
    not stay that private. The umask is read from /proc where possible, since setting it to read
    it back races with other threads creating files.
    """
    global _file_mode
    if _file_mode is None:
        umask: int | None = None
        with contextlib.suppress(OSError, ValueError):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
        if umask is None:
            umask = os.umask(0o022)
            os.umask(umask)
        _file_mode = 0o666 & ~umask
    return _file_mode


_file_mode: int | None = None


async def write_atomically(dest: Path, chunks: AsyncIterator[bytes]) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    written = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), default_file_mode())
            async for chunk in chunks:
                handle.write(chunk)
                written += len(chunk)
        os.replace(tmp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return written


async def write_to_handle(handle: IO[bytes], chunks: AsyncIterator[bytes]) -> int:
    start = handle.tell() if handle.seekable() else None
    written = 0
    try:
        async for chunk in chunks:
            handle.write(chunk)
            written += len(chunk)
    except ElevenLabsError:
        if start is not None:
            handle.seek(start)
            handle.truncate()
        raise
    return written


class BodyInterrupted(Exception):
    """A failure after the headers arrived: raised inside `retrying`, it redoes the transfer.

    ``attempts`` is how many requests the interrupted transfer took (its ``meta.attempts``), so
    the meta of the transfer that finally succeeds can count them too.
    """

    def __init__(self, error: ElevenLabsError, *, attempts: int = 1) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


def _with_earlier_attempts(result: Any, earlier: int) -> Any:
    """Adds the requests of interrupted transfers to the meta of a ``(value, meta)`` result."""
    if earlier and isinstance(result, tuple) and result and isinstance(result[-1], ResponseMeta):
        meta = result[-1]
        return (*result[:-1], meta.model_copy(update={"attempts": meta.attempts + earlier}))
    return result
