"""Voice routes through the official SDK: search, get, settings, cloning, editing, deleting."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from elevenlabs import VoiceSettings
from elevenlabs.core.api_error import ApiError
from elevenlabs.errors import UnprocessableEntityError

from prefect_elevenlabs.local.engines.voices import estimate_f0
from prefect_elevenlabs.local.server import EngineHandle

from .conftest import ERIC, FAST_VOICE_ID, RACHEL, read_audio, rms, sdk_for

pytestmark = pytest.mark.engine

WELL_KNOWN = {
    "21m00Tcm4TlvDq8ikWAM": "Rachel",
    "pNInz6obpgDQGcFmaJgB": "Adam",
    "EXAVITQu4vr4xnSDxMaL": "Bella",
    "ErXwobaYiN019PkySvjV": "Antoni",
    "TxGEqnHWrfWFTfGW9XjX": "Josh",
    "VR6AewLTigWG4xSOukaG": "Arnold",
    "AZnzlk1XvdvUeBnXmlld": "Domi",
    "nPczCjzI2devNBz1zQrb": "Brian",
    "onwK4e9ZLuTAKqWW03F9": "Daniel",
    "pFZP5JQG7iQjIQuC4Bku": "Lily",
}

SAMPLE_TEXT = (
    "My voice is being recorded so that it can be cloned. "
    "I speak a few sentences at an ordinary pace."
)


@pytest.fixture(scope="module")
def voices_engine(make_engine: Callable[..., EngineHandle]) -> EngineHandle:
    return make_engine()


@pytest.fixture(scope="module")
def voices_client(voices_engine: EngineHandle):
    return sdk_for(voices_engine)


def _sample(client, voice_id: str) -> bytes:
    return b"".join(
        client.text_to_speech.convert(voice_id, text=SAMPLE_TEXT, output_format="wav_16000")
    )


def test_v1_lists_the_well_known_premade_voices(voices_client) -> None:
    voices = {voice.voice_id: voice for voice in voices_client.voices.get_all().voices}
    for voice_id, name in WELL_KNOWN.items():
        voice = voices[voice_id]
        assert voice.name == name
        assert voice.category == "premade"
        assert {"gender", "age", "accent"} <= set(voice.labels or {})
        assert voice.preview_url is None
        assert voice.settings is not None and voice.settings.stability == 0.5
    assert voices[RACHEL].labels["gender"] == "female"
    assert voices["onwK4e9ZLuTAKqWW03F9"].labels["accent"] == "british"


def test_v2_search_pages_through_every_voice(voices_client) -> None:
    seen: list[str] = []
    token = None
    total = None
    while True:
        page = voices_client.voices.search(page_size=4, next_page_token=token)
        total = page.total_count
        seen += [voice.voice_id for voice in page.voices]
        if not page.has_more:
            assert page.next_page_token is None
            break
        token = page.next_page_token
    assert len(seen) == len(set(seen)) == total
    assert set(WELL_KNOWN) <= set(seen)


def test_v2_search_filters_and_sorts(voices_client) -> None:
    found = voices_client.voices.search(search="rachel").voices
    assert [voice.voice_id for voice in found] == [RACHEL]
    british = voices_client.voices.search(search="BRITISH", page_size=100).voices
    assert british and all(voice.labels["accent"] == "british" for voice in british)
    premade = voices_client.voices.search(category="premade", page_size=100)
    assert premade.total_count >= len(WELL_KNOWN)
    assert all(voice.category == "premade" for voice in premade.voices)
    females = voices_client.voices.search(gender="female", page_size=100).voices
    assert females and all(voice.labels["gender"] == "female" for voice in females)
    by_name = voices_client.voices.search(sort="name", sort_direction="asc", page_size=100)
    names = [voice.name.casefold() for voice in by_name.voices]
    assert names == sorted(names)
    personal = voices_client.voices.search(voice_type="personal", page_size=100).voices
    assert all(voice.category != "premade" for voice in personal)
    chosen = voices_client.voices.search(voice_ids=[RACHEL, ERIC]).voices
    assert {voice.voice_id for voice in chosen} == {RACHEL, ERIC}
    with pytest.raises(UnprocessableEntityError):
        voices_client.voices.search(page_size=101)
    with pytest.raises(ApiError) as caught:
        voices_client.voices.search(next_page_token="not-a-token")
    assert caught.value.body["detail"]["param"] == "next_page_token"


def test_get_and_settings_of_a_voice(voices_client) -> None:
    voice = voices_client.voices.get(ERIC)
    assert voice.name == "Eric"
    default = voices_client.voices.settings.get_default()
    assert (default.stability, default.similarity_boost, default.speed) == (0.5, 0.75, 1.0)
    assert voices_client.voices.settings.get(ERIC).style == 0.0
    voices_client.voices.settings.update(ERIC, request=VoiceSettings(stability=0.8, speed=1.1))
    settings = voices_client.voices.settings.get(ERIC)
    assert (settings.stability, settings.speed, settings.similarity_boost) == (0.8, 1.1, 0.75)
    assert voices_client.voices.get(ERIC).settings.stability == 0.8
    with pytest.raises(UnprocessableEntityError):
        voices_client.voices.settings.update(ERIC, request=VoiceSettings(stability=1.5))
    with pytest.raises(ApiError) as caught:
        voices_client.voices.settings.get("noSuchVoice")
    assert caught.value.status_code == 404


def test_premade_voices_cannot_be_deleted_and_unknown_ones_are_404(voices_client) -> None:
    with pytest.raises(ApiError) as caught:
        voices_client.voices.delete(RACHEL)
    assert caught.value.status_code == 400
    assert "premade" in caught.value.body["detail"]["message"]
    with pytest.raises(ApiError) as caught:
        voices_client.voices.delete("noSuchVoice")
    assert caught.value.status_code == 404
    assert caught.value.body["detail"]["status"] == "voice_not_found"


def test_clone_use_edit_and_delete_a_voice(voices_client, voices_engine: EngineHandle) -> None:
    sample = _sample(voices_client, ERIC)
    created = voices_client.voices.ivc.create(
        name="My clone",
        files=[("take1.wav", sample, "audio/wav"), ("take2.wav", sample, "audio/wav")],
        description="A cloned test voice",
    )
    assert created.requires_verification is False
    voice = voices_client.voices.get(created.voice_id)
    assert voice.category == "cloned"
    assert voice.name == "My clone"
    assert voice.labels == {}
    assert [s.file_name for s in voice.samples] == ["take1.wav", "take2.wav"]
    assert voice.samples[0].size_bytes == len(sample)
    assert voice.samples[0].duration_secs == pytest.approx(read_audio(sample).duration, abs=0.05)
    assert voice.created_at_unix and voice.is_owner

    speech = b"".join(
        voices_client.text_to_speech.convert(
            created.voice_id, text="The clone speaks.", output_format="pcm_16000"
        )
    )
    assert rms(read_audio(speech, "pcm_16000").samples) > 0.01

    stored = httpx.get(
        f"{voices_engine.base_url}/v1/voices/{created.voice_id}/samples/"
        f"{voice.samples[0].sample_id}/audio"
    )
    assert stored.content == sample

    voices_client.voices.update(
        created.voice_id, name="Renamed", labels={"accent": "american", "age": "young"}
    )
    edited = voices_client.voices.get(created.voice_id)
    assert edited.name == "Renamed"
    assert edited.labels == {"accent": "american", "age": "young"}
    assert edited.description == "A cloned test voice"
    assert voices_client.voices.search(search="renamed").voices[0].voice_id == created.voice_id

    assert voices_client.voices.delete(created.voice_id).status == "ok"
    with pytest.raises(ApiError) as caught:
        voices_client.voices.get(created.voice_id)
    assert caught.value.status_code == 404
    gone = httpx.get(
        f"{voices_engine.base_url}/v1/voices/{created.voice_id}/samples/"
        f"{voice.samples[0].sample_id}/audio"
    )
    assert gone.status_code == 404


def test_a_clone_takes_the_pitch_of_its_samples(voices_client) -> None:
    high = voices_client.voices.ivc.create(
        name="High", files=[("high.wav", _sample(voices_client, RACHEL), "audio/wav")]
    )
    low = voices_client.voices.ivc.create(
        name="Low", files=[("low.wav", _sample(voices_client, ERIC), "audio/wav")]
    )
    pitches = []
    for voice_id in (high.voice_id, low.voice_id):
        audio = b"".join(
            voices_client.text_to_speech.convert(
                voice_id, text="Listen to my pitch.", output_format="pcm_16000"
            )
        )
        pitches.append(estimate_f0(read_audio(audio, "pcm_16000").samples, 16000))
    assert pitches[0] is not None and pitches[1] is not None
    assert pitches[0] > pitches[1] * 1.3


def test_cloning_needs_real_audio(voices_client) -> None:
    with pytest.raises(ApiError) as caught:
        voices_client.voices.ivc.create(
            name="Broken", files=[("notes.txt", b"this is not audio at all", "text/plain")]
        )
    assert caught.value.status_code == 400
    assert caught.value.body["detail"]["param"] == "files"
    with pytest.raises(ApiError) as caught:
        voices_client.voices.ivc.create(
            name="Bad labels",
            files=[("x.wav", b"RIFF", "audio/wav")],
            labels="not json",  # type: ignore[arg-type]
        )
    assert caught.value.status_code == 400


def test_premade_voices_cannot_be_edited(voices_client) -> None:
    with pytest.raises(ApiError) as caught:
        voices_client.voices.update(RACHEL, name="Not Rachel")
    assert caught.value.status_code == 400
    assert voices_client.voices.get(RACHEL).name == "Rachel"


def test_the_fast_test_voice_is_listed_as_personal(voices_client) -> None:
    personal = voices_client.voices.search(voice_type="personal", page_size=100).voices
    assert FAST_VOICE_ID in {voice.voice_id for voice in personal}
