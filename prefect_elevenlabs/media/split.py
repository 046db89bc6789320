"""Cutting long audio into chunks at pauses, for APIs with length or size limits."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ffmpeg
from pydantic import BaseModel, ConfigDict

from ..errors import MediaError
from ._ffmpeg import run_ffmpeg
from ._files import PathLike, atomic_dir
from ._formats import audio_output_options, parse_bitrate
from .probe import MediaInfo, require_audio

__all__ = ["Chunk", "detect_silences", "plan_cuts", "split_on_silence"]

_SILENCE_START = re.compile(r"silence_start: (-?[\d.]+)")
_SILENCE_END = re.compile(r"silence_end: (-?[\d.]+)")

# Worst-case bytes per second of audio, per channel and Hz, plus a fixed allowance for headers,
# for each chunk format. Lossy formats are written at a constant bitrate so their size follows
# from it; FLAC is bounded by the PCM size it compresses (verbatim frames add a little).
_LOSSY_DEFAULT_BITRATE = {"mp3": 64_000, "ogg": 48_000, "opus": 48_000}
_HEADER_ALLOWANCE = {"wav": 1024, "flac": 16 * 1024, "mp3": 4096, "ogg": 8192, "opus": 8192}
_FORMATS = tuple(_HEADER_ALLOWANCE)
# Every chunk in a run is an open output file; runs are capped to stay far below fd limits.
_CHUNKS_PER_RUN = 64
# Pause left at the head of a chunk after a cut, so speech does not start on the first sample.
_LEAD_IN_SECONDS = 0.25


class Chunk(BaseModel):
    """One piece written by `split_on_silence`; ``start``/``end`` are seconds in the source."""

    model_config = ConfigDict(frozen=True)

    path: Path
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Length of the chunk in seconds."""
        return self.end - self.start


def detect_silences(
    info: MediaInfo, *, min_silence: float, silence_db: float
) -> list[tuple[float, float]]:
    """Returns (start, end) seconds of every pause in the first audio stream of ``info``.

    Runs ffmpeg's ``silencedetect`` over the whole file; its report is parsed line by line, so
    memory does not depend on the file's length.
    """
    silences: list[tuple[float, float]] = []
    pending: list[float] = []

    def on_line(line: str) -> None:
        if (m := _SILENCE_START.search(line)) is not None:
            pending[:] = [max(float(m.group(1)), 0.0)]
        elif (m := _SILENCE_END.search(line)) is not None and pending:
            silences.append((pending.pop(), float(m.group(1))))

    stream = (
        ffmpeg.input(str(info.path))["a:0"]
        .filter("silencedetect", noise=f"{silence_db}dB", duration=min_silence)
        .output("-", format="null")
    )
    run_ffmpeg(
        stream,
        subject=info.path,
        action="looking for pauses in",
        on_line=on_line,
        loglevel="info",
    )
    if pending:  # a pause running to the end of the file has no end line in older ffmpeg
        silences.append((pending[0], info.duration))
    return silences


def plan_cuts(
    duration: float, silences: Sequence[tuple[float, float]], limit: float
) -> list[float]:
    """Chooses cut times so that no piece is longer than ``limit`` seconds.

    Each cut goes in the latest pause that keeps the piece within the limit, placed late in the
    pause (its middle, or a quarter second before speech resumes if that is later) so the next
    piece has room, and never past the limit. A pause is preferred even when it makes a short
    piece, because cutting through speech garbles words; where a whole stretch has no pause the
    cut falls hard at the limit.

    >>> plan_cuts(25.0, [(4.0, 5.0), (9.0, 9.4), (17.0, 18.0)], 10.0)
    [9.2, 17.75]
    """
    cuts: list[float] = []
    position = 0.0
    while duration - position > limit:
        horizon = position + limit
        best: float | None = None
        for start, end in silences:
            if start >= horizon:
                break
            cut = min(max((start + end) / 2, end - _LEAD_IN_SECONDS), horizon)
            if cut > position + 1e-3 and (best is None or cut > best):
                best = cut
        position = best if best is not None else horizon
        cuts.append(round(position, 6))
    return cuts


def _bytes_per_second(fmt: str, rate: int, channels: int, bitrate: int | None) -> float:
    if fmt == "wav":
        return rate * channels * 2.0
    if fmt == "flac":
        return rate * channels * 2.0 * 1.02
    assert bitrate is not None
    # Container framing (Ogg pages, MP3 frame padding) stays well under 5%.
    return bitrate / 8.0 * 1.05


def _write_chunks(
    info: MediaInfo,
    scratch: Path,
    names: Sequence[str],
    boundaries: Sequence[int],
    first: int,
    rate: int,
    options: dict[str, Any],
) -> None:
    """Writes chunks ``first`` .. ``first + len(names) - 1`` in one decoding pass.

    ``boundaries[i]`` is the sample (at ``rate``) where chunk ``i + 1`` begins. ``asegment`` cuts
    the decoded stream at exact sample numbers and feeds one encoder per chunk.
    """
    offset = boundaries[first - 1] if first > 0 else 0
    stop = first + len(names) - 1  # index into boundaries of this run's final cut, if any
    source = (
        ffmpeg.input(str(info.path), ss=offset / rate)["a:0"]
        if offset
        else ffmpeg.input(str(info.path))["a:0"]
    )
    stream = source.filter("aresample", osr=rate)
    if stop < len(boundaries):
        stream = stream.filter("atrim", end_sample=boundaries[stop] - offset)
    inner = [b - offset for b in boundaries[first:stop]]
    if inner:
        split = stream.filter_multi_output("asegment", samples="|".join(map(str, inner)))
        parts = [split[i] for i in range(len(names))]
    else:
        parts = [stream]
    # Each chunk restarts its clock at zero; Ogg would otherwise keep the source's positions.
    outputs = [
        part.filter("asetpts", expr="N/SR/TB").output(str(scratch / name), vn=None, **options)
        for part, name in zip(parts, names, strict=True)
    ]
    run_ffmpeg(ffmpeg.merge_outputs(*outputs), subject=info.path, action="splitting")


def split_on_silence(
    src: PathLike,
    dest_dir: PathLike,
    *,
    max_duration: float = 600.0,
    max_bytes: int | None = None,
    min_silence: float = 0.5,
    silence_db: float = -35.0,
    format: str = "wav",
    sample_rate: int = 16000,
    channels: int = 1,
    bitrate: str | int | None = None,
) -> list[Chunk]:
    """Splits the audio of ``src`` into chunks no longer than ``max_duration`` seconds (and no
    larger than ``max_bytes`` when given), cutting in pauses where possible.

    A first pass finds pauses of at least ``min_silence`` seconds below ``silence_db``; each cut
    goes in the latest pause that keeps the chunk within the limits, or hard at the limit when a
    stretch has none. A second pass decodes the file once more and writes every chunk
    (``<stem>-000.<format>`` ...) sample-exactly into ``dest_dir``. Both passes stream, so memory
    does not grow with the length of the input. Chunks appear in ``dest_dir`` only once all of
    them are written. ``format`` is wav, flac, mp3, ogg or opus; lossy formats are written at a
    constant ``bitrate`` (default 64k for mp3, 48k for Opus) so their size is predictable.

    Each `Chunk` carries its ``start``/``end`` in the source, so timestamps found in a chunk
    (say by speech recognition) map back by adding ``chunk.start``.

    Example:
        >>> chunks = split_on_silence("meeting.mp3", "chunks/", max_duration=300)  # doctest: +SKIP
        >>> [(c.path.name, c.start) for c in chunks][:2]  # doctest: +SKIP
        [('meeting-000.wav', 0.0), ('meeting-001.wav', 297.35)]
    """
    fmt = format.lower().lstrip(".")
    if fmt not in _FORMATS:
        raise MediaError(
            f"format {format!r} is not supported for chunks; use one of {', '.join(_FORMATS)}",
            status="unsupported_media",
        )
    if not max_duration > 0 or not math.isfinite(max_duration):
        raise MediaError(
            f"max_duration must be a positive number of seconds, got {max_duration}",
            status="invalid_parameters",
        )
    if min_silence <= 0:
        raise MediaError(
            f"min_silence must be positive, got {min_silence}", status="invalid_parameters"
        )
    info = require_audio(src)
    out_dir = Path(dest_dir)
    example_dest = out_dir / f"chunk.{fmt}"  # only its suffix matters for the encoder choice
    bits = parse_bitrate(bitrate) or _LOSSY_DEFAULT_BITRATE.get(fmt)
    options = audio_output_options(
        example_dest, sample_rate=sample_rate, channels=channels, bitrate=bits
    )
    rate = int(options.get("ar", sample_rate))
    if fmt in ("ogg", "opus"):
        options["vbr"] = "off"  # hard constant bitrate, so max_bytes holds

    limit = max_duration
    if max_bytes is not None:
        per_second = _bytes_per_second(fmt, rate, channels, bits)
        by_size = (max_bytes - _HEADER_ALLOWANCE[fmt]) / per_second
        if by_size < 1.0:
            raise MediaError(
                f"max_bytes={max_bytes} leaves room for less than a second of {fmt} audio at "
                f"{rate} Hz; raise it or lower sample_rate/bitrate",
                status="invalid_parameters",
            )
        limit = min(limit, by_size)

    silences = detect_silences(info, min_silence=min_silence, silence_db=silence_db)
    cuts = plan_cuts(info.duration, silences, limit)
    boundaries = [round(c * rate) for c in cuts]
    edges = [0.0, *(b / rate for b in boundaries), info.duration]
    width = max(3, len(str(len(edges) - 2)))
    names = [f"{info.path.stem}-{i:0{width}d}.{fmt}" for i in range(len(edges) - 1)]

    with atomic_dir(out_dir) as scratch:
        for first in range(0, len(names), _CHUNKS_PER_RUN):
            last = min(first + _CHUNKS_PER_RUN, len(names))
            _write_chunks(info, scratch, names[first:last], boundaries, first, rate, options)
        if max_bytes is not None:
            for name in names:
                size = (scratch / name).stat().st_size
                if size > max_bytes:
                    raise MediaError(
                        f"chunk {name} came out at {size} bytes, over max_bytes={max_bytes}; "
                        f"use wav or a lower bitrate for a predictable size",
                        status="media_too_long",
                    )
        for name in names:
            os.replace(scratch / name, out_dir / name)

    return [
        Chunk(path=out_dir / name, start=edges[i], end=edges[i + 1]) for i, name in enumerate(names)
    ]
