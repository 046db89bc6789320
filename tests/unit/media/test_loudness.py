from __future__ import annotations

import math
from pathlib import Path

import pytest

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import Loudness, measure_loudness, normalize_loudness, probe

from .conftest import lavfi_audio


def test_measure_loudness_of_a_reference_tone(tmp_path: Path) -> None:
    # A 1 kHz sine at -20 dBFS in one channel measures -23 LUFS (EBU R128 / ITU-R BS.1770).
    reference = "aevalsrc=0.1*sin(2*PI*1000*t):s=48000:d=6"
    tone = lavfi_audio(tmp_path / "ref.wav", reference, rate=48000)
    loudness = measure_loudness(tone)
    assert isinstance(loudness, Loudness)
    assert loudness.integrated_lufs == pytest.approx(-23.0, abs=0.5)
    assert loudness.true_peak_db == pytest.approx(-20.0, abs=0.5)
    assert loudness.lra == pytest.approx(0.0, abs=0.5)
    assert loudness.threshold == pytest.approx(-33.0, abs=0.6)


@pytest.mark.parametrize("target", [-16.0, -23.0])
def test_normalize_speech_lands_on_target(tmp_path: Path, speech_wav: Path, target: float) -> None:
    out = normalize_loudness(speech_wav, tmp_path / "norm.wav", target_lufs=target)
    measured = measure_loudness(out)
    assert measured.integrated_lufs == pytest.approx(target, abs=1.0)
    assert measured.true_peak_db <= -1.5 + 0.5
    info = probe(out)
    # loudnorm works at 192 kHz inside; the output keeps the source's rate.
    assert (info.sample_rate, info.channels) == (22050, 1)
    assert info.duration == pytest.approx(probe(speech_wav).duration, abs=0.05)


def test_normalize_quiet_noise_up_into_mp3(tmp_path: Path, noise_wav: Path) -> None:
    before = measure_loudness(noise_wav)
    assert before.integrated_lufs < -25
    out = normalize_loudness(noise_wav, tmp_path / "loud.mp3", target_lufs=-18.0, lra=15.0)
    after = measure_loudness(out)
    assert after.integrated_lufs == pytest.approx(-18.0, abs=1.0)
    info = probe(out)
    assert (info.audio_codec, info.sample_rate, info.channels) == ("mp3", 44100, 2)


def test_silence_is_copied_without_gain(tmp_path: Path) -> None:
    silence = lavfi_audio(tmp_path / "quiet.wav", "anullsrc=r=16000:cl=mono", extra=("-t", "2"))
    assert math.isinf(measure_loudness(silence).integrated_lufs)
    out = normalize_loudness(silence, tmp_path / "still-quiet.wav")
    assert probe(out).duration == pytest.approx(2.0, abs=0.01)
    assert math.isinf(measure_loudness(out).integrated_lufs)


def test_targets_out_of_range_are_rejected(tmp_path: Path, speech_wav: Path) -> None:
    with pytest.raises(MediaError, match=r"target_lufs must be between -70\.0 and -5\.0, got 3"):
        normalize_loudness(speech_wav, tmp_path / "x.wav", target_lufs=3)
    with pytest.raises(MediaError, match="true_peak_db"):
        normalize_loudness(speech_wav, tmp_path / "x.wav", true_peak_db=2)


def test_video_without_audio_has_no_loudness(video_without_audio: Path) -> None:
    with pytest.raises(MediaError, match=r"silent-video\.mp4 has no audio stream"):
        measure_loudness(video_without_audio)
