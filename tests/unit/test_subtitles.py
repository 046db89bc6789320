"""Tests for the subtitle builder, writers and readers."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass

import pytest

from prefect_elevenlabs.subtitles import (
    Cue,
    build_cues,
    parse_srt,
    parse_vtt,
    segments,
    to_srt,
    to_txt,
    to_vtt,
    words_from_alignment,
)

VOCABULARY = [
    *("a", "an", "the", "of", "to", "in", "we", "they", "I", "it", "is", "was", "and", "or"),
    *("but", "river", "bright", "morning", "station", "quarterly", "report", "finance"),
    *("understanding", "extraordinary", "cat", "dog", "walked", "along", "until", "behind"),
    *("hills", "bicycle", "internationalisation", "responsibilities"),
]


@dataclass
class TimedWord:
    text: str
    start: float
    end: float
    speaker_id: str | None = None


def random_words(seed: int, count: int = 400) -> list[TimedWord]:
    """A long, varied transcript: punctuation, pauses, slow words and speaker turns."""
    rng = random.Random(seed)
    words, now, speaker = [], 0.0, 0
    for _ in range(count):
        text = rng.choice(VOCABULARY)
        roll = rng.random()
        if roll < 0.08:
            text += "."
        elif roll < 0.14:
            text += ","
        elif roll < 0.16:
            text += "?"
        duration = rng.uniform(0.1, 0.9) if rng.random() > 0.02 else rng.uniform(2.0, 3.0)
        if rng.random() < 0.05:
            speaker = 1 - speaker
        words.append(TimedWord(text, round(now, 3), round(now + duration, 3), f"speaker_{speaker}"))
        gap = rng.uniform(0.0, 0.2) if rng.random() > 0.07 else rng.uniform(0.5, 2.0)
        now += duration + gap
    return words


def assign_words(cues: list[Cue], words: list[TimedWord]) -> list[list[TimedWord]]:
    """Maps each cue back to the words it shows (no word in VOCABULARY contains a space)."""
    groups, position = [], 0
    for cue in cues:
        count = len(cue.text.split())
        groups.append(words[position : position + count])
        position += count
    assert position == len(words)
    return groups


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_cues_respect_limits_and_keep_every_word(seed: int) -> None:
    words = random_words(seed)
    cues = build_cues(words)

    assert " ".join(c.text for c in cues) == " ".join(w.text for w in words)
    for cue, group in zip(cues, assign_words(cues, words), strict=True):
        assert [w.text for w in group] == cue.text.split()
        assert 1 <= len(cue.lines) <= 2
        assert all(0 < len(line) <= 42 for line in cue.lines)
        assert cue.start == group[0].start and cue.end == group[-1].end
        if len(group) > 1:
            assert cue.end - cue.start <= 7.0
        # Speaker changes, long pauses and sentence ends never fall inside a cue.
        assert {w.speaker_id for w in group} == {cue.speaker}
        for previous, current in itertools.pairwise(group):
            assert current.start - previous.end < 0.8
            assert not previous.text.endswith((".", "?"))


def test_speaker_change_starts_new_cue_even_mid_sentence() -> None:
    words = [
        TimedWord("So", 0.0, 0.2, "speaker_0"),
        TimedWord("what", 0.2, 0.4, "speaker_0"),
        TimedWord("now", 0.4, 0.6, "speaker_1"),
        TimedWord("then", 0.6, 0.8, "speaker_1"),
    ]
    cues = build_cues(words)
    assert [(c.text, c.speaker) for c in cues] == [
        ("So what", "speaker_0"),
        ("now then", "speaker_1"),
    ]
    assert [c.speaker for c in build_cues(words, speaker_labels=False)] == [None, None]


def test_lines_are_balanced() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve"
    words = [TimedWord(t, i * 0.2, i * 0.2 + 0.15) for i, t in enumerate(text.split())]
    (cue,) = build_cues(words)
    assert len(cue.lines) == 2
    assert abs(len(cue.lines[0]) - len(cue.lines[1])) <= 6
    assert " ".join(cue.lines) == text


def test_full_cue_breaks_after_comma() -> None:
    text = (
        "After the long meeting about the budget, we finally went home to rest and "
        "everyone agreed that tomorrow would be better"
    )
    words = [TimedWord(t, i * 0.1, i * 0.1 + 0.08) for i, t in enumerate(text.split())]
    cues = build_cues(words)
    assert cues[0].text.endswith("budget,")


def test_long_word_is_never_split() -> None:
    long_word = "x" * 60
    cues = build_cues([TimedWord("see", 0.0, 0.2), TimedWord(long_word, 0.3, 1.0)])
    assert long_word in [line for cue in cues for line in cue.lines]


def test_elevenlabs_word_dicts_skip_spacing_and_events() -> None:
    words = [
        {"text": "Hello", "start": 0.0, "end": 0.3, "type": "word", "speaker_id": "speaker_0"},
        {"text": " ", "start": 0.3, "end": 0.35, "type": "spacing", "speaker_id": "speaker_0"},
        {"text": "(laughter)", "start": 0.35, "end": 0.9, "type": "audio_event"},
        {"text": "there.", "start": 0.9, "end": 1.2, "type": "word", "speaker_id": "speaker_0"},
    ]
    cues = build_cues(words)
    assert [(c.text, c.start, c.end, c.speaker) for c in cues] == [
        ("Hello there.", 0.0, 1.2, "speaker_0")
    ]


def test_missing_timestamps_are_reported() -> None:
    with pytest.raises(ValueError, match="timestamps"):
        build_cues([{"text": "hi", "start": None, "end": None}])
    with pytest.raises(ValueError, match="before it starts"):
        build_cues([{"text": "hi", "start": 2.0, "end": 1.0}])
    with pytest.raises(ValueError, match="max_chars_per_line"):
        build_cues([], max_chars_per_line=0)


def test_srt_and_vtt_format() -> None:
    cues = [
        Cue(1.0, 2.5, ["Hello <world> & all"], "speaker_0"),
        Cue(3661.25, 3662.0, ["Second line", "two"], None),
    ]
    assert to_srt(cues) == (
        "1\n00:00:01,000 --> 00:00:02,500\n[speaker_0] Hello <world> & all\n\n"
        "2\n01:01:01,250 --> 01:01:02,000\nSecond line\ntwo\n"
    )
    assert to_vtt(cues) == (
        "WEBVTT\n\n"
        "1\n00:00:01.000 --> 00:00:02.500\n<v Speaker 1>Hello &lt;world&gt; &amp; all\n\n"
        "2\n01:01:01.250 --> 01:01:02.000\nSecond line\ntwo\n"
    )


@pytest.mark.parametrize("seed", [5, 6])
def test_srt_and_vtt_round_trip(seed: int) -> None:
    words = random_words(seed, 200)
    words[3].text = "R&D<ok>"
    cues = build_cues(words)
    for text, parse in ((to_srt(cues), parse_srt), (to_vtt(cues), parse_vtt)):
        parsed = parse(text)
        assert len(parsed) == len(cues)
        for got, want in zip(parsed, cues, strict=True):
            assert got.lines == want.lines
            assert got.speaker == want.speaker
            assert got.start == pytest.approx(want.start, abs=5e-4)
            assert got.end == pytest.approx(want.end, abs=5e-4)


def test_parse_vtt_handles_real_world_features() -> None:
    text = (
        "\ufeffWEBVTT - made elsewhere\r\n\r\n"
        "STYLE\r\n::cue { color: yellow }\r\n\r\n"
        "NOTE a comment\r\n\r\n"
        "intro\r\n00:01.500 --> 00:03.000 align:start position:10%\r\n"
        "<v.loud Ana María>Hola <i>amigo</i></v>\r\n\r\n"
        "00:00:04.000 --> 00:00:05.000\r\n<c.yellow>Plain</c> text &amp; more\r\n"
    )
    assert parse_vtt(text) == [
        Cue(1.5, 3.0, ["Hola amigo"], "Ana María"),
        Cue(4.0, 5.0, ["Plain text & more"], None),
    ]
    with pytest.raises(ValueError, match="WEBVTT"):
        parse_vtt("1\n00:00:01.000 --> 00:00:02.000\nhi\n")


def test_srt_sound_descriptions_are_not_speakers() -> None:
    cues = [Cue(0.0, 1.0, ["[music] La la la"]), Cue(1.0, 2.0, ["Hi"], "agent")]
    assert parse_srt(to_srt(cues)) == cues


def test_parse_srt_accepts_json_string_body() -> None:
    srt = (
        "1\n00:00:00,000 --> 00:00:01,500\n[speaker_1] Hola.\n\n"
        "2\n00:00:02,000 --> 00:00:03,000\nAdiós\n"
    )
    assert parse_srt(json.dumps(srt)) == [
        Cue(0.0, 1.5, ["Hola."], "speaker_1"),
        Cue(2.0, 3.0, ["Adiós"], None),
    ]


def test_segments_shape_and_breaks() -> None:
    words = [
        {"text": "Hi", "start": 0.0, "end": 0.2, "speaker_id": "speaker_0", "logprob": -0.1},
        {"text": "there", "start": 0.25, "end": 0.5, "speaker_id": "speaker_0"},
        {"text": "after", "start": 2.0, "end": 2.3, "speaker_id": "speaker_0"},
        {"text": "pause.", "start": 2.35, "end": 2.6, "speaker_id": "speaker_0"},
        {"text": "Yes", "start": 2.7, "end": 2.9, "speaker_id": "speaker_1"},
    ]
    result = segments(words)
    assert [(s["text"], s["start_time"], s["end_time"], s["speaker"]) for s in result] == [
        ("Hi there", 0.0, 0.5, "speaker_0"),
        ("after pause.", 2.0, 2.6, "speaker_0"),
        ("Yes", 2.7, 2.9, "speaker_1"),
    ]
    assert result[0]["words"][0] == {
        "text": "Hi",
        "start": 0.0,
        "end": 0.2,
        "type": "word",
        "speaker_id": "speaker_0",
        "logprob": -0.1,
    }
    short = segments(words, max_segment_chars=5, include_speakers=False)
    assert all(len(s["text"]) <= 5 or " " not in s["text"] for s in short)
    assert {s["speaker"] for s in short} == {None}


def test_to_txt_from_words_and_cues() -> None:
    words = [
        TimedWord("Hello", 0.0, 0.4, "speaker_0"),
        TimedWord("there.", 0.5, 0.9, "speaker_0"),
        TimedWord("Hi!", 1.0, 1.3, "speaker_1"),
    ]
    assert to_txt(words) == "speaker_0: Hello there.\nspeaker_1: Hi!\n"
    assert to_txt(words, include_speakers=False, include_timestamps=True) == (
        "[00:00:00.000 --> 00:00:00.900] Hello there.\n[00:00:01.000 --> 00:00:01.300] Hi!\n"
    )
    assert to_txt(build_cues(words)) == to_txt(words)
    wrapped = to_txt(
        [TimedWord(f"word{i}", i, i + 0.5) for i in range(20)], max_characters_per_line=20
    )
    assert all(len(line) <= 20 for line in wrapped.splitlines())


def test_words_from_alignment() -> None:
    text = "Hi  all, ok"
    starts = [i * 0.1 for i in range(len(text))]
    ends = [s + 0.1 for s in starts]
    words = words_from_alignment(list(text), starts, ends)
    assert [(w["text"], w["start"], w["end"]) for w in words] == [
        ("Hi", 0.0, pytest.approx(0.2)),
        ("all,", pytest.approx(0.4), pytest.approx(0.8)),
        ("ok", pytest.approx(0.9), pytest.approx(1.1)),
    ]
    alignment = {
        "characters": list(text),
        "character_start_times_seconds": starts,
        "character_end_times_seconds": ends,
    }
    assert words_from_alignment(alignment) == words
    assert build_cues(words)[0].text == "Hi all, ok"
    with pytest.raises(ValueError, match="lengths differ"):
        words_from_alignment(["a", "b"], [0.0], [0.1, 0.2])
