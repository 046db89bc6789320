"""Joining audio files end to end, with optional gaps or crossfades."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ffmpeg

from ..errors import MediaError
from ._ffmpeg import run_ffmpeg
from ._files import PathLike, atomic_output
from ._formats import audio_output_options, channel_layout
from ._graph import audio_inputs
from .probe import MediaInfo, require_audio

__all__ = ["concat"]


def concat(
    paths: Sequence[PathLike],
    dest: PathLike,
    *,
    gap_seconds: float = 0.0,
    crossfade_seconds: float = 0.0,
) -> Path:
    """Joins the audio of ``paths`` in order into ``dest``.

    Inputs may differ in format, codec, sample rate and channel count: all are brought to the
    highest rate and channel count among them, and the encoder follows ``dest``'s suffix. Either
    ``gap_seconds`` of silence goes between neighbours, or neighbours overlap by
    ``crossfade_seconds`` with an equal-power crossfade (each input must then be at least that
    long); not both. The output lasts the sum of the inputs' decoded lengths plus the gaps, or
    minus the overlaps (a lossy file's header may count encoder padding the decoder drops).

    Example:
        >>> concat(["intro.mp3", "part1.wav", "part2.wav"], "episode.mp3", gap_seconds=0.4)
        ... # doctest: +SKIP
        PosixPath('episode.mp3')
    """
    if isinstance(paths, (str, bytes)):
        raise MediaError(
            "concat takes a list of paths, not a single path", status="invalid_parameters"
        )
    if not paths:
        raise MediaError("concat needs at least one input file", status="invalid_parameters")
    for name, value in (("gap_seconds", gap_seconds), ("crossfade_seconds", crossfade_seconds)):
        if not math.isfinite(value) or value < 0:
            raise MediaError(f"{name} must be >= 0, got {value}", status="invalid_parameters")
    if gap_seconds > 0 and crossfade_seconds > 0:
        raise MediaError(
            "pass gap_seconds or crossfade_seconds, not both", status="invalid_parameters"
        )
    infos: list[MediaInfo] = []
    known: dict[Path, MediaInfo] = {}
    for path in paths:
        key = Path(path)
        if key not in known:
            known[key] = require_audio(key)
        infos.append(known[key])
    if crossfade_seconds > 0:
        short = [i.path.name for i in infos if i.duration < crossfade_seconds]
        if short:
            raise MediaError(
                f"{', '.join(short)} is shorter than crossfade_seconds={crossfade_seconds}",
                status="invalid_parameters",
            )
    rate = max(i.sample_rate or 0 for i in infos) or 48000
    channels = max(i.channels or 0 for i in infos) or 2
    layout = channel_layout(channels)

    streams = [
        s.filter("aresample", osr=rate).filter("aformat", channel_layouts=layout)
        for s in audio_inputs([i.path for i in infos])
    ]
    joined: Any
    if crossfade_seconds > 0:
        joined = streams[0]
        for nxt in streams[1:]:
            joined = ffmpeg.filter(
                [joined, nxt], "acrossfade", d=crossfade_seconds, c1="qsin", c2="qsin"
            )
    else:
        if gap_seconds > 0:
            pad = round(gap_seconds * rate)
            streams = [s.filter("apad", pad_len=pad) for s in streams[:-1]] + streams[-1:]
        joined = streams[0] if len(streams) == 1 else ffmpeg.concat(*streams, v=0, a=1)

    dest_path = Path(dest)
    options = audio_output_options(dest_path, source_rate=rate, source_channels=channels)
    with atomic_output(dest_path) as tmp:
        run_ffmpeg(joined.output(str(tmp), **options), subject=infos[0].path, action="joining")
    return dest_path
