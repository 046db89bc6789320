"""EBU R128 loudness: measuring it and normalising to a target with ffmpeg's ``loudnorm``."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import ffmpeg
from pydantic import BaseModel, ConfigDict

from ..errors import MediaError
from ._ffmpeg import run_ffmpeg
from ._files import PathLike, atomic_output
from ._formats import audio_output_options
from .probe import MediaInfo, require_audio

__all__ = ["Loudness", "measure_loudness", "normalize_loudness"]

logger = logging.getLogger(__name__)


class Loudness(BaseModel):
    """EBU R128 measurement of a file. Silence measures as ``-inf``."""

    model_config = ConfigDict(frozen=True)

    integrated_lufs: float
    """Integrated loudness over the whole file, in LUFS."""
    true_peak_db: float
    """Maximum true (inter-sample) peak, in dBTP."""
    lra: float
    """Loudness range, in LU."""
    threshold: float
    """Gating threshold the integrated value was computed with, in LUFS."""


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise MediaError(
            f"{name} must be between {low} and {high}, got {value}", status="invalid_parameters"
        )


def _number(report: dict[str, Any], key: str) -> float:
    try:
        return float(report[key])
    except (KeyError, TypeError, ValueError):
        return float("nan")


_SHORTEST_FOR_LOUDNORM = 3.0
"""Seconds of audio ``loudnorm`` needs: on shorter input its second pass falls back to dynamic
mode and leaves the clip far below the target, so short clips get one plain gain instead."""


def _loudnorm_report(info: MediaInfo, *, pad_to: float = 0.0, **loudnorm: Any) -> dict[str, Any]:
    """Runs ``loudnorm`` over the whole file and returns the JSON it prints at the end.

    ``pad_to`` appends silence up to that many seconds first; silence sits below the absolute
    gate of EBU R128, so it lets a short clip be measured without changing its loudness.
    """
    captured: list[str] = []

    def on_line(line: str) -> None:
        # The report follows a "[Parsed_loudnorm_N @ ...]" line; keep from there to the end.
        if captured or "Parsed_loudnorm" in line:
            captured.append(line)

    audio = ffmpeg.input(str(info.path))["a:0"]
    if pad_to > 0:
        audio = audio.filter("apad", whole_dur=pad_to)
    stream = audio.filter("loudnorm", print_format="json", **loudnorm).output("-", format="null")
    run_ffmpeg(
        stream,
        subject=info.path,
        action="measuring loudness of",
        on_line=on_line,
        loglevel="info",
    )
    text = "".join(captured)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise MediaError(
            f"ffmpeg printed no loudness report for {info.path.name}",
            status="media_processing_failed",
        )
    report: dict[str, Any] = json.loads(text[start : end + 1])
    return report


def measure_loudness(path: PathLike) -> Loudness:
    """Measures integrated loudness, true peak, loudness range and gate threshold (EBU R128).

    Example:
        >>> measure_loudness("voice.wav")  # doctest: +SKIP
        Loudness(integrated_lufs=-23.1, true_peak_db=-4.2, lra=5.3, threshold=-33.4)
    """
    info = require_audio(path)
    report = _loudnorm_report(info, pad_to=_SHORTEST_FOR_LOUDNORM)
    return Loudness(
        integrated_lufs=_number(report, "input_i"),
        true_peak_db=_number(report, "input_tp"),
        lra=_number(report, "input_lra"),
        threshold=_number(report, "input_thresh"),
    )


def normalize_loudness(
    src: PathLike,
    dest: PathLike,
    *,
    target_lufs: float = -16.0,
    true_peak_db: float = -1.5,
    lra: float = 11.0,
) -> Path:
    """Normalises ``src`` to ``target_lufs`` with two-pass EBU R128 ``loudnorm``; writes ``dest``.

    Pass one measures the file; pass two applies one linear gain computed from that measurement
    (``linear=true``), so dynamics are untouched. ffmpeg switches to dynamic mode by itself when a
    linear gain would push the true peak above ``true_peak_db`` or the file's range exceeds
    ``lra``. The sample rate of ``src`` is kept (loudnorm works at 192 kHz internally) and the
    encoder follows ``dest``'s suffix. A silent file is copied without gain, since it has no
    loudness to scale.

    Example:
        >>> normalize_loudness("raw.wav", "podcast.mp3", target_lufs=-16.0)  # doctest: +SKIP
        PosixPath('podcast.mp3')
    """
    _check_range("target_lufs", target_lufs, -70.0, -5.0)
    _check_range("true_peak_db", true_peak_db, -9.0, 0.0)
    _check_range("lra", lra, 1.0, 50.0)
    info = require_audio(src)
    dest_path = Path(dest)
    options = audio_output_options(
        dest_path,
        source_rate=info.sample_rate or 48000,
        source_channels=info.channels,
    )
    targets = {"I": target_lufs, "TP": true_peak_db, "LRA": lra}
    short = (info.duration or 0.0) < _SHORTEST_FOR_LOUDNORM
    measured = _loudnorm_report(info, pad_to=_SHORTEST_FOR_LOUDNORM if short else 0.0, **targets)
    measured_i = _number(measured, "input_i")
    source = ffmpeg.input(str(info.path))["a:0"]
    if not (math.isfinite(measured_i) and measured_i > -70.0):
        logger.info("%s is silent; copying it without a loudness gain", info.path.name)
    elif short:
        # One gain to the target; peaks it would push over the ceiling are limited, as
        # loudnorm's own dynamic mode would, rather than giving up loudness for them.
        gain = target_lufs - measured_i
        source = source.filter("volume", f"{gain:.2f}dB")
        peak = _number(measured, "input_tp")
        if not math.isfinite(peak) or peak + gain > true_peak_db:
            ceiling = 10 ** ((true_peak_db - 0.5) / 20)  # sample peaks; leave room for overs
            source = source.filter("alimiter", limit=f"{ceiling:.4f}", level="disabled")
    else:
        source = source.filter(
            "loudnorm",
            measured_I=measured["input_i"],
            measured_TP=measured["input_tp"],
            measured_LRA=measured["input_lra"],
            measured_thresh=measured["input_thresh"],
            offset=measured["target_offset"],
            linear="true",
            **targets,
        )
    with atomic_output(dest_path) as tmp:
        stream = source.output(str(tmp), **options)
        run_ffmpeg(stream, subject=info.path, action="normalising loudness of")
    return dest_path
