"""Pulling the audio out of a file and changing its format, rate or channel count."""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from ..errors import MediaError
from ._ffmpeg import run_ffmpeg
from ._files import PathLike, atomic_output
from ._formats import AUDIO_CODECS, audio_output_options, parse_bitrate
from .probe import probe, require_audio

__all__ = ["convert", "extract_audio"]

# Containers that can carry video; converting to one keeps the picture.
_VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})


def extract_audio(
    src: PathLike,
    dest: PathLike,
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    codec: str | None = None,
) -> Path:
    """Writes the first audio stream of ``src`` (audio or video) to ``dest`` as audio only.

    The defaults (16 kHz mono) suit speech recognition. The encoder follows ``dest``'s suffix
    (.wav PCM 16-bit, .mp3, .flac, .m4a AAC, .ogg/.opus Opus) unless ``codec`` is given.

    Example:
        >>> extract_audio("talk.mp4", "talk.wav")  # doctest: +SKIP
        PosixPath('talk.wav')
    """
    info = require_audio(src)
    dest_path = Path(dest)
    options = audio_output_options(
        dest_path,
        codec=codec,
        sample_rate=sample_rate,
        channels=channels,
        source_rate=info.sample_rate,
        source_channels=info.channels,
    )
    with atomic_output(dest_path) as tmp:
        stream = ffmpeg.input(str(info.path))["a:0"].output(str(tmp), vn=None, **options)
        run_ffmpeg(stream, subject=info.path, action="extracting audio from")
    return dest_path


def convert(
    src: PathLike,
    dest: PathLike,
    *,
    sample_rate: int | None = None,
    channels: int | None = None,
    bitrate: str | int | None = None,
) -> Path:
    """Re-encodes ``src`` into the format implied by ``dest``'s suffix.

    Audio destinations (.wav .mp3 .flac .m4a .aac .ogg .opus) get the first audio stream only;
    video destinations (.mp4 .mkv .mov .webm ...) keep the first video stream too, encoded with
    ffmpeg's default encoder for that container. Rate and channels default to the source's
    (moved to the nearest value the encoder accepts when it must). ``bitrate`` ("128k" or bits
    per second) applies to lossy encoders only.

    Example:
        >>> convert("speech.wav", "speech.mp3", bitrate="64k")  # doctest: +SKIP
        PosixPath('speech.mp3')
    """
    dest_path = Path(dest)
    suffix = dest_path.suffix.lower()
    if suffix in _VIDEO_SUFFIXES:
        return _convert_video(src, dest_path, sample_rate, channels, bitrate)
    if suffix not in AUDIO_CODECS:
        known = " ".join(sorted(set(AUDIO_CODECS) | _VIDEO_SUFFIXES))
        raise MediaError(
            f"{dest_path.name}: unknown output format {dest_path.suffix!r}; use one of {known}",
            status="unsupported_media",
        )
    info = require_audio(src)
    options = audio_output_options(
        dest_path,
        sample_rate=sample_rate,
        channels=channels,
        bitrate=bitrate,
        source_rate=info.sample_rate,
        source_channels=info.channels,
    )
    with atomic_output(dest_path) as tmp:
        stream = ffmpeg.input(str(info.path))["a:0"].output(str(tmp), vn=None, **options)
        run_ffmpeg(stream, subject=info.path, action="converting")
    return dest_path


def _convert_video(
    src: PathLike,
    dest: Path,
    sample_rate: int | None,
    channels: int | None,
    bitrate: str | int | None,
) -> Path:
    info = probe(src)
    if not info.has_video:
        raise MediaError(
            f"{info.path.name} has no video stream to convert into {dest.name}; "
            f"use an audio suffix such as .wav or .mp3",
            status="unsupported_media",
        )
    source = ffmpeg.input(str(info.path))
    streams = [source["v:0"]]
    options: dict[str, object] = {}
    if info.has_audio:
        streams.append(source["a:0"])
        if sample_rate is not None:
            options["ar"] = sample_rate
        if channels is not None:
            options["ac"] = channels
        bits = parse_bitrate(bitrate)
        if bits is not None:
            options["audio_bitrate"] = bits
    with atomic_output(dest) as tmp:
        stream = ffmpeg.output(*streams, str(tmp), **options)
        run_ffmpeg(stream, subject=info.path, action="converting")
    return dest
