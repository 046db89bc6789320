"""Models, user, subscription and history routes through the official SDK."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from elevenlabs.core.api_error import ApiError

from prefect_elevenlabs.local.models import MODEL_ENGINES
from prefect_elevenlabs.local.server import EngineHandle

from .conftest import FAST_TTS, FAST_VOICE_ID, read_audio, sdk_for

pytestmark = pytest.mark.engine

# Per-request limits from the published model table.
LIMITS = {
    "eleven_v3": 3_000,
    "eleven_multilingual_v2": 10_000,
    "eleven_flash_v2_5": 40_000,
    "eleven_flash_v2": 30_000,
    "eleven_turbo_v2_5": 40_000,
    "eleven_turbo_v2": 30_000,
    "eleven_multilingual_v1": 10_000,
    "eleven_monolingual_v1": 10_000,
}
MODEL_FIELDS = {
    "model_id", "name", "can_be_finetuned", "can_do_text_to_speech", "can_do_voice_conversion",
    "can_use_style", "can_use_speaker_boost", "serves_pro_voices", "token_cost_factor",
    "description", "requires_alpha_access", "max_characters_request_free_user",
    "max_characters_request_subscribed_user", "maximum_text_length_per_request", "languages",
    "model_rates", "concurrency_group",
}  # fmt: skip


def test_models_are_a_bare_list_with_every_field(client, engine: EngineHandle) -> None:
    raw = httpx.get(f"{engine.base_url}/v1/models").json()
    assert isinstance(raw, list)
    for entry in raw:
        assert set(entry) == MODEL_FIELDS
    models = {model.model_id: model for model in client.models.list()}
    for model_id, limit in LIMITS.items():
        model = models[model_id]
        assert model.can_do_text_to_speech
        assert model.maximum_text_length_per_request == limit
        assert model.languages and model.languages[0].language_id == "en"
        assert "piper" in (model.description or "")
    assert [lang.language_id for lang in models["eleven_flash_v2"].languages] == ["en"]
    assert len(models["eleven_multilingual_v2"].languages) == 29
    assert models["eleven_multilingual_sts_v2"].can_do_voice_conversion
    assert not models["eleven_multilingual_sts_v2"].can_do_text_to_speech


def test_every_model_id_maps_to_a_local_engine() -> None:
    for model_id in (*LIMITS, "scribe_v1", "scribe_v2_realtime", "music_v1",
                     "eleven_text_to_sound_v2", "eleven_multilingual_ttv_v2"):  # fmt: skip
        assert MODEL_ENGINES[model_id]
    assert "whisper" in MODEL_ENGINES["scribe_v2"]
    assert "fluidsynth" in MODEL_ENGINES["music_v1"]


def test_user_and_subscription_report_this_keys_usage(make_engine) -> None:
    handle = make_engine(api_keys=["first", "second"], character_limit=5000)
    first, second = sdk_for(handle, api_key="first"), sdk_for(handle, api_key="second")
    b"".join(first.text_to_speech.convert(FAST_VOICE_ID, **FAST_TTS))
    subscription = first.user.subscription.get()
    assert subscription.tier == "local"
    assert subscription.status == "active"
    assert subscription.character_count == len(FAST_TTS["text"])
    assert subscription.character_limit == 5000
    assert subscription.can_use_instant_voice_cloning
    assert second.user.subscription.get().character_count == 0
    user = first.user.get()
    assert user.subscription.character_count == len(FAST_TTS["text"])
    assert user.xi_api_key_preview is None  # keys shorter than 8 characters are not previewed
    assert user.user_id != second.user.get().user_id
    quota = make_engine(character_quota=1234)
    assert sdk_for(quota).user.subscription.get().character_limit == 1234


@pytest.fixture(scope="module")
def history_engine(make_engine: Callable[..., EngineHandle]) -> tuple[EngineHandle, list[str]]:
    handle = make_engine()
    client = sdk_for(handle)
    ids = []
    for text in ("First item.", "Second item.", "Third item."):
        with client.text_to_speech.with_raw_response.convert(
            FAST_VOICE_ID, **{**FAST_TTS, "text": text}
        ) as response:
            b"".join(response.data)
            ids.append(response.headers["history-item-id"])
    return handle, ids


def test_history_pages_newest_first(history_engine) -> None:
    handle, ids = history_engine
    client = sdk_for(handle)
    page = client.history.list(page_size=2)
    assert [item.history_item_id for item in page.history] == [ids[2], ids[1]]
    assert page.has_more is True
    assert page.last_history_item_id == ids[1]
    rest = client.history.list(page_size=2, start_after_history_item_id=page.last_history_item_id)
    assert [item.history_item_id for item in rest.history] == [ids[0]]
    assert rest.has_more is False
    ascending = client.history.list(sort_direction="asc")
    assert [item.history_item_id for item in ascending.history] == ids
    assert [i.text for i in client.history.list(search="second").history] == ["Second item."]
    assert len(client.history.list(voice_id=FAST_VOICE_ID).history) == 3
    assert client.history.list(voice_id="someoneElse").history == []
    with pytest.raises(ApiError) as caught:
        client.history.list(start_after_history_item_id="notAnItem")
    assert caught.value.status_code == 400


def test_history_item_audio_and_delete(history_engine) -> None:
    handle, ids = history_engine
    client = sdk_for(handle)
    item = client.history.get(ids[0])
    assert item.text == "First item."
    assert item.voice_name == "Fast test voice"
    assert item.voice_category == "cloned"
    assert item.output_format == "pcm_16000"
    assert item.content_type == "audio/pcm"
    assert item.character_count_change_to - item.character_count_change_from == len(item.text)
    audio = b"".join(client.history.get_audio(ids[0]))
    assert read_audio(audio, "pcm_16000").duration > 0.5

    assert client.history.delete(ids[0]).status == "ok"
    for call in (client.history.get, client.history.delete):
        with pytest.raises(ApiError) as caught:
            call(ids[0])
        assert caught.value.status_code == 404
        assert caught.value.body["detail"]["status"] == "history_item_not_found"
    with pytest.raises(ApiError) as caught:
        b"".join(client.history.get_audio(ids[0]))
    assert caught.value.status_code == 404
    assert not (handle.config.data_dir / "audio" / "history" / ids[0]).exists()
