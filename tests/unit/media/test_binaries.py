"""Which ffmpeg/ffprobe gets run, and probing when there is no ffprobe at all."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import pytest

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import (
    FFMPEG_ENV,
    FFPROBE_ENV,
    convert,
    ffmpeg_binary,
    ffprobe_binary,
    probe,
)

from .conftest import FFMPEG, ffmpeg_run

FFPROBE = shutil.which("ffprobe")


def _logging_wrapper(folder: Path, name: str, real: str, log: Path) -> Path:
    """An executable that records each call in ``log`` and then runs the real binary."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexec "{real}" "$@"\n')
    script.chmod(0o755)
    return script


def test_env_override_is_used_for_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tone_wav: Path
) -> None:
    assert FFMPEG is not None
    log = tmp_path / "calls.log"
    wrapper = _logging_wrapper(tmp_path / "bin", "ffmpeg", FFMPEG, log)
    monkeypatch.setenv(FFMPEG_ENV, str(wrapper))
    assert ffmpeg_binary() == str(wrapper)
    out = convert(tone_wav, tmp_path / "out.flac")
    assert probe(out).audio_codec == "flac"
    calls = log.read_text().splitlines()
    # ffmpeg wrote to a hidden temporary next to the destination, later renamed into place.
    assert any(c.startswith("ffmpeg ") and ".out." in c and ".partial.flac" in c for c in calls)


def test_ffprobe_next_to_overridden_ffmpeg_wins_over_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tone_wav: Path
) -> None:
    assert FFMPEG is not None and FFPROBE is not None
    log = tmp_path / "calls.log"
    ffmpeg = _logging_wrapper(tmp_path / "bin", "ffmpeg", FFMPEG, log)
    ffprobe = _logging_wrapper(tmp_path / "bin", "ffprobe", FFPROBE, log)
    monkeypatch.setenv(FFMPEG_ENV, str(ffmpeg))
    assert ffprobe_binary() == str(ffprobe)
    probe(tone_wav)
    assert log.read_text().startswith("ffprobe ")


def test_ffprobe_env_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tone_wav: Path
) -> None:
    assert FFPROBE is not None
    log = tmp_path / "calls.log"
    wrapper = _logging_wrapper(tmp_path / "probe-bin", "my-ffprobe", FFPROBE, log)
    monkeypatch.setenv(FFPROBE_ENV, str(wrapper))
    assert probe(tone_wav).sample_rate == 16000
    assert log.read_text().startswith("my-ffprobe ")


def test_bad_override_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FFMPEG_ENV, str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(MediaError, match=FFMPEG_ENV) as caught:
        ffmpeg_binary()
    assert caught.value.status == "media_tool_missing"


@pytest.fixture
def only_imageio_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ffmpeg or ffprobe on PATH; an imageio-ffmpeg package provides the ffmpeg binary."""
    assert FFMPEG is not None
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(FFMPEG_ENV, raising=False)
    monkeypatch.delenv(FFPROBE_ENV, raising=False)
    bundled = types.ModuleType("imageio_ffmpeg")
    bundled.get_ffmpeg_exe = lambda: FFMPEG  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", bundled)


@pytest.mark.usefixtures("only_imageio_ffmpeg")
def test_falls_back_to_imageio_ffmpeg_and_parses_ffmpeg_output(
    tmp_path: Path, video_with_audio: Path
) -> None:
    assert ffmpeg_binary() == FFMPEG
    assert ffprobe_binary() is None
    info = probe(video_with_audio)
    assert info.has_video and info.has_audio
    assert (info.video_codec, info.width, info.height) == ("h264", 160, 120)
    assert (info.audio_codec, info.sample_rate, info.channels) == ("aac", 44100, 1)
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.bit_rate is not None and info.bit_rate > 0
    wav = convert(video_with_audio, tmp_path / "audio.wav", sample_rate=8000)
    assert probe(wav).sample_rate == 8000


@pytest.mark.usefixtures("only_imageio_ffmpeg")
def test_ffmpeg_output_parsing_handles_layouts_and_languages(
    tmp_path: Path, tone_wav: Path, srt_file: Path
) -> None:
    movie = tmp_path / "dub.mkv"
    ffmpeg_run(
        "-i", str(tone_wav), "-i", str(srt_file), "-map", "0:a", "-map", "1:s",
        "-ac", "2", "-ar", "48000", "-c:a", "libopus", "-c:s", "srt",
        "-metadata:s:s:0", "language=spa", str(movie),
    )  # fmt: skip
    info = probe(movie)
    assert (info.audio_codec, info.channels, info.sample_rate) == ("opus", 2, 48000)
    assert not info.has_video
    assert [(s.codec, s.language) for s in info.subtitle_streams] == [("subrip", "spa")]


@pytest.mark.usefixtures("only_imageio_ffmpeg")
def test_ffmpeg_output_parsing_ignores_cover_art(tmp_path: Path, tone_wav: Path) -> None:
    cover = tmp_path / "cover.png"
    ffmpeg_run("-f", "lavfi", "-i", "color=c=blue:s=32x32:d=1", "-frames:v", "1", str(cover))
    song = tmp_path / "song.mp3"
    ffmpeg_run(
        "-i", str(tone_wav), "-i", str(cover), "-map", "0:a", "-map", "1:v",
        "-c:v", "mjpeg", "-disposition:v", "attached_pic", str(song),
    )  # fmt: skip
    info = probe(song)
    assert info.has_audio and not info.has_video
    assert (info.audio_codec, info.channels) == ("mp3", 1)


@pytest.mark.usefixtures("only_imageio_ffmpeg")
def test_fallback_probe_still_rejects_non_media(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    with pytest.raises(MediaError, match=r"notes\.mp4 is not a media file ffmpeg can read"):
        probe(text)


def test_no_ffmpeg_anywhere_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(FFMPEG_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import now raises ImportError
    with pytest.raises(MediaError) as caught:
        ffmpeg_binary()
    message = str(caught.value)
    assert "apt-get install ffmpeg" in message and "imageio-ffmpeg" in message
    assert FFMPEG_ENV in message
