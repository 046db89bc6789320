"""Voice catalogue, voice design and cloning, checked on real synthesized speech."""

from __future__ import annotations

import numpy as np
import pytest

from prefect_elevenlabs.local.audio import resample
from prefect_elevenlabs.local.engines.tts import (
    SAMPLE_RATE,
    VoiceProfile,
    reference_f0,
    synthesize,
)
from prefect_elevenlabs.local.engines.voices import (
    DEFAULT_VOICE_ID,
    PREMADE_VOICES,
    design_profiles,
    estimate_f0,
    estimate_syllable_rate,
    premade_voice,
    profile_from_samples,
)

pytestmark = pytest.mark.engine

SAMPLE_TEXT = (
    "I recorded this message in a quiet room. It should be long enough to measure my voice, "
    "with several sentences and a natural pace."
)
TEST_TEXT = "Thank you for calling, how can I help you today?"

EXPECTED_PREMADE = {
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


def semitone_distance(a: float, b: float) -> float:
    return abs(12 * float(np.log2(a / b)))


# --------------------------------------------------------------------------- catalogue


def test_catalogue_has_the_well_known_premade_voices() -> None:
    by_id = {voice.voice_id: voice for voice in PREMADE_VOICES}
    assert len(by_id) == len(PREMADE_VOICES)  # ids are unique
    for voice_id, name in EXPECTED_PREMADE.items():
        assert by_id[voice_id].name == name
    assert DEFAULT_VOICE_ID == "21m00Tcm4TlvDq8ikWAM"
    assert premade_voice(DEFAULT_VOICE_ID) is by_id[DEFAULT_VOICE_ID]
    assert premade_voice("not-a-voice") is None


def test_catalogue_labels_and_profiles_fit_each_other() -> None:
    rachel, daniel = premade_voice("21m00Tcm4TlvDq8ikWAM"), premade_voice("onwK4e9ZLuTAKqWW03F9")
    assert rachel and daniel
    assert rachel.labels == {
        "accent": "american", "description": "calm", "age": "young", "gender": "female",
        "use_case": "narration",
    }  # fmt: skip
    assert (daniel.gender, daniel.accent, daniel.use_case) == ("male", "british", "news")
    for voice in PREMADE_VOICES:
        assert voice.gender in ("male", "female")
        assert voice.profile.variant and voice.profile.variant[0] == voice.gender[0]
        if voice.gender == "female":
            assert voice.profile.pitch_semitones >= 6
        else:
            assert voice.profile.pitch_semitones <= 2
        assert (voice.profile.espeak_voice == "en") == (voice.accent == "british")
    profiles = {voice.profile for voice in PREMADE_VOICES}
    assert len(profiles) == len(PREMADE_VOICES)  # every voice sounds different


def test_premade_female_voice_sounds_higher_than_male() -> None:
    rachel, adam = premade_voice("21m00Tcm4TlvDq8ikWAM"), premade_voice("pNInz6obpgDQGcFmaJgB")
    assert rachel and adam
    high = estimate_f0(synthesize(TEST_TEXT, profile=rachel.profile).samples, SAMPLE_RATE)
    low = estimate_f0(synthesize(TEST_TEXT, profile=adam.profile).samples, SAMPLE_RATE)
    assert high and low
    assert 12 * np.log2(high / low) > 8


# --------------------------------------------------------------------------- design


def test_design_is_deterministic_and_gives_distinct_variants() -> None:
    description = "A warm, calm middle-aged woman with a British accent, reading a story"
    first = design_profiles(description, seed=42)
    assert first == design_profiles(description, seed=42)
    assert len(first) == 3 and len(set(first)) == 3
    pitches = sorted(p.pitch_semitones for p in first)
    assert min(np.diff(pitches)) >= 1.0  # at least a semitone apart: audibly different
    assert all(p.espeak_voice == "en" for p in first)
    assert all(p.variant and p.variant.startswith("f") for p in first)
    assert design_profiles(description, seed=43) != first
    assert len(design_profiles(description, seed=None, count=5)) == 5


def test_design_reads_the_description() -> None:
    def mean_pitch(description: str) -> float:
        return float(np.mean([p.pitch_semitones for p in design_profiles(description, seed=1)]))

    def mean_rate(description: str) -> float:
        return float(np.mean([p.rate for p in design_profiles(description, seed=1)]))

    assert mean_pitch("a young woman with a bright voice") > mean_pitch("a young man") + 6
    assert mean_pitch("a deep, gravelly old man") < mean_pitch("a man") - 3
    assert mean_rate("a fast, energetic announcer") > mean_rate("a slow, calm narrator") * 1.15
    assert design_profiles("a robotic computer voice", seed=1)[0].engine == "espeak"
    with pytest.raises(ValueError, match="count"):
        design_profiles("a man", seed=1, count=0)


def test_designed_variants_sound_different() -> None:
    profiles = design_profiles("an energetic young man", seed=7)
    pitches = [
        estimate_f0(synthesize(TEST_TEXT, profile=p, stability=1.0).samples, SAMPLE_RATE)
        for p in profiles
    ]
    assert all(pitches)
    ordered = sorted(pitches)  # type: ignore[type-var]
    assert semitone_distance(ordered[1], ordered[0]) > 0.5  # type: ignore[arg-type]
    assert semitone_distance(ordered[2], ordered[1]) > 0.5  # type: ignore[arg-type]


# --------------------------------------------------------------------------- analysis


def test_estimate_f0_on_known_signals() -> None:
    t = np.arange(16000) / 16000
    assert estimate_f0(np.sin(2 * np.pi * 150 * t), 16000) == pytest.approx(150, rel=0.01)
    # A buzzy pulse train (rich harmonics, like a glottal source) is still read at its f0.
    pulses = np.zeros(22050, dtype=np.float32)
    pulses[:: 22050 // 220] = 1.0
    buzz = np.convolve(pulses, np.hanning(30), mode="same")
    assert estimate_f0(buzz, 22050) == pytest.approx(220, rel=0.03)
    assert estimate_f0(np.zeros(16000), 16000) is None
    assert estimate_f0(np.zeros(100), 16000) is None
    noise = np.random.default_rng(0).standard_normal(16000) * 0.1
    assert estimate_f0(noise, 16000) is None


def test_syllable_rate_follows_speed() -> None:
    fast = synthesize(SAMPLE_TEXT, profile=VoiceProfile(engine="espeak"), speed=1.5)
    slow = synthesize(SAMPLE_TEXT, profile=VoiceProfile(engine="espeak"), speed=0.7)
    fast_rate = estimate_syllable_rate(fast.samples, SAMPLE_RATE)
    slow_rate = estimate_syllable_rate(slow.samples, SAMPLE_RATE)
    assert fast_rate and slow_rate
    assert fast_rate > slow_rate * 1.4


# --------------------------------------------------------------------------- cloning


def test_clone_of_a_high_voice_sounds_closer_than_the_default() -> None:
    # The "recording": a female espeak voice, resampled to 16 kHz as an upload would be.
    recording = synthesize(
        SAMPLE_TEXT, profile=VoiceProfile(engine="espeak", variant="f2"), stability=1.0
    )
    upload = resample(recording.samples, SAMPLE_RATE, 16000)
    target = estimate_f0(upload, 16000)
    assert target and target > 1.5 * reference_f0("piper")
    profile = profile_from_samples([upload[: len(upload) // 2], upload[len(upload) // 2 :]], 16000)
    assert profile.engine == "piper"
    assert profile.pitch_semitones > 5
    assert profile.variant == "f3"
    cloned = estimate_f0(synthesize(TEST_TEXT, profile=profile).samples, SAMPLE_RATE)
    default = estimate_f0(synthesize(TEST_TEXT, profile=VoiceProfile()).samples, SAMPLE_RATE)
    assert cloned and default
    assert semitone_distance(cloned, target) < semitone_distance(default, target)
    assert semitone_distance(cloned, target) < 3


def test_clone_of_a_low_slow_voice_goes_down_and_slows() -> None:
    recording = synthesize(
        SAMPLE_TEXT, profile=VoiceProfile(pitch_semitones=-5.0, rate=0.8), stability=1.0
    )
    profile = profile_from_samples([recording.samples], SAMPLE_RATE)
    assert -7 < profile.pitch_semitones < -3
    assert profile.rate < 0.92
    assert profile.variant == "m3"


def test_clone_rejects_silence_and_short_samples() -> None:
    with pytest.raises(ValueError, match="no voiced speech"):
        profile_from_samples([np.zeros(16000 * 3, dtype=np.float32)], 16000)
    with pytest.raises(ValueError, match="at least 1 second"):
        profile_from_samples([np.zeros(4000, dtype=np.float32)], 16000)
    with pytest.raises(ValueError, match="at least one"):
        profile_from_samples([], 16000)
