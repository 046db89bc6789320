"""Text-to-speech routes through the official SDK: audio, formats, timings, errors, history."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable

import httpx
import pytest
from elevenlabs import VoiceSettings
from elevenlabs.core.api_error import ApiError
from elevenlabs.errors import UnprocessableEntityError

from prefect_elevenlabs.local.server import EngineHandle

from .conftest import ERIC, FAST_TTS, FAST_VOICE_ID, RACHEL, read_audio, rms

pytestmark = pytest.mark.engine

SENTENCES = "The quick brown fox jumps over the lazy dog. It was a sunny day. We went home."


def _convert(client, voice_id: str, **kwargs) -> tuple[bytes, dict[str, str]]:
    with client.text_to_speech.with_raw_response.convert(voice_id, **kwargs) as response:
        return b"".join(response.data), dict(response.headers)


def test_convert_returns_real_mp3_speech_with_the_standard_headers(client) -> None:
    text = "Hello from the local engine."
    audio, headers = _convert(client, RACHEL, text=text)
    decoded = read_audio(audio)
    assert headers["content-type"] == "audio/mpeg"
    assert decoded.sample_rate == 44100
    assert 1.0 < decoded.duration < 5.0
    assert rms(decoded.samples) > 0.02
    assert headers["character-cost"] == str(len(text))
    assert headers["history-item-id"]
    assert len(headers["request-id"]) == 32
    assert headers["current-concurrent-requests"] == "1"


def test_the_speech_is_intelligible() -> None:
    # Whisper must hear the words piper was asked to say.
    from prefect_elevenlabs.local.engines.stt import transcribe
    from prefect_elevenlabs.local.engines.tts import synthesize
    from prefect_elevenlabs.local.engines.voices import premade_voice

    profile = premade_voice(ERIC).profile
    speech = synthesize("The quick brown fox jumps over the lazy dog.", profile=profile, seed=1)
    heard = transcribe(speech.samples, sample_rate=speech.sample_rate, language="en")
    words = heard.text.lower().replace(".", "").replace(",", "").split()
    assert {"quick", "brown", "fox", "lazy", "dog"} <= set(words)


@pytest.mark.parametrize(
    ("output_format", "rate"),
    [("pcm_16000", 16000), ("wav_22050", 22050), ("opus_48000_64", 48000)],
)
def test_convert_formats(client, output_format: str, rate: int) -> None:
    audio, headers = _convert(
        client, FAST_VOICE_ID, text="Testing formats.", output_format=output_format
    )
    decoded = read_audio(audio, output_format)
    assert decoded.sample_rate == rate
    assert decoded.duration > 0.5
    assert rms(decoded.samples) > 0.01
    expected_type = {"pcm": "audio/pcm", "wav": "audio/wav", "opus": "audio/opus"}
    assert headers["content-type"] == expected_type[output_format.split("_")[0]]


def test_output_format_is_checked_against_the_route_set(client) -> None:
    with pytest.raises(UnprocessableEntityError) as caught:
        b"".join(client.text_to_speech.stream(FAST_VOICE_ID, text="x", output_format="wav_16000"))
    assert caught.value.body["detail"][0]["loc"] == ["query", "output_format"]
    with pytest.raises(UnprocessableEntityError):
        b"".join(
            client.text_to_speech.convert(FAST_VOICE_ID, text="x", output_format="mp3_48000_192")
        )


def test_stream_sends_audio_sentence_by_sentence(client) -> None:
    with client.text_to_speech.with_raw_response.stream(
        ERIC, text=SENTENCES, output_format="pcm_22050"
    ) as response:
        chunks = [chunk for chunk in response.data]
        headers = dict(response.headers)
    assert "content-length" not in headers
    assert headers["character-cost"] == str(len(SENTENCES))
    assert len(chunks) > 3
    decoded = read_audio(b"".join(chunks), "pcm_22050")
    assert decoded.duration > 3.0
    assert rms(decoded.samples) > 0.02
    history = client.history.get(headers["history-item-id"])
    assert history.text == SENTENCES
    stored = b"".join(client.history.get_audio(headers["history-item-id"]))
    assert stored == b"".join(chunks)


def test_stream_mp3_decodes_as_one_file(client) -> None:
    audio = b"".join(client.text_to_speech.stream(FAST_VOICE_ID, text=SENTENCES))
    decoded = read_audio(audio)
    assert decoded.sample_rate == 44100
    assert decoded.duration > 3.0


def _check_alignment(chars, starts, ends, text: str, duration: float) -> None:
    assert "".join(chars) == text
    assert len(starts) == len(ends) == len(text)
    assert all(a <= b for a, b in zip(starts, ends, strict=True))
    assert all(a <= b + 1e-6 for a, b in itertools.pairwise(starts))
    assert ends[-1] <= duration + 0.05


def test_convert_with_timestamps(client) -> None:
    text = "Timing every character. Twice over."
    result = client.text_to_speech.convert_with_timestamps(
        ERIC, text=text, output_format="pcm_16000"
    )
    decoded = read_audio(base64.b64decode(result.audio_base_64), "pcm_16000")
    assert decoded.duration > 1.0
    alignment = result.alignment
    assert alignment is not None
    _check_alignment(
        alignment.characters,
        alignment.character_start_times_seconds,
        alignment.character_end_times_seconds,
        text,
        decoded.duration,
    )
    assert result.normalized_alignment is not None
    # Speech fills most of the audio.
    assert alignment.character_end_times_seconds[-1] > 0.6 * decoded.duration


def test_stream_with_timestamps_is_ndjson_with_absolute_times(client, engine: EngineHandle) -> None:
    chunks = list(
        client.text_to_speech.stream_with_timestamps(
            FAST_VOICE_ID, text=SENTENCES, output_format="pcm_16000"
        )
    )
    assert len(chunks) >= 2
    audio = b"".join(base64.b64decode(chunk.audio_base_64) for chunk in chunks)
    duration = read_audio(audio, "pcm_16000").duration
    chars: list[str] = []
    starts: list[float] = []
    ends: list[float] = []
    timed = [chunk.alignment for chunk in chunks if chunk.alignment is not None]
    assert len(timed) == 3  # one per sentence
    for alignment in timed:
        chars += alignment.characters
        starts += alignment.character_start_times_seconds
        ends += alignment.character_end_times_seconds
    _check_alignment(chars, starts, ends, SENTENCES, duration)
    # Absolute: the last sentence starts well after the first one ended.
    assert timed[-1].character_start_times_seconds[0] > timed[0].character_end_times_seconds[-1]

    raw = httpx.post(
        f"{engine.base_url}/v1/text-to-speech/{FAST_VOICE_ID}/stream/with-timestamps",
        json={"text": "One. Two."},
    )
    assert raw.headers["content-type"] == "application/x-ndjson"
    lines = raw.text.splitlines()
    assert lines and all(line.startswith('{"audio_base64":') for line in lines)


def test_seed_gives_identical_audio_and_voices_differ(client) -> None:
    text = "Same seed, same voice."
    first, _ = _convert(client, ERIC, text=text, seed=42, output_format="pcm_16000")
    second, _ = _convert(client, ERIC, text=text, seed=42, output_format="pcm_16000")
    other, _ = _convert(client, FAST_VOICE_ID, text=text, seed=42, output_format="pcm_16000")
    assert first == second
    assert first != other


def test_language_code_switches_to_espeak(client) -> None:
    text = "Hola, ¿cómo estás?"
    spanish, _ = _convert(
        client, ERIC, text=text, language_code="es", model_id="eleven_flash_v2_5",
        output_format="pcm_16000", seed=3,
    )  # fmt: skip
    default, _ = _convert(client, ERIC, text=text, output_format="pcm_16000", seed=3)
    assert rms(read_audio(spanish, "pcm_16000").samples) > 0.01
    assert spanish != default
    # English-only models ignore the code, as the API does.
    ignored, _ = _convert(
        client, ERIC, text=text, language_code="es", model_id="eleven_flash_v2",
        output_format="pcm_16000", seed=3,
    )  # fmt: skip
    assert ignored == default
    with pytest.raises(ApiError) as caught:
        _convert(client, FAST_VOICE_ID, text="x", language_code="zz-nowhere")
    assert caught.value.status_code == 400
    assert caught.value.body["detail"]["param"] == "language_code"


def test_voice_settings_change_the_speech(client) -> None:
    text = "Slow and steady."
    normal, _ = _convert(client, FAST_VOICE_ID, text=text, output_format="pcm_16000")
    slow, _ = _convert(
        client, FAST_VOICE_ID, text=text, output_format="pcm_16000",
        voice_settings=VoiceSettings(speed=0.7, stability=0.5),
    )  # fmt: skip
    assert len(slow) > len(normal) * 1.2


def test_unknown_voice_is_404_voice_not_found(client) -> None:
    with pytest.raises(ApiError) as caught:
        b"".join(client.text_to_speech.convert("missingVoice42", text="Hello."))
    assert caught.value.status_code == 404
    detail = caught.value.body["detail"]
    assert detail["status"] == "voice_not_found"
    assert detail["message"] == "A voice with the voice_id missingVoice42 was not found."


def test_unknown_model_is_400_naming_model_id(client) -> None:
    with pytest.raises(ApiError) as caught:
        b"".join(client.text_to_speech.convert(RACHEL, text="Hello.", model_id="eleven_v99"))
    assert caught.value.status_code == 400
    assert caught.value.body["detail"]["param"] == "model_id"
    assert caught.value.body["detail"]["status"] == "model_not_found"


def test_text_over_the_model_limit_is_refused_before_generating(client) -> None:
    before = client.user.subscription.get().character_count
    with pytest.raises(ApiError) as caught:
        b"".join(client.text_to_speech.convert(RACHEL, text="a" * 3001, model_id="eleven_v3"))
    assert caught.value.status_code == 400
    detail = caught.value.body["detail"]
    assert detail["status"] == "max_character_limit_exceeded"
    assert detail["param"] == "text"
    assert client.user.subscription.get().character_count == before


@pytest.mark.parametrize("text", ["", "   \n "])
def test_blank_text_is_400_naming_text(client, text: str) -> None:
    with pytest.raises(ApiError) as caught:
        b"".join(client.text_to_speech.convert(RACHEL, text=text))
    assert caught.value.status_code == 400
    assert caught.value.body["detail"]["param"] == "text"


def test_voice_settings_out_of_range_are_422(client) -> None:
    with pytest.raises(UnprocessableEntityError) as caught:
        b"".join(
            client.text_to_speech.convert(
                RACHEL, text="Hi.", voice_settings=VoiceSettings(speed=2.0)
            )
        )
    detail = caught.value.body["detail"]
    assert detail[0]["loc"] == ["body", "voice_settings", "speed"]


def test_every_documented_field_is_accepted_and_extras_ignored(engine: EngineHandle) -> None:
    body = {
        "text": "All the fields.",
        "model_id": "eleven_turbo_v2_5",
        "language_code": "en",
        "voice_settings": {
            "stability": 0.3, "similarity_boost": 0.9, "style": 0.2,
            "use_speaker_boost": False, "speed": 1.1,
        },
        "pronunciation_dictionary_locators": [
            {"pronunciation_dictionary_id": "dict1", "version_id": None}
        ],
        "seed": 4294967295,
        "previous_text": "Before.",
        "next_text": "After.",
        "previous_request_ids": ["a", "b"],
        "next_request_ids": [],
        "use_pvc_as_ivc": False,
        "apply_text_normalization": "on",
        "apply_language_text_normalization": False,
        "audio_effects": {"distance": 0.5, "pan": 0.0},
        "some_future_field": {"nested": True},
    }  # fmt: skip
    response = httpx.post(
        f"{engine.base_url}/v1/text-to-speech/{FAST_VOICE_ID}",
        params={"output_format": "ulaw_8000", "enable_logging": "false",
                "optimize_streaming_latency": 2},
        json=body,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/basic"
    assert len(response.content) > 4000  # 8000 one-byte samples per second
    # enable_logging=false: zero retention, no history item.
    assert "history-item-id" not in response.headers


def test_characters_are_billed_per_successful_request(
    make_engine: Callable[..., EngineHandle],
) -> None:
    from .conftest import sdk_for

    fresh = sdk_for(make_engine())
    texts = ["One two three.", "Four five."]
    for text in texts:
        _convert(fresh, FAST_VOICE_ID, **{**FAST_TTS, "text": text})
    with pytest.raises(ApiError):
        _convert(fresh, "missingVoice42", **FAST_TTS)
    subscription = fresh.user.subscription.get()
    assert subscription.character_count == sum(len(t) for t in texts)
    history = fresh.history.list().history
    assert [item.text for item in history] == list(reversed(texts))
    assert history[0].character_count_change_to - history[0].character_count_change_from == len(
        texts[1]
    )


def test_history_audio_is_the_returned_audio(client) -> None:
    audio, headers = _convert(client, FAST_VOICE_ID, text="Keep this one.")
    item = client.history.get(headers["history-item-id"])
    assert item.voice_id == FAST_VOICE_ID
    assert item.model_id == "eleven_multilingual_v2"
    assert item.content_type == "audio/mpeg"
    assert item.output_format == "mp3_44100_128"
    assert item.source == "TTS"
    assert b"".join(client.history.get_audio(item.history_item_id)) == audio
