"""Clips shorter than loudnorm's 3 s window still reach the target loudness."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from prefect_elevenlabs.media import normalize_loudness, probe
from prefect_elevenlabs.media.loudness import measure_loudness

TARGET = -16.0


def quiet_speech(tmp_path: Path, seconds: float) -> Path:
    """espeak-ng speech turned down 14 dB, padded or cut to exactly ``seconds``."""
    raw = tmp_path / f"raw-{seconds}.wav"
    subprocess.run(
        ["espeak-ng", "-s", "190", "-w", str(raw), "Hello there friend, a short clip."],
        check=True,
    )
    clip = tmp_path / f"clip-{seconds}.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(raw),
            "-af",
            f"volume=-14dB,apad=whole_dur={seconds},atrim=0:{seconds}",
            str(clip),
        ],
        check=True,
    )
    return clip


@pytest.mark.parametrize("seconds", [1.0, 2.0])
def test_a_short_clip_lands_near_the_target_and_keeps_its_length(tmp_path, seconds):
    clip = quiet_speech(tmp_path, seconds)
    assert measure_loudness(clip).integrated_lufs < TARGET - 10

    out = normalize_loudness(clip, tmp_path / "out.wav", target_lufs=TARGET, true_peak_db=-1.5)

    loudness = measure_loudness(out)
    assert loudness.integrated_lufs == pytest.approx(TARGET, abs=2.5)
    assert loudness.true_peak_db <= -1.0
    assert probe(out).duration == pytest.approx(seconds, abs=0.02)


def test_a_short_clip_is_as_loud_as_a_long_one_after_normalising(tmp_path):
    short = normalize_loudness(quiet_speech(tmp_path, 1.5), tmp_path / "short.wav")
    long = normalize_loudness(quiet_speech(tmp_path, 6.0), tmp_path / "long.wav")

    difference = measure_loudness(short).integrated_lufs - measure_loudness(long).integrated_lufs
    assert abs(difference) < 1.5
