"""Music over HTTP with the official SDK: lengths, formats, plans and the detailed multipart."""

from __future__ import annotations

import json

import httpx
import pytest
from elevenlabs import ElevenLabs
from elevenlabs.core.api_error import ApiError

from prefect_elevenlabs.local.server import EngineHandle

from .conftest import read_audio, rms


def test_compose_lasts_music_length_ms_and_names_the_song(client: ElevenLabs) -> None:
    with client.music.with_raw_response.compose(
        prompt="upbeat rock with electric guitar", music_length_ms=4000, output_format="pcm_22050"
    ) as response:
        data = b"".join(response.data)
        song_id = response.headers.get("song-id")
        content_type = response.headers["content-type"]
    audio = read_audio(data, "pcm_22050")
    assert len(audio.samples) == 4 * 22050
    assert rms(audio.samples) > 0.02
    assert song_id and content_type == "audio/pcm"


def test_compose_detailed_is_parsed_by_the_sdk(client: ElevenLabs) -> None:
    result = client.music.compose_detailed(
        prompt='a calm piano ballad at 80 bpm with lyrics: "Stars above the quiet town"',
        music_length_ms=6000,
        output_format="mp3_44100_128",
        with_timestamps=True,
    )
    plan = result.json["composition_plan"]
    assert sum(section["duration_ms"] for section in plan["sections"]) == 6000
    assert "80 bpm" in plan["positive_global_styles"]
    metadata = result.json["song_metadata"]
    assert metadata["title"] and isinstance(metadata["genres"], list)
    assert result.song_id and result.filename == f"{result.song_id}.mp3"
    audio = read_audio(result.audio)
    assert audio.sample_rate == 44100
    assert audio.duration == pytest.approx(6.0, abs=0.1)
    words = result.json["words_timestamps"]
    assert [w["word"] for w in words] == ["Stars", "above", "the", "quiet", "town"]
    assert all(0 <= w["start_ms"] < w["end_ms"] <= 6000 for w in words)


def test_detailed_waveform_has_four_values_per_second(engine: EngineHandle) -> None:
    response = httpx.post(
        f"{engine.base_url}/v1/music/detailed?output_format=pcm_16000",
        json={"prompt": "ambient pads", "music_length_ms": 3000, "with_waveform_visual": True},
        timeout=120,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=")
    first, _, rest = response.content.partition(b"\r\n")
    assert first.startswith(b"--music-")
    header, blank, line = rest.split(b"\r\n")[:3]
    assert header == b"Content-Type: application/json" and blank == b""
    waveform = json.loads(line)["waveform_visual"]
    assert len(waveform) == 12
    assert all(-1000 <= value <= 1000 for value in waveform) and any(waveform)


def test_plans_come_in_the_shape_of_the_model(client: ElevenLabs, engine: EngineHandle) -> None:
    v1 = client.music.composition_plan.create(prompt="sad jazz", music_length_ms=12000)
    assert sum(section.duration_ms for section in v1.sections) == 12000
    assert "jazz" in v1.positive_global_styles
    v2 = httpx.post(
        f"{engine.base_url}/v1/music/plan",
        json={"prompt": "sad jazz", "music_length_ms": 12000, "model_id": "music_v2"},
    ).json()
    assert sum(chunk["duration_ms"] for chunk in v2["chunks"]) == 12000
    assert all(chunk["text"].startswith("[") for chunk in v2["chunks"])

    rendered = httpx.post(
        f"{engine.base_url}/v1/music",
        json={"composition_plan": v2, "model_id": "music_v2"},
        timeout=120,
    )
    assert rendered.status_code == 200
    audio = read_audio(rendered.content)
    # output_format auto means mp3 at 48 kHz for the v2 models.
    assert audio.sample_rate == 48000
    assert audio.duration == pytest.approx(12.0, abs=0.1)

    mismatched = httpx.post(
        f"{engine.base_url}/v1/music", json={"composition_plan": v2, "model_id": "music_v1"}
    )
    assert mismatched.status_code == 422
    assert "sections shape" in mismatched.text


def test_stream_sends_the_whole_song(client: ElevenLabs) -> None:
    chunks = list(
        client.music.stream(prompt="lofi beat", music_length_ms=3000, output_format="pcm_24000")
    )
    assert len(chunks) > 1
    assert len(b"".join(chunks)) == 3 * 24000 * 2


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"prompt": "jazz", "music_length_ms": 2000}, 422, "music_length_ms"),
        ({"prompt": "jazz", "music_length_ms": 700_000}, 422, "music_length_ms"),
        ({"prompt": "jazz", "model_id": "music_v9"}, 422, "model_id"),
        ({}, 400, "exactly one"),
        ({"composition_plan": {"sections": []}}, 422, "sections"),
        ({"prompt": "jazz", "finetune_id": "ft_1"}, 400, "fine-tuned"),
    ],
)
def test_bad_requests_are_refused(
    engine: EngineHandle, body: dict, status: int, expected: str
) -> None:
    response = httpx.post(f"{engine.base_url}/v1/music", json=body, timeout=60)
    assert response.status_code == status, response.text
    assert expected in response.text


def test_sdk_surfaces_length_errors(client: ElevenLabs) -> None:
    with pytest.raises(ApiError) as raised:
        b"".join(client.music.compose(prompt="jazz", music_length_ms=1000))
    assert raised.value.status_code == 422
