"""Builds the sample clip bundled with the package (``prefect_elevenlabs/assets/sample_clip.mp4``).

The clip is what ``prefect-elevenlabs demo`` dubs, transcribes and subtitles: three English
sentences spoken by the local engine's piper voice, over ffmpeg's ``testsrc2`` pattern at a low
resolution and bitrate so the file stays small enough to ship inside the wheel.

Run it from the repository root with the project's environment (the ``local`` extra installed)::

    .venv/bin/python scripts/make_sample_clip.py [--output PATH]

The output is deterministic apart from encoder metadata: piper runs with its noise scales at
zero, so the same text always gives the same samples.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from prefect_elevenlabs.local.engines.tts import VoiceProfile, synthesize
from prefect_elevenlabs.media import ffmpeg_binary, probe

SCRIPT = (
    "Hello and welcome to our small studio. "
    "This short video was made on a computer with no network. "
    "Thank you very much for watching."
)
"""What the clip says; chosen so Apertium's English-to-Spanish pair translates it cleanly."""

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "prefect_elevenlabs/assets/sample_clip.mp4"
LEAD_IN_S = 0.4
TAIL_S = 0.6
WIDTH, HEIGHT, FPS = 192, 108, 12
MAX_BYTES = 300_000


def speak(dest: Path) -> float:
    """Writes the narration as a WAV file with a short silence on each side; returns seconds."""
    speech = synthesize(SCRIPT, profile=VoiceProfile(), seed=7)
    rate = speech.sample_rate
    samples = np.concatenate(
        [
            np.zeros(int(LEAD_IN_S * rate), dtype=np.float32),
            np.asarray(speech.samples, dtype=np.float32),
            np.zeros(int(TAIL_S * rate), dtype=np.float32),
        ]
    )
    sf.write(dest, samples, rate, subtype="PCM_16")
    return len(samples) / rate


def encode(narration: Path, duration: float, dest: Path) -> None:
    """Lays the narration over a small test pattern as H.264 + AAC in an MP4."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    command = [
        ffmpeg_binary(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={duration:.3f}",
        "-i",
        str(narration),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        "-c:v",
        "libx264",
        "-preset",
        "veryslow",
        "-crf",
        "34",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "48k",
        "-ac",
        "1",
        "-ar",
        "22050",
        "-shortest",
        "-movflags",
        "+faststart",
        "-map_metadata",
        "-1",
        "-metadata:s:a:0",
        "language=eng",
        str(dest),
    ]
    subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> int:
    """Builds the clip and prints its facts; fails when it would be too large to bundle."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sample-clip-") as tmp:
        narration = Path(tmp, "narration.wav")
        duration = speak(narration)
        encode(narration, duration, args.output)
    info = probe(args.output)
    size = args.output.stat().st_size
    print(
        f"{args.output}: {info.duration:.2f} s, {info.width}x{info.height} "
        f"{info.video_codec}/{info.audio_codec}, {size / 1000:.0f} KB"
    )
    if size > MAX_BYTES:
        print(f"the clip is larger than {MAX_BYTES} bytes: lower the bitrate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
