"""Splitting long audio streams: memory does not grow with the length of the input.

Runs `split_on_silence` on a 1-minute and a 10-minute file in a fresh interpreter and reads peak
resident memory with `resource.getrusage`: for that interpreter itself, and for every ffmpeg it
starts (through a small wrapper, because a child started from a large process inherits that
process's peak in the kernel's accounting).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prefect_elevenlabs.media import FFMPEG_ENV

from .conftest import FFMPEG, ffmpeg_run

RATE, CHANNELS, BYTES_PER_SAMPLE = 48000, 2, 2

SPLITTER = """
import json, resource, sys
from prefect_elevenlabs.media import split_on_silence

def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

report = {"baseline_kib": peak_kib()}
for source in sys.argv[1:]:
    chunks = split_on_silence(source, source + ".chunks", max_duration=60.0)
    report[source] = {"chunks": len(chunks), "peak_kib": peak_kib()}
print(json.dumps(report))
"""

WRAPPER = """#!{python} -S
import resource, subprocess, sys
args = sys.argv[1:]
code = subprocess.call([{ffmpeg!r}, *args])
source = args[args.index("-i") + 1] if "-i" in args else "?"
with open({log!r}, "a") as log:
    log.write(source + " " + str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + "\\n")
sys.exit(code)
"""


def _long_talk(dest: Path, minutes: int) -> Path:
    # A tone with a 2 s pause every 23 s, 48 kHz stereo: 11.5 MB of PCM per minute.
    ffmpeg_run(
        "-f", "lavfi", "-i", f"sine=f=440:r={RATE}:d={minutes * 60}",
        "-af", "volume=0:enable='gt(mod(t,23),21)'", "-ac", str(CHANNELS), str(dest),
    )  # fmt: skip
    return dest


def test_peak_memory_does_not_grow_with_duration(tmp_path: Path) -> None:
    assert FFMPEG is not None
    short = _long_talk(tmp_path / "one-minute.wav", 1)
    long = _long_talk(tmp_path / "ten-minutes.wav", 10)
    decoded_bytes = 600 * RATE * CHANNELS * BYTES_PER_SAMPLE  # 115 MB

    log = tmp_path / "ffmpeg-rss.log"
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(WRAPPER.format(python=sys.executable, ffmpeg=FFMPEG, log=str(log)))
    wrapper.chmod(0o755)

    done = subprocess.run(
        [sys.executable, "-c", SPLITTER, str(short), str(long)],
        env={**os.environ, FFMPEG_ENV: str(wrapper)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report[str(long)]["chunks"] >= 10

    # This interpreter: whatever the imports cost, splitting 10 minutes adds next to nothing.
    growth = (report[str(long)]["peak_kib"] - report["baseline_kib"]) * 1024
    assert growth < decoded_bytes / 20

    # ffmpeg: the 10-minute runs peak where the 1-minute runs do, far below the decoded size.
    peaks: dict[str, int] = {}
    for line in log.read_text().splitlines():
        source, kib = line.rsplit(" ", 1)
        peaks[source] = max(peaks.get(source, 0), int(kib) * 1024)
    assert set(peaks) == {str(short), str(long)}
    assert peaks[str(long)] < peaks[str(short)] + 12 * 2**20
    assert peaks[str(long)] < decoded_bytes * 0.6
    mib = 2**20
    print(
        f"decoded {decoded_bytes / mib:.0f} MiB; python baseline "
        f"{report['baseline_kib'] / 1024:.0f} MiB, growth {growth / mib:.1f} MiB; ffmpeg peak "
        f"{peaks[str(short)] / mib:.0f} MiB (1 min), {peaks[str(long)] / mib:.0f} MiB (10 min)"
    )
