from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import concat, probe

from .conftest import decode, lavfi_audio, rms


def decoded_length(path: Path) -> float:
    """Seconds of audio a decoder actually yields (headers can count encoder padding too)."""
    samples, rate = decode(path)
    return len(samples) / rate


@pytest.fixture(scope="module")
def mixed_inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three clips with different codecs, rates and channel counts: 1.0 s, 1.5 s, 0.75 s."""
    folder = tmp_path_factory.mktemp("concat-src")
    return [
        lavfi_audio(folder / "a.wav", "sine=f=300:d=1:r=16000", rate=16000),
        lavfi_audio(folder / "b.flac", "sine=f=600:d=1.5:r=48000", rate=48000, channels=2),
        lavfi_audio(folder / "c.mp3", "sine=f=900:d=0.75:r=22050", rate=22050),
    ]


@pytest.fixture(scope="module")
def total_length(mixed_inputs: list[Path]) -> float:
    return sum(decoded_length(p) for p in mixed_inputs)


def test_length_is_the_sum_and_format_the_richest(
    tmp_path: Path, mixed_inputs: list[Path], total_length: float
) -> None:
    expected = total_length
    out = concat(mixed_inputs, tmp_path / "joined.wav")
    info = probe(out)
    assert info.duration == pytest.approx(expected, abs=0.03)
    assert (info.sample_rate, info.channels) == (48000, 2)
    samples, rate = decode(out)
    # The clips play in order: 300 Hz, then 600 Hz, then 900 Hz.
    for start, end, freq in [(0.2, 0.8, 300), (1.2, 2.3, 600), (2.6, 3.1, 900)]:
        piece = samples[int(start * rate) : int(end * rate), 0]
        spectrum = np.abs(np.fft.rfft(piece))
        peak = np.fft.rfftfreq(len(piece), 1 / rate)[int(np.argmax(spectrum))]
        assert peak == pytest.approx(freq, abs=5)


def test_gaps_add_silence_between_clips(
    tmp_path: Path, mixed_inputs: list[Path], total_length: float
) -> None:
    expected = total_length + 2 * 0.5
    out = concat([str(p) for p in mixed_inputs], tmp_path / "gapped.mp3", gap_seconds=0.5)
    info = probe(out)
    assert info.audio_codec == "mp3"
    assert info.duration == pytest.approx(expected, abs=0.08)  # mp3 adds encoder padding
    samples, rate = decode(out)
    assert rms(samples[int(1.05 * rate) : int(1.45 * rate)]) < 1e-3
    assert rms(samples[int(0.2 * rate) : int(0.8 * rate)]) > 0.05


def test_crossfades_overlap_neighbours(
    tmp_path: Path, mixed_inputs: list[Path], total_length: float
) -> None:
    expected = total_length - 2 * 0.25
    out = concat(mixed_inputs, tmp_path / "faded.flac", crossfade_seconds=0.25)
    info = probe(out)
    assert info.duration == pytest.approx(expected, abs=0.03)
    samples, rate = decode(out)
    # No silent dip where the first two clips meet.
    assert rms(samples[int(0.8 * rate) : int(1.0 * rate)]) > 0.03


def test_the_same_file_may_repeat(tmp_path: Path, tone_wav: Path) -> None:
    out = concat([tone_wav, tone_wav, tone_wav], tmp_path / "thrice.wav", gap_seconds=0.1)
    assert probe(out).duration == pytest.approx(9.2, abs=0.01)


def test_single_input_is_a_conversion(tmp_path: Path, tone_wav: Path) -> None:
    out = concat([tone_wav], tmp_path / "one.ogg")
    info = probe(out)
    assert info.audio_codec == "opus"
    assert info.duration == pytest.approx(3.0, abs=0.03)


def test_bad_arguments(tmp_path: Path, tone_wav: Path, video_without_audio: Path) -> None:
    with pytest.raises(MediaError, match="at least one input"):
        concat([], tmp_path / "x.wav")
    with pytest.raises(MediaError, match="list of paths, not a single path"):
        concat(str(tone_wav), tmp_path / "x.wav")
    with pytest.raises(MediaError, match="not both"):
        concat([tone_wav, tone_wav], tmp_path / "x.wav", gap_seconds=1, crossfade_seconds=1)
    with pytest.raises(MediaError, match=r"tone\.wav is shorter than crossfade_seconds=5"):
        concat([tone_wav, tone_wav], tmp_path / "x.wav", crossfade_seconds=5)
    with pytest.raises(MediaError, match=r"silent-video\.mp4 has no audio stream"):
        concat([tone_wav, video_without_audio], tmp_path / "x.wav")
    with pytest.raises(MediaError, match="gap_seconds must be >= 0"):
        concat([tone_wav], tmp_path / "x.wav", gap_seconds=-1)
    assert list(tmp_path.iterdir()) == []
