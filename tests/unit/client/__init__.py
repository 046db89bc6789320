"""Shared helpers for the client tests: a recording mock API, a fake clock, a multipart reader."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from prefect_elevenlabs.client import ElevenLabsClient, RetryPolicy

API_KEY = "sk_test_7c1e0f9a4b2d"
BASE_URL = "https://api.test"

Handler = Callable[[httpx.Request, int], httpx.Response | Awaitable[httpx.Response]]


class FakeSleep:
    """Records every wait the client asks for instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class MockApi:
    """An ``httpx.MockTransport`` handler that records requests and answers via ``respond``.

    ``respond(request, attempt)`` gets the 1-based number of the request.
    """

    respond: Handler
    requests: list[httpx.Request] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self.respond(request, len(self.requests))
        if isinstance(result, httpx.Response):
            return result
        return await result

    @property
    def attempts(self) -> int:
        return len(self.requests)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def make_client(
    respond: Handler | MockApi,
    *,
    max_retries: int = 4,
    sleep: FakeSleep | None = None,
    base_url: str = BASE_URL,
    **kwargs: Any,
) -> tuple[ElevenLabsClient, MockApi, FakeSleep]:
    api = respond if isinstance(respond, MockApi) else MockApi(respond)
    fake_sleep = sleep or FakeSleep()
    kwargs.setdefault(
        "retry_policy", RetryPolicy(max_retries=max_retries, rng=random.Random(1234))
    )
    client = ElevenLabsClient(
        API_KEY,
        base_url=base_url,
        http_transport=httpx.MockTransport(api),
        sleep=fake_sleep,
        **kwargs,
    )
    return client, api, fake_sleep


def error_body(status: str, message: str = "failed", **extra: Any) -> dict[str, Any]:
    return {"detail": {"status": status, "code": status, "message": message, **extra}}


def json_response(status_code: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status_code, json=body, headers=headers)


def audio_response(content: bytes = b"ID3-audio-bytes", **headers: str) -> httpx.Response:
    headers.setdefault("content-type", "audio/mpeg")
    return httpx.Response(200, content=content, headers=headers)


class BrokenStream(httpx.AsyncByteStream):
    """A body that sends ``prefix`` and then drops the connection."""

    def __init__(self, prefix: bytes, error: type[Exception] = httpx.RemoteProtocolError) -> None:
        self.prefix = prefix
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.prefix
        raise self.error("peer closed connection without sending complete message body")


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()


def parse_multipart(request: httpx.Request) -> list[Part]:
    """The parts of a multipart/form-data request, in order."""
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data"), content_type
    boundary = content_type.split("boundary=", 1)[1].encode()
    body = request.content
    parts: list[Part] = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk[2:].partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers["content-disposition"]
        params = dict(
            item.strip().split("=", 1) for item in disposition.split(";")[1:] if "=" in item
        )
        parts.append(
            Part(
                name=params["name"].strip('"'),
                filename=params["filename"].strip('"') if "filename" in params else None,
                content_type=headers.get("content-type"),
                data=data[:-2],  # the CRLF before the next delimiter
            )
        )
    return parts


def form(request: httpx.Request) -> dict[str, list[str]]:
    """Text fields of a multipart request: name -> every value sent under it."""
    fields: dict[str, list[str]] = {}
    for part in parse_multipart(request):
        if part.filename is None:
            fields.setdefault(part.name, []).append(part.text)
    return fields


def normalised_body(request: httpx.Request) -> bytes:
    """A multipart body with its random boundary replaced, so two attempts compare equal."""
    boundary = request.headers["content-type"].split("boundary=", 1)[1].encode()
    return request.content.replace(boundary, b"BOUNDARY")


def json_body(request: httpx.Request) -> Any:
    assert request.headers["content-type"] == "application/json"
    return json.loads(request.content)
