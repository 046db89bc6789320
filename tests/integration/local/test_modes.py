"""Test modes: injected faults, per-key quota, concurrency cap, delays and the stats routes."""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from elevenlabs.core.api_error import ApiError

from prefect_elevenlabs.local.server import EngineHandle

from .conftest import ERIC, FAST_TTS, FAST_VOICE_ID, async_sdk_for, read_audio, rms, sdk_for

pytestmark = pytest.mark.engine

_TTS_PATH = f"/v1/text-to-speech/{FAST_VOICE_ID}"
_BODY = {k: v for k, v in FAST_TTS.items() if k != "output_format"}
_QUERY = {"output_format": FAST_TTS["output_format"]}


def _outcome(http: httpx.Client) -> tuple[str, httpx.Response | None]:
    """Send one generation request and classify what came back."""
    try:
        with http.stream("POST", _TTS_PATH, json=_BODY, params=_QUERY) as response:
            try:
                response.read()
            except httpx.RemoteProtocolError:
                return "truncate", response
            return str(response.status_code), response
    except httpx.RemoteProtocolError:
        return "drop", None


def _fresh_connections(handle: EngineHandle) -> httpx.Client:
    # One connection per request: a dropped connection can never be mistaken for a reused one.
    return httpx.Client(
        base_url=handle.base_url,
        limits=httpx.Limits(max_keepalive_connections=0),
        timeout=30,
    )


def _stats(handle: EngineHandle, api_key: str = "local") -> dict:
    response = httpx.get(f"{handle.base_url}/local/stats", headers={"xi-api-key": api_key})
    response.raise_for_status()
    return dict(response.json())


def _within_binomial(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= spread


RATES = {"429": 0.25, "500": 0.1, "503": 0.1, "drop": 0.05, "truncate": 0.05}


@pytest.fixture(scope="module")
def faulty(make_engine: Callable[..., EngineHandle]) -> EngineHandle:
    return make_engine(
        fault_rate_429=RATES["429"],
        fault_rate_500=RATES["500"],
        fault_rate_503=RATES["503"],
        fault_rate_drop=RATES["drop"],
        fault_rate_truncate=RATES["truncate"],
        fault_retry_after=3,
        fault_seed=1234,
    )


def test_faults_arrive_at_the_configured_rates(faulty: EngineHandle) -> None:
    n = 200
    outcomes: list[str] = []
    with _fresh_connections(faulty) as http:
        for _ in range(n):
            kind, response = _outcome(http)
            outcomes.append(kind)
            if response is None or kind == "truncate":
                continue
            if kind == "200":
                continue
            detail = response.json()["detail"]
            assert detail["request_id"] == response.headers["request-id"]
            if kind == "429":
                assert detail["status"] == "system_busy"
                assert response.headers["retry-after"] == "3"
                assert response.headers["retry-after-ms"] == "3000"
            elif kind == "503":
                assert detail["status"] == "service_unavailable"
                assert response.headers["retry-after"] == "3"
            else:
                assert kind == "500", kind
                assert detail["status"] == "internal_server_error"
    counts = Counter(outcomes)
    assert set(counts) <= {"200", *RATES}
    for kind, rate in RATES.items():
        assert _within_binomial(counts[kind], n, rate), (kind, counts)
    assert _within_binomial(counts["200"], n, 1 - sum(RATES.values())), counts

    stats = _stats(faulty)
    assert stats["requests"] == n
    assert stats["faults"] == {kind: counts[kind] for kind in RATES}
    assert stats["completed"] == counts["200"]
    assert stats["characters_billed"] == counts["200"] * len(FAST_TTS["text"])

    # The seed makes the sequence repeatable: after a reset the same outcomes come back.
    httpx.post(f"{faulty.base_url}/local/stats/reset")
    with _fresh_connections(faulty) as http:
        again = [_outcome(http)[0] for _ in range(40)]
    assert again == outcomes[:40]
    assert _stats(faulty)["requests"] == 40


def test_system_busy_is_retried_by_the_sdk_after_retry_after(make_engine) -> None:
    busy = make_engine(fault_rate_429=1.0, fault_retry_after=1)
    client = sdk_for(busy)
    with pytest.raises(ApiError) as caught:
        client.text_to_speech.convert_with_timestamps(
            FAST_VOICE_ID, **FAST_TTS, request_options={"max_retries": 1}
        )
    assert caught.value.status_code == 429
    assert caught.value.body["detail"]["status"] == "system_busy"
    # Buffered calls are retried by the SDK: two attempts reached the engine.
    assert _stats(busy)["faults"]["429"] == 2


def test_dropped_connection_sends_nothing(make_engine) -> None:
    dropping = make_engine(fault_rate_drop=1.0)
    host, port = dropping.base_url.removeprefix("http://").split(":")
    body = b'{"text": "Hi there."}'
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {_TTS_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received == b""
    with pytest.raises(httpx.RemoteProtocolError):
        b"".join(sdk_for(dropping).text_to_speech.convert(FAST_VOICE_ID, **FAST_TTS))
    assert httpx.get(f"{dropping.base_url}/health").status_code == 200
    assert _stats(dropping)["faults"]["drop"] == 2


def test_truncated_body_stops_short_of_its_content_length(make_engine) -> None:
    truncating = make_engine(fault_rate_truncate=1.0)
    received = b""
    with (
        httpx.Client(base_url=truncating.base_url) as http,
        http.stream("POST", _TTS_PATH, json=_BODY, params=_QUERY) as response,
    ):
        assert response.status_code == 200
        declared = int(response.headers["content-length"])
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                received += chunk
    assert 0 < len(received) < declared
    # A truncated generation was not delivered, so it is not billed.
    assert sdk_for(truncating).user.subscription.get().character_count == 0
    assert _stats(truncating)["faults"]["truncate"] == 1


def test_quota_is_per_key_and_checked_before_generating(make_engine) -> None:
    limited = make_engine(api_keys=["alice", "bob"], character_quota=30)
    alice, bob = sdk_for(limited, api_key="alice"), sdk_for(limited, api_key="bob")
    twenty = "Hello there, friend."
    assert len(twenty) == 20
    fast = {**FAST_TTS, "text": twenty}

    audio = b"".join(alice.text_to_speech.convert(FAST_VOICE_ID, **fast))
    assert rms(read_audio(audio, "pcm_16000").samples) > 0.01
    with pytest.raises(ApiError) as caught:
        b"".join(alice.text_to_speech.convert(FAST_VOICE_ID, **fast))
    assert caught.value.status_code == 401
    detail = caught.value.body["detail"]
    assert detail["status"] == "quota_exceeded"
    assert "exceeds your quota of 30" in detail["message"]
    assert "10 credits remaining" in detail["message"]

    # Failed requests cost nothing; a small request still fits.
    with pytest.raises(ApiError):
        b"".join(alice.text_to_speech.convert("noSuchVoice", **fast))
    b"".join(alice.text_to_speech.convert(FAST_VOICE_ID, **{**FAST_TTS, "text": "Hi."}))
    subscription = alice.user.subscription.get()
    assert (subscription.character_count, subscription.character_limit) == (23, 30)

    # Bob has his own allowance.
    b"".join(bob.text_to_speech.convert(FAST_VOICE_ID, **fast))
    assert bob.user.subscription.get().character_count == 20
    assert _stats(limited, api_key="alice")["rejected"]["quota_exceeded"] == 1


async def test_quota_reserves_characters_of_requests_in_flight(make_engine) -> None:
    limited = make_engine(character_quota=25, latency_ms=400)
    client = async_sdk_for(limited)
    fast = {**FAST_TTS, "text": "Hi, friend"}  # 10 characters: only two fit in 25

    async def one() -> str:
        try:
            chunks = [chunk async for chunk in client.text_to_speech.convert(FAST_VOICE_ID, **fast)]
        except ApiError as error:
            return error.body["detail"]["status"]
        return "ok" if b"".join(chunks) else "empty"

    results = Counter(await asyncio.gather(*(one() for _ in range(3))))
    assert results == {"ok": 2, "quota_exceeded": 1}


async def test_concurrency_cap_answers_429_and_is_never_exceeded(make_engine) -> None:
    capped = make_engine(max_concurrency=2, latency_ms=1000, ttfb_ms=50)
    client = async_sdk_for(capped)

    async def one() -> tuple[int, dict[str, str], dict | None]:
        try:
            async with client.text_to_speech.with_raw_response.convert(
                FAST_VOICE_ID, **FAST_TTS
            ) as response:
                audio = b"".join([chunk async for chunk in response.data])
                assert read_audio(audio, "pcm_16000").duration > 0.2
                return 200, dict(response.headers), None
        except ApiError as error:
            return error.status_code or 0, dict(error.headers or {}), error.body

    results = await asyncio.gather(*(one() for _ in range(6)))
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert len(ok) + len(refused) == 6
    assert len(ok) >= 2
    assert refused, "six simultaneous requests against a cap of two must see a 429"
    for _, headers, body in refused:
        assert body is not None
        assert body["detail"]["status"] == "too_many_concurrent_requests"
        assert headers["maximum-concurrent-requests"] == "2"
        assert headers["current-concurrent-requests"] == "2"
    for _, headers, _ in ok:
        assert headers["maximum-concurrent-requests"] == "2"
        assert int(headers["current-concurrent-requests"]) <= 2
    stats = _stats(capped)
    assert stats["peak_concurrency"] == 2
    assert stats["rejected"]["too_many_concurrent_requests"] == len(refused)
    assert stats["in_flight"] == 0


def test_stats_reset_can_also_forget_usage(make_engine) -> None:
    handle = make_engine()
    client = sdk_for(handle)
    b"".join(client.text_to_speech.convert(FAST_VOICE_ID, **FAST_TTS))
    assert _stats(handle)["characters_billed"] == len(FAST_TTS["text"])
    reset = httpx.post(f"{handle.base_url}/local/stats/reset").json()
    assert reset["requests"] == reset["characters_billed"] == 0
    assert client.user.subscription.get().character_count == len(FAST_TTS["text"])
    httpx.post(f"{handle.base_url}/local/stats/reset", params={"include_usage": "true"})
    assert client.user.subscription.get().character_count == 0


def test_a_client_leaving_mid_stream_frees_its_slot_unbilled(make_engine) -> None:
    handle = make_engine(max_concurrency=1)
    text = " ".join(f"This is sentence number {n} of a long reading." for n in range(12))
    with (
        httpx.Client(base_url=handle.base_url) as http,
        http.stream(
            "POST",
            f"/v1/text-to-speech/{ERIC}/stream",
            json={"text": text},
            params={"output_format": "pcm_16000"},
        ) as response,
    ):
        assert response.status_code == 200
        first = next(response.iter_raw())
        assert first
    # The engine notices the disconnect between sentences; wait for it (bounded).
    deadline = time.monotonic() + 60
    while _stats(handle)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = _stats(handle)
    assert stats["in_flight"] == 0
    assert stats["completed"] == 0
    assert stats["characters_billed"] == 0
    # The slot is free again.
    assert b"".join(sdk_for(handle).text_to_speech.convert(FAST_VOICE_ID, **FAST_TTS))
