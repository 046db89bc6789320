"""Test media for the benchmarks, generated with ffmpeg and kept in a cache directory.

Files are named by what they contain, written atomically, and reused by later runs, so only the
first run on a machine pays for making a 60-minute file.

Example::

    long_talk = talk_video(minutes=60)     # .../prefect-elevenlabs-bench-media/talk-60min.mp4
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["MEDIA_CACHE_ENV", "cache_dir", "ffmpeg", "speech_clip", "talk_video"]

MEDIA_CACHE_ENV = "PREFECT_ELEVENLABS_BENCH_MEDIA"
"""Overrides where generated media is cached (default: ``<tmp>/prefect-elevenlabs-bench-media``)."""

_SEGMENT_S = 20  # a 1.5 s pause closes every 20 s "utterance": something to split on


def cache_dir() -> Path:
    """The directory generated media lives in (created on first use)."""
    path = Path(
        os.environ.get(MEDIA_CACHE_ENV)
        or Path(tempfile.gettempdir()) / "prefect-elevenlabs-bench-media"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def ffmpeg(*args: str) -> None:
    """Runs ffmpeg quietly; raises with its error output when it fails."""
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise RuntimeError("ffmpeg is not installed: apt-get install ffmpeg")
    done = subprocess.run(
        [binary, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {done.stderr.strip()[-800:]}")


def _cached(name: str) -> tuple[Path, Path]:
    final = cache_dir() / name
    partial = final.with_name(f".{final.stem}.partial{final.suffix}")
    return final, partial


def talk_video(*, minutes: float) -> Path:
    """An mp4 standing in for a recorded talk: a still 160x120 picture at one frame per second
    and a mono 44.1 kHz AAC sound track of a tone over noise, with a 1.5 s pause every 20 s.

    Decodable media of a known length, with regular pauses for silence detection to find, that
    is quick to make even at an hour long.
    """
    seconds = round(minutes * 60)
    final, partial = _cached(f"talk-{minutes:g}min.mp4")
    if final.exists():
        return final
    pause_from = _SEGMENT_S - 1.5
    ffmpeg(
        "-f", "lavfi", "-i", f"color=c=0x203040:s=160x120:r=1:d={seconds}",
        "-f", "lavfi", "-i", f"sine=f=220:r=44100:d={seconds}",
        "-f", "lavfi", "-i", f"anoisesrc=r=44100:a=0.05:d={seconds}:seed=7",
        "-filter_complex",
        f"[1][2]amix=inputs=2:normalize=0,"
        f"volume='if(lt(mod(t,{_SEGMENT_S}),{pause_from}),1,0)':eval=frame[a]",
        "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "stillimage", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-ac", "1", str(partial),
    )  # fmt: skip
    partial.replace(final)
    return final


def speech_clip(speech_wav: Path, *, seconds: float, name: str) -> Path:
    """An mp4 of ``seconds`` length: a test-pattern video with ``speech_wav`` as its sound track
    (padded with silence or cut to fit). Cached under ``name``."""
    final, partial = _cached(name)
    if final.exists():
        return final
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=25:duration={seconds:g}",
        "-i", str(speech_wav),
        "-filter_complex", f"[1:a]apad,atrim=0:{seconds:g}[a]",
        "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96k", "-t", f"{seconds:g}", str(partial),
    )  # fmt: skip
    partial.replace(final)
    return final
