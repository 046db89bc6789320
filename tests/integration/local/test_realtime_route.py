"""Realtime speech to text over a WebSocket: the official SDK's client and raw protocol checks."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import jiwer
import pytest
from elevenlabs import AsyncElevenLabs, ElevenLabs
from elevenlabs.realtime.scribe import AudioFormat, CommitStrategy
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from prefect_elevenlabs.local.server import EngineHandle

from .conftest import ERIC

SENTENCE = "Please send the quarterly report to the finance team by Friday."
EVENTS = (
    "session_started",
    "partial_transcript",
    "committed_transcript",
    "committed_transcript_with_timestamps",
    "error",
)


def normalise(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


@pytest.fixture(scope="module")
def speech_pcm(client: ElevenLabs) -> bytes:
    """The sentence as 16 kHz 16-bit PCM, as a realtime client would capture it."""
    return b"".join(client.text_to_speech.convert(ERIC, text=SENTENCE, output_format="pcm_16000"))


def ws_url(engine: EngineHandle, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return engine.base_url.replace("http://", "ws://") + f"/v1/speech-to-text/realtime?{query}"


def chunk_message(pcm: bytes, **extra: Any) -> str:
    return json.dumps(
        {
            "message_type": "input_audio_chunk",
            "audio_base_64": base64.b64encode(pcm).decode(),
            "commit": False,
            "sample_rate": 16000,
            "previous_text": None,
            **extra,
        }
    )


async def receive(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 120))
    return message


async def run_sdk_session(
    client: AsyncElevenLabs, pcm: bytes, *, strategy: CommitStrategy, tail: bytes = b""
) -> list[tuple[str, dict[str, Any]]]:
    options: dict[str, Any] = {
        "model_id": "scribe_v2_realtime",
        "audio_format": AudioFormat.PCM_16000,
        "sample_rate": 16000,
        "language_code": "en",
        "include_timestamps": True,
        "commit_strategy": strategy,
    }
    if strategy == CommitStrategy.VAD:
        options["vad_silence_threshold_secs"] = 0.6
    events: list[tuple[str, dict[str, Any]]] = []
    finished = asyncio.Event()

    def recorder(name: str) -> Callable[[dict[str, Any]], None]:
        def record(data: dict[str, Any]) -> None:
            events.append((name, data))
            if name in ("committed_transcript_with_timestamps", "error"):
                finished.set()

        return record

    connection = await client.speech_to_text.realtime.connect(options)  # type: ignore[call-overload]
    for name in EVENTS:
        connection.on(name, recorder(name))
    step = 3200  # 0.1 s
    for start in range(0, len(pcm), step):
        await connection.send(
            {"audio_base_64": base64.b64encode(pcm[start : start + step]).decode()}
        )
    if tail:
        await connection.send({"audio_base_64": base64.b64encode(tail).decode()})
    if strategy == CommitStrategy.MANUAL:
        await connection.commit()
    await asyncio.wait_for(finished.wait(), 120)
    await connection.close()
    return events


async def test_sdk_session_gets_partials_then_a_committed_transcript(
    async_client: AsyncElevenLabs, speech_pcm: bytes
) -> None:
    events = await run_sdk_session(async_client, speech_pcm, strategy=CommitStrategy.MANUAL)
    names = [name for name, _ in events]
    assert names[0] == "session_started"
    config = events[0][1]["config"]
    assert config["audio_format"] == "pcm_16000" and config["sample_rate"] == 16000
    assert config["commit_strategy"] == "manual" and config["include_timestamps"] is True
    assert config["model_id"] == "scribe_v2_realtime"
    assert "partial_transcript" in names
    assert names.index("partial_transcript") < names.index("committed_transcript")
    committed = next(data for name, data in events if name == "committed_transcript")
    assert jiwer.wer(normalise(SENTENCE), normalise(committed["text"])) <= 0.1
    timed = next(data for name, data in events if name == "committed_transcript_with_timestamps")
    assert timed["text"] == committed["text"] and timed["language_code"] == "eng"
    words = [w for w in timed["words"] if w["type"] == "word"]
    assert " ".join(w["text"] for w in words) == committed["text"]
    duration = len(speech_pcm) / 32000
    assert all(0 <= w["start"] <= w["end"] <= duration + 1e-6 for w in words)


async def test_vad_commits_after_silence(async_client: AsyncElevenLabs, speech_pcm: bytes) -> None:
    silence = bytes(32000)  # one second
    events = await run_sdk_session(
        async_client, speech_pcm, strategy=CommitStrategy.VAD, tail=silence
    )
    committed = [data for name, data in events if name == "committed_transcript"]
    assert len(committed) == 1
    assert jiwer.wer(normalise(SENTENCE), normalise(committed[0]["text"])) <= 0.1


async def test_ulaw_audio_is_understood(engine: EngineHandle, client: ElevenLabs) -> None:
    ulaw = b"".join(
        client.text_to_speech.convert(ERIC, text="Good morning.", output_format="ulaw_8000")
    )
    async with connect(ws_url(engine, model_id="scribe_v2_realtime", audio_format="ulaw_8000",
                              language_code="en")) as ws:  # fmt: skip
        assert (await receive(ws))["message_type"] == "session_started"
        await ws.send(chunk_message(ulaw, sample_rate=8000))
        await ws.send(chunk_message(b"", sample_rate=8000, commit=True))
        message = await receive(ws)
        while message["message_type"] == "partial_transcript":
            message = await receive(ws)
    assert message["message_type"] == "committed_transcript"
    assert normalise(message["text"]) == "good morning"


async def test_bad_input_is_answered_and_the_session_goes_on(engine: EngineHandle) -> None:
    async with connect(ws_url(engine, model_id="scribe_v2_realtime",
                              audio_format="pcm_16000")) as ws:  # fmt: skip
        assert (await receive(ws))["message_type"] == "session_started"
        await ws.send(json.dumps({"message_type": "input_audio_chunk", "audio_base_64": "%%%"}))
        assert (await receive(ws))["message_type"] == "input_error"
        await ws.send(chunk_message(bytes(3200), sample_rate=44100))
        error = await receive(ws)
        assert error["message_type"] == "input_error" and "sample_rate" in error["error"]
        await ws.send(json.dumps({"message_type": "say_hello"}))
        assert (await receive(ws))["message_type"] == "input_error"
        await ws.send(chunk_message(bytes(3)))
        assert "odd byte count" in (await receive(ws))["error"]
        await ws.send(chunk_message(bytes(3200), previous_text="context for the first chunk"))
        await ws.send(chunk_message(bytes(3200), previous_text="too late for context"))
        assert "previous_text" in (await receive(ws))["error"]
        await ws.send(chunk_message(b"", commit=True))
        committed = await receive(ws)
    assert committed == {"message_type": "committed_transcript", "text": ""}


@pytest.mark.parametrize(
    "params",
    [
        {"model_id": "scribe_v1", "audio_format": "pcm_16000"},
        {"model_id": "scribe_v2_realtime", "audio_format": "mp3_44100_128"},
        {"model_id": "scribe_v2_realtime", "audio_format": "pcm_16000",
         "commit_strategy": "vad", "vad_silence_threshold_secs": "9"},
    ],
)  # fmt: skip
async def test_bad_settings_end_the_session(engine: EngineHandle, params: dict[str, str]) -> None:
    async with connect(ws_url(engine, **params)) as ws:
        message = await receive(ws)
        assert message["message_type"] == "invalid_request"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_keys_and_single_use_tokens(make_engine: Callable[..., EngineHandle]) -> None:
    guarded = make_engine(api_keys=["secret"])
    url = ws_url(guarded, model_id="scribe_v2_realtime", audio_format="pcm_16000")
    async with connect(url, additional_headers={"xi-api-key": "wrong"}) as ws:
        assert (await receive(ws))["message_type"] == "auth_error"
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    async with connect(url, additional_headers={"xi-api-key": "secret"}) as ws:
        assert (await receive(ws))["message_type"] == "session_started"

    async with httpx.AsyncClient(base_url=guarded.base_url) as http:
        refused = await http.post("/v1/single-use-token/realtime_scribe")
        assert refused.status_code == 401
        issued = await http.post(
            "/v1/single-use-token/realtime_scribe", headers={"xi-api-key": "secret"}
        )
    token = issued.json()["token"]
    async with connect(f"{url}&token={token}") as ws:
        assert (await receive(ws))["message_type"] == "session_started"
    async with connect(f"{url}&token={token}") as ws:
        assert (await receive(ws))["message_type"] == "auth_error"
