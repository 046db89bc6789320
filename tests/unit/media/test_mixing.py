from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import mix_over, probe
from prefect_elevenlabs.media.mixing import duck_intervals

from .conftest import decode, ffmpeg_run, lavfi_audio, rms, speak, tone_amplitude

BG_FREQ = 80.0
BG_AMPLITUDE = 0.2


def band(samples: np.ndarray, rate: int, low: float, high: float) -> np.ndarray:
    """The part of a mono signal between ``low`` and ``high`` Hz (FFT brick-wall filter)."""
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, len(samples))


def window(samples: np.ndarray, rate: int, start: float, end: float) -> np.ndarray:
    return samples[int(start * rate) : int(end * rate)]


@pytest.fixture(scope="module")
def background(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of an 80 Hz hum at 44.1 kHz stereo: easy to tell apart from speech."""
    folder = tmp_path_factory.mktemp("mix")
    return lavfi_audio(
        folder / "bed.wav",
        f"aevalsrc={BG_AMPLITUDE}*sin(2*PI*{BG_FREQ}*t):c=stereo:s=44100:d=8",
        rate=44100,
        channels=2,
    )


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """espeak-ng speech with everything below 400 Hz removed, so it never hides the hum."""
    folder = tmp_path_factory.mktemp("voice")
    raw = speak(folder / "raw.wav", "Welcome back to the show.")
    clean = folder / "voice.wav"
    ffmpeg_run("-i", str(raw), "-af", "highpass=f=400:poles=2,highpass=f=400:poles=2", str(clean))
    return clean


def test_background_length_and_format_are_kept(
    tmp_path: Path, background: Path, voice: Path
) -> None:
    out = mix_over(background, [(voice, 1.0), (str(voice), 4.5)], tmp_path / "mix.wav")
    info = probe(out)
    assert info.duration == pytest.approx(8.0, abs=0.01)
    assert (info.sample_rate, info.channels) == (44100, 2)


def test_background_is_ducked_under_speech_only(
    tmp_path: Path, background: Path, voice: Path
) -> None:
    speech_len = probe(voice).duration
    out = mix_over(background, [(voice, 1.0)], tmp_path / "mix.wav", duck_db=-12.0)
    samples, rate = decode(out)
    bed = band(samples[:, 0], rate, 40, 150)
    under = rms(window(bed, rate, 1.05, 1.0 + speech_len - 0.05))
    before = rms(window(bed, rate, 0.0, 0.8))
    after = rms(window(bed, rate, 1.0 + speech_len + 0.5, 8.0))
    assert before == pytest.approx(BG_AMPLITUDE / np.sqrt(2), rel=0.03)
    assert after == pytest.approx(before, rel=0.03)
    assert under / before == pytest.approx(10 ** (-12 / 20), rel=0.08)
    # The speech itself is there, starting on time, at full level: mono speech is centred on a
    # stereo background at -3 dB per channel, which keeps its loudness.
    voice_samples, _ = decode(voice, rate=rate)
    speech_band = band(samples[:, 0], rate, 400, 8000)
    assert rms(window(speech_band, rate, 0.0, 0.95)) < 0.002
    assert rms(window(speech_band, rate, 1.0, 1.0 + speech_len)) == pytest.approx(
        rms(voice_samples[:, 0]) / np.sqrt(2), rel=0.1
    )


def test_no_ducking_when_duck_db_is_zero(tmp_path: Path, background: Path, voice: Path) -> None:
    out = mix_over(background, [(voice, 1.0)], tmp_path / "mix.wav", duck_db=0.0)
    samples, rate = decode(out)
    bed = band(samples[:, 0], rate, 40, 150)
    assert rms(window(bed, rate, 1.1, 1.6)) == pytest.approx(rms(window(bed, rate, 6, 8)), rel=0.03)


def test_background_gain_applies_throughout(tmp_path: Path, background: Path) -> None:
    out = mix_over(background, [], tmp_path / "quieter.wav", background_gain_db=-6.0)
    samples, rate = decode(out)
    assert tone_amplitude(samples[:, 1], rate, BG_FREQ) == pytest.approx(
        BG_AMPLITUDE * 10 ** (-6 / 20), rel=0.02
    )


def test_dozens_of_segments_land_on_time_at_full_level(tmp_path: Path, background: Path) -> None:
    burst = lavfi_audio(
        tmp_path / "burst.wav", "aevalsrc=0.3*sin(2*PI*1000*t):s=22050:d=0.1", rate=22050
    )
    starts = [0.18 * i for i in range(40)]
    overlapping = [s + 0.05 for s in starts[:5]]  # these need a second lane
    segments = [(burst, s) for s in starts + overlapping]
    segments.append((burst, 7.97))  # runs past the end: cut
    segments.append((burst, 9.0))  # starts after the end: dropped
    out = mix_over(background, segments, tmp_path / "busy.wav")
    assert probe(out).duration == pytest.approx(8.0, abs=0.01)
    samples, rate = decode(out)
    tone = band(samples[:, 0], rate, 900, 1100)
    for start in starts[10:]:
        # Full level while each burst plays (no 1/N scaling from the mixer): RMS of a 0.3 sine,
        # centred at -3 dB per channel.
        assert rms(window(tone, rate, start + 0.02, start + 0.08)) == pytest.approx(
            0.3 / np.sqrt(2) / np.sqrt(2), rel=0.1
        )
        assert rms(window(tone, rate, start + 0.125, start + 0.155)) < 0.02


def test_duck_intervals_merge_close_speech() -> None:
    assert duck_intervals([(5.0, 6.0), (1.0, 2.0), (2.1, 2.5)]) == [(1.0, 2.5), (5.0, 6.0)]
    assert duck_intervals([]) == []


def test_bad_segments_are_rejected(tmp_path: Path, background: Path, voice: Path) -> None:
    with pytest.raises(MediaError, match=r"voice\.wav has start -1\.0"):
        mix_over(background, [(voice, -1.0)], tmp_path / "x.wav")
    with pytest.raises(MediaError, match=r"gone\.wav does not exist"):
        mix_over(background, [(tmp_path / "gone.wav", 1.0)], tmp_path / "x.wav")
    with pytest.raises(MediaError, match="duck_db must be zero or negative"):
        mix_over(background, [(voice, 1.0)], tmp_path / "x.wav", duck_db=6.0)
    with pytest.raises(MediaError, match=r"\(path, start_seconds\) pair"):
        mix_over(background, [voice], tmp_path / "x.wav")  # type: ignore[list-item]
    assert not (tmp_path / "x.wav").exists()


def test_background_file_may_also_be_a_segment(tmp_path: Path, tone_wav: Path) -> None:
    out = mix_over(tone_wav, [(tone_wav, 1.0)], tmp_path / "echo.wav", duck_db=-6.0)
    samples, rate = decode(out)
    assert len(samples) == 3 * rate
    alone = rms(window(samples[:, 0], rate, 0.1, 0.5))
    together = rms(window(samples[:, 0], rate, 1.2, 2.9))
    # The copy starts a whole number of 440 Hz cycles later, so it adds in phase to the
    # background, which is ducked to half: 0.5 + 1.0 times the original level.
    assert together / alone == pytest.approx(1.5, rel=0.03)
