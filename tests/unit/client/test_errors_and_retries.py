"""Every error class and flow-control path, with attempt counts and the waits asked for."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefect_elevenlabs.client import ElevenLabsClient, RetryPolicy
from prefect_elevenlabs.errors import (
    AuthenticationError,
    ConnectionFailedError,
    InvalidRequestError,
    NotFoundError,
    NotReadyError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)

from . import (
    BrokenStream,
    audio_response,
    error_body,
    form,
    json_response,
    make_client,
    normalised_body,
    parse_multipart,
)

VOICE = "21m00Tcm4TlvDq8ikWAM"
AUDIO = bytes(range(256)) * 64


def fail_then(
    failures: list[httpx.Response | Exception], success: Callable[[httpx.Request], httpx.Response]
) -> Callable[[httpx.Request, int], httpx.Response]:
    """Answers the first requests with ``failures`` (raising exceptions), then ``success``."""

    def respond(request: httpx.Request, attempt: int) -> httpx.Response:
        if attempt <= len(failures):
            failure = failures[attempt - 1]
            if isinstance(failure, Exception):
                raise failure
            return failure
        return success(request)

    return respond


def subscription(_: httpx.Request) -> httpx.Response:
    return json_response(200, {"tier": "pro", "character_count": 1, "character_limit": 10})


async def get_subscription(client: ElevenLabsClient) -> Any:
    return await client.user.get_subscription()


# ---------------------------------------------------------------------------------------------
# Flow control: 429


async def test_429_with_retry_after_waits_exactly_that_long():
    client, api, sleep = make_client(
        fail_then(
            [json_response(429, error_body("concurrent_limit_exceeded"), **{"retry-after": "3"})],
            subscription,
        )
    )
    result = await get_subscription(client)
    assert result.tier == "pro"
    assert api.attempts == 2
    assert sleep.waits == [3.0]
    assert result.meta.attempts == 2


async def test_429_without_retry_after_backs_off_exponentially_with_bounded_jitter():
    policy = RetryPolicy(max_retries=4, initial_backoff=0.5, max_backoff=3.0, jitter=0.25,
                         rng=random.Random(7))
    client, api, sleep = make_client(
        fail_then([json_response(429, error_body("rate_limit_exceeded"))] * 4, subscription),
        retry_policy=policy,
    )
    await get_subscription(client)
    assert api.attempts == 5
    assert len(sleep.waits) == 4
    for n, wait in enumerate(sleep.waits):
        base = min(0.5 * 2**n, 3.0)
        assert base * 0.75 <= wait <= base * 1.25
    assert max(sleep.waits) <= 3.0 * 1.25  # capped
    assert len(set(sleep.waits)) == 4  # jittered, not one fixed value


@pytest.mark.parametrize(
    "status", ["too_many_concurrent_requests", "concurrent_limit_exceeded", "system_busy"]
)
async def test_concurrency_and_busy_429s_are_retried(status):
    client, api, sleep = make_client(
        fail_then([json_response(429, error_body(status))] * 2, subscription)
    )
    await get_subscription(client)
    assert api.attempts == 3
    assert len(sleep.waits) == 2


async def test_retry_after_as_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    client, api, sleep = make_client(
        fail_then([json_response(429, error_body("system_busy"), **{"retry-after": when})],
                  subscription)
    )
    await get_subscription(client)
    assert api.attempts == 2
    assert 25.0 <= sleep.waits[0] <= 31.0


async def test_retry_after_is_capped():
    policy = RetryPolicy(max_retries=1, max_retry_after=10.0)
    client, _, sleep = make_client(
        fail_then([json_response(429, error_body("system_busy"), **{"retry-after": "3600"})],
                  subscription),
        retry_policy=policy,
    )
    await get_subscription(client)
    assert sleep.waits == [10.0]


@pytest.mark.parametrize("http_status", [401, 429])
async def test_quota_exceeded_fails_at_once_whatever_the_http_status(http_status):
    client, api, sleep = make_client(
        lambda r, n: json_response(
            http_status, error_body("quota_exceeded", "This request exceeds your quota of 10000."),
            **{"request-id": "req_q"},
        )
    )
    with pytest.raises(QuotaExceededError) as info:
        await client.text_to_speech.convert_with_timestamps(VOICE, text="Hello")
    assert api.attempts == 1
    assert sleep.waits == []
    assert info.value.status == "quota_exceeded"
    assert info.value.status_code == http_status
    assert info.value.request_id == "req_q"


async def test_rate_limit_retries_exhausted_raise_with_request_id():
    client, api, sleep = make_client(
        lambda r, n: json_response(
            429, error_body("system_busy", "busy"), **{"request-id": f"req_{n}", "retry-after": "1"}
        ),
        max_retries=2,
    )
    with pytest.raises(RateLimitError) as info:
        await get_subscription(client)
    assert api.attempts == 3
    assert sleep.waits == [1.0, 1.0]
    assert info.value.request_id == "req_3"
    assert info.value.retry_after == 1.0


# ---------------------------------------------------------------------------------------------
# Server faults and dropped connections


@pytest.mark.parametrize("code", [500, 502, 503])
async def test_server_errors_are_retried_then_succeed(code):
    client, api, sleep = make_client(
        fail_then([httpx.Response(code, text="upstream trouble")] * 2, subscription)
    )
    result = await get_subscription(client)
    assert result.character_limit == 10
    assert api.attempts == 3
    assert len(sleep.waits) == 2


async def test_server_errors_exhausted_raise_server_error_with_request_id():
    client, api, _ = make_client(
        lambda r, n: json_response(503, error_body("service_unavailable", "down"),
                                   **{"request-id": "req_503"}),
        max_retries=3,
    )
    with pytest.raises(ServerError) as info:
        await get_subscription(client)
    assert api.attempts == 4
    assert info.value.request_id == "req_503"
    assert info.value.status_code == 503


@pytest.mark.parametrize(
    "exc",
    [httpx.RemoteProtocolError("Server disconnected without sending a response."),
     httpx.ConnectError("Connection refused"),
     httpx.ReadTimeout("timed out")],
)
async def test_dropped_connections_are_retried(exc):
    client, api, sleep = make_client(fail_then([exc, exc], subscription))
    await get_subscription(client)
    assert api.attempts == 3
    assert len(sleep.waits) == 2


async def test_dropped_connections_exhausted_raise_connection_failed():
    def respond(request: httpx.Request, n: int) -> httpx.Response:
        raise httpx.ConnectError("Connection refused")

    client, api, _ = make_client(respond, max_retries=2)
    with pytest.raises(ConnectionFailedError, match="Connection refused"):
        await get_subscription(client)
    assert api.attempts == 3


async def test_download_cut_short_is_retried_whole_and_atomic(tmp_path):
    def respond(request: httpx.Request, n: int) -> httpx.Response:
        if n == 1:
            return httpx.Response(200, stream=BrokenStream(AUDIO[:1000]),
                                  headers={"content-type": "audio/mpeg"})
        return audio_response(AUDIO, **{"request-id": "req_full"})

    client, api, sleep = make_client(respond)
    dest = tmp_path / "speech.mp3"
    result = await client.text_to_speech.convert(VOICE, text="Hello", dest=dest)
    assert api.attempts == 2
    assert len(sleep.waits) == 1
    assert dest.read_bytes() == AUDIO
    assert result.bytes_written == len(AUDIO)
    assert result.request_id == "req_full"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.mp3"]  # no .part left


async def test_download_that_never_completes_leaves_no_file(tmp_path):
    client, api, _ = make_client(
        lambda r, n: httpx.Response(200, stream=BrokenStream(AUDIO[:500])), max_retries=2
    )
    with pytest.raises(ConnectionFailedError):
        await client.history.get_audio("h1", tmp_path / "h1.mp3")
    assert api.attempts == 3
    assert list(tmp_path.iterdir()) == []


async def test_stream_cut_short_raises_instead_of_ending_quietly():
    client, _, _ = make_client(lambda r, n: httpx.Response(200, stream=BrokenStream(b"abc")))
    received = []
    with pytest.raises(ConnectionFailedError, match="dropped"):
        async for chunk in client.text_to_speech.stream(VOICE, text="Hi"):
            received.append(chunk)
    assert received == []  # the partial chunk is still buffered when the link drops


async def test_truncated_json_body_is_retried():
    client, api, _ = make_client(
        fail_then([httpx.Response(200, content=b'{"tier": "pro", "charac')], subscription)
    )
    result = await get_subscription(client)
    assert result.tier == "pro" and api.attempts == 2


# ---------------------------------------------------------------------------------------------
# Failures that are never retried


async def test_422_validation_body_names_the_param():
    body = {"detail": [{"loc": ["body", "text"], "msg": "Field required", "type": "missing"}]}
    client, api, sleep = make_client(lambda r, n: json_response(422, body))
    with pytest.raises(InvalidRequestError) as info:
        await client.text_to_speech.convert_with_timestamps(VOICE, text="Hi")
    assert info.value.param == "text"
    assert info.value.status_code == 422
    assert "Field required" in str(info.value)
    assert api.attempts == 1 and sleep.waits == []


async def test_invalid_parameters_dict_body_carries_param():
    body = error_body("invalid_parameters", "keyterms need scribe_v2", param="keyterms",
                      request_id="req_body")
    client, api, _ = make_client(lambda r, n: json_response(400, body))
    with pytest.raises(InvalidRequestError) as info:
        await client.speech_to_text.convert(b"audio", keyterms=["x"])
    assert info.value.param == "keyterms" and api.attempts == 1


async def test_404_voice_not_found(tmp_path):
    client, api, sleep = make_client(
        lambda r, n: json_response(
            404, error_body("voice_not_found", "A voice with the voice_id nope was not found.")
        )
    )
    with pytest.raises(NotFoundError) as info:
        await client.text_to_speech.convert("nope", text="Hi", dest=tmp_path / "x.mp3")
    assert info.value.status == "voice_not_found"
    assert api.attempts == 1 and sleep.waits == []
    assert not (tmp_path / "x.mp3").exists()


async def test_425_not_ready(tmp_path):
    client, api, sleep = make_client(
        lambda r, n: json_response(425, error_body("dubbing_not_ready", "still dubbing"))
    )
    with pytest.raises(NotReadyError):
        await client.dubbing.get_audio("dub_1", "es", tmp_path / "es.mp4")
    assert api.attempts == 1 and sleep.waits == []
    with pytest.raises(NotReadyError):
        await client.dubbing.get_transcript("dub_1", "es")
    assert api.attempts == 2


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (400, "max_character_limit_exceeded", InvalidRequestError),
        (401, "invalid_api_key", AuthenticationError),
        (401, "missing_permissions", AuthenticationError),
        (403, "only_for_creator+", PermissionDeniedError),
        (409, "conflict", InvalidRequestError),
    ],
)
async def test_client_errors_are_never_retried(code, status, error):
    client, api, sleep = make_client(lambda r, n: json_response(code, error_body(status)))
    with pytest.raises(error) as info:
        await get_subscription(client)
    assert api.attempts == 1
    assert sleep.waits == []
    assert info.value.status == status


# ---------------------------------------------------------------------------------------------
# Every audio endpoint retries


AudioCall = Callable[[ElevenLabsClient, Path], Awaitable[bytes]]


async def _drain(stream: Any) -> bytes:
    return b"".join([chunk async for chunk in stream])


def _file(result: Any, path: Path) -> bytes:
    assert result.bytes_written == len(AUDIO)
    return path.read_bytes()


AUDIO_CALLS: dict[str, Callable[[ElevenLabsClient, Path], Awaitable[bytes]]] = {}


def audio_call(name: str):
    def register(fn):
        AUDIO_CALLS[name] = fn
        return fn

    return register


@audio_call("tts convert")
async def _tts_convert(c: ElevenLabsClient, d: Path) -> bytes:
    return _file(await c.text_to_speech.convert(VOICE, text="Hi", dest=d / "a"), d / "a")


@audio_call("tts stream")
async def _tts_stream(c: ElevenLabsClient, d: Path) -> bytes:
    return await _drain(c.text_to_speech.stream(VOICE, text="Hi"))


@audio_call("tts iter_convert")
async def _tts_iter(c: ElevenLabsClient, d: Path) -> bytes:
    return await _drain(c.text_to_speech.iter_convert(VOICE, text="Hi"))


@audio_call("sound effects")
async def _sfx(c: ElevenLabsClient, d: Path) -> bytes:
    return _file(await c.text_to_sound_effects.convert("boom", dest=d / "a"), d / "a")


@audio_call("music compose")
async def _music(c: ElevenLabsClient, d: Path) -> bytes:
    return _file(await c.music.compose(prompt="song", dest=d / "a"), d / "a")


@audio_call("music stream")
async def _music_stream(c: ElevenLabsClient, d: Path) -> bytes:
    return await _drain(c.music.stream(prompt="song"))


@audio_call("speech to speech")
async def _sts(c: ElevenLabsClient, d: Path) -> bytes:
    return _file(await c.speech_to_speech.convert(VOICE, audio=b"in", dest=d / "a"), d / "a")


@audio_call("speech to speech stream")
async def _sts_stream(c: ElevenLabsClient, d: Path) -> bytes:
    return await _drain(c.speech_to_speech.stream(VOICE, audio=b"in"))


@audio_call("audio isolation")
async def _iso(c: ElevenLabsClient, d: Path) -> bytes:
    return _file(await c.audio_isolation.convert(audio=b"in", dest=d / "a"), d / "a")


@audio_call("audio isolation stream")
async def _iso_stream(c: ElevenLabsClient, d: Path) -> bytes:
    return await _drain(c.audio_isolation.stream(audio=b"in"))


@audio_call("dubbing audio")
async def _dub(c: ElevenLabsClient, d: Path) -> bytes:
    return _file(await c.dubbing.get_audio("dub", "es", d / "a"), d / "a")


@audio_call("history audio")
async def _history(c: ElevenLabsClient, d: Path) -> bytes:
    return _file(await c.history.get_audio("h1", d / "a"), d / "a")


@audio_call("conversation audio")
async def _conversation(c: ElevenLabsClient, d: Path) -> bytes:
    return _file(await c.conversations.get_audio("c1", d / "a"), d / "a")


@audio_call("voice preview")
async def _preview(c: ElevenLabsClient, d: Path) -> bytes:
    return await _drain(c.text_to_voice.stream("gen1"))


@pytest.mark.parametrize("name", sorted(AUDIO_CALLS))
async def test_every_audio_endpoint_retries_a_503(name, tmp_path):
    client, api, sleep = make_client(
        fail_then([json_response(503, error_body("server_error"))], lambda r: audio_response(AUDIO))
    )
    received = await AUDIO_CALLS[name](client, tmp_path)
    assert received == AUDIO
    assert api.attempts == 2
    assert len(sleep.waits) == 1
    assert api.requests[0].url == api.requests[1].url


# ---------------------------------------------------------------------------------------------
# Retried multipart uploads re-send everything


UploadCall = Callable[[ElevenLabsClient, Path], Awaitable[Any]]


async def _stt_upload(c: ElevenLabsClient, f: Path) -> Any:
    return await c.speech_to_text.convert(
        f, model_id="scribe_v2", diarize=True, keyterms=["alpha", "beta"],
        additional_formats=[{"format": "srt"}],
    )


async def _clone_upload(c: ElevenLabsClient, f: Path) -> Any:
    return await c.voices.add("Clone", [f, f], description="d", labels={"accent": "irish"})


async def _dubbing_upload(c: ElevenLabsClient, f: Path) -> Any:
    return await c.dubbing.create(f, target_lang="es", source_lang="en", num_speakers=2)


async def _alignment_upload(c: ElevenLabsClient, f: Path) -> Any:
    return await c.forced_alignment.create(f, "the quick brown fox")


UPLOADS: dict[str, tuple[UploadCall, dict[str, Any], set[str]]] = {
    "speech to text": (_stt_upload, {"text": "ok"}, {"model_id", "diarize", "keyterms"}),
    "voice clone": (_clone_upload, {"voice_id": "v"}, {"name", "description", "labels"}),
    "dubbing": (_dubbing_upload, {"dubbing_id": "d"}, {"target_lang", "source_lang",
                                                        "num_speakers"}),
    "forced alignment": (_alignment_upload, {"words": []}, {"text"}),
}


@pytest.mark.parametrize("name", sorted(UPLOADS))
async def test_retried_multipart_upload_resends_every_field_and_the_whole_file(name, tmp_path):
    call, answer, expected_fields = UPLOADS[name]
    upload = tmp_path / "input.wav"
    upload.write_bytes(b"RIFF" + bytes(range(256)) * 400)  # ~100 KB, several read chunks
    client, api, _ = make_client(
        fail_then([json_response(503, error_body("server_error"))],
                  lambda r: json_response(200, answer))
    )
    await call(client, upload)
    assert api.attempts == 2
    first, second = api.requests
    assert normalised_body(first) == normalised_body(second)
    assert expected_fields <= set(form(second))
    file_parts = [p for p in parse_multipart(second) if p.filename]
    assert file_parts and all(p.data == upload.read_bytes() for p in file_parts)


async def test_url_only_transcription_retry_keeps_its_fields():
    client, api, _ = make_client(
        fail_then([httpx.ConnectError("refused")], lambda r: json_response(200, {"text": "x"}))
    )
    await client.speech_to_text.convert(
        source_url="https://example.com/a.mp3", model_id="scribe_v2"
    )
    assert api.attempts == 2
    assert normalised_body(api.requests[0]) == normalised_body(api.requests[1])
    assert form(api.last)["source_url"] == ["https://example.com/a.mp3"]
    assert form(api.last)["model_id"] == ["scribe_v2"]



async def test_subtitles_cut_short_are_fetched_again():
    srt = '"1\\n00:00:00,000 --> 00:00:01,000\\nHola\\n"'

    def respond(request: httpx.Request, n: int) -> httpx.Response:
        if n == 1:
            return httpx.Response(200, stream=BrokenStream(srt[:10].encode()))
        return httpx.Response(200, text=srt)

    client, api, sleep = make_client(respond)
    text = await client.dubbing.get_transcript("dub_1", "es")
    assert text == "1\n00:00:00,000 --> 00:00:01,000\nHola\n"
    assert api.attempts == 2 and len(sleep.waits) == 1


async def test_detailed_song_cut_short_is_retried_whole(tmp_path):
    body = (
        b"--bnd\r\nContent-Type: application/json\r\n\r\n"
        b'{"song_metadata": {"title": "T"}}\r\n'
        b"--bnd\r\nContent-Type: audio/mpeg\r\n\r\n" + AUDIO + b"\r\n--bnd--\r\n"
    )

    def respond(request: httpx.Request, n: int) -> httpx.Response:
        if n == 1:
            return httpx.Response(200, stream=BrokenStream(body[:2000]),
                                  headers={"content-type": "multipart/mixed; boundary=bnd"})
        return httpx.Response(200, content=body,
                              headers={"content-type": "multipart/mixed; boundary=bnd"})

    client, api, _ = make_client(respond)
    result = await client.music.compose_detailed(prompt="x", dest=tmp_path / "song.mp3")
    assert api.attempts == 2
    assert (tmp_path / "song.mp3").read_bytes() == AUDIO
    assert result.song_metadata is not None and result.song_metadata.title == "T"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mp3"]
