"""Speech to speech and audio isolation over HTTP, with real speech and real measurements."""

from __future__ import annotations

import io
import json
import re

import httpx
import jiwer
import numpy as np
import pytest
import soundfile as sf
from elevenlabs import ElevenLabs, SpeechToTextChunkResponseModel

from prefect_elevenlabs.local.engines.voices import estimate_f0
from prefect_elevenlabs.local.server import EngineHandle

from .conftest import ERIC, RACHEL, read_audio, rms

SENTENCE = "We walked along the river and talked about the weather."
LEAD_IN = 0.5


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def recording(client: ElevenLabs) -> np.ndarray:
    """Eric saying SENTENCE after half a second of silence, 16 kHz."""
    pcm = b"".join(client.text_to_speech.convert(ERIC, text=SENTENCE, output_format="pcm_16000"))
    speech = read_audio(pcm, "pcm_16000").samples
    return np.concatenate([np.zeros(int(LEAD_IN * 16000), dtype=np.float32), speech])


def test_voice_changer_keeps_words_and_timing_in_the_new_voice(
    client: ElevenLabs, recording: np.ndarray
) -> None:
    output = b"".join(
        client.speech_to_speech.convert(
            RACHEL,
            audio=("walk.wav", wav_bytes(recording, 16000), "audio/wav"),
            output_format="wav_22050",
        )
    )
    changed = read_audio(output, "wav_22050")
    assert changed.sample_rate == 22050
    assert changed.duration == pytest.approx(len(recording) / 16000, abs=0.02)
    assert rms(changed.samples[: int(0.4 * 22050)]) < 0.005  # the lead-in stays silent
    assert rms(changed.samples) > 0.02

    heard = client.speech_to_text.convert(
        model_id="scribe_v1", file=("changed.wav", output, "audio/wav"), language_code="en"
    )
    assert isinstance(heard, SpeechToTextChunkResponseModel)
    assert jiwer.wer(normalise(SENTENCE), normalise(heard.text)) <= 0.2, heard.text
    # Rachel is a female voice: markedly higher than Eric's.
    before = estimate_f0(recording, 16000)
    after = estimate_f0(changed.samples, 22050)
    assert before is not None and after is not None
    assert after > 1.25 * before


def test_legacy_stream_path_with_settings_and_noise_removal(
    engine: EngineHandle, recording: np.ndarray
) -> None:
    response = httpx.post(
        f"{engine.base_url}/v1/speech-to-speech/{ERIC}/stream",
        params={"output_format": "mp3_22050_32"},
        files={"audio": ("walk.wav", wav_bytes(recording, 16000), "audio/wav")},
        data={
            "model_id": "eleven_multilingual_sts_v2",
            "voice_settings": json.dumps({"speed": 1.1, "stability": 0.3}),
            "remove_background_noise": "true",
            "seed": "7",
        },
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/mpeg"
    history_id = response.headers["history-item-id"]
    audio = read_audio(response.content)
    assert audio.duration == pytest.approx(len(recording) / 16000, abs=0.15)
    item = httpx.get(f"{engine.base_url}/v1/history/{history_id}").json()
    assert item["source"] == "STS" and normalise(item["text"]) == normalise(SENTENCE)


@pytest.mark.parametrize(
    ("path", "fields", "status", "expected"),
    [
        (f"/v1/voice-changer/{ERIC}", {"model_id": "eleven_v3"}, 400, "eleven_english_sts_v2"),
        ("/v1/voice-changer/no_such_voice", {}, 404, "voice_not_found"),
        (f"/v1/voice-changer/{ERIC}", {"voice_settings": '{"speed": 5}'}, 422, "speed"),
        (f"/v1/voice-changer/{ERIC}", {"voice_settings": "not json"}, 422, "valid JSON"),
    ],
)
def test_bad_requests_are_refused(
    engine: EngineHandle, path: str, fields: dict, status: int, expected: str
) -> None:
    response = httpx.post(
        f"{engine.base_url}{path}", data=fields, files={"audio": ("a.wav", b"RIFF")}
    )
    assert response.status_code == status, response.text
    assert expected in response.text


def test_audio_isolation_lowers_steady_noise(client: ElevenLabs, recording: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    noisy = (recording + rng.normal(0.0, 0.03, len(recording))).astype(np.float32)
    cleaned = read_audio(
        b"".join(client.audio_isolation.convert(audio=("noisy.wav", wav_bytes(noisy, 16000))))
    )
    assert cleaned.sample_rate == 44100
    assert cleaned.duration == pytest.approx(len(noisy) / 16000, abs=0.1)
    quiet = slice(int(0.1 * 44100), int(0.4 * 44100))  # inside the lead-in: noise only
    noise_before = rms(noisy[int(0.1 * 16000) : int(0.4 * 16000)])
    noise_after = rms(cleaned.samples[quiet])
    assert 20 * np.log10(noise_after / noise_before) < -10
    speech = slice(int((LEAD_IN + 0.3) * 44100), int((LEAD_IN + 1.5) * 44100))
    assert rms(cleaned.samples[speech]) > 0.3 * rms(recording[int((LEAD_IN + 0.3) * 16000) :])


def test_audio_isolation_stream_and_bad_upload(engine: EngineHandle, recording: np.ndarray) -> None:
    streamed = httpx.post(
        f"{engine.base_url}/v1/audio-isolation/stream",
        files={"audio": ("walk.wav", wav_bytes(recording, 16000))},
    )
    assert streamed.status_code == 200 and streamed.headers["content-type"] == "audio/mpeg"
    assert read_audio(streamed.content).duration == pytest.approx(len(recording) / 16000, abs=0.1)
    refused = httpx.post(
        f"{engine.base_url}/v1/audio-isolation", files={"audio": ("x.txt", b"just text")}
    )
    assert refused.status_code == 400 and "not audio" in refused.text
