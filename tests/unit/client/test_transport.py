"""The client over its transport: response metadata, secrets, logging and the concurrency cap."""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading

import httpx
import pytest

from prefect_elevenlabs.client import (
    ConcurrencyLimiter,
    ElevenLabsClient,
    ResponseMeta,
    log_calls_to,
)
from prefect_elevenlabs.errors import AuthenticationError

from . import API_KEY, MockApi, audio_response, error_body, json_response, make_client

VOICE = "21m00Tcm4TlvDq8ikWAM"
GENERATION_HEADERS = {
    "request-id": "req_123",
    "character-cost": "42",
    "history-item-id": "hist_9",
    "current-concurrent-requests": "2",
    "maximum-concurrent-requests": "5",
    "song-id": "song_7",
}


def _assert_meta(meta: ResponseMeta | None) -> None:
    assert meta is not None
    assert meta.request_id == "req_123"
    assert meta.character_cost == 42
    assert meta.history_item_id == "hist_9"
    assert meta.current_concurrent_requests == 2
    assert meta.maximum_concurrent_requests == 5
    assert meta.status_code == 200
    assert meta.attempts == 1


async def test_response_meta_from_download_stream_and_json(tmp_path):
    def respond(request: httpx.Request, n: int) -> httpx.Response:
        if request.url.path.endswith("/with-timestamps"):
            return json_response(200, {"audio_base64": ""}, **GENERATION_HEADERS)
        return audio_response(b"audio", **GENERATION_HEADERS)

    client, _, _ = make_client(respond)
    download = await client.text_to_speech.convert(VOICE, text="Hi", dest=tmp_path / "a.mp3")
    _assert_meta(download.meta)
    assert download.character_cost == 42 and download.song_id == "song_7"
    assert download.content_type == "audio/mpeg"
    assert "meta" not in download.model_dump()

    async with client.text_to_speech.stream(VOICE, text="Hi") as audio:
        _assert_meta(audio.meta)
        assert audio.headers["history-item-id"] == "hist_9"

    timed = await client.text_to_speech.convert_with_timestamps(VOICE, text="Hi")
    _assert_meta(timed.meta)
    assert timed.meta is not None and timed.meta.endpoint == (
        "POST /v1/text-to-speech/{voice_id}/with-timestamps"
    )


async def test_the_key_is_sent_as_header_and_shown_nowhere(tmp_path, caplog):
    def respond(request: httpx.Request, n: int) -> httpx.Response:
        if request.url.path == "/v1/user":
            return json_response(401, error_body("invalid_api_key", "Invalid API key"),
                                 **{"request-id": "req_401"})
        if request.url.path == "/v1/models" and n <= 2:
            return json_response(429, error_body("system_busy"), **{"retry-after": "1"})
        if request.url.path == "/v1/models":
            return json_response(200, [{"model_id": "m"}])
        return audio_response(b"audio", **GENERATION_HEADERS)

    client, api, _ = make_client(respond)
    with caplog.at_level(logging.DEBUG):
        await client.text_to_speech.convert(VOICE, text="Hi", dest=tmp_path / "a.mp3")
        await client.models.list()
        with pytest.raises(AuthenticationError) as info:
            await client.user.get()
        async with client.text_to_speech.stream(VOICE, text="Hi") as stream:
            shown = [repr(stream), repr(stream.meta)]

    assert all(r.headers["xi-api-key"] == API_KEY for r in api.requests)
    error = info.value
    assert error.request_id == "req_401" and error.status == "invalid_api_key"
    texts = [
        repr(client), str(client), repr(client.transport), repr(client.text_to_speech),
        repr(client.voices), repr(client._api_key), str(error), repr(error), repr(error.body),
        repr(error.args), *shown, caplog.text,
        *(repr(record.args) for record in caplog.records),
    ]
    assert all(API_KEY not in text for text in texts)
    # The log lines are there, with what operators need.
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("prefect_elevenlabs")]
    assert any("req_123" in m and "200" in m for m in messages)
    assert any("429" in m and "retrying" in m for m in messages)
    assert any("401" in m and "req_401" in m for m in messages)


def test_key_holder_refuses_to_be_pickled():
    client = ElevenLabsClient(API_KEY, base_url="https://api.test")
    with pytest.raises(TypeError):
        pickle.dumps(client._api_key)


async def test_key_falls_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("ELEVENLABS_API_KEY", "sk_from_env")
    api = MockApi(lambda r, n: json_response(200, {"tier": "free"}))
    async with ElevenLabsClient(http_transport=httpx.MockTransport(api)) as client:
        await client.user.get_subscription()
    assert api.last.headers["xi-api-key"] == "sk_from_env"
    assert str(api.last.url).startswith("https://api.elevenlabs.io/v1/")
    monkeypatch.delenv("ELEVENLABS_API_KEY")
    api = MockApi(lambda r, n: json_response(200, {"tier": "free"}))
    transport = httpx.MockTransport(api)
    async with ElevenLabsClient(base_url="http://127.0.0.1:1", http_transport=transport) as client:
        await client.user.get_subscription()
    assert "xi-api-key" not in api.last.headers


async def test_log_calls_to_routes_call_logs(caplog):
    client, _, _ = make_client(lambda r, n: json_response(200, {"tier": "free"}))
    target = logging.getLogger("flow-run-logger-under-test")
    with caplog.at_level(logging.DEBUG), log_calls_to(target):
        await client.user.get_subscription()
    assert any(r.name == "flow-run-logger-under-test" for r in caplog.records)


async def test_context_manager_closes_unless_shared():
    client, _, _ = make_client(lambda r, n: json_response(200, {"tier": "free"}))
    async with client:
        await client.user.get_subscription()
    with pytest.raises(RuntimeError, match="closed"):
        await client.user.get_subscription()

    shared, _, _ = make_client(lambda r, n: json_response(200, {"tier": "free"}))
    shared._shared = True
    async with shared:
        pass
    assert (await shared.user.get_subscription()).tier == "free"
    await shared.aclose()


# ---------------------------------------------------------------------------------------------
# Concurrency cap


class InFlight:
    """Counts requests inside the mock handler, across threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.total = 0

    async def respond(self, request: httpx.Request, n: int) -> httpx.Response:
        with self.lock:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)
        try:
            # Hold the slot across a few loop turns so other calls try to get in meanwhile.
            for _ in range(5):
                await asyncio.sleep(0.002)
        finally:
            with self.lock:
                self.now -= 1
        return audio_response(b"chunk" * 10)


async def test_twenty_calls_never_exceed_the_cap(tmp_path):
    counter = InFlight()
    client, _, _ = make_client(counter.respond, max_concurrency=3)
    assert client.transport.limiter.limit == 3

    async def one(i: int) -> None:
        if i % 2:
            await client.text_to_speech.convert(VOICE, text=f"n{i}", dest=tmp_path / f"{i}.mp3")
        else:
            async for _ in client.text_to_speech.stream(VOICE, text=f"n{i}"):
                pass

    await asyncio.gather(*(one(i) for i in range(20)))
    assert counter.total == 20
    assert counter.peak == 3
    assert client.transport.limiter.in_use == 0


def test_cap_holds_across_threads_with_their_own_event_loops(tmp_path):
    counter = InFlight()
    limiter = ConcurrencyLimiter(3)
    errors: list[BaseException] = []

    def worker(thread_index: int) -> None:
        async def run() -> None:
            client, _, _ = make_client(counter.respond, limiter=limiter)
            async with client:
                await asyncio.gather(
                    *(client.text_to_speech.convert(
                        VOICE, text="x", dest=tmp_path / f"{thread_index}-{i}.mp3"
                    ) for i in range(5))
                )

        try:
            asyncio.run(run())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert counter.total == 20
    assert 1 <= counter.peak <= 3
    assert limiter.in_use == 0


def test_repr_shows_settings_but_not_the_key():
    client = ElevenLabsClient(API_KEY, base_url="https://api.test/", max_concurrency=4,
                              max_retries=2)
    text = repr(client)
    assert "https://api.test" in text and "max_concurrency=4" in text and "max_retries=2" in text
    assert API_KEY not in text
