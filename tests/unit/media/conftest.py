"""Real media made at test time with ffmpeg's lavfi sources and espeak-ng, plus signal helpers."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import soundfile

FFMPEG = shutil.which("ffmpeg")
ESPEAK = shutil.which("espeak-ng")


def ffmpeg_run(*args: str, stdout: IO[bytes] | None = None) -> None:
    """Runs the system ffmpeg quietly and fails the test with its stderr if it fails."""
    assert FFMPEG is not None, "these tests need ffmpeg on PATH (apt-get install ffmpeg)"
    done = subprocess.run(
        [FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def lavfi_audio(
    dest: Path, source: str, *, rate: int = 16000, channels: int = 1, extra: tuple[str, ...] = ()
) -> Path:
    """Renders a lavfi audio source expression (e.g. ``sine=f=440:d=3``) to ``dest``."""
    ffmpeg_run(
        "-f", "lavfi", "-i", source, "-ar", str(rate), "-ac", str(channels), *extra, str(dest)
    )
    return dest


def speak(dest: Path, text: str) -> Path:
    """Synthesises ``text`` with espeak-ng into a 22.05 kHz mono WAV."""
    if ESPEAK is None:  # pragma: no cover - the Makefile installs it
        pytest.skip("espeak-ng is not installed")
    subprocess.run([ESPEAK, "-w", str(dest), text], check=True, capture_output=True)
    return dest


def decode(path: Path, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decodes any audio file to float samples shaped (frames, channels), via ffmpeg for non-WAV."""
    if path.suffix.lower() == ".wav" and rate is None:
        data, sr = soundfile.read(str(path), always_2d=True)
        return data, sr
    wav = path.with_name(f"{path.name}.decoded.wav")
    args = ["-i", str(path), "-vn"] + (["-ar", str(rate)] if rate else []) + [str(wav)]
    ffmpeg_run(*args)
    data, sr = soundfile.read(str(wav), always_2d=True)
    wav.unlink()
    return data, sr


def tone_amplitude(samples: np.ndarray, rate: int, freq: float) -> float:
    """Amplitude of the ``freq`` component of a mono signal (a lock-in measurement)."""
    t = np.arange(len(samples)) / rate
    return float(2 * abs(np.mean(samples * np.exp(-2j * np.pi * freq * t))))


def rms(samples: np.ndarray) -> float:
    """Root mean square of the samples."""
    return float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide folder holding the generated source media (read-only for tests)."""
    return tmp_path_factory.mktemp("media-src")


@pytest.fixture(scope="session")
def tone_wav(media_dir: Path) -> Path:
    """3 s of a 440 Hz sine at 16 kHz mono (no pauses)."""
    return lavfi_audio(media_dir / "tone.wav", "sine=f=440:d=3:r=16000")


@pytest.fixture(scope="session")
def speech_wav(media_dir: Path) -> Path:
    """About 3.5 s of espeak-ng English speech, 22.05 kHz mono."""
    return speak(media_dir / "speech.wav", "The quick brown fox jumps over the lazy dog today.")


@pytest.fixture(scope="session")
def noise_wav(media_dir: Path) -> Path:
    """5 s of pink noise at 44.1 kHz stereo, quiet (about -30 LUFS)."""
    return lavfi_audio(
        media_dir / "noise.wav",
        "anoisesrc=color=pink:amplitude=0.05:d=5:r=44100:seed=7",
        rate=44100,
        channels=2,
    )


@pytest.fixture(scope="session")
def video_with_audio(media_dir: Path) -> Path:
    """2 s 160x120 H.264 test pattern with a 440 Hz AAC track."""
    dest = media_dir / "video.mp4"
    ffmpeg_run(
        "-f", "lavfi", "-i", "testsrc2=d=2:s=160x120:r=10",
        "-f", "lavfi", "-i", "sine=f=440:d=2:r=44100",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(dest),
    )  # fmt: skip
    return dest


@pytest.fixture(scope="session")
def video_without_audio(media_dir: Path) -> Path:
    """2 s 160x120 H.264 test pattern with no audio stream."""
    dest = media_dir / "silent-video.mp4"
    ffmpeg_run(
        "-f", "lavfi", "-i", "testsrc2=d=2:s=160x120:r=10",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(dest),
    )  # fmt: skip
    return dest


@pytest.fixture(scope="session")
def srt_file(media_dir: Path) -> Path:
    """Two SubRip cues."""
    dest = media_dir / "subs.srt"
    dest.write_text(
        "1\n00:00:00,200 --> 00:00:01,000\nHola mundo\n\n2\n00:00:01,100 --> 00:00:01,900\nAdios\n",
        encoding="utf-8",
    )
    return dest


@pytest.fixture(scope="session")
def vtt_file(media_dir: Path) -> Path:
    """One WebVTT cue."""
    dest = media_dir / "subs.vtt"
    dest.write_text("WEBVTT\n\n00:00:00.200 --> 00:00:01.000\nBonjour\n", encoding="utf-8")
    return dest


@pytest.fixture
def listing() -> Callable[[Path], list[str]]:
    """Names of every entry in a directory, hidden ones included, sorted."""
    return lambda folder: sorted(p.name for p in folder.iterdir())
