"""Batch speech to text over HTTP, with the official SDK as the client.

Speech is made by the engine's own text-to-speech and transcribed back, so every assertion is
about real recognition of real audio.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jiwer
import numpy as np
import pytest
import soundfile as sf
from elevenlabs import (
    ElevenLabs,
    MultichannelSpeechToTextResponseModel,
    SpeechToTextChunkResponseModel,
)
from elevenlabs.core.api_error import ApiError

from prefect_elevenlabs.local.routes.stt import SOURCE_URL_ROOTS_ENV
from prefect_elevenlabs.local.server import EngineHandle
from prefect_elevenlabs.subtitles import parse_srt

from .conftest import ERIC, RACHEL, read_audio

BRIAN = "nPczCjzI2devNBz1zQrb"

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please send the quarterly report to the finance team by Friday.",
    "We walked along the river and talked about the weather.",
    "The children played in the park until it began to rain.",
    "She bought fresh bread and a bottle of olive oil at the market.",
]


def normalise(text: str) -> str:
    """Lower case, punctuation removed, single spaces: what WER is computed on."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def speak(client: ElevenLabs, text: str, voice_id: str = ERIC) -> np.ndarray:
    """16 kHz mono samples of ``text`` spoken by the engine."""
    data = b"".join(client.text_to_speech.convert(voice_id, text=text, output_format="pcm_16000"))
    return read_audio(data, "pcm_16000").samples


def single(result: object) -> SpeechToTextChunkResponseModel:
    """The one-transcript shape of a speech-to-text answer."""
    assert isinstance(result, SpeechToTextChunkResponseModel), type(result)
    return result


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def passage(client: ElevenLabs) -> np.ndarray:
    """The five sentences, spoken in one request."""
    return speak(client, " ".join(SENTENCES))


@pytest.fixture(scope="module")
def transcript(client: ElevenLabs, passage: np.ndarray) -> SpeechToTextChunkResponseModel:
    exports: Any = [
        {"format": "srt", "max_characters_per_line": 30},
        {"format": "txt", "include_timestamps": False},
        {"format": "segmented_json"},
    ]
    response = client.speech_to_text.convert(
        model_id="scribe_v1",
        file=("passage.wav", wav_bytes(passage), "audio/wav"),
        language_code="en",
        additional_formats=exports,
    )
    return single(response)


def test_round_trip_word_error_rate_is_low(transcript: SpeechToTextChunkResponseModel) -> None:
    reference = normalise(" ".join(SENTENCES))
    error = jiwer.wer(reference, normalise(transcript.text))
    assert error <= 0.10, (error, transcript.text)
    assert transcript.language_code == "eng"
    assert 0.5 <= transcript.language_probability <= 1.0


def test_words_alternate_with_spacing_and_are_timed(
    transcript: SpeechToTextChunkResponseModel, passage: np.ndarray
) -> None:
    duration = len(passage) / 16000
    assert transcript.audio_duration_secs == pytest.approx(duration, abs=0.05)
    words = transcript.words
    assert [w.type for w in words[:4]] == ["word", "spacing", "word", "spacing"]
    spoken = [w for w in words if w.type == "word"]
    assert len(spoken) >= 50
    previous_end = 0.0
    for word in spoken:
        assert word.start is not None and word.end is not None and word.logprob is not None
        assert previous_end <= word.start <= word.end <= duration + 1e-6
        assert word.logprob <= 0.0
        previous_end = word.end
    assert " ".join(w.text for w in spoken) == transcript.text
    assert transcript.transcription_id


def test_additional_formats_render_the_transcript(
    transcript: SpeechToTextChunkResponseModel,
) -> None:
    exports = {f.requested_format: f for f in transcript.additional_formats or [] if f}
    assert set(exports) == {"srt", "txt", "segmented_json"}
    srt = exports["srt"]
    assert srt.file_extension == "srt" and not srt.is_base_64_encoded
    cues = parse_srt(srt.content)
    assert len(cues) >= 3
    assert all(len(line) <= 30 for cue in cues for line in cue.lines if " " in line)
    assert normalise(" ".join(cue.text for cue in cues)) == normalise(transcript.text)
    txt = exports["txt"].content
    assert "-->" not in txt and normalise(txt) == normalise(transcript.text)
    segmented = json.loads(exports["segmented_json"].content)
    joined = " ".join(segment["text"] for segment in segmented["segments"])
    assert normalise(joined) == normalise(transcript.text)


def test_stored_transcript_can_be_fetched_and_deleted(
    client: ElevenLabs, transcript: SpeechToTextChunkResponseModel
) -> None:
    stored = client.speech_to_text.transcripts.get(transcript.transcription_id)
    assert stored.text == transcript.text
    client.speech_to_text.transcripts.delete(transcript.transcription_id)
    with pytest.raises(ApiError) as raised:
        client.speech_to_text.transcripts.get(transcript.transcription_id)
    assert raised.value.status_code == 404


def test_character_timestamps_and_three_letter_language(client: ElevenLabs) -> None:
    audio = speak(client, SENTENCES[0])
    result = single(
        client.speech_to_text.convert(
            model_id="scribe_v2",
            file=("fox.wav", wav_bytes(audio), "audio/wav"),
            language_code="eng",
            timestamps_granularity="character",
            keyterms=["fox", "lazy dog"],
        )
    )
    assert normalise(result.text) == normalise(SENTENCES[0])
    for word in result.words:
        assert word.characters is not None
        assert "".join(c.text for c in word.characters) == word.text
        assert word.characters[0].start == pytest.approx(word.start, abs=1e-3)
        assert word.characters[-1].end == pytest.approx(word.end, abs=1e-3)


def test_diarization_tells_two_voices_apart(client: ElevenLabs) -> None:
    lines = [
        (RACHEL, "Good morning, did you sleep well last night?"),
        (BRIAN, "Not really, the neighbours were playing loud music until midnight."),
        (RACHEL, "That sounds awful, you should talk to them today."),
    ]
    gap = np.zeros(8000, dtype=np.float32)
    pieces, spans, cursor = [], [], 0.0
    for voice, text in lines:
        audio = speak(client, text, voice)
        pieces += [audio, gap]
        spans.append((cursor, cursor + len(audio) / 16000))
        cursor += (len(audio) + len(gap)) / 16000
    result = single(
        client.speech_to_text.convert(
            model_id="scribe_v1",
            file=("dialogue.wav", wav_bytes(np.concatenate(pieces)), "audio/wav"),
            language_code="en",
            diarize=True,
            num_speakers=2,
        )
    )
    timed = [(w, (w.start or 0.0) + (w.end or 0.0)) for w in result.words if w.type == "word"]
    majority = []
    for start, end in spans:
        ids = [w.speaker_id for w, twice_middle in timed if start <= twice_middle / 2 <= end]
        assert ids, (start, end, result.text)
        majority.append(max(set(ids), key=ids.count))
    assert majority[0] == majority[2] != majority[1]
    assert {w.speaker_id for w in result.words} == {"speaker_0", "speaker_1"}


def test_each_channel_is_transcribed_on_its_own(client: ElevenLabs) -> None:
    left = speak(client, "Good morning.")
    right = speak(client, "The train is late.")
    stereo = np.zeros((max(len(left), len(right)), 2), dtype=np.float32)
    stereo[: len(left), 0] = left
    stereo[: len(right), 1] = right
    result = client.speech_to_text.convert(
        model_id="scribe_v1",
        file=("stereo.wav", wav_bytes(stereo), "audio/wav"),
        language_code="en",
        use_multi_channel=True,
    )
    assert isinstance(result, MultichannelSpeechToTextResponseModel)
    assert [t.channel_index for t in result.transcripts] == [0, 1]
    assert normalise(result.transcripts[0].text) == "good morning"
    assert normalise(result.transcripts[1].text) == "the train is late"
    assert all(w.channel_index == 1 for w in result.transcripts[1].words)


def test_source_url_reads_files_only_under_allowed_roots(
    engine: EngineHandle,
    client: ElevenLabs,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audio = speak(client, "Good morning.")
    allowed = tmp_path / "media"
    allowed.mkdir()
    (allowed / "hello.wav").write_bytes(wav_bytes(audio))
    outside = tmp_path_factory.mktemp("outside") / "hello.wav"
    outside.write_bytes(wav_bytes(audio))

    refused = httpx.post(
        f"{engine.base_url}/v1/speech-to-text",
        data={"model_id": "scribe_v1", "source_url": f"file://{allowed / 'hello.wav'}"},
    )
    assert refused.status_code == 400
    assert SOURCE_URL_ROOTS_ENV in refused.json()["detail"]["message"]

    monkeypatch.setenv(SOURCE_URL_ROOTS_ENV, str(allowed))
    result = single(
        client.speech_to_text.convert(
            model_id="scribe_v1", source_url=f"file://{allowed / 'hello.wav'}", language_code="en"
        )
    )
    assert normalise(result.text) == "good morning"
    for url in (f"file://{outside}", "https://example.com/talk.mp3"):
        response = httpx.post(
            f"{engine.base_url}/v1/speech-to-text",
            data={"model_id": "scribe_v1", "source_url": url},
        )
        assert response.status_code == 400, url
        assert response.json()["detail"]["param"] == "source_url"


@pytest.mark.parametrize(
    ("fields", "files", "status", "expected"),
    [
        ({"model_id": "scribe_v1"}, {"file": ("notes.txt", b"plain words, no audio")}, 400,
         "not audio"),
        ({"model_id": "eleven_v3"}, {"file": ("a.wav", b"RIFF")}, 400, "scribe_v1"),
        ({}, {"file": ("a.wav", b"RIFF")}, 422, "model_id"),
        ({}, {"model_id": (None, "scribe_v1")}, 400, "exactly one"),
        ({"model_id": "scribe_v1", "additional_formats": json.dumps([{"format": "docx"}])},
         {"file": ("a.wav", b"RIFF")}, 400, "does not produce docx"),
        ({"model_id": "scribe_v1", "entity_detection": '"all"'}, {"file": ("a.wav", b"RIFF")},
         400, "entity detection"),
        ({"model_id": "scribe_v1", "num_speakers": "40"}, {"file": ("a.wav", b"RIFF")}, 422,
         "num_speakers"),
        ({"model_id": "scribe_v1", "language_code": "xx-nope"}, {"file": ("a.wav", b"RIFF")},
         400, "language code"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_with_a_clear_reason(
    engine: EngineHandle, fields: dict, files: dict, status: int, expected: str
) -> None:
    response = httpx.post(f"{engine.base_url}/v1/speech-to-text", data=fields, files=files)
    assert response.status_code == status, response.text
    assert expected in response.text


def test_uploads_over_the_configured_limit_get_413(
    make_engine: Callable[..., EngineHandle],
) -> None:
    small = make_engine(max_upload_mb=0.0625)
    body = wav_bytes(np.zeros(64000, dtype=np.float32))
    response = httpx.post(
        f"{small.base_url}/v1/speech-to-text",
        data={"model_id": "scribe_v1"},
        files={"file": ("big.wav", body, "audio/wav")},
    )
    assert response.status_code == 413
    assert "0.0625 MB" in response.json()["detail"]["message"]


def test_a_single_use_batch_token_stands_in_for_the_key_once(
    make_engine: Callable[..., EngineHandle], passage: np.ndarray
) -> None:
    guarded = make_engine(api_keys=["secret"])
    upload = {"file": ("passage.wav", wav_bytes(passage[: 16000 * 3]), "audio/wav")}
    form = {"model_id": "scribe_v1", "language_code": "en"}
    with httpx.Client(base_url=guarded.base_url, timeout=120) as http:
        def token(kind: str) -> str:
            issued = http.post(f"/v1/single-use-token/{kind}", headers={"xi-api-key": "secret"})
            assert issued.status_code == 200
            return str(issued.json()["token"])

        batch = token("batch_scribe")
        first = http.post("/v1/speech-to-text", params={"token": batch}, data=form, files=upload)
        assert first.status_code == 200, first.text
        assert "fox" in first.json()["text"].lower()
        # The token is used up, and a token of another kind does not open this route.
        again = http.post("/v1/speech-to-text", params={"token": batch}, data=form, files=upload)
        assert again.status_code == 401
        assert "POST /v1/single-use-token/batch_scribe" in again.json()["detail"]["message"]
        realtime = token("realtime_scribe")
        other = http.post("/v1/speech-to-text", params={"token": realtime}, data=form, files=upload)
        assert other.status_code == 401
        # Tokens only stand in on the routes that take them.
        voices = http.get("/v1/voices", params={"token": token("batch_scribe")})
        assert voices.status_code == 401
