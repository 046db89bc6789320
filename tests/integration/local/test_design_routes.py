"""Voice design routes through the official SDK: previews, voices from previews, preview audio."""

from __future__ import annotations

import base64

import pytest
from elevenlabs.core.api_error import ApiError
from elevenlabs.errors import UnprocessableEntityError

from .conftest import read_audio, rms

pytestmark = pytest.mark.engine

DESCRIPTION = "A calm young woman with a soft, warm voice, speaking slowly."
PREVIEW_TEXT = (
    "Welcome to the offline studio. This preview lets you hear how the designed voice reads "
    "an ordinary paragraph."
)


@pytest.fixture(scope="module")
def designed(client):
    response = client.text_to_voice.with_raw_response.design(
        voice_description=DESCRIPTION, text=PREVIEW_TEXT, seed=11, output_format="mp3_22050_32"
    )
    return response.data, dict(response.headers)


def test_design_returns_three_playable_previews(designed) -> None:
    result, headers = designed
    assert result.text == PREVIEW_TEXT
    assert len(result.previews) == 3
    ids = [preview.generated_voice_id for preview in result.previews]
    assert len(set(ids)) == 3
    for preview in result.previews:
        audio = read_audio(base64.b64decode(preview.audio_base_64))
        assert preview.media_type == "audio/mpeg"
        assert preview.language == "en"
        assert audio.sample_rate == 22050
        assert audio.duration == pytest.approx(preview.duration_secs, abs=0.1)
        assert audio.duration > 3.0
        assert rms(audio.samples) > 0.02
    assert headers["character-cost"] == str(len(PREVIEW_TEXT))
    assert headers["request-id"]


def test_same_description_and_seed_give_the_same_previews_on_the_legacy_route(
    client, designed
) -> None:
    again = client.text_to_voice.create_previews(
        voice_description=DESCRIPTION, text=PREVIEW_TEXT, seed=11, output_format="mp3_22050_32"
    )
    first, _ = designed
    assert [p.generated_voice_id for p in again.previews] == [
        p.generated_voice_id for p in first.previews
    ]
    assert [p.audio_base_64 for p in again.previews] == [p.audio_base_64 for p in first.previews]
    # The three previews are different voices.
    assert len({p.audio_base_64 for p in first.previews}) == 3


def test_description_and_text_lengths_are_validated(client) -> None:
    with pytest.raises(UnprocessableEntityError) as caught:
        client.text_to_voice.design(voice_description="too short", text=PREVIEW_TEXT)
    assert caught.value.body["detail"][0]["loc"] == ["body", "voice_description"]
    with pytest.raises(UnprocessableEntityError) as caught:
        client.text_to_voice.design(voice_description=DESCRIPTION, text="Too short a text.")
    assert caught.value.body["detail"][0]["loc"] == ["body", "text"]
    with pytest.raises(ApiError) as caught:
        client.text_to_voice.design(voice_description=DESCRIPTION)
    assert caught.value.status_code == 400
    assert caught.value.body["detail"]["param"] == "text"
    with pytest.raises(UnprocessableEntityError):
        client.text_to_voice.design(
            voice_description=DESCRIPTION, text=PREVIEW_TEXT, output_format="wav_16000"
        )


def test_auto_generated_text_and_stream_previews(client) -> None:
    result = client.text_to_voice.design(
        voice_description="An old man with a deep, gravelly voice and a British accent.",
        auto_generate_text=True,
        stream_previews=True,
        seed=5,
        output_format="pcm_16000",
    )
    assert 100 <= len(result.text) <= 1000
    assert all(preview.audio_base_64 == "" for preview in result.previews)
    streamed = b"".join(client.text_to_voice.preview.stream(result.previews[0].generated_voice_id))
    audio = read_audio(streamed, "pcm_16000")
    assert audio.duration == pytest.approx(result.previews[0].duration_secs, abs=0.05)
    assert rms(audio.samples) > 0.02


def test_create_a_voice_from_a_preview_and_speak_with_it(client, designed) -> None:
    result, _ = designed
    chosen = result.previews[1]
    voice = client.text_to_voice.create(
        voice_name="Designed narrator",
        voice_description=DESCRIPTION,
        generated_voice_id=chosen.generated_voice_id,
        labels={"accent": "american", "age": None},
    )
    assert voice.category == "generated"
    assert voice.name == "Designed narrator"
    assert voice.labels == {"accent": "american"}
    assert voice.description == DESCRIPTION
    assert voice.samples and voice.samples[0].duration_secs == chosen.duration_secs
    assert client.voices.get(voice.voice_id).category == "generated"
    speech = b"".join(
        client.text_to_speech.convert(
            voice.voice_id, text="A designed voice.", output_format="pcm_16000"
        )
    )
    assert rms(read_audio(speech, "pcm_16000").samples) > 0.01


def test_unknown_previews_are_404(client) -> None:
    with pytest.raises(ApiError) as caught:
        client.text_to_voice.create(
            voice_name="Nobody", voice_description=DESCRIPTION, generated_voice_id="unknownPreview1"
        )
    assert caught.value.status_code == 404
    assert caught.value.body["detail"]["param"] == "generated_voice_id"
    with pytest.raises(ApiError) as caught:
        b"".join(client.text_to_voice.preview.stream("unknownPreview1"))
    assert caught.value.status_code == 404
