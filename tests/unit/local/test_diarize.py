"""Tests for speaker diarization on two clearly different synthetic voices."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prefect_elevenlabs.local.engines import diarize
from prefect_elevenlabs.local.engines.diarize import assign_speakers
from prefect_elevenlabs.local.engines.stt import Word, transcribe

pytestmark = pytest.mark.engine

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells seashells by the seashore every summer morning.",
    "Please send the quarterly report to the finance team before Friday.",
    "We walked along the river until the sun went down behind the hills.",
    "My brother bought a new bicycle and rode it to school.",
    "It is going to rain tomorrow so take an umbrella.",
]
MALE, FEMALE = "en-us+m3", "en-us+f4"

Conversation = tuple[np.ndarray, int, list[Word], list[int]]


def conversation(folder: Path, voices: list[str]) -> Conversation:
    """The sentences read by the voices in turn, with the true speaker index of each word."""
    parts, turns, now, rate = [], [], 0.0, 0
    for i, text in enumerate(SENTENCES):
        path = folder / f"{i}.wav"
        subprocess.run(
            ["espeak-ng", "-v", voices[i % len(voices)], "-w", str(path), text], check=True
        )
        audio, rate = sf.read(path, dtype="float32")
        turns.append((now, now + len(audio) / rate, i % len(voices)))
        pause = np.zeros(int(0.3 * rate), dtype=np.float32)
        parts += [audio, pause]
        now += (len(audio) + len(pause)) / rate
    audio = np.concatenate(parts)
    words = transcribe(audio, sample_rate=rate, language="en").words

    def speaker(word: Word) -> int:
        middle = (word.start + word.end) / 2
        return min(turns, key=lambda t: max(t[0] - middle, middle - t[1], 0.0))[2]

    return audio, rate, words, [speaker(w) for w in words]


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    return conversation(tmp_path_factory.mktemp("two"), [MALE, FEMALE])


@pytest.fixture(scope="module")
def one_voice(tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    return conversation(tmp_path_factory.mktemp("one"), [FEMALE])


def accuracy(words: list[Word], truth: list[int]) -> float:
    predicted = [int(w.speaker_id.removeprefix("speaker_")) for w in words]  # type: ignore[union-attr]
    return float(np.mean(np.array(predicted) == np.array(truth)))


@pytest.mark.parametrize("num_speakers", [2, None])
def test_two_voices_are_told_apart(two_voices: Conversation, num_speakers: int | None) -> None:
    audio, rate, words, truth = two_voices
    assert len(words) > 40
    labelled = assign_speakers(audio, rate, words, num_speakers=num_speakers)
    assert {w.speaker_id for w in labelled} == {"speaker_0", "speaker_1"}
    # Speakers are numbered by first appearance and the male voice speaks first.
    assert labelled[0].speaker_id == "speaker_0"
    assert accuracy(labelled, truth) >= 0.9


def test_words_keep_text_and_times(two_voices: Conversation) -> None:
    audio, rate, words, _ = two_voices
    labelled = assign_speakers(audio, rate, words, num_speakers=2)
    assert [(w.text, w.start, w.end, w.logprob) for w in labelled] == [
        (w.text, w.start, w.end, w.logprob) for w in words
    ]
    assert all(w.speaker_id is None for w in words)  # the input is not modified


def test_integer_pcm_gives_the_same_labels(two_voices: Conversation) -> None:
    audio, rate, words, _ = two_voices
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    assert [w.speaker_id for w in assign_speakers(pcm, rate, words, num_speakers=2)] == [
        w.speaker_id for w in assign_speakers(audio, rate, words, num_speakers=2)
    ]


def test_one_speaker_requested(two_voices: Conversation) -> None:
    audio, rate, words, _ = two_voices
    labelled = assign_speakers(audio, rate, words, num_speakers=1)
    assert {w.speaker_id for w in labelled} == {"speaker_0"}


def test_one_voice_detected_as_one_speaker(one_voice: Conversation) -> None:
    audio, rate, words, _ = one_voice
    assert {w.speaker_id for w in assign_speakers(audio, rate, words)} == {"speaker_0"}


def test_high_threshold_merges_speakers(two_voices: Conversation) -> None:
    audio, rate, words, _ = two_voices
    assert {w.speaker_id for w in assign_speakers(audio, rate, words, threshold=0.9)} == {
        "speaker_0"
    }


def test_smoothing_removes_a_single_stray_word() -> None:
    rng = np.random.default_rng(1)
    data = np.concatenate([rng.normal(0, 0.3, (20, 3)), rng.normal(3, 0.3, (20, 3))])
    data[8] = data[30]  # one word in the first turn that sounds like the second speaker
    labels = np.array([0] * 20 + [1] * 20)
    labels[8] = 1
    smoothed = diarize._smooth(data, labels, switch_penalty=20.0)
    assert smoothed.tolist() == [0] * 20 + [1] * 20


def test_edge_cases() -> None:
    audio = np.zeros(16000, dtype=np.float32)
    assert assign_speakers(audio, 16000, []) == []
    (single,) = assign_speakers(audio, 16000, [Word("hi", 0.1, 0.3)])
    assert single.speaker_id == "speaker_0"
    with pytest.raises(ValueError, match="num_speakers"):
        assign_speakers(audio, 16000, [Word("hi", 0.1, 0.3)], num_speakers=0)
    with pytest.raises(ValueError, match="threshold"):
        assign_speakers(audio, 16000, [Word("hi", 0.1, 0.3)], threshold=1.5)


def test_a_short_single_voice_clip_is_not_split_into_many_speakers() -> None:
    """The bundled 8 s clip (24 words, one piper voice over a test pattern) is one speaker."""
    import subprocess

    from prefect_elevenlabs.local.engines import stt

    clip = Path(__file__).parents[3] / "prefect_elevenlabs" / "assets" / "sample_clip.mp4"
    pcm = subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(clip),
            "-ac",
            "1",
            "-ar",
            "16000",
            "-f",
            "s16le",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    words = stt.transcribe(audio, sample_rate=16000).words
    assert len(words) > 15

    labelled = assign_speakers(audio, 16000, words)

    assert {word.speaker_id for word in labelled} == {"speaker_0"}
