"""A failed run never leaves a partial file at the destination or debris beside it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import (
    FFMPEG_ENV,
    concat,
    convert,
    extract_audio,
    fit_to_duration,
    normalize_loudness,
    probe,
)

from .conftest import FFMPEG


def test_encoder_rejected_by_container_leaves_nothing(
    tmp_path: Path, tone_wav: Path, listing: Callable[[Path], list[str]]
) -> None:
    # Plain ffmpeg creates out.wav before the WAV muxer refuses Opus, leaving a stub behind.
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(MediaError) as caught:
        extract_audio(tone_wav, out_dir / "speech.wav", codec="libopus")
    assert "tone.wav" in str(caught.value)
    assert "not supported in WAVE format" in str(caught.value)
    assert caught.value.status == "unsupported_media"
    assert listing(out_dir) == []


def test_failure_keeps_the_previous_file_intact(
    tmp_path: Path, tone_wav: Path, noise_wav: Path, listing: Callable[[Path], list[str]]
) -> None:
    dest = tmp_path / "result.wav"
    convert(noise_wav, dest)
    before = dest.read_bytes()
    with pytest.raises(MediaError):
        extract_audio(tone_wav, dest, codec="libopus")
    assert dest.read_bytes() == before
    assert listing(tmp_path) == ["result.wav"]


@pytest.fixture
def half_writing_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ffmpeg that dies after writing half of any output file, as a crash would.

    Runs that write no file (measurement passes) go to the real ffmpeg. Returns the log where
    each half-written path is recorded.
    """
    assert FFMPEG is not None
    log = tmp_path / "half-written.log"
    script = tmp_path / "bin" / "ffmpeg"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'for arg; do case "$arg" in *.partial.*)\n'
        f'  head -c 4096 /dev/urandom > "$arg"; echo "$arg" >> "{log}"\n'
        '  echo "Error while decoding stream #0:0: Invalid data found when processing input" >&2\n'
        "  exit 1;;\n"
        "esac; done\n"
        f'exec "{FFMPEG}" "$@"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv(FFMPEG_ENV, str(script))
    return log


@pytest.mark.parametrize(
    "operation",
    [
        lambda src, dest: convert(src, dest),
        lambda src, dest: normalize_loudness(src, dest),
        lambda src, dest: fit_to_duration(src, dest, 2.0),
        lambda src, dest: concat([src, src], dest),
    ],
    ids=["convert", "normalize_loudness", "fit_to_duration", "concat"],
)
def test_crash_mid_write_leaves_no_file(
    tmp_path: Path,
    half_writing_ffmpeg: Path,
    tone_wav: Path,
    listing: Callable[[Path], list[str]],
    operation: Callable[[Path, Path], object],
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(MediaError) as caught:
        operation(tone_wav, out_dir / "result.wav")
    assert "tone.wav" in str(caught.value)
    assert caught.value.status == "media_corrupt"
    written = half_writing_ffmpeg.read_text().split()
    assert len(written) == 1 and Path(written[0]).parent == out_dir
    assert listing(out_dir) == []


def test_success_leaves_only_the_destination(
    tmp_path: Path, tone_wav: Path, listing: Callable[[Path], list[str]]
) -> None:
    convert(tone_wav, tmp_path / "a.mp3")
    assert listing(tmp_path) == ["a.mp3"]
    assert probe(tmp_path / "a.mp3").audio_codec == "mp3"
