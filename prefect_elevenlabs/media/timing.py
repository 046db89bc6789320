"""Fitting audio into a time slot: tempo change without pitch change, then pad or trim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ffmpeg
from pydantic import BaseModel, ConfigDict

from ..errors import MediaError
from ._ffmpeg import run_ffmpeg
from ._files import PathLike, atomic_output
from ._formats import audio_output_options
from .probe import probe, require_audio

__all__ = ["FitResult", "atempo_factors", "fit_to_duration"]

# atempo's quality drops outside 0.5-2.0 (it starts skipping or repeating whole windows), so
# larger changes are made as a chain of steps that each stay inside that range.
_ATEMPO_MIN = 0.5
_ATEMPO_MAX = 2.0
# Closer to 1 than this, a tempo change is inaudible and only costs quality.
_TEMPO_EPSILON = 1e-3


class FitResult(BaseModel):
    """Outcome of `fit_to_duration`."""

    model_config = ConfigDict(frozen=True)

    path: Path
    tempo: float
    """Speed factor applied: above 1 plays faster (shorter), below 1 slower (longer)."""
    duration: float
    """Measured length of the written file, in seconds."""
    clamped: bool = False
    """True when the needed tempo was outside the allowed bounds, so the tempo was clamped and the
    audio was padded with silence or cut to reach the target length."""
    required_tempo: float
    """The tempo that would have fitted the audio exactly, before clamping."""


def atempo_factors(tempo: float) -> list[float]:
    """Splits a tempo factor into ``atempo`` steps that each lie within 0.5-2.0.

    >>> atempo_factors(3.0)
    [2.0, 1.5]
    >>> atempo_factors(0.3)
    [0.5, 0.6]
    """
    if tempo <= 0:
        raise MediaError(f"tempo must be positive, got {tempo}", status="invalid_parameters")
    factors: list[float] = []
    remaining = tempo
    while remaining > _ATEMPO_MAX:
        factors.append(_ATEMPO_MAX)
        remaining /= _ATEMPO_MAX
    while remaining < _ATEMPO_MIN:
        factors.append(_ATEMPO_MIN)
        remaining /= _ATEMPO_MIN
    if abs(remaining - 1.0) > 1e-9 or not factors:
        factors.append(round(remaining, 9))
    return factors


def fit_to_duration(
    src: PathLike,
    dest: PathLike,
    target_seconds: float,
    *,
    min_tempo: float = 0.75,
    max_tempo: float = 1.6,
    pad: bool = True,
) -> FitResult:
    """Changes the tempo of ``src`` (pitch kept) so it lasts ``target_seconds``; writes ``dest``.

    The needed tempo is ``source length / target``. Within ``[min_tempo, max_tempo]`` it is
    applied as is; outside, it is clamped to the nearest bound and ``FitResult.clamped`` is set.
    The result is then made to land on the target to the sample: silence is appended when it
    falls short (unless ``pad=False``, which leaves it short), and anything past the target is
    cut, so check ``clamped`` if cutting speech matters. The sample rate and channels of ``src``
    are kept; the encoder follows ``dest``'s suffix (PCM formats land exactly; lossy ones add
    their own encoder padding).

    Example:
        >>> fit_to_duration("line_es.wav", "slot_3.wav", 2.4)  # doctest: +SKIP
        FitResult(path=PosixPath('slot_3.wav'), tempo=1.21, duration=2.4, clamped=False, ...)
    """
    if not target_seconds > 0:
        raise MediaError(
            f"target_seconds must be positive, got {target_seconds}", status="invalid_parameters"
        )
    if not 0 < min_tempo <= max_tempo:
        raise MediaError(
            f"need 0 < min_tempo <= max_tempo, got min_tempo={min_tempo}, max_tempo={max_tempo}",
            status="invalid_parameters",
        )
    info = require_audio(src)
    rate = info.sample_rate
    if not rate:
        raise MediaError(f"{info.path.name} reports no sample rate", status="media_corrupt")
    required = info.duration / target_seconds
    tempo = min(max(required, min_tempo), max_tempo)
    clamped = tempo != required
    dest_path = Path(dest)
    options = audio_output_options(dest_path, source_rate=rate, source_channels=info.channels)
    stream: Any = ffmpeg.input(str(info.path))["a:0"]
    if abs(tempo - 1.0) > _TEMPO_EPSILON:
        for factor in atempo_factors(tempo):
            stream = stream.filter("atempo", tempo=factor)
    else:
        tempo = 1.0
    # Sample counts rather than seconds so the length is exact whatever the timestamps say.
    target_samples = round(target_seconds * rate)
    if pad:
        stream = stream.filter("apad", whole_len=target_samples)
    stream = stream.filter("atrim", end_sample=target_samples).filter("asetpts", expr="N/SR/TB")
    with atomic_output(dest_path) as tmp:
        output = stream.output(str(tmp), **options)
        run_ffmpeg(output, subject=info.path, action="fitting the duration of")
    written = probe(dest_path)
    return FitResult(
        path=dest_path,
        tempo=tempo,
        duration=written.duration,
        clamped=clamped,
        required_tempo=required,
    )
