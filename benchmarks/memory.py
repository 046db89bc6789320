"""Memory: peak memory of preparing media for transcription and for dubbing, on a 5-minute and
a 60-minute recording.

Preparation is the work the flows do on the caller's machine before any upload, run through
their own code:

- transcription (``transcribe`` flow, ``speech_to_text`` task): ``_upload_pieces`` probes the
  file, then either extracts its sound track as FLAC (video up to 15 minutes) or cuts it in
  pauses into FLAC pieces of at most 15 minutes (``split_on_silence``);
- dubbing (``dub`` flow, ``compose`` strategy): the same pieces for speech to text, plus the
  44.1 kHz mono WAV of the sound track that the dub is mixed over (``extract_audio``).

The input is an mp4 (a still picture and a talk-like sound track with a pause every 20 s).
Each preparation runs in a fresh interpreter, started through a small launcher because Linux
charges a new process with the peak of the process that started it. Python's own peak is its
``getrusage(RUSAGE_SELF).ru_maxrss``; every ffmpeg and ffprobe it starts goes through a small
wrapper that records ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` for that one tool, for the same
reason. The figure
compared is Python's peak plus the largest tool's peak (they run at the same time); target:
60 minutes needs at most 1.3 times what 5 minutes needs.

Run alone with ``python -m benchmarks.memory [--quick]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._media import talk_video
from ._report import BenchmarkResult, Row

NAME = "memory"
TITLE = "Memory"
TARGET_RATIO = 1.3

PREPARE = r"""
import json, resource, sys
from pathlib import Path
from prefect_elevenlabs.media import extract_audio, probe
from prefect_elevenlabs.tasks.speech_to_text import DEFAULT_MAX_CHUNK_SECONDS, _upload_pieces

kind, source, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
report = {"after_imports_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
report["duration_s"] = probe(source).duration
pieces = _upload_pieces(source, work, DEFAULT_MAX_CHUNK_SECONDS, None)
report["pieces"] = len(pieces)
if kind == "dub":
    extract_audio(source, work / "background.wav", sample_rate=44100, channels=1)
report["self_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(report))
"""

LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
"""Starts the preparation interpreter from a small process: Linux gives a new process the peak
of the one that started it, and the benchmark's own process may be large by now."""

WRAPPER = """#!{python} -S
import resource, subprocess, sys
code = subprocess.call([{binary!r}, *sys.argv[1:]])
with open({log!r}, "a") as log:
    log.write({tool!r} + " " + str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + "\\n")
sys.exit(code)
"""


def _wrappers(directory: Path) -> tuple[dict[str, str], Path]:
    """Environment pointing the media helpers at measuring wrappers, and their log file."""
    log = directory / "tools.log"
    env: dict[str, str] = {}
    for tool, variable in (
        ("ffmpeg", "PREFECT_ELEVENLABS_FFMPEG"),
        ("ffprobe", "PREFECT_ELEVENLABS_FFPROBE"),
    ):
        binary = shutil.which(tool)
        if binary is None:
            raise RuntimeError(f"{tool} is not installed: apt-get install ffmpeg")
        wrapper = directory / tool
        wrapper.write_text(
            WRAPPER.format(python=sys.executable, binary=binary, log=str(log), tool=tool)
        )
        wrapper.chmod(0o755)
        env[variable] = str(wrapper)
    return env, log


def _prepare(kind: str, source: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-memory-{kind}-") as tmp:
        tools_dir = Path(tmp, "tools")
        tools_dir.mkdir()
        work = Path(tmp, "work")
        work.mkdir()
        tool_env, log = _wrappers(tools_dir)
        command = [sys.executable, "-S", "-c", LAUNCHER]
        command += [sys.executable, "-c", PREPARE, kind, str(source), str(work)]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **tool_env, "PYTHONWARNINGS": "ignore"},
        )
        tool_lines = log.read_text().split("\n") if log.exists() else []
    if done.returncode != 0:
        raise RuntimeError(f"{kind} preparation of {source} failed:\n{done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    tools = [(line.split()[0], int(line.split()[1])) for line in tool_lines if line.strip()]
    tool_peak = max((kib for _, kib in tools), default=0)
    report["tool_runs"] = [{"tool": tool, "peak_kib": kib} for tool, kib in tools]
    report["python_mib"] = report["self_kib"] / 1024
    report["tool_mib"] = tool_peak / 1024
    report["total_mib"] = (report["self_kib"] + tool_peak) / 1024
    return report


def run(quick: bool = False) -> BenchmarkResult:
    """Peak memory of transcription and dubbing preparation, long file versus short file."""
    short_min, long_min = (0.2, 1.0) if quick else (5.0, 60.0)
    short, long = talk_video(minutes=short_min), talk_video(minutes=long_min)
    rows: list[Row] = []
    notes: list[str] = []
    details: dict[str, Any] = {"short_minutes": short_min, "long_minutes": long_min}
    for kind, label in (("transcribe", "transcription"), ("dub", "dubbing")):
        small = _prepare(kind, short)
        big = _prepare(kind, long)
        ratio = big["total_mib"] / small["total_mib"]
        details[kind] = {"short": small, "long": big}
        rows.append(
            Row(
                metric=f"peak memory, {label} preparation, {long_min:g} min vs {short_min:g} min",
                ours=big["total_mib"],
                baseline=small["total_mib"],
                unit="MiB",
                ratio=ratio,
                target=f"<= {TARGET_RATIO:.1f}",
                met=ratio <= TARGET_RATIO,
                ours_label=f"{long_min:g} min",
                baseline_label=f"{short_min:g} min",
                how=(
                    "fresh interpreter per run; Python's peak "
                    f"({big['python_mib']:.0f} vs {small['python_mib']:.0f} MiB) plus the "
                    f"largest ffmpeg/ffprobe peak ({big['tool_mib']:.0f} vs "
                    f"{small['tool_mib']:.0f} MiB); mp4 input (still picture, AAC talk-like "
                    f"sound with a pause every 20 s); {big['pieces']} vs {small['pieces']} "
                    "upload piece(s)"
                ),
            )
        )
        tool_ratio = big["tool_mib"] / small["tool_mib"] if small["tool_mib"] else None
        if tool_ratio is not None and tool_ratio > TARGET_RATIO:
            notes.append(
                f"{label.capitalize()}: the largest ffmpeg grows from {small['tool_mib']:.0f} "
                f"to {big['tool_mib']:.0f} MiB ({tool_ratio:.2f}x); Python stays at "
                f"{big['python_mib']:.0f} MiB."
            )
    return BenchmarkResult(
        name=NAME, title=TITLE, rows=rows, details=details, notes=notes, quick=quick
    )


if __name__ == "__main__":
    from .run import run_one

    run_one(NAME)
