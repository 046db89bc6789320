"""Realtime speech to text against a small WebSocket server speaking the API's protocol."""

from __future__ import annotations

import base64
import json
import math
import struct
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from prefect_elevenlabs.client import (
    CommittedTranscript,
    CommittedTranscriptWithTimestamps,
    PartialTranscript,
    RealtimeError,
    RequestValidationError,
    RetryPolicy,
    SessionStarted,
    connect_realtime,
    transcribe_stream,
)
from prefect_elevenlabs.client.realtime import realtime_url
from prefect_elevenlabs.errors import (
    AuthenticationError,
    ConnectionFailedError,
    QuotaExceededError,
)

from . import API_KEY, make_client


@dataclass
class Session:
    path: str
    headers: Headers
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    def audio(self) -> bytes:
        return b"".join(base64.b64decode(m["audio_base_64"]) for m in self.messages)


@dataclass
class FakeScribe:
    """Answers like the realtime endpoint: session_started, then a transcript per commit.

    The committed text says how many audio bytes the segment held, so a test can check that
    nothing was lost. ``refuse`` makes the handshake fail with that HTTP status;
    ``script`` sends given messages after session_started instead of the normal behaviour.
    """

    sessions: list[Session] = field(default_factory=list)
    refuse: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    script: list[dict[str, Any]] | None = None
    close_code: int | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse:
            status, body = self.refuse.pop(0)
            return Response(
                status, HTTPStatus(status).phrase,
                Headers({"content-type": "application/json", "request-id": "req_ws"}),
                json.dumps(body).encode(),
            )
        return None

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        session = Session(ws.request.path, ws.request.headers)
        self.sessions.append(session)
        query = session.query
        await ws.send(json.dumps({
            "message_type": "session_started",
            "session_id": f"sess_{len(self.sessions)}",
            "config": {"sample_rate": 16000, "model_id": query["model_id"][0]},
        }))
        if self.script is not None:
            for message in self.script:
                await ws.send(json.dumps(message))
            if self.close_code is not None:
                await ws.close(self.close_code, "server says no")
            else:
                await ws.wait_closed()
            return
        timestamps = query.get("include_timestamps") == ["true"]
        pending = 0
        async for raw in ws:
            message = json.loads(raw)
            session.messages.append(message)
            pending += len(base64.b64decode(message["audio_base_64"]))
            if pending:
                await ws.send(json.dumps({"message_type": "partial_transcript",
                                          "text": f"partial {pending}"}))
            if message["commit"]:
                text = f"segment of {pending} bytes"
                await ws.send(json.dumps({"message_type": "committed_transcript", "text": text}))
                if timestamps:
                    await ws.send(json.dumps({
                        "message_type": "committed_transcript_with_timestamps",
                        "text": text, "language_code": "en",
                        "words": [{"text": "segment", "start": 0.0, "end": 0.4, "type": "word"}],
                    }))
                pending = 0


@pytest.fixture
async def scribe() -> AsyncIterator[FakeScribe]:
    fake = FakeScribe()
    async with serve(fake.handle, "127.0.0.1", 0, process_request=fake.process_request) as server:
        fake.port = server.sockets[0].getsockname()[1]
        yield fake


def no_http(request: httpx.Request, attempt: int) -> httpx.Response:
    raise AssertionError(f"no HTTP call expected, got {request.method} {request.url}")


def tone_wav(path: Path, seconds: float, rate: int = 16000) -> bytes:
    """Writes a 440 Hz tone as 16-bit mono WAV; returns its PCM frames."""
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return frames


async def test_query_header_and_message_shapes(scribe):
    async with connect_realtime(
        scribe.base_url, API_KEY, language_code="en", include_timestamps=True,
        keyterms=["Prefect", "Scribe"], vad_threshold=0.5,
    ) as session:
        await session.send_audio(b"\x01\x00\x02\x00", previous_text="Earlier words.")
        await session.send_audio(b"\x03\x00")
        await session.commit()
        events = []
        async for event in session:
            events.append(event)
            if isinstance(event, CommittedTranscriptWithTimestamps):
                break

    server_side = scribe.sessions[0]
    assert urlsplit(server_side.path).path == "/v1/speech-to-text/realtime"
    assert server_side.query == {
        "model_id": ["scribe_v2_realtime"],
        "audio_format": ["pcm_16000"],
        "commit_strategy": ["manual"],
        "vad_threshold": ["0.5"],
        "language_code": ["en"],
        "include_timestamps": ["true"],
        "keyterms": ["Prefect", "Scribe"],
    }
    assert server_side.headers["xi-api-key"] == API_KEY
    assert API_KEY not in server_side.path
    assert server_side.messages == [
        {"message_type": "input_audio_chunk", "audio_base_64": "AQACAA==", "commit": False,
         "sample_rate": 16000, "previous_text": "Earlier words."},
        {"message_type": "input_audio_chunk", "audio_base_64": "AwA=", "commit": False,
         "sample_rate": 16000, "previous_text": None},
        {"message_type": "input_audio_chunk", "audio_base_64": "", "commit": True,
         "sample_rate": 16000, "previous_text": None},
    ]
    kinds = [type(e) for e in events]
    assert kinds == [SessionStarted, PartialTranscript, PartialTranscript, PartialTranscript,
                     CommittedTranscript, CommittedTranscriptWithTimestamps]
    assert session.session is not None and session.session.session_id == "sess_1"
    committed, timed = events[4], events[5]
    assert isinstance(committed, CommittedTranscript) and committed.text == "segment of 6 bytes"
    assert isinstance(timed, CommittedTranscriptWithTimestamps)
    assert timed.words[0].text == "segment" and timed.words[0].end == 0.4


async def test_previous_text_only_on_the_first_chunk_and_whole_samples(scribe):
    async with connect_realtime(scribe.base_url, API_KEY) as session:
        await session.send_audio(b"\x00\x00")
        with pytest.raises(RequestValidationError, match="first audio chunk"):
            await session.send_audio(b"\x00\x00", previous_text="late")
        with pytest.raises(RequestValidationError, match="even number"):
            await session.send_audio(b"\x00")


async def test_client_supplies_origin_and_key_and_token_mode(scribe):
    client, _, _ = make_client(no_http, base_url=scribe.base_url)
    async with connect_realtime(client, model_id="scribe_v3_live", audio_format="pcm_8000") as s:
        await s.send_audio(b"\x00\x00")
    first = scribe.sessions[0]
    assert first.headers["xi-api-key"] == API_KEY
    assert first.query["model_id"] == ["scribe_v3_live"]
    assert first.query["include_timestamps"] == ["false"]

    session = connect_realtime(scribe.base_url, API_KEY, token="single-use-token")
    assert "single-use-token" not in repr(session)
    async with session:
        pass
    second = scribe.sessions[1]
    assert "xi-api-key" not in second.headers
    assert second.query["token"] == ["single-use-token"]


async def test_server_error_events_are_typed(scribe):
    scribe.script = [{"message_type": "quota_exceeded", "error": "Out of credits"}]
    async with connect_realtime(scribe.base_url, API_KEY) as session:
        with pytest.raises(QuotaExceededError, match="Out of credits"):
            async for _ in session:
                pass

    scribe.script = [{"message_type": "commit_throttled", "error": "slow down"},
                     {"message_type": "warning", "warning": "heads up"}]
    async with connect_realtime(scribe.base_url, API_KEY, raise_on_error=False) as session:
        first = await session.recv()
        error = await session.recv()
        other = await session.recv()
    assert isinstance(first, SessionStarted)
    assert isinstance(error, RealtimeError) and error.error == "slow down"
    assert error.exception.retryable
    assert other is not None and other.message_type == "warning"


async def test_handshake_refusal_maps_to_typed_errors_and_retries(scribe):
    scribe.refuse = [(401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}})]
    with pytest.raises(AuthenticationError) as info:
        async with connect_realtime(scribe.base_url, API_KEY):
            pass
    assert info.value.request_id == "req_ws"
    assert API_KEY not in str(info.value)

    client, _, sleep = make_client(no_http, base_url=scribe.base_url)
    scribe.refuse = [(503, {"detail": {"status": "busy", "message": "try later"}}),
                     (429, {"detail": {"status": "system_busy", "message": "busy"}})]
    async with connect_realtime(client) as session:
        assert isinstance(await session.recv(), SessionStarted)
    assert len(sleep.waits) == 2


async def test_abnormal_close_raises_connection_failed(scribe):
    scribe.script = []
    scribe.close_code = 1011
    with pytest.raises(ConnectionFailedError, match="1011"):
        async with connect_realtime(scribe.base_url, API_KEY) as session:
            async for _ in session:
                pass


async def test_refused_port_is_a_connection_error():
    with pytest.raises(ConnectionFailedError):
        async with connect_realtime(
            "http://127.0.0.1:9", API_KEY, retry_policy=RetryPolicy(max_retries=0)
        ):
            pass


def test_socket_url_follows_the_http_origin():
    params = [("model_id", "scribe_v2_realtime")]
    assert realtime_url("https://api.elevenlabs.io", params) == (
        "wss://api.elevenlabs.io/v1/speech-to-text/realtime?model_id=scribe_v2_realtime"
    )
    assert realtime_url("http://127.0.0.1:8011/", params).startswith(
        "ws://127.0.0.1:8011/v1/speech-to-text/realtime?"
    )
    assert realtime_url("https://proxy.example/el", params).startswith(
        "wss://proxy.example/el/v1/speech-to-text/realtime?"
    )


def test_bad_audio_format_is_refused_before_connecting():
    with pytest.raises(RequestValidationError, match="pcm_16000"):
        connect_realtime("http://127.0.0.1:9", API_KEY, audio_format="mp3_44100_128")


async def test_transcribe_stream_sends_every_sample_and_joins_commits(scribe, tmp_path):
    wav_path = tmp_path / "tone.wav"
    frames = tone_wav(wav_path, 2.3)
    text = await transcribe_stream(
        wav_path, scribe.base_url, API_KEY, chunk_seconds=0.1, commit_every_seconds=1.0,
        language_code="en",
    )
    session = scribe.sessions[0]
    assert session.audio() == frames  # every sample, in order, nothing else
    assert session.query["language_code"] == ["en"]
    chunks = [m for m in session.messages if m["audio_base_64"]]
    assert all(len(base64.b64decode(m["audio_base_64"])) <= 3200 for m in chunks)
    commits = [m for m in session.messages if m["commit"]]
    assert len(commits) == 3  # at 1 s, 2 s, and the rest
    assert text == "segment of 32000 bytes segment of 32000 bytes segment of 9600 bytes"


async def test_transcribe_stream_raw_bytes_and_failures(scribe, tmp_path):
    pcm = bytes(range(256)) * 10
    text = await transcribe_stream(pcm, scribe.base_url, API_KEY, commit_every_seconds=None)
    assert text == f"segment of {len(pcm)} bytes"
    assert scribe.sessions[0].audio() == pcm

    wrong_rate = tmp_path / "44k.wav"
    tone_wav(wrong_rate, 0.1, rate=44100)
    with pytest.raises(RequestValidationError, match="16000 Hz"):
        await transcribe_stream(wrong_rate, scribe.base_url, API_KEY)
    assert len(scribe.sessions) == 1  # refused before connecting

    scribe.script = [{"message_type": "auth_error", "error": "key revoked"}]
    with pytest.raises(AuthenticationError, match="key revoked"):
        await transcribe_stream(pcm, scribe.base_url, API_KEY)
