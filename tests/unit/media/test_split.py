from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import Chunk, probe, split_on_silence
from prefect_elevenlabs.media import split as split_module
from prefect_elevenlabs.media.split import plan_cuts

from .conftest import decode, lavfi_audio

# 6 s of tone, 1 s of silence, repeated: pauses at [6, 7], [13, 14], [20, 21], ...
PERIOD, SOUND = 7.0, 6.0


@pytest.fixture(scope="module")
def paused(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s at 16 kHz mono with a one-second pause every seven seconds."""
    folder = tmp_path_factory.mktemp("split-src")
    return lavfi_audio(
        folder / "talk.wav",
        f"aevalsrc=0.3*sin(2*PI*440*t)*lt(mod(t\\,{PERIOD})\\,{SOUND}):s=16000:d=40",
    )


def in_a_pause(t: float) -> bool:
    return SOUND - 1e-3 <= t % PERIOD <= PERIOD + 1e-3


def duration_of(path: Path) -> float:
    """Length in seconds, read from the header (cheap for WAV/FLAC, ffprobe otherwise)."""
    if path.suffix in (".wav", ".flac"):
        return float(soundfile.info(str(path)).duration)
    return probe(path).duration


def check_chunks(chunks: list[Chunk], source: Path, limit: float) -> list[float]:
    """Asserts the invariants every split must keep; returns the measured chunk durations."""
    total = probe(source).duration
    durations = [duration_of(c.path) for c in chunks]
    assert all(d <= limit + 1e-3 for d in durations)
    assert sum(durations) == pytest.approx(total, abs=0.1)
    assert chunks[0].start == 0.0
    assert chunks[-1].end == pytest.approx(total, abs=1e-3)
    for before, after in itertools.pairwise(chunks):
        assert after.start == before.end
    for chunk, duration in zip(chunks, durations, strict=True):
        assert chunk.duration == pytest.approx(duration, abs=0.002)
    return durations


def test_cuts_fall_in_pauses_and_respect_max_duration(
    tmp_path: Path, paused: Path, listing: Callable[[Path], list[str]]
) -> None:
    chunks = split_on_silence(paused, tmp_path / "chunks", max_duration=10.0)
    check_chunks(chunks, paused, 10.0)
    assert len(chunks) == 6
    assert all(in_a_pause(c.start) for c in chunks[1:])
    assert listing(tmp_path / "chunks") == [f"talk-{i:03d}.wav" for i in range(6)]
    info = probe(chunks[0].path)
    assert (info.audio_codec, info.sample_rate, info.channels) == ("pcm_s16le", 16000, 1)


def test_chunks_are_sample_exact_slices_of_the_source(tmp_path: Path, paused: Path) -> None:
    source, rate = decode(paused)
    chunks = split_on_silence(paused, tmp_path, max_duration=9.0)
    for chunk in chunks:
        piece, piece_rate = decode(chunk.path)
        assert piece_rate == rate
        start = round(chunk.start * rate)
        assert np.array_equal(piece, source[start : start + len(piece)])
    assert sum(len(decode(c.path)[0]) for c in chunks) == len(source)


def test_many_chunks_are_written_in_several_runs(
    tmp_path: Path, paused: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(split_module, "_CHUNKS_PER_RUN", 3)
    source, rate = decode(paused)
    chunks = split_on_silence(paused, tmp_path, max_duration=4.0)
    check_chunks(chunks, paused, 4.0)
    assert len(chunks) > 6
    for chunk in chunks:
        piece, _ = decode(chunk.path)
        start = round(chunk.start * rate)
        assert np.array_equal(piece, source[start : start + len(piece)])


def test_stretch_without_pauses_is_cut_hard_at_the_limit(tmp_path: Path) -> None:
    drone = lavfi_audio(tmp_path / "drone.wav", "sine=f=300:d=25:r=16000")
    chunks = split_on_silence(drone, tmp_path / "out", max_duration=8.0)
    durations = check_chunks(chunks, drone, 8.0)
    assert durations == pytest.approx([8.0, 8.0, 8.0, 1.0], abs=1e-3)


@pytest.mark.parametrize(("fmt", "max_bytes"), [("wav", 150_000), ("mp3", 100_000)])
def test_max_bytes_is_respected(tmp_path: Path, paused: Path, fmt: str, max_bytes: int) -> None:
    chunks = split_on_silence(paused, tmp_path, max_duration=30.0, max_bytes=max_bytes, format=fmt)
    assert len(chunks) > 1
    assert all(c.path.suffix == f".{fmt}" for c in chunks)
    assert all(c.path.stat().st_size <= max_bytes for c in chunks)
    assert sum(c.duration for c in chunks) == pytest.approx(40.0, abs=0.01)
    durations = [duration_of(c.path) for c in chunks]
    # Lossy encoders add a few ms of padding per chunk; the total stays within 0.1 s per chunk.
    assert sum(durations) == pytest.approx(40.0, abs=0.1 * len(chunks) if fmt == "mp3" else 0.1)


def test_format_and_rate_conversion(tmp_path: Path, noise_wav: Path) -> None:
    chunks = split_on_silence(
        noise_wav, tmp_path, max_duration=2.0, format="flac", sample_rate=8000
    )
    check_chunks(chunks, noise_wav, 2.0)
    info = probe(chunks[0].path)
    assert (info.audio_codec, info.sample_rate, info.channels) == ("flac", 8000, 1)


def test_opus_chunks_restart_their_clock(tmp_path: Path, paused: Path) -> None:
    chunks = split_on_silence(paused, tmp_path, max_duration=10.0, format="opus")
    durations = [probe(c.path).duration for c in chunks]
    assert durations == pytest.approx([c.duration for c in chunks], abs=0.03)


def test_short_input_is_one_chunk(tmp_path: Path, video_with_audio: Path) -> None:
    chunks = split_on_silence(video_with_audio, tmp_path)
    assert [c.path.name for c in chunks] == ["video-000.wav"]
    assert chunks[0].end == pytest.approx(2.0, abs=0.1)
    assert not probe(chunks[0].path).has_video


def test_plan_cuts() -> None:
    # Latest pause within the limit, cut a quarter second before speech resumes.
    assert plan_cuts(25.0, [(3.0, 4.0), (8.0, 9.0)], 10.0) == [8.75, 18.75]
    # A pause straddling the limit is cut at the limit.
    assert plan_cuts(15.0, [(9.0, 12.0)], 10.0) == [10.0]
    # No pause: hard cuts.
    assert plan_cuts(21.0, [], 10.0) == [10.0, 20.0]
    assert plan_cuts(10.0, [], 10.0) == []


def test_bad_arguments(tmp_path: Path, paused: Path, video_without_audio: Path) -> None:
    with pytest.raises(MediaError, match="format 'aiff' is not supported"):
        split_on_silence(paused, tmp_path, format="aiff")
    with pytest.raises(MediaError, match="max_bytes=2000 leaves room for less than a second"):
        split_on_silence(paused, tmp_path, max_bytes=2000)
    with pytest.raises(MediaError, match="max_duration must be a positive"):
        split_on_silence(paused, tmp_path, max_duration=0)
    with pytest.raises(MediaError, match=r"silent-video\.mp4 has no audio stream"):
        split_on_silence(video_without_audio, tmp_path)
    assert list(tmp_path.iterdir()) == []
