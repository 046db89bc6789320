from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import FitResult, fit_to_duration, probe
from prefect_elevenlabs.media.timing import atempo_factors

from .conftest import decode, rms

TOLERANCE = 0.020  # seconds


def _dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("target", [2.2, 3.9], ids=["faster", "slower"])
def test_fits_by_tempo_alone_and_keeps_pitch(tmp_path: Path, tone_wav: Path, target: float) -> None:
    result = fit_to_duration(tone_wav, tmp_path / "fit.wav", target)
    assert isinstance(result, FitResult)
    assert result.path == tmp_path / "fit.wav"
    assert not result.clamped
    assert result.tempo == pytest.approx(3.0 / target, rel=1e-6)
    assert result.duration == pytest.approx(target, abs=TOLERANCE)
    assert probe(result.path).duration == pytest.approx(target, abs=TOLERANCE)
    samples, rate = decode(result.path)
    assert rate == 16000
    # The tone runs right to the end (stretched, not padded) and its pitch is unchanged.
    assert rms(samples[-int(0.1 * rate) :, 0]) > 0.05
    assert _dominant_frequency(samples[:, 0], rate) == pytest.approx(440, abs=3)


def test_speech_fits_faster_and_slower(tmp_path: Path, speech_wav: Path) -> None:
    source = probe(speech_wav).duration
    for factor in (0.8, 1.3):
        target = source * factor
        result = fit_to_duration(speech_wav, tmp_path / f"fit-{factor}.wav", target)
        assert abs(result.duration - target) <= TOLERANCE
        assert result.tempo == pytest.approx(1 / factor, rel=1e-6)


def test_too_long_is_clamped_then_cut_to_target(tmp_path: Path, tone_wav: Path) -> None:
    result = fit_to_duration(tone_wav, tmp_path / "short.wav", 1.0)
    assert result.clamped
    assert result.tempo == 1.6
    assert result.required_tempo == pytest.approx(3.0)
    assert result.duration == pytest.approx(1.0, abs=TOLERANCE)


def test_too_short_is_clamped_then_padded_with_silence(tmp_path: Path, tone_wav: Path) -> None:
    result = fit_to_duration(tone_wav, tmp_path / "long.wav", 6.0)
    assert result.clamped
    assert result.tempo == 0.75
    assert result.duration == pytest.approx(6.0, abs=TOLERANCE)
    samples, rate = decode(result.path)
    end = int(3.0 / 0.75 * rate)  # where the slowed-down tone stops
    assert rms(samples[end - int(0.3 * rate) : end - int(0.1 * rate)]) > 0.05
    assert rms(samples[end + int(0.1 * rate) :]) == 0.0


def test_without_padding_a_clamped_result_stays_short(tmp_path: Path, tone_wav: Path) -> None:
    result = fit_to_duration(tone_wav, tmp_path / "unpadded.wav", 6.0, pad=False)
    assert result.clamped
    assert result.duration == pytest.approx(4.0, abs=0.05)


def test_large_factors_are_chained(tmp_path: Path, tone_wav: Path) -> None:
    result = fit_to_duration(tone_wav, tmp_path / "fast.wav", 0.6, max_tempo=6.0)
    assert not result.clamped
    assert result.tempo == pytest.approx(5.0)
    assert result.duration == pytest.approx(0.6, abs=TOLERANCE)
    samples, rate = decode(result.path)
    assert rms(samples[-int(0.05 * rate) :, 0]) > 0.05


def test_atempo_factors_stay_in_range() -> None:
    assert atempo_factors(1.25) == [1.25]
    assert atempo_factors(5.0) == [2.0, 2.0, 1.25]
    assert atempo_factors(0.2) == [0.5, 0.5, 0.8]
    for tempo in (0.1, 0.37, 0.5, 2.0, 7.3, 40.0):
        factors = atempo_factors(tempo)
        assert all(0.5 <= f <= 2.0 for f in factors)
        assert float(np.prod(factors)) == pytest.approx(tempo, rel=1e-6)


def test_bad_arguments(tmp_path: Path, tone_wav: Path) -> None:
    with pytest.raises(MediaError, match="target_seconds must be positive"):
        fit_to_duration(tone_wav, tmp_path / "x.wav", 0)
    with pytest.raises(MediaError, match="min_tempo <= max_tempo"):
        fit_to_duration(tone_wav, tmp_path / "x.wav", 2.0, min_tempo=2.0, max_tempo=1.0)
