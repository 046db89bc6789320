"""Placing speech over a background track, with the background ducked while speech plays."""

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
from .probe import require_audio

__all__ = ["duck_intervals", "mix_over"]

# The background starts dipping slightly before speech and recovers slowly after it, which
# sounds like a mixing engineer riding a fader rather than a gate slamming shut.
DUCK_ATTACK_SECONDS = 0.08
DUCK_RELEASE_SECONDS = 0.3
# The gain expression is evaluated once per frame, so frames are kept short to make the ramps
# smooth (100 steps per second).
_GAIN_STEPS_PER_SECOND = 100


def duck_intervals(
    spans: Sequence[tuple[float, float]],
    *,
    attack: float = DUCK_ATTACK_SECONDS,
    release: float = DUCK_RELEASE_SECONDS,
) -> list[tuple[float, float]]:
    """Merges (start, end) speech spans whose duck ramps would touch into single intervals.

    >>> duck_intervals([(1.0, 2.0), (2.2, 3.0), (6.0, 7.0)])
    [(1.0, 3.0), (6.0, 7.0)]
    """
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start - attack <= merged[-1][1] + release:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _duck_expression(intervals: Sequence[tuple[float, float]], duck_db: float) -> str:
    # Each interval contributes a trapezoid rising over `attack` before it and falling over
    # `release` after it; merged intervals never overlap, so the sum stays within 0..1.
    a, r = DUCK_ATTACK_SECONDS, DUCK_RELEASE_SECONDS
    terms = [f"clip(min((t-{s - a:.6f})/{a},({e + r:.6f}-t)/{r}),0,1)" for s, e in intervals]
    return f"pow(10,{duck_db / 20:.6f}*({'+'.join(terms)}))"


# A placed segment: (its audio stream, start seconds, end seconds).
_Placed = tuple[Any, float, float]


def _lanes(placed: list[_Placed]) -> list[list[_Placed]]:
    """Packs segments into as few sequences without overlap as possible (greedy by start)."""
    lanes: list[list[_Placed]] = []
    for segment in sorted(placed, key=lambda item: item[1]):
        for lane in lanes:
            if lane[-1][2] <= segment[1]:
                lane.append(segment)
                break
        else:
            lanes.append([segment])
    return lanes


def _lane_stream(lane: list[_Placed], rate: int, layout: str) -> Any:
    """One speech track: each segment padded with silence up to the next one's start, concatenated.

    This keeps one mixer input per lane instead of one per segment, so dozens of segments cost
    the same mixing work as one.
    """
    pieces = []
    for i, (source, start, _end) in enumerate(lane):
        piece = source.filter("aresample", osr=rate).filter("aformat", channel_layouts=layout)
        if i == 0 and start > 0:
            piece = piece.filter("adelay", delays=f"{round(start * rate)}S", all=1)
        if i + 1 < len(lane):
            # Positions are snapped to the sample grid relative to time zero, so rounding never
            # accumulates along a lane.
            begin = 0 if i == 0 else round(start * rate)
            length = round(lane[i + 1][1] * rate) - begin
            piece = piece.filter("apad", whole_len=length).filter("atrim", end_sample=length)
        pieces.append(piece)
    if len(pieces) == 1:
        return pieces[0]
    return ffmpeg.concat(*pieces, v=0, a=1)


def mix_over(
    background: PathLike,
    foreground_segments: Sequence[tuple[PathLike, float]],
    dest: PathLike,
    *,
    duck_db: float = -12.0,
    background_gain_db: float = 0.0,
) -> Path:
    """Mixes speech segments over ``background`` at their start times and writes ``dest``.

    ``foreground_segments`` holds ``(path, start_seconds)`` pairs. While any segment plays, the
    background is lowered by ``duck_db`` (volume automation computed from the segment intervals,
    with short ramps in and out; nearby segments share one dip), on top of
    ``background_gain_db`` applied throughout. Segments are packed into as few non-overlapping
    lanes as possible and each lane becomes one continuous track, so dozens of segments are
    cheap; overlapping segments simply play together. The output has the background's length,
    sample rate and channels; speech running past the end is cut, and segments starting after it
    are dropped. Mono speech over a stereo background is centred at -3 dB per channel, which
    keeps its loudness. Levels are summed as they are, so normalise afterwards if peaks matter.

    Example:
        >>> mix_over("music.wav", [("line1.wav", 0.5), ("line2.wav", 4.0)], "mix.wav")
        ... # doctest: +SKIP
        PosixPath('mix.wav')
    """
    if duck_db > 0 or not math.isfinite(duck_db):
        raise MediaError(
            f"duck_db must be zero or negative (a reduction in dB), got {duck_db}",
            status="invalid_parameters",
        )
    if not math.isfinite(background_gain_db):
        raise MediaError("background_gain_db must be a finite number", status="invalid_parameters")
    bg = require_audio(background)
    rate = bg.sample_rate or 48000
    layout = channel_layout(bg.channels or 2)
    known: dict[Path, float] = {}
    timed: list[tuple[Path, float, float]] = []
    for item in foreground_segments:
        try:
            path, start = item
            start = float(start)
        except (TypeError, ValueError):
            raise MediaError(
                f"each foreground segment must be a (path, start_seconds) pair, got {item!r}",
                status="invalid_parameters",
            ) from None
        if not math.isfinite(start) or start < 0:
            raise MediaError(
                f"segment {Path(path).name} has start {start}; starts must be >= 0 seconds",
                status="invalid_parameters",
            )
        key = Path(path)
        if key not in known:
            known[key] = require_audio(key).duration
        if start < bg.duration:
            timed.append((key, start, start + known[key]))
    # One call for every input, so a file used both as background and as a segment still works.
    stream, *sources = audio_inputs([bg.path, *(path for path, _start, _end in timed)])
    placed = [(source, start, end) for source, (_p, start, end) in zip(sources, timed, strict=True)]

    if background_gain_db:
        stream = stream.filter("volume", volume=f"{background_gain_db}dB")
    lanes = _lanes(placed)
    if lanes and duck_db < 0:
        intervals = duck_intervals([(start, end) for _source, start, end in placed])
        stream = stream.filter(
            "asetnsamples", n=max(rate // _GAIN_STEPS_PER_SECOND, 1), p=0
        ).filter("volume", volume=_duck_expression(intervals, duck_db), eval="frame")
    if lanes:
        tracks = [_lane_stream(lane, rate, layout) for lane in lanes]
        stream = ffmpeg.filter(
            [stream, *tracks], "amix", inputs=1 + len(tracks), duration="first", normalize=0
        )
    dest_path = Path(dest)
    options = audio_output_options(dest_path, source_rate=rate, source_channels=bg.channels)
    with atomic_output(dest_path) as tmp:
        run_ffmpeg(stream.output(str(tmp), **options), subject=bg.path, action="mixing over")
    return dest_path
