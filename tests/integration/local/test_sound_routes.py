"""Sound effects over HTTP with the official SDK: lengths, loops, formats, billing, errors."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from elevenlabs import ElevenLabs
from elevenlabs.core.api_error import ApiError

from prefect_elevenlabs.local.server import EngineHandle

from .conftest import read_audio, rms


def generate(client: ElevenLabs, text: str, output_format: str, **options: object) -> bytes:
    return b"".join(
        client.text_to_sound_effects.convert(text=text, output_format=output_format, **options)
    )


@pytest.mark.parametrize("seconds", [0.5, 2.0, 3.25])
def test_duration_is_exact(client: ElevenLabs, seconds: float) -> None:
    audio = read_audio(
        generate(client, "footsteps on gravel", "pcm_44100", duration_seconds=seconds),
        "pcm_44100",
    )
    assert len(audio.samples) == round(seconds * 44100)
    assert rms(audio.samples) > 0.01


def test_encoded_formats_decode_to_the_requested_rate(client: ElevenLabs) -> None:
    wav = read_audio(generate(client, "a door slams", "wav_22050", duration_seconds=1.0), "wav")
    assert wav.sample_rate == 22050 and wav.duration == pytest.approx(1.0, abs=1e-3)
    mp3 = read_audio(generate(client, "a door slams", "mp3_44100_128", duration_seconds=1.0))
    assert mp3.sample_rate == 44100 and mp3.duration == pytest.approx(1.0, abs=0.1)


def test_loop_joins_end_to_start(client: ElevenLabs) -> None:
    """A looped clip's last sample flows into its first like any two neighbours do."""
    prompt = "steady rain on a tin roof"
    looped = read_audio(
        generate(client, prompt, "pcm_44100", duration_seconds=2.0, loop=True), "pcm_44100"
    ).samples
    plain = read_audio(
        generate(client, prompt, "pcm_44100", duration_seconds=2.0, loop=False), "pcm_44100"
    ).samples
    typical_step = float(np.median(np.abs(np.diff(looped))))
    seam = abs(float(looped[0]) - float(looped[-1]))
    assert seam <= 6 * typical_step + 1e-4
    # Without loop the clip fades in and out, so its ends are near silence, unlike the loop.
    assert rms(plain[:200]) < rms(looped[:200])


def test_character_cost_is_the_prompt_length(client: ElevenLabs) -> None:
    text = "a dog barks twice in the distance"
    with client.text_to_sound_effects.with_raw_response.convert(
        text=text, duration_seconds=1.0, output_format="mp3_22050_32"
    ) as response:
        data = b"".join(response.data)
        headers = response.headers
    assert headers["character-cost"] == str(len(text))
    assert headers["content-type"] == "audio/mpeg"
    assert headers["request-id"]
    assert len(data) > 1000


@pytest.mark.parametrize(
    ("body", "query", "status", "expected"),
    [
        ({"text": "wind", "duration_seconds": 0.4}, "", 422, "duration_seconds"),
        ({"text": "wind", "duration_seconds": 31}, "", 422, "duration_seconds"),
        ({"text": "wind", "prompt_influence": 1.5}, "", 422, "prompt_influence"),
        ({"text": "wind"}, "?output_format=mp3_48000_320", 422, "output_format"),
        ({"text": "wind", "model_id": "eleven_v3"}, "", 400, "eleven_text_to_sound_v2"),
        ({"text": "   "}, "", 400, "describe the sound"),
    ],
)
def test_bad_requests_are_refused(
    engine: EngineHandle, body: dict, query: str, status: int, expected: str
) -> None:
    response = httpx.post(f"{engine.base_url}/v1/sound-generation{query}", json=body)
    assert response.status_code == status, response.text
    assert expected in response.text


def test_sdk_surfaces_validation_errors(client: ElevenLabs) -> None:
    with pytest.raises(ApiError) as raised:
        generate(client, "thunder", "mp3_44100_128", duration_seconds=45.0)
    assert raised.value.status_code == 422
